/**
 * The main job: every supported operation on this machine's backend over LLM layer shapes, next
 * to the dense float32 baseline measured in the same run. Medians over repeats; ratios are
 * baseline time / op time (above 1 = faster than dense float32).
 */
import * as fs from 'fs';
import * as os from 'os';
import { backend, selectBackend } from '../backends/select';
import { FloatDType } from '../dtype';
import { linear, linearMultiLora } from '../ops/linear';
import { LoraAdapter } from '../ops/lora';
import { lowRankUpdate } from '../ops/lowrank-update';
import { DenseWeight } from '../weights/dense';
import { Fp8Weight } from '../weights/fp8';
import { Int4Weight } from '../weights/int4';
import { Sparse24Weight } from '../weights/sparse24';
import { Weight } from '../weights/weight';
import { Tensor, cuda } from '../tensor';
import { PEER_KINDS, PeerKind, loadOrt, makePeer } from './peers';

export interface BenchOptions {
  quick: boolean;
  /** Add onnxruntime-node's ops when it is installed. */
  peers: boolean;
  ops: string[] | null;
  ms: number[] | null;
  shapes: Array<[number, number]> | null;
  threads: number | null;
  repeats: number | null;
  json: string | null;
  chart: string | null;
  seed: number;
  /** --concurrency C: time C concurrent linearAsync calls against C sync calls instead (concurrency.ts). */
  concurrency: number | null;
  /** --reuse-out: the --concurrency calls write into `out` arrays made once. */
  reuseOut: boolean;
}

export interface BenchResult {
  op: string;
  M: number;
  N: number;
  K: number;
  backend: string;
  medianMs: number;
  minMs: number;
  repeats: number;
  gflops: number;
  weightGBs: number;
  weightBytes: number;
  /** dense float32 median / this op's median, same shape, same run */
  vsDenseF32: number | null;
  /** gflops / the measured fp32 FMA peak of the same threads (null on the scalar ISA) */
  ofPeak: number | null;
}

/**
 * The fp32 FMA peak this machine sustains right now on `threads` threads (a register-only FMA
 * loop, native/cpu/fma_peak_impl.h), best of three; null when the CPU kernels are scalar.
 */
export function measureFmaPeak(): number | null {
  const s = selectBackend();
  const isa = s.info.cpu.isa;
  if (isa === 'scalar') return null;
  const code = isa === 'avx512' || isa === 'amx' ? 'avx512' : 'avx2';
  let best = 0;
  for (let i = 0; i < 3; ++i) best = Math.max(best, s.cpuAddon.fmaPeak({ isa: code, threads: s.threads, iterations: 20_000_000 }));
  return best;
}

/** One operation of the bench, set up once per weight shape. */
export interface OpSpec {
  name: string;
  describe: string;
  setup(wdata: Float32Array, N: number, K: number): OpInstance | Promise<OpInstance>;
  /** Plain cg.linear ops: how the weight is made and the activations option (--concurrency). */
  weight?: (d: Float32Array, N: number, K: number) => Weight;
  activations?: 'native' | 'fp8' | 'int8';
}

export interface OpInstance {
  /** Bytes of weight the op reads per call (for the weight GB/s column). */
  weightBytes: number;
  /** One call on x [M, K] (float32), writing y [M, N] into `out` (a peer's call is async). */
  run(x: Float32Array, M: number, out: Float32Array): void | Promise<void>;
  /**
   * On the CUDA backend, an op the routing table runs on CUDA is timed on device tensors (x
   * uploaded once in xDtype, the result written into one float32 out tensor), so the figure is
   * the device's work and the launch, not the copies of host arrays; weightBytes is then the
   * device placement's.
   */
  device?: { xDtype: FloatDType; weightBytes: number; run(x: Tensor, M: number, out: Tensor): void };
}

/** The device form of a cg.linear op with weight w, when this process runs it on CUDA. */
function onDevice(w: Weight, K: number, activations: 'native' | 'fp8' | 'int8', opts: { lora?: LoraAdapter } = {}): OpInstance['device'] {
  if (backend().kind !== 'cuda' || activations !== 'native') return undefined;
  const r = backend().routes.find((x) => x.op === (opts.lora ? 'linear+lora' : 'linear') && x.format === w.format && x.activations === 'native' && (!x.dtypes || x.dtypes.includes(w.dtype)));
  if (r?.runsOn !== 'cuda') return undefined;
  w.toDevice();
  return {
    xDtype: w.format === 'int4' ? 'float16' : w.dtype,
    weightBytes: w.byteLength,
    run: (x, M, out) => void linear(x, [M, K], w, { out, outDtype: 'float32', lora: opts.lora }),
  };
}

