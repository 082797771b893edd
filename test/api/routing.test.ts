/**
 * The routing table (lib/backends/routing.ts) as cg.backend().routes reports it is what the calls
 * do: every (op, format, activations) row that runs somewhere gives a result equal to the float64
 * reference of the same call on the dequantized weight (loosely: this file checks routing, the
 * numerics files check bounds), and every row that runs nowhere throws ERR_NOT_SUPPORTED with
 * the row's reason, synchronously and as a rejection, leaving `out` untouched.
 */
import * as cg from '../../lib';
import { expectRejectsCode, expectThrowsCode } from '../helpers/expect-error';
import { decode, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const N = 24;
const K = 64;
const M = 3;
const seed = seedFor('routing');
const rng = mulberry32(seed);
const W = Float32Array.from({ length: N * K }, () => randNonZero(rng));
const X = Float32Array.from({ length: M * K }, () => randNonZero(rng));
const A = Float32Array.from({ length: 2 * K }, () => randNonZero(rng) / 8);
const B = Float32Array.from({ length: N * 2 }, () => randNonZero(rng) / 8);

const WEIGHTS: Record<cg.WeightFormat, (dtype: cg.FloatDType) => cg.Weight> = {
  dense: (dtype) => cg.DenseWeight.from(W, [N, K], { dtype }),
  '2:4': (dtype) => cg.Sparse24Weight.prune(W, [N, K], { dtype }),
  int4: () => cg.Int4Weight.quantize(W, [N, K], { groupSize: 32 }),
  fp8: () => cg.Fp8Weight.quantize(W, [N, K]),
};

/** float64 X Wᵀ (+ alpha (X Aᵀ) Bᵀ) on the weight as it dequantizes. */
function reference(w: cg.Weight, lora: boolean): Float64Array {
  const dense = w.toDense();
  const wd = w.dtype === 'float32' || w.format === 'int4' || w.format === 'fp8' ? (dense as Float32Array) : decode(dense as Uint16Array, w.dtype);
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; ++m) {
    const t = [0, 0];
    if (lora) for (let j = 0; j < 2; ++j) for (let k = 0; k < K; ++k) t[j] += X[m * K + k] * A[j * K + k];
    for (let n = 0; n < N; ++n) {
      let s = 0;
      for (let k = 0; k < K; ++k) s += X[m * K + k] * wd[n * K + k];
      if (lora) s += 0.5 * (t[0] * B[n * 2] + t[1] * B[n * 2 + 1]);
      y[m * N + n] = s;
    }
  }
  return y;
}

const routes = cg.backend().routes.filter((r) => r.op !== 'lowRankUpdate');

test('the table lists every (op, format, activations, dtype) of linear once', () => {
  const keys = routes.flatMap((r) => (r.dtypes ?? ['any']).map((d) => `${r.op}/${r.format}/${r.activations}/${d}`));
  expect(new Set(keys).size).toBe(keys.length);
  // dense and 2:4 native are one row per dtype class (float16/bfloat16: tensor cores; float32:
  // the CUDA cores for dense, the CPU kernels for 2:4), for linear and for linear+lora
  expect(routes.length).toBe(2 * (4 * 3 + 2));
  for (const r of routes) expect(typeof r.note).toBe('string');
});

describe.each(routes.map((r) => [`${r.op} ${r.format} ${r.activations}${r.dtypes ? ` ${r.dtypes.join('/')}` : ''}`, r] as const))('%s', (_label, r) => {
  const options = (out?: Float32Array): cg.LinearOptions => ({
    activations: r.activations,
    ...(r.op === 'linear+lora' ? { lora: { A, B, alpha: 0.5 } } : {}),
    ...(out ? { out } : {}),
  });
  if (r.runsOn === null) {
    test(`runs nowhere: ERR_NOT_SUPPORTED naming why (${r.note})`, async () => {
      const w = WEIGHTS[r.format](r.dtypes?.[0] ?? 'float32');
      const out = new Float32Array(M * N).fill(7);
      const e = expectThrowsCode(() => cg.linear(X, [M, K], w, options(out)), Error, 'ERR_NOT_SUPPORTED');
      expect(e.message).toContain(r.note);
      expect(Array.from(out)).toEqual(new Array(M * N).fill(7));
      await expectRejectsCode(() => cg.linearAsync(X, [M, K], w, options()), Error, 'ERR_NOT_SUPPORTED');
    });
  } else {
    test(`runs on ${r.runsOn}: every output written and near the float64 reference`, async () => {
      const w = WEIGHTS[r.format](r.dtypes?.[0] ?? 'float32');
      const ref = reference(w, r.op === 'linear+lora');
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      // Routing, not accuracy: quantized activations (fp8: 2^-4 relative per element, int8: 1/254 of
      // the row's max) move each output by far less than a tenth of the largest.
      const tol = 0.1 * scale;
      for (const y of [cg.linear(X, [M, K], w, options(new Float32Array(M * N).fill(NaN))), await cg.linearAsync(X, [M, K], w, options())]) {
        for (let i = 0; i < M * N; ++i) {
          if (!(Math.abs((y as Float32Array)[i] - ref[i]) <= tol)) {
            throw new Error(`${_label}: y[${i}] = ${(y as Float32Array)[i]}, reference ${ref[i]} (tolerance ${tol}); ${seedNote(seed)}`);
          }
        }
      }
    });
  }
});
