/**
 * Test-side references, written independently of lib/ and native/: a seeded PRNG, exact
 * float16/bfloat16 codecs, round-to-nearest-even encoders, magnitude 2:4 pruning, the canonical
 * 2:4 format as README ("Formats") documents it, a float64 linear, and the error-bound checker.
 *
 * Nothing here imports the library: a bug shared by the library and its reference would hide.
 */

export type DType = 'float32' | 'float16' | 'bfloat16';
export const DTYPES: DType[] = ['float32', 'float16', 'bfloat16'];

// ---- seeds ---------------------------------------------------------------------------------

/**
 * The run's base seed: CG_TEST_SEED when set (to reproduce a failure), else fresh per run.
 * Every failure message prints it, and each test derives its own seed from it and its name.
 */
export const BASE_SEED: number = (() => {
  const env = process.env.CG_TEST_SEED;
  if (env !== undefined && env.trim() !== '' && Number.isFinite(Number(env))) return Number(env) >>> 0;
  return (Date.now() ^ Math.floor(Math.random() * 0x100000000)) >>> 0;
})();

/** A seed for one test: FNV-1a of its label, mixed with the base seed. */
export function seedFor(label: string): number {
  let h = (0x811c9dc5 ^ BASE_SEED) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** How to reproduce: printed in every numeric failure message. */
export function seedNote(seed: number): string {
  return `seed ${seed} (rerun with CG_TEST_SEED=${BASE_SEED})`;
}

/** mulberry32: a small, good-enough 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random value that is never zero: sign * 2^u with u uniform in [-3, 1), i.e. magnitudes
 * log-uniform in [1/8, 2). Every float16/bfloat16 rounding of it is a normal number, and the
 * varied magnitudes make the 2:4 pruning choices and every product matter.
 */
export function randNonZero(rng: () => number): number {
  const mag = 2 ** (-3 + 4 * rng());
  return rng() < 0.5 ? -mag : mag;
}

export function randomFloat32(rng: () => number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = randNonZero(rng);
  return a;
}

export function randInt(rng: () => number, n: number): number {
  return Math.floor(rng() * n);
}

// ---- float16 / bfloat16 codecs -------------------------------------------------------------

/** IEEE binary16 bits -> exact value. */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m !== 0 ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** bfloat16 bits (the top half of a float32) -> exact value. */
export function bf16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m !== 0 ? NaN : s * Infinity;
  return s * (128 + m) * 2 ** (e - 134);
}

/** floor(log2(a)) for a finite a > 0, exactly. */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f; // exact: q has few significant bits
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Rounds v to nearest even into a binary format with `mantBits` stored mantissa bits and
 * `expBits` exponent bits (IEEE-style: subnormals, infinities; overflow rounds to Inf) and
 * returns its bits. NaN gives a quiet NaN (the tests only ask that NaN stays NaN).
 */
function encodeRNE(v: number, mantBits: number, expBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const emin = 1 - bias;
  const emax = bias;
  const signBit = 1 << (mantBits + expBits);
  const expMask = ((1 << expBits) - 1) << mantBits;
  if (Number.isNaN(v)) return expMask | (1 << (mantBits - 1));
  const sign = v < 0 || Object.is(v, -0) ? signBit : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | expMask;
  if (a === 0) return sign;
  let e = Math.max(exponentOf(a), emin);
  const scale = 2 ** (e - mantBits); // one unit in the last place at exponent e
  let r = roundHalfEven(a / scale);
  if (r === 0) return sign;
  if (r === 2 ** (mantBits + 1)) {
    r = 2 ** mantBits;
    e += 1;
  }
  if (e > emax) return sign | expMask; // rounded past the largest finite value
  if (r < 2 ** mantBits) return sign | r; // subnormal (only when e == emin)
  return sign | ((e + bias) << mantBits) | (r - 2 ** mantBits);
}

export function numberToF16(v: number): number {
  return encodeRNE(v, 10, 5);
}

export function numberToBf16(v: number): number {
  return encodeRNE(v, 7, 8);
}

export function isNaN16(h: number, dtype: 'float16' | 'bfloat16'): boolean {
  return Number.isNaN(dtype === 'float16' ? f16ToNumber(h) : bf16ToNumber(h));
}

/** Decodes an array in `dtype` (Float32Array, or Uint16Array of bits) to float64. */
export function decode(a: Float32Array | Uint16Array, dtype: DType): Float64Array {
  const out = new Float64Array(a.length);
  if (dtype === 'float32') {
    if (!(a instanceof Float32Array)) throw new Error('float32 data must be a Float32Array');
    for (let i = 0; i < a.length; i++) out[i] = a[i];
  } else {
    if (!(a instanceof Uint16Array)) throw new Error('16-bit data must be a Uint16Array');
    const f = dtype === 'float16' ? f16ToNumber : bf16ToNumber;
    for (let i = 0; i < a.length; i++) out[i] = f(a[i]);
  }
  return out;
}