/** An op that is cg.linear with a weight made from the float32 data. */
function linearOp(
  name: string,
  describe: string,
  make: (d: Float32Array, N: number, K: number) => Weight,
  activations: 'native' | 'fp8' | 'int8' = 'native',
): OpSpec {
  return {
    name,
    describe,
    weight: make,
    activations,
    setup(wdata, N, K) {
      const w = make(wdata, N, K);
      const weightBytes = w.byteLength;
      return { weightBytes, run: (x, M, out) => void linear(x, [M, K], w, { out, activations }), device: onDevice(w, K, activations) };
    },
  };
}

/**
 * An op that is cg.linear with 16-bit activations (what W4A16 models hand over): x rounded to
 * `xDtype` once per x, outside the timed calls.
 */
function linear16Op(name: string, describe: string, make: (d: Float32Array, N: number, K: number) => Weight, xDtype: 'float16' | 'bfloat16'): OpSpec {
  return {
    name,
    describe,
    // (no `weight`: --concurrency runs float32 x)
    setup(wdata, N, K) {
      const w = make(wdata, N, K);
      const x16 = new WeakMap<Float32Array, Uint16Array>();
      const as16 = (x: Float32Array, M: number): Uint16Array => {
        let h = x16.get(x);
        if (!h) {
          h = DenseWeight.from(x, [M, K], { dtype: xDtype }).toDense() as Uint16Array;
          x16.set(x, h);
        }
        return h;
      };
      return { weightBytes: w.byteLength, run: (x, M, out) => void linear(as16(x, M), [M, K], w, { out, dtype: xDtype, outDtype: 'float32' }) };
    },
  };
}

const int4g128 = (d: Float32Array, N: number, K: number) => Int4Weight.quantize(d, [N, K], { groupSize: 128 });
const fp8ch = (d: Float32Array, N: number, K: number) => Fp8Weight.quantize(d, [N, K], { format: 'e4m3', scaling: 'channel' });
const fp8blk = (d: Float32Array, N: number, K: number) => Fp8Weight.quantize(d, [N, K], { format: 'e4m3', scaling: { block: [128, 128] } });

function randomFactors(seed: number, N: number, K: number, r: number): { A: Float32Array; B: Float32Array } {
  const rand = mulberry32(seed);
  const A = new Float32Array(r * K);
  const B = new Float32Array(N * r);
  for (let i = 0; i < A.length; ++i) A[i] = (rand() * 2 - 1) / Math.sqrt(K);
  for (let i = 0; i < B.length; ++i) B[i] = (rand() * 2 - 1) / Math.sqrt(r);
  return { A, B };
}

/** linear with a fused LoRA term of rank r (one adapter for every row). */
function loraOp(name: string, describe: string, make: (d: Float32Array, N: number, K: number) => Weight, r: number): OpSpec {
  return {
    name,
    describe,
    setup(wdata, N, K) {
      const w = make(wdata, N, K);
      const adapter = new LoraAdapter({ ...randomFactors(7, N, K, r), alpha: 0.5 }, [N, K]);
      const weightBytes = w.byteLength;
      return { weightBytes, run: (x, M, out) => void linear(x, [M, K], w, { out, lora: adapter }), device: onDevice(w, K, 'native', { lora: adapter }) };
    },
  };
}

/** linearMultiLora with `count` adapters of rank r, row m taking adapter m % count. */
function multiLoraOp(name: string, describe: string, count: number, r: number): OpSpec {
  return {
    name,
    describe,
    setup(wdata, N, K) {
      const w = DenseWeight.from(wdata, [N, K]);
      const adapters = Array.from({ length: count }, (_, i) => new LoraAdapter({ ...randomFactors(11 + i, N, K, r), alpha: 0.5 }, [N, K]));
      const rows = (M: number) => Int32Array.from({ length: M }, (_, m) => m % count);
      const weightBytes = w.byteLength;
      const dev = onDevice(w, K, 'native', { lora: adapters[0] });
      return {
        weightBytes,
        run: (x, M, out) => void linearMultiLora(x, [M, K], w, adapters, rows(M), { out }),
        device: dev && { ...dev, run: (x: Tensor, M: number, out: Tensor) => void linearMultiLora(x, [M, K], w, adapters, rows(M), { out, outDtype: 'float32' }) },
      };
    },
  };
}

