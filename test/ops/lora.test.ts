/**
 * The fused LoRA term of cg.linear / cg.linearAsync (`{ lora: LoraAdapter | { A, B, alpha } }`:
 * Y = X·Wᵀ (+ bias) + alpha·(X·Aᵀ)·Bᵀ, README "Low-rank factors") and cg.LoraAdapter, against
 * the float64 reference and bound of test/helpers/lowrank-reference.ts (loraLinearRef,
 * loraBound: the main product's float32 accumulation as reference.ts / act-reference.ts derive
 * it, plus (K + r + 4) u of |alpha| sum |B| sum |x A| for the LoRA branch), on every row of the
 * (backend x ISA) matrix, sync and async.
 *
 * Covering design. 12 weights, one per format: DenseWeight and Sparse24Weight in float32 /
 * float16 / bfloat16, INT4 (groups of 32 symmetric float16 scales; 64 with zero points float32
 * scales; act-order gIdx with zero points), FP8 (e4m3 channel, e5m2 blocks [16, 24], e4m3
 * tensor); N ragged (17..45), K a multiple of 8 and not of 16 where the format allows (40, 56,
 * 72, 104), 96 / 192 for INT4 groups, 264 for one 2:4 weight. Each weight runs M = 1, 5, 17, 40
 * (direct and tiled quantized kernels, the dense kernel's K blocking) and 130 for the 2:4 ones
 * (the M-vectorised 2:4 kernel): 52 cases, fresh seeded never-zero inputs each. Across cases
 * rotate: x dtype, the adapter (a LoraAdapter or plain { A, B, alpha }), its rank (1, 4, 16) and
 * factor dtype (float32 / float16 / bfloat16), alpha (0.75, -0.5, 1.25, omitted = 1), bias (none /
 * float32 / x's 16-bit dtype), and for INT4 / FP8 weights the activations ('native', 'fp8',
 * 'int8' for INT4: the LoRA branch still uses the original x). Across ISA x mode rotate:
 * outDtype, a NaN-poisoned `out` or a fresh result, threads.
 *
 * The README does not promise that alpha = 0 gives the plain linear's bits, so alpha = 0 is held
 * to the plain reference within the bound (the LoRA term adds nothing but roundings of zeros).
 */
import * as cg from '../../lib';
import { actFp8Ref, actInt8Ref, quantLinearRef, quantViolations } from '../helpers/act-reference';
import { expectRejectsCode, expectThrowsCode } from '../helpers/expect-error';
import {
  Adapter64,
  Factors,
  TestWeight,
  WeightSpec,
  checkLoraLinear,
  diffBits,
  loraBound,
  loraLinearRef,
  makeTestWeight,
  randomFactors,
  LORA_TEST_WEIGHTS,
} from '../helpers/lowrank-reference';
import { CpuTarget, Target, cpuTargets, restore, targetTable, targets, xAsComputed } from '../helpers/matrix';
import { buildWeight as build } from '../helpers/weights';
import { decode, DType, DTYPES, encode, mulberry32, poisoned, randomFloat32, seedFor, seedNote } from '../helpers/reference';

afterAll(restore);

const SPECS = LORA_TEST_WEIGHTS;


interface Built {
  tw: TestWeight;
  w: cg.Weight;
  seed: number;
}

let WEIGHTS: Built[] | null = null;
function weights(): Built[] {
  if (!WEIGHTS) {
    WEIGHTS = SPECS.map((s, i) => {
      const seed = seedFor(`lora weight ${i}`);
      const tw = makeTestWeight(s, mulberry32(seed));
      const w = build(tw);
      // the weight holds what the independent reference says
      const d = diffBits(decode(w.toDense() as Float32Array | Uint16Array, tw.dtype), tw.dense, `${tw.label}: toDense vs reference; ${seedNote(seed)}`);
      if (d) throw new Error(d);
      return { tw, w, seed };
    });
  }
  return WEIGHTS;
}

type Act = 'native' | 'fp8' | 'int8';
const RANKS = [1, 4, 16];
const ALPHAS: Array<number | undefined> = [0.75, -0.5, 1.25, undefined];
const BIASES = ['none', 'float32', 'x-dtype'] as const;

