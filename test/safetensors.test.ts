/**
 * cg.safetensors.read against files built here from the published format
 * (https://github.com/huggingface/safetensors: 8-byte little-endian header length, a UTF-8 JSON
 * header { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {..} }, then
 * the data section, offsets relative to its start): every dtype comes back as the right
 * TypedArray with the right values, whether the data is aligned (a view) or not (a copy), from a
 * Buffer at a non-zero byteOffset, a Uint8Array or an ArrayBuffer; malformed files are
 * RangeError ERR_FORMAT and never read out of bounds; and a GPTQ checkpoint read from a file
 * imports into an Int4Weight bit-exactly.
 */
import * as cg from '../lib';
import { expectThrowsCode } from './helpers/expect-error';
import { diffF32, f16Bits, f16Values, int4DequantRef, packGPTQ, transposeNG } from './helpers/quant-reference';
import { mulberry32, randInt, seedFor, seedNote } from './helpers/reference';

interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
  /** the raw little-endian bytes */
  bytes: Uint8Array;
}

const le = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();

/**
 * A safetensors file: the tensors' bytes back to back in the given order, the header JSON
 * padded with spaces (as the reference writer does) so that the data section starts at
 * 8 + headerLength with (8 + headerLength) % 8 == misalign (0: aligned for every dtype).
 * `header` lets a test replace or edit the header object before it is serialised.
 */
function buildFile(
  tensors: TensorSpec[],
  opts: { metadata?: Record<string, unknown>; misalign?: number; header?: (h: Record<string, unknown>) => unknown; rawHeader?: string } = {},
): Buffer {
  let header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const final = opts.header ? opts.header(header) : header;
  let json = opts.rawHeader ?? JSON.stringify(final);
  const misalign = opts.misalign ?? 0;
  let jsonBytes = Buffer.from(json, 'utf8');
  while ((8 + jsonBytes.length) % 8 !== misalign) {
    json += ' ';
    jsonBytes = Buffer.from(json, 'utf8');
  }
  const out = Buffer.alloc(8 + jsonBytes.length + off);
  out.writeBigUInt64LE(BigInt(jsonBytes.length), 0);
  jsonBytes.copy(out, 8);
  let p = 8 + jsonBytes.length;
  for (const t of tensors) {
    out.set(t.bytes, p);
    p += t.bytes.length;
  }
  return out;
}

