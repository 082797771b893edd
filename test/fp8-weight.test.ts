/**
 * Fp8Weight: quantize with tensor, channel and block scales against an independent reference
 * (scale per unit = fround(amax / max(format)), 1 for an all-zero unit; code = the reference
 * encoding of fround(w / scale)); canonical() returns exactly those codes and scales, toDense()
 * is fround(decode(code) * scale) bit for bit, and the dequantized weight is within the format's
 * rounding of the original; fromCodes round-trips; the weight is compact (no float32 copy) and
 * frozen; bad arguments are typed errors.
 */
import * as cg from '../lib';
import { expectThrowsCode } from './helpers/expect-error';
import { FP8, Fp8Fmt, diffF32, diffInts, fp8DecodeRef, fp8EncodeRef } from './helpers/quant-reference';
import { mulberry32, numberToF16, f16ToNumber, randInt, seedFor, seedNote } from './helpers/reference';

type Scaling = 'tensor' | 'channel' | { block: [number, number] };

/** The scale unit of a scaling (the default is 'channel'). */
function unitOf(scaling: Scaling | undefined, N: number, K: number): [number, number] {
  if (scaling === undefined || scaling === 'channel') return [1, K];
  if (scaling === 'tensor') return [N, K];
  return scaling.block;
}

/**
 * The documented quantization, in float32: per unit (bn x bk block; the last ones cut by N, K)
 * s = fround(amax / max) (1 when that is 0: an all-zero unit), code = encode(fround(w / s)).
 */
function fp8QuantRef(w: Float32Array, N: number, K: number, bn: number, bk: number, fmt: Fp8Fmt): { codes: Uint8Array; scales: Float32Array } {
  const SR = Math.ceil(N / bn);
  const SC = Math.ceil(K / bk);
  const codes = new Uint8Array(N * K);
  const scales = new Float32Array(SR * SC);
  for (let br = 0; br < SR; br++) {
    for (let bc = 0; bc < SC; bc++) {
      const n1 = Math.min(N, (br + 1) * bn);
      const k1 = Math.min(K, (bc + 1) * bk);
      let amax = 0;
      for (let n = br * bn; n < n1; n++) for (let k = bc * bk; k < k1; k++) amax = Math.max(amax, Math.abs(w[n * K + k]));
      let s = Math.fround(amax / FP8[fmt].max);
      if (s === 0) s = 1;
      scales[br * SC + bc] = s;
      for (let n = br * bn; n < n1; n++) for (let k = bc * bk; k < k1; k++) codes[n * K + k] = fp8EncodeRef(Math.fround(w[n * K + k] / s), fmt);
    }
  }
  return { codes, scales };
}

/** The dequantized reference: fround(decode(code) * scale of its unit). */
function fp8DequantRef(codes: Uint8Array, scales: Float32Array, N: number, K: number, bn: number, bk: number, fmt: Fp8Fmt): Float32Array {
  const SC = Math.ceil(K / bk);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) out[n * K + k] = Math.fround(fp8DecodeRef(codes[n * K + k], fmt) * scales[Math.floor(n / bn) * SC + Math.floor(k / bk)]);
  }
  return out;
}

/**
 * Weights that exercise every part of the format: rows of very different magnitudes (so
 * channel and block scales differ from the tensor scale), values spread over ~2^-24 .. 1 of
 * their row's scale (so some land in FP8's subnormals and some underflow to 0), exact zeros,
 * an all-zero row and an all-zero 16 x 48 block (scale 1).
 */
function makeWeights(rng: () => number, N: number, K: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const rowMag = 2 ** (-10 + 20 * rng());
    for (let k = 0; k < K; k++) {
      const r = rng();
      const v = r < 0.05 ? 0 : (rng() < 0.5 ? -1 : 1) * rowMag * (r < 0.2 ? 2 ** (-24 * rng()) : rng());
      w[n * K + k] = v;
    }
  }
  if (N > 3) w.fill(0, 3 * K, 4 * K); // row 3: all zero
  if (N >= 32 && K >= 96) for (let n = 16; n < 32; n++) w.fill(0, n * K + 48, n * K + 96); // block (1, 1) of 16 x 48
  return w;
}

