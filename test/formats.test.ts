/**
 * Weight formats: DenseWeight keeps the data exactly; float32 -> float16/bfloat16 rounds to
 * nearest even; Sparse24Weight.prune matches a reference pruning bit for bit; compress
 * round-trips; canonical() is the layout README "Formats" documents.
 */
import * as cg from '../lib';
import {
  DType,
  DTYPES,
  bitsOf,
  canonicalRef,
  compressColumns,
  decode,
  denseFromCanonical,
  isNaN16,
  keepColumnsBits,
  mulberry32,
  numberToBf16,
  numberToF16,
  pruneColumns,
  randInt,
  TRICKY_F32_BITS,
  seedFor,
  seedNote,
} from './helpers/reference';

const BYTES: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2 };

/** Random raw bits in `dtype` (every pattern possible: NaNs with payloads, infinities, subnormals, -0). */
function randomBits(rng: () => number, dtype: DType, n: number): Float32Array | Uint16Array {
  if (dtype === 'float32') {
    const u = new Uint32Array(n);
    for (let i = 0; i < n; i++) u[i] = Math.floor(rng() * 0x100000000) >>> 0;
    return new Float32Array(u.buffer);
  }
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) h[i] = Math.floor(rng() * 0x10000);
  return h;
}

/** Values from a small pool (ties, zeros of both signs, NaN, infinities) in `dtype`'s bits. */
function poolBits(rng: () => number, dtype: DType, n: number): Float32Array | Uint16Array {
  const pool = [1, -1, 2, -2, 0.5, -0.5, 0, -0, 3, NaN, Infinity, -Infinity, 1.5, -1.5];
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = pool[randInt(rng, pool.length)];
  if (dtype === 'float32') return Float32Array.from(v);
  const f = dtype === 'float16' ? numberToF16 : numberToBf16;
  return Uint16Array.from(v, f);
}

/** Random bits, with about a third of the groups redrawn from the tie-heavy pool. */
function mixedBits(rng: () => number, dtype: DType, N: number, K: number): Float32Array | Uint16Array {
  const a = randomBits(rng, dtype, N * K);
  const p = poolBits(rng, dtype, N * K);
  const bits = bitsOf(a);
  const pbits = bitsOf(p);
  for (let g = 0; g < (N * K) / 4; g++) {
    if (rng() < 0.35) for (let j = 0; j < 4; j++) bits[4 * g + j] = pbits[4 * g + j];
  }
  return a;
}

function sameBits(a: Float32Array | Uint16Array, b: Uint32Array | Uint16Array): boolean {
  const x = bitsOf(a);
  if (x.length !== b.length || x.constructor !== b.constructor) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== b[i]) return false;
  return true;
}

function firstBitDiff(a: Uint32Array | Uint16Array, b: Uint32Array | Uint16Array, K: number): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `first difference at row ${Math.floor(i / K)} col ${i % K}: 0x${a[i]?.toString(16)} vs 0x${b[i]?.toString(16)}`;
  }
  return 'no difference';
}

describe('DenseWeight', () => {
  test.each(DTYPES)('%s: toDense() gives back the input bit for bit (NaN payloads, -0, subnormals, infinities)', (dt) => {
    const N = 37;
    const K = 21;
    const seed = seedFor(`dense exact ${dt}`);
    const data = randomBits(mulberry32(seed), dt, N * K);
    const copy = data.slice();
    const w = dt === 'float32' ? cg.DenseWeight.from(data as Float32Array, [N, K]) : cg.DenseWeight.from(data, [N, K], { dtype: dt });
    expect(w.format).toBe('dense');
    expect(w.dtype).toBe(dt);
    expect(Array.from(w.shape)).toEqual([N, K]);
    expect(w.byteLength).toBeGreaterThanOrEqual(N * K * BYTES[dt]);
    // The weight holds a copy: writing to the input later changes nothing.
    bitsOf(data).fill(0);
    const d = w.toDense();
    expect(d).toBeInstanceOf(dt === 'float32' ? Float32Array : Uint16Array);
    expect(d.length).toBe(N * K);
    const msg = sameBits(d, bitsOf(copy)) ? null : `${firstBitDiff(bitsOf(d), bitsOf(copy), K)}; ${seedNote(seed)}`;
    expect(msg).toBeNull();
    // toDense() is a fresh copy each time.
    bitsOf(d).fill(0);
    expect(sameBits(w.toDense(), bitsOf(copy))).toBe(true);
  });

  test.each(DTYPES)('%s: data given as a view at an offset inside a larger buffer is read at its offset', (dt) => {
    const N = 9;
    const K = 12;
    const seed = seedFor(`dense view ${dt}`);
    const big = randomBits(mulberry32(seed), dt, N * K + 10);
    const view = big.subarray(3, 3 + N * K);
    const opts = dt === 'float32' ? undefined : { dtype: dt };
    expect(sameBits(cg.DenseWeight.from(view, [N, K], opts).toDense(), bitsOf(view.slice()))).toBe(true);
    const pruned = cg.Sparse24Weight.prune(view, [N, K], opts).toDense();
    const want = keepColumnsBits(bitsOf(view.slice()), pruneColumns(decode(view, dt), N, K), N, K);
    expect(sameBits(pruned, want) ? null : `${firstBitDiff(bitsOf(pruned), want, K)}; ${seedNote(seed)}`).toBeNull();
  });

  test('a Float32Array is float32 by default, and with { dtype: "float32" }', () => {
    const data = new Float32Array([1.1, -2.2, 3.3, 4.4]);
    for (const opts of [undefined, {}, { dtype: 'float32' as const }]) {
      const w = cg.DenseWeight.from(data, [2, 2], opts);
      expect(w.dtype).toBe('float32');
      expect(Array.from(w.toDense())).toEqual(Array.from(data));
    }
  });
});

