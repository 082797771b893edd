/**
 * Weight formats. Each class holds its data in the layout its kernels read, and nothing else:
 * `byteLength` is what the weight costs in memory. Shapes are [N, K] (out x in), row-major.
 */
import { selectBackend } from './backend';
import { FLOAT_DTYPES, FloatArray, FloatDType, allocFloat, isFloatDType } from './dtype';
import { CgRangeError, CgTypeError } from './errors';
import { checkFloatArray, checkOptions, checkShape2 } from './validate';

export type WeightFormat = 'dense' | '2:4' | 'int4' | 'fp8';

/**
 * The weights this library made, so that a forged `{ format: 'dense', ... }` (or a spread copy of
 * a real weight) is refused before native code sees its fields.
 */
const MADE = new WeakSet<object>();

/**
 * Each weight's packed data, out of users' reach: an async call reads it on another thread, so no
 * user code may transfer or replace it. lib/ reads it with packedOf().
 */
const PACKED = new WeakMap<object, ArrayBuffer>();

/** @internal Records the buffer a weight's kernels read (called once, by its constructor). */
export function registerWeight(w: Weight, packed: ArrayBuffer): void {
  PACKED.set(w, packed);
}

/** @internal The buffer a weight's kernels read. */
export function packedOf(w: Weight): ArrayBuffer {
  const p = PACKED.get(w);
  if (!p) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm');
  return p;
}

export abstract class Weight {
  readonly shape: readonly [number, number];
  readonly dtype: FloatDType;
  abstract readonly format: WeightFormat;
  abstract readonly byteLength: number;
  protected constructor(shape: [number, number], dtype: FloatDType) {
    this.shape = Object.freeze([shape[0], shape[1]]) as readonly [number, number];
    this.dtype = dtype;
    MADE.add(this);
  }

  /** The weight as a dense [N, K] row-major array in its dtype. */
  abstract toDense(): FloatArray;
}

export function isWeight(w: unknown): w is Weight {
  return typeof w === 'object' && w !== null && MADE.has(w);
}

/**
 * Reads `data` as a weight of the requested dtype. A Float32Array may be stored as float16 or
 * bfloat16 (rounded to nearest even); a Uint16Array must say which 16-bit format it holds.
 */
function weightData(data: unknown, N: number, K: number, opts: Record<string, unknown>): { array: FloatArray; dtype: FloatDType } {
  const dtype = opts.dtype;
  if (dtype !== undefined && !isFloatDType(dtype)) {
    throw new CgTypeError('ERR_DTYPE', `unknown dtype ${String(dtype)} (float32, float16, bfloat16)`);
  }
  if (data instanceof Float32Array && dtype !== undefined && dtype !== 'float32') {
    const src = checkFloatArray(data, 'float32', N * K, 'data').array;
    const dst = allocFloat(dtype, N * K);
    selectBackend().cpuAddon.convert({ src, srcDtype: 0, dst, dstDtype: FLOAT_DTYPES[dtype].code });
    return { array: dst, dtype };
  }
  return checkFloatArray(data, dtype, N * K, 'data');
}

export class DenseWeight extends Weight {
  readonly format = 'dense' as const;

  private constructor(shape: [number, number], dtype: FloatDType, packed: ArrayBuffer) {
    super(shape, dtype);
    PACKED.set(this, packed);  // the CPU panel layout (native/cpu/kernels.h)
    Object.freeze(this);
  }

  /** A dense weight from row-major [N, K] data (float32, float16 or bfloat16). */
  static from(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): DenseWeight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = checkOptions(opts, 'options');
    const { array, dtype } = weightData(data, N, K, o);
    const packed = selectBackend().cpuAddon.densePack({ data: array, N, K, dtype: FLOAT_DTYPES[dtype].code });
    return new DenseWeight([N, K], dtype, packed);
  }

  get byteLength(): number {
    return packedOf(this).byteLength;
  }

  toDense(): FloatArray {
    const [N, K] = this.shape;
    const out = allocFloat(this.dtype, N * K);
    selectBackend().cpuAddon.denseUnpack({ packed: packedOf(this), N, K, dtype: FLOAT_DTYPES[this.dtype].code, out });
    return out;
  }
}

/**
 * A 2:4 sparse weight. It holds only the CPU layout its kernels read (panels of 16 rows, 32
 * columns per superblock; native/common/sparse24_format.h), made once from the canonical
 * format; `values` and `meta` return the canonical format (README, "Formats"), computed on
 * each access.
 */
export class Sparse24Weight extends Weight {
  readonly format = '2:4' as const;

  private constructor(shape: [number, number], dtype: FloatDType, packed: ArrayBuffer) {
    super(shape, dtype);
    PACKED.set(this, packed);  // the CPU 2:4 layout (native/common/sparse24_format.h)
    Object.freeze(this);
  }

  private static encode(data: FloatArray, shape: [number, number], opts: unknown, mode: 'prune' | 'compress'): Sparse24Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    if (K % 4 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `2:4 sparsity needs K to be a multiple of 4, got K = ${K}`);
    const o = checkOptions(opts, 'options');
    const { array, dtype } = weightData(data, N, K, o);
    const r = selectBackend().cpuAddon.sparse24Encode({ data: array, N, K, dtype: FLOAT_DTYPES[dtype].code, mode });
    if (r.bad >= 0 || !r.packed) {
      const groups = K / 4;
      const row = Math.floor(r.bad / groups);
      const group = r.bad % groups;
      const err = new CgRangeError(
        'ERR_NOT_2_4',
        `the weight is not 2:4 sparse: row ${row}, columns ${group * 4}..${group * 4 + 3} hold more than 2 non-zeros ` +
          '(use Sparse24Weight.prune to make it 2:4)',
      );
      Object.assign(err, { row, group });
      throw err;
    }
    return new Sparse24Weight([N, K], dtype, r.packed);
  }

  /** Magnitude pruning: keeps the 2 largest |w| of every 4 along K (the lower column on ties; NaN counts as largest). */
  static prune(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): Sparse24Weight {
    return Sparse24Weight.encode(data, shape, opts, 'prune');
  }

  /** Accepts a matrix that already is 2:4; throws ERR_NOT_2_4 naming the first offending row and group. */
  static compress(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType }): Sparse24Weight {
    return Sparse24Weight.encode(data, shape, opts, 'compress');
  }

  get byteLength(): number {
    return packedOf(this).byteLength;
  }

  /** The canonical format: values [N, K/2] (weight dtype) and meta [N, ceil(K/8)] bytes. A fresh copy. */
  canonical(): { values: FloatArray; meta: Uint8Array } {
    const [N, K] = this.shape;
    const values = allocFloat(this.dtype, N * (K / 2));
    const meta = new Uint8Array(N * Math.ceil(K / 8));
    selectBackend().cpuAddon.sparse24Unpack({ packed: packedOf(this), N, K, dtype: FLOAT_DTYPES[this.dtype].code, values, meta });
    return { values, meta };
  }

  /** Canonical values [N, K/2] in the weight dtype (a fresh copy; see canonical()). */
  get values(): FloatArray {
    return this.canonical().values;
  }

  /** Canonical meta [N, ceil(K/8)] (a fresh copy; see canonical()). */
  get meta(): Uint8Array {
    return this.canonical().meta;
  }

  toDense(): FloatArray {
    const [N, K] = this.shape;
    const out = allocFloat(this.dtype, N * K);
    selectBackend().cpuAddon.sparse24ToDense({ packed: packedOf(this), N, K, dtype: FLOAT_DTYPES[this.dtype].code, out });
    return out;
  }
}
