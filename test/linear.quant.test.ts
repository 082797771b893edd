/**
 * cg.linear / cg.linearAsync with quantized weights (Int4Weight, Fp8Weight) and the three
 * activation modes ('native', 'int8' for INT4, 'fp8'), against float64 references written
 * independently of the library (test/helpers/act-reference.ts, quant-reference.ts), on every
 * row of the (backend x ISA) matrix (test/helpers/matrix.ts; on AVX-512 machines with VNNI, the
 * cpu/avx512 row's 'int8' runs the separate exact-integer VNNI kernel).
 *
 * Covering design. 13 INT4 weights (quantize with groups 32 / 64 / 128 / per channel, symmetric
 * and asymmetric, float16 and float32 scales; act-order from fromGPTQ with a shuffled gIdx and
 * from fromCanonical; fromAWQ) and 9 FP8 weights (e4m3 / e5m2; tensor, channel and block scales,
 * blocks that do not divide N, K or either), each with its own shape: N ragged (33, 45; 24, 40,
 * 56 where GPTQ/AWQ need N % 8 == 0), K a multiple of 8 but not of 32 where the group allows
 * (per channel K = 40 and 264; FP8 K = 100, 200, 264, 300, 40), and K = 1024 for three weights.
 * Each weight runs with each of its activation modes and every M in {1, 2, 3, 7, 8, 9, 17, 40,
 * 64, 65, 130} (the direct kernels, in row tiles of 2-12 rows split evenly, up to M = 8 on
 * AVX2 and on AVX-512 up to M = 24 for INT4 and M = 64 for FP8; the dequantized tile kernels
 * above; 130 gives multi-row tiles and K blocking): 627 cases, with fresh seeded inputs each
 * (never zero, magnitudes in [1/8, 2)), the x dtype rotating over float32 / float16 / bfloat16.
 * Each row x {sync, async} runs every case; across them the options rotate (no bias / float32
 * bias / 16-bit bias; outDtype default / float32 / float16 / bfloat16; an `out` poisoned with
 * NaN or a fresh result; default / 1 / 3 threads; 'native' by default or by name).
 *
 * Besides the bound checks: the activation quantization is checked bit for bit through identity
 * weights (y = x' exactly on every path); the checker is shown to reject real kernel outputs of
 * weights with one wrong zero point, group scale, column or code, and tell an act-order result
 * from one with x left unpermuted; many concurrent linearAsync calls; non-finite activations
 * make their own row NaN (quantized activations: NaN and +-Inf alike, on every ISA and kernel;
 * native: IEEE, so Inf may stay Inf) and no other; and the errors of the activation option.
 */
import * as cg from '../lib';
import {
  QuantWeightRef,
  actFp8Ref,
  actInt8Ref,
  checkQuantLinear,
  fp8CodesRef,
  fp8WeightRef,
  int4WeightRef,
  quantLinearRef,
  quantViolations,
} from './helpers/act-reference';
import { expectRejectsCode, expectThrowsCode } from './helpers/expect-error';
import {
  Fp8Fmt,
  ScaleDt,
  diffF32,
  f16Bits,
  f16Values,
  fp8EncodeRef,
  int4QuantizeRef,
  packAWQ,
  packGPTQ,
  packNibbles,
  transposeNG,
} from './helpers/quant-reference';
import { decode, DType, DTYPES, encode, mulberry32, poisoned, randInt, randNonZero, randomFloat32, seedFor, seedNote } from './helpers/reference';
import { Target, cpuTargets, restore, targets } from './helpers/matrix';

const INFO = cg.backend();
const ROWS = targets();
const DEFAULT_ISA = INFO.cpu.isa;
const VNNI = INFO.features.includes('avx512_vnni');

afterEach(restore);
afterAll(restore);

type Act = 'native' | 'int8' | 'fp8';
type Mode = 'sync' | 'async';
type Fp8Scaling = 'tensor' | 'channel' | { block: [number, number] };
const M_LIST = [1, 2, 3, 7, 8, 9, 17, 40, 64, 65, 130];

/** The row's label, and which int8 kernel it runs where that is not the only one. */
function rowNote(t: Target, act: Act): string {
  return act === 'int8' && t.backend === 'cpu' && (t.isa === 'avx512' || t.isa === 'amx') && VNNI ? `${t.label} (VNNI int8 kernel)` : t.label;
}

// ---- weights -------------------------------------------------------------------------------

interface Built {
  w: cg.Weight;
  ref: QuantWeightRef;
  /** fp8 activations: the K extent of one activation scale (the weight's bk for block scaling). */
  actBlock: number;
  how: string;
}

interface Spec {
  label: string;
  format: 'int4' | 'fp8';
  N: number;
  K: number;
  build: (rng: () => number) => Built;
}

/**
 * INT4 test weights: rows of different magnitudes (1/4 .. 4), groups all >= 0 (asymmetric zero
 * point 0), all <= 0 (zero point 15) or mixed; every value non-zero.
 */
