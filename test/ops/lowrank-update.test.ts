/**
 * cg.lowRankUpdate / cg.lowRankUpdateAsync: W <- W + alpha·B·A in place, tile by tile (README
 * "Low-rank factors"), against the float64 references and bounds of
 * test/helpers/lowrank-reference.ts (written independently of the library), on every row of the
 * (backend x ISA) matrix (test/helpers/matrix.ts).
 *
 * Bounds (derived in lowrank-reference.ts): the increment summed in float32 ((r + 2) u of
 * |alpha| sum |B A|) and one float32 rounding of the sum; then dense / 2:4 weights round once
 * into their dtype (half an ulp: nothing more for float32, 2^-11 float16, 2^-8 bfloat16); INT4
 * groups and FP8 scale units are quantized again with a fresh scale: each weight within half a
 * quantization step of the NEW scale, and the new scale itself within the rounding of the new
 * range / 15 (INT4) or amax / max(format) (FP8).
 *
 * Covering design. 14 weights, one of each: DenseWeight float32 / float16 / bfloat16,
 * Sparse24Weight float32 / float16 / bfloat16 (each updated with reprune false and true), INT4
 * (groups of 32 symmetric float16 scales; 64 with zero points float32 scales; per channel with
 * zero points; act-order gIdx from fromCanonical with zero points), FP8 (e4m3 tensor and
 * channel, e5m2 and e4m3 blocks that divide neither N nor K). N ragged (17..45: partial panels
 * of 16), K a multiple of 8 and not of 16 where the format allows (40, 56, 72, 104), 96 / 192
 * for the INT4 groups, and K = 264 (two default 256-column tiles). Each ISA runs on every
 * weight: blockSize 1, 7, 16, 256, K, > K, [16, 7], [48, K] with the same factors (all within
 * the bound of one reference: the blocks change nothing); r = 1 and r = K; alpha = 0; merge then
 * unmerge; sync against async; factor dtype (float32 / float16 / bfloat16), alpha and threads
 * rotating over weights and ISAs. After an update, linear() on the weight must agree with what
 * canonical() reports (the kernels read the updated weight). Then ERR_BUSY, peakScratchBytes and
 * every error, each refused call leaving the weight bit for bit as it was.
 *
 * The README does not promise that different block sizes give the same bits, so they are held
 * to the reference bound; it does promise that alpha = 0 changes nothing (bit for bit), that 2:4
 * weights without reprune change only their kept positions (the mask stays bit for bit), and that
 * merge then unmerge returns a float weight within its dtype's rounding.
 */
import * as cg from '../../lib';
import { QuantWeightRef, checkQuantLinear, fp8CodesRef, int4WeightRef, quantLinearRef } from '../helpers/act-reference';
import { expectRejectsCode, expectThrowsCode } from '../helpers/expect-error';
import {
  Factors,
  LR_C,
  absOf,
  TestWeight,
  U,
  WeightSpec,
  checkFloatUpdate,
  checkFp8Update,
  checkInt4Update,
  checkRepruneUpdate,
  colsFromMeta,
  diffBits,
  keptMask,
  lowRankDelta,
  makeTestWeight,
  randomFactors,
} from '../helpers/lowrank-reference';
import { Target, restore, targetTable, targets, xAsComputed } from '../helpers/matrix';
import { buildWeight as build } from '../helpers/weights';
import { DType, DTYPES, decode, encode, mulberry32, outRounding, randomFloat32, seedFor, seedNote } from '../helpers/reference';

afterAll(restore);

const SPECS: WeightSpec[] = [
  { kind: 'dense', dtype: 'float32', N: 33, K: 40 },
  { kind: 'dense', dtype: 'float16', N: 45, K: 72 },
  { kind: 'dense', dtype: 'bfloat16', N: 17, K: 264 },
  { kind: '2:4', dtype: 'float32', N: 45, K: 72 },
  { kind: '2:4', dtype: 'float16', N: 33, K: 40 },
  { kind: '2:4', dtype: 'bfloat16', N: 19, K: 264 },
  { kind: 'int4', groupSize: 32, symmetric: true, scaleDtype: 'float16', N: 33, K: 96 },
  { kind: 'int4', groupSize: 64, symmetric: false, scaleDtype: 'float32', N: 21, K: 192 },
  { kind: 'int4', groupSize: -1, symmetric: false, scaleDtype: 'float16', N: 45, K: 40 },
  { kind: 'int4-act-order', group: 32, withZeros: true, scaleDtype: 'float16', N: 17, K: 96 },
  { kind: 'fp8', fmt: 'e4m3', scaling: 'tensor', N: 33, K: 40 },
  { kind: 'fp8', fmt: 'e4m3', scaling: 'channel', N: 45, K: 72 },
  { kind: 'fp8', fmt: 'e5m2', scaling: { block: [16, 24] }, N: 33, K: 56 },
  { kind: 'fp8', fmt: 'e4m3', scaling: { block: [7, 32] }, N: 19, K: 104 },
];

/** A weight and, for 2:4, whether its updates reprune. */
interface Variant {
  tw: TestWeight;
  reprune: boolean;
  label: string;
  seed: number;
}

let VARIANTS: Variant[] | null = null;
function variants(): Variant[] {
  if (!VARIANTS) {
    VARIANTS = [];
    SPECS.forEach((s, i) => {
      const seed = seedFor(`lowrank-update weight ${i}`);
      const tw = makeTestWeight(s, mulberry32(seed));
      for (const reprune of s.kind === '2:4' ? [false, true] : [false]) {
        VARIANTS!.push({ tw, reprune, seed, label: `${tw.label}${s.kind === '2:4' ? ` reprune ${reprune}` : ''}` });
      }
    });
  }
  return VARIANTS;
}

/** A fresh weight from the recipe (every update mutates its weight). */

type Part = [string, Float32Array | Uint16Array | Uint8Array | Int32Array];

