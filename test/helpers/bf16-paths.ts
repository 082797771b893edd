/**
 * Checks shared by the suites of the bfloat16 paths (linear.amx.test.ts: the AMX tiles;
 * linear.bf16dot.test.ts: the AVX512-BF16 engine), which multiply the same decoded weight
 * tiles: exact results through identity weights, every FP8 code, and non-finite x.
 */
import * as cg from '../../lib';
import { fp8WeightRef, int4WeightRef, type QuantWeightRef } from './act-reference';
import { loraLinearRef, randomFactors } from './lowrank-reference';
import { diffF32, fp8DecodeRef, int4QuantizeRef, packNibbles } from './quant-reference';
import { decode, encode, mulberry32, poisoned, randInt, randomFloat32, seedFor, seedNote } from './reference';

/**
 * A random float32 weight [N, K] quantized to INT4 (asymmetric, float32 scales; groupSize -1:
 * per channel) by the library and by the test reference, whose toDense() must agree: the
 * weight and its float64 reference.
 */
export function randomInt4Weight(rng: () => number, N: number, K: number, groupSize: 32 | 64 | 128 | -1, seed: number): { w: cg.Int4Weight; ref: QuantWeightRef } {
  const group = groupSize === -1 ? K : groupSize;
  const data = randomFloat32(rng, N * K);
  const q = int4QuantizeRef(data, N, K, group, false, 'float32');
  if (!('q' in q)) throw new Error(`test data refused by the reference: ${JSON.stringify(q)}`);
  const ref = int4WeightRef(q.q, q.scales, q.zeros, N, K, K / group, null);
  const w = cg.Int4Weight.quantize(data, [N, K], { groupSize, symmetric: false, scaleDtype: 'float32' });
  expect(diffF32(w.toDense(), Float32Array.from(ref.dense), K, `int4 [${N}, ${K}]; ${seedNote(seed)}`)).toBeNull();
  return { w, ref };
}

/** The same for FP8 (scaling 'channel' or a block [bn, bk]). */
export function randomFp8Weight(rng: () => number, N: number, K: number, fmt: 'e4m3' | 'e5m2', scaling: 'channel' | readonly [number, number], seed: number): { w: cg.Fp8Weight; ref: QuantWeightRef } {
  const [bn, bk] = scaling === 'channel' ? [1, K] : scaling;
  const data = randomFloat32(rng, N * K);
  const { ref } = fp8WeightRef(data, N, K, bn, bk, fmt);
  const w = cg.Fp8Weight.quantize(data, [N, K], { format: fmt, scaling: scaling === 'channel' ? 'channel' : { block: [bn, bk] } });
  expect(diffF32(w.toDense(), Float32Array.from(ref.dense), K, `fp8 [${N}, ${K}]; ${seedNote(seed)}`)).toBeNull();
  return { w, ref };
}

/** The INT4 identity [K, K] (code 1 on the diagonal, zero point 0, scale 1), checked through toDense(). */
export function int4Identity(K: number): cg.Int4Weight {
  const q = new Uint8Array(K * K);
  for (let n = 0; n < K; n++) q[n * K + n] = 1;
  const w = cg.Int4Weight.fromCanonical({ qweight: packNibbles(q, K, K), scales: new Float32Array(K * 2).fill(1), zeros: new Uint8Array(K * 2) }, [K, K]);
  const eye = new Float32Array(K * K);
  for (let n = 0; n < K; n++) eye[n * K + n] = 1;
  expect(diffF32(w.toDense(), eye, K, 'int4 identity')).toBeNull();
  return w;
}

/**
 * Through an identity weight (N = K) y must be x bit for bit, sync and async: x with every
 * significand bit random, magnitudes 2^-20 .. 2^20 (finite in each dtype: float16 2^-14 .. 2^15).
 */
export async function expectIdentity(w: cg.Int4Weight | cg.DenseWeight, M: number, K: number, xd: 'float32' | 'float16' | 'bfloat16', label: string): Promise<void> {
  const seed = seedFor(label);
  const rng = mulberry32(seed);
  const v = new Float64Array(M * K);
  const lo = xd === 'float16' ? -14 : -20;
  const hi = xd === 'float16' ? 15 : 20;
  for (let i = 0; i < v.length; i++) v[i] = (rng() < 0.5 ? -1 : 1) * (1 + rng()) * 2 ** (lo + randInt(rng, hi - lo));
  const x = encode(v, xd);
  const want = decode(x, xd);
  const opts: cg.LinearOptions = { outDtype: 'float32', out: poisoned('float32', M * K) as Float32Array };
  if (xd !== 'float32') opts.dtype = xd;
  const y = cg.linear(x, [M, K], w, opts) as Float32Array;
  const y2 = (await cg.linearAsync(x, [M, K], w, { ...opts, out: poisoned('float32', M * K) as Float32Array })) as Float32Array;
  const bad: string[] = [];
  for (let i = 0; i < M * K && bad.length < 5; i++) {
    if (y[i] !== want[i] || y2[i] !== want[i]) bad.push(`y[${Math.floor(i / K)}][${i % K}] = ${y[i]} / ${y2[i]} (async), x = ${want[i]}`);
  }
  expect(`${bad.join('\n')}; ${seedNote(seed)}`).toBe(`; ${seedNote(seed)}`);
}

