/**
 * Many linearAsync calls in flight at once: mixed formats, dtypes, shapes, ISAs and thread
 * counts, with inputs whose only references are held by the calls themselves. All resolve to
 * correct, independent results; the event loop keeps running meanwhile. A child process with
 * --expose-gc repeats this with garbage collections forced while the calls run.
 */
import * as cg from '../lib';
import { describeChild, runChild } from './helpers/child';
import {
  DType,
  DTYPES,
  bitsOf,
  checkLinear,
  decode,
  encode,
  keepColumnsBits,
  linearRef,
  mulberry32,
  pruneColumns,
  randInt,
  randomFloat32,
  seedFor,
  seedNote,
} from './helpers/reference';
import { cpuTargets, restore, xAsComputed } from './helpers/matrix';

// The calls deliberately mix CPU instruction sets in flight (each call runs on the ISA current
// when it was made): the matrix's CPU rows, set by their ISA.
const CPU_ROWS = cpuTargets();
afterAll(restore);

interface Pending {
  promise: Promise<Float32Array | Uint16Array>;
  outDtype: DType;
  ref: Float64Array;
  absSum: Float64Array;
  M: number;
  N: number;
  K: number;
  what: string;
  out?: Float32Array | Uint16Array;
}

/**
 * Starts one call and returns only its promise and the reference: x, the weight and the bias
 * go out of scope here, so only the call keeps them alive.
 */
function launch(i: number, baseLabel: string, sync = false): Pending {
  const seed = seedFor(`${baseLabel} ${i}`);
  const rng = mulberry32(seed);
  const format = i % 2 === 0 ? 'dense' : '2:4';
  const M = [1, 3, 17, 40, 130][randInt(rng, 5)];
  const N = [1, 7, 33, 45, 64][randInt(rng, 5)];
  const K = [4, 36, 100, 140, 260][randInt(rng, 5)];
  const xd = DTYPES[randInt(rng, 3)];
  const wd = DTYPES[randInt(rng, 3)];
  const outDtype = DTYPES[randInt(rng, 3)];
  const row = CPU_ROWS[i % CPU_ROWS.length];
  const threads = 1 + (i % 3);
  const x = encode(randomFloat32(rng, M * K), xd);
  const wEnc = encode(randomFloat32(rng, N * K), wd);
  let wd64 = decode(wEnc, wd);
  let w: cg.Weight;
  if (format === 'dense') {
    w = cg.DenseWeight.from(wEnc, [N, K], { dtype: wd });
  } else {
    w = cg.Sparse24Weight.prune(wEnc, [N, K], { dtype: wd });
    const pb = keepColumnsBits(bitsOf(wEnc), pruneColumns(wd64, N, K), N, K);
    wd64 = decode(pb instanceof Uint32Array ? new Float32Array(pb.buffer) : pb, wd);
  }
  const bias = i % 3 === 0 ? randomFloat32(rng, N) : undefined;
  const { ref, absSum } = linearRef(xAsComputed(decode(x, xd), xd, format, wd), wd64, bias ? decode(bias, 'float32') : null, M, N, K);
  const out = i % 4 === 1 ? (outDtype === 'float32' ? new Float32Array(M * N).fill(NaN) : new Uint16Array(M * N).fill(0x7fff)) : undefined;
  cg.setCpuIsa(row.isa);
  const opts: cg.LinearOptions = { dtype: xd === 'float32' ? undefined : xd, bias, outDtype, out, threads };
  const promise = sync ? Promise.resolve(cg.linear(x, [M, K], w, opts)) : cg.linearAsync(x, [M, K], w, opts);
  const what = `${sync ? 'sync' : 'async'} call ${i}: ${format} M=${M} N=${N} K=${K} x ${xd} w ${wd} out ${outDtype} ${row.label} threads ${threads}${bias ? ' bias' : ''}; ${seedNote(seed)}`;
  return { promise, outDtype, ref, absSum, M, N, K, what, out };
}

async function settleAndCheck(pending: Pending[]): Promise<void> {
  const results = await Promise.all(pending.map((p) => p.promise));
  const failures: string[] = [];
  results.forEach((y, i) => {
    const p = pending[i];
    if (p.out && y !== p.out) failures.push(`${p.what}: did not return the out buffer`);
    const msg = checkLinear(y, p.outDtype, p.ref, p.absSum, p.M, p.N, p.K, p.what);
    if (msg) failures.push(msg);
  });
  // Results are independent arrays (no two calls share an output).
  const buffers = new Set(results.map((r) => r.buffer));
  expect(buffers.size).toBe(results.length);
  expect(failures).toEqual([]);
}

test('32 linearAsync calls in flight at once resolve to correct, independent results', async () => {
  const pending: Pending[] = [];
  for (let i = 0; i < 32; i++) pending.push(launch(i, 'concurrent'));
  (globalThis as { gc?: () => void }).gc?.();
  await settleAndCheck(pending);
});