/** One tensor of every dtype under test, with values that show sign and byte-order mistakes. */
function sampleTensors(): { specs: TensorSpec[]; want: Record<string, { ctor: Function; values: unknown[]; shape: number[] }> } {
  const f32 = Float32Array.of(1.5, -2.25, 3.4028234663852886e38, -0, 1e-45, Math.PI);
  const f64 = Float64Array.of(Math.E, -1e300, 5e-324);
  const f16 = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7e00); // 1, -2, 65504, 2^-24, -0, NaN
  const bf16 = Uint16Array.of(0x3f80, 0xbf80, 0x7f7f, 0x0001);
  const e4m3 = Uint8Array.of(0x00, 0x38, 0x7e, 0xfe, 0x7f, 0x01);
  const e5m2 = Uint8Array.of(0x3c, 0x7b, 0x7c, 0xfc, 0x7d);
  const i32 = Int32Array.of(0, -1, 2147483647, -2147483648, 123456789, -7);
  const u8 = Uint8Array.of(0, 255, 128, 7);
  const i64 = BigInt64Array.of(0n, -1n, 9007199254740993n, -9223372036854775808n, 9223372036854775807n);
  const u64 = BigUint64Array.of(18446744073709551615n, 1n);
  const i16 = Int16Array.of(-32768, 32767);
  const u32 = Uint32Array.of(4294967295, 0);
  const specs: TensorSpec[] = [
    // Widest types first, as writers order them: with an aligned header every tensor down to
    // the U8 is aligned for its type; the three after the 4-byte U8 (at an odd offset) are not.
    { name: 'f32', dtype: 'F32', shape: [2, 3], bytes: le(f32) },
    { name: 'f64', dtype: 'F64', shape: [3], bytes: le(f64) },
    { name: 'i64', dtype: 'I64', shape: [5], bytes: le(i64) },
    { name: 'u64', dtype: 'U64', shape: [2], bytes: le(u64) },
    { name: 'i32', dtype: 'I32', shape: [3, 2], bytes: le(i32) },
    { name: 'u32', dtype: 'U32', shape: [2], bytes: le(u32) },
    { name: 'f16', dtype: 'F16', shape: [6], bytes: le(f16) },
    { name: 'bf16', dtype: 'BF16', shape: [2, 2], bytes: le(bf16) },
    { name: 'i16', dtype: 'I16', shape: [2], bytes: le(i16) },
    { name: 'e4m3', dtype: 'F8_E4M3', shape: [6], bytes: le(e4m3) },
    { name: 'e5m2', dtype: 'F8_E5M2', shape: [5], bytes: le(e5m2) },
    { name: 'u8', dtype: 'U8', shape: [4], bytes: le(u8) },
    { name: 'empty', dtype: 'F32', shape: [0], bytes: new Uint8Array(0) },
    { name: 'empty2d', dtype: 'I64', shape: [3, 0], bytes: new Uint8Array(0) },
    { name: 'scalar', dtype: 'F32', shape: [], bytes: le(Float32Array.of(42)) },
  ];
  const want = {
    f32: { ctor: Float32Array, values: Array.from(f32), shape: [2, 3] },
    f64: { ctor: Float64Array, values: Array.from(f64), shape: [3] },
    i64: { ctor: BigInt64Array, values: Array.from(i64), shape: [5] },
    u64: { ctor: BigUint64Array, values: Array.from(u64), shape: [2] },
    i32: { ctor: Int32Array, values: Array.from(i32), shape: [3, 2] },
    u32: { ctor: Uint32Array, values: Array.from(u32), shape: [2] },
    f16: { ctor: Uint16Array, values: Array.from(f16), shape: [6] },
    bf16: { ctor: Uint16Array, values: Array.from(bf16), shape: [2, 2] },
    i16: { ctor: Int16Array, values: Array.from(i16), shape: [2] },
    e4m3: { ctor: Uint8Array, values: Array.from(e4m3), shape: [6] },
    e5m2: { ctor: Uint8Array, values: Array.from(e5m2), shape: [5] },
    u8: { ctor: Uint8Array, values: Array.from(u8), shape: [4] },
    empty: { ctor: Float32Array, values: [], shape: [0] },
    empty2d: { ctor: BigInt64Array, values: [], shape: [3, 0] },
    scalar: { ctor: Float32Array, values: [42], shape: [] },
  };
  return { specs, want };
}

function checkAll(file: ReturnType<typeof cg.safetensors.read>, want: ReturnType<typeof sampleTensors>['want'], what: string): void {
  expect(Object.keys(file.tensors).sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const t = file.tensors[name];
    const ctx = `${what}: tensor ${name}`;
    expect([ctx, t.data.constructor]).toEqual([ctx, w.ctor]);
    expect([ctx, t.shape]).toEqual([ctx, w.shape]);
    // Object.is semantics (toEqual on arrays of numbers): -0 and NaN are told apart correctly.
    expect([ctx, Array.from(t.data as ArrayLike<unknown>)]).toEqual([ctx, w.values]);
  }
  expect(file.tensors.f16.dtype).toBe('F16');
  expect(file.tensors.bf16.dtype).toBe('BF16');
  expect(file.tensors.e4m3.dtype).toBe('F8_E4M3');
  expect(file.tensors.e5m2.dtype).toBe('F8_E5M2');
  expect(file.tensors.i64.dtype).toBe('I64');
}

