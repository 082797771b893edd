/**
 * Test-side references for the low-rank API (cg.lowRankUpdate, the fused `lora` option of
 * cg.linear, cg.linearMultiLora), in float64, written from the documented semantics (README
 * "Low-rank factors", lib/lora.ts) independently of lib/ and native/: nothing here imports the
 * library. Also the recipes of the test weights (pure data: what to hand the library's
 * constructors, and the float64 weight the independent references say they hold).
 *
 * THE ERROR BOUNDS, u = 2^-24, c = LR_C = 2 (a factor-2 margin over every (1 + small) term):
 *
 * lowRankUpdate (README: "the tile's increment alpha·B·A is computed in float32 ... Dense weights
 * add in float32 and round once to their dtype"). Let D = alpha·B·A exactly and
 * S_D[n][k] = |alpha| sum_j |B[n][j] A[j][k]|. The library forms D32 from alpha rounded to float32
 * (u S_D), alpha·b rounded to float32 (u S_D) and r products summed in float32 with or without FMA
 * (gamma_r S_D), then v32 = fl32(w + D32) (u |v|): |v32 - (w + D)| <= tol = c ((r + 2) u S_D + u |v|)
 * (preRoundTol). Then, by format:
 *   - float weights (dense, 2:4 kept positions): one rounding of v32 into the weight dtype, half an
 *     ulp: 2^-11 |v| (float16), 2^-8 |v| (bfloat16), nothing for float32 (floatUpdateBound);
 *   - INT4: the group is quantized again with a fresh scale s' (quantize's rule: the smallest
 *     float32, then float16 when the scales are float16, with 15 s' >= the group's range), so each
 *     weight is within s'/2 of v32, plus the float32 roundings of v32 / s' and of (q - z) s'
 *     (checkInt4Update); and s' itself lies within the rounding of range / 15, range taken over
 *     the exact new values +- tol;
 *   - FP8: every scale unit gets s' = amax / max(format) of its new values, and every code is
 *     within half an FP8 step of v32 / s' (relative 2^-4 for e4m3, 2^-3 for e5m2, or half the
 *     smallest subnormal step), times s' (checkFp8Update).
 *
 * Fused LoRA, y = x' W^T + b + alpha (x A^T) B^T (x' the activations of the main product: x, or
 * its quantized values with activations 'fp8'/'int8'; the LoRA branch always uses x itself):
 *   main product and bias: (K + extra) u S_main as in reference.ts / act-reference.ts (extra = 1
 *   for dense and 2:4 weights, 2G + 4 for INT4, SC + 3 for FP8), S_main = sum |x'| |w| + |b|;
 *   t = alpha x A^T: K float32 products summed (gamma_K), alpha rounded to float32 and multiplied
 *   in (2u): (K + 2) u S_L with S_L[m][n] = |alpha| sum_j |B[n][j]| sum_k |x_k A[j][k]|;
 *   the epilogue adds r products t_j B[n][j] to the accumulator (with FMA, or summed and then
 *   added): r + 2 roundings of partial sums at most |main| + S_L: (r + 2) u (S_main + S_L).
 * So |y - ref| <= acc + r_out (|ref| + acc) + a_out with
 *   acc = c u ((K + extra + r + 2) S_main + (K + r + 4) S_L),
 * (r_out, a_out) the output dtype's rounding (reference.ts outRounding). Rows without an adapter
 * have r = 0 and S_L = 0: the plain linear bound.
 *
 * Why they catch bugs: the factors are never zero with magnitudes in [1/8, 2), so each rank
 * component of the increment or of the LoRA term is ~0.5 |alpha| per product while the bounds
 * are ~1e-6 relative of the sums (float32); a missing, doubled or misplaced component, a wrong
 * alpha, a wrong adapter for a row or an increment not written at all moves results by orders
 * of magnitude more. The quantized bounds are half a quantization step of the NEW scale: a
 * weight whose codes or scale were not refreshed fails them, and the scale check fails a
 * stale scale outright.
 */
import { QuantWeightRef, fp8WeightRef, int4WeightRef } from './act-reference';
import { FP8, Fp8Fmt, ScaleDt, int4QuantizeRef } from './quant-reference';
import { DType, bitsOf, decode, encode, keepColumnsBits, outRounding, pruneColumns, randInt, randNonZero } from './reference';

export const U = 2 ** -24;
export const LR_C = 2;

/** |v| (not Math.abs / Math.max in hot loops: they are ~50x slower inside jest's vm context). */
const abs = (v: number): number => (v < 0 ? -v : v);
const max = (a: number, b: number): number => (a > b ? a : b);

// ---- factors ---------------------------------------------------------------------------------

