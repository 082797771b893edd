/**
 * The main job: every supported operation on this machine's backend over LLM layer shapes, next
 * to the dense float32 baseline measured in the same run. Medians over repeats; ratios are
 * baseline time / op time (above 1 = faster than dense float32).
 */
import * as fs from 'fs';
import * as os from 'os';
import { backend, selectBackend, setThreads } from './backend';
import { FloatDType } from './dtype';
import { linear } from './linear';
import { DenseWeight, Sparse24Weight, Weight } from './weights';

export interface BenchOptions {
  quick: boolean;
  ops: string[] | null;
  ms: number[] | null;
  shapes: Array<[number, number]> | null;
  threads: number | null;
  repeats: number | null;
  json: string | null;
  chart: string | null;
  seed: number;
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
  const code = isa === 'avx512' ? 2 : 1;
  let best = 0;
  for (let i = 0; i < 3; ++i) best = Math.max(best, s.cpuAddon.fmaPeak({ isa: code, threads: s.threads, iterations: 20_000_000 }));
  return best;
}

interface OpSpec {
  name: string;
  describe: string;
  make(data: Float32Array, N: number, K: number): Weight;
}

const f32: FloatDType = 'float32';
export const OPS: OpSpec[] = [
  { name: 'dense-f32', describe: 'dense float32 weight (the baseline)', make: (d, N, K) => DenseWeight.from(d, [N, K], { dtype: f32 }) },
  { name: 'dense-bf16', describe: 'dense bfloat16 weight', make: (d, N, K) => DenseWeight.from(d, [N, K], { dtype: 'bfloat16' }) },
  { name: 'dense-f16', describe: 'dense float16 weight', make: (d, N, K) => DenseWeight.from(d, [N, K], { dtype: 'float16' }) },
  { name: '2:4-f32', describe: '2:4 sparse float32 weight', make: (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: f32 }) },
  { name: '2:4-bf16', describe: '2:4 sparse bfloat16 weight', make: (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: 'bfloat16' }) },
  { name: '2:4-f16', describe: '2:4 sparse float16 weight', make: (d, N, K) => Sparse24Weight.prune(d, [N, K], { dtype: 'float16' }) },
];

export const DEFAULT_MS = [1, 16, 128, 512];
export const DEFAULT_SHAPES: Array<[number, number]> = [[4096, 4096], [11008, 4096], [4096, 11008]];
const QUICK_MS = [1, 128];
const QUICK_SHAPES: Array<[number, number]> = [[4096, 4096]];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; ++i) a[i] = rand() * 2 - 1;
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function timeOp(run: () => void, repeats: number, budgetMs: number): number[] {
  run(); // warm-up: page in the weight, spin up the threads
  const times: number[] = [];
  const start = performance.now();
  for (let r = 0; r < repeats; ++r) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r >= 2 && performance.now() - start > budgetMs) break; // a slow op (scalar ISA) keeps the run bounded
  }
  return times;
}

function progress(line: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
  else process.stderr.write(`${line}\n`);
}

export function runBench(opts: BenchOptions, peak: number | null): BenchResult[] {
  const be = backend();
  const ops = opts.ops ? OPS.filter((o) => opts.ops!.includes(o.name)) : OPS;
  const unknown = (opts.ops ?? []).filter((n) => !OPS.some((o) => o.name === n));
  if (unknown.length) throw new Error(`unknown op(s) ${unknown.join(', ')}; known: ${OPS.map((o) => o.name).join(', ')}`);
  // The baseline is always measured, so every ratio comes from this run.
  const withBaseline = ops.some((o) => o.name === 'dense-f32') ? ops : [OPS[0], ...ops];
  const ms = opts.ms ?? (opts.quick ? QUICK_MS : DEFAULT_MS);
  const shapes = opts.shapes ?? (opts.quick ? QUICK_SHAPES : DEFAULT_SHAPES);
  const repeats = opts.repeats ?? (opts.quick ? 3 : 7);
  const budgetMs = opts.quick ? 2000 : 8000;
  const rand = mulberry32(opts.seed);
  // Operations on host arrays run on the CPU kernels until the CUDA kernels land (backend.ts).
  const ranOn = `cpu/${be.cpu.isa}x${be.cpu.threads}`;

  const results: BenchResult[] = [];
  const total = shapes.length * ms.length * withBaseline.length;
  let step = 0;
  for (const [N, K] of shapes) {
    const wdata = randomArray(N * K, rand);
    const weights = withBaseline.map((o) => ({ op: o, w: o.make(wdata, N, K) }));
    for (const M of ms) {
      const x = randomArray(M * K, rand);
      const out = new Float32Array(M * N);
      let baseline: number | null = null;
      for (const { op, w } of weights) {
        progress(`[${++step}/${total}] ${op.name} M=${M} N=${N} K=${K}`);
        const times = timeOp(() => linear(x, [M, K], w, { out }), repeats, budgetMs);
        const med = median(times);
        if (op.name === 'dense-f32') baseline = med;
        results.push({
          op: op.name, M, N, K, backend: ranOn,
          medianMs: med, minMs: Math.min(...times), repeats: times.length,
          gflops: (2 * M * N * K) / (med * 1e6),
          weightGBs: w.byteLength / (med * 1e6),
          weightBytes: w.byteLength,
          vsDenseF32: baseline === null ? null : baseline / med,
          ofPeak: peak === null ? null : (2 * M * N * K) / (med * 1e6) / peak,
        });
      }
    }
  }
  progress(`done: ${results.length} measurements`, true);
  return results.filter((r) => !opts.ops || opts.ops.includes(r.op) || r.op === 'dense-f32');
}

export function formatTable(results: BenchResult[]): string {
  const head = ['op', 'M', 'N', 'K', 'backend', 'median ms', 'GFLOP/s', '% FMA peak', 'weight GB/s', 'vs dense f32'];
  const rows = results.map((r) => [
    r.op, String(r.M), String(r.N), String(r.K), r.backend,
    r.medianMs.toFixed(3), r.gflops.toFixed(1), r.ofPeak === null ? '-' : `${(100 * r.ofPeak).toFixed(0)}%`, r.weightGBs.toFixed(2),
    r.vsDenseF32 === null ? '-' : `${r.vsDenseF32.toFixed(2)}x`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 5 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i < 5 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
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

export function writeOutputs(results: BenchResult[], opts: BenchOptions, command: string, peak: number | null): void {
  const be = backend();
  if (opts.json) {
    const doc = {
      command,
      date: new Date().toISOString(),
      machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, platform: `${os.platform()}-${os.arch()}`, node: process.version },
      backend: be,
      fmaPeakGflops: peak,
      results,
    };
    fs.writeFileSync(opts.json, JSON.stringify(doc, null, 2));
  }
  if (opts.chart) fs.writeFileSync(opts.chart, formatChart(results));
}
