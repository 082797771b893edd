/**
 * Test-side references for the quantized formats, written from the published specifications and
 * the documented rules, independently of lib/ and native/ (nothing here imports the library):
 *
 *   - FP8 (OCP 8-bit floating point, v1.0): a decoder that reads the bit fields, and an encoder
 *     that does NOT do bit arithmetic at all: it searches the sorted table of representable values
 *     and picks the nearest (ties to the even code), then applies the library's documented
 *     saturation rule. A shared bug in "the usual" shift-and-round code cannot hide this way.
 *   - INT4 round-to-nearest quantization, step by step in float32 (Math.fround after every
 *     operation), as native/common/quant_format.h documents it.
 *   - GPTQ (AutoGPTQ v1) and AWQ (AutoAWQ GEMM) packers, from their published layouts.
 *   - A float16 "round up" (the smallest float16 >= x) computed with ceil, not with a codec.
 */
import { f16ToNumber, numberToF16 } from './reference';

// ---- float32 helpers ---------------------------------------------------------------------

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The bits of the float32 nearest v. */
export function f32Bits(v: number): number {
  F32[0] = v;
  return U32[0];
}

/** The float32 whose bits are b. */
export function f32FromBits(b: number): number {
  U32[0] = b >>> 0;
  return F32[0];
}

/** The next float32 towards +inf / -inf of a finite float32 (works across zero and subnormals). */
export function nextUp32(v: number): number {
  if (v === 0) return 2 ** -149;
  const b = f32Bits(v);
  return f32FromBits(v > 0 ? b + 1 : b - 1);
}
export function nextDown32(v: number): number {
  return -nextUp32(-v);
}

/** floor(log2(a)) for a finite a > 0, exactly (no reliance on Math.log2's rounding). */
export function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/** Round half to even of a double (exact: floor and the difference are exact for doubles). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// ---- FP8 (OCP) ---------------------------------------------------------------------------

export type Fp8Fmt = 'e4m3' | 'e5m2';

export interface Fp8Spec {
  expBits: number;
  mantBits: number;
  bias: number;
  /** largest finite value */
  max: number;
  /** code of the largest finite positive value */
  maxCode: number;
  /** smallest positive subnormal */
  minSub: number;
}

/**
 * OCP 8-bit floating point, v1.0 (2023), table 1: E4M3 has bias 7, no infinities, NaN only at
 * S.1111.111, max 1.75 * 2^8 = 448; E5M2 is IEEE-like with bias 15, infinities S.11111.00,
 * NaNs S.11111.{01,10,11}, max 1.75 * 2^15 = 57344.
 */
export const FP8: Record<Fp8Fmt, Fp8Spec> = {
  e4m3: { expBits: 4, mantBits: 3, bias: 7, max: 448, maxCode: 0x7e, minSub: 2 ** -9 },
  e5m2: { expBits: 5, mantBits: 2, bias: 15, max: 57344, maxCode: 0x7b, minSub: 2 ** -16 },
};

/** The value of an FP8 code, read field by field from the spec. -0 for 0x80. */
export function fp8DecodeRef(code: number, fmt: Fp8Fmt): number {
  const { expBits, mantBits, bias } = FP8[fmt];
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> mantBits) & ((1 << expBits) - 1);
  const m = code & ((1 << mantBits) - 1);
  const eMax = (1 << expBits) - 1;
  if (fmt === 'e4m3' && e === eMax && m === (1 << mantBits) - 1) return NaN;
  if (fmt === 'e5m2' && e === eMax) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - mantBits); // subnormal (and +-0)
  return sign * (1 + m / 2 ** mantBits) * 2 ** (e - bias);
}

/** The positive finite values, ascending: index == code (0 .. maxCode). */
const TABLES: Record<Fp8Fmt, number[]> = {
  e4m3: Array.from({ length: FP8.e4m3.maxCode + 1 }, (_, c) => fp8DecodeRef(c, 'e4m3')),
  e5m2: Array.from({ length: FP8.e5m2.maxCode + 1 }, (_, c) => fp8DecodeRef(c, 'e5m2')),
};

export function fp8PositiveValues(fmt: Fp8Fmt): readonly number[] {
  return TABLES[fmt];
}