/** Factors as handed to the library (A [r, K], B [N, r], float32 or 16-bit bits) and as exact values. */
export interface Factors {
  A: Float32Array | Uint16Array;
  B: Float32Array | Uint16Array;
  dtype: DType;
  r: number;
  A64: Float64Array;
  B64: Float64Array;
}

/**
 * Fresh random never-zero factors of rank r in `dtype`, magnitudes in [1/8, 2) (times bScale, a
 * power of two). 16-bit factors are drawn directly as bits (sign, exponent -3..0, random
 * mantissa; the reference codecs are slow inside jest's vm for rank-K factors) and their exact
 * values computed from the fields: (1 + m / 2^mbits) 2^e.
 */
export function randomFactors(rng: () => number, N: number, K: number, r: number, dtype: DType, bScale = 1): Factors {
  if (dtype === 'float32') {
    const A = new Float32Array(r * K);
    for (let i = 0; i < A.length; i++) A[i] = randNonZero(rng);
    const B = new Float32Array(N * r);
    for (let i = 0; i < B.length; i++) B[i] = randNonZero(rng) * bScale;
    return { A, B, dtype, r, A64: Float64Array.from(A), B64: Float64Array.from(B) };
  }
  const mbits = dtype === 'float16' ? 10 : 7;
  const bias = dtype === 'float16' ? 15 : 127;
  const eScale = exponentOfPow2(bScale);
  const draw = (n: number, eShift: number): { bits: Uint16Array; values: Float64Array } => {
    const bits = new Uint16Array(n);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const e = -3 + ((rng() * 4) | 0) + eShift;
      const m = (rng() * (1 << mbits)) | 0;
      const neg = rng() < 0.5;
      bits[i] = (neg ? 0x8000 : 0) | ((e + bias) << mbits) | m;
      const v = (1 + m / (1 << mbits)) * POW2[e + 64];
      values[i] = neg ? -v : v;
    }
    return { bits, values };
  };
  const a = draw(r * K, 0);
  const b = draw(N * r, eScale);
  return { A: a.bits, B: b.bits, dtype, r, A64: a.values, B64: b.values };
}

const POW2 = Float64Array.from({ length: 128 }, (_, i) => 2 ** (i - 64));

function exponentOfPow2(v: number): number {
  const e = Math.round(Math.log2(v));
  if (2 ** e !== v) throw new Error(`bScale must be a power of two, got ${v}`);
  return e;
}

/** D = alpha·B·A [N, K] in float64 (products exact, sums to ~2^-53) and S_D = |alpha| sum_j |B A|. */
export function lowRankDelta(f: { A64: Float64Array; B64: Float64Array; r: number }, alpha: number, N: number, K: number): { d: Float64Array; absD: Float64Array } {
  const { A64, B64, r } = f;
  const d = new Float64Array(N * K);
  const absD = new Float64Array(N * K);
  const aa = alpha < 0 ? -alpha : alpha;
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < r; j++) {
      const b = B64[n * r + j];
      const ba = b < 0 ? -b : b;
      for (let k = 0; k < K; k++) {
        const a = A64[j * K + k];
        d[n * K + k] += b * a;
        absD[n * K + k] += ba * (a < 0 ? -a : a);
      }
    }
    for (let k = 0; k < K; k++) {
      d[n * K + k] *= alpha;
      absD[n * K + k] *= aa;
    }
  }
  return { d, absD };
}

/** The bound on |v32 - v| before the result is stored in the weight's format (see the header). */
export function preRoundTol(v: number, absD: number, r: number): number {
  return LR_C * ((r + 2) * U * absD + U * (v < 0 ? -v : v));
}

/** The bound for a float weight element (dense, or a kept 2:4 position) after the update. */
export function floatUpdateBound(v: number, absD: number, r: number, dtype: DType): number {
  const tol = preRoundTol(v, absD, r);
  const o = dtype === 'float32' ? F32_ROUNDING : outRounding(dtype);
  return tol + o.rel * (abs(v) + tol) + o.abs;
}
const F32_ROUNDING = { rel: 0, abs: 0 };

function where(i: number, K: number): string {
  return `[${Math.floor(i / K)}, ${i % K}]`;
}

function report(what: string, count: number, total: number, first: string[]): string | null {
  return count === 0 ? null : `${what}: ${count} of ${total} outside the bound:\n${first.join('\n')}`;
}

/**
 * A float weight after W <- W + alpha·B·A: `after` the exact values the weight now holds,
 * `before` those it held. keep (2:4 with reprune false): which elements are stored; the others
 * must be exactly 0 after the update.
 */
