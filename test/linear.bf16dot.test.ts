/**
 * The AVX512-BF16 engine of the avx512 ISA (isa/amx/quant_amx.cc, dot_block; kernels.h,
 * avx512bf16): bfloat16 x with INT4 (from M = 12), FP8 (32) or dense bfloat16 weights (96), on
 * CPUs with AVX512-BF16 and AVX512-VBMI (AMD Zen 4 and 5; on an AMX CPU this suite runs it by
 * choosing the avx512 ISA). The AMX kernels' decoders and A / B tiles, multiplied by VDPBF16PS
 * instead of the tile unit. Beyond what linear.quant.test.ts's cpu/avx512 row already runs
 * (bfloat16 x at M = 17 and 40 among others):
 *
 * - Through an identity weight y = x bit for bit (every product exact, every sum adds zeros):
 *   INT4, dense bfloat16, and every finite FP8 code through the decoder's byte tables.
 * - Row counts that leave a row tile's second half empty (M = 40: its last 16-row tile has 8
 *   rows), with one live row (17) or partly live (21, 30, 100), one row tile alone (M = 12, 16,
 *   and the last rows of a row block: 270 = 256 + 14, 260 = 256 + 4; dot_one_row_tile, whose
 *   per-channel scale blocks run in pieces of 512 columns), more rows than one row block (256) and than one split of x (1024);
 *   column tiles past one group of 16 and a ragged last tile; K chunks (512) with scale blocks
 *   inside and a K tail. Against float64 references (act-reference.ts: the bound of float32
 *   sums of exact products, as for the FMA kernels) on poisoned outputs, sync and async, with
 *   bias, 16-bit outputs and the many-adapter LoRA epilogue.
 * - Non-finite x: IEEE in its own row, no other row changes.
 * - activations: 'fp8' with one scale per row (INT4 weights; FP8 weights scaled per channel or
 *   tensor): the e4m3 values as the one piece and the row's scale on its sums. Through the
 *   identity y = x' (act_quant.h) bit for bit; against float64 at one row tile, row blocks and
 *   per-channel pieces; a non-finite x makes its row NaN; a LoRA adapter still takes x itself.
 *   Block-scaled (an FP8 weight's [bn, bk] blocks): each block's scale with the weight's, against
 *   float64 (K tails, a row block's tail of 14 rows), and non-finite rows.
 *
 * Skipped where the CPU lacks AVX512-BF16 or VBMI; linear.quant.test.ts's rows cover the FMA
 * kernels that run there instead.
 */
import * as cg from '../lib';
import { actFp8Ref, checkQuantLinear, quantLinearRef } from './helpers/act-reference';
import { checkLoraLinear, loraLinearRef, randomFactors } from './helpers/lowrank-reference';
import { expectFp8CodesExact, expectIdentity, expectNonFiniteRows, int4Identity, randomFp8Weight, randomInt4Weight, twoAdapters } from './helpers/bf16-paths';
import { checkLinear, decode, encode, linearRef, mulberry32, poisoned, randInt, randomFloat32, seedFor, seedNote } from './helpers/reference';

const info = cg.backend();
const HAS_DOT = info.kind === 'cpu' && info.cpu.isas.includes('avx512') && ['avx512_bf16', 'avx512vbmi'].every((f) => info.features.includes(f));
const describeDot = HAS_DOT ? describe : describe.skip;
const DEFAULT_ISA = info.kind === 'cpu' ? info.cpu.isa : undefined;

beforeAll(() => {
  if (HAS_DOT) cg.setCpuIsa('avx512');
});
afterAll(() => {
  if (DEFAULT_ISA) cg.setCpuIsa(DEFAULT_ISA);
});

const bf16 = (v: ArrayLike<number>): Uint16Array => encode(v, 'bfloat16') as Uint16Array;

