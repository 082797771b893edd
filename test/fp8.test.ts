/**
 * The FP8 codec, cg.fp8.encode / decode / max, against the OCP 8-bit floating point spec:
 * every one of the 256 codes of each format decodes to the spec's value (sign of zero and NaN
 * included) and encodes back to itself; encoding rounds to nearest even (every tie between
 * adjacent values, the float32 neighbours of every tie and every binade boundary, the subnormals
 * and the underflow to zero) and saturates as native/common/fp8.h documents; wrong arguments are
 * typed errors.
 *
 * The reference (helpers/quant-reference.ts) decodes from the bit fields and encodes by searching
 * the table of representable values, so it shares no code or method with the library.
 */
import * as cg from '../lib';
import { expectThrowsCode } from './helpers/expect-error';
import {
  FP8,
  Fp8Fmt,
  fp8DecodeRef,
  fp8EncodeRef,
  fp8EncodeRefBits,
  fp8IsNaNCode,
  fp8PositiveValues,
  nextDown32,
  nextUp32,
} from './helpers/quant-reference';
import { mulberry32, randInt, seedFor, seedNote } from './helpers/reference';

const FORMATS: Fp8Fmt[] = ['e4m3', 'e5m2'];
const hex = (c: number): string => `0x${c.toString(16).padStart(2, '0')}`;

/** Encodes `values` (float32) with the library and compares every code with the reference. */
function checkEncode(values: Float32Array, fmt: Fp8Fmt, what: string): string | null {
  const got = cg.fp8.encode(values, fmt);
  expect(got).toBeInstanceOf(Uint8Array);
  expect(got.length).toBe(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const want = fp8EncodeRefBits(bits[i], fmt);
    if (got[i] !== want) {
      count++;
      if (bad.length < 8) {
        bad.push(`  ${values[i]} (float32 0x${bits[i].toString(16)}) -> ${hex(got[i])} (${fp8DecodeRef(got[i], fmt)}), expected ${hex(want)} (${fp8DecodeRef(want, fmt)})`);
      }
    }
  }
  return count === 0 ? null : `${fmt} ${what}: ${count} of ${values.length} wrong:\n${bad.join('\n')}`;
}

describe('fp8.max', () => {
  test('the largest finite values of the OCP formats: 448 (e4m3) and 57344 (e5m2)', () => {
    // OCP FP8 spec table 1: E4M3 max = S.1111.110 = 1.75 * 2^8, E5M2 max = S.11110.11 = 1.75 * 2^15.
    expect(cg.fp8.max('e4m3')).toBe(448);
    expect(cg.fp8.max('e5m2')).toBe(57344);
    expect(fp8DecodeRef(0x7e, 'e4m3')).toBe(448);
    expect(fp8DecodeRef(0x7b, 'e5m2')).toBe(57344);
  });
});

describe.each(FORMATS)('fp8 %s: all 256 codes', (fmt) => {
  test('decode gives the spec value of every code (bit for bit: -0 vs +0; NaN codes give NaN)', () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const got = cg.fp8.decode(codes, fmt);
    expect(got).toBeInstanceOf(Float32Array);
    expect(got.length).toBe(256);
    const bad: string[] = [];
    for (let c = 0; c < 256; c++) {
      const want = fp8DecodeRef(c, fmt);
      // Object.is tells -0 from +0 and matches NaN with NaN; every FP8 value is a float32, so
      // the comparison is exact.
      if (!Object.is(got[c], want)) bad.push(`${hex(c)} -> ${got[c]}, expected ${want}`);
    }
    expect(bad).toEqual([]);
    // The spec's landmarks, spelled out so that the reference itself is checked too.
    if (fmt === 'e4m3') {
      expect([0x7f, 0xff].every((c) => Number.isNaN(got[c]))).toBe(true);
      expect(Array.from({ length: 256 }, (_, c) => c).filter((c) => Number.isNaN(got[c]))).toEqual([0x7f, 0xff]);
      expect(got[0x08]).toBe(2 ** -6); // smallest normal
      expect(got[0x01]).toBe(2 ** -9); // smallest subnormal
      expect(got[0x07]).toBe(7 * 2 ** -9); // largest subnormal
      expect(got[0x38]).toBe(1);
      expect(got.some((v) => !Number.isFinite(v) && !Number.isNaN(v))).toBe(false); // no infinities
    } else {
      expect(got[0x7c]).toBe(Infinity);
      expect(got[0xfc]).toBe(-Infinity);
      expect(Array.from({ length: 256 }, (_, c) => c).filter((c) => Number.isNaN(got[c]))).toEqual([0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]);
      expect(got[0x04]).toBe(2 ** -14); // smallest normal
      expect(got[0x01]).toBe(2 ** -16); // smallest subnormal
      expect(got[0x3c]).toBe(1);
    }
    expect(Object.is(got[0x00], 0)).toBe(true);
    expect(Object.is(got[0x80], -0)).toBe(true);
  });

  test('encode(decode(c)) == c for every non-NaN code (the ±Inf codes of e5m2 included)', () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i).filter((c) => !fp8IsNaNCode(c, fmt));
    expect(codes.length).toBe(fmt === 'e4m3' ? 254 : 250);
    const back = cg.fp8.encode(cg.fp8.decode(codes, fmt), fmt);
    const bad: string[] = [];
    codes.forEach((c, i) => {
      if (back[i] !== c) bad.push(`${hex(c)} -> ${fp8DecodeRef(c, fmt)} -> ${hex(back[i])}`);
    });
    expect(bad).toEqual([]);
  });

  test('the decoded values are strictly increasing in the positive codes (the reference encoder relies on it)', () => {
    const t = fp8PositiveValues(fmt);
    for (let i = 1; i < t.length; i++) expect(t[i]).toBeGreaterThan(t[i - 1]);
    expect(t[t.length - 1]).toBe(FP8[fmt].max);
  });
});