export function checkFloatUpdate(
  after: Float64Array,
  before: Float64Array,
  delta: { d: Float64Array; absD: Float64Array },
  r: number,
  dtype: DType,
  N: number,
  K: number,
  what: string,
  keep: Uint8Array | null = null,
): string | null {
  let count = 0;
  const first: string[] = [];
  for (let i = 0; i < N * K; i++) {
    if (keep && !keep[i]) {
      if (!(after[i] === 0)) {
        count++;
        if (first.length < 5) first.push(`  w${where(i, K)} = ${after[i]} at a dropped position, expected 0`);
      }
      continue;
    }
    const v = before[i] + delta.d[i];
    const bound = floatUpdateBound(v, delta.absD[i], r, dtype);
    const e = after[i] - v;
    if (!(abs(e) <= bound)) {
      count++;
      if (first.length < 5) first.push(`  w${where(i, K)} = ${after[i]}, reference ${v} (was ${before[i]}), |err| ${abs(e)} > bound ${bound}`);
    }
  }
  return report(`${what} (${dtype} weight)`, count, N * K, first);
}

// ---- 2:4 --------------------------------------------------------------------------------------

/** The kept columns of every group from canonical meta (README "2:4 sparse"): [N * K/4 * 2]. */
export function colsFromMeta(meta: Uint8Array, N: number, K: number): Uint8Array {
  const G = K / 4;
  const mrow = Math.ceil(K / 8);
  const cols = new Uint8Array(N * G * 2);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const byte = meta[n * mrow + (g >> 1)];
      const code = g % 2 === 0 ? byte & 15 : byte >> 4;
      cols[(n * G + g) * 2] = code & 3;
      cols[(n * G + g) * 2 + 1] = code >> 2;
    }
  }
  return cols;
}

/** 1 at the kept positions [N, K] of a column list from colsFromMeta / pruneColumns. */
export function keptMask(cols: Uint8Array, N: number, K: number): Uint8Array {
  const G = K / 4;
  const m = new Uint8Array(N * K);
  for (let n = 0; n < N; n++) for (let g = 0; g < G; g++) for (let s = 0; s < 2; s++) m[n * K + 4 * g + cols[(n * G + g) * 2 + s]] = 1;
  return m;
}

/**
 * A 2:4 weight after an update with reprune: every group's candidates are (old + increment) at
 * its kept columns and the increment alone at its dropped ones (they held 0); the new kept
 * columns must be two largest candidates (up to the candidates' tolerance: near-ties may go
 * either way), hold their candidate within the float bound, and the other two must be 0.
 * Returns the message (or null) and how many groups changed their kept columns.
 */
export function checkRepruneUpdate(
  after: Float64Array,
  before: Float64Array,
  colsAfter: Uint8Array,
  delta: { d: Float64Array; absD: Float64Array },
  r: number,
  dtype: DType,
  N: number,
  K: number,
  what: string,
  colsBefore: Uint8Array,
): { message: string | null; changed: number } {
  const G = K / 4;
  let count = 0;
  let changed = 0;
  const first: string[] = [];
  const bad = (s: string): void => {
    count++;
    if (first.length < 5) first.push(s);
  };
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const base = n * K + 4 * g;
      const ca = colsAfter[(n * G + g) * 2];
      const cb = colsAfter[(n * G + g) * 2 + 1];
      if (ca !== colsBefore[(n * G + g) * 2] || cb !== colsBefore[(n * G + g) * 2 + 1]) changed++;
      if (!(ca < cb)) {
        bad(`  row ${n} group ${g}: kept columns ${ca}, ${cb} (first must be < second)`);
        continue;
      }
      const cand: number[] = [];
      const tol: number[] = [];
      for (let q = 0; q < 4; q++) {
        const v = before[base + q] + delta.d[base + q]; // before is 0 at dropped columns
        cand.push(v);
        tol.push(preRoundTol(v, delta.absD[base + q], r));
      }
      for (const kq of [ca, cb]) {
        for (let q = 0; q < 4; q++) {
          if (q === ca || q === cb) continue;
          if (abs(cand[kq]) + tol[kq] + tol[q] < abs(cand[q])) {
            bad(`  row ${n} group ${g}: keeps column ${kq} (|${cand[kq]}|) but drops column ${q} (|${cand[q]}|)`);
          }
        }
      }
      for (let q = 0; q < 4; q++) {
        const i = base + q;
        if (q === ca || q === cb) {
          const bound = floatUpdateBound(cand[q], delta.absD[i], r, dtype);
          if (!(abs(after[i] - cand[q]) <= bound)) bad(`  w${where(i, K)} = ${after[i]}, reference ${cand[q]}, |err| > bound ${bound}`);
        } else if (!(after[i] === 0)) {
          bad(`  w${where(i, K)} = ${after[i]} at a dropped position, expected 0`);
        }
      }
    }
  }
  return { message: report(`${what} (2:4 ${dtype}, reprune)`, count, N * G, first), changed };
}