describeDot('AVX512-BF16 engine: exact through identity weights', () => {
  const K = 64;
  test.each([12, 17, 21, 40])('INT4 identity (code 1, zero point 0, scale 1), M = %i: y = x bit for bit', (M) =>
    expectIdentity(int4Identity(K), M, K, 'bfloat16', `bf16dot int4 identity ${M}`));

  test('dense bfloat16 identity, M = 100: y = x bit for bit', () => {
    const eye = new Float32Array(K * K);
    for (let n = 0; n < K; n++) eye[n * K + n] = 1;
    return expectIdentity(cg.DenseWeight.from(eye, [K, K], { dtype: 'bfloat16' }), 100, K, 'bfloat16', 'bf16dot dense identity');
  });

  test.each(['e4m3', 'e5m2'] as const)('FP8 %s: every finite code is its value exactly (x = identity, bfloat16)', (fmt) => expectFp8CodesExact(fmt, 'bfloat16'));

  test('non-finite x: IEEE in its own row, no other row changes (INT4 identity, M = 24)', () => {
    const seed = seedFor('bf16dot non-finite');
    expectNonFiniteRows(decode(bf16(randomFloat32(mulberry32(seed), 24 * K)), 'bfloat16'), 24, K, int4Identity(K), 'bfloat16', seed);
  });
});

describeDot('AVX512-BF16 engine: every blocking boundary, against float64', () => {
  test.each([
    [12, 70, 1024, 128],
    [16, 530, 1024, -1],
    [40, 40, 256, 32],
    [17, 70, 1024, 128],
    [21, 70, 256, 64],
    [30, 600, 640, 128],
    [300, 530, 1024, 128],
    [130, 33, 1000, -1],
  ] as const)('INT4 M = %i, N = %i, K = %i, group %i (-1: per channel), bias, sync and async', async (M, N, K, groupSize) => {
    const seed = seedFor(`bf16dot int4 ${M} ${N} ${K} ${groupSize}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, groupSize, seed);
    const x = bf16(randomFloat32(rng, M * K));
    const bias = randomFloat32(rng, N);
    const { ref: y64, absSum } = quantLinearRef(decode(x, 'bfloat16'), M, ref, bias);
    const out = poisoned('float32', M * N) as Float32Array;
    expect(cg.linear(x, [M, K], w, { dtype: 'bfloat16', bias, out, outDtype: 'float32' })).toBe(out);
    expect(checkQuantLinear(out, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot int4 M=${M} sync; ${seedNote(seed)}`)).toBeNull();
    const out2 = poisoned('float16', M * N) as Uint16Array;
    expect(await cg.linearAsync(x, [M, K], w, { dtype: 'bfloat16', bias, out: out2, outDtype: 'float16' })).toBe(out2);
    expect(checkQuantLinear(out2, 'float16', y64, absSum, M, N, K, ref.extra, `bf16dot int4 M=${M} async; ${seedNote(seed)}`)).toBeNull();
  });

  test('INT4 group 32, M = 1100, N = 600, K = 256, many adapters (two splits of x, several row blocks), bfloat16 out', async () => {
    const [M, N, K, group] = [1100, 600, 256, 32] as const;
    const seed = seedFor('bf16dot int4 large');
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, group, seed);
    const x = bf16(randomFloat32(rng, M * K));
    const x64 = decode(x, 'bfloat16');
    const bias = randomFloat32(rng, N);
    const { adapters, idx, lref } = twoAdapters(rng, M, N, K, x64, ref, bias);
    const out = poisoned('bfloat16', M * N) as Uint16Array;
    const y = await cg.linearMultiLoraAsync(x, [M, K], w, adapters, idx, { dtype: 'bfloat16', bias, out, outDtype: 'bfloat16' });
    expect(y).toBe(out);
    expect(checkLoraLinear(out, 'bfloat16', lref, M, N, K, ref.extra, `bf16dot int4 multi-LoRA M=${M}; ${seedNote(seed)}`)).toBeNull();
  });

  test.each([
    ['e4m3', [16, 64], 45, 70, 200],
    ['e5m2', [1, 96], 40, 530, 1000],
    ['e4m3', 'channel', 33, 33, 1030],
    ['e4m3', 'channel', 270, 40, 1030],
  ] as const)('FP8 %s scaling %j, M = %i, N = %i, K = %i', (fmt, scaling, M, N, K) => {
    const seed = seedFor(`bf16dot fp8 ${fmt} ${JSON.stringify(scaling)} ${M}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomFp8Weight(rng, N, K, fmt, scaling, seed);
    const x = bf16(randomFloat32(rng, M * K));
    const { ref: y64, absSum } = quantLinearRef(decode(x, 'bfloat16'), M, ref, null);
    const out = poisoned('float32', M * N) as Float32Array;
    const y = cg.linear(x, [M, K], w, { dtype: 'bfloat16', outDtype: 'float32', out }) as Float32Array;
    expect(checkQuantLinear(y, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot fp8 ${fmt} M=${M}; ${seedNote(seed)}`)).toBeNull();
  });

  test.each([
    [100, 70, 200],
    [260, 70, 1029],
    [300, 600, 1029],
  ] as const)('dense bfloat16 weight, M = %i, N = %i, K = %i (odd K: a last column pair of one), bias', (M, N, K) => {
    const seed = seedFor(`bf16dot dense ${M}`);
    const rng = mulberry32(seed);
    const w = cg.DenseWeight.from(randomFloat32(rng, N * K), [N, K], { dtype: 'bfloat16' });
    const w64 = decode(w.toDense() as Uint16Array, 'bfloat16');
    const x = bf16(randomFloat32(rng, M * K));
    const bias = randomFloat32(rng, N);
    const { ref, absSum } = linearRef(decode(x, 'bfloat16'), w64, decode(bias, 'float32'), M, N, K);
    const out = poisoned('float32', M * N) as Float32Array;
    expect(cg.linear(x, [M, K], w, { dtype: 'bfloat16', bias, out, outDtype: 'float32' })).toBe(out);
    expect(checkLinear(out, 'float32', ref, absSum, M, N, K, `bf16dot dense M=${M}; ${seedNote(seed)}`)).toBeNull();
  });
});

