/**
 * cg.linearMultiLora / cg.linearMultiLoraAsync (S-LoRA / Punica, README "Low-rank factors"):
 * row m of x gets adapters[adapterIndexPerRow[m]], or none for -1; adapters may have different
 * ranks. Checked row by row against the float64 reference and bound of
 * test/helpers/lowrank-reference.ts (loraLinearRef with one adapter per row; a row with -1 has
 * the plain linear's bound, r = 0), on every row of the (backend x ISA) matrix, sync and async.
 *
 * Covering design. The 12 weights of lora.test.ts (dense and 2:4 in float32 / float16 /
 * bfloat16, INT4 symmetric / zero points / act-order, FP8 e4m3 channel / e5m2 blocks / e4m3
 * tensor; N ragged, K 40..264). Each has three adapters of ranks 1, 3 and 16 (a float32
 * LoraAdapter, plain float16 factors, a bfloat16 LoraAdapter; alpha 0.75, -1.25, omitted = 1)
 * and runs M = 1, 6, 17, 40 (and 130 for 2:4: the M-vectorised kernel) with the rows' adapters
 * interleaved (every index, -1 included, next to the others, never grouped), plus one batch of
 * all -1 and one of a single adapter for every row. Across cases rotate: x dtype, bias, the index
 * as an Int32Array or a number[], the INT4 / FP8 activations; across ISA x mode: outDtype, a
 * NaN-poisoned `out` or a fresh result, threads. Async calls have their x and index overwritten
 * right after the call (both are copied when the call is made).
 */
import * as cg from '../../lib';
import { actFp8Ref, actInt8Ref } from '../helpers/act-reference';
import { expectRejectsCode, expectThrowsCode } from '../helpers/expect-error';
import {
  Adapter64,
  Factors,
  TestWeight,
  WeightSpec,
  checkLoraLinear,
  diffBits,
  loraLinearRef,
  makeTestWeight,
  randomFactors,
  LORA_TEST_WEIGHTS,
} from '../helpers/lowrank-reference';
import { Target, restore, targetTable, targets, xAsComputed } from '../helpers/matrix';
import { buildWeight as build } from '../helpers/weights';
import { decode, DType, DTYPES, encode, mulberry32, poisoned, randInt, randomFloat32, seedFor, seedNote } from '../helpers/reference';

afterAll(restore);

const SPECS = LORA_TEST_WEIGHTS;


/** Three adapters of ranks 1, 3, 16 for a [N, K] weight, as the library takes them and as exact values. */
const ADAPTER_KINDS: Array<{ r: number; dtype: DType; alpha: number | undefined; asAdapter: boolean }> = [
  { r: 1, dtype: 'float32', alpha: 0.75, asAdapter: true },
  { r: 3, dtype: 'float16', alpha: -1.25, asAdapter: false },
  { r: 16, dtype: 'bfloat16', alpha: undefined, asAdapter: true },
];

interface Built {
  tw: TestWeight;
  w: cg.Weight;
  seed: number;
  factors: Factors[];
  adapters: Array<cg.LoraAdapter | cg.LoraFactors>;
  refs: Adapter64[];
}

let WEIGHTS: Built[] | null = null;
function weights(): Built[] {
  if (!WEIGHTS) {
    WEIGHTS = SPECS.map((s, i) => {
      const seed = seedFor(`multi-lora weight ${i}`);
      const rng = mulberry32(seed);
      const tw = makeTestWeight(s, rng);
      const w = build(tw);
      const d = diffBits(decode(w.toDense() as Float32Array | Uint16Array, tw.dtype), tw.dense, `${tw.label}: toDense vs reference; ${seedNote(seed)}`);
      if (d) throw new Error(d);
      const factors = ADAPTER_KINDS.map((k) => randomFactors(rng, tw.N, tw.K, k.r, k.dtype));
      const adapters = ADAPTER_KINDS.map((k, a) => {
        const f: cg.LoraFactors = { A: factors[a].A, B: factors[a].B };
        if (k.alpha !== undefined) f.alpha = k.alpha;
        if (k.dtype !== 'float32') f.dtype = k.dtype;
        return k.asAdapter ? new cg.LoraAdapter(f, [tw.N, tw.K]) : f;
      });
      const refs = ADAPTER_KINDS.map((k, a) => ({ A64: factors[a].A64, B64: factors[a].B64, r: k.r, alpha: k.alpha ?? 1 }));
      return { tw, w, seed, factors, adapters, refs };
    });
  }
  return WEIGHTS;
}