// ---- INT4 -------------------------------------------------------------------------------------

/** The smallest float16 step at or above magnitude s (for the float16-scale rounding bound). */
const F16_REL = 2 ** -10;

/**
 * An INT4 weight after an update: `after` = toDense() (exact float32 values), scales [N, G] and
 * zeros [N, G] (null: symmetric, 8) from canonical(), groupOf[k] the group of column k.
 */
export function checkInt4Update(o: {
  after: Float64Array;
  before: Float64Array;
  delta: { d: Float64Array; absD: Float64Array };
  r: number;
  N: number;
  K: number;
  G: number;
  groupOf: ArrayLike<number>;
  scales: Float64Array;
  zeros: Uint8Array | null;
  scaleDtype: ScaleDt;
  what: string;
}): string | null {
  const { after, before, delta, r, N, K, G, groupOf, scales, zeros, scaleDtype } = o;
  let count = 0;
  const first: string[] = [];
  const bad = (s: string): void => {
    count++;
    if (first.length < 6) first.push(s);
  };
  for (let n = 0; n < N; n++) {
    const lo = new Float64Array(G);
    const hi = new Float64Array(G);
    const amax = new Float64Array(G);
    const tolG = new Float64Array(G);
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const g = groupOf[k];
      const v = before[i] + delta.d[i];
      if (v < lo[g]) lo[g] = v;
      if (v > hi[g]) hi[g] = v;
      if (abs(v) > amax[g]) amax[g] = abs(v);
      tolG[g] = max(tolG[g], preRoundTol(v, delta.absD[i], r));
    }
    for (let g = 0; g < G; g++) {
      const s = scales[n * G + g];
      const range = zeros ? hi[g] - lo[g] : 2 * amax[g];
      const sMin = (range - 2 * tolG[g]) / 15;
      let sMax = ((range + 2 * tolG[g]) / 15) * (1 + 2 ** -22);
      if (scaleDtype === 'float16') sMax = sMax * (1 + F16_REL) + 2 ** -24;
      if (!(s >= sMin * (1 - 2 ** -22) && s <= sMax)) {
        bad(`  row ${n} group ${g}: scale ${s}, expected a fresh scale in [${sMin}, ${sMax}] (range of the new values ${range})`);
      }
      if (zeros) {
        const z = zeros[n * G + g];
        const zc = Math.min(15, Math.max(0, -lo[g] / s));
        if (!(z >= 0 && z <= 15 && Math.abs(z - zc) <= 0.5 + 2 * tolG[g] / s + 2 ** -20)) {
          bad(`  row ${n} group ${g}: zero point ${z}, expected round(${zc})`);
        }
      }
    }
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const s = scales[n * G + groupOf[k]];
      const v = before[i] + delta.d[i];
      const tol = preRoundTol(v, delta.absD[i], r);
      const bound = (s / 2) * (1 + 2 ** -20) + tol + 4 * U * (abs(v) + 16 * s);
      if (!(abs(after[i] - v) <= bound)) {
        bad(`  w${where(i, K)} = ${after[i]}, reference ${v} (was ${before[i]}), |err| ${Math.abs(after[i] - v)} > s'/2 + ... = ${bound} (s' = ${s})`);
      }
    }
  }
  return report(`${o.what} (INT4, requantized)`, count, N * K, first);
}

// ---- FP8 --------------------------------------------------------------------------------------

/** Half the FP8 step at magnitude y (>= 0): relative 2^-(mant+1), or half the subnormal step. */
export function fp8HalfStep(y: number, fmt: Fp8Fmt): number {
  return fmt === 'e4m3' ? max(y * 2 ** -4, FP8.e4m3.minSub / 2) : max(y * 2 ** -3, FP8.e5m2.minSub / 2);
}