describeDot("AVX512-BF16 engine: 'fp8' activations with one scale per row", () => {
  // The e4m3 values decode(code) are one bfloat16 piece, exactly; the kernel multiplies them and
  // applies the row's scale s to its sums: y = fround(s * sum), then the bias (act-reference.ts
  // (8)). INT4 weights (every scale block a multiple of 32) from M = 12; FP8 weights scaled per
  // channel or per tensor (the activations then have one scale per row) from M = 32.
  const fp8Act = { activations: 'fp8' } as const;

  // x with magnitudes 2^-10 .. 2^7 within each row (sums stay inside float16's range)
  const wideX = (rng: () => number, M: number, K: number): Float32Array => {
    const x = new Float32Array(M * K);
    for (let i = 0; i < x.length; i++) x[i] = (rng() < 0.5 ? -1 : 1) * (1 + rng()) * 2 ** (randInt(rng, 17) - 10);
    return x;
  };

  test.each([12, 17, 40, 270])('INT4 identity, M = %i: y = x\' (the quantized activations, act_quant.h) bit for bit, sync and async', async (M) => {
    const K = 64;
    const seed = seedFor(`bf16dot fp8-act identity ${M}`);
    const x = wideX(mulberry32(seed), M, K);
    const want = actFp8Ref(x, M, K, 0);
    const w = int4Identity(K);
    const y = cg.linear(x, [M, K], w, { ...fp8Act, out: poisoned('float32', M * K) as Float32Array }) as Float32Array;
    const y2 = (await cg.linearAsync(x, [M, K], w, { ...fp8Act, out: poisoned('float32', M * K) as Float32Array })) as Float32Array;
    const bad: string[] = [];
    for (let i = 0; i < M * K && bad.length < 5; i++)
      if (y[i] !== want[i] || y2[i] !== want[i]) bad.push(`y[${Math.floor(i / K)}][${i % K}] = ${y[i]} / ${y2[i]} (async), x' = ${want[i]}`);
    expect(`${bad.join('\n')}; ${seedNote(seed)}`).toBe(`; ${seedNote(seed)}`);
  });

  test('non-finite x: its whole row NaN (act_quant.h), no other row changes (INT4 identity, M = 24)', () => {
    const [M, K] = [24, 64];
    const seed = seedFor('bf16dot fp8-act non-finite');
    const x = wideX(mulberry32(seed), M, K);
    x[3 * K + 5] = Infinity;
    x[7 * K + 60] = -Infinity;
    x[20 * K + 33] = NaN;
    const want = actFp8Ref(x, M, K, 0);
    const y = cg.linear(x, [M, K], int4Identity(K), { ...fp8Act, out: new Float32Array(M * K).fill(-7.25e30) }) as Float32Array;
    const bad: string[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < K; n++) {
        const got = y[m * K + n];
        const ok = m === 3 || m === 7 || m === 20 ? Number.isNaN(got) : got === want[m * K + n];
        if (!ok && bad.length < 5) bad.push(`y[${m}][${n}] = ${got}, want ${m === 3 || m === 7 || m === 20 ? NaN : want[m * K + n]}`);
      }
    expect(`${bad.join('\n')}; ${seedNote(seed)}`).toBe(`; ${seedNote(seed)}`);
  });

  test.each([
    [12, 70, 1024, 128],
    [16, 530, 1024, -1],
    [40, 40, 256, 32],
    [270, 70, 1024, 128],
    [300, 530, 640, 64],
  ] as const)('INT4 M = %i, N = %i, K = %i, group %i (-1: per channel), bias, float32 / float16 out, sync and async', async (M, N, K, groupSize) => {
    const seed = seedFor(`bf16dot fp8-act int4 ${M} ${N} ${K} ${groupSize}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, groupSize, seed);
    const x = wideX(rng, M, K);
    const bias = randomFloat32(rng, N);
    const { ref: y64, absSum } = quantLinearRef(actFp8Ref(x, M, K, 0), M, ref, bias);
    const out = poisoned('float32', M * N) as Float32Array;
    expect(cg.linear(x, [M, K], w, { ...fp8Act, bias, out })).toBe(out);
    expect(checkQuantLinear(out, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot fp8-act int4 M=${M} sync; ${seedNote(seed)}`)).toBeNull();
    const out2 = poisoned('float16', M * N) as Uint16Array;
    expect(await cg.linearAsync(x, [M, K], w, { ...fp8Act, bias, out: out2, outDtype: 'float16' })).toBe(out2);
    expect(checkQuantLinear(out2, 'float16', y64, absSum, M, N, K, ref.extra, `bf16dot fp8-act int4 M=${M} async; ${seedNote(seed)}`)).toBeNull();
  });

  test.each([
    ['e4m3', 'channel', 33, 70, 1030],
    ['e5m2', 'channel', 270, 40, 520],
  ] as const)('FP8 %s weight scaled per %s, M = %i, N = %i, K = %i', (fmt, scaling, M, N, K) => {
    const seed = seedFor(`bf16dot fp8-act fp8 ${fmt} ${M}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomFp8Weight(rng, N, K, fmt, scaling, seed);
    const x = wideX(rng, M, K);
    const { ref: y64, absSum } = quantLinearRef(actFp8Ref(x, M, K, 0), M, ref, null);
    const y = cg.linear(x, [M, K], w, { ...fp8Act, out: poisoned('float32', M * N) as Float32Array }) as Float32Array;
    expect(checkQuantLinear(y, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot fp8-act fp8 ${fmt} M=${M}; ${seedNote(seed)}`)).toBeNull();
  });

  test('INT4, M = 40, with a LoRA adapter: the adapter takes x itself, the weight x\'', () => {
    const [M, N, K, r] = [40, 70, 256, 16];
    const seed = seedFor('bf16dot fp8-act lora');
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, 64, seed);
    const x = wideX(rng, M, K);
    const f = randomFactors(rng, N, K, r, 'float32');
    const lref = loraLinearRef(actFp8Ref(x, M, K, 0), Float64Array.from(x), M, N, K, ref.dense, ref.absFactor, null, [{ A64: f.A64, B64: f.B64, r, alpha: 1.5 }], null);
    const y = cg.linear(x, [M, K], w, { ...fp8Act, out: poisoned('float32', M * N) as Float32Array, lora: new cg.LoraAdapter({ A: f.A, B: f.B, alpha: 1.5 }, [N, K]) }) as Float32Array;
    expect(checkLoraLinear(y, 'float32', lref, M, N, K, ref.extra, `bf16dot fp8-act lora; ${seedNote(seed)}`)).toBeNull();
  });
});