/** Rounds float values to `dtype`: a Float32Array (fround) or a Uint16Array of RNE bits. */
export function encode(values: ArrayLike<number>, dtype: DType): Float32Array | Uint16Array {
  if (dtype === 'float32') return Float32Array.from(values);
  const f = dtype === 'float16' ? numberToF16 : numberToBf16;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f(values[i]);
  return out;
}

/** The raw bits of a float array: Uint32Array for float32, the Uint16Array itself otherwise. */
export function bitsOf(a: Float32Array | Uint16Array): Uint32Array | Uint16Array {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}

// ---- tricky values -----------------------------------------------------------------------

/** The bits of the float32 nearest v. */
const f32 = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0];
/**
 * Float32 values (as bit patterns) where conversions go wrong: ties, overflow to Inf, subnormals
 * of every format, zeros, infinities and NaNs (quiet, signalling, with payloads).
 */
export const TRICKY_F32_BITS: number[] = [
  // float16 ties and near-ties
  f32(1 + 2 ** -11), f32(1 + 3 * 2 ** -11), f32(1 - 2 ** -12), f32(1 + 2 ** -11 + 2 ** -23), f32(-(1 + 2 ** -11)),
  f32(2048 + 1), f32(2048 + 3), f32(0.1), f32(1 / 3), f32(-2 / 3),
  // float16 overflow: 65504 is the largest, 65520 the tie to Inf
  f32(65504), f32(65519), f32(65519.99609375), f32(65520), f32(-65520), f32(65536), f32(1e6), f32(-1e30),
  // float16 subnormals and underflow
  f32(2 ** -24), f32(2 ** -25), f32(2 ** -25 * (1 + 2 ** -20)), f32(3 * 2 ** -25), f32(5 * 2 ** -25), f32(2 ** -14),
  f32(2 ** -14 - 2 ** -25), f32(2 ** -14 - 2 ** -24), f32(1023.5 * 2 ** -24), f32(-(2 ** -25)), f32(1e-8), f32(-1e-8), f32(6e-8),
  // bfloat16 ties and near-ties
  f32(1 + 2 ** -8), f32(1 + 3 * 2 ** -8), f32(1 + 2 ** -8 + 2 ** -20), f32(-(1 + 3 * 2 ** -8)),
  0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0xff7fffff,
  // float32 subnormals (bfloat16 keeps them; float16 flushes them to zero)
  0x00000001, 0x00004000, 0x00008000, 0x0000c000, 0x00018000, 0x00028000, 0x007fffff, 0x807fffff, 0x00400000,
  // zeros, infinities, NaNs (quiet, signalling, negative, with payloads)
  0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0x7fc12345, 0xffffffff,
].map((b) => b >>> 0);

// ---- 2:4 -----------------------------------------------------------------------------------

/** |v| for ranking: NaN counts as the largest (as Infinity; ties go to the lower column). */
function rank(v: number): number {
  return Number.isNaN(v) ? Infinity : Math.abs(v);
}

/**
 * Magnitude pruning along K: per group of 4, the columns (a < b) of the two largest |w|, the
 * lower column winning ties. `values` are the decoded weights, row-major [N, K].
 */
export function pruneColumns(values: ArrayLike<number>, N: number, K: number): Uint8Array {
  const G = K / 4;
  const cols = new Uint8Array(N * G * 2);
  const idx = [0, 1, 2, 3];
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const base = n * K + 4 * g;
      const order = idx.slice().sort((i, j) => {
        const d = rank(values[base + j]) - rank(values[base + i]);
        if (d !== 0 && !Number.isNaN(d)) return d;
        return i - j; // equal magnitude (including Infinity vs NaN): lower column first
      });
      const a = Math.min(order[0], order[1]);
      const b = Math.max(order[0], order[1]);
      cols[(n * G + g) * 2] = a;
      cols[(n * G + g) * 2 + 1] = b;
    }
  }
  return cols;
}

/**
 * The columns the canonical format keeps for a matrix that already is 2:4 (README: the
 * non-zeros, padded with the lowest free columns when a group has fewer than 2), or
 * { row, group } of the first group with more than 2 non-zeros (-0.0 counts as zero, NaN does not).
 */
export function compressColumns(values: ArrayLike<number>, N: number, K: number): Uint8Array | { row: number; group: number } {
  const G = K / 4;
  const cols = new Uint8Array(N * G * 2);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const kept: number[] = [];
      for (let j = 0; j < 4; j++) {
        const v = values[n * K + 4 * g + j];
        if (v !== 0 || Number.isNaN(v)) kept.push(j);
      }
      if (kept.length > 2) return { row: n, group: g };
      for (let j = 0; j < 4 && kept.length < 2; j++) if (!kept.includes(j)) kept.push(j);
      kept.sort((p, q) => p - q);
      cols[(n * G + g) * 2] = kept[0];
      cols[(n * G + g) * 2 + 1] = kept[1];
    }
  }
  return cols;
}