/** An FP8 weight after an update: `after` = toDense(), scales = canonical().scales [ceil(N/bn), ceil(K/bk)]. */
export function checkFp8Update(o: {
  after: Float64Array;
  before: Float64Array;
  delta: { d: Float64Array; absD: Float64Array };
  r: number;
  N: number;
  K: number;
  bn: number;
  bk: number;
  fmt: Fp8Fmt;
  scales: Float32Array;
  what: string;
}): string | null {
  const { after, before, delta, r, N, K, bn, bk, fmt, scales } = o;
  const SC = Math.ceil(K / bk);
  const NS = Math.ceil(N / bn) * SC;
  const amax = new Float64Array(NS);
  const tolU = new Float64Array(NS);
  // The library decodes code * scale and adds the increment, perhaps in one fused step: one more
  // u |w_old| than preRoundTol counts.
  const tolOf = (i: number, v: number): number => preRoundTol(v, delta.absD[i], r) + LR_C * U * abs(before[i]);
  const unitOf = (n: number, k: number): number => ((n - (n % bn)) / bn) * SC + (k - (k % bk)) / bk;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const unit = unitOf(n, k);
      const v = before[i] + delta.d[i];
      amax[unit] = max(amax[unit], abs(v));
      tolU[unit] = max(tolU[unit], tolOf(i, v));
    }
  }
  let count = 0;
  const first: string[] = [];
  const bad = (s: string): void => {
    count++;
    if (first.length < 6) first.push(s);
  };
  const fmax = FP8[fmt].max;
  for (let u = 0; u < NS; u++) {
    const sMin = ((amax[u] - tolU[u]) / fmax) * (1 - 2 ** -22);
    const sMax = ((amax[u] + tolU[u]) / fmax) * (1 + 2 ** -22);
    if (!(scales[u] >= sMin && scales[u] <= sMax)) bad(`  scale unit ${u}: scale ${scales[u]}, expected a fresh amax / ${fmax} in [${sMin}, ${sMax}]`);
  }
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const s = scales[unitOf(n, k)];
      const v = before[i] + delta.d[i];
      const tol = tolOf(i, v);
      const bound = fp8HalfStep((abs(v) + tol) / s, fmt) * s + tol + 4 * U * (abs(v) + abs(after[i]));
      if (!(abs(after[i] - v) <= bound)) {
        bad(`  w${where(i, K)} = ${after[i]}, reference ${v} (was ${before[i]}), |err| ${Math.abs(after[i] - v)} > half an ${fmt} step ${bound} (s' = ${s})`);
      }
    }
  }
  return report(`${o.what} (FP8 ${fmt}, requantized)`, count, N * K, first);
}

// ---- fused LoRA -------------------------------------------------------------------------------

export interface Adapter64 {
  A64: Float64Array;
  B64: Float64Array;
  r: number;
  alpha: number;
}

/**
 * y = x' W^T (+ bias) + alpha_a (x A_a^T) B_a^T per row (rowAdapter[m] = a, or -1 for none;
 * null: adapter 0 for every row), and the sums the bound scales with. w: the weight's exact
 * values [N, K]; wAbs: the magnitudes its rounding scales with (|w|, or QuantWeightRef.absFactor).
 */
export function loraLinearRef(
  xMain: Float64Array,
  xLora: Float64Array,
  M: number,
  N: number,
  K: number,
  w: Float64Array,
  wAbs: Float64Array,
  bias: ArrayLike<number> | null,
  adapters: Adapter64[],
  rowAdapter: ArrayLike<number> | null,
): { ref: Float64Array; absMain: Float64Array; absLora: Float64Array; rank: Int32Array } {
  const ref = new Float64Array(M * N);
  const absMain = new Float64Array(M * N);
  const absLora = new Float64Array(M * N);
  const rank = new Int32Array(M);
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const xv = xMain[xo + k];
        s += xv * w[wo + k];
        a += (xv < 0 ? -xv : xv) * wAbs[wo + k];
      }
      if (bias) {
        s += bias[n];
        a += bias[n] < 0 ? -bias[n] : bias[n];
      }
      ref[m * N + n] = s;
      absMain[m * N + n] = a;
    }
    const ai = rowAdapter ? rowAdapter[m] : 0;
    if (ai < 0) continue;
    const ad = adapters[ai];
    const { r, A64, B64, alpha } = ad;
    rank[m] = r;
    const t = new Float64Array(r);
    const tAbs = new Float64Array(r);
    for (let j = 0; j < r; j++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = xLora[xo + k] * A64[j * K + k];
        s += p;
        a += p < 0 ? -p : p;
      }
      t[j] = s;
      tAbs[j] = a;
    }
    const aa = alpha < 0 ? -alpha : alpha;
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let j = 0; j < r; j++) {
        const b = B64[n * r + j];
        s += t[j] * b;
        a += tAbs[j] * (b < 0 ? -b : b);
      }
      ref[m * N + n] += alpha * s;
      absLora[m * N + n] = aa * a;
    }
  }
  return { ref, absMain, absLora, rank };
}

export function loraBound(ref: number, absMain: number, absLora: number, K: number, extra: number, r: number, outDtype: DType): number {
  const acc = LR_C * U * ((K + extra + r + 2) * absMain + (K + r + 4) * absLora);
  const o = outDtype === 'float32' ? F32_ROUNDING : outRounding(outDtype);
  return acc + o.rel * (abs(ref) + acc) + o.abs;
}

