/**
 * Argument checks that run before any native call. Each failure is a typed error with a code
 * (lib/errors.ts), so bad input from a request can never reach the kernels.
 */
import { CgRangeError, CgTypeError } from './errors';
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

export function isDetached(a: ArrayBufferView): boolean {
  const buf = a.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buf.detached === 'boolean') return buf.detached;
  if (a.byteLength !== 0 || buf.byteLength !== 0) return false;
  // Node 20 has no ArrayBuffer.prototype.detached: an empty view is either a real empty array or
  // a detached one, and only a detached buffer refuses a new view.
  try {
    new Uint8Array(buf as ArrayBuffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

export function checkNotDetached(a: ArrayBufferView, name: string): void {
  if (isDetached(a)) throw new CgTypeError('ERR_DETACHED', `${name}'s ArrayBuffer is detached (was it transferred?)`);
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
  if (!(a instanceof Float32Array) && !(a instanceof Uint16Array)) {
    const got = a === null ? 'null' : typeof a === 'object' ? (a as object).constructor?.name ?? 'object' : typeof a;
    throw new CgTypeError('ERR_DTYPE', `${name} must be a Float32Array (float32) or a Uint16Array (float16/bfloat16 bits), got ${got}`);
  }
  checkNotDetached(a, name);
  let dt: FloatDType;
  if (dtype === undefined) {
    if (a instanceof Uint16Array) {
      throw new CgTypeError('ERR_DTYPE', `${name} is a Uint16Array: say whether it holds 'float16' or 'bfloat16' with the dtype option`);
    }
    dt = 'float32';
  } else {
    if (!isFloatDType(dtype)) throw new CgTypeError('ERR_DTYPE', `unknown dtype ${String(dtype)} (float32, float16, bfloat16)`);
    dt = dtype;
  }
  const want = FLOAT_DTYPES[dt].array;
  if (a.constructor.name !== want) {
    throw new CgTypeError('ERR_DTYPE', `${name} has dtype ${dt}, which travels in a ${want}, but got a ${a.constructor.name}`);
  }
  if (a.length !== length) {
    throw new CgRangeError('ERR_SHAPE_MISMATCH', `${name} has ${a.length} elements; its shape needs ${length}`);
  }
  return { array: a, dtype: dt };
}

export function checkOptions(opts: unknown, name: string): Record<string, unknown> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new CgTypeError('ERR_INVALID_ARG', `${name} must be an object`);
  return opts as Record<string, unknown>;
}

export function checkThreads(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < 1 || v > 1024) {
    throw new CgRangeError('ERR_INVALID_ARG', `${name} must be an integer from 1 to 1024, got ${String(v)}`);
  }
  return v;
}

/** Whether two views share any byte of memory (same buffer, overlapping ranges). */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}