/** Everything a weight exposes: toDense() and its canonical arrays. */
function snapshot(w: cg.Weight): Part[] {
  const parts: Part[] = [['toDense', w.toDense()]];
  if (w instanceof cg.Sparse24Weight) {
    const c = w.canonical();
    parts.push(['values', c.values], ['meta', c.meta]);
  } else if (w instanceof cg.Int4Weight) {
    const c = w.canonical();
    parts.push(['qweight', c.qweight], ['scales', c.scales]);
    if (c.zeros) parts.push(['zeros', c.zeros]);
    if (c.gIdx) parts.push(['gIdx', c.gIdx]);
  } else if (w instanceof cg.Fp8Weight) {
    const c = w.canonical();
    parts.push(['codes', c.codes], ['scales', c.scales]);
  }
  return parts;
}

function diffSnapshots(got: Part[], want: Part[], what: string): string | null {
  const msgs = want.map(([name, arr], i) => diffBits(got[i][1], arr, `${what}: ${name}`)).filter((m) => m !== null);
  return got.length !== want.length ? `${what}: ${got.length} parts, expected ${want.length}` : msgs.length ? msgs.join('\n') : null;
}

/** The exact values a weight holds now. */
function valuesOf(w: cg.Weight, tw: TestWeight): Float64Array {
  return decode(w.toDense() as Float32Array | Uint16Array, tw.dtype);
}

/**
 * Checks a weight after W <- before + alpha·B·A against the reference. before: the exact values
 * it held; metaBefore: 2:4 meta before the update.
 */
function checkAfter(
  v: Variant, w: cg.Weight, before: Float64Array, f: Factors, alpha: number, what: string, metaBefore?: Uint8Array,
  delta = lowRankDelta(f, alpha, v.tw.N, v.tw.K),
): string | null {
  const { tw } = v;
  const { N, K } = tw;
  const after = valuesOf(w, tw);
  if (tw.kind === 'dense') return checkFloatUpdate(after, before, delta, f.r, tw.dtype, N, K, what);
  if (tw.kind === '2:4') {
    const meta = (w as cg.Sparse24Weight).canonical().meta;
    const colsBefore = colsFromMeta(metaBefore!, N, K);
    if (!v.reprune) {
      const m = diffBits(meta, metaBefore!, `${what}: 2:4 meta (reprune false keeps the mask)`);
      return m ?? checkFloatUpdate(after, before, delta, f.r, tw.dtype, N, K, what, keptMask(colsBefore, N, K));
    }
    const { message, changed } = checkRepruneUpdate(after, before, colsFromMeta(meta, N, K), delta, f.r, tw.dtype, N, K, what, colsBefore);
    // Not vacuous: the increments are as large as the weights, so many groups change their mask.
    return message ?? (changed > 0 ? null : `${what}: reprune changed no group's kept columns`);
  }
  if (tw.kind === 'int4') {
    const c = (w as cg.Int4Weight).canonical();
    const gIdxMsg = tw.recipe.make === 'int4.fromCanonical' ? diffBits(c.gIdx ?? new Int32Array(0), tw.groupOf!, `${what}: gIdx`) : null;
    const scales = c.scales instanceof Uint16Array ? decode(c.scales, 'float16') : decode(c.scales, 'float32');
    return gIdxMsg ?? checkInt4Update({
      after, before, delta, r: f.r, N, K, G: K / tw.group, groupOf: tw.groupOf!, scales, zeros: c.zeros, scaleDtype: tw.scaleDtype, what,
    });
  }
  const { fmt, bn, bk } = tw.fp8!;
  return checkFp8Update({ after, before, delta, r: f.r, N, K, bn, bk, fmt, scales: (w as cg.Fp8Weight).canonical().scales, what });
}

/**
 * After an update the kernels must compute with the new weight: linear() (M = 3, output into a
 * NaN-poisoned buffer) against a float64 reference built from what canonical() reports, and
 * toDense() equal, bit for bit, to the dequantization of canonical() by the test's reference.
 */
function checkLinearAfter(v: Variant, w: cg.Weight, seed: number, what: string): string | null {
  const { tw } = v;
  const { N, K } = tw;
  const M = 3;
  let ref: QuantWeightRef;
  if (tw.kind === 'dense' || tw.kind === '2:4') {
    const d = valuesOf(w, tw);
    ref = { N, K, dense: d, absFactor: absOf(d), extra: 1 };
  } else if (tw.kind === 'int4') {
    const c = (w as cg.Int4Weight).canonical();
    const q = new Uint8Array(N * K);
    for (let i = 0; i < N * K; i++) q[i] = (c.qweight[i >> 1] >> ((i & 1) * 4)) & 15;
    const scales = c.scales instanceof Uint16Array ? decode(c.scales, 'float16') : decode(c.scales, 'float32');
    ref = int4WeightRef(q, scales, c.zeros, N, K, K / tw.group, c.gIdx);
  } else {
    const c = (w as cg.Fp8Weight).canonical();
    ref = fp8CodesRef(c.codes, c.scales, N, K, tw.fp8!.bn, tw.fp8!.bk, tw.fp8!.fmt);
  }
  if (tw.kind === 'int4' || tw.kind === 'fp8') {
    const m = diffBits(w.toDense() as Float32Array, Float32Array.from(ref.dense), `${what}: toDense() vs canonical()`);
    if (m) return m;
  }
  const x = randomFloat32(mulberry32(seed ^ 0x5bd1e995), M * K);
  const out = new Float32Array(M * N).fill(NaN);
  const y = cg.linear(x, [M, K], w, { out }) as Float32Array;
  if (y !== out) return `${what}: linear did not return its out buffer`;
  // x as the kernel multiplies it (on the CUDA backend, rounded into a 16-bit weight's dtype: xAsComputed).
  const { ref: yr, absSum } = quantLinearRef(xAsComputed(decode(x, 'float32'), 'float32', tw.kind, tw.dtype), M, ref, null);
  return checkQuantLinear(y, 'float32', yr, absSum, M, N, K, ref.extra, `${what}: linear() on the updated weight`);
}

const ALPHAS = [0.75, -1.5, 0.3, 2];
const THREADS: Array<number | undefined> = [undefined, 1, 2, 3];