const CASES: Array<[Fp8Fmt, number, number, Scaling | undefined]> = [
  ['e4m3', 40, 200, 'tensor'],
  ['e4m3', 40, 200, 'channel'],
  ['e4m3', 40, 200, undefined],
  ['e4m3', 150, 300, { block: [128, 128] }],
  ['e4m3', 40, 200, { block: [16, 48] }],
  ['e4m3', 33, 97, { block: [7, 5] }],
  ['e4m3', 33, 64, { block: [1, 32] }],
  ['e5m2', 40, 200, 'tensor'],
  ['e5m2', 40, 200, 'channel'],
  ['e5m2', 150, 300, { block: [128, 128] }],
  ['e5m2', 40, 200, { block: [16, 48] }],
  ['e5m2', 17, 9, { block: [100, 100] }],
];

describe('Fp8Weight.quantize matches the reference', () => {
  test.each(CASES)('%s [%i, %i] scaling %j', (fmt, N, K, scaling) => {
    const label = `fp8 quantize ${fmt} ${N} ${K} ${JSON.stringify(scaling)}`;
    const seed = seedFor(label);
    const note = seedNote(seed);
    const w = makeWeights(mulberry32(seed), N, K);
    const copy = w.slice();
    const q = cg.Fp8Weight.quantize(w, [N, K], scaling === undefined ? { format: fmt } : { format: fmt, scaling });
    expect(Array.from(w)).toEqual(Array.from(copy)); // the input is not touched

    // properties
    expect(q.format).toBe('fp8');
    expect(q.fp8Format).toBe(fmt);
    expect(Array.from(q.shape)).toEqual([N, K]);
    expect(q.scaling).toEqual(scaling === undefined ? 'channel' : scaling);
    expect(Object.isFrozen(q)).toBe(true);

    const [bn, bk] = unitOf(scaling, N, K);
    const ref = fp8QuantRef(w, N, K, bn, bk, fmt);
    const can = q.canonical();
    expect(can.codes).toBeInstanceOf(Uint8Array);
    expect(can.scales).toBeInstanceOf(Float32Array);
    expect(can.scales.length).toBe(Math.ceil(N / bn) * Math.ceil(K / bk)); // [1], [N] or [ceil(N/bn), ceil(K/bk)]
    expect(diffF32(can.scales, ref.scales, Math.ceil(K / bk), `scales; ${note}`)).toBeNull();
    expect(diffInts(can.codes, ref.codes, K, 'codes', note)).toBeNull();

    // toDense(): fround(decode(code) * scale), bit for bit.
    const dense = q.toDense();
    expect(dense).toBeInstanceOf(Float32Array);
    expect(diffF32(dense, fp8DequantRef(ref.codes, ref.scales, N, K, bn, bk, fmt), K, `toDense; ${note}`)).toBeNull();

    // The error bound of the dequantized weight. With t = w / s, the code is the format's
    // rounding of fround(t) (saturation only ever trims t ≈ max(1 + 2^-23) down to max), so
    // |decode(code) - fround(t)| <= half an ulp at |t| <= 2^-(mant + 1) |t| (2^-4 for e4m3,
    // 2^-3 for e5m2) or, in the subnormal range, half the smallest subnormal. The float32
    // roundings of w / s and of decode * s add 2^-24 (|w| + |dq|). So
    //   |w - dq| <= s (2^-(mant+1) |w / s| (1 + 2^-20) + minSub / 2) + 2^-24 (|w| + |dq|) + 2^-149.
    // A wrong code (one FP8 step off) or a wrong scale overshoots it everywhere but in
    // underflowing elements.
    const rel = 2 ** -(FP8[fmt].mantBits + 1);
    const SC = Math.ceil(K / bk);
    const bad: string[] = [];
    let count = 0;
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const i = n * K + k;
        const s = ref.scales[Math.floor(n / bn) * SC + Math.floor(k / bk)];
        const a = Math.abs(w[i]);
        const bound = rel * a * (1 + 2 ** -20) + (s * FP8[fmt].minSub) / 2 + 2 ** -24 * (a + Math.abs(dense[i])) + 2 ** -149;
        const err = Math.abs(w[i] - dense[i]);
        if (!(err <= bound)) {
          count++;
          if (bad.length < 5) bad.push(`  [${n}, ${k}]: w ${w[i]}, dq ${dense[i]}, s ${s}, |err| ${err} > ${bound}`);
        }
      }
    }
    expect(count === 0 ? null : `${count} elements outside the bound:\n${bad.join('\n')}\n${note}`).toBeNull();

    // The all-zero unit(s): scale 1, codes 0, no NaN anywhere.
    expect(dense.some(Number.isNaN)).toBe(false);
    if (N > 3 && bn === 1) {
      expect(can.scales[3 * SC]).toBe(1);
      expect(Array.from(dense.subarray(3 * K, 4 * K)).every((v) => v === 0)).toBe(true);
    }
    if (bn === 16 && bk === 48 && N >= 32) expect(can.scales[1 * SC + 1]).toBe(1);

    // fromCodes(canonical) is the same weight.
    const back = cg.Fp8Weight.fromCodes(can, [N, K], scaling === undefined ? { format: fmt } : { format: fmt, scaling });
    const can2 = back.canonical();
    expect(diffInts(can2.codes, can.codes, K, 'fromCodes codes', note)).toBeNull();
    expect(diffF32(can2.scales, can.scales, SC, `fromCodes scales; ${note}`)).toBeNull();
    expect(diffF32(back.toDense(), dense, K, `fromCodes toDense; ${note}`)).toBeNull();
    expect(back.fp8Format).toBe(fmt);
    expect(back.scaling).toEqual(q.scaling);
    expect(Object.isFrozen(back)).toBe(true);
  });

  test('the amax element of each unit maps to ±max, and a unit that is all one value is exact', () => {
    // With s = amax / max, the largest |w| of a unit becomes ±max(format) (saturation absorbs
    // the float32 rounding of the scale), so its code is 0x7e / 0x7b with the sign of w.
    const N = 4;
    const K = 8;
    const w = Float32Array.from([
      1, -3, 0.5, 2, 0, 0, 0, 0.25, // row 0: amax 3 (negative)
      7, 7, 7, 7, 7, 7, 7, 7, // row 1: all the same value
      0, 0, 0, 0, 0, 0, 0, 0, // row 2: all zero -> scale 1
      1e-30, -2e-30, 0, 0, 1e-31, 0, 0, 0, // row 3: tiny values
    ]);
    for (const fmt of ['e4m3', 'e5m2'] as const) {
      const q = cg.Fp8Weight.quantize(w, [N, K], { format: fmt, scaling: 'channel' });
      const { codes, scales } = q.canonical();
      const maxCode = FP8[fmt].maxCode;
      expect(codes[1]).toBe(0x80 | maxCode);
      expect(Array.from(codes.subarray(8, 16))).toEqual(new Array(8).fill(maxCode));
      expect(scales[2]).toBe(1);
      expect(Array.from(codes.subarray(16, 24))).toEqual(new Array(8).fill(0));
      const d = q.toDense();
      expect(Array.from(d.subarray(8, 16))).toEqual(new Array(8).fill(Math.fround(FP8[fmt].max * Math.fround(7 / FP8[fmt].max))));
      expect(codes[25]).toBe(0x80 | maxCode); // the tiny row still gets its own scale
      expect(diffInts(codes, fp8QuantRef(w, N, K, 1, K, fmt).codes, K, 'codes', fmt)).toBeNull();
    }
  });

  test('float16 data (a Uint16Array with { dtype: "float16" }) quantizes like its float32 values', () => {
    const N = 8;
    const K = 40;
    const seed = seedFor('fp8 from float16');
    const rng = mulberry32(seed);
    const h = new Uint16Array(N * K);
    for (let i = 0; i < h.length; i++) h[i] = numberToF16((rng() - 0.5) * 2 ** randInt(rng, 8));
    const f = Float32Array.from(h, f16ToNumber);
    const a = cg.Fp8Weight.quantize(h, [N, K], { dtype: 'float16', format: 'e4m3', scaling: { block: [4, 16] } }).canonical();
    const ref = fp8QuantRef(f, N, K, 4, 16, 'e4m3');
    expect(diffInts(a.codes, ref.codes, K, 'codes', seedNote(seed))).toBeNull();
    expect(diffF32(a.scales, ref.scales, 3, seedNote(seed))).toBeNull();
  });

  test('format defaults to e4m3 and scaling to channel', () => {
    const w = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * (1 + (i >> 3)));
    const q = cg.Fp8Weight.quantize(w, [8, 8]);
    expect(q.fp8Format).toBe('e4m3');
    expect(q.scaling).toBe('channel');
    const ref = fp8QuantRef(w, 8, 8, 1, 8, 'e4m3');
    expect(diffInts(q.canonical().codes, ref.codes, 8, 'codes', '')).toBeNull();
    expect(q.canonical().scales.length).toBe(8);
  });
});