/** Dense bits with only the chosen columns kept (raw bits moved, zero bits elsewhere). */
export function keepColumnsBits(bits: Uint32Array | Uint16Array, cols: Uint8Array, N: number, K: number): Uint32Array | Uint16Array {
  const out = bits instanceof Uint32Array ? new Uint32Array(N * K) : new Uint16Array(N * K);
  const G = K / 4;
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      for (let s = 0; s < 2; s++) {
        const c = n * K + 4 * g + cols[(n * G + g) * 2 + s];
        out[c] = bits[c];
      }
    }
  }
  return out;
}

/** The canonical format of README "Formats", built from dense bits and the kept columns. */
export function canonicalRef(
  bits: Uint32Array | Uint16Array,
  cols: Uint8Array,
  N: number,
  K: number,
): { values: Uint32Array | Uint16Array; meta: Uint8Array } {
  const G = K / 4;
  const mrow = Math.ceil(K / 8);
  const values = bits instanceof Uint32Array ? new Uint32Array(N * (K / 2)) : new Uint16Array(N * (K / 2));
  const meta = new Uint8Array(N * mrow);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const a = cols[(n * G + g) * 2];
      const b = cols[(n * G + g) * 2 + 1];
      values[n * (K / 2) + 2 * g] = bits[n * K + 4 * g + a];
      values[n * (K / 2) + 2 * g + 1] = bits[n * K + 4 * g + b];
      const code = a | (b << 2);
      meta[n * mrow + (g >> 1)] |= g % 2 === 0 ? code : code << 4;
    }
  }
  return { values, meta };
}

/**
 * Rebuilds dense bits from canonical values/meta by reading the README's layout literally:
 * group g of row n has its code in byte n*ceil(K/8) + floor(g/2), nibble g % 2, bits 0-1 the
 * first column and bits 2-3 the second; its values at n*K/2 + 2g and + 1. Also returns the
 * violations of the layout's invariants it saw (first >= second, a non-zero padding nibble).
 */
export function denseFromCanonical(
  values: Uint32Array | Uint16Array,
  meta: Uint8Array,
  N: number,
  K: number,
): { dense: Uint32Array | Uint16Array; problems: string[] } {
  const G = K / 4;
  const mrow = Math.ceil(K / 8);
  const dense = values instanceof Uint32Array ? new Uint32Array(N * K) : new Uint16Array(N * K);
  const problems: string[] = [];
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const byte = meta[n * mrow + Math.floor(g / 2)];
      const code = g % 2 === 0 ? byte & 0xf : byte >> 4;
      const a = code & 3;
      const b = code >> 2;
      if (a >= b && problems.length < 10) problems.push(`row ${n} group ${g}: code ${code} has first column ${a} >= second ${b}`);
      dense[n * K + 4 * g + a] = values[n * (K / 2) + 2 * g];
      dense[n * K + 4 * g + b] = values[n * (K / 2) + 2 * g + 1];
    }
    if (G % 2 === 1 && meta[n * mrow + mrow - 1] >> 4 !== 0 && problems.length < 10) {
      problems.push(`row ${n}: K/4 is odd but the last high nibble is ${meta[n * mrow + mrow - 1] >> 4}, not 0`);
    }
  }
  return { dense, problems };
}

// ---- the linear reference and its error bound ----------------------------------------------

/**
 * y = x . w^T (+ bias) in float64 from the exact (already dtype-rounded, decoded) inputs, plus
 * for each output the sum of |x_k w_k| (+ |bias|) that the error bound scales with.
 */
export function linearRef(
  x: Float64Array,
  w: Float64Array,
  bias: Float64Array | null,
  M: number,
  N: number,
  K: number,
): { ref: Float64Array; absSum: Float64Array } {
  const ref = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = x[xo + k] * w[wo + k]; // exact in float64: both factors have <= 24 significant bits
        s += p;
        a += p < 0 ? -p : p; // (not Math.abs: it is ~50x slower inside jest's vm context)
      }
      if (bias) {
        s += bias[n];
        a += Math.abs(bias[n]);
      }
      ref[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { ref, absSum };
}

