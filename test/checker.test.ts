/**
 * The test references themselves: the float16/bfloat16 codecs, the RNE encoders, the pruning
 * reference, and — most important — that the error-bound checker is tight enough to reject
 * the results of real bugs (a wrong column, a dropped group, an off-by-one in K, a bias added
 * twice, a tail column copied from its neighbour) while accepting the library's results.
 */
import * as cg from '../lib';
import {
  BOUND_C,
  DType,
  bf16ToNumber,
  checkLinear,
  decode,
  encode,
  errorBound,
  f16ToNumber,
  linearRef,
  mulberry32,
  numberToBf16,
  numberToF16,
  pruneColumns,
  randomFloat32,
  seedFor,
  seedNote,
  violations,
  keepColumnsBits,
  bitsOf,
} from './helpers/reference';
import { restore, targets } from './helpers/matrix';

afterAll(restore);

describe('float16 / bfloat16 codecs of the tests', () => {
  test('float16: known codes', () => {
    expect(f16ToNumber(0x3c00)).toBe(1);
    expect(f16ToNumber(0xc000)).toBe(-2);
    expect(f16ToNumber(0x7bff)).toBe(65504);
    expect(f16ToNumber(0x0001)).toBe(2 ** -24);
    expect(f16ToNumber(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToNumber(0x0400)).toBe(2 ** -14);
    expect(f16ToNumber(0x7c00)).toBe(Infinity);
    expect(f16ToNumber(0xfc00)).toBe(-Infinity);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x3555)).toBeCloseTo(1 / 3, 3);
  });

  test('bfloat16: known codes', () => {
    expect(bf16ToNumber(0x3f80)).toBe(1);
    expect(bf16ToNumber(0xc000)).toBe(-2);
    expect(bf16ToNumber(0x7f7f)).toBe(255 * 2 ** 120);
    expect(bf16ToNumber(0x0001)).toBe(2 ** -133);
    expect(bf16ToNumber(0x0080)).toBe(2 ** -126);
    expect(bf16ToNumber(0x7f80)).toBe(Infinity);
    expect(bf16ToNumber(0x7fc0)).toBeNaN();
    // bfloat16 is the top half of a float32
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (const h of [0x3f80, 0x4049, 0xbe00, 0x0123, 0x7f7f, 0x8001]) {
      u[0] = h << 16;
      expect(bf16ToNumber(h)).toBe(f[0]);
    }
  });

  test.each(['float16', 'bfloat16'] as const)('%s: every one of the 65536 codes decodes and re-encodes to itself (NaN stays NaN)', (dt) => {
    const dec = dt === 'float16' ? f16ToNumber : bf16ToNumber;
    const enc = dt === 'float16' ? numberToF16 : numberToBf16;
    let nan = 0;
    for (let h = 0; h < 65536; h++) {
      const v = dec(h);
      if (Number.isNaN(v)) {
        nan++;
        expect(Number.isNaN(dec(enc(v)))).toBe(true);
      } else if (enc(v) !== h) {
        throw new Error(`${dt} code 0x${h.toString(16)} = ${v} re-encodes to 0x${enc(v).toString(16)}`);
      }
    }
    expect(nan).toBe(dt === 'float16' ? 2046 : 254);
  });

  test('RNE encoders: ties to even, subnormals, overflow', () => {
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(numberToF16(65519.99)).toBe(0x7bff);
    expect(numberToF16(65520)).toBe(0x7c00); // tie between 65504 and 65536 -> even = Inf
    expect(numberToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the least subnormal -> 0
    expect(numberToF16(3 * 2 ** -25)).toBe(0x0002);
    expect(numberToF16(2 ** -14 - 2 ** -25)).toBe(0x0400);
    expect(numberToF16(-0)).toBe(0x8000);
    expect(numberToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(numberToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(numberToBf16(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds to Inf
    expect(numberToBf16(2 ** -133 * 1.5)).toBe(0x0002); // tie -> even
    expect(numberToBf16(2 ** -134)).toBe(0x0000);
  });
});

describe('pruning reference', () => {
  test('keeps the two largest magnitudes, lower column on ties, NaN as largest', () => {
    const rows = [
      [1, -4, 3, 2], // 1, 2
      [1, 1, 1, 1], // 0, 1
      [-2, 2, 1, -2], // 0, 1
      [0, 0, 0, 5], // 0, 3
      [1, NaN, 3, 2], // 1, 2
      [NaN, 1, NaN, 2], // 0, 2
      [Infinity, 1, NaN, 2], // 0, 2
      [0.5, 0.25, -0.75, 0.125], // 0, 2
    ];
    const cols = pruneColumns(rows.flat(), rows.length, 4);
    expect(Array.from(cols)).toEqual([1, 2, 0, 1, 0, 1, 0, 3, 1, 2, 0, 2, 0, 2, 0, 2]);
  });
});

describe('the error-bound checker', () => {
  // A real case: x float16, w bfloat16 (dense), bias float32, K = 140.
  const M = 17;
  const N = 33;
  const K = 140;
  const seed = seedFor('checker');
  const rng = mulberry32(seed);
  const x = encode(randomFloat32(rng, M * K), 'float16') as Uint16Array;
  const w = encode(randomFloat32(rng, N * K), 'bfloat16') as Uint16Array;
  const bias = randomFloat32(rng, N);
  const xd = decode(x, 'float16');
  const wd = decode(w, 'bfloat16');
  const bd = decode(bias, 'float32');
  const { ref, absSum } = linearRef(xd, wd, bd, M, N, K);
  const note = seedNote(seed);

  /** A "kernel" in float64 with a deliberate bug, its result rounded once to the output dtype. */
  function buggy(outDtype: DType, bug: (m: number, n: number) => number): Float32Array | Uint16Array {
    const v = new Float64Array(M * N);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) v[m * N + n] = bug(m, n);
    return encode(v, outDtype);
  }
  const dot = (m: number, n: number, k0: number, k1: number, xoff = 0): number => {
    let s = 0;
    for (let k = k0; k < k1; k++) s += xd[m * K + k + xoff] * wd[n * K + k];
    return s;
  };
  const bugs: Record<string, (m: number, n: number) => number> = {
    'off-by-one in K (last column dropped)': (m, n) => dot(m, n, 0, K - 1) + bd[n],
    'off-by-one in K (x shifted by one column)': (m, n) => dot(m, n, 0, K - 1, 1) + xd[m * K] * wd[n * K + K - 1] + bd[n],
    'a group of 4 dropped': (m, n) => dot(m, n, 0, K - 4) + bd[n],
    'two columns of a group swapped': (m, n) =>
      dot(m, n, 0, 36) + xd[m * K + 37] * wd[n * K + 36] + xd[m * K + 36] * wd[n * K + 37] + dot(m, n, 38, K) + bd[n],
    'bias added twice': (m, n) => dot(m, n, 0, K) + 2 * bd[n],
    'bias missing': (m, n) => dot(m, n, 0, K),
    'bias of the neighbouring column': (m, n) => dot(m, n, 0, K) + bd[(n + 1) % N],
    'tail column copied from its neighbour': (m, n) => dot(m, n === N - 1 ? n - 1 : n, 0, K) + bd[n],
  };

  test('accepts the correctly rounded reference, and the library result on every (backend x ISA) row', () => {
    for (const od of ['float32', 'float16', 'bfloat16'] as DType[]) {
      expect(checkLinear(encode(ref, od), od, ref, absSum, M, N, K, `rounded reference ${od}; ${note}`)).toBeNull();
    }
    const weight = cg.DenseWeight.from(w, [N, K], { dtype: 'bfloat16' });
    for (const t of targets()) {
      t.use();
      const y = cg.linear(x, [M, K], weight, { dtype: 'float16', bias, outDtype: 'float32' });
      expect(checkLinear(y, 'float32', ref, absSum, M, N, K, `library ${t.label}; ${note}`)).toBeNull();
    }
    restore();
  });

  test.each(Object.keys(bugs))('rejects a result with a bug: %s', (name) => {
    const affected = (y: Float32Array | Uint16Array, od: DType) => violations(y, od, ref, absSum, N, K).count;
    // float32 output. A dropped product is at least 2^-6 and a bias at least 2^-3 in size, both
    // above the bound at K = 140, so those bugs are caught in every output; the others change an
    // output by a difference of products that can cancel, so most (not all) outputs are caught.
    const y32 = buggy('float32', bugs[name]);
    const truth = encode(ref, 'float32');
    let changed = 0;
    for (let i = 0; i < M * N; i++) if (y32[i] !== truth[i]) changed++;
    expect(changed).toBeGreaterThan(0);
    const guaranteed = ['off-by-one in K (last column dropped)', 'bias added twice', 'bias missing'].includes(name);
    if (guaranteed) expect(affected(y32, 'float32')).toBe(M * N);
    else expect(affected(y32, 'float32')).toBeGreaterThanOrEqual(0.5 * changed);
    // 16-bit outputs: still rejected.
    expect(checkLinear(buggy('float16', bugs[name]), 'float16', ref, absSum, M, N, K, name)).not.toBeNull();
    expect(checkLinear(buggy('bfloat16', bugs[name]), 'bfloat16', ref, absSum, M, N, K, name)).not.toBeNull();
  });

  test('rejects a single library output perturbed by twice its bound, and a NaN left in a poisoned buffer', () => {
    const weight = cg.DenseWeight.from(w, [N, K], { dtype: 'bfloat16' });
    const y = cg.linear(x, [M, K], weight, { dtype: 'float16', bias, outDtype: 'float32' }) as Float32Array;
    expect(checkLinear(y, 'float32', ref, absSum, M, N, K, note)).toBeNull();
    const i = 5 * N + 7;
    const yp = y.slice();
    yp[i] = ref[i] + 2 * errorBound(ref[i], absSum[i], K, 'float32');
    expect(checkLinear(yp, 'float32', ref, absSum, M, N, K, note)).toMatch(/1 of 561 outputs/);
    const yn = y.slice();
    yn[M * N - 1] = NaN;
    expect(checkLinear(yn, 'float32', ref, absSum, M, N, K, note)).toMatch(/1 of 561 outputs/);
    expect(checkLinear(y.subarray(1), 'float32', ref, absSum, M, N, K, note)).not.toBeNull();
  });

  test(`the bound is tight: c = ${BOUND_C}, float32 output at K = 140 allows less than the smallest product`, () => {
    let worst = 0;
    for (let i = 0; i < M * N; i++) worst = Math.max(worst, errorBound(ref[i], absSum[i], K, 'float32'));
    expect(worst).toBeLessThan(2 ** -6);
  });
});

describe('2:4 reference helpers', () => {
  test('keepColumnsBits keeps the chosen raw bits and zeroes the rest', () => {
    const data = new Float32Array([1, -4, 3, 2, NaN, 0.5, -0, 7]);
    const cols = pruneColumns(decode(data, 'float32'), 1, 8);
    const kept = new Float32Array((keepColumnsBits(bitsOf(data), cols, 1, 8) as Uint32Array).buffer);
    expect(Array.from(kept)).toEqual([0, -4, 3, 0, NaN, 0, 0, 7]);
  });
});
