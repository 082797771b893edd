/**
 * Argument checks that run before any native call. Each failure is a typed error with a code
 * (lib/errors.ts), so bad input from a request can never reach the kernels.
 */
import { CgRangeError, CgTypeError, show, thrownReason } from './errors';
import { FLOAT_DTYPES, FloatArray, FloatDType, isFloatDType } from './dtype';

/** Past this many elements a dimension product no longer fits the kernels' 32-bit indexing. */
export const MAX_ELEMENTS = 2 ** 31;

export function checkDim(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new CgTypeError('ERR_SHAPE', `${name} must be a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new CgRangeError('ERR_SHAPE', `${name} must be a positive integer, got ${value}`);
  }
  if (value >= MAX_ELEMENTS) throw new CgRangeError('ERR_DIM_OVERFLOW', `${name} = ${value} is 2^31 or more`);
  return value;
}

/** A 2-D shape [rows, cols] whose product stays below 2^31 elements. */
export function checkShape2(shape: unknown, names: [string, string]): [number, number] {
  if (!Array.isArray(shape) || shape.length !== 2) {
    throw new CgTypeError('ERR_SHAPE', `shape must be an array [${names[0]}, ${names[1]}]`);
  }
  const a = checkDim(shape[0], names[0]);
  const b = checkDim(shape[1], names[1]);
  checkProduct(a, b, `${names[0]}*${names[1]}`);
  return [a, b];
}

export function checkProduct(a: number, b: number, what: string): void {
  if (a * b >= MAX_ELEMENTS) {
    throw new CgRangeError('ERR_DIM_OVERFLOW', `${what} = ${a * b} elements reaches 2^31; split the matrix`);
  }
}

// The intrinsic TypedArray accessors: a user can shadow `length`, `buffer` or `constructor` on an
// instance or swap its prototype, but not these, which read the array's internal slots (and
// answer undefined for anything that is not a real TypedArray, a Proxy included).
const TYPED_ARRAY_PROTO = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsic(key: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTO, key)!.get! as (this: unknown) => unknown;
}
const TAG = intrinsic(Symbol.toStringTag);
const LENGTH = intrinsic('length');
const BUFFER = intrinsic('buffer');
const BYTE_OFFSET = intrinsic('byteOffset');
const ARRAY_BUFFER_BYTES = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;

// The constructors, as they were when this module loaded.
const CTORS = {
  Float32Array, Float64Array, Uint16Array, Int16Array, Uint8Array, Int8Array, Uint8ClampedArray, Int32Array, Uint32Array,
  BigInt64Array, BigUint64Array,
} as const;

export type TypedArrayKind = keyof typeof CTORS;

/** What a value really is, whatever its prototype or own properties say: a TypedArray kind, or undefined. */
export function typedArrayKind(a: unknown): TypedArrayKind | undefined {
  if (typeof a !== 'object' || a === null) return undefined;
  return TAG.call(a) as TypedArrayKind | undefined;
}

/** The real element count of a TypedArray (0 once detached). */
export function typedLength(a: ArrayBufferView): number {
  return LENGTH.call(a) as number;
}

export function isDetached(a: ArrayBufferView): boolean {
  if (typedLength(a) !== 0) return false;
  const buf = BUFFER.call(a) as ArrayBuffer;
  if (buf instanceof ArrayBuffer && ARRAY_BUFFER_BYTES.call(buf) !== 0) return false;
  // Node 20 has no ArrayBuffer.prototype.detached: an empty view is either a real empty array or
  // a detached one, and only a detached buffer refuses a new view.
  try {
    new Uint8Array(buf, 0, 0);
    return false;
  } catch {
    return true;
  }
}

export function checkNotDetached(a: ArrayBufferView, name: string): void {
  if (isDetached(a)) throw new CgTypeError('ERR_DETACHED', `${name}'s ArrayBuffer is detached (was it transferred?)`);
}

function describeValue(a: unknown): string {
  if (a === null) return 'null';
  if (typeof a !== 'object') return typeof a;
  return 'an object that is not a TypedArray';
}

/**
 * A TypedArray of one kind (subclasses count as their base kind; objects that merely inherit a
 * TypedArray prototype do not), not detached, with `length` elements when given. Returns a
 * fresh plain view of the same memory, read from the array's internal slots: whatever the
 * caller's object says about its `length`, prototype or methods, lib/ goes on with this view.
 */
export function checkTypedArray<T extends ArrayBufferView>(a: unknown, kind: TypedArrayKind, name: string, length?: number): T {
  const k = typedArrayKind(a);
  if (k !== kind) throw new CgTypeError('ERR_DTYPE', `${name} must be a ${kind}, got ${k ?? describeValue(a)}`);
  checkNotDetached(a as ArrayBufferView, name);
  const n = typedLength(a as ArrayBufferView);
  if (length !== undefined && n !== length) {
    throw new CgRangeError('ERR_SHAPE_MISMATCH', `${name} has ${n} elements; its shape needs ${length}`);
  }
  const C = CTORS[kind] as unknown as new (b: ArrayBufferLike, o: number, n: number) => T;
  return new C(BUFFER.call(a) as ArrayBufferLike, BYTE_OFFSET.call(a) as number, n);
}

const DATA_VIEW_BUFFER = Object.getOwnPropertyDescriptor(DataView.prototype, 'buffer')!.get!;
const DATA_VIEW_OFFSET = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteOffset')!.get!;
const DATA_VIEW_BYTES = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteLength')!.get!;

/** Whether a value is a real DataView (by its internal slots). */
export function isDataView(a: unknown): a is DataView {
  try {
    DATA_VIEW_BUFFER.call(a);
    return true;
  } catch {
    return false;
  }
}

/** The bytes a DataView covers, as a fresh Uint8Array (ERR_DETACHED when its buffer was transferred). */
export function dataViewBytes(a: DataView): Uint8Array {
  try {
    return new Uint8Array(DATA_VIEW_BUFFER.call(a) as ArrayBuffer, DATA_VIEW_OFFSET.call(a) as number, DATA_VIEW_BYTES.call(a) as number);
  } catch {
    throw new CgTypeError('ERR_DETACHED', 'the DataView\'s buffer is detached (was it transferred?)');
  }
}

/** An ArrayBuffer (not a view), not detached: the bytes it holds, as a fresh Uint8Array. */
export function checkArrayBuffer(a: unknown, name: string): Uint8Array | undefined {
  let n: number;
  try {
    n = ARRAY_BUFFER_BYTES.call(a) as number;
  } catch {
    return undefined; // not an ArrayBuffer
  }
  try {
    return new Uint8Array(a as ArrayBuffer, 0, n);
  } catch {
    throw new CgTypeError('ERR_DETACHED', `${name} is a detached ArrayBuffer (was it transferred?)`);
  }
}

/**
 * A float tensor: a Float32Array for float32, or a Uint16Array of raw float16/bfloat16 bits.
 * `dtype` may be omitted for a Float32Array; for a Uint16Array it says which 16-bit format.
 */
export function checkFloatArray(
  a: unknown,
  dtype: unknown,
  length: number,
  name: string,
): { array: FloatArray; dtype: FloatDType } {
  const kind = typedArrayKind(a);
  if (kind !== 'Float32Array' && kind !== 'Uint16Array') {
    throw new CgTypeError('ERR_DTYPE', `${name} must be a Float32Array (float32) or a Uint16Array (float16/bfloat16 bits), got ${kind ?? describeValue(a)}`);
  }
  let dt: FloatDType;
  if (dtype === undefined) {
    if (kind === 'Uint16Array') {
      throw new CgTypeError('ERR_DTYPE', `${name} is a Uint16Array: say whether it holds 'float16' or 'bfloat16' with the dtype option`);
    }
    dt = 'float32';
  } else {
    if (!isFloatDType(dtype)) throw new CgTypeError('ERR_DTYPE', `unknown dtype ${show(dtype)} (float32, float16, bfloat16)`);
    dt = dtype;
  }
  const want = FLOAT_DTYPES[dt].array;
  if (kind !== want) throw new CgTypeError('ERR_DTYPE', `${name} has dtype ${dt}, which travels in a ${want}, but got a ${kind}`);
  return { array: checkTypedArray<FloatArray>(a, kind, name, length), dtype: dt };
}

/**
 * Reads an options object once: each of `keys` is read exactly one time (a getter runs once, a
 * Proxy's trap once per key), in order, and the plain snapshot is what the call acts on. A
 * getter that throws gives ERR_INVALID_ARG.
 */
export function readOptions<K extends string>(opts: unknown, name: string, keys: readonly K[]): Partial<Record<K, unknown>> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new CgTypeError('ERR_INVALID_ARG', `${name} must be an object`);
  const out: Partial<Record<K, unknown>> = {};
  for (const k of keys) {
    let v: unknown;
    try {
      v = (opts as Record<string, unknown>)[k];
    } catch (e) {
      throw new CgTypeError('ERR_INVALID_ARG', `${name}.${k} could not be read: ${thrownReason(e)}`);
    }
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export function checkThreads(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < 1 || v > 1024) {
    throw new CgRangeError('ERR_INVALID_ARG', `${name} must be an integer from 1 to 1024, got ${show(v)}`);
  }
  return v;
}