describe('float32 -> float16 / bfloat16 rounds to nearest even', () => {
  test.each(['float16', 'bfloat16'] as const)('%s: DenseWeight.from(Float32Array, { dtype }) on tricky values and 20000 random floats', (dt) => {
    const seed = seedFor(`rne ${dt}`);
    const rng = mulberry32(seed);
    const bits = new Uint32Array(TRICKY_F32_BITS.length + 20000);
    bits.set(TRICKY_F32_BITS.map((b) => b >>> 0));
    for (let i = TRICKY_F32_BITS.length; i < bits.length; i++) {
      // random sign/mantissa, exponents concentrated around the 16-bit formats' ranges
      const e = dt === 'float16' ? 127 - 27 + randInt(rng, 46) : randInt(rng, 256);
      bits[i] = ((rng() < 0.5 ? 0x80000000 : 0) | (e << 23) | randInt(rng, 0x800000)) >>> 0;
    }
    const src = new Float32Array(bits.buffer);
    const w = cg.DenseWeight.from(src, [1, src.length], { dtype: dt });
    expect(w.dtype).toBe(dt);
    const got = w.toDense() as Uint16Array;
    const enc = dt === 'float16' ? numberToF16 : numberToBf16;
    const bad: string[] = [];
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      const want = enc(v);
      const ok = Number.isNaN(v) ? isNaN16(got[i], dt) : got[i] === want;
      if (!ok && bad.length < 8) bad.push(`float32 0x${bits[i].toString(16)} (${v}) -> 0x${got[i].toString(16)}, expected 0x${want.toString(16)}`);
    }
    expect(bad.length === 0 ? null : `${bad.join('\n')}\n${seedNote(seed)}`).toBeNull();
  });

  test('float32 NaN stays NaN, Inf stays Inf in both 16-bit formats', () => {
    const src = new Float32Array([NaN, -NaN, Infinity, -Infinity]);
    for (const dt of ['float16', 'bfloat16'] as const) {
      const d = cg.DenseWeight.from(src, [2, 2], { dtype: dt }).toDense() as Uint16Array;
      expect(isNaN16(d[0], dt)).toBe(true);
      expect(isNaN16(d[1], dt)).toBe(true);
      expect(d[2]).toBe(dt === 'float16' ? 0x7c00 : 0x7f80);
      expect(d[3]).toBe(dt === 'float16' ? 0xfc00 : 0xff80);
    }
  });
});

