/**
 * cg.lowRankUpdate on the CUDA backend (native/cuda/lowrank_update.cuh on the simulated device,
 * through the public API in a child process with COMPRESSED_GEMM_BACKEND=cuda-sim): dense weights
 * of every dtype and 16-bit 2:4 weights (reprune false and true) are updated in device memory.
 *
 * What is checked here: the device kernel does the CPU kernels' arithmetic in the same order
 * (lowrank_update.cuh says how), so the updated weight equals, bit for bit, the same update run
 * by this (CPU) process on the same weight and factors, for every element, the 2:4 metadata
 * included; sync and async; host weights, device-only ones (toDevice) and one on device 1; the
 * factors' device memory is freed after the call (cg.cuda.memory()); the routing table; and
 * the refusals. The float64 reference bounds of the update (test/ops/lowrank-update.test.ts)
 * run on cuda-sim too (jest.cuda-sim.config.js), so the device results are held to the same
 * independent reference as the CPU's.
 *
 * Shapes: ragged against the dense kernel's 16-row x 128-column blocks (N = 70, K = 150: a K
 * that leaves padding columns in the 16-bit placements, which must stay zeros) and against the
 * 2:4 layout's 64 x 64 padding (N = 70, K = 200; N = 19, K = 264), ranks 1 to 40, 16-bit and
 * float32 factors.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as cg from '../../lib';
import { describeChild, runChild } from '../helpers/child';
import { diffBits, randomFactors } from '../helpers/lowrank-reference';
import { DType, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim', COMPRESSED_GEMM_SIM_DEVICES: '2' };

function child(body: string): Record<string, unknown> {
  const r = runChild(body, ENV, { timeoutMs: 110_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}

interface Case {
  kind: 'dense' | '2:4';
  dtype: DType;
  N: number;
  K: number;
  r: number;
  factorDtype: DType;
  alpha: number;
  reprune: boolean;
  /** How the weight is held on the device when the update runs. */
  where: 'host' | 'toDevice' | 'device1';
  async: boolean;
}

const CASES: Case[] = [
  { kind: 'dense', dtype: 'float32', N: 70, K: 150, r: 16, factorDtype: 'float32', alpha: 0.75, reprune: false, where: 'host', async: false },
  { kind: 'dense', dtype: 'float16', N: 70, K: 150, r: 5, factorDtype: 'float16', alpha: -1.5, reprune: false, where: 'toDevice', async: true },
  { kind: 'dense', dtype: 'bfloat16', N: 33, K: 264, r: 40, factorDtype: 'bfloat16', alpha: 0.3, reprune: false, where: 'device1', async: false },
  { kind: 'dense', dtype: 'float16', N: 1, K: 8, r: 1, factorDtype: 'float32', alpha: 2, reprune: false, where: 'host', async: false },
  { kind: '2:4', dtype: 'float16', N: 70, K: 200, r: 16, factorDtype: 'float32', alpha: 0.75, reprune: false, where: 'host', async: false },
  { kind: '2:4', dtype: 'float16', N: 70, K: 200, r: 16, factorDtype: 'float32', alpha: 0.75, reprune: true, where: 'toDevice', async: false },
  { kind: '2:4', dtype: 'bfloat16', N: 19, K: 264, r: 7, factorDtype: 'bfloat16', alpha: -2, reprune: true, where: 'device1', async: true },
  { kind: '2:4', dtype: 'bfloat16', N: 19, K: 264, r: 3, factorDtype: 'float16', alpha: 1.25, reprune: false, where: 'host', async: true },
];

const label = (c: Case) => `${c.kind} ${c.dtype} ${c.N}x${c.K} r ${c.r} (${c.factorDtype} factors) alpha ${c.alpha}${c.kind === '2:4' ? ` reprune ${c.reprune}` : ''} ${c.where} ${c.async ? 'async' : 'sync'}`;

function inputs(c: Case) {
  const seed = seedFor(`cuda-sim lowrank ${label(c)}`);
  const rng = mulberry32(seed);
  const w = Float32Array.from({ length: c.N * c.K }, () => randNonZero(rng));
  const f = randomFactors(rng, c.N, c.K, c.r, c.factorDtype, 0.5);
  return { seed, w, f };
}