/** The r = 1 and r = K cases of a weight: made once, run on every row of the matrix. */
const EXTREME = new Map<number, Array<{ f: Factors; alpha: number; seed: number; delta: ReturnType<typeof lowRankDelta> }>>();
function extremeRanks(v: Variant, vi: number): Array<{ f: Factors; alpha: number; seed: number; delta: ReturnType<typeof lowRankDelta> }> {
  let e = EXTREME.get(vi);
  if (!e) {
    const { N, K } = v.tw;
    e = ([[1, 'float16', -0.75], [K, 'bfloat16', 0.25]] as Array<[number, DType, number]>).map(([r, fd, alpha]) => {
      const seed = seedFor(`lowrank-update rank ${r} ${vi}`);
      const f = randomFactors(mulberry32(seed), N, K, r, fd);
      return { f, alpha, seed, delta: lowRankDelta(f, alpha, N, K) };
    });
    EXTREME.set(vi, e);
  }
  return e;
}

test('the test factors: never zero, 16-bit ones decode (reference codec) to the values the references use', () => {
  for (const dt of DTYPES) {
    const f = randomFactors(mulberry32(seedFor(`lowrank-update factors ${dt}`)), 33, 40, 5, dt, 0.25);
    expect(diffBits(decode(f.A, dt), f.A64, `${dt} A`)).toBeNull();
    expect(diffBits(decode(f.B, dt), f.B64, `${dt} B`)).toBeNull();
    expect(f.A64.every((v) => v !== 0 && Math.abs(v) >= 1 / 8 && Math.abs(v) < 2)).toBe(true);
    expect(f.B64.every((v) => v !== 0 && Math.abs(v) >= 1 / 32 && Math.abs(v) < 0.5)).toBe(true);
  }
});

describe.each(targetTable())('%s', (label: string, t: Target) => {
  const ti = targets().findIndex((x) => x.label === label);

  beforeEach(() => t.use());

  test('blockSize 1, 7, 16, 256, K, > K, [16, 7], [48, K]: every block size within the bound of one float64 reference (same factors)', () => {
    variants().forEach((v, vi) => {
      const { tw } = v;
      const { N, K } = tw;
      const seed = seedFor(`lowrank-update ${label} blocks ${vi}`);
      const rng = mulberry32(seed);
      const r = [3, 8, 16][(vi + ti) % 3];
      const fd = DTYPES[(vi + ti) % 3];
      const f = randomFactors(rng, N, K, r, fd);
      const alpha = ALPHAS[(vi + 2 * ti) % ALPHAS.length];
      const delta = lowRankDelta(f, alpha, N, K); // one reference for every block size
      const blocks: Array<number | [number, number] | undefined> = [undefined, 1, 7, 16, 256, K, K + 8, 4 * K, [16, 7], [48, K]];
      blocks.forEach((blockSize, bi) => {
        const w = build(tw);
        const before = valuesOf(w, tw);
        expect(diffBits(Float64Array.from(before), tw.dense, `${v.label}: the weight before the update vs the independent reference`)).toBeNull();
        const metaBefore = w instanceof cg.Sparse24Weight ? w.canonical().meta : undefined;
        const threads = THREADS[(vi + bi + ti) % THREADS.length];
        const opts: cg.LowRankUpdateOptions = { alpha };
        if (blockSize !== undefined) opts.blockSize = blockSize;
        if (v.reprune) opts.reprune = true;
        if (fd !== 'float32') opts.dtype = fd;
        if (threads !== undefined) opts.threads = threads;
        const res = cg.lowRankUpdate(w, f.B, f.A, opts);
        const what = `${label} ${v.label}: r=${r} ${fd} factors, alpha ${alpha}, blockSize ${JSON.stringify(blockSize ?? 'default')}, threads ${threads ?? 'default'}; ${seedNote(seed)}`;
        expect(Number.isSafeInteger(res.peakScratchBytes) && res.peakScratchBytes > 0).toBe(true);
        expect(checkAfter(v, w, before, f, alpha, what, metaBefore, delta)).toBeNull();
        if (bi === 0) expect(checkLinearAfter(v, w, seed, what)).toBeNull();
      });
    });
  });

  test('r = 1 (float16 factors) and r = K (bfloat16 factors)', () => {
    variants().forEach((v, vi) => {
      const { tw } = v;
      for (const c of extremeRanks(v, vi)) {
        const w = build(tw);
        const before = valuesOf(w, tw);
        const metaBefore = w instanceof cg.Sparse24Weight ? w.canonical().meta : undefined;
        cg.lowRankUpdate(w, c.f.B, c.f.A, { alpha: c.alpha, dtype: c.f.dtype, reprune: v.reprune ? true : undefined, blockSize: [16, 32] });
        const what = `${label} ${v.label}: r=${c.f.r} ${c.f.dtype} factors, alpha ${c.alpha}; ${seedNote(c.seed)}`;
        expect(checkAfter(v, w, before, c.f, c.alpha, what, metaBefore, c.delta)).toBeNull();
      }
    });
  });

  test('alpha = 0 leaves the weight bit for bit unchanged (sync and async, every format)', async () => {
    for (const [vi, v] of variants().entries()) {
      const { N, K } = v.tw;
      const seed = seedFor(`lowrank-update ${label} alpha0 ${vi}`);
      const f = randomFactors(mulberry32(seed), N, K, 4, 'float32');
      const w = build(v.tw);
      const before = snapshot(w);
      cg.lowRankUpdate(w, f.B, f.A, { alpha: 0, reprune: v.reprune });
      expect(diffSnapshots(snapshot(w), before, `${label} ${v.label}: lowRankUpdate alpha 0`)).toBeNull();
      await cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: -0, blockSize: 7, reprune: v.reprune });
      expect(diffSnapshots(snapshot(w), before, `${label} ${v.label}: lowRankUpdateAsync alpha -0`)).toBeNull();
      // and the same factors with alpha != 0 do change it (so the test above can fail)
      cg.lowRankUpdate(w, f.B, f.A, { alpha: 1, reprune: v.reprune });
      expect(diffSnapshots(snapshot(w), before, 'alpha 1')).not.toBeNull();
    }
  });

  test('merge then unmerge (alpha, then -alpha): each step within the bound; float weights return within their dtype rounding', () => {
    variants().forEach((v, vi) => {
      if (v.reprune) return; // a reprune changes the mask: nothing to return to
      const { tw } = v;
      const { N, K } = tw;
      const seed = seedFor(`lowrank-update ${label} merge ${vi}`);
      const r = [4, 16][vi % 2];
      const fd = DTYPES[(vi + ti + 1) % 3];
      const f = randomFactors(mulberry32(seed), N, K, r, fd);
      const alpha = ALPHAS[(vi + ti) % ALPHAS.length];
      const w = build(tw);
      const w0 = valuesOf(w, tw);
      const meta0 = w instanceof cg.Sparse24Weight ? w.canonical().meta : undefined;
      const what = `${label} ${v.label}: r=${r} ${fd} factors, alpha ${alpha}; ${seedNote(seed)}`;
      const dtypeOpt = fd === 'float32' ? {} : { dtype: fd };
      cg.lowRankUpdate(w, f.B, f.A, { alpha, ...dtypeOpt });
      expect(checkAfter(v, w, w0, f, alpha, `${what}, merge`, meta0)).toBeNull();
      const w1 = valuesOf(w, tw);
      cg.lowRankUpdate(w, f.B, f.A, { alpha: -alpha, ...dtypeOpt }); // the same options as the merge
      expect(checkAfter(v, w, w1, f, -alpha, `${what}, unmerge`, meta0)).toBeNull();
      if (tw.kind === 'dense' || tw.kind === '2:4') {
        // README: "returns a float weight within its dtype's rounding": the two roundings of the
        // merged and the restored value, (u + half an ulp of the dtype) of each (see the helper).
        const w2 = valuesOf(w, tw);
        const { rel, abs } = outRounding(tw.dtype);
        const d = lowRankDelta(f, alpha, N, K).d;
        const bad: string[] = [];
        for (let i = 0; i < N * K; i++) {
          const v1 = w0[i] + d[i];
          const bound = LR_C * ((U + rel) * ((v1 < 0 ? -v1 : v1) + (w0[i] < 0 ? -w0[i] : w0[i])) + 2 * abs);
          const e = w2[i] - w0[i];
          if (!((e < 0 ? -e : e) <= bound) && bad.length < 5) bad.push(`w[${i}] = ${w2[i]}, was ${w0[i]}, bound ${bound}`);
        }
        expect(bad.length ? `${what}: merge + unmerge: ${bad.join('; ')}` : null).toBeNull();
      }
    });
  });

  test('lowRankUpdateAsync gives the same bits as lowRankUpdate', async () => {
    for (const [vi, v] of variants().entries()) {
      const { tw } = v;
      const { N, K } = tw;
      const seed = seedFor(`lowrank-update ${label} async ${vi}`);
      const fd = DTYPES[(vi + 2 * ti) % 3];
      const f = randomFactors(mulberry32(seed), N, K, 5, fd);
      const opts: cg.LowRankUpdateOptions = { alpha: -0.625, blockSize: [32, 24], reprune: v.reprune, threads: 2 };
      if (fd !== 'float32') opts.dtype = fd;
      const ws = build(tw);
      const wa = build(tw);
      const before = valuesOf(ws, tw);
      const metaBefore = ws instanceof cg.Sparse24Weight ? ws.canonical().meta : undefined;
      const rs = cg.lowRankUpdate(ws, f.B, f.A, opts);
      const p = cg.lowRankUpdateAsync(wa, f.B, f.A, opts);
      expect(p).toBeInstanceOf(Promise);
      const ra = await p;
      const what = `${label} ${v.label}: ${fd} factors; ${seedNote(seed)}`;
      expect(checkAfter(v, ws, before, f, -0.625, `${what} (sync)`, metaBefore)).toBeNull();
      expect(diffSnapshots(snapshot(wa), snapshot(ws), `${what}: async vs sync`)).toBeNull();
      expect(ra.peakScratchBytes).toBe(rs.peakScratchBytes);
    }
  });
});