type Act = 'native' | 'fp8' | 'int8';

/**
 * Row indices in -1..2, interleaved: the first four rows a random permutation of -1, 0, 1, 2 (so
 * every value appears when M >= 4), then each row a random index other than its neighbour's.
 */
function interleaved(rng: () => number, M: number, start: number): number[] {
  if (M < 4) return Array.from({ length: M }, (_, m) => ((start + m) % 4) - 1);
  const idx = [-1, 0, 1, 2];
  for (let i = 3; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  for (let m = 4; m < M; m++) {
    const v = randInt(rng, 3) - 1; // one of three values, shifted past the previous row's
    idx.push(v >= idx[m - 1] ? v + 1 : v);
  }
  return idx;
}

interface Case {
  label: string;
  wi: number;
  M: number;
  N: number;
  K: number;
  xd: DType;
  act: Act;
  x: Float32Array | Uint16Array;
  idx: number[];
  asInt32: boolean;
  bias: Float32Array | Uint16Array | null;
  seed: number;
  ref: ReturnType<typeof loraLinearRef>;
  extra: number;
}

let CASES: Case[] | null = null;
function cases(): Case[] {
  if (CASES) return CASES;
  CASES = [];
  weights().forEach(({ tw, refs }, wi) => {
    const { N, K } = tw;
    const plans: Array<{ M: number; pattern: 'interleaved' | 'all -1' | 'one adapter' }> = [
      ...(tw.kind === '2:4' ? [1, 6, 17, 40, 130] : [1, 6, 17, 40]).map((M) => ({ M, pattern: 'interleaved' as const })),
      { M: 9, pattern: 'all -1' },
      { M: 12, pattern: 'one adapter' },
    ];
    plans.forEach(({ M, pattern }, pi) => {
      const ci = CASES!.length;
      const xd = DTYPES[(wi + pi) % 3];
      const acts: Act[] = tw.kind === 'int4' ? ['native', 'int8', 'fp8'] : tw.kind === 'fp8' ? ['native', 'fp8'] : ['native'];
      const act = acts[(wi + pi) % acts.length];
      const label = `${tw.label} M=${M} ${pattern}, x ${xd}${act !== 'native' ? `, activations ${act}` : ''}`;
      const seed = seedFor(`multi-lora case ${label}`);
      const rng = mulberry32(seed);
      const x = encode(randomFloat32(rng, M * K), xd);
      const x64 = decode(x, xd);
      const idx = pattern === 'all -1' ? new Array<number>(M).fill(-1) : pattern === 'one adapter' ? new Array<number>(M).fill(wi % 3) : interleaved(rng, M, ci);
      const biasKind = ci % 3;
      const bias = biasKind === 0 ? null : biasKind === 1 || xd === 'float32' ? randomFloat32(rng, N) : encode(randomFloat32(rng, N), xd);
      const bias64 = bias ? decode(bias, bias instanceof Float32Array ? 'float32' : xd) : null;
      // The main product's x: on the CUDA backend's dense and 2:4 kernels, in the weight's dtype.
      let xMain = xAsComputed(x64, xd, tw.kind, tw.dtype);
      if (act === 'int8') xMain = actInt8Ref(x64, M, K).xq;
      if (act === 'fp8') xMain = actFp8Ref(x64, M, K, tw.fp8 && typeof (tw.recipe as { scaling?: unknown }).scaling === 'object' ? tw.fp8.bk : 0);
      const ref = loraLinearRef(xMain, x64, M, N, K, tw.dense, tw.abs, bias64, refs, idx);
      CASES!.push({ label, wi, M, N, K, xd, act, x, idx, asInt32: ci % 2 === 1, bias, seed, ref, extra: tw.extra });
    });
  });
  return CASES;
}

const OUTS: Array<DType | undefined> = [undefined, 'float32', 'float16', 'bfloat16'];
const THREADS: Array<number | undefined> = [undefined, 1, 3];

async function runCase(c: Case, ci: number, t: Target, ti: number, mode: 'sync' | 'async'): Promise<void> {
  const j = mode === 'sync' ? 0 : 1;
  const outChoice = OUTS[(ci + 2 * ti + 3 * j) % 4];
  const outDtype: DType = outChoice ?? c.xd;
  const useOut = (ci + ti + j) % 2 === 0;
  const threads = THREADS[(ci + ti + j) % 3];
  const { w, adapters } = weights()[c.wi];
  const opts: cg.LinearOptions = {};
  if (c.xd !== 'float32') opts.dtype = c.xd;
  if (c.act !== 'native') opts.activations = c.act;
  if (c.bias) opts.bias = c.bias;
  if (outChoice !== undefined) opts.outDtype = outChoice;
  if (threads !== undefined) opts.threads = threads;
  const out = useOut ? poisoned(outDtype, c.M * c.N) : undefined;
  if (out) opts.out = out;
  const idx = c.asInt32 ? Int32Array.from(c.idx) : c.idx.slice();
  let y: Float32Array | Uint16Array;
  if (mode === 'sync') {
    y = cg.linearMultiLora(c.x, [c.M, c.K], w, adapters, idx, opts);
  } else {
    const x = c.x.slice();
    const p = cg.linearMultiLoraAsync(x, [c.M, c.K], w, adapters, idx, opts);
    // both are copied when the call is made: overwriting them now changes nothing
    if (x instanceof Float32Array) x.fill(NaN);
    else x.fill(0x7fff);
    idx.fill(2);
    y = await p;
  }
  if (out) expect(y).toBe(out);
  else expect(y).toBeInstanceOf(outDtype === 'float32' ? Float32Array : Uint16Array);
  const what =
    `${t.label} ${mode}: ${c.label}, rows' adapters [${c.idx.join(' ')}] (${c.asInt32 ? 'Int32Array' : 'number[]'}), ` +
    `bias ${c.bias ? c.bias.constructor.name : 'none'}, out ${outDtype}${useOut ? ' (poisoned buffer)' : ''}, threads ${threads ?? 'default'}; ${seedNote(c.seed)}`;
  expect(checkLoraLinear(y, outDtype, c.ref, c.M, c.N, c.K, c.extra, what)).toBeNull();
}

test('the interleaved patterns use every index (-1 included) and never group the rows', () => {
  for (const c of cases()) {
    if (!/interleaved/.test(c.label) || c.M < 6) continue;
    expect(new Set(c.idx).size).toBe(4);
    const runs = c.idx.filter((v, m) => m > 0 && v === c.idx[m - 1]).length;
    expect(`${c.label}: ${runs} neighbouring rows share an adapter`).toBe(`${c.label}: 0 neighbouring rows share an adapter`);
  }
});

describe.each(targetTable())('%s', (label: string, t: Target) => {
  const ti = targets().findIndex((x) => x.label === label);
  beforeEach(() => t.use());

  for (const mode of ['sync', 'async'] as const) {
    test(`${mode}: every weight format, adapters of ranks 1, 3, 16 interleaved with -1 rows, all -1, one adapter`, async () => {
      const cs = cases();
      for (let ci = 0; ci < cs.length; ci++) await runCase(cs[ci], ci, t, ti, mode);
    });
  }

  test('all -1 with no adapters at all ([]) is the plain linear', async () => {
    for (const [wi, { tw, w }] of weights().entries()) {
      const { N, K } = tw;
      const M = 5;
      const seed = seedFor(`multi-lora ${label} empty ${wi}`);
      const x = randomFloat32(mulberry32(seed), M * K);
      const x64 = decode(x, 'float32');
      const xPlain = xAsComputed(x64, 'float32', tw.kind, tw.dtype);
      const ref = loraLinearRef(xPlain, xPlain, M, N, K, tw.dense, tw.abs, null, [], [-1, -1, -1, -1, -1]);
      const y1 = cg.linearMultiLora(x, [M, K], w, [], [-1, -1, -1, -1, -1], { out: poisoned('float32', M * N) });
      const y2 = await cg.linearMultiLoraAsync(x, [M, K], w, [], new Int32Array(M).fill(-1));
      const what = `${label} ${tw.label}: adapters [], all -1; ${seedNote(seed)}`;
      expect(checkLoraLinear(y1, 'float32', ref, M, N, K, tw.extra, `${what} (sync)`)).toBeNull();
      expect(checkLoraLinear(y2, 'float32', ref, M, N, K, tw.extra, `${what} (async)`)).toBeNull();
    }
  });
});

// ---- errors -----------------------------------------------------------------------------------

describe('errors: class and code, sync and async; nothing written', () => {
  const N = 21;
  const K = 40;
  const M = 4;
  const seed = seedFor('multi-lora errors');
  const rng = mulberry32(seed);
  const tws = [
    makeTestWeight({ kind: 'dense', dtype: 'float32', N, K }, rng),
    makeTestWeight({ kind: 'int4', groupSize: -1, symmetric: false, scaleDtype: 'float32', N, K }, rng),
  ];
  const x = randomFloat32(rng, M * K);
  const f1 = randomFactors(rng, N, K, 1, 'float32');
  const f2 = randomFactors(rng, N, K, 2, 'float32');
  const good = (): Array<cg.LoraAdapter | cg.LoraFactors> => [new cg.LoraAdapter({ A: f1.A, B: f1.B }, [N, K]), { A: f2.A, B: f2.B, alpha: 2 }];
  type ErrClass = new (...a: never[]) => Error;

  async function refused(adapters: unknown, index: unknown, cls: ErrClass, code: string, opts: Record<string, unknown> = {}): Promise<void> {
    for (const tw of tws) {
      const w = build(tw);
      const before = w.toDense();
      const out = new Float32Array(M * N).fill(7);
      const call = (o: Record<string, unknown>) => [x, [M, K], w, adapters, index, o] as unknown as Parameters<typeof cg.linearMultiLora>;
      expectThrowsCode(() => cg.linearMultiLora(...call({ ...opts, out })), cls, code);
      await expectRejectsCode(() => cg.linearMultiLoraAsync(...call({ ...opts, out })), cls, code);
      expect(out.every((v) => v === 7)).toBe(true);
      expect(diffBits(w.toDense(), before, `${tw.label}: weight after a refused call`)).toBeNull();
    }
  }

  test('adapters not an array: TypeError ERR_INVALID_ARG', async () => {
    for (const a of [undefined, null, {}, 'adapters', new Set(good()), good()[0]]) await refused(a, [0, 1, -1, 0], TypeError, 'ERR_INVALID_ARG');
  });

  test('adapterIndexPerRow neither an Int32Array nor an array: TypeError ERR_INVALID_ARG', async () => {
    for (const idx of [undefined, null, 0, 'abcd', new Uint32Array(M), new Float64Array(M), new Int16Array(M), { length: M }]) {
      await refused(good(), idx, TypeError, 'ERR_INVALID_ARG');
    }
  });

  test('adapterIndexPerRow of another length than M: RangeError ERR_SHAPE_MISMATCH', async () => {
    for (const idx of [[], [0, 1, -1], [0, 1, -1, 0, 1], new Int32Array(M + 1), new Int32Array(1)]) await refused(good(), idx, RangeError, 'ERR_SHAPE_MISMATCH');
  });

  test('entries that are not integers from -1 to adapters.length - 1: RangeError ERR_INVALID_ARG', async () => {
    for (const v of [0.5, NaN, Infinity, -2, 2, 3, 2 ** 31]) await refused(good(), [0, v, 1, -1], RangeError, 'ERR_INVALID_ARG');
    // entries that are not numbers: ERR_INVALID_ARG (a TypeError or a RangeError)
    for (const v of ['0', null, undefined, true]) {
      const e = expectThrowsCode(() => cg.linearMultiLora(x, [M, K], build(tws[0]), good(), [0, v, 1, -1] as number[]), Error, 'ERR_INVALID_ARG');
      expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
    }
    for (const v of [-2, 2, -(2 ** 31), 2 ** 31 - 1]) await refused(good(), Int32Array.of(0, 1, v, -1), RangeError, 'ERR_INVALID_ARG');
    await refused([], [0, -1, -1, -1], RangeError, 'ERR_INVALID_ARG');
  });

  test('the lora option next to the adapters argument: TypeError ERR_INVALID_ARG', async () => {
    await refused(good(), [0, 1, -1, 0], TypeError, 'ERR_INVALID_ARG', { lora: good()[0] });
    await refused(good(), [0, 1, -1, 0], TypeError, 'ERR_INVALID_ARG', { lora: { A: f1.A, B: f1.B } });
  });

  test('an adapter that is not an object, or not right for the weight, even when no row uses it', async () => {
    for (const used of [[0, 1, -1, 0], [0, 0, -1, 0]]) {
      await refused([...good(), 5], used, TypeError, 'ERR_INVALID_ARG');
      await refused([...good(), null], used, TypeError, 'ERR_INVALID_ARG');
      const other = randomFactors(rng, N + 1, K, 2, 'float32');
      await refused([...good(), new cg.LoraAdapter({ A: other.A, B: other.B }, [N + 1, K])], used, RangeError, 'ERR_SHAPE_MISMATCH');
      await refused([...good(), { A: f1.A, B: f2.B }], used, RangeError, 'ERR_SHAPE_MISMATCH'); // ranks differ
      await refused([...good(), { A: new Float64Array(K), B: f1.B }], used, TypeError, 'ERR_DTYPE');
      await refused([...good(), { A: f1.A, B: f1.B, alpha: NaN }], used, RangeError, 'ERR_INVALID_ARG');
    }
  });

  test('accepted: null lora option, Int32Array or number[], adapters mixing LoraAdapter and plain factors', () => {
    const w = build(tws[0]);
    const a = cg.linearMultiLora(x, [M, K], w, good(), Int32Array.of(1, -1, 0, 1), { lora: null as unknown as undefined }) as Float32Array;
    const b = cg.linearMultiLora(x, [M, K], w, good(), [1, -1, 0, 1]) as Float32Array;
    const x64 = decode(x, 'float32');
    const refs: Adapter64[] = [
      { A64: f1.A64, B64: f1.B64, r: 1, alpha: 1 },
      { A64: f2.A64, B64: f2.B64, r: 2, alpha: 2 },
    ];
    const ref = loraLinearRef(xAsComputed(x64, 'float32', tws[0].kind, tws[0].dtype), x64, M, N, K, tws[0].dense, tws[0].abs, null, refs, [1, -1, 0, 1]);
    expect(checkLoraLinear(a, 'float32', ref, M, N, K, 1, `Int32Array; ${seedNote(seed)}`)).toBeNull();
    expect(checkLoraLinear(b, 'float32', ref, M, N, K, 1, `number[]; ${seedNote(seed)}`)).toBeNull();
  });
});