/** The weight as the library makes it from the same data in either process. */
function make(c: Case, w: Float32Array): cg.Weight {
  return c.kind === 'dense' ? cg.DenseWeight.from(w, [c.N, c.K], { dtype: c.dtype }) : cg.Sparse24Weight.prune(w, [c.N, c.K], { dtype: c.dtype });
}

type Snap = { dense: number[]; meta?: number[] };

function snap(w: cg.Weight): Snap {
  const s: Snap = { dense: Array.from(w.toDense() as ArrayLike<number>) };
  if (w instanceof cg.Sparse24Weight) s.meta = Array.from(w.canonical().meta);
  return s;
}

const bitsOf = (dtype: DType, a: number[]) => (dtype === 'float32' ? new Uint32Array(Float32Array.from(a).buffer) : Uint16Array.from(a));

test('every case equals the CPU kernels bit for bit (values and 2:4 metadata), sync and async, host, device-only and device-1 weights; the factors are freed', () => {
  const all = CASES.map((c) => ({ c, ...inputs(c) }));
  // The child gets each case's data; 16-bit factors travel as bits.
  // The data travel in a file: a snippet is one command-line argument, at most 128 KiB.
  const payload = all.map(({ c, w, f }) => ({ c, w: Array.from(w), A: Array.from(f.A), B: Array.from(f.B) }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-lowrank-device-'));
  const file = path.join(dir, 'cases.json');
  fs.writeFileSync(file, JSON.stringify(payload));
  let v: Array<{ dense: number[]; meta?: number[]; scratch: number; device: number; before: number[]; after: number[]; weightBytes: number }>;
  try {
    v = child(`
const cases = JSON.parse(require('fs').readFileSync(${JSON.stringify(file)}, 'utf8'));
const results = [];
for (const { c, w, A, B } of cases) {
  const W = Float32Array.from(w);
  const wt = c.kind === 'dense' ? cg.DenseWeight.from(W, [c.N, c.K], { dtype: c.dtype }) : cg.Sparse24Weight.prune(W, [c.N, c.K], { dtype: c.dtype });
  if (c.where === 'toDevice') wt.toDevice();
  if (c.where === 'device1') wt.toDevice({ device: 1 });
  // A host weight is placed on the device by the update itself.
  const fa = c.factorDtype === 'float32' ? Float32Array.from(A) : Uint16Array.from(A);
  const fb = c.factorDtype === 'float32' ? Float32Array.from(B) : Uint16Array.from(B);
  const mem = () => [0, 1].map((dev) => cg.cuda.memory().find((d) => d.device === dev)?.bytes ?? 0);
  const before = mem();
  const opts = { alpha: c.alpha, reprune: c.reprune || undefined, dtype: c.factorDtype };
  const r = c.async ? await cg.lowRankUpdateAsync(wt, fb, fa, opts) : cg.lowRankUpdate(wt, fb, fa, opts);
  const after = mem();
  const dense = Array.from(wt.toDense());
  const meta = c.kind === '2:4' ? Array.from(wt.canonical().meta) : undefined;
  results.push({ dense, meta, scratch: r.peakScratchBytes, device: wt.device, before, after, weightBytes: wt.byteLength });
  wt.dispose();
}
out(results);
`) as unknown as typeof v;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  all.forEach(({ c, w, f, seed }, i) => {
    const what = `${label(c)}; ${seedNote(seed)}`;
    const got = v[i];
    // The same update on this process's CPU kernels.
    const cpu = make(c, w);
    cg.lowRankUpdate(cpu, f.B, f.A, { alpha: c.alpha, reprune: c.reprune || undefined, dtype: c.factorDtype });
    const want = snap(cpu);
    expect(diffBits(bitsOf(c.dtype, got.dense), bitsOf(c.dtype, want.dense), `${what}: values`)).toBeNull();
    if (c.kind === '2:4') expect(diffBits(Uint8Array.from(got.meta!), Uint8Array.from(want.meta!), `${what}: meta`)).toBeNull();
    // Not vacuous: the update changed most elements (2:4: most kept values), and reprune some groups' masks.
    const before = snap(make(c, w));
    const changed = want.dense.filter((x, k) => x !== before.dense[k]).length;
    expect(changed).toBeGreaterThan(c.kind === 'dense' ? 0.9 * c.N * c.K : 0.45 * c.N * c.K);
    if (c.reprune) expect(want.meta).not.toEqual(before.meta);
    // Where it ran, and its device scratch: A and B as float32, freed by the time the call returns.
    expect(got.device).toBe(c.where === 'device1' ? 1 : 0);
    expect(got.scratch).toBe((c.r * c.K + c.N * c.r) * 4);
    const dev = c.where === 'device1' ? 1 : 0;
    if (c.where === 'host') expect(got.after[dev] - got.before[dev]).toBe(got.weightBytes); // the placement the update made
    else expect(got.after).toEqual(got.before);
  });
});

test('routes: dense and 16-bit 2:4 updates run on CUDA; float32 2:4, INT4 and FP8 on the CPU kernels; a device-only INT4 weight is refused, a host one updated', () => {
  const v = child(`
const routes = cg.backend().routes.filter((r) => r.op === 'lowRankUpdate').map((r) => [r.format, r.dtypes ?? null, r.runsOn]);
const q = cg.Int4Weight.quantize(Float32Array.from({ length: 16 * 32 }, (_, i) => Math.sin(i)), [16, 32], { groupSize: 32 });
const B = new Float32Array(16 * 2).fill(0.25), A = new Float32Array(2 * 32).fill(0.5);
const before = Array.from(q.toDense());
cg.lowRankUpdate(q, B, A);
const changed = Array.from(q.toDense()).some((x, i) => x !== before[i]);
q.toDevice();
let e = null;
try { cg.lowRankUpdate(q, B, A); } catch (x) { e = { name: x.name, code: x.code, message: x.message }; }
const s = cg.Sparse24Weight.prune(Float32Array.from({ length: 8 * 16 }, (_, i) => 1 + (i % 5)), [8, 16]);
cg.lowRankUpdate(s, new Float32Array(8).fill(1), new Float32Array(16).fill(1));
out({ routes, changed, e, f32sparseDevice: s.device });
`);
  expect(v.routes).toEqual([
    ['dense', null, 'cuda'],
    ['2:4', ['float16', 'bfloat16'], 'cuda'],
    ['2:4', ['float32'], 'cpu'],
    ['int4', null, 'cpu'],
    ['fp8', null, 'cpu'],
  ]);
  expect(v.changed).toBe(true);
  expect(v.e).toMatchObject({ code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/device-only/) });
  expect(v.f32sparseDevice).toBeNull(); // float32 2:4: updated on its CPU placement, never uploaded
});

test('refusals before anything runs on the device: a disposed weight, a weight busy with linearAsync, bad factors; each leaves the weight bit for bit and no device memory behind', () => {
  const v = child(`
const N = 40, K = 72;
const w = cg.DenseWeight.from(Float32Array.from({ length: N * K }, (_, i) => Math.cos(i)), [N, K], { dtype: 'float16' });
w.toDevice();
const snapBits = () => Array.from(w.toDense());
const before = snapBits();
const bytes = () => JSON.stringify(cg.cuda.memory().map((d) => d.bytes));
const mem0 = bytes();
const err = (f) => { try { f(); return null; } catch (x) { return { name: x.name, code: x.code }; } };
const B = new Float32Array(N * 4).fill(0.5), A = new Float32Array(4 * K).fill(0.25);
const shape = err(() => cg.lowRankUpdate(w, B, new Float32Array(4 * K + 1)));
const nan = err(() => cg.lowRankUpdate(w, B, A, { alpha: NaN }));
const pending = cg.linearAsync(new Float32Array(3 * K).fill(1), [3, K], w);
const busy = err(() => cg.lowRankUpdate(w, B, A));
await pending;
const same = JSON.stringify(snapBits()) === JSON.stringify(before) && bytes() === mem0;
w.dispose();
const disposed = err(() => cg.lowRankUpdate(w, B, A));
out({ shape, nan, busy, same, disposed });
`);
  expect(v.shape).toMatchObject({ name: 'RangeError', code: 'ERR_SHAPE_MISMATCH' });
  expect(v.nan).toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_ARG' });
  expect(v.busy).toMatchObject({ code: 'ERR_BUSY' });
  expect(v.same).toBe(true);
  expect(v.disposed).toMatchObject({ code: 'ERR_DISPOSED' });
});