describe.each(FORMATS)('fp8 %s: encode rounds to nearest even', (fmt) => {
  const spec = FP8[fmt];
  const table = fp8PositiveValues(fmt);

  test('every exact midpoint between adjacent values goes to the even code (both signs)', () => {
    // Between codes c and c + 1 (c = 0 .. maxCode - 1, i.e. 0 and the smallest subnormal through
    // the two largest finite values) the midpoint has at most 5 significant bits, so it is a
    // float32 and a true tie: round-to-nearest-even must pick the even code (mantissa LSB 0).
    const mids: number[] = [];
    const want: number[] = [];
    for (let c = 0; c + 1 < table.length; c++) {
      const m = (table[c] + table[c + 1]) / 2;
      expect(Math.fround(m)).toBe(m);
      mids.push(m, -m);
      const even = c % 2 === 0 ? c : c + 1;
      want.push(even, 0x80 | even);
    }
    const got = cg.fp8.encode(Float32Array.from(mids), fmt);
    const bad: string[] = [];
    mids.forEach((m, i) => {
      if (got[i] !== want[i]) bad.push(`${m} -> ${hex(got[i])}, expected ${hex(want[i])}`);
    });
    expect(bad).toEqual([]);
    // The reference agrees with the plain rule (a check of the reference itself).
    mids.forEach((m, i) => expect(fp8EncodeRef(m, fmt)).toBe(want[i]));
  });

  test('the float32 neighbours of every midpoint round to the nearer value', () => {
    // One float32 ulp below a midpoint is nearer the lower value, one above nearer the upper:
    // both directions are exact decisions, not ties.
    const vals: number[] = [];
    const want: number[] = [];
    for (let c = 0; c + 1 < table.length; c++) {
      const m = (table[c] + table[c + 1]) / 2;
      vals.push(nextDown32(m), nextUp32(m), -nextDown32(m), -nextUp32(m));
      want.push(c, c + 1, 0x80 | c, 0x80 | (c + 1));
    }
    const got = cg.fp8.encode(Float32Array.from(vals), fmt);
    const bad: string[] = [];
    vals.forEach((v, i) => {
      if (got[i] !== want[i]) bad.push(`${v} -> ${hex(got[i])}, expected ${hex(want[i])}`);
    });
    expect(bad).toEqual([]);
    expect(checkEncode(Float32Array.from(vals), fmt, 'midpoint neighbours')).toBeNull();
  });

  test('values at, just below and just above every binade boundary (2^e over the whole range and beyond)', () => {
    // Binade boundaries are where the spacing of representable values doubles: rounding up
    // across a boundary (the carry into the exponent) and the normal/subnormal boundary
    // (2^(1 - bias)) are the classic places for off-by-one exponents.
    const vals: number[] = [];
    for (let e = -(spec.bias + spec.mantBits + 4); e <= (fmt === 'e4m3' ? 10 : 17); e++) {
      const p = 2 ** e;
      vals.push(p, nextDown32(p), nextUp32(p), -p, -nextDown32(p), -nextUp32(p));
      // The value just below the boundary that sits at the last midpoint of the binade below.
      const below = p - p * 2 ** -(spec.mantBits + 2);
      vals.push(below, nextDown32(below), nextUp32(below));
    }
    const a = Float32Array.from(vals);
    expect(checkEncode(a, fmt, 'binade boundaries')).toBeNull();
    // Spot checks written out: 1 - tiny rounds up to 1; the normal/subnormal boundary.
    const one = fmt === 'e4m3' ? 0x38 : 0x3c;
    expect(cg.fp8.encode(Float32Array.of(nextDown32(1), 1, nextUp32(1)), fmt)).toEqual(Uint8Array.of(one, one, one));
    const minNormal = 2 ** (1 - spec.bias);
    const minNormalCode = 1 << spec.mantBits;
    expect(cg.fp8.encode(Float32Array.of(minNormal, nextDown32(minNormal)), fmt)).toEqual(Uint8Array.of(minNormalCode, minNormalCode));
  });

  test('subnormals and the underflow to signed zero (half the smallest subnormal ties to 0)', () => {
    const sub = spec.minSub;
    const vals = [
      sub, -sub, sub / 2, -sub / 2, nextUp32(sub / 2), -nextUp32(sub / 2), nextDown32(sub / 2), -nextDown32(sub / 2),
      1.5 * sub, 2.5 * sub, 3.5 * sub, -1.5 * sub, sub / 4, -sub / 4, 2 ** -149, -(2 ** -149), 2 ** -126, -(2 ** -126), 1e-30, -1e-30,
    ];
    const a = Float32Array.from(vals);
    expect(checkEncode(a, fmt, 'subnormals')).toBeNull();
    const got = cg.fp8.encode(a, fmt);
    // written out: half the smallest subnormal is a tie between 0 (even) and 1: it goes to 0,
    // keeping the sign; just above it rounds up to the smallest subnormal.
    expect(got[2]).toBe(0x00);
    expect(got[3]).toBe(0x80);
    expect(got[4]).toBe(0x01);
    expect(got[5]).toBe(0x81);
    expect(got[8]).toBe(0x02); // 1.5 sub: tie between 1 and 2 -> 2 (even)
    expect(got[9]).toBe(0x02); // 2.5 sub: tie between 2 and 3 -> 2
    expect(got[10]).toBe(0x04); // 3.5 sub: tie between 3 and 4 -> 4 (4 is the smallest normal of e5m2)
    expect(got[14]).toBe(0x00); // float32 subnormals flush to +0 / -0
    expect(got[15]).toBe(0x80);
  });

  test('+0 and -0 keep their sign', () => {
    expect(cg.fp8.encode(Float32Array.of(0, -0), fmt)).toEqual(Uint8Array.of(0x00, 0x80));
  });

  test('20000 random float32 values over many magnitudes match the reference', () => {
    const seed = seedFor(`fp8 random ${fmt}`);
    const rng = mulberry32(seed);
    const n = 20000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // float32 exponents from well below FP8's smallest subnormal to well above its max.
      const e = 127 + (fmt === 'e4m3' ? -14 : -22) + randInt(rng, fmt === 'e4m3' ? 26 : 42);
      bits[i] = ((rng() < 0.5 ? 0x80000000 : 0) | (e << 23) | randInt(rng, 0x800000)) >>> 0;
    }
    const msg = checkEncode(new Float32Array(bits.buffer), fmt, 'random values');
    expect(msg === null ? null : `${msg}\n${seedNote(seed)}`).toBeNull();
  });

  test('an input that is a view at an offset inside a larger buffer is read at its offset', () => {
    const big = Float32Array.from([7, 1, 2, 0.5, -3, 9]);
    const view = big.subarray(1, 5);
    expect(Array.from(cg.fp8.encode(view, fmt))).toEqual([1, 2, 0.5, -3].map((v) => fp8EncodeRef(v, fmt)));
    const codes = Uint8Array.of(0x11, fmt === 'e4m3' ? 0x38 : 0x3c, 0x80, 0x22);
    expect(Array.from(cg.fp8.decode(codes.subarray(1, 3), fmt))).toEqual([1, -0]);
  });
});

