/**
 * The dense tensor-core GEMM (native/cuda/gemm_dense.cuh), Y = X·Wᵀ (+ bias), on the simulated
 * device through runDenseGemm of compressed_gemm_cuda_sim.node (native/binding/cuda_sim/gemm.cc).
 *
 * Every case: fresh seeded random non-zero inputs (test/helpers/reference.ts: magnitudes in
 * [1/8, 2), rounded to float16/bfloat16; the seed is printed on failure, CG_TEST_SEED reproduces
 * it), a float64 reference from the decoded 16-bit values, an output poisoned beforehand (float32
 * NaN bits 0xFFFFFFFF, or 0xFFFF: a NaN in both 16-bit formats) so an element never written fails
 * the bound, and `out` a view into a larger poisoned buffer whose guard elements on both sides
 * must keep their poison bits (a block writing rows past M - 1 is caught; a write to a column past
 * N - 1 lands on a later row's element or the guard, caught by the bound or the guard).
 *
 * THE ERROR BOUND (checkLinear with c = 1): the inputs are exact in float32 and every product
 * x_k·w_k is exact in float32 (11x11 or 8x8 significant bits), so the only rounding before the
 * output is float32 accumulation: K - 1 additions of products and one of the bias, each rounded
 * to nearest, in whatever order the mma and the K-loop take. Recursive summation of those K + 1
 * terms is off by at most gamma_K · S = K u / (1 - K u) · S with u = 2^-24, S = sum_k |x_k w_k|
 * + |bias| (Higham 3.1), and gamma_K < (K + 1) u whenever K (K + 1) u < 1 (K < 4096):
 *     |y32 - ref| <= (K + 1) · 2^-24 · S
 * then the one rounding of y32 into a 16-bit output adds half an ulp: 2^-11 |y32| (float16) or
 * 2^-8 |y32| (bfloat16), plus half the smallest subnormal (2^-25 float16, 2^-134 bfloat16);
 * |y32| <= |ref| + the accumulation bound. (That holds for the simulator's round-to-nearest mma,
 * mma.h; a GPU's tensor cores may truncate inside the mma, which the project's BOUND_C = 2 covers.)
 * With |x|, |w| in [1/8, 2) every product is at least 2^-6, and for K <= 136 the bound stays below
 * 2^-6 (S <= 4K), so one wrong, missing or doubled product or bias fails it.
 *
 * Shapes are ragged on every edge of the 64 x 64 block tile and the 32-wide K-step: M in
 * {1, 3, 17, 70}, N in {8, 9, 33, 130}, K in {8, 24, 136} (136 = 4 K-steps + 8: the 3-stage
 * pipeline wraps around and its last stage is mostly zero-filled), including multi-block grids
 * (70 x 130: 2 x 3 blocks); both input dtypes, every output dtype, with and without bias.
 *
 * Float32 inputs run the CUDA-core kernel (native/cuda/gemm_dense_f32.cuh): one fused
 * multiply-add per k, so each step rounds once, the same K + 1 roundings as above with exact
 * products: the same bound, c = 1. Its K-step is 16 and K a multiple of 4: K in {4, 20, 52}
 * (52 = 3 K-steps + 4: the double buffer wraps and the last stage is mostly zero-filled).
 */
import * as path from 'path';
import {
  DType,
  checkLinear,
  decode,
  linearRef,
  mulberry32,
  numberToBf16,
  numberToF16,
  randNonZero,
  seedFor,
  seedNote,
} from '../helpers/reference';

const ROOT = path.resolve(__dirname, '..', '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');