/**
 * The FP8 code of a (non-NaN) number: the nearest representable value, ties to the even code,
 * found by bisection in the value table; saturation as fp8.h documents it (e4m3: every |x| >
 * 448, infinities included, gives +-448; e5m2: finite |x| > 57344 gives +-57344, +-Inf stays).
 * The sign is kept (-0 and negative values that round to zero give 0x80). NaN gives 0x7f
 * (use fp8EncodeRefBits to get the sign of a NaN from its float32 bits).
 */
export function fp8EncodeRef(x: number, fmt: Fp8Fmt): number {
  if (Number.isNaN(x)) return 0x7f;
  const spec = FP8[fmt];
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | (fmt === 'e5m2' ? 0x7c : spec.maxCode);
  if (a >= spec.max) return sign | spec.maxCode;
  const t = TABLES[fmt];
  // t[lo] <= a < t[lo + 1]
  let lo = 0;
  let hi = t.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (t[mid] <= a) lo = mid;
    else hi = mid;
  }
  // The midpoint of two FP8 values has at most 5 significant bits: exact in a double, and so
  // is the comparison with the float32 a.
  const midpoint = (t[lo] + t[hi]) / 2;
  let code: number;
  if (a < midpoint) code = lo;
  else if (a > midpoint) code = hi;
  else code = lo % 2 === 0 ? lo : hi; // a tie: the even code (the one whose mantissa LSB is 0)
  return sign | code;
}

/** fp8EncodeRef of the float32 with these bits; a NaN keeps its sign bit (0x7f or 0xff). */
export function fp8EncodeRefBits(bits: number, fmt: Fp8Fmt): number {
  const v = f32FromBits(bits);
  if (Number.isNaN(v)) return (bits >>> 31 ? 0x80 : 0) | 0x7f;
  return fp8EncodeRef(v, fmt);
}

export function fp8IsNaNCode(code: number, fmt: Fp8Fmt): boolean {
  return Number.isNaN(fp8DecodeRef(code, fmt));
}

// ---- rounding up ---------------------------------------------------------------------------

/** The next float32 above a finite float32 x >= 0. */
export function nextUpF32(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1;
  return f[0];
}


/**
 * The smallest float16 value >= x for a float32 x >= 0 (x itself when exact), or Infinity when
 * that exceeds float16's largest finite value 65504. Computed with ceil at float16's spacing
 * (2^(e - 10) in binade e, 2^-24 below 2^-14), not with a float16 codec.
 */
export function f16CeilRef(x: number): number {
  if (x === 0) return 0;
  const e = Math.max(exponentOf(x), -14);
  const ulp = 2 ** (e - 10);
  const r = Math.ceil(x / ulp) * ulp; // x / ulp is exact (a power-of-two scaling)
  return r > 65504 ? Infinity : r;
}

// ---- INT4 --------------------------------------------------------------------------------

export type ScaleDt = 'float16' | 'float32';

export interface Int4Ref {
  /** [N, K] codes 0..15, one per byte (unpacked). */
  q: Uint8Array;
  /** [N, G] scale values (as stored: float16 or float32 values). */
  scales: Float64Array;
  /** [N, G] zero points, or null for symmetric (zero point 8). */
  zeros: Uint8Array | null;
}

/**
 * int4_quantize as quant_format.h documents it:
 *   range = 2 amax (symmetric) or hi - lo with lo = min(0, min w), hi = max(0, max w) (exact);
 *   s = the smallest float32 with 15 s >= range, then (float16 scales) the smallest float16 >= s;
 *   s = 1 when it is 0 (an all-zero group; also a group so tiny that s underflows to 0);
 *   z = 8 (symmetric) or clamp(rhe(fround(-lo / s)), 0, 15);
 *   q = clamp(rhe(fround(w / s)) + z, 0, 15).
 * Returns the reference, or { scaleOverflow: flat index of the group's first element } when a
 * scale is not finite (beyond float16, or beyond float32), or { notFinite: index }.
 */