describe('fp8 saturation (fp8.h) and NaN', () => {
  test('e4m3: 448 stays, everything above 448 (Infinity included) saturates to ±448 (0x7e / 0xfe)', () => {
    // 464 is the midpoint between 448 and the next e4m3-like value 480 (which e4m3fn spends on
    // NaN): plain RNE would round 464 to 480; the documented rule clamps everything to 448.
    const vals = [448, nextUp32(448), 449, 464, 480, 1e4, 1e30, 3.4028234663852886e38, Infinity];
    const a = Float32Array.from([...vals, ...vals.map((v) => -v)]);
    const got = cg.fp8.encode(a, 'e4m3');
    expect(Array.from(got)).toEqual([...vals.map(() => 0x7e), ...vals.map(() => 0xfe)]);
    expect(checkEncode(a, 'e4m3', 'saturation')).toBeNull();
    // Just below 448: the nearer of 416 (0x7d) and 448 (0x7e); their midpoint 432 is a tie that
    // goes to the even code 0x7e.
    expect(Array.from(cg.fp8.encode(Float32Array.of(nextDown32(448), 432, nextDown32(432), nextUp32(432)), 'e4m3'))).toEqual([0x7e, 0x7e, 0x7d, 0x7e]);
  });

  test('e5m2: finite values above 57344 saturate to ±57344 (0x7b / 0xfb); ±Infinity stays ±Infinity (0x7c / 0xfc)', () => {
    // 61440 is the midpoint between 57344 and the would-be next value 65536: IEEE rounding would
    // make it (and everything above) Infinity; the documented rule keeps finite values finite.
    const vals = [57344, nextUp32(57344), 61439, 61440, 65536, 1e6, 3.4028234663852886e38];
    const a = Float32Array.from([...vals, ...vals.map((v) => -v), Infinity, -Infinity]);
    const got = cg.fp8.encode(a, 'e5m2');
    expect(Array.from(got)).toEqual([...vals.map(() => 0x7b), ...vals.map(() => 0xfb), 0x7c, 0xfc]);
    expect(checkEncode(a, 'e5m2', 'saturation')).toBeNull();
    // Just below 57344: the nearer of 49152 (0x7a) and 57344 (0x7b); their midpoint 53248 is a
    // tie that goes to the even code 0x7a.
    expect(Array.from(cg.fp8.encode(Float32Array.of(53248, nextUp32(53248), nextDown32(53248)), 'e5m2'))).toEqual([0x7a, 0x7b, 0x7a]);
  });

  test.each(FORMATS)('%s: NaN encodes to 0x7f with the input NaN\'s sign bit (0xff for a negative NaN), whatever its payload', (fmt) => {
    const nanBits = [0x7fc00000, 0x7f800001, 0x7fbfffff, 0x7fc12345, 0x7fffffff, 0xffc00000, 0xff800001, 0xffffffff];
    const a = new Float32Array(Uint32Array.from(nanBits).buffer);
    const got = cg.fp8.encode(a, fmt);
    expect(Array.from(got)).toEqual([0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff, 0xff, 0xff]);
    // and they decode to NaN again
    expect(Array.from(cg.fp8.decode(got, fmt)).every(Number.isNaN)).toBe(true);
  });

  test('the format defaults to e4m3 when omitted', () => {
    const a = Float32Array.of(1, 500, 3.3, -0.01);
    expect(Array.from(cg.fp8.encode(a))).toEqual(Array.from(cg.fp8.encode(a, 'e4m3')));
    expect(Array.from(cg.fp8.decode(Uint8Array.of(0x7e, 0x38)))).toEqual([448, 1]);
  });
});