const f32: FloatDType = 'float32';
export const OPS: OpSpec[] = [
  linearOp('dense-f32', 'dense float32 weight (the baseline)', (d, N, K) => DenseWeight.from(d, [N, K], { dtype: f32 })),
  linearOp('dense-bf16', 'dense bfloat16 weight', (d, N, K) => DenseWeight.from(d, [N, K], { dtype: 'bfloat16' })),
  linearOp('dense-f16', 'dense float16 weight', (d, N, K) => DenseWeight.from(d, [N, K], { dtype: 'float16' })),
  linear16Op('dense-bf16-xbf16', 'dense bfloat16 weight, bfloat16 activations', (d, N, K) => DenseWeight.from(d, [N, K], { dtype: 'bfloat16' }), 'bfloat16'),
  linearOp('2:4-f32', '2:4 sparse float32 weight', (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: f32 })),
  linearOp('2:4-bf16', '2:4 sparse bfloat16 weight', (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: 'bfloat16' })),
  linearOp('2:4-f16', '2:4 sparse float16 weight', (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: 'float16' })),
  linearOp('int4-g128', 'INT4 weight, groups of 128, float32 activations (W4A16)', int4g128),
  linearOp('int4-g128-a8', 'INT4 weight, groups of 128, int8 activations per row', int4g128, 'int8'),
  linearOp('int4-g128-fp8', 'INT4 weight, groups of 128, e4m3 activations per row (W4A8)', int4g128, 'fp8'),
  linear16Op('int4-g128-xf16', 'INT4 weight, groups of 128, float16 activations', int4g128, 'float16'),
  linear16Op('int4-g128-xbf16', 'INT4 weight, groups of 128, bfloat16 activations', int4g128, 'bfloat16'),
  linearOp('fp8-e4m3', 'FP8 e4m3 weight, channel scales, float32 activations', fp8ch),
  linear16Op('fp8-e4m3-xbf16', 'FP8 e4m3 weight, channel scales, bfloat16 activations', fp8ch, 'bfloat16'),
  linearOp('fp8-e4m3-a8', 'FP8 e4m3 weight and activations, 128x128 / 1x128 block scales (W8A8)', fp8blk, 'fp8'),
  loraOp('dense-f32+lora16', 'dense float32 weight with a fused LoRA term of rank 16', (d, N, K) => DenseWeight.from(d, [N, K]), 16),
  loraOp('2:4-f32+lora16', '2:4 float32 weight with a fused LoRA term of rank 16', (d, N, K) => Sparse24Weight.prune(d, [N, K]), 16),
  multiLoraOp('dense-f32+8x16', 'dense float32 weight, 8 LoRA adapters of rank 16, one per row (m % 8)', 8, 16),
];

/** onnxruntime-node's ops (lib/peers.ts), when it is installed; none otherwise. */
function peerOps(threads: number): OpSpec[] {
  const found = loadOrt();
  if (!found) return [];
  const describe: Record<PeerKind, string> = {
    'ort-matmul-f32': 'onnxruntime MatMul, float32',
    'ort-nbits-l0': 'onnxruntime MatMulNBits, 4-bit block 128, accuracy level 0 (float32 activations)',
    'ort-nbits-l4': 'onnxruntime MatMulNBits, 4-bit block 128, accuracy level 4 (int8 activations)',
  };
  return PEER_KINDS.map((kind) => ({
    name: kind,
    describe: describe[kind],
    setup: (wdata: Float32Array, N: number, K: number) => makePeer(found.ort, kind, wdata, N, K, threads),
  }));
}

