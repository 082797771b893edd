/**
 * Results the caller did not provide (no `out`): linear and linearAsync write into a new unfilled
 * array that only the library holds until the call is done (lib/ops/linear.ts, outPrivate in
 * native/binding/cpu/linear.cc), so an async call neither fills nor copies a result on the event
 * loop; and async calls wait for free cores before they run (CoreLease,
 * native/cpu/runtime/thread_pool.h).
 *
 * The numerics of the kernels are checked against float64 references in the linear.* suites,
 * into caller-provided `out` arrays poisoned with NaN. Here the results without `out` must be
 * bit-identical to those (same kernel, ISA and threads). The child sets
 * COMPRESSED_GEMM_POISON_RESULTS=1, so the unfilled arrays are NaN-filled before their kernel
 * runs too: an element a kernel skips shows as a mismatch.
 */
import * as cg from '../lib';
import { describeChild, runChild } from './helpers/child';
import { mulberry32, randomFloat32, seedFor, seedNote } from './helpers/reference';

test('every format and out dtype, sync and async: the result is a fresh array of its dtype, equal bit for bit to the result in a poisoned out', () => {
  const seed = seedFor('fresh result');
  const script = `
function rnd(seed) { let a = seed >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; }
const r = rnd(${seed});
const N = 72, K = 256;
const w = new Float32Array(N * K).map(() => r() * 2 - 1);
const weights = {
  'dense f32': [cg.DenseWeight.from(w, [N, K]), 'native'],
  'dense bf16': [cg.DenseWeight.from(w, [N, K], { dtype: 'bfloat16' }), 'native'],
  '2:4 f16': [cg.Sparse24Weight.prune(w, [N, K], { dtype: 'float16' }), 'native'],
  'int4': [cg.Int4Weight.quantize(w, [N, K], { groupSize: 128 }), 'native'],
  'int4 a8': [cg.Int4Weight.quantize(w, [N, K], { groupSize: 128 }), 'int8'],
  'fp8': [cg.Fp8Weight.quantize(w, [N, K], { format: 'e4m3' }), 'native'],
};
const failures = [];
let checked = 0;
for (const [name, [weight, activations]] of Object.entries(weights)) {
  for (const outDtype of ['float32', 'float16', 'bfloat16']) {
    for (const M of [1, 7, 33]) {
      const x = new Float32Array(M * K).map(() => r() * 2 - 1);
      const bias = new Float32Array(N).map(() => r() - 0.5);
      const ref = outDtype === 'float32' ? new Float32Array(M * N).fill(NaN) : new Uint16Array(M * N).fill(0x7fc1);
      cg.linear(x, [M, K], weight, { bias, outDtype, out: ref, activations });
      const results = { sync: cg.linear(x, [M, K], weight, { bias, outDtype, activations }), async: await cg.linearAsync(x, [M, K], weight, { bias, outDtype, activations }) };
      for (const [mode, y] of Object.entries(results)) {
        const what = mode + ' ' + name + ' out ' + outDtype + ' M=' + M;
        const type = outDtype === 'float32' ? Float32Array : Uint16Array;
        if (!(y instanceof type)) failures.push(what + ': a ' + y.constructor.name);
        if (y.length !== M * N || y.byteOffset !== 0 || y.buffer.byteLength !== y.byteLength) failures.push(what + ': not a whole buffer of its own');
        const a = new Uint8Array(y.buffer, y.byteOffset, y.byteLength), b = new Uint8Array(ref.buffer);
        const bad = a.findIndex((v, i) => v !== b[i]);
        if (bad >= 0 || a.length !== b.length) failures.push(what + ': differs from the result in a poisoned out at byte ' + bad);
        if (outDtype === 'float32' && y.some(Number.isNaN)) failures.push(what + ': NaN in the result');
        checked++;
      }
    }
  }
}
// The result belongs to the caller like any other array: its buffer can be transferred, and its
// contents move with it.
const y = await cg.linearAsync(new Float32Array(3 * K).fill(0.5), [3, K], weights['dense f32'][0]);
const before = Array.from(y);
const moved = new Float32Array(structuredClone(y.buffer, { transfer: [y.buffer] }));
out({ failures, checked, transferred: y.length === 0 && moved.length === before.length && moved.every((v, i) => Object.is(v, before[i])) });
`;
  const r = runChild(script, { COMPRESSED_GEMM_POISON_RESULTS: '1' });
  if (r.status !== 0 || r.error) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}; ${seedNote(seed)}`);
  expect(r.value).toEqual({ failures: [], checked: 2 * 6 * 3 * 3, transferred: true });
});

test('an async call asking for more threads than there are cores runs on all of them, and calls of mixed claims all finish', async () => {
  const seed = seedFor('core lease');
  const rng = mulberry32(seed);
  const N = 40;
  const K = 96;
  const w = cg.DenseWeight.from(randomFloat32(rng, N * K), [N, K]);
  const x = randomFloat32(rng, 5 * K);
  const expected = cg.linear(x, [5, K], w, { threads: 1 }) as Float32Array;
  // 1024 threads is clamped to the machine's cores; a claim larger than the machine would wait forever.
  const claims = [1024, 1, 2, 1, 1024, 3, 1, 1024];
  const results = await Promise.all(claims.map((threads) => cg.linearAsync(x, [5, K], w, { threads })));
  results.forEach((y, i) => {
    // Same kernel and ISA on any number of threads: each output element is computed by one thread.
    expect({ call: i, threads: claims[i], same: (y as Float32Array).every((v, j) => v === expected[j]), seed: seedNote(seed) })
      .toEqual({ call: i, threads: claims[i], same: true, seed: seedNote(seed) });
  });
});