interface Case {
  label: string;
  wi: number;
  M: number;
  N: number;
  K: number;
  xd: DType;
  act: Act;
  x: Float32Array | Uint16Array;
  seed: number;
  f: Factors;
  alpha: number | undefined;
  asAdapter: boolean;
  bias: Float32Array | Uint16Array | null;
  ref: ReturnType<typeof loraLinearRef>;
  extra: number;
}

/**
 * The activations of the main product: x, or its documented quantization, or (on the CUDA
 * backend, dense and 2:4 kernels) x in the weight's dtype (xAsComputed). The LoRA branch always
 * takes x as given.
 */
function mainActivations(x64: Float64Array, M: number, K: number, act: Act, tw: TestWeight, xd: DType = 'float32'): Float64Array {
  if (act === 'int8') return actInt8Ref(x64, M, K).xq;
  if (act === 'fp8') return actFp8Ref(x64, M, K, tw.fp8 && typeof (tw.recipe as { scaling?: unknown }).scaling === 'object' ? tw.fp8.bk : 0);
  return xAsComputed(x64, xd, tw.kind, tw.dtype);
}

function adapter64(f: Factors, alpha: number | undefined): Adapter64 {
  return { A64: f.A64, B64: f.B64, r: f.r, alpha: alpha ?? 1 };
}

let CASES: Case[] | null = null;
function cases(): Case[] {
  if (CASES) return CASES;
  CASES = [];
  weights().forEach(({ tw }, wi) => {
    const Ms = tw.kind === '2:4' ? [1, 5, 17, 40, 130] : [1, 5, 17, 40];
    Ms.forEach((M, mi) => {
      const ci = CASES!.length;
      const { N, K } = tw;
      const xd = DTYPES[(wi + mi) % 3];
      const acts: Act[] = tw.kind === 'int4' ? ['native', 'fp8', 'int8'] : tw.kind === 'fp8' ? ['native', 'fp8'] : ['native'];
      const act = acts[(wi + mi) % acts.length];
      const label = `${tw.label} M=${M} x ${xd}${act !== 'native' ? ` activations ${act}` : ''}`;
      const seed = seedFor(`lora case ${label}`);
      const rng = mulberry32(seed);
      const x = encode(randomFloat32(rng, M * K), xd);
      const x64 = decode(x, xd);
      const f = randomFactors(rng, N, K, RANKS[ci % 3], DTYPES[(ci + 1) % 3]);
      const alpha = ALPHAS[ci % ALPHAS.length];
      const biasKind = BIASES[(ci + wi) % 3];
      const bias = biasKind === 'none' ? null : biasKind === 'float32' || xd === 'float32' ? randomFloat32(rng, N) : encode(randomFloat32(rng, N), xd);
      const bias64 = bias ? decode(bias, bias instanceof Float32Array ? 'float32' : xd) : null;
      const ref = loraLinearRef(mainActivations(x64, M, K, act, tw, xd), x64, M, N, K, tw.dense, tw.abs, bias64, [adapter64(f, alpha)], null);
      CASES!.push({ label, wi, M, N, K, xd, act, x, seed, f, alpha, asAdapter: ci % 2 === 0, bias, ref, extra: tw.extra });
    });
  });
  return CASES;
}

function loraOf(c: Case): cg.LoraAdapter | cg.LoraFactors {
  const factors: cg.LoraFactors = { A: c.f.A, B: c.f.B };
  if (c.alpha !== undefined) factors.alpha = c.alpha;
  if (c.f.dtype !== 'float32') factors.dtype = c.f.dtype;
  return c.asAdapter ? new cg.LoraAdapter(factors, [c.N, c.K]) : factors;
}

const OUTS: Array<DType | undefined> = [undefined, 'float32', 'float16', 'bfloat16'];
const THREADS: Array<number | undefined> = [undefined, 1, 3];

