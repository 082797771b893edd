/**
 * Every error this library throws on purpose carries a stable `code`. Bad arguments are
 * TypeErrors (wrong kind of value) or RangeErrors (right kind, wrong value); failures of the
 * machine (no backend, CUDA errors) are plain Errors with a code.
 */
export const ErrorCodes = {
  /** A shape is not an array of positive safe integers. */
  ERR_SHAPE: 'ERR_SHAPE',
  /** Sizes that must agree do not (array length vs shape, K of x vs K of w, bias vs N). */
  ERR_SHAPE_MISMATCH: 'ERR_SHAPE_MISMATCH',
  /** A product of dimensions reaches 2^31 elements. */
  ERR_DIM_OVERFLOW: 'ERR_DIM_OVERFLOW',
  /** Wrong TypedArray type for the dtype, or an unknown dtype name. */
  ERR_DTYPE: 'ERR_DTYPE',
  /** K does not meet a format's alignment (2:4 needs K % 4 == 0). */
  ERR_K_ALIGNMENT: 'ERR_K_ALIGNMENT',
  /** Sparse24Weight.compress was given a matrix that is not 2:4. */
  ERR_NOT_2_4: 'ERR_NOT_2_4',
  /** A group size that does not divide K, or is not one of the supported sizes. */
  ERR_GROUP_SIZE: 'ERR_GROUP_SIZE',
  /** A quantization scale that is NaN, infinite, zero or negative. */
  ERR_SCALE: 'ERR_SCALE',
  /** A GPTQ g_idx with entries out of range, or that does not give every group its size. */
  ERR_G_IDX: 'ERR_G_IDX',
  /** A file or packed tensor that does not follow its format (safetensors header, packed lengths). */
  ERR_FORMAT: 'ERR_FORMAT',
  /** A TypedArray whose buffer was transferred or detached. */
  ERR_DETACHED: 'ERR_DETACHED',
  /** An output array shares memory with an input. */
  ERR_OVERLAP: 'ERR_OVERLAP',
  /** The weight is being updated, or read by calls in flight that an update would disturb. */
  ERR_BUSY: 'ERR_BUSY',
  /** An option has a wrong type or value. */
  ERR_INVALID_ARG: 'ERR_INVALID_ARG',
  /** A weight object was not created by this library. */
  ERR_WEIGHT: 'ERR_WEIGHT',
  /** An environment variable of this library holds a value it does not know. */
  ERR_ENV: 'ERR_ENV',
  /** The forced backend or instruction set cannot run on this machine. */
  ERR_BACKEND_UNAVAILABLE: 'ERR_BACKEND_UNAVAILABLE',
  /** The operation or format exists in the API but has no kernel yet. */
  ERR_NOT_SUPPORTED: 'ERR_NOT_SUPPORTED',
  /** A kernel could not allocate its scratch memory. */
  ERR_OUT_OF_MEMORY: 'ERR_OUT_OF_MEMORY',
  /** A CUDA runtime call failed (the error says which, with the CUDA error's name in `cudaError`). */
  ERR_CUDA: 'ERR_CUDA',
  /** A device allocation failed: the GPU (or the simulated device's limit) is out of memory. */
  ERR_CUDA_OOM: 'ERR_CUDA_OOM',
  /** A weight or tensor is on another device than the call needs (or no such device exists). */
  ERR_DEVICE: 'ERR_DEVICE',
  /** A device tensor or weight was used after dispose(). */
  ERR_DISPOSED: 'ERR_DISPOSED',
  /** The native addon failed in a way the checks did not foresee. */
  ERR_NATIVE: 'ERR_NATIVE',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class CgTypeError extends TypeError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'TypeError';
    this.code = code;
  }
}

export class CgRangeError extends RangeError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'RangeError';
    this.code = code;
  }
}

export class CgError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'Error';
    this.code = code;
  }
}

/**
 * A value as an error message shows it. Never throws and runs no user code (no toString, no
 * getters, no Proxy traps): a message must not turn a typed error into an untyped one.
 */
export function show(v: unknown): string {
  switch (typeof v) {
    case 'string': return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
    case 'number': case 'boolean': case 'undefined': return String(v);
    case 'bigint': return `${v.toString()}n`;
    case 'symbol': return 'a symbol';
    case 'function': return 'a function';
    default: return v === null ? 'null' : 'an object';
  }
}

/** Why reading a caller's value threw, for a message (the thrown value itself is not trusted). */
export function thrownReason(e: unknown): string {
  try {
    if (e instanceof Error && typeof e.message === 'string') return e.message;
  } catch {
    // a Proxy or a getter that throws again
  }
  return `it threw ${show(e)}`;
}

export function notSupported(what: string): never {
  throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: ${what} is not supported yet`);
}

/**
 * An error thrown by the native addon, as one of this library's error classes (so that
 * `instanceof` works in every realm) with its code kept; an error without a known code becomes
 * ERR_NATIVE.
 */
export function fromNative(err: unknown): Error {
  if (typeof err !== 'object' || err === null || typeof (err as Error).message !== 'string') return new CgError('ERR_NATIVE', String(err));
  const e = err as Error & { code?: unknown };
  const code: ErrorCode = typeof e.code === 'string' && Object.prototype.hasOwnProperty.call(ErrorCodes, e.code) ? (e.code as ErrorCode) : 'ERR_NATIVE';
  const wrapped = e.name === 'TypeError' ? new CgTypeError(code, e.message) : e.name === 'RangeError' ? new CgRangeError(code, e.message) : new CgError(code, e.message);
  return wrapped;
}

/** Runs a native call; its errors arrive as this library's error classes, their codes kept. */
export function withNativeErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e);
  }
}

/** withNativeErrors for a native call that returns a Promise. */
export async function withNativeErrorsAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw fromNative(e);
  }
}