test('sync calls interleaved with async calls in flight do not disturb them', async () => {
  const pending: Pending[] = [];
  for (let i = 0; i < 16; i++) {
    pending.push(launch(i, 'interleaved'));
    pending.push(launch(100 + i, 'interleaved-sync', true));
  }
  await settleAndCheck(pending);
});

test('linearAsync runs off the event loop: a setImmediate callback runs before a long call resolves', async () => {
  cg.setCpuIsa('scalar');
  // "Long": the scalar CPU kernel (or the simulated device) takes milliseconds on 64 x 256 x 1024.
  // A real GPU finishes that within the loop turn that starts it, and with host arrays the JS
  // thread's own staging of x took longer than the GPU's work (the H200 resolved even a 4096^3
  // float32 call from host arrays before the setImmediate ran: bench/results/gpu-h200-2026-12-04/
  // run4). So on a real GPU, x is a device tensor uploaded beforehand and the weight is uploaded
  // by a first call: the calls then only enqueue kernels, 4 float32 4096^3 GEMMs (CUDA cores, no
  // tensor cores: milliseconds each even on an H200), and the setImmediate must run before the
  // last of them resolves.
  const info = cg.backend();
  const gpu = info.kind === 'cuda' && !info.cuda?.simulated;
  const M = gpu ? 4096 : 64;
  const N = gpu ? 4096 : 256;
  const K = gpu ? 4096 : 1024;
  const rng = mulberry32(seedFor('off-loop'));
  const w = cg.DenseWeight.from(randomFloat32(rng, N * K), [N, K]);
  const xHost = randomFloat32(rng, M * K);
  const order: string[] = [];
  let p: Promise<unknown>;
  const held: cg.Tensor[] = [];
  if (gpu) {
    const x = cg.Tensor.fromHost(xHost, [M, K]);
    held.push(x, cg.linear(x, [M, K], w, { threads: 1 }));
    p = Promise.all([0, 1, 2, 3].map(() => cg.linearAsync(x, [M, K], w, { threads: 1 }))).then((ys) => {
      held.push(...ys);
      order.push('resolved');
    });
  } else {
    p = cg.linearAsync(xHost, [M, K], w, { threads: 1 }).then(() => order.push('resolved'));
  }
  setImmediate(() => order.push('immediate'));
  await p;
  for (const t of held) t.dispose();
  restore();
  expect(order).toEqual(['immediate', 'resolved']);
});

test('with --expose-gc in a child process: inputs survive forced collections while 24 calls run', () => {
  const script = `
const dtypes = ['float32', 'float16', 'bfloat16'];
function rnd(seed) { let a = seed >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; }
// Expected results from the same inputs computed synchronously first (compared with a loose
// tolerance: only garbage from freed inputs must show), then the async calls with every input
// created inside launch() (only the calls hold them) and gc() forced while they run.
function inputs(i) {
  const r = rnd(1000 + i);
  const M = 1 + Math.floor(r() * 140), N = 1 + Math.floor(r() * 70), K = 4 * (1 + Math.floor(r() * 70));
  const x = new Float32Array(M * K).map(() => r() - 0.5);
  const w = new Float32Array(N * K).map(() => r() - 0.5);
  const bias = new Float32Array(N).map(() => r());
  const weight = i % 2 ? cg.Sparse24Weight.prune(w, [N, K], { dtype: dtypes[i % 3] }) : cg.DenseWeight.from(w, [N, K], { dtype: dtypes[i % 3] });
  return { M, N, K, x, weight, bias };
}
const expected = [];
for (let i = 0; i < 24; i++) { const a = inputs(i); expected.push(Array.from(cg.linear(a.x, [a.M, a.K], a.weight, { bias: a.bias, threads: 1 + (i % 2) }))); }
function launch(i) { const a = inputs(i); return cg.linearAsync(a.x, [a.M, a.K], a.weight, { bias: a.bias, threads: 1 + (i % 2) }); }
const promises = [];
for (let i = 0; i < 24; i++) { promises.push(launch(i)); global.gc(); }
const timer = setInterval(() => global.gc(), 1);
const results = await Promise.all(promises);
clearInterval(timer);
global.gc();
let mismatches = 0;
results.forEach((y, i) => { const e = expected[i]; if (y.length !== e.length) mismatches++; else for (let j = 0; j < e.length; j++) if (!(Math.abs(y[j] - e[j]) <= 1e-4 * (1 + Math.abs(e[j])))) { mismatches++; break; } });
out({ mismatches, n: results.length });
`;
  const r = runChild(script, {}, { nodeArgs: ['--expose-gc'] });
  if (r.status !== 0 || r.error) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  expect(r.value).toEqual({ mismatches: 0, n: 24 });
});
