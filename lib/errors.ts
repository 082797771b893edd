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
  /** A TypedArray whose buffer was transferred or detached. */
  ERR_DETACHED: 'ERR_DETACHED',
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

export function notSupported(what: string): never {
  throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: ${what} is not supported yet`);
}
