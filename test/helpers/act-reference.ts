/**
 * Test-side references for cg.linear with quantized weights (INT4, FP8) and quantized
 * activations ('int8', 'fp8'), written from the documented rules (native/cpu/act_quant.h for the
 * activations, native/common/quant_format.h and fp8.h for the weights), independently of the
 * library; and the error bound of the quantized kernels (see quantBound).
 *
 * Nothing here imports the library: a bug shared by the library and its reference would hide.
 */
import { FP8, Fp8Fmt, fp8DecodeRef, fp8EncodeRef } from './quant-reference';
import { DType, decode, outRounding } from './reference';

// ---- activations ---------------------------------------------------------------------------

/** Round half to even of a float64 that holds a float32 value (v - floor(v) is then exact). */
export function rheRef(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1; // (-3 % 2 is -1: odd, so -3 + 1 = -2, the even neighbour)
}

/**
 * 'int8' activations (act_quant.h), per row of x [M, K] (exact values, e.g. decode() of the
 * float32/float16/bfloat16 input): s = fround(amax / 127), 1 when that is not > 0 (an all-zero
 * row); q = clamp(rhe(fround(x / s)), -127, 127). JS divides in float64 and fround rounds once
 * more: for float32 operands that double rounding of a quotient is innocuous (53 >= 2 * 24 + 2),
 * so fround(x / s) is the float32 division. Returns the codes, the row scales, and the values
 * the product uses, x' = q * s, exactly (as float64: an 8-bit times a 24-bit significand).
 */
export function actInt8Ref(x: ArrayLike<number>, M: number, K: number): { q: Int8Array; scale: Float64Array; xq: Float64Array } {
  const fr = Math.fround;
  const q = new Int8Array(M * K);
  const scale = new Float64Array(M);
  const xq = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    let amax = 0;
    for (let k = 0; k < K; k++) {
      const a = x[m * K + k] < 0 ? -x[m * K + k] : x[m * K + k];
      if (a > amax) amax = a;
    }
    let s = fr(amax / 127);
    if (!(s > 0)) s = 1;
    scale[m] = s;
    for (let k = 0; k < K; k++) {
      const v = Math.min(127, Math.max(-127, rheRef(fr(x[m * K + k] / s))));
      q[m * K + k] = v;
      xq[m * K + k] = v * s;
    }
  }
  return { q, scale, xq };
}

/**
 * 'fp8' activations (act_quant.h), per row, or per row and K block of `block` columns (block 0:
 * one unit per row; the last block of a row may be shorter): s = fround(amax / 448), 1 when not
 * > 0; code = the e4m3 encoding (round to nearest even, saturating at +-448; quant-reference's
 * table-bisection encoder) of fround(x / s); x' = fround(decode(code) * s), the one float32
 * rounding the documentation promises (decode(code) * s itself is exact in float64: a 4-bit
 * times a 24-bit significand).
 */
export function actFp8Ref(x: ArrayLike<number>, M: number, K: number, block: number): Float64Array {
  const fr = Math.fround;
  const unit = block > 0 ? block : K;
  const xq = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k0 = 0; k0 < K; k0 += unit) {
      const k1 = Math.min(K, k0 + unit);
      let amax = 0;
      for (let k = k0; k < k1; k++) {
        const a = x[m * K + k] < 0 ? -x[m * K + k] : x[m * K + k];
        if (a > amax) amax = a;
      }
      let s = fr(amax / FP8.e4m3.max);
      if (!(s > 0)) s = 1;
      for (let k = k0; k < k1; k++) {
        const code = fp8EncodeRef(fr(x[m * K + k] / s), 'e4m3');
        xq[m * K + k] = fr(fp8DecodeRef(code, 'e4m3') * s);
      }
    }
  }
  return xq;
}

// ---- weights -------------------------------------------------------------------------------

/**
 * What the linear reference needs of a quantized weight:
 *   dense      [N, K] the dequantized weight (the float32 values toDense() documents), float64;
 *   absFactor  [N, K] the magnitude each product's rounding scales with (quantBound):
 *              INT4: s_g (q + z_g), the codes as the kernels multiply them before the zero
 *              point is taken off; FP8: |decode(code)| * s (= |w| before its float32 rounding);
 *   extra      the count of roundings beyond K in the bound: INT4 2G + 4, FP8 SC + 3.
 */
