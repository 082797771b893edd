/** The element types of the API, and how each travels from JS (one table, used everywhere). */
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

export interface DTypeInfo {
  /** The number the native addon uses (native/common/dtype.h, enum DType). */
  code: number;
  bytes: number;
  /** The TypedArray that carries it: 16-bit floats travel as raw bits in a Uint16Array. */
  array: 'Float32Array' | 'Uint16Array';
}

export const FLOAT_DTYPES: Record<FloatDType, DTypeInfo> = {
  float32: { code: 0, bytes: 4, array: 'Float32Array' },
  float16: { code: 1, bytes: 2, array: 'Uint16Array' },
  bfloat16: { code: 2, bytes: 2, array: 'Uint16Array' },
};

export type FloatArray = Float32Array | Uint16Array;

export function isFloatDType(x: unknown): x is FloatDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(FLOAT_DTYPES, x);
}

export function allocFloat(dtype: FloatDType, length: number): FloatArray {
  return FLOAT_DTYPES[dtype].array === 'Float32Array' ? new Float32Array(length) : new Uint16Array(length);
}

/**
 * A new array whose contents are whatever its memory held (a buffer of its own from
 * Buffer.allocUnsafeSlow, not zero-filled): for a result that a kernel overwrites entirely before
 * any other code can see it. A zero-filled array of a few MB costs the event loop milliseconds of
 * memset (calloc reuses freed heap memory), as much as a small kernel.
 */
export function allocFloatUnfilled(dtype: FloatDType, length: number): FloatArray {
  const buf = Buffer.allocUnsafeSlow(length * FLOAT_DTYPES[dtype].bytes).buffer;
  return FLOAT_DTYPES[dtype].array === 'Float32Array' ? new Float32Array(buf, 0, length) : new Uint16Array(buf, 0, length);
}