/** null when every output of y is within loraBound of the reference, else a message. */
export function checkLoraLinear(
  y: Float32Array | Uint16Array,
  outDtype: DType,
  r: { ref: Float64Array; absMain: Float64Array; absLora: Float64Array; rank: Int32Array },
  M: number,
  N: number,
  K: number,
  extra: number,
  what: string,
): string | null {
  if (y.length !== M * N) return `${what}: result has ${y.length} elements, expected M*N = ${M * N}`;
  const yd = decode(y, outDtype);
  let count = 0;
  const first: string[] = [];
  for (let i = 0, m = 0; i < M * N; i++) {
    if (i > 0 && i % N === 0) m++;
    const bound = loraBound(r.ref[i], r.absMain[i], r.absLora[i], K, extra, r.rank[m], outDtype);
    const e = yd[i] - r.ref[i];
    if (!((e < 0 ? -e : e) <= bound)) {
      count++;
      if (first.length < 5) first.push(`  y[m=${m}, n=${i % N}] = ${yd[i]}, reference ${r.ref[i]}, |err| ${Math.abs(e)} > bound ${bound}`);
    }
  }
  return count === 0 ? null : `${what}: ${count} of ${M * N} outputs outside the bound (M=${M} N=${N} K=${K}, out ${outDtype}):\n${first.join('\n')}`;
}

// ---- test weights (pure data) ---------------------------------------------------------------

/** What to hand the library to make a weight, by constructor. */
export type Recipe =
  | { make: 'dense'; dtype: DType; data: Float32Array | Uint16Array }
  | { make: 'prune'; dtype: DType; data: Float32Array | Uint16Array }
  | { make: 'int4.quantize'; data: Float32Array; groupSize: 32 | 64 | 128 | -1; symmetric: boolean; scaleDtype: ScaleDt }
  | { make: 'int4.fromCanonical'; qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null; gIdx: Int32Array | null }
  | { make: 'fp8.quantize'; data: Float32Array; format: Fp8Fmt; scaling: 'tensor' | 'channel' | { block: [number, number] } };

export interface TestWeight {
  label: string;
  N: number;
  K: number;
  recipe: Recipe;
  /** The exact values the weight holds [N, K], from the independent references. */
  dense: Float64Array;
  /** Magnitudes the linear bound scales with (|w|, or the quantized formats' absFactor). */
  abs: Float64Array;
  /** Roundings beyond K in the linear bound (1 for float weights). */
  extra: number;
  /** The format family, and what the update checks need of it. */
  kind: 'dense' | '2:4' | 'int4' | 'fp8';
  dtype: DType;
  group: number;
  groupOf: Int32Array | null;
  symmetric: boolean;
  scaleDtype: ScaleDt;
  fp8: { fmt: Fp8Fmt; bn: number; bk: number } | null;
  /** 2:4: the kept columns (pruneColumns of the values). */
  cols: Uint8Array | null;
}

export type WeightSpec =
  | { kind: 'dense'; dtype: DType; N: number; K: number }
  | { kind: '2:4'; dtype: DType; N: number; K: number }
  | { kind: 'int4'; groupSize: 32 | 64 | 128 | -1; symmetric: boolean; scaleDtype: ScaleDt; N: number; K: number }
  | { kind: 'int4-act-order'; group: number; withZeros: boolean; scaleDtype: ScaleDt; N: number; K: number }
  | { kind: 'fp8'; fmt: Fp8Fmt; scaling: 'tensor' | 'channel' | { block: [number, number] }; N: number; K: number };

export function specLabel(s: WeightSpec): string {
  switch (s.kind) {
    case 'dense': return `DenseWeight ${s.dtype} [${s.N}, ${s.K}]`;
    case '2:4': return `Sparse24Weight ${s.dtype} [${s.N}, ${s.K}]`;
    case 'int4': return `Int4Weight.quantize(group ${s.groupSize === -1 ? 'per-channel' : s.groupSize}, ${s.symmetric ? 'symmetric' : 'zero points'}, ${s.scaleDtype} scales) [${s.N}, ${s.K}]`;
    case 'int4-act-order': return `Int4Weight.fromCanonical(act-order gIdx, group ${s.group}, ${s.withZeros ? 'zero points' : 'symmetric'}, ${s.scaleDtype} scales) [${s.N}, ${s.K}]`;
    default: return `Fp8Weight.quantize(${s.fmt}, ${typeof s.scaling === 'string' ? s.scaling : `block [${s.scaling.block}]`}) [${s.N}, ${s.K}]`;
  }
}

export function absOf(a: Float64Array): Float64Array {
  const o = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = abs(a[i]);
  return o;
}