// ---- ERR_BUSY ---------------------------------------------------------------------------------

describe('ERR_BUSY: nothing computes on a half-updated weight', () => {
  const N = 45;
  const K = 72;
  const M = 5;

  function setup(label: string) {
    const seed = seedFor(`lowrank-update busy ${label}`);
    const rng = mulberry32(seed);
    const tw = makeTestWeight({ kind: 'dense', dtype: 'float32', N, K }, rng);
    const f = randomFactors(rng, N, K, 16, 'float32');
    const x = randomFloat32(rng, M * K);
    const lf = randomFactors(rng, N, K, 2, 'float32');
    const lora = { A: lf.A, B: lf.B, alpha: 0.5 };
    return { seed, tw, f, x, lora, v: { tw, reprune: false, label: tw.label, seed } as Variant };
  }

  /** A plain Error (not a TypeError or RangeError) with code ERR_BUSY. */
  function plainBusy(e: Error): void {
    expect(e).not.toBeInstanceOf(TypeError);
    expect(e).not.toBeInstanceOf(RangeError);
  }

  test('a weight being updated by lowRankUpdateAsync refuses linear, linearAsync, lora, linearMultiLora(Async) and updates; then holds the update and takes calls again', async () => {
    const { seed, tw, f, x, lora, v } = setup('writer');
    const w = build(tw);
    const before = valuesOf(w, tw);
    const out = new Float32Array(M * N).fill(7);
    const p = cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: 0.5 });
    // Everything below runs before the event loop can settle p: the update is in flight.
    plainBusy(expectThrowsCode(() => cg.linear(x, [M, K], w, { out }), Error, 'ERR_BUSY'));
    plainBusy(expectThrowsCode(() => cg.linear(x, [M, K], w, { lora }), Error, 'ERR_BUSY'));
    plainBusy(expectThrowsCode(() => cg.linearMultiLora(x, [M, K], w, [lora], [0, -1, 0, -1, 0]), Error, 'ERR_BUSY'));
    plainBusy(expectThrowsCode(() => cg.lowRankUpdate(w, f.B, f.A, { alpha: 0.5 }), Error, 'ERR_BUSY'));
    plainBusy(expectThrowsCode(() => cg.lowRankUpdate(w, f.B, f.A, { alpha: 0 }), Error, 'ERR_BUSY'));
    const r1 = cg.linearAsync(x, [M, K], w);
    const r2 = cg.linearMultiLoraAsync(x, [M, K], w, [lora], new Int32Array(M));
    const r3 = cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: 0.5 });
    expect(out.every((y) => y === 7)).toBe(true); // the refused linear wrote nothing
    plainBusy(await expectRejectsCode(() => r1, Error, 'ERR_BUSY'));
    plainBusy(await expectRejectsCode(() => r2, Error, 'ERR_BUSY'));
    plainBusy(await expectRejectsCode(() => r3, Error, 'ERR_BUSY'));
    await p;
    // exactly one update was applied, and the weight takes calls again
    expect(checkAfter(v, w, before, f, 0.5, `busy writer; ${seedNote(seed)}`)).toBeNull();
    expect(checkLinearAfter(v, w, seed, `busy writer, after; ${seedNote(seed)}`)).toBeNull();
    await expect(cg.linearAsync(x, [M, K], w)).resolves.toBeInstanceOf(Float32Array);
    expect(() => cg.lowRankUpdate(w, f.B, f.A, { alpha: 0 })).not.toThrow();
  });

  test('an update while linearAsync / linearMultiLoraAsync / lora calls read the weight is refused and changes nothing; the calls see the old weight', async () => {
    const { seed, tw, f, x, lora, v } = setup('readers');
    for (const reader of ['linearAsync', 'linearAsync with lora', 'linearMultiLoraAsync'] as const) {
      const w = build(tw);
      const before = snapshot(w);
      const w0 = valuesOf(w, tw);
      const out = new Float32Array(M * N).fill(NaN);
      const p =
        reader === 'linearAsync' ? cg.linearAsync(x, [M, K], w, { out })
          : reader === 'linearAsync with lora' ? cg.linearAsync(x, [M, K], w, { out, lora: { ...lora, alpha: 0 } })
            : cg.linearMultiLoraAsync(x, [M, K], w, [lora], [-1, -1, -1, -1, -1], { out });
      plainBusy(expectThrowsCode(() => cg.lowRankUpdate(w, f.B, f.A, { alpha: 0.5 }), Error, 'ERR_BUSY'));
      plainBusy(expectThrowsCode(() => cg.lowRankUpdate(w, f.B, f.A, { alpha: 0 }), Error, 'ERR_BUSY'));
      const r = cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: 0.5 });
      plainBusy(await expectRejectsCode(() => r, Error, 'ERR_BUSY'));
      // reading is not exclusive: a second reader is fine
      const y2 = cg.linear(x, [M, K], w) as Float32Array;
      expect(await p).toBe(out);
      expect(diffSnapshots(snapshot(w), before, `${reader}: refused updates`)).toBeNull();
      // the reader computed on the old weight (its alpha-0 / all -1 LoRA adds nothing)
      const old: QuantWeightRef = { N, K, dense: w0, absFactor: absOf(w0), extra: 1 };
      const { ref, absSum } = quantLinearRef(decode(x, 'float32'), M, old, null);
      expect(checkQuantLinear(out, 'float32', ref, absSum, M, N, K, 1, `${reader}; ${seedNote(seed)}`)).toBeNull();
      expect(checkQuantLinear(y2, 'float32', ref, absSum, M, N, K, 1, `concurrent sync reader; ${seedNote(seed)}`)).toBeNull();
      // once it settled, the update goes through
      await cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: 0.5 });
      expect(checkAfter(v, w, w0, f, 0.5, `${reader}, then the update; ${seedNote(seed)}`)).toBeNull();
    }
  });

  test('a lowRankUpdateAsync that rejects (ERR_SCALE) leaves the weight unchanged and not busy', async () => {
    const seed = seedFor('lowrank-update busy scale');
    const rng = mulberry32(seed);
    const tw = makeTestWeight({ kind: 'fp8', fmt: 'e4m3', scaling: 'channel', N, K }, rng);
    const w = build(tw);
    const before = snapshot(w);
    const big = { A: new Float32Array(2 * K).fill(2), B: new Float32Array(N * 2).fill(2) };
    await expectRejectsCode(() => cg.lowRankUpdateAsync(w, big.B, big.A, { alpha: 3e38 }), RangeError, 'ERR_SCALE');
    expect(diffSnapshots(snapshot(w), before, 'after ERR_SCALE')).toBeNull();
    const x = randomFloat32(rng, M * K);
    expect(cg.linear(x, [M, K], w)).toBeInstanceOf(Float32Array);
    const f = randomFactors(rng, N, K, 3, 'float32');
    await cg.lowRankUpdateAsync(w, f.B, f.A, { alpha: 0.5 });
    const v: Variant = { tw, reprune: false, label: tw.label, seed };
    expect(checkAfter(v, w, tw.dense, f, 0.5, `update after ERR_SCALE; ${seedNote(seed)}`)).toBeNull();
  });
});