describe('safetensors.read: well-formed files', () => {
  test('every dtype comes back as its TypedArray (16-bit floats as raw bits, FP8 as codes, I64 as BigInt64Array) with its values and shape; __metadata__ is returned', () => {
    const { specs, want } = sampleTensors();
    const meta = { format: 'pt', quant_method: 'gptq', note: 'ünïcödé' };
    const buf = buildFile(specs, { metadata: meta });
    const file = cg.safetensors.read(buf);
    checkAll(file, want, 'aligned Buffer');
    expect(file.metadata).toEqual(meta);
    expect(Object.keys(file.tensors)).not.toContain('__metadata__');
  });

  test('without __metadata__, metadata is an empty object', () => {
    const file = cg.safetensors.read(buildFile([{ name: 'x', dtype: 'U8', shape: [1], bytes: Uint8Array.of(9) }]));
    expect(file.metadata).toEqual({});
    expect(Array.from(file.tensors.x.data as Uint8Array)).toEqual([9]);
  });

  test('a Uint8Array and an ArrayBuffer work like a Buffer', () => {
    const { specs, want } = sampleTensors();
    const buf = buildFile(specs);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    checkAll(cg.safetensors.read(new Uint8Array(ab)), want, 'Uint8Array');
    checkAll(cg.safetensors.read(ab), want, 'ArrayBuffer');
  });

  test.each([1, 2, 3, 4, 5, 6, 7])('a header length that starts the data section at offset %i mod 8: values still right (the reader copies what is unaligned)', (mis) => {
    const { specs, want } = sampleTensors();
    const buf = buildFile(specs, { misalign: mis });
    expect((buf.readUInt32LE(0) + 8) % 8).toBe(mis);
    checkAll(cg.safetensors.read(buf), want, `misalign ${mis}`);
  });

  test.each([1, 3, 8, 13])('a Buffer at byteOffset %i inside a larger buffer (a subarray) is read at its offset', (offset) => {
    const { specs, want } = sampleTensors();
    const file = buildFile(specs);
    const big = Buffer.alloc(file.length + offset + 5, 0xee);
    file.copy(big, offset);
    const sub = big.subarray(offset, offset + file.length);
    expect(sub.byteOffset - big.byteOffset).toBe(offset);
    checkAll(cg.safetensors.read(sub), want, `byteOffset ${offset}`);
  });

  test('aligned data is a view of the input (no copy); unaligned data is a copy that is still right', () => {
    // The reader's documented behaviour (lib/safetensors.ts): view when aligned, copy otherwise.
    const spec = { name: 'w', dtype: 'F32', shape: [4], bytes: le(Float32Array.of(1, 2, 3, 4)) };
    const aligned = buildFile([spec]);
    const big = new Uint8Array(aligned.length + 8);
    big.set(aligned, 8);
    const t = cg.safetensors.read(big.subarray(8)).tensors.w.data as Float32Array;
    expect(t.buffer).toBe(big.buffer);
    expect(Array.from(t)).toEqual([1, 2, 3, 4]);
    const big2 = new Uint8Array(aligned.length + 8);
    big2.set(aligned, 3);
    const t2 = cg.safetensors.read(big2.subarray(3, 3 + aligned.length)).tensors.w.data as Float32Array;
    expect(t2).toBeInstanceOf(Float32Array);
    expect(Array.from(t2)).toEqual([1, 2, 3, 4]);
    // a copy: writing to the input afterwards does not change it
    big2.fill(0);
    expect(Array.from(t2)).toEqual([1, 2, 3, 4]);
  });

  test('tensors may be stored in any order in the data section, and a header longer than its JSON is fine', () => {
    const a = le(Int32Array.of(1, 2));
    const b = le(Int32Array.of(-3, -4, -5));
    const buf = buildFile([], {
      rawHeader: JSON.stringify({ b: { dtype: 'I32', shape: [3], data_offsets: [0, 12] }, a: { dtype: 'I32', shape: [2], data_offsets: [12, 20] } }),
    });
    const full = Buffer.concat([buf, Buffer.from(b), Buffer.from(a)]);
    const file = cg.safetensors.read(full);
    expect(Array.from(file.tensors.a.data as Int32Array)).toEqual([1, 2]);
    expect(Array.from(file.tensors.b.data as Int32Array)).toEqual([-3, -4, -5]);
  });
});