type InDType = 'float16' | 'bfloat16';
interface DenseGemmArgs {
  M: number;
  N: number;
  K: number;
  dtype: InDType | 'float32';
  wDtype?: DType;
  x: Uint16Array | Float32Array;
  w: Uint16Array | Float32Array;
  bias?: Float32Array | null;
  outDtype: DType;
  out: Float32Array | Uint16Array;
}
interface SimAddon {
  runDenseGemm(args: DenseGemmArgs): { ok: boolean; error: string | null };
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const sim: SimAddon = require(ADDON);

// Poisoned elements around `out` in its buffer: GUARD before it, and after it every address a
// 64 x 64 block tile of the kernel could reach past row M - 1 or column N - 1 (up to 63 rows and
// 63 columns beyond: (M + 63) N + N + 63 < M N + 64 (N + 1)), so a missing edge check is
// reported as guard damage, not as a write past the buffer.
const GUARD = 64;
const guardAfter = (N: number) => 64 * (N + 1);
const POISON32 = 0xffffffff;
const POISON16 = 0xffff;

function encode16(v: number, dtype: InDType): number {
  return dtype === 'float16' ? numberToF16(v) : numberToBf16(v);
}

function randomBits(rng: () => number, n: number, dtype: InDType): Uint16Array {
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = encode16(randNonZero(rng), dtype);
  return a;
}

/** A poisoned buffer of GUARD + n + after elements and the view of its n after GUARD. */
function poisonedOut(
  outDtype: DType,
  n: number,
  after: number,
): { buffer: Float32Array | Uint16Array; out: Float32Array | Uint16Array } {
  if (outDtype === 'float32') {
    const buffer = new Float32Array(GUARD + n + after);
    new Uint32Array(buffer.buffer).fill(POISON32);
    return { buffer, out: buffer.subarray(GUARD, GUARD + n) };
  }
  const buffer = new Uint16Array(GUARD + n + after).fill(POISON16);
  return { buffer, out: buffer.subarray(GUARD, GUARD + n) };
}

/** The guard elements that lost their poison, as "index: bits" strings. */
function guardDamage(buffer: Float32Array | Uint16Array, n: number): string[] {
  const bits = buffer instanceof Float32Array ? new Uint32Array(buffer.buffer) : buffer;
  const poison = buffer instanceof Float32Array ? POISON32 : POISON16;
  const bad: string[] = [];
  for (let i = 0; i < bits.length; i++) {
    if (i >= GUARD && i < GUARD + n) continue;
    if (bits[i] !== poison) bad.push(`out[${i - GUARD}] = 0x${bits[i].toString(16)}`); // index < 0 or >= n
  }
  return bad;
}

interface Case {
  M: number;
  N: number;
  K: number;
  dtype: InDType;
  outDtype: DType;
  bias: boolean;
}

// Each (dtype, outDtype, bias) combination once, each shape value of M, N and K several times,
// the multi-block shape with both dtypes and all three outputs.
const CASES: Case[] = [
  { M: 1, N: 8, K: 8, dtype: 'float16', outDtype: 'float32', bias: false },
  { M: 3, N: 9, K: 24, dtype: 'float16', outDtype: 'float16', bias: true },
  { M: 17, N: 33, K: 136, dtype: 'float16', outDtype: 'bfloat16', bias: false },
  { M: 70, N: 130, K: 136, dtype: 'float16', outDtype: 'float32', bias: true },
  { M: 70, N: 9, K: 24, dtype: 'float16', outDtype: 'float16', bias: false },
  { M: 1, N: 130, K: 136, dtype: 'float16', outDtype: 'bfloat16', bias: true },
  { M: 3, N: 33, K: 8, dtype: 'bfloat16', outDtype: 'float32', bias: false },
  { M: 17, N: 130, K: 24, dtype: 'bfloat16', outDtype: 'float16', bias: true },
  { M: 70, N: 130, K: 136, dtype: 'bfloat16', outDtype: 'bfloat16', bias: false },
  { M: 1, N: 9, K: 136, dtype: 'bfloat16', outDtype: 'float32', bias: true },
  { M: 70, N: 33, K: 8, dtype: 'bfloat16', outDtype: 'float16', bias: false },
  { M: 17, N: 8, K: 136, dtype: 'bfloat16', outDtype: 'bfloat16', bias: true },
];

const F32_CASES: Array<Omit<Case, 'dtype'>> = [
  { M: 1, N: 8, K: 4, outDtype: 'float32', bias: false },
  { M: 3, N: 9, K: 20, outDtype: 'float16', bias: true },
  { M: 17, N: 33, K: 52, outDtype: 'bfloat16', bias: false },
  { M: 70, N: 130, K: 52, outDtype: 'float32', bias: true },
  { M: 65, N: 65, K: 20, outDtype: 'float32', bias: false },
];

describe('runDenseGemm, float32 inputs (the CUDA-core kernel): within the float32-accumulation bound', () => {
  test.each(F32_CASES)('M=$M N=$N K=$K float32 -> $outDtype, bias $bias', ({ M, N, K, outDtype, bias }) => {
    const label = `gemm-dense-f32 ${M}x${N}x${K} ${outDtype} ${bias}`;
    const seed = seedFor(label);
    const rng = mulberry32(seed);
    // Full float32 significands (not 16-bit values): the products are not exact in 24 bits, but
    // the FMA rounds each step once, so the bound above still holds.
    const x = Float32Array.from({ length: M * K }, () => randNonZero(rng) * (1 + rng() * 2 ** -12));
    const w = Float32Array.from({ length: N * K }, () => randNonZero(rng) * (1 + rng() * 2 ** -12));
    const b = bias ? Float32Array.from({ length: N }, () => randNonZero(rng)) : null;
    const { buffer, out } = poisonedOut(outDtype, M * N, guardAfter(N));

    const r = sim.runDenseGemm({ M, N, K, dtype: 'float32', x, w, bias: b, outDtype, out });
    expect({ ok: r.ok, error: r.error }).toEqual({ ok: true, error: null });

    const { ref, absSum } = linearRef(Float64Array.from(x), Float64Array.from(w), b ? Float64Array.from(b) : null, M, N, K);
    const msg = checkLinear(out, outDtype, ref, absSum, M, N, K, `${label}, ${seedNote(seed)}`, 1);
    if (msg) throw new Error(msg);
    expect(guardDamage(buffer, M * N)).toEqual([]);
  });
});

describe('runDenseGemm on the simulated device: Y = X·Wᵀ (+ bias) within the float32-accumulation bound', () => {
  test.each(CASES)('M=$M N=$N K=$K $dtype -> $outDtype, bias $bias', ({ M, N, K, dtype, outDtype, bias }) => {
    const label = `gemm-dense ${M}x${N}x${K} ${dtype} ${outDtype} ${bias}`;
    const seed = seedFor(label);
    const rng = mulberry32(seed);
    const x = randomBits(rng, M * K, dtype);
    const w = randomBits(rng, N * K, dtype);
    const b = bias ? Float32Array.from({ length: N }, () => randNonZero(rng)) : null;
    const { buffer, out } = poisonedOut(outDtype, M * N, guardAfter(N));

    const r = sim.runDenseGemm({ M, N, K, dtype, x, w, bias: b, outDtype, out });
    expect({ ok: r.ok, error: r.error }).toEqual({ ok: true, error: null });

    const { ref, absSum } = linearRef(decode(x, dtype), decode(w, dtype), b ? Float64Array.from(b) : null, M, N, K);
    const msg = checkLinear(out, outDtype, ref, absSum, M, N, K, `${label}, ${seedNote(seed)}`, 1);
    if (msg) throw new Error(msg);
    const damage = guardDamage(buffer, M * N);
    if (damage.length) throw new Error(`${label}: ${damage.length} guard elements around out were written: ${damage.slice(0, 5).join(', ')}`);
  });

  test('small integers give the exact product (every partial sum exact in float32), x read from an unaligned view', () => {
    // Layout check with no tolerance at all: a swapped fragment register, a wrong ldmatrix row or
    // a misplaced bias shows as an exact mismatch. x sits 1 element into its buffer (2 bytes, not
    // 16-byte aligned): the export reads it through an aligned copy.
    const M = 19, N = 70, K = 40;
    const seed = seedFor('gemm-dense exact integers');
    const rng = mulberry32(seed);
    const xv = Array.from({ length: M * K }, () => Math.floor(rng() * 7) - 3);
    const wv = Array.from({ length: N * K }, () => Math.floor(rng() * 9) - 4);
    const bv = Float32Array.from({ length: N }, () => Math.floor(rng() * 21) - 10);
    const x = new Uint16Array(M * K + 1).subarray(1);
    const w = new Uint16Array(N * K);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      xv.forEach((v, i) => (x[i] = encode16(v, dtype)));
      wv.forEach((v, i) => (w[i] = encode16(v, dtype)));
      const { buffer, out } = poisonedOut('float32', M * N, guardAfter(N));
      const r = sim.runDenseGemm({ M, N, K, dtype, x, w, bias: bv, outDtype: 'float32', out });
      expect(r.error).toBeNull();
      const bad: string[] = [];
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let s = bv[n];
          for (let k = 0; k < K; k++) s += xv[m * K + k] * wv[n * K + k];
          if (out[m * N + n] !== s) bad.push(`y[${m}, ${n}] = ${out[m * N + n]}, want ${s}`);
        }
      }
      if (bad.length) throw new Error(`${dtype}, ${seedNote(seed)}: ${bad.length} wrong\n  ${bad.slice(0, 6).join('\n  ')}`);
      expect(guardDamage(buffer, M * N)).toEqual([]);
    }
  });
});