export const DEFAULT_MS = [1, 16, 128, 512];
export const DEFAULT_SHAPES: Array<[number, number]> = [[4096, 4096], [11008, 4096], [4096, 11008]];
const QUICK_MS = [1, 128];
const QUICK_SHAPES: Array<[number, number]> = [[4096, 4096]];

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = rand() * 2 - 1;
  return a;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** How timeRoundRobin stops: the full bench, and --quick (a smoke run that must stay short). */
interface Rounds {
  repeats: number;
  /** once this has passed, stop after minRounds rounds (a slow ISA keeps the run bounded) */
  budgetMs: number;
  minRounds: number;
  warmUp: boolean;
}

/**
 * Times every op on the same inputs, round-robin: each round runs each op once (in a rotated
 * order), so a machine that slows down or speeds up during the run (shared hosts do) affects
 * every op alike and the ratios stay fair. One warm-up call each first (when asked). Stops
 * after `repeats` rounds, or after `minRounds` rounds once `budgetMs` has passed.
 */
async function timeRoundRobin(runs: Array<() => void | Promise<void>>, rounds: Rounds): Promise<number[][]> {
  const { repeats, budgetMs, minRounds } = rounds;
  if (rounds.warmUp) for (const run of runs) await run(); // page in the weights, spin up the threads
  const times: number[][] = runs.map(() => []);
  const start = performance.now();
  for (let r = 0; r < repeats; ++r) {
    for (let j = 0; j < runs.length; ++j) {
      const i = (j + r) % runs.length;
      const t0 = process.hrtime.bigint();
      const p = runs[i]();
      if (p) await p;
      times[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    if (r >= minRounds - 1 && performance.now() - start > budgetMs) break;
  }
  return times;
}

export function progress(line: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
  else process.stderr.write(`${line}\n`);
}

export async function runBench(opts: BenchOptions, peak: number | null): Promise<BenchResult[]> {
  const be = backend();
  const all = [...OPS, ...(opts.peers ? peerOps(be.cpu.threads) : [])];
  const ops = opts.ops ? all.filter((o) => opts.ops!.includes(o.name)) : all;
  const unknown = (opts.ops ?? []).filter((n) => n !== 'lowRankUpdate' && !all.some((o) => o.name === n));
  if (unknown.length) throw new Error(`unknown op(s) ${unknown.join(', ')}; known: ${all.map((o) => o.name).join(', ')}`);
  // The baseline is always measured, so every ratio comes from this run.
  const withBaseline = ops.some((o) => o.name === 'dense-f32') ? ops : [OPS[0], ...ops];
  const ms = opts.ms ?? (opts.quick ? QUICK_MS : DEFAULT_MS);
  const shapes = opts.shapes ?? (opts.quick ? QUICK_SHAPES : DEFAULT_SHAPES);
  const repeats = opts.repeats ?? (opts.quick ? 3 : 7);
  const budgetMs = opts.quick ? 2000 : 8000;
  // --quick on the scalar kernels (a CI machine without AVX2) spends ~30 s per round of the 14
  // ops at M = 128: one round once over budget, and the weights warmed up at the first M only.
  const minRounds = opts.quick ? 1 : 3;
  const rand = mulberry32(opts.seed);
  // Where each op ran: the CPU kernels, or (device ops) the CUDA device, on device tensors.
  const ranOn = `cpu/${be.cpu.isa}x${be.cpu.threads}`;
  const devName = be.kind === 'cuda' ? `cuda/${cuda.devices()[0]?.name ?? 'device'}` : '';
  const peer = opts.peers ? loadOrt() : null;

  const results: BenchResult[] = [];
  const total = shapes.length * ms.length;
  let step = 0;
  for (const [N, K] of shapes) {
    const wdata = randomArray(N * K, rand);
    const insts: Array<{ op: OpSpec; inst: OpInstance }> = [];
    for (const o of withBaseline) insts.push({ op: o, inst: await o.setup(wdata, N, K) });
    for (const [mi, M] of ms.entries()) {
      progress(`[${++step}/${total}] M=${M} N=${N} K=${K}: ${insts.map((i) => i.op.name).join(', ')}`);
      const x = randomArray(M * K, rand);
      const outs = insts.map(() => new Float32Array(M * N));
      // Device ops: x once per dtype (rounded as the library rounds a host x), one out tensor each.
      const tensors: Tensor[] = [];
      const xOn = new Map<FloatDType, Tensor>();
      const xTensor = (dt: FloatDType) => {
        let t = xOn.get(dt);
        if (!t) {
          t = Tensor.fromHost(dt === 'float32' ? x : DenseWeight.from(x, [M, K], { dtype: dt }).toDense(), [M, K], { dtype: dt });
          xOn.set(dt, t);
          tensors.push(t);
        }
        return t;
      };
      const runs = insts.map(({ inst }, i) => {
        const dev = inst.device;
        if (!dev) return () => inst.run(x, M, outs[i]);
        const xt = xTensor(dev.xDtype);
        const yt = Tensor.fromHost(new Float32Array(M * N), [M, N]);
        tensors.push(yt);
        return () => dev.run(xt, M, yt);
      });
      let times: number[][];
      try {
        times = await timeRoundRobin(runs, { repeats, budgetMs: budgetMs * insts.length, minRounds, warmUp: !opts.quick || mi === 0 });
      } finally {
        for (const t of tensors) t.dispose();
      }
      const medians = times.map(median);
      const baseline = medians[insts.findIndex((i) => i.op.name === 'dense-f32')];
      insts.forEach(({ op, inst }, i) => {
        const med = medians[i];
        results.push({
          op: op.name, M, N, K, backend: op.name.startsWith('ort-') && peer ? `ort ${peer.version}` : inst.device ? devName : ranOn,
          medianMs: med, minMs: Math.min(...times[i]), repeats: times[i].length,
          gflops: (2 * M * N * K) / (med * 1e6),
          weightGBs: (inst.device?.weightBytes ?? inst.weightBytes) / (med * 1e6),
          weightBytes: inst.device?.weightBytes ?? inst.weightBytes,
          vsDenseF32: baseline / med,
          ofPeak: peak === null || inst.device ? null : (2 * M * N * K) / (med * 1e6) / peak, // the CPU's FMA peak: not for device rows
        });
      });
    }
  }
  progress(`done: ${results.length} measurements`, true);
  return results.filter((r) => !opts.ops || opts.ops.includes(r.op) || r.op === 'dense-f32');
}

/** A Markdown table: the first `textColumns` columns left-aligned, the rest (numbers) right-aligned. */
export function markdownTable(head: string[], rows: string[][], textColumns: number): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < textColumns ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
}

export function formatTable(results: BenchResult[]): string {
  const head = ['op', 'M', 'N', 'K', 'backend', 'median ms', 'GFLOP/s', '% FMA peak', 'weight GB/s', 'vs dense f32'];
  const rows = results.map((r) => [
    r.op, String(r.M), String(r.N), String(r.K), r.backend,
    r.medianMs.toFixed(3), r.gflops.toFixed(1), r.ofPeak === null ? '-' : `${(100 * r.ofPeak).toFixed(0)}%`, r.weightGBs.toFixed(2),
    r.vsDenseF32 === null ? '-' : `${r.vsDenseF32.toFixed(2)}x`,
  ]);
  return markdownTable(head, rows, 5);
}

/** A bar chart (SVG) of each op's speed relative to dense float32, one group per shape. */
export function formatChart(results: BenchResult[]): string {
  const groups = [...new Set(results.map((r) => `M=${r.M} ${r.N}x${r.K}`))];
  const ops = [...new Set(results.map((r) => r.op))];
  const colors = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7'];
  const max = Math.max(1, ...results.map((r) => r.vsDenseF32 ?? 0));
  const bw = 12, gap = 18, h = 260, top = 30, left = 50;
  const gw = ops.length * bw + gap;
  const width = left + groups.length * gw + 160;
  const y = (v: number) => top + h - (v / max) * h;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + h + 110}" font-family="sans-serif" font-size="11">`);
  parts.push(`<text x="${left}" y="18" font-size="13">speed vs dense float32 (same run), higher is faster</text>`);
  for (let t = 0; t <= Math.ceil(max); t += 0.5) {
    parts.push(`<line x1="${left}" x2="${left + groups.length * gw}" y1="${y(t)}" y2="${y(t)}" stroke="${t === 1 ? '#000' : '#ddd'}"/>`);
    parts.push(`<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(1)}x</text>`);
  }
  groups.forEach((g, gi) => {
    ops.forEach((op, oi) => {
      const r = results.find((q) => `M=${q.M} ${q.N}x${q.K}` === g && q.op === op);
      if (!r || r.vsDenseF32 === null) return;
      const x0 = left + gi * gw + oi * bw;
      parts.push(`<rect x="${x0}" y="${y(r.vsDenseF32)}" width="${bw - 2}" height="${top + h - y(r.vsDenseF32)}" fill="${colors[oi % colors.length]}"><title>${op} ${g}: ${r.vsDenseF32.toFixed(2)}x</title></rect>`);
    });
    const cx = left + gi * gw + (ops.length * bw) / 2;
    parts.push(`<text transform="translate(${cx},${top + h + 10}) rotate(60)">${g}</text>`);
  });
  ops.forEach((op, oi) => {
    const ly = top + oi * 16;
    parts.push(`<rect x="${left + groups.length * gw + 10}" y="${ly}" width="10" height="10" fill="${colors[oi % colors.length]}"/>`);
    parts.push(`<text x="${left + groups.length * gw + 24}" y="${ly + 9}">${op}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The --json file: the command, when, on what, and the measurements. */
export function writeJson(file: string, command: string, measurements: Record<string, unknown>): void {
  const doc = {
    command,
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, platform: `${os.platform()}-${os.arch()}`, node: process.version },
    backend: backend(),
    ...measurements,
  };
  fs.writeFileSync(file, JSON.stringify(doc, null, 2));
}

export function writeOutputs(results: BenchResult[], opts: BenchOptions, command: string, peak: number | null, updates: UpdateResult[] = []): void {
  if (opts.json) writeJson(opts.json, command, { fmaPeakGflops: peak, results, updates });
  if (opts.chart) fs.writeFileSync(opts.chart, formatChart(results));
}

export interface UpdateResult {
  op: string;
  N: number;
  K: number;
  r: number;
  medianMs: number;
  gflops: number;
  /** GB/s of weight moved: the update reads and writes the whole weight (2 N K 4 bytes) */
  memoryGBs: number;
  peakScratchBytes: number;
}

/**
 * lowRankUpdate on a dense float32 weight of each shape, rank 16: W += alpha B A, alternately
 * +alpha and -alpha so the weight stays the same size. GFLOP/s counts 2 N K r; at r = 16 that is
 * 8 flops per weight element read and written, far below what the FMA units could do per byte,
 * so the figure that says how close it runs to the machine's limit is the memory traffic.
 */
export function runUpdateBench(opts: BenchOptions): UpdateResult[] {
  const shapes = opts.shapes ?? (opts.quick ? QUICK_SHAPES : DEFAULT_SHAPES);
  const repeats = opts.repeats ?? (opts.quick ? 3 : 7);
  const rand = mulberry32(opts.seed + 1);
  const results: UpdateResult[] = [];
  const r = 16;
  for (const [N, K] of shapes) {
    progress(`lowRankUpdate N=${N} K=${K} r=${r}`);
    const w = DenseWeight.from(randomArray(N * K, rand), [N, K]);
    const { A, B } = randomFactors(3, N, K, r);
    let sign = 1;
    let scratch = 0;
    const run = () => {
      scratch = lowRankUpdate(w, B, A, { alpha: 0.5 * sign }).peakScratchBytes;
      sign = -sign;
    };
    run();
    const times: number[] = [];
    for (let i = 0; i < repeats; ++i) {
      const t0 = process.hrtime.bigint();
      run();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const med = median(times);
    const gflops = (2 * N * K * r) / (med * 1e6);
    results.push({ op: 'lowRankUpdate-f32-r16', N, K, r, medianMs: med, gflops, memoryGBs: (2 * N * K * 4) / (med * 1e6), peakScratchBytes: scratch });
  }
  progress('done: lowRankUpdate', true);
  return results;
}

export function formatUpdateTable(results: UpdateResult[]): string {
  const head = ['op', 'N', 'K', 'r', 'median ms', 'GFLOP/s', 'weight GB/s read+written', 'scratch KiB'];
  const rows = results.map((u) => [u.op, String(u.N), String(u.K), String(u.r), u.medianMs.toFixed(3), u.gflops.toFixed(1),
    u.memoryGBs.toFixed(1), (u.peakScratchBytes / 1024).toFixed(1)]);
  return markdownTable(head, rows, 1);
}
