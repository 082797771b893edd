/**
 * The AMX kernels (ISA 'amx': isa/amx/quant_amx.cc; INT4, FP8 and dense bfloat16 weights with float activations
 * from M = 14 with float32 or float16 x, 8 with bfloat16, on CPUs with AMX-BF16) beyond what the (backend x ISA) matrix of
 * linear.quant.test.ts, ops/lora.test.ts and ops/multi-lora.test.ts already runs on its cpu/amx
 * row (M up to 130, N up to 56):
 *
 * - x is split into bfloat16 pieces whose sum is x exactly: through an identity weight (INT4
 *   code 1, zero point 0, scale 1) y must be x bit for bit, for float32 x with all 24 bits
 *   of the significand in use (3 pieces), float16 (2) and bfloat16 (1); a kernel that kept
 *   fewer pieces loses the low bits. Non-finite x: IEEE (an infinity times the weight's zeros
 *   is NaN, its own column keeps the infinity), and no other row changes.
 * - Shapes that cross every blocking boundary of the kernel: more rows than one split of x
 *   (1024) and than one row block (256), a last row tile of 12 rows, more than one group of 16
 *   column tiles and a ragged last tile, K chunks (512) with scale blocks inside them and a
 *   K tail; against float64 references (act-reference.ts, lowrank-reference.ts) on poisoned
 *   outputs, with the many-adapter LoRA epilogue on the largest one (rows of the second x
 *   split must find their own adapters).
 * - Dense bfloat16 weights (from M = 48 with float32 x, 16 float16, 10 bfloat16): the identity
 *   check, and a large shape with an odd K against float64 (reference.ts's bound).
 * - INT4 with int8 activations on AMX-INT8 (from M = 32): the AVX512-VNNI kernel's result bit for
 *   bit (the same integer sums and the same float operations in the same order), and within
 *   the float64 bound, for groups of 32 (tiles of 32 columns), 128 and per channel.
 *
 * Skipped where the CPU (or Linux) offers no AMX; the cpu/avx512 row of those suites runs the
 * same cases there.
 */
import * as cg from '../lib';
import { actInt8Ref, checkQuantLinear, quantLinearRef } from './helpers/act-reference';
import { checkLoraLinear } from './helpers/lowrank-reference';
import { expectFp8CodesExact, expectIdentity, expectNonFiniteRows, int4Identity, randomFp8Weight, randomInt4Weight, twoAdapters } from './helpers/bf16-paths';
import { checkLinear, decode, encode, linearRef, mulberry32, poisoned, randomFloat32, seedFor, seedNote } from './helpers/reference';

const HAS_AMX = cg.backend().kind === 'cpu' && cg.backend().cpu.isas.includes('amx');
const describeAmx = HAS_AMX ? describe : describe.skip;
const DEFAULT_ISA = cg.backend().cpu.isa;

afterAll(() => {
  if (cg.backend().kind === 'cpu') cg.setCpuIsa(DEFAULT_ISA);
});

describeAmx('AMX: x split into bfloat16 pieces exactly', () => {
  const K = 64;
  const M = 40;
  let w: cg.Int4Weight;
  beforeAll(() => {
    cg.setCpuIsa('amx');
    w = int4Identity(K);
  });

  test.each(['float32', 'float16', 'bfloat16'] as const)('identity weight: y = x bit for bit (x %s)', (xd) => expectIdentity(w, M, K, xd, `amx identity ${xd}`));

  test('non-finite x: IEEE in its own row, no other row changes', () => {
    const seed = seedFor('amx identity non-finite');
    expectNonFiniteRows(decode(randomFloat32(mulberry32(seed), M * K), 'float32'), M, K, w, 'float32', seed);
  });
});

describeAmx('AMX: dense bfloat16 weights', () => {
  beforeAll(() => cg.setCpuIsa('amx'));

  test.each(['float32', 'float16', 'bfloat16'] as const)('identity weight, M = 60: y = x bit for bit (x %s)', (xd) => {
    const [M, N, K] = [60, 64, 64];
    const eye = new Float32Array(N * K);
    for (let n = 0; n < N; n++) eye[n * K + n] = 1;
    return expectIdentity(cg.DenseWeight.from(eye, [N, K], { dtype: 'bfloat16' }), M, K, xd, `amx dense identity ${xd}`);
  });

  test('M = 300, N = 600, K = 1029 (odd: a last column pair of one), float32 x, bias, against float64 (sync and async)', async () => {
    const [M, N, K] = [300, 600, 1029];
    const seed = seedFor('amx dense large');
    const rng = mulberry32(seed);
    const w = cg.DenseWeight.from(randomFloat32(rng, N * K), [N, K], { dtype: 'bfloat16' });
    const w64 = decode(w.toDense() as Uint16Array, 'bfloat16');
    const x = randomFloat32(rng, M * K);
    const bias = randomFloat32(rng, N);
    const { ref, absSum } = linearRef(decode(x, 'float32'), w64, decode(bias, 'float32'), M, N, K);
    const out = poisoned('float32', M * N) as Float32Array;
    expect(cg.linear(x, [M, K], w, { bias, out })).toBe(out);
    expect(checkLinear(out, 'float32', ref, absSum, M, N, K, `amx dense bf16 sync; ${seedNote(seed)}`)).toBeNull();
    const y2 = (await cg.linearAsync(x, [M, K], w, { bias, outDtype: 'float16' })) as Uint16Array;
    expect(checkLinear(y2, 'float16', ref, absSum, M, N, K, `amx dense bf16 async, float16 out; ${seedNote(seed)}`)).toBeNull();
  });
});