/** Rows of different magnitudes (2^-2 .. 2^2), never zero; INT4 groups all >= 0, all <= 0 or mixed. */
function quantData(rng: () => number, N: number, K: number, group: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const rowMag = 2 ** (randInt(rng, 5) - 2);
    for (let g = 0; g < K / group; g++) {
      const kind = randInt(rng, 4);
      for (let j = 0; j < group; j++) {
        const v = randNonZero(rng) * rowMag;
        w[n * K + g * group + j] = kind === 0 ? Math.abs(v) : kind === 1 ? -Math.abs(v) : v;
      }
    }
  }
  return w;
}

/** A random act-order gIdx: floor(p / group) of a random permutation p of the columns. */
export function actOrderGIdx(rng: () => number, K: number, group: number): Int32Array {
  const perm = Array.from({ length: K }, (_, i) => i);
  for (let i = K - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return Int32Array.from(perm, (p) => Math.floor(p / group));
}

/** A test weight: fresh seeded data, the recipe for the library and the independent reference. */
export function makeTestWeight(spec: WeightSpec, rng: () => number): TestWeight {
  const { N, K } = spec;
  const label = specLabel(spec);
  const base = { label, N, K, groupOf: null, group: 0, symmetric: true, scaleDtype: 'float16' as ScaleDt, fp8: null, cols: null };
  if (spec.kind === 'dense' || spec.kind === '2:4') {
    const raw = new Float64Array(N * K);
    for (let i = 0; i < raw.length; i++) raw[i] = randNonZero(rng);
    const data = encode(raw, spec.dtype);
    let dense = decode(data, spec.dtype);
    let cols: Uint8Array | null = null;
    if (spec.kind === '2:4') {
      cols = pruneColumns(dense, N, K);
      const kept = keepColumnsBits(bitsOf(data), cols, N, K);
      dense = decode(kept instanceof Uint32Array ? new Float32Array(kept.buffer) : kept, spec.dtype);
    }
    return {
      ...base, cols, recipe: { make: spec.kind === 'dense' ? 'dense' : 'prune', dtype: spec.dtype, data },
      dense, abs: absOf(dense), extra: 1, kind: spec.kind, dtype: spec.dtype,
    };
  }
  if (spec.kind === 'int4') {
    const group = spec.groupSize === -1 ? K : spec.groupSize;
    const data = quantData(rng, N, K, group);
    const q = int4QuantizeRef(data, N, K, group, spec.symmetric, spec.scaleDtype);
    if (!('q' in q)) throw new Error(`test data refused by the reference: ${JSON.stringify(q)}`);
    const ref: QuantWeightRef = int4WeightRef(q.q, q.scales, q.zeros, N, K, K / group, null);
    return {
      ...base, recipe: { make: 'int4.quantize', data, groupSize: spec.groupSize, symmetric: spec.symmetric, scaleDtype: spec.scaleDtype },
      dense: ref.dense, abs: ref.absFactor, extra: ref.extra, kind: 'int4', dtype: 'float32',
      group, groupOf: Int32Array.from({ length: K }, (_, k) => Math.floor(k / group)), symmetric: spec.symmetric, scaleDtype: spec.scaleDtype,
    };
  }
  if (spec.kind === 'int4-act-order') {
    const { group } = spec;
    const G = K / group;
    const qv = Uint8Array.from({ length: N * K }, () => randInt(rng, 16));
    const zeros = spec.withZeros ? Uint8Array.from({ length: N * G }, () => randInt(rng, 16)) : null;
    const sv = Array.from({ length: N * G }, () => 2 ** (-5 + 3 * rng()));
    const scales = spec.scaleDtype === 'float16' ? (encode(sv, 'float16') as Uint16Array) : Float32Array.from(sv);
    const scaleValues = spec.scaleDtype === 'float16' ? decode(scales, 'float16') : decode(scales, 'float32');
    const gIdx = actOrderGIdx(rng, K, group);
    const qweight = new Uint8Array(N * (K / 2));
    for (let n = 0; n < N; n++) for (let j = 0; j < K / 2; j++) qweight[n * (K / 2) + j] = qv[n * K + 2 * j] | (qv[n * K + 2 * j + 1] << 4);
    const ref = int4WeightRef(qv, scaleValues, zeros, N, K, G, gIdx);
    return {
      ...base, recipe: { make: 'int4.fromCanonical', qweight, scales, zeros, gIdx },
      dense: ref.dense, abs: ref.absFactor, extra: ref.extra, kind: 'int4', dtype: 'float32',
      group, groupOf: gIdx, symmetric: !spec.withZeros, scaleDtype: spec.scaleDtype,
    };
  }
  const data = quantData(rng, N, K, K);
  const [bn, bk] = spec.scaling === 'channel' ? [1, K] : spec.scaling === 'tensor' ? [N, K] : spec.scaling.block;
  const { ref } = fp8WeightRef(data, N, K, bn, bk, spec.fmt);
  return {
    ...base, recipe: { make: 'fp8.quantize', data, format: spec.fmt, scaling: spec.scaling },
    dense: ref.dense, abs: ref.absFactor, extra: ref.extra, kind: 'fp8', dtype: 'float32', fp8: { fmt: spec.fmt, bn, bk },
  };
}

/** Exact values of a weight's toDense() result in its dtype. */
export function denseValues(a: Float32Array | Uint16Array, dtype: DType): Float64Array {
  return decode(a, dtype);
}

/** Bit-for-bit comparison of two typed arrays (float32 compared by bits); first differences or null. */
export function diffBits(got: ArrayBufferView & ArrayLike<number>, want: ArrayBufferView & ArrayLike<number>, what: string): string | null {
  if (got.length !== want.length) return `${what}: length ${got.length}, expected ${want.length}`;
  const g = got instanceof Float32Array ? new Uint32Array(got.buffer, got.byteOffset, got.length) : got;
  const w = want instanceof Float32Array ? new Uint32Array(want.buffer, want.byteOffset, want.length) : want;
  let count = 0;
  const first: string[] = [];
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      count++;
      if (first.length < 5) first.push(`  [${i}]: ${got[i]} (bits ${g[i]}), expected ${want[i]} (bits ${w[i]})`);
    }
  }
  return count === 0 ? null : `${what}: ${count} of ${g.length} differ:\n${first.join('\n')}`;
}