export function int4QuantizeRef(
  w: Float32Array,
  N: number,
  K: number,
  group: number,
  symmetric: boolean,
  scaleDtype: ScaleDt,
): Int4Ref | { notFinite: number } | { scaleOverflow: number } {
  const fr = Math.fround;
  for (let i = 0; i < N * K; i++) if (!Number.isFinite(w[i])) return { notFinite: i };
  const G = K / group;
  const q = new Uint8Array(N * K);
  const scales = new Float64Array(N * G);
  const zeros = symmetric ? null : new Uint8Array(N * G);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const base = n * K + g * group;
      let lo = 0;
      let hi = 0;
      let amax = 0;
      for (let k = 0; k < group; k++) {
        const v = w[base + k];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (Math.abs(v) > amax) amax = Math.abs(v);
      }
      const range = symmetric ? 2 * amax : hi - lo; // exact in float64
      let s = fr(range / 15);
      while (s * 15 < range) s = nextUpF32(s); // s * 15 is exact in float64
      if (scaleDtype === 'float16') s = f16CeilRef(s);
      if (!Number.isFinite(s)) return { scaleOverflow: base };
      if (s === 0) s = 1;
      let z = 8;
      if (!symmetric) {
        z = Math.min(15, Math.max(0, roundHalfEven(fr(-lo / s))));
        zeros![n * G + g] = z;
      }
      scales[n * G + g] = s;
      for (let k = 0; k < group; k++) {
        const v = roundHalfEven(fr(w[base + k] / s)) + z;
        q[base + k] = Math.min(15, Math.max(0, v));
      }
    }
  }
  return { q, scales, zeros };
}

/** The canonical qweight [N, K/2]: column 2j in the low nibble, 2j + 1 in the high nibble. */
export function packNibbles(q: Uint8Array, N: number, K: number): Uint8Array {
  const out = new Uint8Array(N * (K / 2));
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < K / 2; j++) out[n * (K / 2) + j] = q[n * K + 2 * j] | (q[n * K + 2 * j + 1] << 4);
  }
  return out;
}

/** Reads the canonical qweight back to one code per byte (the same documented layout). */
export function unpackNibbles(qweight: Uint8Array, N: number, K: number): Uint8Array {
  const out = new Uint8Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = qweight[n * (K / 2) + (k >> 1)];
      out[n * K + k] = k & 1 ? b >> 4 : b & 15;
    }
  }
  return out;
}

/**
 * The dequantized weight: w[n][k] = fround((q - z) * s), with k's group gIdx[k] (act-order) or
 * floor(k / group); z = 8 when zeros is null.
 */
export function int4DequantRef(
  q: Uint8Array,
  scales: ArrayLike<number>,
  zeros: ArrayLike<number> | null,
  N: number,
  K: number,
  G: number,
  gIdx: ArrayLike<number> | null,
): Float32Array {
  const out = new Float32Array(N * K);
  const group = K / G;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = gIdx ? gIdx[k] : Math.floor(k / group);
      const z = zeros ? zeros[n * G + g] : 8;
      out[n * K + k] = Math.fround((q[n * K + k] - z) * scales[n * G + g]);
    }
  }
  return out;
}

/** float16 bits -> values (via the reference codec of reference.ts). */
export function f16Values(bits: Uint16Array): Float64Array {
  return Float64Array.from(bits, f16ToNumber);
}

export function f16Bits(values: ArrayLike<number>): Uint16Array {
  return Uint16Array.from(values as ArrayLike<number>, numberToF16);
}

// ---- GPTQ / AWQ packers ------------------------------------------------------------------

/** 8 nibbles -> one int32 word (nibble i at bits 4i), wrapped to a signed int32. */
function word(nibbles: number[]): number {
  let u = 0;
  for (let i = 0; i < 8; i++) u += (nibbles[i] & 15) * 2 ** (4 * i); // no shifts: no sign games
  return u | 0;
}

/**
 * AutoGPTQ v1 (the `pack` of auto_gptq's QuantLinear, and the unpacking of its CUDA/Triton
 * kernels): qweight int32 [K/8, N], word (r, n) holds q[n][8r + i] at bits 4i; qzeros int32
 * [G, N/8], word (g, c) holds zero[8c + i][g] - 1 at bits 4i; scales [G, N].
 * q is [N, K] (one code per byte), zeros [N, G] in 1..16.
 */
export function packGPTQ(q: Uint8Array, zeros: Uint8Array, N: number, K: number, G: number): { qweight: Int32Array; qzeros: Int32Array } {
  const qweight = new Int32Array((K / 8) * N);
  for (let r = 0; r < K / 8; r++) {
    for (let n = 0; n < N; n++) {
      const nib: number[] = [];
      for (let i = 0; i < 8; i++) nib.push(q[n * K + 8 * r + i]);
      qweight[r * N + n] = word(nib);
    }
  }
  const qzeros = new Int32Array(G * (N / 8));
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < N / 8; c++) {
      const nib: number[] = [];
      for (let i = 0; i < 8; i++) nib.push(zeros[(8 * c + i) * G + g] - 1);
      qzeros[g * (N / 8) + c] = word(nib);
    }
  }
  return { qweight, qzeros };
}