describeDot("AVX512-BF16 engine: block-scaled 'fp8' activations (an FP8 weight's [bn, bk] blocks)", () => {
  // The activations take a scale per row and bk columns, the weight's scale blocks along K: each
  // block's sums get the weight's scale times the row's (act-reference.ts (8)). From M = 32.
  test.each([
    ['e4m3', [16, 64], 45, 70, 200],
    ['e4m3', [128, 128], 300, 130, 1000],
    ['e5m2', [1, 96], 40, 530, 1000],
    ['e4m3', [32, 32], 270, 40, 256],
  ] as const)('FP8 %s blocks %j, M = %i, N = %i, K = %i, bias, sync and async', async (fmt, scaling, M, N, K) => {
    const seed = seedFor(`bf16dot fp8-act block ${fmt} ${JSON.stringify(scaling)} ${M}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomFp8Weight(rng, N, K, fmt, scaling, seed);
    const x = randomFloat32(rng, M * K);
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k += 7) x[m * K + k] *= 2 ** ((m + k) % 13 - 6); // blocks of unlike scales
    const bias = randomFloat32(rng, N);
    const { ref: y64, absSum } = quantLinearRef(actFp8Ref(x, M, K, scaling[1]), M, ref, bias);
    const out = poisoned('float32', M * N) as Float32Array;
    expect(cg.linear(x, [M, K], w, { activations: 'fp8', bias, out })).toBe(out);
    expect(checkQuantLinear(out, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot fp8-act block M=${M} sync; ${seedNote(seed)}`)).toBeNull();
    const out2 = poisoned('float32', M * N) as Float32Array;
    expect(await cg.linearAsync(x, [M, K], w, { activations: 'fp8', bias, out: out2 })).toBe(out2);
    expect(checkQuantLinear(out2, 'float32', y64, absSum, M, N, K, ref.extra, `bf16dot fp8-act block M=${M} async; ${seedNote(seed)}`)).toBeNull();
  });

  test('a non-finite x makes its row NaN; every other row is what it is without it (M = 40, blocks [16, 64])', () => {
    const [M, N, K] = [40, 33, 256];
    const seed = seedFor('bf16dot fp8-act block non-finite');
    const rng = mulberry32(seed);
    const { w } = randomFp8Weight(rng, N, K, 'e4m3', [16, 64], seed);
    const x = randomFloat32(rng, M * K);
    const clean = cg.linear(x, [M, K], w, { activations: 'fp8' }) as Float32Array;
    x[3 * K + 5] = Infinity;
    x[7 * K + 200] = -Infinity;
    x[33 * K + 70] = NaN;
    const y = cg.linear(x, [M, K], w, { activations: 'fp8', out: new Float32Array(M * N).fill(-7.25e30) }) as Float32Array;
    const bad: string[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        const nanRow = m === 3 || m === 7 || m === 33;
        const got = y[m * N + n];
        if ((nanRow ? !Number.isNaN(got) : got !== clean[m * N + n]) && bad.length < 5) bad.push(`y[${m}][${n}] = ${got}, want ${nanRow ? NaN : clean[m * N + n]}`);
      }
    expect(`${bad.join('\n')}; ${seedNote(seed)}`).toBe(`; ${seedNote(seed)}`);
  });
});
