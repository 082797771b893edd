/**
 * The kernels' own conversions, exactly, on every row of the (backend x ISA) matrix
 * (test/helpers/matrix.ts) and both weight formats: products that are
 * exact (a value times 1, plus zeros), so y must be the input value itself, rounded once to the
 * output dtype by round to nearest even (checked against the tests' own encoders):
 *   - x in float16/bfloat16: every one of the 65536 codes decodes exactly (subnormals, max,
 *     infinities, NaN), and re-encodes to itself in its own dtype;
 *   - weights in float16/bfloat16: every code, likewise;
 *   - float32 results rounded into float16/bfloat16 output: tricky values (ties, overflow,
 *     subnormals, NaN).
 * A zero may come out with either sign (the accumulator starts at +0); a NaN must stay NaN.
 */
import * as cg from '../lib';
import { Target, restore, targets } from './helpers/matrix';
import { DType, TRICKY_F32_BITS, f16ToNumber, bf16ToNumber, numberToBf16, numberToF16 } from './helpers/reference';

const ROWS = targets();
const FORMATS = ['dense', '2:4'] as const;
type Format = (typeof FORMATS)[number];

afterAll(restore);

/** The bits expected when `v` (exact) is rounded into outDtype; null for NaN. */
function expectedBits(v: number, outDtype: DType): number | null {
  if (Number.isNaN(v)) return null;
  if (outDtype === 'float16') return numberToF16(v);
  if (outDtype === 'bfloat16') return numberToBf16(v);
  return new Uint32Array(new Float32Array([v]).buffer)[0];
}

/**
 * Checks y[m*N + n] == round(values[m], outDtype) for every m, n; returns null or the first few
 * mismatches.
 */
function compareExact(y: Float32Array | Uint16Array, outDtype: DType, values: ArrayLike<number>, N: number, what: string): string | null {
  const bits = y instanceof Float32Array ? new Uint32Array(y.buffer, y.byteOffset, y.length) : y;
  const signMask = outDtype === 'float32' ? 0x7fffffff : 0x7fff;
  const expMask = outDtype === 'float32' ? 0x7f800000 : outDtype === 'float16' ? 0x7c00 : 0x7f80;
  const bad: string[] = [];
  let nbad = 0;
  const rows = y.length / N;
  for (let m = 0; m < rows; m++) {
    const v = values[m];
    const want = expectedBits(v, outDtype);
    for (let n = 0; n < N; n++) {
      const got = bits[m * N + n];
      let ok: boolean;
      if (want === null) ok = (got & expMask) === expMask && (got & signMask & ~expMask) !== 0;
      else if ((want & signMask) === 0) ok = (got & signMask) === 0; // +0 or -0
      else ok = got === want;
      if (!ok) {
        nbad++;
        if (bad.length < 6) bad.push(`  row ${m} col ${n}: value ${v} -> 0x${got.toString(16)}, expected ${want === null ? 'NaN' : `0x${want.toString(16)}`}`);
      }
    }
  }
  return nbad === 0 ? null : `${what}: ${nbad} of ${y.length} wrong\n${bad.join('\n')}`;
}

function makeWeight(format: 'dense' | '2:4', data: Float32Array | Uint16Array, shape: [number, number], dtype: DType): cg.Weight {
  return format === 'dense' ? cg.DenseWeight.from(data, shape, { dtype }) : cg.Sparse24Weight.compress(data, shape, { dtype });
}

const N = 3; // a tail of every column tile

/** The exact value of every 16-bit code, per format (computed once). */
const CODE_VALUES: Record<'float16' | 'bfloat16', Float64Array> = {
  float16: Float64Array.from({ length: 65536 }, (_, h) => f16ToNumber(h)),
  bfloat16: Float64Array.from({ length: 65536 }, (_, h) => bf16ToNumber(h)),
};