describe('Fp8Weight.fromCodes', () => {
  const N = 16;
  const K = 40;
  const codesFor = (fmt: Fp8Fmt): Uint8Array => {
    // every code except the format's NaNs (and e5m2's infinities, not weights either)
    const ok = Array.from({ length: 256 }, (_, c) => c).filter((c) => Number.isFinite(fp8DecodeRef(c, fmt)));
    return Uint8Array.from({ length: N * K }, (_, i) => ok[(i * 37) % ok.length]);
  };

  test.each(['e4m3', 'e5m2'] as const)('%s: any finite codes with tensor (a number or [1]), channel and block scales round-trip and dequantize to fround(decode * scale)', (fmt) => {
    const codes = codesFor(fmt);
    const cases: Array<[Scaling, Float32Array | number, number, number]> = [
      ['tensor', 0.375, N, K],
      ['tensor', Float32Array.of(3.5), N, K],
      ['channel', Float32Array.from({ length: N }, (_, n) => 2 ** (n - 8) * 1.25), 1, K],
      [{ block: [5, 16] }, Float32Array.from({ length: 4 * 3 }, (_, i) => 0.1 * (i + 1)), 5, 16],
    ];
    for (const [scaling, scales, bn, bk] of cases) {
      const w = cg.Fp8Weight.fromCodes({ codes, scales }, [N, K], { format: fmt, scaling });
      const can = w.canonical();
      expect(Array.from(can.codes)).toEqual(Array.from(codes));
      const s32 = typeof scales === 'number' ? Float32Array.of(scales) : scales;
      expect(Array.from(can.scales)).toEqual(Array.from(s32));
      expect(diffF32(w.toDense(), fp8DequantRef(codes, s32, N, K, bn, bk, fmt), K, `${fmt} ${JSON.stringify(scaling)}`)).toBeNull();
      expect(w.scaling).toEqual(scaling);
    }
  });

  test('the weight keeps its own copy: changing the codes or scales afterwards changes nothing', () => {
    const codes = codesFor('e4m3');
    const scales = Float32Array.from({ length: N }, () => 2);
    const w = cg.Fp8Weight.fromCodes({ codes, scales }, [N, K], { format: 'e4m3' });
    const before = w.toDense();
    codes.fill(0x38);
    scales.fill(100);
    expect(diffF32(w.toDense(), before, K, 'after mutation')).toBeNull();
  });

  test('e4m3 NaN codes (0x7f, 0xff) are refused: RangeError ERR_FORMAT', () => {
    for (const nan of [0x7f, 0xff]) {
      const codes = new Uint8Array(N * K);
      codes[77] = nan;
      const e = expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes, scales: 1 }, [N, K], { format: 'e4m3', scaling: 'tensor' }), RangeError, 'ERR_FORMAT');
      expect(e.message).toMatch(/77/);
    }
  });

  test.each([
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['zero', 0],
    ['-0', -0],
    ['negative', -0.5],
  ])('a %s scale is refused: RangeError ERR_SCALE', (_n, bad) => {
    const codes = new Uint8Array(N * K);
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes, scales: bad }, [N, K], { format: 'e4m3', scaling: 'tensor' }), RangeError, 'ERR_SCALE');
    const ch = new Float32Array(N).fill(1);
    ch[N - 1] = bad;
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes, scales: ch }, [N, K], { format: 'e5m2', scaling: 'channel' }), RangeError, 'ERR_SCALE');
    const bl = new Float32Array(2 * 2).fill(1);
    bl[2] = bad;
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes, scales: bl }, [N, K], { format: 'e4m3', scaling: { block: [8, 20] } }), RangeError, 'ERR_SCALE');
  });

  test('wrong lengths: RangeError ERR_SHAPE_MISMATCH', () => {
    const ok = new Uint8Array(N * K);
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: new Uint8Array(N * K - 1), scales: 1 }, [N, K], { scaling: 'tensor' }), RangeError, 'ERR_SHAPE_MISMATCH');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: new Uint8Array(N * K + 1), scales: 1 }, [N, K], { scaling: 'tensor' }), RangeError, 'ERR_SHAPE_MISMATCH');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: new Float32Array(N - 1).fill(1) }, [N, K], { scaling: 'channel' }), RangeError, 'ERR_SHAPE_MISMATCH');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: new Float32Array(N).fill(1) }, [N, K], { scaling: 'tensor' }), RangeError, 'ERR_SHAPE_MISMATCH');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: 1 }, [N, K], { scaling: 'channel' }), RangeError, 'ERR_SHAPE_MISMATCH');
    // [ceil(16/8), ceil(40/16)] = [2, 3] = 6 scales, not 4 (floor) or 8
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: new Float32Array(4).fill(1) }, [N, K], { scaling: { block: [8, 16] } }), RangeError, 'ERR_SHAPE_MISMATCH');
    expect(cg.Fp8Weight.fromCodes({ codes: ok, scales: new Float32Array(6).fill(1) }, [N, K], { scaling: { block: [8, 16] } }).canonical().scales.length).toBe(6);
  });

  test('wrong array types: TypeError ERR_DTYPE', () => {
    const ok = new Uint8Array(N * K);
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: new Int8Array(N * K) as unknown as Uint8Array, scales: 1 }, [N, K], { scaling: 'tensor' }), TypeError, 'ERR_DTYPE');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: new Float32Array(N * K) as unknown as Uint8Array, scales: 1 }, [N, K], { scaling: 'tensor' }), TypeError, 'ERR_DTYPE');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: new Float64Array(N).fill(1) as unknown as Float32Array }, [N, K]), TypeError, 'ERR_DTYPE');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: ok, scales: Array(N).fill(1) as unknown as Float32Array }, [N, K]), TypeError, 'ERR_DTYPE');
  });
});