/**
 * x (M x K, at least 21 rows and 61 columns) through an identity weight, with +Inf at [3][5],
 * -Inf at [7][60] and NaN at [20][33] (set here): IEEE in their own rows (the infinity in its
 * own column, Inf * 0 = NaN in the others, NaN everywhere), and no other row changes.
 */
export function expectNonFiniteRows(x: Float64Array, M: number, K: number, w: cg.Int4Weight, xd: 'float32' | 'bfloat16', seed: number): void {
  x[3 * K + 5] = Infinity;
  x[7 * K + 60] = -Infinity;
  x[20 * K + 33] = NaN;
  const xe = encode(x, xd);
  // poisoned with a finite value, not NaN: the rows that must come out NaN would hide an
  // unwritten element behind a NaN poison
  const opts: cg.LinearOptions = { outDtype: 'float32', out: new Float32Array(M * K).fill(-7.25e30) };
  if (xd !== 'float32') opts.dtype = xd;
  const y = cg.linear(xe, [M, K], w, opts) as Float32Array;
  const v = decode(xe, xd);
  const bad: string[] = [];
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < K; n++) {
      const got = y[m * K + n];
      let want: number = v[m * K + n];
      if (m === 3) want = n === 5 ? Infinity : NaN;
      if (m === 7) want = n === 60 ? -Infinity : NaN;
      if (m === 20) want = NaN;
      if (!Object.is(got, want) && !(Number.isNaN(got) && Number.isNaN(want)) && !(got === 0 && want === 0) && bad.length < 5) bad.push(`y[${m}][${n}] = ${got}, want ${want}`);
    }
  }
  expect(`${bad.join('\n')}; ${seedNote(seed)}`).toBe(`; ${seedNote(seed)}`);
}

/**
 * W [32, 64] holds each finite FP8 code at least 8 times (tensor scale 1); x = the 64 x 64
 * identity (in dtype xd), so y[m][n] = W[n][m]: one exact product per output, no rounding
 * anywhere, so every entry of the decoder's tables is checked.
 */
export function expectFp8CodesExact(fmt: 'e4m3' | 'e5m2', xd: 'float32' | 'bfloat16'): void {
  const [N, K, M] = [32, 64, 64];
  const ok = Array.from({ length: 256 }, (_, c) => c).filter((c) => Number.isFinite(fp8DecodeRef(c, fmt)));
  const codes = Uint8Array.from({ length: N * K }, (_, i) => ok[(i * 37) % ok.length]);
  const w = cg.Fp8Weight.fromCodes({ codes, scales: 1 }, [N, K], { format: fmt, scaling: 'tensor' });
  const x = new Float32Array(M * K);
  for (let m = 0; m < M; m++) x[m * K + m] = 1;
  const opts: cg.LinearOptions = { outDtype: 'float32', out: poisoned('float32', M * N) as Float32Array };
  if (xd !== 'float32') opts.dtype = xd;
  const y = cg.linear(encode(x, xd), [M, K], w, opts) as Float32Array;
  const bad: string[] = [];
  for (let m = 0; m < M && bad.length < 5; m++)
    for (let n = 0; n < N && bad.length < 5; n++) {
      const c = codes[n * K + m];
      if (y[m * N + n] !== fp8DecodeRef(c, fmt)) bad.push(`code 0x${c.toString(16)}: ${y[m * N + n]}, want ${fp8DecodeRef(c, fmt)}`);
    }
  expect(bad).toEqual([]);
}

/**
 * Two LoRA adapters (rank 8 float32 with alpha 0.5, rank 16 bfloat16) and each of M rows taking
 * one of them or none (-1) at random, with the float64 reference of linearMultiLora over the
 * weight's reference and x64 (x as the kernel reads it).
 */
export function twoAdapters(rng: () => number, M: number, N: number, K: number, x64: Float64Array, ref: QuantWeightRef, bias: Float32Array) {
  const f = [randomFactors(rng, N, K, 8, 'float32'), randomFactors(rng, N, K, 16, 'bfloat16')];
  const adapters: cg.LoraFactors[] = [{ A: f[0].A, B: f[0].B, alpha: 0.5 }, { A: f[1].A, B: f[1].B, dtype: 'bfloat16' }];
  const idx = Int32Array.from({ length: M }, () => randInt(rng, 3) - 1);
  const lref = loraLinearRef(x64, x64, M, N, K, ref.dense, ref.absFactor, bias, [
    { A64: f[0].A64, B64: f[0].B64, r: 8, alpha: 0.5 },
    { A64: f[1].A64, B64: f[1].B64, r: 16, alpha: 1 },
  ], idx);
  return { adapters, idx, lref };
}