describe('Sparse24Weight.prune', () => {
  const SHAPES: Array<[number, number]> = [
    [19, 52], // K/4 odd: the last meta byte of a row has a padding nibble
    [40, 96],
    [1, 4],
    [33, 100],
  ];

  test.each(DTYPES.flatMap((dt) => SHAPES.map((s) => [dt, s[0], s[1]] as const)))(
    '%s [%i, %i]: toDense() equals the reference pruning bit for bit; canonical() is the README layout',
    (dt, N, K) => {
      const seed = seedFor(`prune ${dt} ${N} ${K}`);
      const data = mixedBits(mulberry32(seed), dt, N, K);
      const note = seedNote(seed);
      const w = dt === 'float32' ? cg.Sparse24Weight.prune(data as Float32Array, [N, K]) : cg.Sparse24Weight.prune(data, [N, K], { dtype: dt });
      expect(w.format).toBe('2:4');
      expect(w.dtype).toBe(dt);
      expect(Array.from(w.shape)).toEqual([N, K]);

      const cols = pruneColumns(decode(data, dt), N, K);
      const want = keepColumnsBits(bitsOf(data), cols, N, K);
      const dense = w.toDense();
      expect(dense).toBeInstanceOf(dt === 'float32' ? Float32Array : Uint16Array);
      expect(sameBits(dense, want) ? null : `${firstBitDiff(bitsOf(dense), want, K)}; ${note}`).toBeNull();

      // canonical(): the documented layout, by construction and by decoding it literally.
      const can = w.canonical();
      expect(can.values).toBeInstanceOf(dt === 'float32' ? Float32Array : Uint16Array);
      expect(can.values.length).toBe((N * K) / 2);
      expect(can.meta).toBeInstanceOf(Uint8Array);
      expect(can.meta.length).toBe(N * Math.ceil(K / 8));
      const ref = canonicalRef(bitsOf(data), cols, N, K);
      expect(sameBits(can.values, ref.values) ? null : `values: ${firstBitDiff(bitsOf(can.values), ref.values, K / 2)}; ${note}`).toBeNull();
      expect(Array.from(can.meta)).toEqual(Array.from(ref.meta));
      const rebuilt = denseFromCanonical(bitsOf(can.values), can.meta, N, K);
      expect(rebuilt.problems).toEqual([]);
      expect(sameBits(dense, rebuilt.dense)).toBe(true);
      // The getters return the same canonical data (fresh copies).
      expect(sameBits(w.values, bitsOf(can.values))).toBe(true);
      expect(Array.from(w.meta)).toEqual(Array.from(can.meta));
      expect(w.values).not.toBe(w.values);

      // compress(toDense()) round-trips: the same dense matrix and the same canonical data.
      const again = dt === 'float32' ? cg.Sparse24Weight.compress(dense as Float32Array, [N, K]) : cg.Sparse24Weight.compress(dense, [N, K], { dtype: dt });
      expect(sameBits(again.toDense(), bitsOf(dense))).toBe(true);
      const can2 = again.canonical();
      expect(sameBits(can2.values, bitsOf(can.values))).toBe(true);
      expect(Array.from(can2.meta)).toEqual(Array.from(can.meta));
    },
  );

  test.each(['float16', 'bfloat16'] as const)('%s from a Float32Array prunes the rounded values (ties created by rounding)', (dt) => {
    const N = 24;
    const K = 64;
    const seed = seedFor(`prune rounded ${dt}`);
    const rng = mulberry32(seed);
    // Values that collide after rounding: 1 + tiny differences, with random signs; no NaN.
    const src = new Float32Array(N * K);
    for (let i = 0; i < src.length; i++) {
      const base = [1, 2, 0.5, 1e-9, 70000][randInt(rng, 5)];
      src[i] = (rng() < 0.5 ? -1 : 1) * base * (1 + (randInt(rng, 8) - 4) * 2 ** -14);
    }
    const enc = dt === 'float16' ? numberToF16 : numberToBf16;
    const bits = Uint16Array.from(src, enc);
    const cols = pruneColumns(decode(bits, dt), N, K);
    const want = keepColumnsBits(bits, cols, N, K);
    const got = cg.Sparse24Weight.prune(src, [N, K], { dtype: dt }).toDense();
    expect(sameBits(got, want) ? null : `${firstBitDiff(bitsOf(got), want, K)}; ${seedNote(seed)}`).toBeNull();
  });
});