export interface QuantWeightRef {
  N: number;
  K: number;
  dense: Float64Array;
  absFactor: Float64Array;
  extra: number;
}

/**
 * INT4 (canonical codes q [N, K] 0..15, scale values [N, G], zeros [N, G] or null for 8, gIdx
 * or null): w = fround((q - z) s) with k's group gIdx[k] or floor(k / (K / G)).
 */
export function int4WeightRef(
  q: Uint8Array,
  scales: ArrayLike<number>,
  zeros: ArrayLike<number> | null,
  N: number,
  K: number,
  G: number,
  gIdx: ArrayLike<number> | null,
): QuantWeightRef {
  const group = K / G;
  const dense = new Float64Array(N * K);
  const absFactor = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = gIdx ? gIdx[k] : Math.floor(k / group);
      const z = zeros ? zeros[n * G + g] : 8;
      const s = scales[n * G + g];
      dense[n * K + k] = Math.fround((q[n * K + k] - z) * s);
      absFactor[n * K + k] = s * (q[n * K + k] + z);
    }
  }
  return { N, K, dense, absFactor, extra: 2 * G + 4 };
}

/**
 * Fp8Weight.quantize as documented (quant_format.h fp8_quantize): per unit of bn x bk (the
 * last ones cut by N and K) s = fround(amax / max(format)), 1 for an all-zero unit; code =
 * encode(fround(w / s)). Returns the codes, the scales [ceil(N/bn), ceil(K/bk)] and the weight
 * reference (dense = fround(decode(code) * s)).
 */
export function fp8WeightRef(
  w: Float32Array,
  N: number,
  K: number,
  bn: number,
  bk: number,
  fmt: Fp8Fmt,
): { codes: Uint8Array; scales: Float32Array; ref: QuantWeightRef } {
  const fr = Math.fround;
  const SR = Math.ceil(N / bn);
  const SC = Math.ceil(K / bk);
  const codes = new Uint8Array(N * K);
  const scales = new Float32Array(SR * SC);
  for (let br = 0; br < SR; br++) {
    for (let bc = 0; bc < SC; bc++) {
      const n1 = Math.min(N, (br + 1) * bn);
      const k1 = Math.min(K, (bc + 1) * bk);
      let amax = 0;
      for (let n = br * bn; n < n1; n++) for (let k = bc * bk; k < k1; k++) amax = Math.max(amax, Math.abs(w[n * K + k]));
      let s = fr(amax / FP8[fmt].max);
      if (s === 0) s = 1;
      scales[br * SC + bc] = s;
      for (let n = br * bn; n < n1; n++) for (let k = bc * bk; k < k1; k++) codes[n * K + k] = fp8EncodeRef(fr(w[n * K + k] / s), fmt);
    }
  }
  return { codes, scales, ref: fp8CodesRef(codes, scales, N, K, bn, bk, fmt) };
}

/** The weight reference of FP8 codes [N, K] with scales [ceil(N/bn), ceil(K/bk)]. */
export function fp8CodesRef(codes: Uint8Array, scales: ArrayLike<number>, N: number, K: number, bn: number, bk: number, fmt: Fp8Fmt): QuantWeightRef {
  const SC = Math.ceil(K / bk);
  const dense = new Float64Array(N * K);
  const absFactor = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const v = fp8DecodeRef(codes[n * K + k], fmt) * scales[Math.floor(n / bn) * SC + Math.floor(k / bk)];
      dense[n * K + k] = Math.fround(v);
      absFactor[n * K + k] = Math.abs(v);
    }
  }
  return { N, K, dense, absFactor, extra: SC + 3 };
}

// ---- the linear reference and its bound ------------------------------------------------------

/**
 * y = x' . w^T (+ bias) in float64, x' [M, K] the activations the product uses (the input, or
 * its quantized values from actInt8Ref / actFp8Ref), w the weight reference; and per output
 * S = sum_k |x'_k| absFactor[n][k] + |b_n|, what quantBound scales with.
 */
export function quantLinearRef(
  x: Float64Array,
  M: number,
  w: QuantWeightRef,
  bias: ArrayLike<number> | null,
): { ref: Float64Array; absSum: Float64Array } {
  const { N, K, dense, absFactor } = w;
  const ref = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const xv = x[xo + k];
        s += xv * dense[wo + k];
        a += (xv < 0 ? -xv : xv) * absFactor[wo + k]; // (not Math.abs: slow inside jest's vm)
      }
      if (bias) {
        s += bias[n];
        a += bias[n] < 0 ? -bias[n] : bias[n];
      }
      ref[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { ref, absSum };
}