// ---- peakScratchBytes -------------------------------------------------------------------------

/**
 * README / lib/ops/lowrank-update.ts: "the scratch memory is at most one tile (plus one panel's B and, for
 * 16-bit or permuted A, one tile of A) per thread", a tile being one panel of 16 rows by
 * blockSize columns (2:4: whole 32-column superblocks, at least one; INT4: whole groups, at least
 * one), and "34 KiB for a 4096 x 11008 float32 weight at r = 16, both threads". Allowed on top:
 * 64 bytes of alignment per thread, one INT4 group's values and codes (5 bytes a column), and
 * FP8's new scales (4 bytes a scale unit), which the quantization rules need.
 */
function scratchBound(tw: TestWeight, r: number, blockCols: number, threads: number, aTile: boolean): { lo: number; hi: number } {
  const { N, K } = tw;
  let cols = Math.min(blockCols, K);
  if (tw.kind === '2:4') cols = Math.max(32, Math.min(blockCols, Math.ceil(K / 32) * 32));
  if (tw.kind === 'int4') cols = Math.max(tw.group, Math.floor(Math.min(blockCols, K) / tw.group) * tw.group);
  const used = Math.min(threads, Math.ceil(N / 16));
  let perThread = 4 * (16 * cols + 16 * r + (aTile ? r * cols : 0)) + 64;
  if (tw.kind === 'int4') perThread += 5 * tw.group;
  const fp8 = tw.fp8 ? 4 * Math.ceil(N / tw.fp8.bn) * Math.ceil(K / tw.fp8.bk) : 0;
  return { lo: 4 * 16 * Math.min(blockCols, K), hi: used * perThread + fp8 };
}