async function runCase(c: Case, ci: number, t: Target, ti: number, mode: 'sync' | 'async'): Promise<void> {
  const j = mode === 'sync' ? 0 : 1;
  const outChoice = OUTS[(ci + 2 * ti + 3 * j) % 4];
  const outDtype: DType = outChoice ?? c.xd;
  const useOut = (ci + ti + j) % 2 === 0;
  const threads = THREADS[(ci + ti + j) % 3];
  const { w } = weights()[c.wi];
  const opts: cg.LinearOptions = { lora: loraOf(c) };
  if (c.xd !== 'float32') opts.dtype = c.xd;
  if (c.act !== 'native') opts.activations = c.act;
  if (c.bias) opts.bias = c.bias;
  if (outChoice !== undefined) opts.outDtype = outChoice;
  if (threads !== undefined) opts.threads = threads;
  const out = useOut ? poisoned(outDtype, c.M * c.N) : undefined;
  if (out) opts.out = out;
  const y = mode === 'sync' ? cg.linear(c.x, [c.M, c.K], w, opts) : await cg.linearAsync(c.x, [c.M, c.K], w, opts);
  if (out) expect(y).toBe(out);
  else expect(y).toBeInstanceOf(outDtype === 'float32' ? Float32Array : Uint16Array);
  const what =
    `${t.label} ${mode}: ${c.label}, ${c.asAdapter ? 'LoraAdapter' : '{ A, B, alpha }'} r=${c.f.r} ${c.f.dtype} alpha ${c.alpha ?? '(1)'}, ` +
    `bias ${c.bias ? c.bias.constructor.name : 'none'}, out ${outDtype}${useOut ? ' (poisoned buffer)' : ''}, threads ${threads ?? 'default'}; ${seedNote(c.seed)}`;
  expect(checkLoraLinear(y, outDtype, c.ref, c.M, c.N, c.K, c.extra, what)).toBeNull();
}

describe.each(targetTable())('%s', (label: string, t: Target) => {
  const ti = targets().findIndex((x) => x.label === label);
  beforeEach(() => t.use());

  for (const mode of ['sync', 'async'] as const) {
    test(`${mode}: every weight format x M (1..130) with a fused LoRA term`, async () => {
      const cs = cases();
      for (let ci = 0; ci < cs.length; ci++) await runCase(cs[ci], ci, t, ti, mode);
    });
  }

  test('alpha = 0 (plain factors and a LoraAdapter) gives the plain linear within its bound', async () => {
    for (const [wi, { tw, w }] of weights().entries()) {
      const { N, K } = tw;
      const M = [3, 17][wi % 2];
      const seed = seedFor(`lora ${label} alpha0 ${wi}`);
      const rng = mulberry32(seed);
      const x = randomFloat32(rng, M * K);
      const f = randomFactors(rng, N, K, 8, DTYPES[wi % 3]);
      const dt = f.dtype === 'float32' ? {} : { dtype: f.dtype };
      const x64 = decode(x, 'float32');
      const xMain = mainActivations(x64, M, K, 'native', tw);
      const ref = loraLinearRef(xMain, x64, M, N, K, tw.dense, tw.abs, null, [adapter64(f, 0)], null);
      const plain = loraLinearRef(xMain, x64, M, N, K, tw.dense, tw.abs, null, [], new Int32Array(M).fill(-1));
      expect(diffBits(ref.ref, plain.ref, 'the alpha-0 reference adds nothing')).toBeNull();
      const what = `${label} ${tw.label} M=${M}, alpha 0, r=8 ${f.dtype}; ${seedNote(seed)}`;
      const y1 = cg.linear(x, [M, K], w, { lora: { A: f.A, B: f.B, alpha: 0, ...dt }, out: poisoned('float32', M * N) });
      expect(checkLoraLinear(y1, 'float32', ref, M, N, K, tw.extra, `${what} (plain factors, sync)`)).toBeNull();
      const ad = new cg.LoraAdapter({ A: f.A, B: f.B, alpha: 0, ...dt }, [N, K]);
      const y2 = await cg.linearAsync(x, [M, K], w, { lora: ad });
      expect(checkLoraLinear(y2, 'float32', ref, M, N, K, tw.extra, `${what} (LoraAdapter, async)`)).toBeNull();
      // and alpha != 0 with the same factors is far outside that bound (the test can fail)
      const y3 = cg.linear(x, [M, K], w, { lora: { A: f.A, B: f.B, alpha: 0.5, ...dt } }) as Float32Array;
      expect(checkLoraLinear(y3, 'float32', ref, M, N, K, tw.extra, 'alpha 0.5 vs the alpha-0 reference')).not.toBeNull();
    }
  });

  test("with quantized activations the LoRA branch uses the original x (INT4 'int8' / 'fp8', FP8 'fp8')", () => {
    for (const [wi, { tw, w }] of weights().entries()) {
      if (tw.kind !== 'int4' && tw.kind !== 'fp8') continue;
      const { N, K } = tw;
      const M = 9;
      for (const act of (tw.kind === 'int4' ? ['int8', 'fp8'] : ['fp8']) as Act[]) {
        const seed = seedFor(`lora ${label} act ${wi} ${act}`);
        const rng = mulberry32(seed);
        const x = randomFloat32(rng, M * K);
        const f = randomFactors(rng, N, K, 16, 'float32');
        const x64 = decode(x, 'float32');
        const xq = mainActivations(x64, M, K, act, tw);
        const right = loraLinearRef(xq, x64, M, N, K, tw.dense, tw.abs, null, [adapter64(f, 1.5)], null);
        const wrong = loraLinearRef(xq, xq, M, N, K, tw.dense, tw.abs, null, [adapter64(f, 1.5)], null);
        const y = cg.linear(x, [M, K], w, { activations: act, lora: new cg.LoraAdapter({ A: f.A, B: f.B, alpha: 1.5 }, [N, K]) }) as Float32Array;
        const what = `${label} ${tw.label} activations ${act}, r=16; ${seedNote(seed)}`;
        expect(checkLoraLinear(y, 'float32', right, M, N, K, tw.extra, what)).toBeNull();
        // the alternative (LoRA on the quantized x) is told apart in most outputs
        let rejected = 0;
        const yd = decode(y, 'float32');
        for (let i = 0; i < M * N; i++) {
          const b = loraBound(wrong.ref[i], wrong.absMain[i], wrong.absLora[i], K, tw.extra, 16, 'float32');
          if (!(Math.abs(yd[i] - wrong.ref[i]) <= b)) rejected++;
        }
        expect(`${what}: LoRA on the quantized x rejected in ${rejected >= 0.5 * M * N ? 'most' : rejected} of ${M * N}`).toBe(
          `${what}: LoRA on the quantized x rejected in most of ${M * N}`,
        );
      }
    }
  });
});