/**
 * THE ERROR BOUND of the quantized kernels, u = 2^-24, gamma_n = n u / (1 - n u):
 *
 *   |y - ref| <= c (K + extra) u S + r_out (|ref| + c (K + extra) u S) + a_out,   c = 2,
 *
 * with S = quantLinearRef's absSum and (r_out, a_out) the output dtype's rounding (as
 * reference.ts's errorBound: 0 for float32, 2^-11 / 2^-25 for float16, 2^-8 / 2^-134 for
 * bfloat16). Derivation (x' the activations the product uses, exact; w_k = fround(d_k s) the
 * dequantized weight, d_k = q_k - z INT4 or decode(code_k) FP8; ref = sum x'_k w_k;
 * E = sum x'_k d_k s, the product with unrounded weights):
 *
 * (0) |E - ref| <= u sum |x'_k| |d_k| s <= u S, since |d_k| <= q_k + z (INT4) and |d_k| s is
 *     FP8's absFactor.
 * INT4, extra = 2G + 4 (G groups of g columns):
 * (1) direct kernels (M <= 8, AVX2/AVX-512): per group P = sum x q and X = sum x, float32 sums
 *     of g terms in any order (FMA chains, then the chains added): off by gamma_g sum |x| q and
 *     gamma_g sum |x|. Then acc = fma(P, s, acc) and acc = fma(-fl(s z), X, acc): a chain of 2G
 *     terms, each added with one rounding: gamma_2G times the sum of their magnitudes
 *     (<= (1 + gamma_g)(1 + u) S_g), and fl(s z) adds u s z |X|. Over all groups:
 *     (gamma_g + gamma_2G + u)(1 + O(K u)) S <= (g + 2G + 1) u S (1 + 2^-10) for K <= 2048.
 * (2) scalar: per group part = sum x (q - z), an inner product with rounded products: gamma_g
 *     sum |x| |q - z| (Higham 3.1); then acc += part * s, an inner product over the groups:
 *     gamma_G. Together <= (g + G + 1) u S.
 * (3) dequantized tiles (M > 8): the dense register tile on w_k itself, K float32 products
 *     summed in K blocks, in any order: gamma_K sum |x' w| <= K u S (1 + u).
 * (4) 'int8' with AVX512-VNNI: per group the int32 sums I = sum q_x q_w and X = sum q_x are exact
 *     (|I| <= 127 * 15 * 128 < 2^24, so their float32 conversion is exact too); the 2G fma
 *     chain as in (1) (gamma_2G), fl(s z) (u), and y = fma(acc, s_x, b) (u): (2G + 2) u S,
 *     with S in terms of x' = q_x s_x exactly.
 * (5) 'int8' on the float paths: x' is fround(q_x s_x), u |x'_k| from the exact q_x s_x the
 *     reference uses: u S more, on top of (1)-(3).
 * (6) the bias: one more rounding (u (|acc| + |b|)), and the sum itself <= S (1 + small).
 * Summing (0), the worst of (1)-(5), and (6): <= (K + 2G + 4) u S (1 + 2^-10). FP8, extra =
 * SC + 3 (SC = ceil(K / bk) K blocks; bk = K for tensor and channel scaling):
 * (1') direct: per block sum x c (c = decode(code), or decode * 2^-8 for e4m3, exact either
 *     way), gamma_bk; acc = fma(part, s (* 2^8, exact), acc) over SC blocks: gamma_SC;
 * (2') scalar: the same two inner products with rounded products: gamma_bk, then gamma_SC;
 * (3') dequantized tiles: gamma_K as (3).
 * With (0) and (6): <= (K + SC + 3) u S (1 + 2^-10). 'fp8' activations change nothing: x' is
 * reproduced bit for bit (actFp8Ref), and the kernels run on it as on native float32 input.
 * (7) AMX (ISA 'amx', isa/amx/quant_amx.cc; M >= 9, INT4 or FP8 scale blocks of whole 32-column
 *     tiles): x = x1 + x2 + x3 exactly, bfloat16 pieces (|x2| <= 2^-8 |x|, |x3| <= 2^-16 |x|), and
 *     every product x_p d exact. Per segment of b <= 512 columns of a block, the x1 products are
 *     one float32 sum (gamma_b), the x2 and x3 products another (gamma_2b of magnitudes <= 2^-7
 *     of S_b), the two added once (u); then acc = fma(part, s, acc) over at most K / 32 + SC
 *     segments. Together <= (K + K / 64 + K / 32 + SC + 2) u S, inside (3')'s K + SC + 3 with
 *     the margin of c below (the same bound as the FMA kernels: no allowance of its own).
 * (8) the AVX512-BF16 engine with 'fp8' activations, one scale s_x per row (quant_amx.cc): the
 *     products decode(code_k) d_k are exact, summed as in (7) with one piece (gamma_b per
 *     segment, fma(part, s, acc) over K / 32 + SC segments), then y = fround(s_x acc): u S more.
 *     The kernel's x'_k is decode(code_k) s_x exactly, not its float32 rounding, which is the
 *     reference's x'_k (actFp8Ref): u S more. Together <= (K + K / 32 + SC + 4) u S, inside
 *     (3')'s K + SC + 3 with the margin of c (linear.bf16dot.test.ts). With block-scaled
 *     activations (an FP8 weight's bk columns, scale s_x,b per row and block) the block's sum
 *     goes in as fma(part, fround(s_w s_x,b), acc) instead, and no final product: the factor's
 *     rounding is u per block in place of the final u, the same total.
 * c = 2 leaves a factor-2 margin over all the (1 + small) terms (K <= 1024 here).
 *
 * Why it still catches bugs: S counts the codes before the zero point comes off (s (q + z)
 * rather than |w| = s |q - z|), which makes it ~4x sum |x' w| for symmetric INT4 (z = 8) and
 * random codes: at K = 264, random x in [1/8, 2) and s ~ 0.27, S ~ 600 and the bound ~0.02,
 * while a wrong zero point in one group moves an output by s |sum_group x| (~1), a wrong group
 * scale by |s' - s| |sum_group x d|, and a wrong or missing column by |x w| (~0.3). The test
 * 'the checker rejects ...' in linear.quant.test.ts shows it on real kernel outputs.
 */