describe('safetensors.read: malformed files are RangeError ERR_FORMAT', () => {
  const one: TensorSpec = { name: 'w', dtype: 'F32', shape: [2, 2], bytes: le(Float32Array.of(1, 2, 3, 4)) };
  const editW = (edit: (e: Record<string, unknown>) => void) => (h: Record<string, unknown>): unknown => {
    edit(h.w as Record<string, unknown>);
    return h;
  };

  const expectFormat = (buf: Uint8Array | ArrayBuffer, msg?: RegExp): void => {
    const e = expectThrowsCode(() => cg.safetensors.read(buf), RangeError, 'ERR_FORMAT');
    expect(e.message).toMatch(/safetensors/);
    if (msg) expect(e.message).toMatch(msg);
  };

  test('fewer than 8 bytes', () => {
    for (const n of [0, 1, 7]) expectFormat(new Uint8Array(n), /8/);
  });

  test('a header length beyond the file (by one byte, and 2^63)', () => {
    const good = buildFile([one]);
    const hl = Number(good.readBigUInt64LE(0));
    const b1 = Buffer.from(good);
    b1.writeBigUInt64LE(BigInt(good.length - 8 + 1), 0);
    expectFormat(b1, /header/);
    const b2 = Buffer.from(good);
    b2.writeBigUInt64LE(2n ** 63n, 0);
    expectFormat(b2);
    const b3 = Buffer.from(good);
    b3.writeBigUInt64LE(2n ** 64n - 1n, 0);
    expectFormat(b3);
    expect(hl).toBeGreaterThan(0);
  });

  test.each([
    ['not JSON', '{"w": '],
    ['JSON with a trailing comma', '{"a": 1,}'],
    ['empty', ''],
  ])('invalid JSON: %s', (_n, raw) => {
    expectFormat(buildFile([], { rawHeader: raw }), /JSON/);
  });

  test('a header that is not UTF-8', () => {
    // Valid JSON but for one byte inside a string: a lenient decoder would read U+FFFD there.
    const raw = '{"__metadata__":{"k":"vv"}}';
    const good = buildFile([], { rawHeader: raw });
    expect(cg.safetensors.read(good).metadata).toEqual({ k: 'vv' });
    good[8 + raw.indexOf('vv')] = 0xff;
    expectFormat(good, /UTF-8/);
  });

  test.each([['an array', '[]'], ['a number', '1'], ['a string', '"x"'], ['null', 'null'], ['true', 'true']])('a header that is %s, not an object', (_n, raw) => {
    expectFormat(buildFile([], { rawHeader: raw }), /object/);
  });

  test('__metadata__ that is not an object of strings', () => {
    expectFormat(buildFile([one], { metadata: { a: 1 } }), /__metadata__/);
    expectFormat(buildFile([one], { header: (h) => ({ ...h, __metadata__: ['x'] }) }), /__metadata__/);
    expectFormat(buildFile([one], { header: (h) => ({ ...h, __metadata__: 'x' }) }), /__metadata__/);
  });

  test('a tensor entry that is not an object', () => {
    expectFormat(buildFile([one], { header: (h) => ({ ...h, v: 5 }) }), /'v'/);
    expectFormat(buildFile([one], { header: (h) => ({ ...h, v: null }) }), /'v'/);
  });

  test.each([['F128'], ['float32'], ['f32'], [''], [7], [null]])('unknown dtype %p', (dt) => {
    expectFormat(buildFile([one], { header: editW((e) => (e.dtype = dt)) }), /dtype/);
  });

  test('a missing dtype', () => {
    expectFormat(buildFile([one], { header: editW((e) => delete e.dtype) }), /dtype/);
  });

  test.each([
    ['a negative dimension', [-2, -2]],
    ['a fractional dimension', [1.5, 2]],
    ['a string', '2,2'],
    ['strings inside', ['2', '2']],
    ['null inside', [null, 4]],
    ['missing', undefined],
  ])('a bad shape: %s', (_n, shape) => {
    expectFormat(buildFile([one], { header: editW((e) => (e.shape = shape)) }), /shape/);
  });

  test.each([
    ['beyond the data section', [0, 20]],
    ['end < begin', [16, 0]],
    ['a size that does not match shape * dtype (too small)', [0, 12]],
    ['a size that does not match shape * dtype (shifted past the end)', [4, 20]],
    ['negative', [-4, 12]],
    ['one number', [0]],
    ['three numbers', [0, 8, 16]],
    ['fractional', [0.5, 16.5]],
    ['missing', undefined],
    ['a string', '0,16'],
  ])('bad data_offsets: %s', (_n, offs) => {
    expectFormat(buildFile([one], { header: editW((e) => (e.data_offsets = offs)) }), /'w'/);
  });

  test('a shape whose byte size does not match the span, with the span in bounds', () => {
    // [2, 2] F32 is 16 bytes; claiming [3, 2] (24 bytes) over the same 16-byte span must fail
    expectFormat(buildFile([one], { header: editW((e) => (e.shape = [3, 2])) }), /16/);
    expectFormat(buildFile([one], { header: editW((e) => (e.dtype = 'F64')) }), /bytes/);
  });

  test('overlapping tensors', () => {
    const two: TensorSpec[] = [one, { name: 'v', dtype: 'F32', shape: [2], bytes: le(Float32Array.of(5, 6)) }];
    // v claims bytes 8..16, which w (0..16) also holds
    const e = buildFile(two, { header: (h) => ({ ...h, v: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }) });
    expectFormat(e, /overlap/);
    // the same span twice
    expectFormat(buildFile(two, { header: (h) => ({ ...h, v: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }) }), /overlap/);
    // touching spans are fine
    expect(() => cg.safetensors.read(buildFile(two))).not.toThrow();
  });

  test.each([
    ['a string', 'abc'],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['a plain array', [0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 123, 125]],
    ['an object', { length: 10 }],
  ])('input that is %s: TypeError ERR_INVALID_ARG', (_n, v) => {
    expectThrowsCode(() => cg.safetensors.read(v as Uint8Array), TypeError, 'ERR_INVALID_ARG');
  });
});