/** AutoAWQ's GEMM pack order: bits 4i of a word hold row 8c + AWQ_ORDER[i]. */
export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

/**
 * AutoAWQ GEMM (WQLinear_GEMM.from_linear): qweight int32 [K, N/8], word (k, c) holds
 * q[8c + AWQ_ORDER[i]][k] at bits 4i; qzeros int32 [G, N/8] the same packing of the zero itself
 * (0..15); scales [G, N]. q is [N, K], zeros [N, G].
 */
export function packAWQ(q: Uint8Array, zeros: Uint8Array, N: number, K: number, G: number): { qweight: Int32Array; qzeros: Int32Array } {
  const qweight = new Int32Array(K * (N / 8));
  for (let k = 0; k < K; k++) {
    for (let c = 0; c < N / 8; c++) {
      qweight[k * (N / 8) + c] = word(AWQ_ORDER.map((o) => q[(8 * c + o) * K + k]));
    }
  }
  const qzeros = new Int32Array(G * (N / 8));
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < N / 8; c++) qzeros[g * (N / 8) + c] = word(AWQ_ORDER.map((o) => zeros[(8 * c + o) * G + g]));
  }
  return { qweight, qzeros };
}

/** [N, G] -> [G, N] (checkpoints store scales transposed). */
export function transposeNG<T extends Float32Array | Uint16Array>(a: T, N: number, G: number): T {
  const out = new (a.constructor as { new (n: number): T })(N * G);
  for (let n = 0; n < N; n++) for (let g = 0; g < G; g++) out[g * N + n] = a[n * G + g];
  return out;
}

// ---- comparisons -------------------------------------------------------------------------

/** Bit-for-bit comparison of two float32 arrays; a description of the first few differences, or null. */
export function diffF32(got: Float32Array, want: Float32Array, K: number, note: string): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}; ${note}`;
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      count++;
      if (bad.length < 5) bad.push(`  [${Math.floor(i / K)}, ${i % K}]: ${got[i]} (0x${g[i].toString(16)}), expected ${want[i]} (0x${w[i].toString(16)})`);
    }
  }
  return count === 0 ? null : `${count} of ${g.length} differ:\n${bad.join('\n')}\n${note}`;
}

/** Element-for-element comparison of two integer arrays; first differences, or null. */
export function diffInts(got: ArrayLike<number>, want: ArrayLike<number>, K: number, what: string, note: string): string | null {
  if (got.length !== want.length) return `${what}: length ${got.length}, expected ${want.length}; ${note}`;
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) {
      count++;
      if (bad.length < 5) bad.push(`  ${what}[${Math.floor(i / K)}, ${i % K}] = ${got[i]}, expected ${want[i]}`);
    }
  }
  return count === 0 ? null : `${what}: ${count} of ${got.length} differ:\n${bad.join('\n')}\n${note}`;
}

/**
 * The CUDA INT4 kernel's rounding depth as checkLinear's K (with c = 1): at most 16 additions
 * inside an mma, one fma per k16 tile of a warp (ceil(Kp / 64), Kp = K rounded up to 16), 3
 * additions across the block's 4 warps, splits - 1 across split-K slices and 1 of the bias, plus
 * one for the reference's own fround((q - z) s) weights and one for gamma's denominator
 * (test/cuda-sim/gemm-int4.test.ts derives it; native/cuda/gemm_int4.cuh, "Dequantization in
 * registers"). splits: the slices the call used; by default the most the kernel's automatic
 * choice can give for this K (int4_auto_splits: at most 8, each at least 16 k16 tiles).
 */
export function int4CudaBoundK(K: number, splits = int4MaxAutoSplits(K)): number {
  return 16 + Math.ceil(Math.ceil(K / 16) / 4) + 3 + (splits - 1) + 1 + 1 + 1;
}

/** The most K slices int4_auto_splits (native/cuda/gemm_int4.cuh) can choose for this K. */
export function int4MaxAutoSplits(K: number): number {
  return Math.max(1, Math.min(8, Math.floor(Math.ceil(K / 16) / 16)));
}