// ---- LoraAdapter ------------------------------------------------------------------------------

describe('LoraAdapter', () => {
  test('properties: shape, rank, alpha (default 1); frozen', () => {
    const A = randomFloat32(mulberry32(1), 3 * 40);
    const B = randomFloat32(mulberry32(2), 33 * 3);
    const a = new cg.LoraAdapter({ A, B }, [33, 40]);
    expect(a).toBeInstanceOf(cg.LoraAdapter);
    expect([...a.shape]).toEqual([33, 40]);
    expect(a.rank).toBe(3);
    expect(a.alpha).toBe(1);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.shape)).toBe(true);
    const b = new cg.LoraAdapter({ A: encode(A, 'bfloat16'), B: encode(B, 'bfloat16'), alpha: -0.25, dtype: 'bfloat16' }, [33, 40]);
    expect([b.rank, b.alpha]).toEqual([3, -0.25]);
  });

  test('reused across calls, weights and modes: identical results; packed once (later changes to A and B do not reach it)', async () => {
    const N = 33;
    const K = 96;
    const M = 7;
    const seed = seedFor('lora adapter reuse');
    const rng = mulberry32(seed);
    const tws = [
      makeTestWeight({ kind: 'dense', dtype: 'float16', N, K }, rng),
      makeTestWeight({ kind: 'int4', groupSize: 32, symmetric: false, scaleDtype: 'float16', N, K }, rng),
      makeTestWeight({ kind: '2:4', dtype: 'float32', N, K }, rng),
    ];
    const ws = tws.map(build);
    const f = randomFactors(rng, N, K, 6, 'float16');
    const other = randomFactors(rng, N, K, 2, 'float32');
    const x = randomFloat32(rng, M * K);
    const x64 = decode(x, 'float32');
    const A = f.A.slice() as Uint16Array;
    const B = f.B.slice() as Uint16Array;
    const ad = new cg.LoraAdapter({ A, B, alpha: 0.625, dtype: 'float16' }, [N, K]);
    for (const [i, w] of ws.entries()) {
      const tw = tws[i];
      const ref = loraLinearRef(mainActivations(x64, M, K, 'native', tw), x64, M, N, K, tw.dense, tw.abs, null, [adapter64(f, 0.625)], null);
      const first = cg.linear(x, [M, K], w, { lora: ad }) as Float32Array;
      const what = `${tw.label}, LoraAdapter r=6 float16; ${seedNote(seed)}`;
      expect(checkLoraLinear(first, 'float32', ref, M, N, K, tw.extra, what)).toBeNull();
      // interleaved: other adapters and plain calls on the same weight, async calls in flight
      const pending = [cg.linearAsync(x, [M, K], w, { lora: ad }), cg.linearAsync(x, [M, K], w, { lora: { A: other.A, B: other.B } }), cg.linearAsync(x, [M, K], w, { lora: ad })];
      cg.linear(x, [M, K], w, { lora: { A: other.A, B: other.B, alpha: 3 } });
      const again = cg.linear(x, [M, K], w, { lora: ad }) as Float32Array;
      const [a1, , a2] = (await Promise.all(pending)) as Float32Array[];
      for (const [name, y] of [['again', again], ['async 1', a1], ['async 2', a2]] as const) expect(diffBits(y, first, `${what}: ${name} vs first call`)).toBeNull();
      // the caller's arrays change: the adapter was packed when made
      A.fill(0x3c00);
      B.fill(0xbc00);
      expect(diffBits(cg.linear(x, [M, K], w, { lora: ad }) as Float32Array, first, `${what}: after A and B were overwritten`)).toBeNull();
      // plain factors are read on every call: the overwritten ones give a different result
      const plain = cg.linear(x, [M, K], w, { lora: { A, B, alpha: 0.625, dtype: 'float16' } }) as Float32Array;
      expect(checkLoraLinear(plain, 'float32', ref, M, N, K, tw.extra, 'plain factors after overwrite')).not.toBeNull();
      A.set(f.A as Uint16Array);
      B.set(f.B as Uint16Array);
      const plain2 = cg.linear(x, [M, K], w, { lora: { A, B, alpha: 0.625, dtype: 'float16' } }) as Float32Array;
      expect(checkLoraLinear(plain2, 'float32', ref, M, N, K, tw.extra, `${what}: plain factors`)).toBeNull();
    }
  });

  test('dispose(): calls in flight finish with the adapter; later linear, linearAsync and linearMultiLora(Async) get ERR_DISPOSED; idempotent; Symbol.dispose', async () => {
    const N = 24, K = 40, M = 5;
    const seed = seedFor('lora adapter dispose');
    const rng = mulberry32(seed);
    const tw = makeTestWeight({ kind: 'dense', dtype: 'float32', N, K }, rng);
    const w = build(tw);
    const f = randomFactors(rng, N, K, 3, 'float32');
    const x = randomFloat32(rng, M * K);
    const ad = new cg.LoraAdapter({ A: f.A, B: f.B, alpha: 1.5 }, [N, K]);
    const before = cg.linear(x, [M, K], w, { lora: ad }) as Float32Array;
    const inFlight = cg.linearAsync(x, [M, K], w, { lora: ad });
    expect(ad.disposed).toBe(false);
    ad.dispose();
    expect(ad.disposed).toBe(true);
    ad.dispose(); // idempotent
    // The call made before dispose() sees the adapter as it was.
    expect(diffBits((await inFlight) as Float32Array, before, `in-flight call; ${seedNote(seed)}`)).toBeNull();
    expectThrowsCode(() => cg.linear(x, [M, K], w, { lora: ad }), Error, 'ERR_DISPOSED');
    await expectRejectsCode(() => cg.linearAsync(x, [M, K], w, { lora: ad }), Error, 'ERR_DISPOSED');
    const other = new cg.LoraAdapter({ A: f.A, B: f.B }, [N, K]);
    const rows = [0, 1, -1, 0, 1];
    expectThrowsCode(() => cg.linearMultiLora(x, [M, K], w, [other, ad], rows), Error, 'ERR_DISPOSED');
    await expectRejectsCode(() => cg.linearMultiLoraAsync(x, [M, K], w, [other, ad], rows), Error, 'ERR_DISPOSED');
    // The weight and the other adapter are unaffected.
    expect(cg.linear(x, [M, K], w, { lora: other })).toHaveLength(M * N);
    const dispose = (Symbol as { dispose?: symbol }).dispose;
    if (dispose) {
      const third = new cg.LoraAdapter({ A: f.A, B: f.B }, [N, K]);
      (third as unknown as Record<symbol, () => void>)[dispose]();
      expect(third.disposed).toBe(true);
    }
  });
});