describe('fp8 codec errors', () => {
  const bad: Array<[string, unknown]> = [
    ['a Float64Array', new Float64Array(4)],
    ['a plain array', [1, 2, 3]],
    ['a Uint16Array', new Uint16Array(4)],
    ['a Uint8Array', new Uint8Array(4)],
    ['null', null],
    ['a number', 1.5],
  ];
  test.each(bad)('encode of %s is a TypeError ERR_DTYPE', (_n, v) => {
    expectThrowsCode(() => cg.fp8.encode(v as Float32Array, 'e4m3'), TypeError, 'ERR_DTYPE');
  });

  const badCodes: Array<[string, unknown]> = [
    ['a Float32Array', new Float32Array(4)],
    ['an Int8Array', new Int8Array(4)],
    ['a Uint8ClampedArray', new Uint8ClampedArray(4)],
    ['a plain array', [0x38]],
    ['undefined', undefined],
  ];
  test.each(badCodes)('decode of %s is a TypeError ERR_DTYPE', (_n, v) => {
    expectThrowsCode(() => cg.fp8.decode(v as Uint8Array, 'e4m3'), TypeError, 'ERR_DTYPE');
  });

  test.each(['e3m4', 'E4M3', 'e4m3fn', 'fp8', ''])('format %p is a RangeError ERR_INVALID_ARG (encode, decode and max)', (f) => {
    const fmt = f as Fp8Fmt;
    const e1 = expectThrowsCode(() => cg.fp8.encode(new Float32Array(2), fmt), RangeError, 'ERR_INVALID_ARG');
    expect(e1.message).toMatch(/e4m3/);
    expectThrowsCode(() => cg.fp8.decode(new Uint8Array(2), fmt), RangeError, 'ERR_INVALID_ARG');
    expectThrowsCode(() => cg.fp8.max(fmt), RangeError, 'ERR_INVALID_ARG');
  });

  // Node 20's ArrayBuffer has no `detached` property: an empty view must still not be taken for
  // a detached one (an empty input gives an empty result), while a transferred one must be.
  test('an empty array encodes and decodes to an empty array; a transferred one is ERR_DETACHED', () => {
    expect(cg.fp8.encode(new Float32Array(0), 'e5m2').length).toBe(0);
    expect(cg.fp8.decode(new Uint8Array(0), 'e5m2').length).toBe(0);
    const gone = new Float32Array(4);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expectThrowsCode(() => cg.fp8.encode(gone, 'e5m2'), TypeError, 'ERR_DETACHED');
  });
});