function int4Data(rng: () => number, N: number, K: number, group: number): Float32Array {
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

function quantizeSpec(groupSize: 32 | 64 | 128 | -1, symmetric: boolean, scaleDtype: ScaleDt, N: number, K: number): Spec {
  const group = groupSize === -1 ? K : groupSize;
  const how = `Int4Weight.quantize(group ${groupSize === -1 ? 'per-channel' : groupSize}, ${symmetric ? 'symmetric' : 'asymmetric'}, ${scaleDtype} scales)`;
  return {
    label: how, format: 'int4', N, K,
    build: (rng) => {
      const data = int4Data(rng, N, K, group);
      const w = cg.Int4Weight.quantize(data, [N, K], { groupSize, symmetric, scaleDtype });
      const r = int4QuantizeRef(data, N, K, group, symmetric, scaleDtype);
      if (!('q' in r)) throw new Error(`reference refused the data: ${JSON.stringify(r)}`);
      return { w, ref: int4WeightRef(r.q, r.scales, r.zeros, N, K, K / group, null), actBlock: 0, how };
    },
  };
}

/** An act-order gIdx: floor(p / group) for a random permutation p of the columns. */
function actOrderGIdx(rng: () => number, K: number, group: number): Int32Array {
  const perm = Array.from({ length: K }, (_, i) => i);
  for (let i = K - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return Int32Array.from(perm, (p) => Math.floor(p / group));
}

/** Scales in [2^-7, 2^-4) as stored (float16 bits or float32) and as values. */
function randomScales(rng: () => number, n: number, dt: ScaleDt): { stored: Float32Array | Uint16Array; values: Float64Array } {
  const vals = Array.from({ length: n }, () => 2 ** (-7 + 3 * rng()));
  if (dt === 'float16') {
    const stored = f16Bits(vals);
    return { stored, values: f16Values(stored) };
  }
  const stored = Float32Array.from(vals);
  return { stored, values: Float64Array.from(stored) };
}

function checkpointSpec(kind: 'gptq' | 'awq' | 'canonical', N: number, K: number, G: number, scaleDtype: ScaleDt): Spec {
  const actOrder = kind !== 'awq';
  const how =
    kind === 'gptq' ? `Int4Weight.fromGPTQ(group ${K / G}, act-order gIdx, ${scaleDtype} scales)`
      : kind === 'awq' ? `Int4Weight.fromAWQ(group ${K / G}, ${scaleDtype} scales)`
        : `Int4Weight.fromCanonical(group ${K / G}, symmetric, act-order gIdx, ${scaleDtype} scales)`;
  return {
    label: how, format: 'int4', N, K,
    build: (rng) => {
      const q = Uint8Array.from({ length: N * K }, () => randInt(rng, 16));
      const zeros = kind === 'canonical' ? null : Uint8Array.from({ length: N * G }, () => (kind === 'gptq' ? 1 + randInt(rng, 16) : randInt(rng, 16)));
      if (zeros) {
        zeros[0] = kind === 'gptq' ? 16 : 15; // the extremes of each format
        zeros[zeros.length - 1] = kind === 'gptq' ? 1 : 0;
      }
      const { stored, values } = randomScales(rng, N * G, scaleDtype);
      const gIdx = actOrder ? actOrderGIdx(rng, K, K / G) : null;
      let w: cg.Int4Weight;
      if (kind === 'gptq') {
        const { qweight, qzeros } = packGPTQ(q, zeros!, N, K, G);
        w = cg.Int4Weight.fromGPTQ({ qweight, qzeros, scales: transposeNG(stored, N, G), gIdx }, [N, K]);
      } else if (kind === 'awq') {
        const { qweight, qzeros } = packAWQ(q, zeros!, N, K, G);
        w = cg.Int4Weight.fromAWQ({ qweight, qzeros, scales: transposeNG(stored, N, G) }, [N, K]);
      } else {
        w = cg.Int4Weight.fromCanonical({ qweight: packNibbles(q, N, K), scales: stored, zeros: null, gIdx }, [N, K]);
      }
      return { w, ref: int4WeightRef(q, values, zeros, N, K, G, gIdx), actBlock: 0, how };
    },
  };
}

/**
 * FP8 test weights: rows and 16-column stripes of different magnitudes (2^-10 .. 2^10 overall),
 * so tensor, channel and block scales all differ and small values reach FP8's subnormals; 3%
 * exact zeros.
 */
function fp8Data(rng: () => number, N: number, K: number): Float32Array {
  const colE = Array.from({ length: Math.ceil(K / 16) }, () => randInt(rng, 9) - 4);
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const rowE = randInt(rng, 13) - 6;
    for (let k = 0; k < K; k++) w[n * K + k] = rng() < 0.03 ? 0 : randNonZero(rng) * 2 ** (rowE + colE[k >> 4]);
  }
  return w;
}

function unitOf(scaling: Fp8Scaling, N: number, K: number): [number, number] {
  if (scaling === 'channel') return [1, K];
  if (scaling === 'tensor') return [N, K];
  return scaling.block;
}

function fp8Spec(fmt: Fp8Fmt, scaling: Fp8Scaling, N: number, K: number): Spec {
  const how = `Fp8Weight.quantize(${fmt}, ${typeof scaling === 'string' ? scaling : `block [${scaling.block}]`})`;
  return {
    label: how, format: 'fp8', N, K,
    build: (rng) => {
      const data = fp8Data(rng, N, K);
      const w = cg.Fp8Weight.quantize(data, [N, K], { format: fmt, scaling });
      const [bn, bk] = unitOf(scaling, N, K);
      return { w, ref: fp8WeightRef(data, N, K, bn, bk, fmt).ref, actBlock: typeof scaling === 'object' ? bk : 0, how };
    },
  };
}

const INT4_SPECS: Spec[] = [
  quantizeSpec(32, true, 'float16', 33, 96),
  quantizeSpec(32, false, 'float32', 45, 160),
  quantizeSpec(64, true, 'float32', 45, 192),
  quantizeSpec(64, false, 'float16', 33, 320),
  quantizeSpec(128, true, 'float16', 33, 1024),
  quantizeSpec(128, false, 'float32', 45, 384),
  quantizeSpec(-1, true, 'float16', 33, 40),
  quantizeSpec(-1, false, 'float32', 45, 264),
  quantizeSpec(32, false, 'float16', 45, 1024),
  checkpointSpec('gptq', 40, 128, 4, 'float16'),
  checkpointSpec('gptq', 56, 256, 2, 'float32'),
  checkpointSpec('canonical', 45, 192, 3, 'float32'),
  checkpointSpec('awq', 24, 128, 2, 'float16'),
];

const FP8_SPECS: Spec[] = [
  fp8Spec('e4m3', 'tensor', 33, 264),
  fp8Spec('e4m3', 'channel', 45, 100),
  fp8Spec('e4m3', { block: [16, 64] }, 45, 264), // divides neither N nor K
  fp8Spec('e4m3', { block: [128, 128] }, 40, 384), // divides K, not N
  fp8Spec('e4m3', { block: [1, 128] }, 33, 1024),
  fp8Spec('e5m2', 'tensor', 45, 1024),
  fp8Spec('e5m2', 'channel', 33, 40),
  fp8Spec('e5m2', { block: [32, 100] }, 45, 300), // divides neither
  fp8Spec('e5m2', { block: [7, 40] }, 33, 200), // divides K, not N
];

// ---- cases ---------------------------------------------------------------------------------

interface Case {
  label: string;
  act: Act;
  M: number;
  N: number;
  K: number;
  xd: DType;
  seed: number;
  x: Float32Array | Uint16Array;
  w: cg.Weight;
  wref: QuantWeightRef;
  how: string;
  ref: Float64Array;
  absSum: Float64Array;
  bias32: Float32Array;
  bias32d: Float64Array;
  bias16: Uint16Array | null;
  bias16d: Float64Array | null;
}

/** The activations the product uses: x itself, or the documented quantization of it. */
function activationsRef(x64: Float64Array, M: number, K: number, act: Act, actBlock: number): Float64Array {
  if (act === 'int8') return actInt8Ref(x64, M, K).xq;
  if (act === 'fp8') return actFp8Ref(x64, M, K, actBlock);
  return x64;
}

function buildWeights(specs: Spec[]): Array<Built & { seed: number }> {
  return specs.map((s, i) => {
    const seed = seedFor(`linear.quant weight ${i} ${s.label} ${s.N}x${s.K}`);
    return { ...s.build(mulberry32(seed)), seed };
  });
}

function makeCases(specs: Spec[], weights: Array<Built & { seed: number }>): Case[] {
  const cases: Case[] = [];
  specs.forEach((s, i) => {
    const acts: Act[] = s.format === 'int4' ? ['native', 'int8', 'fp8'] : ['native', 'fp8'];
    acts.forEach((act, a) => {
      M_LIST.forEach((M, mi) => {
        const xd = DTYPES[(i + a + mi) % 3];
        const { N, K } = s;
        const label = `${s.label} [N=${N} K=${K}] act ${act}`;
        const seed = seedFor(`linear.quant case ${label} M=${M} x=${xd}`);
        const rng = mulberry32(seed);
        const x = encode(randomFloat32(rng, M * K), xd);
        const xq = activationsRef(decode(x, xd), M, K, act, weights[i].actBlock);
        const { ref, absSum } = quantLinearRef(xq, M, weights[i].ref, null);
        const bias32 = randomFloat32(rng, N);
        const bias16 = xd === 'float32' ? null : (encode(randomFloat32(rng, N), xd) as Uint16Array);
        cases.push({
          label, act, M, N, K, xd, seed, x, w: weights[i].w, wref: weights[i].ref, how: weights[i].how, ref, absSum,
          bias32, bias32d: decode(bias32, 'float32'), bias16, bias16d: bias16 ? decode(bias16, xd) : null,
        });
      });
    });
  });
  return cases;
}

let int4Weights: Array<Built & { seed: number }> | null = null;
let fp8Weights: Array<Built & { seed: number }> | null = null;
let int4Cases: Case[] | null = null;
let fp8Cases: Case[] | null = null;
function int4All(): { weights: Array<Built & { seed: number }>; cases: Case[] } {
  if (!int4Weights) int4Weights = buildWeights(INT4_SPECS);
  if (!int4Cases) int4Cases = makeCases(INT4_SPECS, int4Weights);
  return { weights: int4Weights, cases: int4Cases };
}
function fp8All(): { weights: Array<Built & { seed: number }>; cases: Case[] } {
  if (!fp8Weights) fp8Weights = buildWeights(FP8_SPECS);
  if (!fp8Cases) fp8Cases = makeCases(FP8_SPECS, fp8Weights);
  return { weights: fp8Weights, cases: fp8Cases };
}

const OUT_CHOICES: Array<DType | undefined> = [undefined, 'float32', 'float16', 'bfloat16'];
const BIAS_CHOICES: Array<'none' | 'float32' | 'x-dtype'> = ['none', 'float32', 'x-dtype'];
const THREAD_CHOICES: Array<number | undefined> = [undefined, 1, 3];

/** Runs one case with the options this (case, row, mode) draws, and checks every output. */
async function runCase(c: Case, ci: number, t: Target, rowIdx: number, mode: Mode): Promise<void> {
  const j = mode === 'sync' ? 0 : 1;
  const outChoice = OUT_CHOICES[(ci + 2 * rowIdx + 3 * j) % 4];
  const outDtype: DType = outChoice ?? c.xd;
  let biasKind = BIAS_CHOICES[(ci + rowIdx + j) % 3];
  if (biasKind === 'x-dtype' && c.xd === 'float32') biasKind = 'float32';
  const useOut = (ci + rowIdx + j) % 2 === 0;
  const threads = THREAD_CHOICES[(ci + j + 2 * rowIdx) % 3];
  const { M, N, K } = c;

  const options: cg.LinearOptions = {};
  if (c.xd !== 'float32') options.dtype = c.xd;
  if (c.act !== 'native' || (ci + j) % 2 === 1) options.activations = c.act;
  if (outChoice !== undefined) options.outDtype = outChoice;
  if (threads !== undefined) options.threads = threads;
  let ref = c.ref;
  let absSum = c.absSum;
  if (biasKind !== 'none') {
    const bd = biasKind === 'float32' ? c.bias32d : (c.bias16d as Float64Array);
    options.bias = biasKind === 'float32' ? c.bias32 : (c.bias16 as Uint16Array);
    ref = new Float64Array(M * N);
    absSum = new Float64Array(M * N);
    for (let i = 0; i < M * N; i++) {
      ref[i] = c.ref[i] + bd[i % N];
      absSum[i] = c.absSum[i] + Math.abs(bd[i % N]);
    }
  }
  const out = useOut ? poisoned(outDtype, M * N) : undefined;
  if (out) options.out = out;

  const y = mode === 'sync' ? cg.linear(c.x, [M, K], c.w, options) : await cg.linearAsync(c.x, [M, K], c.w, options);

  const what =
    `${rowNote(t, c.act)} ${mode}: ${c.how} [M=${M} N=${N} K=${K}] activations ${c.act}, x ${c.xd}, bias ${biasKind}, ` +
    `outDtype ${outChoice ?? `(default ${c.xd})`}, ${useOut ? 'poisoned out buffer' : 'fresh result'}, threads ${threads ?? 'default'}; ${seedNote(c.seed)}`;
  if (out) expect(y).toBe(out);
  else expect(y).toBeInstanceOf(outDtype === 'float32' ? Float32Array : Uint16Array);
  expect(checkQuantLinear(y, outDtype, ref, absSum, M, N, K, c.wref.extra, what)).toBeNull();
}

test('the machine offers at least the scalar ISA', () => {
  // About the CPU instruction sets as such: the matrix's CPU rows.
  const ISAS = cpuTargets().map((t) => t.isa);
  expect(ISAS).toContain('scalar');
  expect(ISAS).toContain(DEFAULT_ISA);
});

for (const [name, all, specs] of [
  ['INT4', int4All, INT4_SPECS],
  ['FP8', fp8All, FP8_SPECS],
] as const) {
  describe(`${name} weights: every output within the quantized-kernel bound`, () => {
    test('the weights are what the independent reference says (toDense bit for bit; act-order flagged)', () => {
      const { weights } = all();
      weights.forEach((b, i) => {
        const { N, K } = specs[i];
        const dense = (b.w as cg.Int4Weight | cg.Fp8Weight).toDense();
        expect(diffF32(dense, Float32Array.from(b.ref.dense), K, `${b.how} [${N}, ${K}]; ${seedNote(b.seed)}`)).toBeNull();
        if (b.w instanceof cg.Int4Weight) expect(b.w.actOrder).toBe(/act-order/.test(b.how));
      });
    });

    test('the cases cover every M, every x dtype and every activation mode', () => {
      const { cases } = all();
      const acts: Act[] = name === 'INT4' ? ['native', 'int8', 'fp8'] : ['native', 'fp8'];
      for (const act of acts) {
        const ms = new Set(cases.filter((c) => c.act === act).map((c) => c.M));
        expect([...ms].sort((a, b) => a - b)).toEqual(M_LIST);
        expect(new Set(cases.filter((c) => c.act === act).map((c) => c.xd)).size).toBe(3);
      }
    });

    ROWS.forEach((t, rowIdx) => {
      for (const mode of ['sync', 'async'] as const) {
        test(`${t.label} ${mode}: all weights x activation modes`, async () => {
          const { cases } = all();
          t.use();
          if (t.isa !== null) expect(cg.backend().cpu.isa).toBe(t.isa);
          for (let ci = 0; ci < cases.length; ci++) await runCase(cases[ci], ci, t, rowIdx, mode);
        });
      }
    });
  });
}

// ---- the activation quantization, bit for bit ------------------------------------------------

/**
 * With an identity weight (w[n][k] = 1 if n == k else 0: INT4 code 1, zero point 0, scale 1;
 * FP8 the code of 1.0, scales 1) every kernel computes y[m][n] = x'[m][n] exactly: the other
 * products are exact zeros, the INT4 zero-point term is 0 * sum x, the e4m3 direct kernel's 2^-8
 * and 2^8 are exact, the VNNI kernel's int32 sum is q_x and its final product fl(q_x * s_x) is
 * x' as the float paths hold it. So y is the quantized activation, as float32, bit for bit
 * (compared with ===: +0 and -0 may differ by the order of exact zero additions).
 *
 * The rows of x: row 0 has amax 127 (int8 scale exactly 1) and exact int8 ties (k + 0.5); row
 * 1 is all zero (scale 1); row 2 random; row 3 one outlier (1000) over small values; row 4 tiny
 * values (~2^-20); row 5 amax 448 (e4m3 scale exactly 1) and exact e4m3 ties, normal and
 * subnormal; row 6 blocks of 8 columns of very different magnitudes; then rows with their own
 * magnitude times 8-column stripes of their own (so a per-row scale and a per-block scale give
 * different x'). Every special value is exact in float16 and bfloat16 too.
 */
function specialX(rng: () => number, M: number, K: number): Float64Array {
  const x = new Float64Array(M * K);
  const row = (m: number): Float64Array => x.subarray(m * K, (m + 1) * K);
  for (let m = 0; m < M; m++) {
    // (magnitudes 2^-14 .. 2^12: finite in float16)
    const rowE = randInt(rng, 13) - 6;
    const stripe = Array.from({ length: Math.ceil(K / 8) }, () => randInt(rng, 11) - 5);
    for (let k = 0; k < K; k++) x[m * K + k] = randNonZero(rng) * 2 ** (rowE + stripe[k >> 3]);
  }
  const int8Ties = [127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 126.5, -126.5, 63.5, -64.5, -127, 100.25, 0.25, 17];
  row(0).fill(0).set(int8Ties);
  for (let k = int8Ties.length; k < K; k++) row(0)[k] = (randInt(rng, 254) - 127) / 2; // halves: ties or integers
  row(1).fill(0);
  for (let k = 0; k < K; k++) row(2)[k] = randNonZero(rng);
  for (let k = 0; k < K; k++) row(3)[k] = randNonZero(rng) * 0.5;
  row(3)[7] = 1000;
  for (let k = 0; k < K; k++) row(4)[k] = randNonZero(rng) * 2 ** -20;
  // e4m3 with s = 1: 1.0625 ties 1 | 1.125 -> 1; 1.1875 ties 1.125 | 1.25 -> 1.25; 304 ties
  // 288 | 320 -> 320; 432 ties 416 | 448 -> 448; 2^-10 ties 0 | 2^-9 -> 0; 3 * 2^-10 ties
  // 2^-9 | 2^-8 -> 2^-8; 2^-6 + 2^-10 ties 2^-6 | 2^-6 + 2^-9 (the normal/subnormal border).
  // -5 * 2^-10 ties -2^-8 | -3 * 2^-9 -> -2^-8; 2^-6 - 2^-10 (subnormal 7.5 * 2^-9) -> 2^-6.
  const fp8Ties = [448, 1.0625, 1.1875, -1.0625, -1.1875, 304, -304, 432, 2 ** -10, 3 * 2 ** -10, -(5 * 2 ** -10), 2 ** -6 + 2 ** -10, 2 ** -6 - 2 ** -10, 440, -446, 0.3];
  row(5).fill(0).set(fp8Ties);
  for (let k = fp8Ties.length; k < K; k++) row(5)[k] = (randInt(rng, 64) + 64.5) * 2 ** (randInt(rng, 10) - 9); // <= 127.5
  for (let k = 0; k < K; k++) row(6)[k] = randNonZero(rng) * 2 ** (3 * (k >> 3) - 12);
  return x;
}

interface IdCase {
  name: string;
  w: cg.Weight;
  act: 'int8' | 'fp8';
  block: number;
}

describe('activation quantization is the documented rule, bit for bit (identity weights)', () => {
  const K = 64;
  const N = 64;
  const MMAX = 130;
  let ids: IdCase[] = [];
  let X: Float64Array;
  let seed = 0;
  beforeAll(() => {
    seed = seedFor('linear.quant identity');
    const rng = mulberry32(seed);
    X = specialX(rng, MMAX, K);
    const q = new Uint8Array(N * K);
    for (let n = 0; n < N; n++) q[n * K + n] = 1;
    const qweight = packNibbles(q, N, K);
    const int4Id = cg.Int4Weight.fromCanonical({ qweight, scales: new Float32Array(N * 2).fill(1), zeros: new Uint8Array(N * 2) }, [N, K]);
    const gIdx = actOrderGIdx(rng, K, 32);
    const int4IdAct = cg.Int4Weight.fromCanonical({ qweight, scales: f16Bits(new Array(N * 2).fill(1)), zeros: new Uint8Array(N * 2), gIdx }, [N, K]);
    expect(int4IdAct.actOrder).toBe(true);
    const fp8Id = (fmt: Fp8Fmt, scaling: Fp8Scaling): cg.Fp8Weight => {
      const codes = new Uint8Array(N * K);
      for (let n = 0; n < N; n++) codes[n * K + n] = fp8EncodeRef(1, fmt);
      const [bn, bk] = unitOf(scaling, N, K);
      const scales = new Float32Array(Math.ceil(N / bn) * Math.ceil(K / bk)).fill(1);
      const w = cg.Fp8Weight.fromCodes({ codes, scales }, [N, K], { format: fmt, scaling });
      // (it is the identity: checked against the reference, not assumed)
      expect(diffF32(w.toDense(), Float32Array.from(fp8CodesRef(codes, scales, N, K, bn, bk, fmt).dense), K, `${fmt} identity`)).toBeNull();
      return w;
    };
    const eye = new Float32Array(N * K);
    for (let n = 0; n < N; n++) eye[n * K + n] = 1;
    expect(diffF32(int4Id.toDense(), eye, K, 'int4 identity')).toBeNull();
    expect(diffF32(int4IdAct.toDense(), eye, K, 'int4 act-order identity')).toBeNull();
    ids = [
      { name: 'INT4 identity, int8', w: int4Id, act: 'int8', block: 0 },
      { name: 'INT4 act-order identity, int8', w: int4IdAct, act: 'int8', block: 0 },
      { name: 'INT4 identity, fp8', w: int4Id, act: 'fp8', block: 0 },
      { name: 'INT4 act-order identity, fp8', w: int4IdAct, act: 'fp8', block: 0 },
      { name: 'FP8 e4m3 tensor identity, fp8', w: fp8Id('e4m3', 'tensor'), act: 'fp8', block: 0 },
      { name: 'FP8 e5m2 channel identity, fp8', w: fp8Id('e5m2', 'channel'), act: 'fp8', block: 0 },
      { name: 'FP8 e4m3 block [16, 24] identity, fp8 (blocks of 24 columns)', w: fp8Id('e4m3', { block: [16, 24] }), act: 'fp8', block: 24 },
      { name: 'FP8 e5m2 block [5, 40] identity, fp8 (blocks of 40 columns)', w: fp8Id('e5m2', { block: [5, 40] }), act: 'fp8', block: 40 },
    ];
  });

  ROWS.forEach((t, rowIdx) => {
    for (const mode of ['sync', 'async'] as const) {
      test(`${t.label} ${mode}`, async () => {
        t.use();
        let v = 0;
        for (const id of ids) {
          for (const M of [5, 9, MMAX]) {
            const xd = DTYPES[(v++ + rowIdx) % 3];
            const xs = encode(X.subarray(0, M * K), xd);
            const xq = id.act === 'int8' ? actInt8Ref(decode(xs, xd), M, K).xq : actFp8Ref(decode(xs, xd), M, K, id.block);
            const opts: cg.LinearOptions = { activations: id.act, outDtype: 'float32' };
            if (xd !== 'float32') opts.dtype = xd;
            const y = (mode === 'sync' ? cg.linear(xs, [M, K], id.w, opts) : await cg.linearAsync(xs, [M, K], id.w, opts)) as Float32Array;
            const bad: string[] = [];
            let count = 0;
            for (let i = 0; i < M * N; i++) {
              const want = Math.fround(xq[i]);
              if (!(y[i] === want)) {
                count++;
                if (bad.length < 6) bad.push(`  [m=${Math.floor(i / N)}, k=${i % N}]: y ${y[i]}, x' ${want} (x ${decode(xs, xd)[i]})`);
              }
            }
            const what = `${rowNote(t, id.act)} ${mode}: ${id.name}, M=${M}, x ${xd}; ${seedNote(seed)}`;
            expect(count === 0 ? null : `${what}: ${count} of ${M * N} quantized activations differ:\n${bad.join('\n')}`).toBeNull();
          }
        }
      });
    }
  });

  test('the rows meant to be special are (the reference sees the scales and ties the comments claim)', () => {
    // A check on the test's own data, so that the exact comparisons above mean what they say.
    const r = actInt8Ref(X.subarray(0, 7 * K), 7, K);
    expect(r.scale[0]).toBe(1);
    expect(Array.from(r.q.subarray(0, 8))).toEqual([127, 0, 2, 2, 0, -2, -2, 4]);
    expect(r.scale[1]).toBe(1);
    const f = actFp8Ref(X.subarray(5 * K, 6 * K), 1, K, 0);
    expect(Array.from(f.subarray(0, 13))).toEqual([448, 1, 1.25, -1, -1.25, 320, -320, 448, 0, 2 ** -8, -(2 ** -8), 2 ** -6, 2 ** -6]);
    // per-row and per-24-column-block scales give different x' on the striped rows
    const rows = X.subarray(7 * K, 20 * K);
    const perRow = actFp8Ref(rows, 13, K, 0);
    const perBlock = actFp8Ref(rows, 13, K, 24);
    expect(perRow.some((v, i) => v !== perBlock[i])).toBe(true);
  });
});

// ---- the checker catches real mistakes ---------------------------------------------------

describe('the checker rejects real kernel outputs of a wrong weight', () => {
  /**
   * The reference and bound of a correct weight, and the library's output for a weight with one
   * mistake in row n: the outputs of column n must be rejected (most of them; all, in practice)
   * and every other column accepted. On the default ISA at M = 9 (tiles) and M = 3 (direct),
   * native and quantized activations.
   */
  /** The wrong column's outputs must be rejected (at least half of them) and no other output. */
  function expectCaught(what: string, res: { inColumn: number; elsewhere: number }, M: number, note: string): void {
    const ok = res.inColumn >= Math.ceil(M / 2) && res.elsewhere === 0;
    expect(ok ? null : `${what}: the checker rejected ${res.inColumn} of the ${M} outputs of the wrong column and ${res.elsewhere} others; ${note}`).toBeNull();
  }

  function rejected(
    x: Float32Array,
    M: number,
    K: number,
    N: number,
    wrong: cg.Weight,
    ref: QuantWeightRef,
    act: Act,
    actBlock: number,
    n: number,
  ): { inColumn: number; elsewhere: number } {
    const xq = activationsRef(decode(x, 'float32'), M, K, act, actBlock);
    const { ref: r, absSum } = quantLinearRef(xq, M, ref, null);
    const y = cg.linear(x, [M, K], wrong, { activations: act }) as Float32Array;
    const { bad } = quantViolations(y, 'float32', r, absSum, N, K, ref.extra);
    let inColumn = 0;
    let elsewhere = 0;
    for (let i = 0; i < M * N; i++) if (bad[i]) (i % N === n ? inColumn++ : elsewhere++);
    return { inColumn, elsewhere };
  }

  test('INT4: a wrong zero point, a wrong group scale, two columns swapped, act-order x left unpermuted', () => {
    const seed = seedFor('linear.quant checker int4');
    const note = seedNote(seed);
    const rng = mulberry32(seed);
    const N = 33;
    const K = 160;
    const group = 32;
    const G = K / group;
    const data = int4Data(rng, N, K, group);
    const r = int4QuantizeRef(data, N, K, group, false, 'float32');
    if (!('q' in r)) throw new Error('reference refused the data');
    const good = int4WeightRef(r.q, r.scales, r.zeros, N, K, G, null);
    const n = 5;
    const g = 2;
    const scales = Float32Array.from(r.scales);
    const build = (q: Uint8Array, s: Float32Array, z: Uint8Array, gIdx: Int32Array | null = null): cg.Int4Weight =>
      cg.Int4Weight.fromCanonical({ qweight: packNibbles(q, N, K), scales: s, zeros: z, gIdx }, [N, K]);
    // the correct weight passes
    const wrongs: Array<[string, cg.Int4Weight]> = [];
    // one zero point off by one
    const z1 = r.zeros!.slice();
    z1[n * G + g] = z1[n * G + g] < 8 ? z1[n * G + g] + 1 : z1[n * G + g] - 1;
    wrongs.push(['zero point off by one', build(r.q, scales, z1)]);
    // a group's scale taken from its neighbour (a row where the two differ by 10% or more)
    let ns = n;
    while (Math.abs(scales[ns * G + g] / scales[ns * G + g + 1] - 1) < 0.1 && ns < N - 1) ns++;
    const s1 = scales.slice();
    s1[ns * G + g] = scales[ns * G + g + 1];
    // two neighbouring columns swapped (codes that differ by 4 or more)
    let k = 0;
    while (Math.abs(r.q[n * K + k] - r.q[n * K + k + 1]) < 4 && k < K - 2) k++;
    const q1 = r.q.slice();
    [q1[n * K + k], q1[n * K + k + 1]] = [q1[n * K + k + 1], q1[n * K + k]];
    wrongs.push(['two columns swapped', build(q1, scales, r.zeros!)]);
    const x = randomFloat32(rng, 9 * K);
    for (const M of [3, 9]) {
      for (const act of ['native', 'int8', 'fp8'] as Act[]) {
        const xs = x.subarray(0, M * K);
        const ok = rejected(xs, M, K, N, build(r.q, scales, r.zeros!), good, act, 0, n);
        expect(`correct weight, M=${M}, ${act}: ${ok.inColumn + ok.elsewhere} rejected; ${note}`).toBe(`correct weight, M=${M}, ${act}: 0 rejected; ${note}`);
        for (const [what, w] of wrongs) expectCaught(`${what} (row ${n}), M=${M}, ${act}`, rejected(xs, M, K, N, w, good, act, 0, n), M, note);
        expectCaught(`wrong group scale (row ${ns}), M=${M}, ${act}`, rejected(xs, M, K, N, build(r.q, s1, r.zeros!), good, act, 0, ns), M, note);
      }
    }
    // act-order: the library stores the columns sorted by group (stable) and permutes x the
    // same way. Had it forgotten to permute x, it would compute x . w_sorted^T with
    // w_sorted[n][c] = w[n][perm[c]]: the checker must tell that apart from x . w^T (and the
    // real output must be the latter).
    const gIdx = actOrderGIdx(rng, K, group);
    const wAct = build(r.q, scales, r.zeros!, gIdx);
    const refAct = int4WeightRef(r.q, r.scales, r.zeros, N, K, G, gIdx);
    const perm = Array.from({ length: K }, (_, c) => c).sort((a, b) => gIdx[a] - gIdx[b] || a - b);
    const sorted = (a: Float64Array): Float64Array => {
      const o = new Float64Array(N * K);
      for (let row = 0; row < N; row++) for (let c = 0; c < K; c++) o[row * K + c] = a[row * K + perm[c]];
      return o;
    };
    const forgot: QuantWeightRef = { ...refAct, dense: sorted(refAct.dense), absFactor: sorted(refAct.absFactor) };
    for (const M of [3, 9]) {
      for (const act of ['native', 'int8', 'fp8'] as Act[]) {
        const xs = x.subarray(0, M * K);
        const xq = activationsRef(decode(xs, 'float32'), M, K, act, 0);
        const y = cg.linear(xs, [M, K], wAct, { activations: act }) as Float32Array;
        const right = quantLinearRef(xq, M, refAct, null);
        expect(checkQuantLinear(y, 'float32', right.ref, right.absSum, M, N, K, refAct.extra, `act-order M=${M} ${act}; ${note}`)).toBeNull();
        const wrong = quantLinearRef(xq, M, forgot, null);
        const { count } = quantViolations(y, 'float32', wrong.ref, wrong.absSum, N, K, forgot.extra);
        expect(`act-order, x not permuted, M=${M} ${act}: ${count >= 0.9 * M * N ? 'most' : count} of ${M * N} rejected; ${note}`).toBe(
          `act-order, x not permuted, M=${M} ${act}: most of ${M * N} rejected; ${note}`,
        );
      }
    }
  });

  test('FP8: a wrong channel scale, a code one step off', () => {
    const seed = seedFor('linear.quant checker fp8');
    const note = seedNote(seed);
    const rng = mulberry32(seed);
    const N = 33;
    const K = 264;
    const data = fp8Data(rng, N, K);
    const { codes, scales, ref } = fp8WeightRef(data, N, K, 1, K, 'e4m3');
    const build = (c: Uint8Array, s: Float32Array): cg.Fp8Weight => cg.Fp8Weight.fromCodes({ codes: c, scales: s }, [N, K], { format: 'e4m3', scaling: 'channel' });
    // a row whose scale differs from the next row's by 10% or more takes the next row's scale
    let ns = 5;
    while (Math.abs(scales[ns] / scales[ns + 1] - 1) < 0.1 && ns < N - 2) ns++;
    const s1 = scales.slice();
    s1[ns] = scales[ns + 1];
    // row 5's largest weight one e4m3 step smaller in magnitude (448 -> 416 times the scale)
    const n = 5;
    let kmax = 0;
    for (let k = 0; k < K; k++) if ((codes[n * K + k] & 0x7f) > (codes[n * K + kmax] & 0x7f)) kmax = k;
    const c1 = codes.slice();
    c1[n * K + kmax] -= 1;
    const x = randomFloat32(rng, 9 * K);
    for (const M of [3, 9]) {
      for (const act of ['native', 'fp8'] as Act[]) {
        const xs = x.subarray(0, M * K);
        const ok = rejected(xs, M, K, N, build(codes, scales), ref, act, 0, n);
        expect(`correct weight, M=${M}, ${act}: ${ok.inColumn + ok.elsewhere} rejected; ${note}`).toBe(`correct weight, M=${M}, ${act}: 0 rejected; ${note}`);
        expectCaught(`wrong channel scale (row ${ns}), M=${M}, ${act}`, rejected(xs, M, K, N, build(codes, s1), ref, act, 0, ns), M, note);
        expectCaught(`a code one step off (row ${n}), M=${M}, ${act}`, rejected(xs, M, K, N, build(c1, scales), ref, act, 0, n), M, note);
      }
    }
  });
});

// ---- concurrency -------------------------------------------------------------------------

describe('concurrent linearAsync calls', () => {
  test('48 calls in flight, mixing INT4 / FP8 weights, activation modes, ISAs, dtypes and threads, give correct independent results', async () => {
    const all = [...int4All().cases, ...fp8All().cases];
    const pending: Array<{ p: Promise<Float32Array | Uint16Array>; c: Case; outDtype: DType; t: Target; out?: Float32Array | Uint16Array }> = [];
    for (let i = 0; i < 48; i++) {
      const c = all[(i * 7) % all.length];
      const t = ROWS[i % ROWS.length];
      t.use();
      const outDtype = DTYPES[i % 3];
      const x = c.x.slice();
      const out = i % 4 === 0 ? poisoned(outDtype, c.M * c.N) : undefined;
      const opts: cg.LinearOptions = { activations: c.act, outDtype, threads: 1 + (i % 3) };
      if (c.xd !== 'float32') opts.dtype = c.xd;
      if (out) opts.out = out;
      const p = cg.linearAsync(x, [c.M, c.K], c.w, opts);
      // x is copied when the call is made: scribbling over it now must not change the result
      if (x instanceof Float32Array) x.fill(NaN);
      else x.fill(0x7fff);
      pending.push({ p, c, outDtype, t, out });
    }
    restore();
    const ys = await Promise.all(pending.map((e) => e.p));
    ys.forEach((y, i) => {
      const { c, outDtype, t, out } = pending[i];
      if (out) expect(y).toBe(out);
      const what = `concurrent call ${i}: ${rowNote(t, c.act)} ${c.how} [M=${c.M} N=${c.N} K=${c.K}] activations ${c.act}, x ${c.xd}, out ${outDtype}; ${seedNote(c.seed)}`;
      expect(checkQuantLinear(y, outDtype, c.ref, c.absSum, c.M, c.N, c.K, c.wref.extra, what)).toBeNull();
    });
  });
});

// ---- non-finite activations ----------------------------------------------------------------

describe('non-finite activations stay non-finite, in their own row', () => {
  // README ("Quantized activations"): a NaN or an infinity in a row of x makes that row of y all
  // NaN with quantized activations, on every ISA and kernel; native activations follow IEEE
  // arithmetic (NaN * w = NaN; an infinity may give +-Inf or NaN). Other rows stay finite.
  const N = 33;
  const K = 64;
  const w32 = Float32Array.from({ length: N * K }, (_, i) => ((i * 37) % 17) / 8 - 1.0625);
  const int4 = cg.Int4Weight.quantize(w32, [N, K], { groupSize: 32, symmetric: false });
  const fp8 = cg.Fp8Weight.quantize(w32, [N, K], { format: 'e4m3', scaling: { block: [16, 32] } });

  /** Rows of y (float32) that are all non-finite / all NaN / all finite. */
  function rowsOf(y: Float32Array, M: number): Array<'nan' | 'nonfinite' | 'finite' | 'mixed'> {
    return Array.from({ length: M }, (_, m) => {
      const r = Array.from(y.subarray(m * N, (m + 1) * N));
      if (r.every(Number.isNaN)) return 'nan';
      if (r.every((v) => !Number.isFinite(v))) return 'nonfinite';
      if (r.every(Number.isFinite)) return 'finite';
      return 'mixed';
    });
  }

  function run(t: Target, w: cg.Weight, act: Act, bad: number, M: number): Array<string> {
    t.use();
    const x = Float32Array.from({ length: M * K }, (_, i) => ((i * 13) % 11) / 4 - 1.3);
    x[1 * K + 5] = bad; // row 1
    return rowsOf(cg.linear(x, [M, K], w, { activations: act }) as Float32Array, M);
  }

  const combos: Array<[string, cg.Weight, Act]> = [
    ['INT4', int4, 'native'],
    ['INT4', int4, 'fp8'],
    ['FP8', fp8, 'native'],
    ['FP8', fp8, 'fp8'],
  ];
  for (const t of ROWS) {
    test(`${t.label}: NaN -> that row all NaN, other rows finite (native and fp8 activations, M = 3 and 12)`, () => {
      for (const [name, w, act] of combos) {
        for (const M of [3, 12]) {
          const want = Array.from({ length: M }, (_, m) => (m === 1 ? 'nan' : 'finite'));
          expect(`${name} ${act} M=${M}: ${run(t, w, act, NaN, M).join(' ')}`).toBe(`${name} ${act} M=${M}: ${want.join(' ')}`);
        }
      }
    });

    test(`${t.label}: NaN -> that row all NaN with activations 'int8' too (INT4, M = 3 and 12)`, () => {
      for (const M of [3, 12]) {
        const want = Array.from({ length: M }, (_, m) => (m === 1 ? 'nan' : 'finite'));
        expect(`int8 M=${M}: ${run(t, int4, 'int8', NaN, M).join(' ')}`).toBe(`int8 M=${M}: ${want.join(' ')}`);
      }
    });

    test(`${t.label}: +-Inf -> that row all NaN with quantized activations, all non-finite with native ones; other rows finite`, () => {
      for (const [name, w, act] of [...combos, ['INT4', int4, 'int8'] as [string, cg.Weight, Act]]) {
        for (const bad of [Infinity, -Infinity]) {
          for (const M of [3, 12]) {
            const got = run(t, w, act, bad, M).map((r) => (r === 'nan' && act === 'native' ? 'nonfinite' : r));
            const want = Array.from({ length: M }, (_, m) => (m === 1 ? (act === 'native' ? 'nonfinite' : 'nan') : 'finite'));
            expect(`${name} ${act} ${bad} M=${M}: ${got.join(' ')}`).toBe(`${name} ${act} ${bad} M=${M}: ${want.join(' ')}`);
          }
        }
      }
    });
  }
});

// ---- weight rows that are all zero -----------------------------------------------------------

describe('an INT4 weight row that dequantizes to zero gives exactly the bias', () => {
  // Such a row's codes all equal its zero point, so every term x * (q - z) is an exact 0 and the
  // result is the bias bit for bit, whatever x, on every ISA, kernel (direct tiles up to M = 24
  // for INT4 on AVX-512, dequantized tiles above) and activation mode. (A kernel that subtracts z * sum(x) after
  // each group leaves rounding residue there: bias + 7.6e-6 was seen.)
  const N = 40;
  const K = 256;
  const ZERO_ROWS = [3, 17, 39];
  let weights: Array<[string, cg.Int4Weight]> = [];
  let bias: Float32Array;
  let rng: () => number;
  let seed = 0;
  beforeAll(() => {
    seed = seedFor('linear.quant zero rows');
    rng = mulberry32(seed);
    const data = Float32Array.from({ length: N * K }, () => randNonZero(rng));
    for (const n of ZERO_ROWS) data.fill(0, n * K, (n + 1) * K);
    // Codes equal to a zero point that is not 8, under a scale that is not a power of two.
    const q = Uint8Array.from({ length: N * K }, () => randInt(rng, 16));
    const zeros = Uint8Array.from({ length: N * 2 }, () => randInt(rng, 16));
    for (const n of ZERO_ROWS) {
      zeros[n * 2] = 11;
      zeros[n * 2 + 1] = 4;
      for (let k = 0; k < K; k++) q[n * K + k] = k < 128 ? 11 : 4;
    }
    const scales = Float32Array.from({ length: N * 2 }, () => 0.37 * (1 + rng()));
    weights = [
      ['quantize symmetric', cg.Int4Weight.quantize(data, [N, K], { groupSize: 128, symmetric: true })],
      ['quantize asymmetric', cg.Int4Weight.quantize(data, [N, K], { groupSize: 128, symmetric: false })],
      ['fromCanonical, codes = zero point 11 / 4', cg.Int4Weight.fromCanonical({ qweight: packNibbles(q, N, K), scales, zeros }, [N, K])],
    ];
    bias = Float32Array.from({ length: N }, () => randNonZero(rng));
  });
  afterAll(() => restore());

  for (const t of ROWS) {
    test(`${t.label}: y = bias exactly in those rows, M in {1, 3, 16, 64, 65, 130}`, () => {
      t.use();
      for (const [how, w] of weights) {
        for (const act of ['native', 'fp8', 'int8'] as const) {
          for (const M of [1, 3, 16, 64, 65, 130]) {
            const x = Float32Array.from({ length: M * K }, () => randNonZero(rng));
            const out = new Float32Array(M * N).fill(NaN); // poisoned: every element must be written
            const y = cg.linear(x, [M, K], w, { bias, activations: act, out }) as Float32Array;
            const bad: string[] = [];
            for (let m = 0; m < M; m++) {
              for (const n of ZERO_ROWS) if (!Object.is(y[m * N + n], bias[n])) bad.push(`y[${m}][${n}] = ${y[m * N + n]} (bias ${bias[n]})`);
              if (!Number.isFinite(y[m * N])) bad.push(`y[${m}][0] = ${y[m * N]}`);
            }
            expect(`${how}, ${act}, M=${M}: ${bad.slice(0, 4).join('; ')}; ${seedNote(seed)}`).toBe(`${how}, ${act}, M=${M}: ; ${seedNote(seed)}`);
          }
        }
      }
    });
  }
});

// ---- errors ------------------------------------------------------------------------------

describe('errors of the activations option', () => {
  const M = 3;
  const N = 16;
  const K = 64;
  const w32 = Float32Array.from({ length: N * K }, (_, i) => ((i * 37) % 17) / 8 - 1);
  const x = Float32Array.from({ length: M * K }, (_, i) => ((i * 13) % 11) / 4 - 1.25);
  const int4 = cg.Int4Weight.quantize(w32, [N, K], { groupSize: 32 });
  const fp8 = cg.Fp8Weight.quantize(w32, [N, K], { format: 'e4m3', scaling: { block: [8, 32] } });
  const dense = cg.DenseWeight.from(w32, [N, K]);
  const sparse = cg.Sparse24Weight.prune(w32, [N, K]);

  async function both(w: cg.Weight, opts: cg.LinearOptions, cls: new (...a: never[]) => Error, code: string, xx = x, shape: [number, number] = [M, K]): Promise<void> {
    const out = new Float32Array(shape[0] * N).fill(7);
    expectThrowsCode(() => cg.linear(xx, shape, w, { ...opts, out }), cls, code);
    expect(out.every((v) => v === 7)).toBe(true); // nothing written
    await expectRejectsCode(() => cg.linearAsync(xx, shape, w, opts), cls, code);
  }

  test("activations 'int8' with an Fp8Weight: ERR_NOT_SUPPORTED", async () => {
    await both(fp8, { activations: 'int8' }, Error, 'ERR_NOT_SUPPORTED');
    await both(cg.Fp8Weight.quantize(w32, [N, K], { format: 'e5m2', scaling: 'tensor' }), { activations: 'int8' }, Error, 'ERR_NOT_SUPPORTED');
  });

  test.each([
    ['DenseWeight', 'fp8'],
    ['DenseWeight', 'int8'],
    ['Sparse24Weight', 'fp8'],
    ['Sparse24Weight', 'int8'],
  ] as const)("%s with activations '%s': ERR_NOT_SUPPORTED", async (kind, act) => {
    await both(kind === 'DenseWeight' ? dense : sparse, { activations: act }, Error, 'ERR_NOT_SUPPORTED');
  });

  test.each(['fp4', 'FP8', 'int4', '', 8] as unknown[])("activations %p: RangeError ERR_INVALID_ARG (INT4 and FP8 weights)", async (act) => {
    for (const w of [int4, fp8]) await both(w, { activations: act as 'fp8' }, RangeError, 'ERR_INVALID_ARG');
  });

  test.each(['native', 'int8', 'fp8'] as const)("x with the wrong K for the weight, activations '%s': RangeError ERR_SHAPE_MISMATCH", async (act) => {
    const K2 = K - 8;
    const x2 = x.subarray(0, M * K2);
    await both(int4, { activations: act }, RangeError, 'ERR_SHAPE_MISMATCH', x2, [M, K2]);
    if (act !== 'int8') await both(fp8, { activations: act }, RangeError, 'ERR_SHAPE_MISMATCH', x2, [M, K2]);
    const x3 = new Float32Array(M * (K + 32));
    await both(int4, { activations: act }, RangeError, 'ERR_SHAPE_MISMATCH', x3, [M, K + 32]);
  });

  test("the valid modes are accepted on both formats ('native', undefined, 'fp8'; 'int8' on INT4)", () => {
    for (const w of [int4, fp8]) {
      for (const act of [undefined, 'native', 'fp8'] as const) expect(cg.linear(x, [M, K], w, { activations: act })).toBeInstanceOf(Float32Array);
    }
    expect(cg.linear(x, [M, K], int4, { activations: 'int8' })).toBeInstanceOf(Float32Array);
  });
});