// ---- errors -----------------------------------------------------------------------------------

describe('errors: class and code; nothing written, the weight unchanged', () => {
  const N = 21;
  const K = 40;
  const M = 3;
  const r = 2;
  const seed = seedFor('lora errors');
  const rng = mulberry32(seed);
  const A = randomFloat32(rng, r * K);
  const B = randomFloat32(rng, N * r);
  const A16 = encode(A, 'float16') as Uint16Array;
  const B16 = encode(B, 'float16') as Uint16Array;
  const x = randomFloat32(rng, M * K);
  const tws = [
    makeTestWeight({ kind: 'dense', dtype: 'bfloat16', N, K }, rng),
    makeTestWeight({ kind: 'fp8', fmt: 'e4m3', scaling: 'channel', N, K }, rng),
    makeTestWeight({ kind: 'int4', groupSize: -1, symmetric: true, scaleDtype: 'float16', N, K }, rng),
    makeTestWeight({ kind: '2:4', dtype: 'float32', N, K }, rng),
  ];
  type ErrClass = new (...a: never[]) => Error;

  function ctor(factors: unknown, shape: unknown, cls: ErrClass, code: string): void {
    expectThrowsCode(() => new cg.LoraAdapter(factors as cg.LoraFactors, shape as [number, number]), cls, code);
  }

  /** linear and linearAsync with this lora option: the error; out untouched; the weight unchanged. */
  async function refused(lora: unknown, cls: ErrClass, code: string, xx = x, shape: [number, number] = [M, K]): Promise<void> {
    for (const tw of tws) {
      const w = build(tw);
      const before = w.toDense();
      const out = new Float32Array(shape[0] * N).fill(7);
      expectThrowsCode(() => cg.linear(xx, shape, w, { lora: lora as cg.LoraFactors, out }), cls, code);
      await expectRejectsCode(() => cg.linearAsync(xx, shape, w, { lora: lora as cg.LoraFactors, out }), cls, code);
      expect(out.every((v) => v === 7)).toBe(true);
      expect(diffBits(w.toDense(), before, `${tw.label}: weight after a refused call`)).toBeNull();
    }
  }

  test('LoraAdapter: factors not an object: TypeError ERR_INVALID_ARG', () => {
    for (const f of [5, 'A', true, [A, B]]) ctor(f, [N, K], TypeError, 'ERR_INVALID_ARG');
  });

  test('LoraAdapter: shape not [N, K] of positive integers: TypeError ERR_SHAPE', () => {
    for (const s of [undefined, null, 'NK', [N], [N, K, 1], [String(N), K], { 0: N, 1: K, length: 2 }]) ctor({ A, B }, s, TypeError, 'ERR_SHAPE');
  });

  // Was a library bug (fixed with this test): lib/errors.ts: "Bad arguments are TypeErrors (wrong kind of
  // value) or RangeErrors (right kind, wrong value)", and every other shape check (checkShape2)
  // gives RangeError ERR_SHAPE for [0, K], [1.5, K], [-1, K]; LoraAdapter gives a TypeError.
  test('LoraAdapter: shape of numbers that are not positive integers: RangeError ERR_SHAPE (as every other shape)', () => {
    for (const s of [[0, K], [N, -K], [1.5, K], [N, NaN], [N, Infinity]]) ctor({ A, B }, s, RangeError, 'ERR_SHAPE');
  });

  test('LoraAdapter: alpha not a number: TypeError ERR_INVALID_ARG; not finite: RangeError ERR_INVALID_ARG', () => {
    for (const alpha of ['1', null, true, {}]) ctor({ A, B, alpha }, [N, K], TypeError, 'ERR_INVALID_ARG');
    for (const alpha of [NaN, Infinity, -Infinity]) ctor({ A, B, alpha }, [N, K], RangeError, 'ERR_INVALID_ARG');
  });

  test('LoraAdapter: factors of the wrong type or dtype: TypeError ERR_DTYPE', () => {
    const cases: unknown[] = [
      { A: Array.from(A), B },
      { A: new Float64Array(r * K), B },
      { A, B: new Int32Array(N * r) },
      { A, B: null },
      { B },
      { A: A16, B: B16 }, // 16-bit without dtype
      { A: A16, B: B16, dtype: 'half' },
      { A, B, dtype: 'bfloat16' }, // Float32Array said to be bfloat16
      { A: A16, B: B16, dtype: 'float32' },
      { A, B: B16, dtype: 'float16' },
      null, // no factors at all: A is missing
    ];
    for (const f of cases) ctor(f, [N, K], TypeError, 'ERR_DTYPE');
  });

  test('LoraAdapter: lengths that are not A [r, K] and B [N, r]: RangeError ERR_SHAPE_MISMATCH', () => {
    const cases: unknown[] = [
      { A: new Float32Array(0), B },
      { A: new Float32Array(r * K + 4), B },
      { A, B: new Float32Array(N * r + 1) },
      { A, B: new Float32Array(N * (r + 1)) }, // ranks differ
      { A: A16.subarray(0, K), B: B16, dtype: 'float16' }, // A rank 1, B rank 2
    ];
    for (const f of cases) ctor(f, [N, K], RangeError, 'ERR_SHAPE_MISMATCH');
    ctor({ A, B }, [N + 1, K], RangeError, 'ERR_SHAPE_MISMATCH');
    ctor({ A, B }, [N, K + 8], RangeError, 'ERR_SHAPE_MISMATCH');
  });

  // Was a library bug (fixed with this test): a detached A or B is reported as ERR_SHAPE_MISMATCH (the
  // lengths are checked before checkFloatArray's detached check); every other array argument
  // gives TypeError ERR_DETACHED.
  test('LoraAdapter: detached factors: TypeError ERR_DETACHED', () => {
    const a = A.slice();
    structuredClone(a.buffer, { transfer: [a.buffer] });
    ctor({ A: a, B }, [N, K], TypeError, 'ERR_DETACHED');
  });

  // alpha must also be finite as a float32 (the kernels' type): 1e39 would be Infinity there.
  test('alpha beyond float32 range (1e39): RangeError ERR_INVALID_ARG (LoraAdapter, plain factors)', async () => {
    ctor({ A, B, alpha: 1e39 }, [N, K], RangeError, 'ERR_INVALID_ARG');
    ctor({ A, B, alpha: -3.5e38 }, [N, K], RangeError, 'ERR_INVALID_ARG');
    await refused({ A, B, alpha: 1e39 }, RangeError, 'ERR_INVALID_ARG');
  });

  test('linear: lora neither a LoraAdapter nor an object: TypeError ERR_INVALID_ARG', async () => {
    for (const lora of [5, 'lora', true, Symbol('x')]) await refused(lora, TypeError, 'ERR_INVALID_ARG');
    await refused([A, B], TypeError, 'ERR_INVALID_ARG'); // an array is not { A, B, alpha }
  });

  test('linear: plain factors with bad dtypes, lengths or alpha: the LoraAdapter codes', async () => {
    await refused({ A: A16, B: B16 }, TypeError, 'ERR_DTYPE');
    await refused({ A: new Float64Array(r * K), B }, TypeError, 'ERR_DTYPE');
    await refused({ A, B: new Float32Array(N * r + 2) }, RangeError, 'ERR_SHAPE_MISMATCH');
    await refused({ A: new Float32Array(r * K + 1), B }, RangeError, 'ERR_SHAPE_MISMATCH');
    await refused({ A, B, alpha: '2' }, TypeError, 'ERR_INVALID_ARG');
    await refused({ A, B, alpha: NaN }, RangeError, 'ERR_INVALID_ARG');
  });

  test('linear: a LoraAdapter made for another shape: RangeError ERR_SHAPE_MISMATCH', async () => {
    const fN = randomFactors(rng, N + 2, K, r, 'float32');
    await refused(new cg.LoraAdapter({ A: fN.A, B: fN.B }, [N + 2, K]), RangeError, 'ERR_SHAPE_MISMATCH');
    const fK = randomFactors(rng, N, K + 8, r, 'float32');
    await refused(new cg.LoraAdapter({ A: fK.A, B: fK.B }, [N, K + 8]), RangeError, 'ERR_SHAPE_MISMATCH');
    // x with the wrong K, adapter right for the weight: the weight's ERR_SHAPE_MISMATCH
    await refused(new cg.LoraAdapter({ A, B }, [N, K]), RangeError, 'ERR_SHAPE_MISMATCH', randomFloat32(rng, M * (K + 8)), [M, K + 8]);
  });

  test('linear: an object posing as a LoraAdapter (with its fields): TypeError ERR_INVALID_ARG', async () => {
    const real = new cg.LoraAdapter({ A, B }, [N, K]);
    const forged = Object.assign(Object.create(cg.LoraAdapter.prototype), { shape: [N, K], rank: r, alpha: 1 });
    await refused(forged, TypeError, 'ERR_INVALID_ARG');
    // a spread copy is plain { shape, rank, alpha }: no A, so ERR_DTYPE
    await refused({ ...real }, TypeError, 'ERR_DTYPE');
  });

  test('linear: a bare Object.create(LoraAdapter.prototype): TypeError ERR_INVALID_ARG', async () => {
    await refused(Object.create(cg.LoraAdapter.prototype), TypeError, 'ERR_INVALID_ARG');
  });

  test('linear: lora null or undefined is no LoRA term (the plain reference)', () => {
    for (const tw of tws) {
      const w = build(tw);
      const x64 = decode(x, 'float32');
      const { ref, absSum } = quantLinearRef(xAsComputed(x64, 'float32', tw.kind, tw.dtype), M, { N, K, dense: tw.dense, absFactor: tw.abs, extra: tw.extra }, null);
      for (const lora of [null, undefined]) {
        const y = cg.linear(x, [M, K], w, { lora: lora as unknown as cg.LoraFactors }) as Float32Array;
        expect(quantViolations(y, 'float32', ref, absSum, N, K, tw.extra).count).toBe(0);
      }
    }
  });
});