describe('runDenseGemm: configurations the launcher refuses, arguments the export rejects', () => {
  const M = 3, N = 9;
  const base = (K: number, dtype: InDType = 'float16'): DenseGemmArgs => ({
    M, N, K, dtype,
    x: new Uint16Array(M * K).fill(0x3c00),
    w: new Uint16Array(N * K).fill(0x3c00),
    bias: null,
    outDtype: 'float32',
    out: new Float32Array(M * N).fill(NaN),
  });
  const untouched = (out: Float32Array | Uint16Array) => Array.from(out).every((v) => Number.isNaN(v));

  test('K % 8 != 0 is refused with the launcher\'s reason, and nothing is written', () => {
    for (const K of [1, 12, 20, 137]) {
      const a = base(K);
      const r = sim.runDenseGemm(a);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/K must be a multiple of 8/);
      expect(untouched(a.out)).toBe(true);
    }
  });

  test('X and W of different dtypes are refused; float32 with K % 4 != 0 too', () => {
    const a = { ...base(16), wDtype: 'bfloat16' as DType };
    const r = sim.runDenseGemm(a);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/X and W must have the same dtype/);
    expect(untouched(a.out)).toBe(true);

    for (const K of [1, 6, 18]) {
      const f = { ...base(K), dtype: 'float32' as const, x: new Float32Array(M * K).fill(1), w: new Float32Array(N * K).fill(1) };
      const rf = sim.runDenseGemm(f);
      expect(rf.ok).toBe(false);
      expect(rf.error).toMatch(/K must be a multiple of 4 for float32/);
      expect(untouched(f.out)).toBe(true);
    }
  });

  test('malformed arguments throw ERR_NATIVE', () => {
    const bad: Array<[string, (a: DenseGemmArgs) => void]> = [
      ['x too short', (a) => (a.x = new Uint16Array(M * 16 - 1))],
      ['w too long', (a) => (a.w = new Uint16Array(N * 16 + 1))],
      ['x of the wrong element type', (a) => (a.x = new Int16Array(M * 16) as unknown as Uint16Array)],
      ['bias of the wrong length', (a) => (a.bias = new Float32Array(N + 1))],
      ['out of the wrong type for float16', (a) => (a.outDtype = 'float16')],
      ['out of the wrong length', (a) => (a.out = new Float32Array(M * N - 1))],
      ['M = 0', (a) => (a.M = 0)],
      ['N not an integer', (a) => (a.N = 2.5)],
      ['unknown dtype', (a) => (a.dtype = 'float8' as InDType)],
      ['out overlapping x', (a) => {
        const buf = new Uint16Array(M * 16 + M * N);
        a.x = buf.subarray(0, M * 16);
        a.outDtype = 'float16';
        a.out = buf.subarray(M * 16 - 1, M * 16 - 1 + M * N);
      }],
    ];
    for (const [what, spoil] of bad) {
      const a = base(16);
      spoil(a);
      let err: (Error & { code?: string }) | null = null;
      try {
        sim.runDenseGemm(a);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect({ what, code: err?.code }).toEqual({ what, code: 'ERR_NATIVE' });
    }
  });
});