/** The weights the fused-LoRA and multi-LoRA tests run on: every format, ragged shapes. */
export const LORA_TEST_WEIGHTS: WeightSpec[] = [
  { kind: 'dense', dtype: 'float32', N: 33, K: 40 },
  { kind: 'dense', dtype: 'float16', N: 45, K: 72 },
  { kind: 'dense', dtype: 'bfloat16', N: 17, K: 104 },
  { kind: '2:4', dtype: 'float32', N: 45, K: 72 },
  { kind: '2:4', dtype: 'float16', N: 33, K: 40 },
  { kind: '2:4', dtype: 'bfloat16', N: 19, K: 264 },
  { kind: 'int4', groupSize: 32, symmetric: true, scaleDtype: 'float16', N: 33, K: 96 },
  { kind: 'int4', groupSize: 64, symmetric: false, scaleDtype: 'float32', N: 21, K: 192 },
  { kind: 'int4-act-order', group: 32, withZeros: true, scaleDtype: 'float16', N: 17, K: 96 },
  { kind: 'fp8', fmt: 'e4m3', scaling: 'channel', N: 45, K: 72 },
  { kind: 'fp8', fmt: 'e5m2', scaling: { block: [16, 24] }, N: 33, K: 56 },
  { kind: 'fp8', fmt: 'e4m3', scaling: 'tensor', N: 19, K: 104 },
];

/**
 * The LoRA shrink's output T [M, tld] (native/cuda/lora_shrink.cuh) against float64: a row m with
 * an adapter (rowAdapter[m] = a >= 0) has T[m][j] = Σ_k x[m][k] A[offsets[a] + j][k] for j < ranks[a]
 * within float32 accumulation over K, |err| <= (K + 1) 2^-24 Σ|x A| (the kernel's count: a product
 * passes through at most K + 1 roundings); every other entry (no adapter, or j past the rank) must
 * still hold the NaN the caller poisoned it with. x64 [M, K] holds x's exact values, A [rsum, lda].
 * Returns the violations, each prefixed with `label`.
 */
export function shrinkViolations(
  T: Float32Array,
  o: { M: number; K: number; tld: number; lda: number; rowAdapter: Int32Array; ranks: number[]; offsets: number[]; x64: Float64Array; A: Float32Array },
  label: string,
): string[] {
  const bad: string[] = [];
  for (let m = 0; m < o.M; m++) {
    const ad = o.rowAdapter[m];
    for (let j = 0; j < o.tld; j++) {
      const got = T[m * o.tld + j];
      if (ad < 0 || j >= o.ranks[ad]) {
        if (!Number.isNaN(got)) bad.push(`${label}T[${m}][${j}] = ${got} written (row ${ad < 0 ? 'without an adapter' : `of rank ${o.ranks[ad]}`})`);
        continue;
      }
      let ref = 0, abs = 0;
      for (let k = 0; k < o.K; k++) {
        const p = o.x64[m * o.K + k] * o.A[(o.offsets[ad] + j) * o.lda + k];
        ref += p;
        abs += Math.abs(p);
      }
      if (!(Math.abs(got - ref) <= (o.K + 1) * 2 ** -24 * abs)) bad.push(`${label}T[${m}][${j}] = ${got}, reference ${ref}`);
    }
  }
  return bad;
}