describe('Fp8Weight errors', () => {
  const N = 8;
  const K = 16;
  const w = Float32Array.from({ length: N * K }, (_, i) => (i % 7) - 3);

  const badScalings: Array<[string, unknown]> = [
    ["'row'", 'row'],
    ["'block'", 'block'],
    ['{ block: [0, 16] }', { block: [0, 16] }],
    ['{ block: [16] }', { block: [16] }],
    ['{ block: [16, 16, 1] }', { block: [16, 16, 1] }],
    ['{ block: [1.5, 16] }', { block: [1.5, 16] }],
    ['{ block: [16, -1] }', { block: [16, -1] }],
    ['{ block: [NaN, 4] }', { block: [NaN, 4] }],
    ["{ block: ['4', 4] }", { block: ['4', 4] }],
    ['{ block: "16x16" }', { block: '16x16' }],
    ['{}', {}],
    ['a number', 128],
    ['null', null],
  ];
  test.each(badScalings)('scaling %s: ERR_INVALID_ARG (quantize and fromCodes)', (_n, scaling) => {
    const opts = { format: 'e4m3', scaling } as unknown as { scaling: 'tensor' };
    const e = captureError(() => cg.Fp8Weight.quantize(w, [N, K], opts));
    // README: a bad argument is a TypeError (wrong kind) or a RangeError (wrong value).
    expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
    expect((e as { code?: string }).code).toBe('ERR_INVALID_ARG');
    const e2 = captureError(() => cg.Fp8Weight.fromCodes({ codes: new Uint8Array(N * K), scales: 1 }, [N, K], opts));
    expect((e2 as { code?: string }).code).toBe('ERR_INVALID_ARG');
  });

  test.each([NaN, Infinity, -Infinity])('a %p weight: RangeError ERR_INVALID_ARG naming where', (v) => {
    const bad = w.slice();
    bad[3 * K + 5] = v;
    const e = expectThrowsCode(() => cg.Fp8Weight.quantize(bad, [N, K], { format: 'e5m2', scaling: 'tensor' }), RangeError, 'ERR_INVALID_ARG');
    expect(e.message).toMatch(/row 3, column 5/);
  });

  test('an unknown format: RangeError ERR_INVALID_ARG', () => {
    expectThrowsCode(() => cg.Fp8Weight.quantize(w, [N, K], { format: 'e3m4' as Fp8Fmt }), RangeError, 'ERR_INVALID_ARG');
    expectThrowsCode(() => cg.Fp8Weight.fromCodes({ codes: new Uint8Array(N * K), scales: 1 }, [N, K], { format: 'e3m4' as Fp8Fmt, scaling: 'tensor' }), RangeError, 'ERR_INVALID_ARG');
  });

  test('data of the wrong length or type', () => {
    expectThrowsCode(() => cg.Fp8Weight.quantize(w.subarray(1), [N, K]), RangeError, 'ERR_SHAPE_MISMATCH');
    expectThrowsCode(() => cg.Fp8Weight.quantize(new Float64Array(N * K) as unknown as Float32Array, [N, K]), TypeError, 'ERR_DTYPE');
  });
});

describe('Fp8Weight is compact', () => {
  test.each([
    ['tensor', 'tensor' as Scaling],
    ['channel', 'channel' as Scaling],
    ['block [128, 128]', { block: [128, 128] } as Scaling],
    ['block [16, 48]', { block: [16, 48] } as Scaling],
  ])('%s: byteLength is about N*K + the scales (one byte per weight, no float32 copy)', (_n, scaling) => {
    const N = 256;
    const K = 512;
    const w = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37));
    const q = cg.Fp8Weight.quantize(w, [N, K], { format: 'e4m3', scaling });
    const [bn, bk] = unitOf(scaling, N, K);
    const nScales = Math.ceil(N / bn) * Math.ceil(K / bk);
    // at least the codes; at most the codes plus some layout padding, the scales (maybe twice)
    // and a little slack: a float32 copy (4 N K) or float16 copy (2 N K) would be far above.
    expect(q.byteLength).toBeGreaterThanOrEqual(N * K);
    expect(q.byteLength).toBeLessThan(1.1 * N * K + 4 * nScales + 4096);
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, but the call returned');
}
