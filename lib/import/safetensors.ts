/**
 * A reader for the safetensors format (https://github.com/huggingface/safetensors), so that GPTQ,
 * AWQ and FP8 checkpoints can be loaded into the importers:
 *
 *   8 bytes   little-endian uint64 N: the header's length
 *   N bytes   UTF-8 JSON: { "__metadata__"?: { string: string },
 *                           name: { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ... }
 *   the rest  the tensors' bytes, little-endian; offsets are relative to the end of the header
 *
 * Every tensor comes back as a TypedArray of its element type (16-bit floats as raw bits in a
 * Uint16Array, FP8 as codes in a Uint8Array), viewing the input buffer when its offset is aligned
 * for that type and a copy otherwise. A malformed file is an ERR_FORMAT error that says what is
 * wrong; nothing is read out of bounds.
 */
import { checkArrayBuffer, checkTypedArray, dataViewBytes, isDataView, typedArrayKind } from '../validate';
import { CgRangeError, CgTypeError, show } from '../errors';

export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export type SafetensorsArray =
  | Float64Array | Float32Array | Uint16Array | Uint8Array | BigInt64Array | Int32Array | Int16Array | Int8Array
  | BigUint64Array | Uint32Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

interface DTypeSpec {
  bytes: number;
  make(buf: ArrayBuffer, offset: number, length: number): SafetensorsArray;
}

const DTYPES: Record<SafetensorsDType, DTypeSpec> = {
  F64: { bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  F32: { bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  F16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  BF16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  F8_E4M3: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  F8_E5M2: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  I64: { bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  I32: { bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  I16: { bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  I8: { bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  U64: { bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
  U32: { bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  U16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  U8: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  BOOL: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

function bad(msg: string): never {
  throw new CgRangeError('ERR_FORMAT', `safetensors: ${msg}`);
}

/** Parses a safetensors file held in memory (a Buffer, any TypedArray, a DataView or an ArrayBuffer). */
export function read(input: ArrayBuffer | ArrayBufferView): SafetensorsFile {
  // The bytes, read from the input's internal slots (a spoofed buffer or length is not believed).
  const kind = typedArrayKind(input);
  let bytes: Uint8Array;
  if (kind !== undefined) {
    const view = checkTypedArray<ArrayBufferView>(input, kind, 'input');
    bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  } else if (isDataView(input)) {
    bytes = dataViewBytes(input);
  } else {
    const b = checkArrayBuffer(input, 'input');
    if (!b) throw new CgTypeError('ERR_INVALID_ARG', 'safetensors.read takes a Buffer, a TypedArray, a DataView or an ArrayBuffer');
    bytes = b;
  }
  if (bytes.byteLength < 8) bad(`the file has ${bytes.byteLength} bytes, fewer than the 8 of its header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.byteLength - 8)) bad(`the header claims ${headerLen} bytes but the file has ${bytes.byteLength - 8} after the length`);
  const hl = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hl)));
  } catch (e) {
    bad(`the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('the header is not a JSON object');
  const dataStart = 8 + hl;
  const dataLen = bytes.byteLength - dataStart;
  const tensors: Record<string, SafetensorsTensor> = Object.create(null);
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`__metadata__.${k} is not a string`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    if (typeof entry !== 'object' || entry === null) bad(`tensor '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPES, dtype)) {
      bad(`tensor '${name}' has unknown dtype ${show(dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    }
    const spec = DTYPES[dtype as SafetensorsDType];
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      bad(`tensor '${name}' has a shape that is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      bad(`tensor '${name}' has data_offsets that are not two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin || end > dataLen) bad(`tensor '${name}' spans bytes ${begin}..${end} of a ${dataLen}-byte data section`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    if (!Number.isSafeInteger(count) || count * spec.bytes !== end - begin) {
      bad(`tensor '${name}' has shape [${(shape as number[]).join(', ')}] of ${dtype} (${count * spec.bytes} bytes) but spans ${end - begin} bytes`);
    }
    spans.push([begin, end, name]);
    const abs = bytes.byteOffset + dataStart + begin;
    let data: SafetensorsArray;
    if (abs % spec.bytes === 0) {
      data = spec.make(bytes.buffer as ArrayBuffer, abs, count);
    } else {
      const copy = new ArrayBuffer(end - begin);
      new Uint8Array(copy).set(bytes.subarray(dataStart + begin, dataStart + end));
      data = spec.make(copy, 0, count);
    }
    tensors[name] = { dtype: dtype as SafetensorsDType, shape: [...(shape as number[])], data };
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; ++i) {
    if (spans[i][0] < spans[i - 1][1]) bad(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, metadata };
}