describeAmx('AMX: every blocking boundary, against float64', () => {
  beforeAll(() => cg.setCpuIsa('amx'));

  test('INT4 group 32 asymmetric, M = 1100, N = 600, K = 256, float32 x, bias, many adapters (sync and async)', async () => {
    const [M, N, K] = [1100, 600, 256];
    const group = 32;
    const seed = seedFor('amx int4 large');
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, group, seed);
    const x = randomFloat32(rng, M * K);
    const x64 = decode(x, 'float32');
    const bias = randomFloat32(rng, N);
    const { ref: y64, absSum } = quantLinearRef(x64, M, ref, bias);
    const out = poisoned('float32', M * N) as Float32Array;
    const y = cg.linear(x, [M, K], w, { bias, out, threads: 2 }) as Float32Array;
    expect(y).toBe(out);
    expect(checkQuantLinear(y, 'float32', y64, absSum, M, N, K, ref.extra, `amx int4 M=${M} sync; ${seedNote(seed)}`)).toBeNull();

    // adapters of ranks 8 and 16, and rows with none, chosen per row
    const { adapters, idx, lref } = twoAdapters(rng, M, N, K, x64, ref, bias);
    const out2 = poisoned('bfloat16', M * N) as Uint16Array;
    const y2 = await cg.linearMultiLoraAsync(x, [M, K], w, adapters, idx, { bias, out: out2, outDtype: 'bfloat16' });
    expect(y2).toBe(out2);
    expect(checkLoraLinear(y2 as Uint16Array, 'bfloat16', lref, M, N, K, ref.extra, `amx int4 multi-LoRA M=${M} async; ${seedNote(seed)}`)).toBeNull();
  });

  test.each(['e4m3', 'e5m2'] as const)('FP8 %s: every finite code through the tiles is its value exactly (the decoder\'s byte tables)', (fmt) =>
    expectFp8CodesExact(fmt, 'float32'));

  test.each([
    ['e4m3', [16, 64], 300, 70, 200, 'float16'],
    ['e5m2', [1, 96], 40, 530, 1000, 'bfloat16'],
    ['e4m3', 'channel', 33, 33, 1030, 'float32'],
  ] as const)('FP8 %s scaling %j, M = %i, N = %i, K = %i, x %s', (fmt, scaling, M, N, K, xd) => {
    const seed = seedFor(`amx fp8 ${fmt} ${JSON.stringify(scaling)} ${M}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomFp8Weight(rng, N, K, fmt, scaling, seed);
    const x = encode(randomFloat32(rng, M * K), xd);
    const { ref: y64, absSum } = quantLinearRef(decode(x, xd), M, ref, null);
    const out = poisoned('float32', M * N) as Float32Array;
    const opts: cg.LinearOptions = { out, outDtype: 'float32' };
    if (xd !== 'float32') opts.dtype = xd;
    const y = cg.linear(x, [M, K], w, opts) as Float32Array;
    expect(checkQuantLinear(y, 'float32', y64, absSum, M, N, K, ref.extra, `amx fp8 ${fmt} M=${M} x ${xd}; ${seedNote(seed)}`)).toBeNull();
  });
});

// (every AMX CPU so far has AMX-INT8 and AVX512-VNNI)
const describeAmxI8 = HAS_AMX && ['amx_int8', 'avx512_vnni'].every((f) => cg.backend().features.includes(f)) ? describe : describe.skip;

describeAmxI8('AMX-INT8: INT4 weights with int8 activations', () => {
  afterAll(() => cg.setCpuIsa(DEFAULT_ISA));

  test.each([
    [300, 600, 1024, 32],
    [40, 70, 1024, 128],
    [130, 33, 1000, -1],
  ] as const)('M = %i, N = %i, K = %i, group %i: the VNNI kernel bit for bit, and within the bound of float64', (M, N, K, groupSize) => {
    const seed = seedFor(`amx int8 ${M} ${N} ${K} ${groupSize}`);
    const rng = mulberry32(seed);
    const { w, ref } = randomInt4Weight(rng, N, K, groupSize, seed);
    const x = randomFloat32(rng, M * K);
    const bias = randomFloat32(rng, N);
    const ys: Record<string, Float32Array> = {};
    for (const isa of ['avx512', 'amx'] as const) {
      cg.setCpuIsa(isa);
      ys[isa] = cg.linear(x, [M, K], w, { bias, activations: 'int8', out: poisoned('float32', M * N) as Float32Array }) as Float32Array;
    }
    let differ = 0;
    for (let i = 0; i < M * N; i++) if (!Object.is(ys.amx[i], ys.avx512[i])) differ++;
    expect(`${differ} outputs differ; ${seedNote(seed)}`).toBe(`0 outputs differ; ${seedNote(seed)}`);
    const { ref: y64, absSum } = quantLinearRef(actInt8Ref(decode(x, 'float32'), M, K).xq, M, ref, bias);
    expect(checkQuantLinear(ys.amx, 'float32', y64, absSum, M, N, K, ref.extra, `amx int8 M=${M}; ${seedNote(seed)}`)).toBeNull();
  });
});

test('the AMX rows are present exactly where the CPU lists AMX-BF16 (and the checks above ran or were skipped for that)', () => {
  const info = cg.backend();
  if (info.kind !== 'cpu') return;
  const listed = ['amx_tile', 'amx_bf16', 'avx512_bf16', 'avx512vbmi'].every((f) => info.features.includes(f)) && info.cpu.isas.includes('avx512');
  // Linux may still refuse the tile registers (arch_prctl); then 'amx' is absent though listed.
  if (!listed) expect(info.cpu.isas).not.toContain('amx');
  expect(HAS_AMX).toBe(info.cpu.isas.includes('amx'));
});