export const QUANT_BOUND_C = 2;

export function quantBound(ref: number, absSum: number, K: number, extra: number, outDtype: DType, c = QUANT_BOUND_C): number {
  const acc = c * (K + extra) * 2 ** -24 * absSum;
  const { rel, abs } = outRounding(outDtype);
  return acc + rel * (Math.abs(ref) + acc) + abs;
}

/** Outputs of y outside the bound: their count and a description of the first few. */
export function quantViolations(
  y: Float32Array | Uint16Array,
  outDtype: DType,
  ref: Float64Array,
  absSum: Float64Array,
  N: number,
  K: number,
  extra: number,
  c = QUANT_BOUND_C,
): { count: number; first: string[]; bad: Uint8Array } {
  const yd = decode(y, outDtype);
  const first: string[] = [];
  const bad = new Uint8Array(yd.length);
  let count = 0;
  for (let i = 0; i < yd.length; i++) {
    const bound = quantBound(ref[i], absSum[i], K, extra, outDtype, c);
    const d = yd[i] - ref[i];
    const err = d < 0 ? -d : d;
    if (!(err <= bound)) {
      count++;
      bad[i] = 1;
      if (first.length < 5) first.push(`  y[m=${Math.floor(i / N)}, n=${i % N}] = ${yd[i]}, reference ${ref[i]}, |err| ${err} > bound ${bound}`);
    }
  }
  return { count, first, bad };
}

/** null when every output is within quantBound, else a message naming the case and the first offenders. */
export function checkQuantLinear(
  y: Float32Array | Uint16Array,
  outDtype: DType,
  ref: Float64Array,
  absSum: Float64Array,
  M: number,
  N: number,
  K: number,
  extra: number,
  what: string,
  c = QUANT_BOUND_C,
): string | null {
  if (y.length !== M * N) return `${what}: result has ${y.length} elements, expected M*N = ${M * N}`;
  const { count, first } = quantViolations(y, outDtype, ref, absSum, N, K, extra, c);
  if (count === 0) return null;
  return `${what}: ${count} of ${M * N} outputs outside the error bound (M=${M} N=${N} K=${K}, extra ${extra}, out ${outDtype}, c=${c}):\n${first.join('\n')}`;
}
