/**
 * The async calls' staging buffers (native/binding/staging.h): what linearAsync copies when it is
 * called (x, the bias) and the buffer it writes before the result goes into the caller's `out`
 * are recycled, not allocated per call (a fresh block's page faults made the copy of x on the JS
 * thread cost as much as an INT4 call on a virtual machine). Checked here: the buffers are
 * reused, the cache stays within its bound, and a recycled buffer that last held another call's
 * data (a larger x, other values) gives results equal to the float64 reference.
 */
import * as cg from '../lib';
import { loadCpuAddon } from '../lib/native/load';
import { checkLinear, linearRef, mulberry32, randomFloat32, seedFor, seedNote } from './helpers/reference';

const addon = loadCpuAddon().addon!;
const CACHE_BOUND = 64 * 2 ** 20; // kStagingCacheBytes

const f64 = (a: Float32Array) => Float64Array.from(a);

describe('async staging buffers', () => {
  test('serial linearAsync calls take every copy and result buffer from the cache after the first', async () => {
    const rng = mulberry32(seedFor('staging-reuse'));
    const [M, N, K] = [64, 96, 1024]; // x: 256 KiB, past malloc's mmap threshold
    const w = cg.DenseWeight.from(randomFloat32(rng, N * K), [N, K]);
    const x = randomFloat32(rng, M * K);
    const bias = randomFloat32(rng, N);
    const out = new Float32Array(M * N);
    await cg.linearAsync(x, [M, K], w, { bias, out }); // fills the cache for these sizes
    const s0 = addon.stagingStats();
    const calls = 5;
    for (let i = 0; i < calls; i++) await cg.linearAsync(x, [M, K], w, { bias, out });
    const s1 = addon.stagingStats();
    // Each call: x, the bias and the result buffer (the caller gave `out`).
    expect(s1.taken - s0.taken).toBe(3 * calls);
    expect(s1.reused - s0.reused).toBe(3 * calls);
    expect(s1.idleBytes).toBeLessThanOrEqual(CACHE_BOUND);
    w.dispose();
  });

  test('concurrent calls with 12 MiB inputs keep at most 64 MiB idle, and every result is right', async () => {
    const seed = seedFor('staging-bound');
    const rng = mulberry32(seed);
    const [M, N, K] = [768, 2, 4096]; // x: 12 MiB, in the 16 MiB size class
    const w = randomFloat32(rng, N * K);
    const weight = cg.DenseWeight.from(w, [N, K]);
    // Eight different inputs from one random array: x_i = base * 2^(i - 4), exact, so call i's
    // reference is the base's times the same power of two, exactly.
    const base = randomFloat32(rng, M * K);
    const xs = Array.from({ length: 8 }, (_, i) => base.map((v) => v * 2 ** (i - 4)));
    const ys = await Promise.all(xs.map((x) => cg.linearAsync(x, [M, K], weight)));
    const s = addon.stagingStats();
    expect(s.idleBytes).toBeLessThanOrEqual(CACHE_BOUND);
    expect(s.idleBuffers).toBeGreaterThan(0);
    // Float32 products summed in float32: checkLinear's bound (helpers/reference.ts).
    const { ref, absSum } = linearRef(f64(base), f64(w), null, M, N, K);
    ys.forEach((y, i) => {
      const scale = 2 ** (i - 4);
      const r = ref.map((v) => v * scale), a = absSum.map((v) => v * scale);
      expect(checkLinear(y as Float32Array, 'float32', r, a, M, N, K, `call ${i}, ${seedNote(seed)}`)).toBeNull();
    });
    weight.dispose();
  });

  test('a recycled buffer that held a larger x and other values gives the reference result', async () => {
    const seed = seedFor('staging-recycled');
    const rng = mulberry32(seed);
    const N = 40, K = 1000;
    const w = randomFloat32(rng, N * K);
    const bias = randomFloat32(rng, N);
    const weight = cg.DenseWeight.from(w, [N, K]);
    // Rows 70 then 41: both x copies fall in the 512 KiB class (280 and 164 KB), so the second
    // call reads a buffer whose tail still holds the first call's rows; with `out`, the result
    // buffer of the second call (6.6 KB) is the first call's (11.2 KB, one 16 KiB class).
    for (const M of [70, 41, 70, 41]) {
      const x = randomFloat32(rng, M * K);
      const out = new Float32Array(M * N).fill(NaN);
      await cg.linearAsync(x, [M, K], weight, { bias, out });
      const { ref, absSum } = linearRef(f64(x), f64(w), f64(bias), M, N, K);
      expect(checkLinear(out, 'float32', ref, absSum, M, N, K, `M = ${M}, ${seedNote(seed)}`)).toBeNull();
    }
    weight.dispose();
  });
});
