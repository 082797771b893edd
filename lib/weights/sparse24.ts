/**
 * 2:4 sparse weights. The canonical format (README "Formats", native/formats/sparse24.h):
 * values [N, K/2] in the weight dtype and meta [N, ceil(K/8)] bytes; the CPU placement is the
 * panel layout of native/cpu/layout/sparse24.h.
 */
import { selectBackend } from '../backends/select';
import { FloatArray, FloatDType, allocFloat } from '../dtype';
import { CgRangeError, CgTypeError } from '../errors';
import { checkShape2, readOptions } from '../validate';
import { weightValues } from './dense';
import { Weight, paramsOf, readCanonical } from './weight';

export class Sparse24Weight extends Weight {
  readonly format = '2:4' as const;

  private constructor(N: number, K: number, dtype: FloatDType, values: FloatArray, meta: Uint8Array) {
    super({ format: '2:4', N, K, dtype }, dtype, { values, meta });
    Object.freeze(this);
  }

  private static encode(data: FloatArray, shape: [number, number], opts: unknown, mode: 'prune' | 'compress'): Sparse24Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    if (K % 4 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `2:4 sparsity needs K to be a multiple of 4, got K = ${K}`);
    const o = readOptions(opts, 'options', ['dtype'] as const);
    const { array, dtype } = weightValues(data, N, K, o.dtype);
    const values = allocFloat(dtype, N * (K / 2));
    const meta = new Uint8Array(N * Math.ceil(K / 8));
    const bad = selectBackend().cpuAddon.sparse24Encode({ weight: { format: '2:4', N, K, dtype }, mode, data: array, values, meta });
    if (bad >= 0) {
      const groups = K / 4;
      const row = Math.floor(bad / groups);
      const group = bad % groups;
      const err = new CgRangeError(
        'ERR_NOT_2_4',
        `the weight is not 2:4 sparse: row ${row}, columns ${group * 4}..${group * 4 + 3} hold more than 2 non-zeros ` +
          '(use Sparse24Weight.prune to make it 2:4)',
      );
      Object.assign(err, { row, group });
      throw err;
    }
    return new Sparse24Weight(N, K, dtype, values, meta);
  }

  /** Magnitude pruning: keeps the 2 largest |w| of every 4 along K (the lower column on ties; NaN counts as largest). */
  static prune(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): Sparse24Weight {
    return Sparse24Weight.encode(data, shape, opts, 'prune');
  }

  /** Accepts a matrix that already is 2:4; throws ERR_NOT_2_4 naming the first offending row and group. */
  static compress(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): Sparse24Weight {
    return Sparse24Weight.encode(data, shape, opts, 'compress');
  }

  /** The canonical format: values [N, K/2] (weight dtype) and meta [N, ceil(K/8)] bytes. A fresh copy. */
  canonical(): { values: FloatArray; meta: Uint8Array } {
    const p = paramsOf(this);
    if (p.format !== '2:4') throw new CgTypeError('ERR_WEIGHT', 'canonical() of Sparse24Weight called on another weight');
    const { N, K, dtype } = p;
    const values = allocFloat(dtype, N * (K / 2));
    const meta = new Uint8Array(N * Math.ceil(K / 8));
    readCanonical(this, { values, meta });
    return { values, meta };
  }

  /** Canonical values [N, K/2] in the weight dtype (a fresh copy; see canonical()). */
  get values(): FloatArray {
    return Sparse24Weight.prototype.canonical.call(this).values;
  }

  /** Canonical meta [N, ceil(K/8)] (a fresh copy; see canonical()). */
  get meta(): Uint8Array {
    return Sparse24Weight.prototype.canonical.call(this).meta;
  }
}