/** Whether this process updates the weight on the CUDA backend's device placement (routing table). */
function updatedOnDevice(tw: TestWeight): boolean {
  const r = cg.backend().routes.find((x) => x.op === 'lowRankUpdate' && x.format === tw.kind && (!x.dtypes || x.dtypes.includes(tw.dtype as never)));
  return r?.runsOn === 'cuda';
}

describe('peakScratchBytes', () => {
  test("README's example: a float32 weight at r = 16, two threads, default blockSize: at most 34 KiB", () => {
    // The scratch does not depend on N (beyond the panels) nor on K beyond one tile: a
    // [32, 256] weight has the README's 4096 x 11008 tiles (256 columns) and two panels.
    const seed = seedFor('lowrank-update peak readme');
    const rng = mulberry32(seed);
    const w = cg.DenseWeight.from(randomFloat32(rng, 32 * 256), [32, 256]);
    const f = randomFactors(rng, 32, 256, 16, 'float32');
    const { peakScratchBytes } = cg.lowRankUpdate(w, f.B, f.A, { threads: 2 });
    expect(peakScratchBytes).toBeGreaterThanOrEqual(16 * 256 * 4);
    expect(peakScratchBytes).toBeLessThanOrEqual(34 * 1024);
  });

  test('every format (INT4 with 16-bit or act-order A), blockSize <= K, 1 and 2 threads: at most one tile + B panel (+ A tile) per thread', async () => {
    for (const [vi, v] of variants().entries()) {
      const { tw } = v;
      const { N, K } = tw;
      for (const [bs, threads, fd] of [[K, 1, 'float16'], [16, 2, 'float32'], [Math.min(64, K), 2, 'bfloat16']] as Array<[number, number, DType]>) {
        const dt: DType = fd;
        const f = randomFactors(mulberry32(seedFor(`lowrank-update peak ${vi} ${bs}`)), N, K, 8, dt);
        const aTile = dt !== 'float32' || tw.recipe.make === 'int4.fromCanonical';
        // On the device the scratch is A and B as float32 device memory (README), whatever the tiles.
        const { lo, hi } = updatedOnDevice(tw) ? { lo: (8 * K + N * 8) * 4, hi: (8 * K + N * 8) * 4 } : scratchBound(tw, 8, bs, threads, aTile);
        const opts: cg.LowRankUpdateOptions = { blockSize: bs, threads, reprune: v.reprune };
        if (dt !== 'float32') opts.dtype = dt;
        const s = cg.lowRankUpdate(build(tw), f.B, f.A, opts).peakScratchBytes;
        const a = (await cg.lowRankUpdateAsync(build(tw), f.B, f.A, opts)).peakScratchBytes;
        const what = `${v.label}: blockSize ${bs}, ${threads} threads, ${dt} factors, r = 8`;
        expect(`${what}: ${s} bytes in [${lo}, ${hi}]: ${s >= lo && s <= hi}`).toBe(`${what}: ${s} bytes in [${lo}, ${hi}]: true`);
        expect(a).toBe(s);
      }
    }
  });

  // Was a library bug (fixed with this test): lib/ops/lowrank-update.ts documents an A tile only "for 16-bit or permuted A", but
  // the INT4 update (native/cpu/impl/lowrank_impl.h lowrank_update_impl) always allocates
  // r x tile columns of A per thread, also for float32 A that it then reads in place.
  test('INT4 weight with float32, unpermuted A: no A tile in the scratch', () => {
    for (const v of variants().filter((x) => x.tw.kind === 'int4' && x.tw.recipe.make === 'int4.quantize')) {
      const { tw } = v;
      const f = randomFactors(mulberry32(seedFor(`lowrank-update peak int4 ${v.label}`)), tw.N, tw.K, 16, 'float32');
      const { hi } = scratchBound(tw, 16, tw.K, 1, false);
      const s = cg.lowRankUpdate(build(tw), f.B, f.A, { blockSize: tw.K, threads: 1 }).peakScratchBytes;
      expect(s).toBeLessThanOrEqual(hi);
    }
  });

  // Was a library bug (fixed with this test): a blockSize larger than K is not clamped to K. The scratch is sized
  // for blockSize columns (1e6 on a [33, 40] weight: 128 MB instead of ~3 KB) and 2^30, which
  // lib/ accepts, fails with ERR_OUT_OF_MEMORY. A tile cannot be wider than the weight: these
  // must act as blockSize K.
  test('blockSize far beyond K acts as K: same result, scratch of one K-column tile', () => {
    const seed = seedFor('lowrank-update huge blockSize');
    const tw = makeTestWeight({ kind: 'dense', dtype: 'float32', N: 33, K: 40 }, mulberry32(seed));
    const f = randomFactors(mulberry32(seed + 1), 33, 40, 4, 'float32');
    const ref = build(tw);
    cg.lowRankUpdate(ref, f.B, f.A, { blockSize: 40, threads: 1 });
    const { hi } = scratchBound(tw, 4, 40, 1, false);
    for (const bs of [1e6, 2 ** 30]) {
      const w = build(tw);
      let got: string;
      try {
        const s = cg.lowRankUpdate(w, f.B, f.A, { blockSize: bs, threads: 1 }).peakScratchBytes;
        got = `${s <= hi ? 'bounded' : `${s} bytes`}, ${diffSnapshots(snapshot(w), snapshot(ref), 'vs blockSize K') ?? 'same'}`;
      } catch (e) {
        got = `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      expect(`blockSize ${bs}: ${got}`).toBe(`blockSize ${bs}: bounded, same`);
    }
  });
});

// ---- errors -----------------------------------------------------------------------------------

describe('errors: class and code, thrown (sync) or rejected (async), the weight left bit for bit as it was', () => {
  const N = 21;
  const K = 64;
  const r = 3;
  const seed = seedFor('lowrank-update errors');
  const rng = mulberry32(seed);
  const specs: WeightSpec[] = [
    { kind: 'dense', dtype: 'float32', N, K },
    { kind: '2:4', dtype: 'bfloat16', N, K },
    { kind: 'int4', groupSize: 32, symmetric: false, scaleDtype: 'float16', N, K },
    { kind: 'fp8', fmt: 'e5m2', scaling: { block: [16, 24] }, N, K },
  ];
  const tws = specs.map((s) => makeTestWeight(s, rng));
  const A = randomFloat32(rng, r * K);
  const B = randomFloat32(rng, N * r);
  const A16 = encode(A, 'float16') as Uint16Array;
  const B16 = encode(B, 'float16') as Uint16Array;
  type ErrClass = new (...a: never[]) => Error;

  /** Sync and async, on every weight given: the error, and the weight unchanged. */
  async function refused(which: number[], call: (w: cg.Weight) => [unknown, unknown, unknown, unknown], cls: ErrClass, code: string): Promise<void> {
    for (const i of which) {
      const w = build(tws[i]);
      const before = snapshot(w);
      expectThrowsCode(() => cg.lowRankUpdate(...(call(w) as [cg.Weight, Float32Array, Float32Array, cg.LowRankUpdateOptions])), cls, code);
      await expectRejectsCode(() => cg.lowRankUpdateAsync(...(call(w) as [cg.Weight, Float32Array, Float32Array, cg.LowRankUpdateOptions])), cls, code);
      expect(diffSnapshots(snapshot(w), before, `${tws[i].label}: refused with ${code}`)).toBeNull();
      // and the weight is not left busy
      expect(cg.linear(new Float32Array(K).fill(1), [1, K], w)).toBeInstanceOf(Float32Array);
    }
  }
  const ALL = [0, 1, 2, 3];

  test('w not a weight made by the library: TypeError ERR_WEIGHT', async () => {
    const real = build(tws[0]);
    for (const fake of [{}, null, undefined, 5, { ...real }, Object.create(cg.DenseWeight.prototype), new Float32Array(N * K)]) {
      expectThrowsCode(() => cg.lowRankUpdate(fake as cg.Weight, B, A), TypeError, 'ERR_WEIGHT');
      await expectRejectsCode(() => cg.lowRankUpdateAsync(fake as cg.Weight, B, A), TypeError, 'ERR_WEIGHT');
    }
  });

  test('factors of the wrong type or dtype: TypeError ERR_DTYPE', async () => {
    const bad: Array<[string, unknown, unknown, unknown]> = [
      ['A a Float64Array', B, new Float64Array(r * K), {}],
      ['A a plain array', B, Array.from(A), {}],
      ['A null', B, null, {}],
      ['B an Int16Array', new Int16Array(N * r), A, {}],
      ['B undefined', undefined, A, {}],
      ['16-bit factors without dtype', B16, A16, {}],
      ['unknown dtype', B16, A16, { dtype: 'float64' }],
      ['Float32Array factors with dtype float16', B, A, { dtype: 'float16' }],
      ['Uint16Array factors with dtype float32', B16, A16, { dtype: 'float32' }],
      ['A float32, B 16-bit', B16, A, {}],
      ['A 16-bit, B float32, dtype bfloat16', B, A16, { dtype: 'bfloat16' }],
    ];
    for (const [, b, a, o] of bad) await refused(ALL, (w) => [w, b, a, o], TypeError, 'ERR_DTYPE');
  });

  test('factors whose lengths do not make A [r, K] and B [N, r]: RangeError ERR_SHAPE_MISMATCH', async () => {
    const cases: Array<[unknown, unknown]> = [
      [B, new Float32Array(0)], // r = 0
      [B, new Float32Array(r * K + 1)], // not [r, K]
      [B, new Float32Array(r * K - 8)],
      [new Float32Array(N * r + 1), A], // B not [N, r]
      [new Float32Array(N * (r + 1)), A], // ranks differ
      [new Float32Array(N * (r - 1)), A],
      [B.subarray(0, N * r - 1), A],
      [encode(new Float32Array(N * r + 2).fill(1), 'bfloat16'), encode(A, 'bfloat16')],
    ];
    for (const [b, a] of cases) await refused(ALL, (w) => [w, b, a, a instanceof Uint16Array ? { dtype: 'bfloat16' } : {}], RangeError, 'ERR_SHAPE_MISMATCH');
  });

  test('options that are not an object: TypeError ERR_INVALID_ARG', async () => {
    for (const o of [5, 'alpha', true, [1]]) await refused([0, 2], (w) => [w, B, A, o], TypeError, 'ERR_INVALID_ARG');
  });

  test('alpha, blockSize, reprune, threads of the wrong kind: TypeError ERR_INVALID_ARG', async () => {
    for (const o of [{ alpha: '1' }, { alpha: null }, { alpha: 1n }, { reprune: 1 }, { reprune: 'yes' }, { threads: '2' }, { threads: null }]) {
      await refused(ALL, (w) => [w, B, A, o], TypeError, 'ERR_INVALID_ARG');
    }
  });

  test('alpha, blockSize, reprune, threads of the right kind but a wrong value: RangeError ERR_INVALID_ARG', async () => {
    const opts: unknown[] = [
      { alpha: NaN }, { alpha: Infinity }, { alpha: -Infinity },
      { blockSize: 0 }, { blockSize: -16 }, { blockSize: 1.5 }, { blockSize: NaN }, { blockSize: Infinity }, { blockSize: 2 ** 53 },
      { blockSize: [16] }, { blockSize: [0, 16] }, { blockSize: [16, 0] }, { blockSize: [16, 1.5] }, { blockSize: [16, 16, 16] }, { blockSize: [] },
      { threads: 0 }, { threads: 1025 }, { threads: 1.5 }, { threads: -1 }, { threads: NaN },
    ];
    for (const o of opts) await refused(ALL, (w) => [w, B, A, o], RangeError, 'ERR_INVALID_ARG');
    // reprune applies to 2:4 weights only
    await refused([0, 2, 3], (w) => [w, B, A, { reprune: true }], RangeError, 'ERR_INVALID_ARG');
  });

  test('non-finite factors for an INT4 or FP8 weight (float32 and 16-bit): RangeError ERR_INVALID_ARG', async () => {
    const withAt = <T extends Float32Array | Uint16Array>(a: T, i: number, v: number): T => {
      const c = a.slice() as T;
      c[i] = v;
      return c;
    };
    const cases: Array<[unknown, unknown, unknown]> = [
      [B, withAt(A, 5, NaN), {}],
      [withAt(B, N * r - 1, Infinity), A, {}],
      [withAt(B, 0, -Infinity), A, {}],
      [B16, withAt(A16, 7, 0x7e00), { dtype: 'float16' }], // float16 NaN
      [withAt(B16, 3, 0xfc00), A16, { dtype: 'float16' }], // float16 -Inf
      [encode(B, 'bfloat16'), withAt(encode(A, 'bfloat16') as Uint16Array, 1, 0x7f80), { dtype: 'bfloat16' }], // bfloat16 +Inf
    ];
    for (const [b, a, o] of cases) await refused([2, 3], (w) => [w, b, a, o], RangeError, 'ERR_INVALID_ARG');
  });

  test('an update whose new scales its format cannot hold: RangeError ERR_SCALE, nothing written', async () => {
    const two = { A: new Float32Array(2 * K).fill(2), B: new Float32Array(N * 2).fill(2) };
    // |alpha B A| = 8 alpha: 2^21 makes every INT4 group's range ~1.7e7 > 15 x 65504 (float16
    // scales); 3e38 overflows float32 (FP8 amax, INT4 float32 scales).
    await refused([2], (w) => [w, two.B, two.A, { alpha: 2 ** 21 }], RangeError, 'ERR_SCALE');
    await refused([2, 3], (w) => [w, two.B, two.A, { alpha: 3e38 }], RangeError, 'ERR_SCALE');
    await refused([2, 3], (w) => [w, two.B, two.A, { alpha: -3e38, blockSize: 7 }], RangeError, 'ERR_SCALE');
    const f32scales = makeTestWeight({ kind: 'int4', groupSize: -1, symmetric: true, scaleDtype: 'float32', N, K }, rng);
    const w = build(f32scales);
    const before = snapshot(w);
    expectThrowsCode(() => cg.lowRankUpdate(w, two.B, two.A, { alpha: 3e38 }), RangeError, 'ERR_SCALE');
    expect(diffSnapshots(snapshot(w), before, 'INT4 float32 scales')).toBeNull();
    // only one group out of range is enough, and still nothing is written
    const one = new Float32Array(N * 2).fill(0.25);
    one[N * 2 - 1] = 2 ** 22;
    await refused([2], (w2) => [w2, one, two.A, { alpha: 1 }], RangeError, 'ERR_SCALE');
  });

  // Was a library bug (fixed with this test): a detached A or B is reported as ERR_SHAPE_MISMATCH ("A has 0
  // elements"): lib/ops/lowrank-update.ts checks the lengths (rankOf) before checkFloatArray's detached check;
  // every other array argument of the library gives ERR_DETACHED (lib/errors.ts).
  test('detached factors: TypeError ERR_DETACHED', async () => {
    const detached = (): Float32Array => {
      const a = A.slice();
      structuredClone(a.buffer, { transfer: [a.buffer] });
      return a;
    };
    await refused(ALL, (w) => [w, B, detached(), {}], TypeError, 'ERR_DETACHED');
  });

  // alpha must also be finite as a float32 (the kernels' type): 1e39 would be Infinity there.
  test('alpha beyond float32 range (1e39, -3.5e38): RangeError ERR_INVALID_ARG', async () => {
    for (const alpha of [1e39, -3.5e38]) await refused(ALL, (w) => [w, B, A, { alpha }], RangeError, 'ERR_INVALID_ARG');
  });

  // Was a library bug (fixed with this test): lib/errors.ts: "Bad arguments are TypeErrors (wrong kind of
  // value) or RangeErrors (right kind, wrong value)"; a blockSize that is neither a number nor an
  // array is the wrong kind, but gets a RangeError.
  test('blockSize neither a number nor an array: TypeError ERR_INVALID_ARG', async () => {
    for (const o of [{ blockSize: '16' }, { blockSize: { rows: 16, cols: 16 } }, { blockSize: null }]) {
      await refused([0], (w) => [w, B, A, o], TypeError, 'ERR_INVALID_ARG');
    }
  });

  test('accepted forms: alpha omitted (1), reprune false on any weight, blockSize [rows, cols], 16-bit factors with dtype', () => {
    const seed2 = seedFor('lowrank-update accepted forms');
    const rng2 = mulberry32(seed2);
    const f = randomFactors(rng2, N, K, r, 'float32');
    tws.forEach((tw, i) => {
      const v: Variant = { tw, reprune: false, label: tw.label, seed };
      const w = build(tw);
      const meta = w instanceof cg.Sparse24Weight ? w.canonical().meta : undefined;
      cg.lowRankUpdate(w, f.B, f.A, { reprune: false, blockSize: [7, 24] });
      expect(checkAfter(v, w, tw.dense, f, 1, `${tw.label}: alpha omitted; ${seedNote(seed2)}`, meta)).toBeNull();
      const w2 = build(tw);
      const f16 = randomFactors(rng2, N, K, r, DTYPES[1 + (i % 2)]);
      cg.lowRankUpdate(w2, f16.B, f16.A, { dtype: f16.dtype, alpha: -0.5 });
      expect(checkAfter(v, w2, tw.dense, f16, -0.5, `${tw.label}: ${f16.dtype} factors; ${seedNote(seed2)}`, meta)).toBeNull();
    });
  });
});