/**
 * The kernels that sum K in blocks add the bias once (with the first block) and the LoRA terms
 * once (with the last): the dense float32 kernel (K blocks of 1024 from M > 28) and the 2:4 panel
 * kernel (K blocks of 1024 with more than one 10-row block of x, below M = 128), at M = 40 and
 * K = 1100 (two blocks, the second of 76 columns); float32 y (the blocks add into y) and bfloat16 y
 * (into a float32 copy, rounded once at the end). The cases above have K <= 264: one block. On the
 * CPU rows only (the simulated device runs a K-step in about a millisecond).
 */
describe.each(cpuTargets().map((t): [string, CpuTarget] => [t.label, t]))('%s: LoRA and bias across K blocks', (_label, t) => {
  beforeEach(() => t.use());
  test.each([
    ['dense', 'float32'],
    ['2:4', 'float32'],
    ['2:4', 'bfloat16'],
  ] as const)('%s %s weight, M = 40, N = 37, K = 1100, float32 and bfloat16 y', async (kind, dtype) => {
    const [M, N, K] = [40, 37, 1100];
    const seed = seedFor(`lora K blocks ${kind} ${dtype}`);
    const rng = mulberry32(seed);
    const tw = makeTestWeight({ kind, dtype, N, K }, rng);
    const w = build(tw);
    const x = randomFloat32(rng, M * K);
    const x64 = decode(x, 'float32');
    const f = randomFactors(rng, N, K, 16, 'float32');
    const bias = randomFloat32(rng, N);
    const ref = loraLinearRef(xAsComputed(x64, 'float32', tw.kind, tw.dtype), x64, M, N, K, tw.dense, tw.abs, decode(bias, 'float32'), [adapter64(f, 0.75)], null);
    for (const outDtype of ['float32', 'bfloat16'] as const) {
      const opts: cg.LinearOptions = { lora: { A: f.A, B: f.B, alpha: 0.75 }, bias, outDtype, out: poisoned(outDtype, M * N) };
      const y = cg.linear(x, [M, K], w, opts);
      const y2 = await cg.linearAsync(x, [M, K], w, { ...opts, out: poisoned(outDtype, M * N) });
      for (const [mode, got] of [['sync', y], ['async', y2]] as const) {
        expect(checkLoraLinear(got, outDtype, ref, M, N, K, tw.extra, `${t.label} ${mode}: ${tw.label}, out ${outDtype}; ${seedNote(seed)}`)).toBeNull();
      }
    }
  });
});