/**
 * THE ERROR BOUND. The reference works on the same rounded inputs as the kernels (x and w
 * decoded exactly from their float32/float16/bfloat16 values, products exact in float64), so
 * the only differences are
 *   (1) float32 accumulation: K products and the bias summed in float32, in any order and with
 *       or without FMA, are off by at most gamma_{K+1} * (sum_k |x_k w_k| + |b|) with
 *       gamma_n = n u / (1 - n u), u = 2^-24 (Higham, Accuracy and Stability of Numerical
 *       Algorithms, 3.1; blocked or pairwise orders only do better). For K <= 1028,
 *       gamma_{K+1} < 1.0001 (K+1) u, so c = 2 covers it with a factor-2 margin and nothing else;
 *       the float64 reference itself is exact to ~2^-53 relative, negligible here. The AMX
 *       kernel for bfloat16 weights (ISA 'amx') splits x exactly into bfloat16 pieces
 *       (|x2| <= 2^-8 |x|, |x3| <= 2^-16 |x|), every product exact, and sums the first piece's
 *       products and the others' in separate float32 chains of at most 512 columns, the chunks
 *       then added: within (K + K/64 + K/512 + 2) u S, inside the same margin;
 *   (2) the one rounding of the float32 result into the output dtype, round to nearest even:
 *       half an ulp, 2^-11 relative for float16 and 2^-8 for bfloat16, of a value at most
 *       |ref| + (1); plus half the smallest subnormal as an absolute term (2^-25 for float16,
 *       2^-134 for bfloat16); nothing for float32.
 * So |y - ref| <= c (K+1) 2^-24 S + r_out (|ref| + c (K+1) 2^-24 S) + a_out, S = sum|x_k w_k| + |b|.
 *
 * Why it catches bugs: the inputs' magnitudes are in [1/8, 2), so every product lies in
 * [2^-6, 4) and is ~0.46 on average, and S ~ 0.46 K. For K <= 140 the float32 bound is below
 * 2^-6 even for the largest possible S (4 K), so a single wrong, missing or doubled product (a
 * wrong column, an off-by-one in K, a bias added twice) is always caught; at K = 260 the bound is
 * ~0.004 for a typical S, and at K = 1028 ~0.06: still far below a typical product, so such a
 * bug shows in practically every output. The 16-bit outputs add
 * 2^-8..2^-11 of |ref| ~ sqrt(K): still far below a typical product. test/checker.test.ts shows
 * the checker rejecting such perturbed results.
 */
export const BOUND_C = 2;

export function outRounding(outDtype: DType): { rel: number; abs: number } {
  if (outDtype === 'float16') return { rel: 2 ** -11, abs: 2 ** -25 };
  if (outDtype === 'bfloat16') return { rel: 2 ** -8, abs: 2 ** -134 };
  return { rel: 0, abs: 0 };
}

export function errorBound(ref: number, absSum: number, K: number, outDtype: DType, c = BOUND_C): number {
  const acc = c * (K + 1) * 2 ** -24 * absSum;
  const { rel, abs } = outRounding(outDtype);
  return acc + rel * (Math.abs(ref) + acc) + abs;
}

/** How many elements of y (in outDtype) lie outside the bound, and the first few of them. */
export function violations(
  y: Float32Array | Uint16Array,
  outDtype: DType,
  ref: Float64Array,
  absSum: Float64Array,
  N: number,
  K: number,
  c = BOUND_C,
): { count: number; first: string[] } {
  const yd = decode(y, outDtype);
  const first: string[] = [];
  let count = 0;
  for (let i = 0; i < yd.length; i++) {
    const bound = errorBound(ref[i], absSum[i], K, outDtype, c);
    const d = yd[i] - ref[i];
    const err = d < 0 ? -d : d;
    if (!(err <= bound)) {
      count++;
      if (first.length < 5) first.push(`  y[m=${Math.floor(i / N)}, n=${i % N}] = ${yd[i]}, reference ${ref[i]}, |err| ${err} > bound ${bound}`);
    }
  }
  return { count, first };
}

/**
 * Compares every element of y (in outDtype) with the reference; null when all are within the
 * bound, else a message naming the case (with its seed) and the first offending elements.
 */
export function checkLinear(
  y: Float32Array | Uint16Array,
  outDtype: DType,
  ref: Float64Array,
  absSum: Float64Array,
  M: number,
  N: number,
  K: number,
  what: string,
  c = BOUND_C,
): string | null {
  if (y.length !== M * N) return `${what}: result has ${y.length} elements, expected M*N = ${M * N}`;
  const { count, first } = violations(y, outDtype, ref, absSum, N, K, c);
  if (count === 0) return null;
  return `${what}: ${count} of ${M * N} outputs outside the error bound (M=${M} N=${N} K=${K}, out ${outDtype}, c=${c}):\n${first.join('\n')}`;
}

/** An output buffer of n elements filled with NaN (float32) or NaN bits (16-bit), so unwritten elements show. */
export function poisoned(dtype: DType, n: number): Float32Array | Uint16Array {
  return dtype === 'float32' ? new Float32Array(n).fill(NaN) : new Uint16Array(n).fill(0x7fff);
}