describe('safetensors -> Int4Weight.fromGPTQ round trip', () => {
  test.each([0, 5])('a GPTQ checkpoint (qweight, qzeros, scales F16, g_idx) read from a file (data at offset %i mod 8) imports bit-exactly', (misalign) => {
    const N = 32;
    const K = 128;
    const G = 4;
    const seed = seedFor(`safetensors gptq ${misalign}`);
    const rng = mulberry32(seed);
    const q = Uint8Array.from({ length: N * K }, () => randInt(rng, 16));
    const zeros = Uint8Array.from({ length: N * G }, () => 1 + randInt(rng, 16));
    const scalesNG = f16Bits(Array.from({ length: N * G }, () => 0.001 + 0.05 * rng()));
    const perm = Array.from({ length: K }, (_, i) => i).sort(() => rng() - 0.5);
    const gIdx = Int32Array.from(perm, (p) => Math.floor(p / (K / G)));
    const { qweight, qzeros } = packGPTQ(q, zeros, N, K, G);
    const scales = transposeNG(scalesNG, N, G);
    const prefix = 'model.layers.0.mlp.down_proj';
    const buf = buildFile(
      [
        { name: `${prefix}.scales`, dtype: 'F16', shape: [G, N], bytes: le(scales) }, // 2-byte aligned only: the I32s after it need a copy when misaligned
        { name: `${prefix}.qweight`, dtype: 'I32', shape: [K / 8, N], bytes: le(qweight) },
        { name: `${prefix}.qzeros`, dtype: 'I32', shape: [G, N / 8], bytes: le(qzeros) },
        { name: `${prefix}.g_idx`, dtype: 'I32', shape: [K], bytes: le(gIdx) },
      ],
      { metadata: { format: 'pt' }, misalign },
    );
    const { tensors } = cg.safetensors.read(buf);
    const t = (s: string) => tensors[`${prefix}.${s}`];
    expect(t('qweight').shape).toEqual([K / 8, N]);
    const w = cg.Int4Weight.fromGPTQ(
      {
        qweight: t('qweight').data as Int32Array,
        qzeros: t('qzeros').data as Int32Array,
        scales: t('scales').data as Uint16Array,
        gIdx: t('g_idx').data as Int32Array,
      },
      [N, K],
    );
    const want = int4DequantRef(q, f16Values(scalesNG), zeros, N, K, G, gIdx);
    expect(diffF32(w.toDense(), want, K, seedNote(seed))).toBeNull();
    expect(w.actOrder).toBe(true);
    expect(Array.from(w.canonical().gIdx!)).toEqual(Array.from(gIdx));
  });
});