describe('Sparse24Weight.compress', () => {
  test('a hand-made example, byte for byte (float32 and float16)', () => {
    // K = 12: three groups per row (K/4 odd), ceil(12/8) = 2 meta bytes per row.
    const rows = [
      [1, 0, 2, 0, /**/ 0, 0, 0, 3, /**/ 0, 4, 5, 0],
      [0, 0, 0, 0, /**/ -1, 0, 0, -2, /**/ 0, 0, 7, 8],
    ];
    // row 0: group 0 keeps columns 0,2 (code 0b1000 = 8); group 1 has one non-zero at 3, padded
    // with the lowest free column 0 (code 0b1100 = 12); group 2 keeps 1,2 (code 0b1001 = 9).
    // row 1: group 0 is empty, padded with columns 0,1 (code 0b0100 = 4); group 1: 0,3 (12);
    // group 2: 2,3 (code 0b1110 = 14). Even group in the low nibble; the last high nibble is 0.
    const wantMeta = [0xc8, 0x09, 0xc4, 0x0e];
    const wantValues = [1, 2, 0, 3, 4, 5, 0, 0, -1, -2, 7, 8];
    const w = cg.Sparse24Weight.compress(new Float32Array(rows.flat()), [2, 12]);
    expect(Array.from(w.meta)).toEqual(wantMeta);
    expect(Array.from(w.values)).toEqual(wantValues);
    expect(Array.from(w.toDense())).toEqual(rows.flat());
    const h = cg.Sparse24Weight.compress(Uint16Array.from(rows.flat(), numberToF16), [2, 12], { dtype: 'float16' });
    expect(Array.from(h.meta)).toEqual(wantMeta);
    expect(Array.from(h.values)).toEqual(wantValues.map(numberToF16));
    // prune of the same matrix keeps the same columns (the zeros it keeps are the lowest ones).
    const p = cg.Sparse24Weight.prune(new Float32Array(rows.flat()), [2, 12]);
    expect(Array.from(p.meta)).toEqual(wantMeta);
    expect(Array.from(p.values)).toEqual(wantValues);
  });

  test.each(DTYPES)('%s: random 2:4 matrices with 0, 1 or 2 non-zeros per group match the README rules', (dt) => {
    const N = 21;
    const K = 44;
    const seed = seedFor(`compress ${dt}`);
    const rng = mulberry32(seed);
    const v = new Float64Array(N * K);
    for (let g = 0; g < (N * K) / 4; g++) {
      const nnz = randInt(rng, 3);
      const cols = [0, 1, 2, 3].sort(() => rng() - 0.5).slice(0, nnz);
      for (const c of cols) v[4 * g + c] = (rng() < 0.5 ? -1 : 1) * (0.25 + rng());
    }
    const data: Float32Array | Uint16Array = dt === 'float32' ? Float32Array.from(v) : Uint16Array.from(v, dt === 'float16' ? numberToF16 : numberToBf16);
    const w = dt === 'float32' ? cg.Sparse24Weight.compress(data as Float32Array, [N, K]) : cg.Sparse24Weight.compress(data, [N, K], { dtype: dt });
    expect(sameBits(w.toDense(), bitsOf(data))).toBe(true);
    const cols = compressColumns(decode(data, dt), N, K) as Uint8Array;
    const ref = canonicalRef(bitsOf(data), cols, N, K);
    const can = w.canonical();
    expect(sameBits(can.values, ref.values) ? null : `${firstBitDiff(bitsOf(can.values), ref.values, K / 2)}; ${seedNote(seed)}`).toBeNull();
    expect(Array.from(can.meta)).toEqual(Array.from(ref.meta));
  });

  test('-0.0 counts as zero; NaN and Inf count as non-zeros', () => {
    expect(() => cg.Sparse24Weight.compress(new Float32Array([1, -0, 2, -0]), [1, 4])).not.toThrow();
    expect(() => cg.Sparse24Weight.compress(Uint16Array.from([0x3c00, 0x8000, 0x4000, 0x8000]), [1, 4], { dtype: 'float16' })).not.toThrow();
    expect(() => cg.Sparse24Weight.compress(Uint16Array.from([0x3f80, 0x8000, 0x4000, 0x8000]), [1, 4], { dtype: 'bfloat16' })).not.toThrow();
    expect(() => cg.Sparse24Weight.compress(new Float32Array([1, NaN, 2, 0]), [1, 4])).toThrow(RangeError);
    expect(() => cg.Sparse24Weight.compress(new Float32Array([Infinity, 0, 2, 3]), [1, 4])).toThrow(RangeError);
    const w = cg.Sparse24Weight.compress(new Float32Array([0, NaN, 0, -Infinity]), [1, 4]);
    const d = w.toDense();
    expect(d[1]).toBeNaN();
    expect(d[3]).toBe(-Infinity);
  });
});

describe('byteLength', () => {
  test.each(DTYPES)('%s: positive; 2:4 is under 0.6x the dense float32 size and at least values + meta', (dt) => {
    const N = 256;
    const K = 512;
    const rng = mulberry32(seedFor(`bytes ${dt}`));
    const data = new Float32Array(N * K).map(() => rng() - 0.5);
    const dense32 = cg.DenseWeight.from(data, [N, K]);
    const dense = cg.DenseWeight.from(data, [N, K], { dtype: dt });
    const sparse = cg.Sparse24Weight.prune(data, [N, K], { dtype: dt });
    expect(dense32.byteLength).toBeGreaterThanOrEqual(N * K * 4);
    expect(dense.byteLength).toBeGreaterThanOrEqual(N * K * BYTES[dt]);
    expect(sparse.byteLength).toBeGreaterThan(0);
    expect(sparse.byteLength).toBeLessThan(0.6 * dense32.byteLength);
    expect(sparse.byteLength).toBeLessThan(0.6 * dense.byteLength);
    expect(sparse.byteLength).toBeGreaterThanOrEqual((N * K * BYTES[dt]) / 2 + N * Math.ceil(K / 8));
  });

  test('small ragged shapes have a positive byteLength', () => {
    expect(cg.DenseWeight.from(new Float32Array(3), [1, 3]).byteLength).toBeGreaterThan(0);
    expect(cg.Sparse24Weight.prune(new Float32Array(4).fill(1), [1, 4]).byteLength).toBeGreaterThan(0);
  });
});