describe('x in float16 / bfloat16: all 65536 codes pass through exactly', () => {
  // x row m = [code_m, 1, 1, 1]; every weight row = [1, 0, 0, 0]: y[m, n] = x[m, 0] exactly.
  const cases = ROWS.flatMap((t) => FORMATS.flatMap((f) => (['float16', 'bfloat16'] as const).map((d): [string, Format, typeof d, Target] => [t.label, f, d, t])));
  test.each(cases)('%s %s x %s', (_label, format, xd, t) => {
    t.use();
    const M = 65536;
    const K = 4;
    const one = xd === 'float16' ? 0x3c00 : 0x3f80;
    const x = new Uint16Array(M * K).fill(one);
    for (let m = 0; m < M; m++) x[m * K] = m;
    const values = CODE_VALUES[xd];
    const w = makeWeight(format, new Float32Array(N * K).map((_, i) => (i % K === 0 ? 1 : 0)), [N, K], 'float32');
    for (const outDtype of ['float32', xd] as DType[]) {
      const y = cg.linear(x, [M, K], w, { dtype: xd, outDtype });
      expect(compareExact(y, outDtype, values, N, `${t.label} ${format} x ${xd} -> ${outDtype}`)).toBeNull();
    }
    // A few rows alone too (the single-row kernels).
    for (const m of [0x0001, 0x03ff, 0x7bff, 0x7c00, 0x8001, 0xfe00, 0x3555]) {
      const y = cg.linear(x.subarray(m * K, m * K + K), [1, K], w, { dtype: xd, outDtype: 'float32' });
      expect(compareExact(y, 'float32', [values[m]], N, `${t.label} ${format} x ${xd} code 0x${m.toString(16)}, M=1`)).toBeNull();
    }
  });
});

describe('weights in float16 / bfloat16: all 65536 codes pass through exactly', () => {
  // weight row n = [code_n, 0, 0, 0]; x rows = [1, 0.5, 0.5, 0.5]: y[m, n] = w[n, 0] exactly.
  const cases = ROWS.flatMap((t) => FORMATS.flatMap((f) => (['float16', 'bfloat16'] as const).map((d): [string, Format, typeof d, Target] => [t.label, f, d, t])));
  test.each(cases)('%s %s weight %s', (_label, format, wd, t) => {
    t.use();
    const Nw = 65536;
    const K = 4;
    const data = new Uint16Array(Nw * K);
    for (let n = 0; n < Nw; n++) data[n * K] = n;
    const w = makeWeight(format, data, [Nw, K], wd);
    const values = CODE_VALUES[wd];
    for (const M of [1, 3]) {
      const x = new Float32Array(M * K).map((_, i) => (i % K === 0 ? 1 : 0.5));
      const y = cg.linear(x, [M, K], w) as Float32Array;
      // y is [M, Nw]: transpose the expectation (every row is the same).
      const yt = new Float32Array(Nw);
      let rowsOk = true;
      for (let m = 1; m < M; m++) {
        for (let n = 0; n < Nw; n++) {
          if (!Object.is(y[m * Nw + n], y[n]) && !(Number.isNaN(y[n]) && Number.isNaN(y[m * Nw + n]))) rowsOk = false;
        }
      }
      expect(rowsOk).toBe(true);
      yt.set(y.subarray(0, Nw));
      expect(compareExact(yt, 'float32', values, 1, `${t.label} ${format} weight ${wd}, M=${M}`)).toBeNull();
    }
  });
});

describe('float32 results rounded into float16 / bfloat16 output (RNE, subnormals, overflow, NaN)', () => {
  // x row m = [v_m, 1, 1, 1], weight rows [1, 0, 0, 0]: the float32 result is v_m exactly.
  const values = Array.from(new Float32Array(new Uint32Array(TRICKY_F32_BITS).buffer));
  // Repeat to 140 rows: the many-row kernels (2:4 switches at M >= 128) see the values too.
  const rows: number[] = [];
  while (rows.length < 140) rows.push(...values);
  rows.length = 140;
  const cases = ROWS.flatMap((t) => FORMATS.flatMap((f) => (['float32', 'float16', 'bfloat16'] as const).map((d): [string, Format, typeof d, Target] => [t.label, f, d, t])));
  test.each(cases)('%s %s -> %s', (_label, format, outDtype, t) => {
    t.use();
    const K = 4;
    const w = makeWeight(format, new Float32Array(N * K).map((_, i) => (i % K === 0 ? 1 : 0)), [N, K], 'float32');
    for (const M of [rows.length, 5, 1]) {
      const x = new Float32Array(M * K).fill(1);
      for (let m = 0; m < M; m++) x[m * K] = rows[m];
      const y = cg.linear(x, [M, K], w, { outDtype });
      expect(compareExact(y, outDtype, rows.slice(0, M), N, `${t.label} ${format} -> ${outDtype}, M=${M}`)).toBeNull();
    }
  });
});
