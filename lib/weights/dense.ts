/** Dense weights: float32, float16 or bfloat16 values [N, K], row-major. */
import { selectBackend } from '../backends/select';
import { FloatArray, FloatDType, allocFloat, isFloatDType } from '../dtype';
import { CgTypeError, show } from '../errors';
import { checkFloatArray, checkShape2, readOptions, typedArrayKind } from '../validate';
import { Weight } from './weight';

/**
 * Reads `data` as a weight of the requested dtype. A Float32Array may be stored as float16 or
 * bfloat16 (rounded to nearest even); a Uint16Array must say which 16-bit format it holds.
 */
export function weightValues(data: unknown, N: number, K: number, dtype: unknown): { array: FloatArray; dtype: FloatDType } {
  if (dtype !== undefined && !isFloatDType(dtype)) {
    throw new CgTypeError('ERR_DTYPE', `unknown dtype ${show(dtype)} (float32, float16, bfloat16)`);
  }
  if (typedArrayKind(data) === 'Float32Array' && dtype !== undefined && dtype !== 'float32') {
    const src = checkFloatArray(data, 'float32', N * K, 'data').array;
    const dst = allocFloat(dtype, N * K);
    selectBackend().cpuAddon.convert({ src, srcDtype: 'float32', dst, dstDtype: dtype });
    return { array: dst, dtype };
  }
  return checkFloatArray(data, dtype, N * K, 'data');
}

export class DenseWeight extends Weight {
  readonly format = 'dense' as const;

  private constructor(N: number, K: number, dtype: FloatDType, values: FloatArray) {
    super({ format: 'dense', N, K, dtype }, dtype, { values });
    Object.freeze(this);
  }

  /** A dense weight from row-major [N, K] data (float32, float16 or bfloat16). */
  static from(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): DenseWeight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = readOptions(opts, 'options', ['dtype'] as const);
    const { array, dtype } = weightValues(data, N, K, o.dtype);
    return new DenseWeight(N, K, dtype, array);
  }
}
