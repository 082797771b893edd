/**
 * INT4 weights: group-wise, symmetric or with zero points, GPTQ act-order; from a float weight
 * (quantize), the canonical arrays, or GPTQ / AWQ checkpoints. The canonical format is
 * native/formats/int4.h (and README "INT4"); the CPU placement native/cpu/layout/int4.h.
 */
import { selectBackend } from '../backends/select';
import { FloatArray } from '../dtype';
import { CgRangeError, CgTypeError, show } from '../errors';
import type { CanonicalArrays, ScaleDType, WeightParams } from '../native/descriptor';
import { checkShape2, checkTypedArray, readOptions, typedArrayKind } from '../validate';
import { checkScaleArray, checkScales, floatData } from './quantized';
import { Weight, paramsOf, readCanonical } from './weight';

export type { ScaleDType } from '../native/descriptor';


export interface Int4QuantizeOptions {
  /** Columns per group along K: 32, 64, 128 (default 128), or -1 for one group per row. */
  groupSize?: 32 | 64 | 128 | -1;
  /** true (default): signed codes around a fixed zero point of 8; false: a zero point per group. */
  symmetric?: boolean;
  /** The dtype scales are rounded to (default 'float16', as checkpoints store them). */
  scaleDtype?: ScaleDType;
  /** Only when data is a Uint16Array: which 16-bit format it holds. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
}

/** The canonical INT4 format (README "Formats"). */
export interface Int4Parts {
  /** [N, K/2] bytes: column 2j in the low nibble, 2j+1 in the high nibble. */
  qweight: Uint8Array;
  /** [N, G] float32, or float16 bits in a Uint16Array. */
  scales: Float32Array | Uint16Array;
  /** [N, G] zero points 0..16, or null for symmetric weights (zero point 8). */
  zeros?: Uint8Array | null;
  /** [K] the group of each column (GPTQ act-order), or null for groups of consecutive columns. */
  gIdx?: Int32Array | null;
}

/** Each act-order weight's gIdx as it was given (canonical() returns it). */
const G_IDX = new WeakMap<object, Int32Array>();

function int4Params(w: unknown): Extract<WeightParams, { format: 'int4' }> {
  const p = paramsOf(w);
  if (p.format !== 'int4') throw new CgTypeError('ERR_WEIGHT', 'an Int4Weight method was called on another weight');
  return p;
}

/**
 * The act-order permutation: columns sorted by group (stable). Every group must hold exactly
 * `group` columns, so that after the permutation groups are contiguous and aligned.
 */
function permFromGIdx(gIdx: Int32Array, K: number, G: number, group: number): Int32Array | null {
  const counts = new Int32Array(G);
  let trivial = true;
  for (let k = 0; k < K; ++k) {
    const g = gIdx[k];
    if (!Number.isInteger(g) || g < 0 || g >= G) {
      throw new CgRangeError('ERR_G_IDX', `gIdx[${k}] = ${g} is outside 0..${G - 1} (the groups that scales has)`);
    }
    counts[g]++;
    if (g !== Math.floor(k / group)) trivial = false;
  }
  for (let g = 0; g < G; ++g) {
    if (counts[g] !== group) {
      throw new CgRangeError('ERR_G_IDX', `gIdx gives group ${g} ${counts[g]} columns; every group must have K / G = ${group}`);
    }
  }
  if (trivial) return null;
  const starts = new Int32Array(G);
  for (let g = 0; g < G; ++g) starts[g] = g * group;
  const perm = new Int32Array(K);
  for (let k = 0; k < K; ++k) perm[starts[gIdx[k]]++] = k;
  return perm;
}

export class Int4Weight extends Weight {
  readonly format = 'int4' as const;
  /** Columns per group (K when the whole row is one group: quantize's groupSize -1). */
  readonly groupSize: number;
  readonly symmetric: boolean;
  readonly scaleDtype: ScaleDType;
  /** Whether columns are grouped by a GPTQ gIdx (act-order) rather than consecutively. */
  readonly actOrder: boolean;

  private constructor(params: Extract<WeightParams, { format: 'int4' }>, canonical: CanonicalArrays, gIdx: Int32Array | null) {
    super(params, 'float32', canonical);
    this.groupSize = params.group;
    this.symmetric = params.symmetric;
    this.scaleDtype = params.scaleDtype;
    this.actOrder = params.perm !== null;
    if (gIdx) G_IDX.set(this, gIdx);
    Object.freeze(this);
  }

  /** Round-to-nearest quantization of a float weight (README "INT4" gives the exact rule). */
  static quantize(data: FloatArray, shape: [number, number], opts?: Int4QuantizeOptions): Int4Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = readOptions(opts, 'options', ['groupSize', 'symmetric', 'scaleDtype', 'dtype'] as const);
    const groupSize = o.groupSize === undefined ? 128 : o.groupSize;
    if (![32, 64, 128, -1].includes(groupSize as number)) {
      throw new CgRangeError('ERR_GROUP_SIZE', `groupSize must be 32, 64, 128 or -1 (per channel), got ${show(groupSize)}`);
    }
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `INT4 packs 8 columns per word: K must be a multiple of 8, got ${K}`);
    const group = groupSize === -1 ? K : (groupSize as number);
    if (K % group !== 0) throw new CgRangeError('ERR_GROUP_SIZE', `groupSize ${groupSize} does not divide K = ${K}`);
    const symmetric = o.symmetric === undefined ? true : o.symmetric;
    if (typeof symmetric !== 'boolean') throw new CgTypeError('ERR_INVALID_ARG', 'symmetric must be a boolean');
    const scaleDtype = o.scaleDtype === undefined ? 'float16' : o.scaleDtype;
    if (scaleDtype !== 'float16' && scaleDtype !== 'float32') {
      throw new CgTypeError('ERR_DTYPE', `scaleDtype must be 'float16' or 'float32', got ${show(scaleDtype)}`);
    }
    const w = floatData(data, N, K, o.dtype);
    const G = K / group;
    const qweight = new Uint8Array(N * (K / 2));
    const scales = scaleDtype === 'float16' ? new Uint16Array(N * G) : new Float32Array(N * G);
    const zeros = symmetric ? null : new Uint8Array(N * G);
    const params = { format: 'int4' as const, N, K, group, symmetric, scaleDtype: scaleDtype as ScaleDType, perm: null };
    const r = selectBackend().cpuAddon.int4Quantize({ weight: params, data: w, qweight, scales, zeros });
    if (r.bad >= 0) {
      const where = `row ${Math.floor(r.bad / K)}, column ${r.bad % K}`;
      throw new CgRangeError(
        r.reason === 1 ? 'ERR_INVALID_ARG' : 'ERR_SCALE',
        r.reason === 1 ? `the weight is not finite at ${where}; quantization needs finite values`
          : scaleDtype === 'float16' ? `the group at ${where} needs a scale beyond float16's range; use scaleDtype 'float32'`
            : `the group at ${where} needs a scale beyond float32's range`,
      );
    }
    return new Int4Weight(params, { qweight, scales, zeros }, null);
  }

  /**
   * From the canonical arrays (README "INT4"). groupSize is K / G, where G = scales.length / N;
   * scales travel as float32 or float16 bits; zeros (0..16) may be omitted for symmetric
   * weights; gIdx groups columns in any order as long as every group has groupSize columns (a
   * gIdx equal to floor(k / groupSize) is no act-order at all, and canonical() reports null).
   */
  static fromCanonical(parts: Int4Parts, shape: [number, number]): Int4Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const p = readOptions(parts, 'parts', ['qweight', 'scales', 'zeros', 'gIdx'] as const);
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `INT4 packs 8 columns per word: K must be a multiple of 8, got ${K}`);
    const qweight = checkTypedArray<Uint8Array>(p.qweight, 'Uint8Array', 'qweight', N * (K / 2));
    const scales = checkScaleArray(p.scales, 'scales');
    if (scales.length === 0 || scales.length % N !== 0) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries, not a multiple of N = ${N}`);
    const G = scales.length / N;
    if (K % G !== 0 || (K / G) % 8 !== 0) {
      throw new CgRangeError('ERR_GROUP_SIZE', `${G} groups do not split K = ${K} into groups of a multiple of 8 columns`);
    }
    const group = K / G;
    checkScales(scales, 'scales');
    let zeros: Uint8Array | null = null;
    if (p.zeros !== undefined && p.zeros !== null) {
      zeros = checkTypedArray<Uint8Array>(p.zeros, 'Uint8Array', 'zeros', N * G);
      let bad = -1;
      for (let i = 0; i < zeros.length && bad < 0; ++i) if (zeros[i] > 16) bad = i;
      if (bad >= 0) throw new CgRangeError('ERR_FORMAT', `zeros[${bad}] = ${zeros[bad]}: zero points are 0..16`);
    }
    let gIdx: Int32Array | null = null;
    let perm: Int32Array | null = null;
    if (p.gIdx !== undefined && p.gIdx !== null) {
      gIdx = checkTypedArray<Int32Array>(p.gIdx, 'Int32Array', 'gIdx', K);
      perm = permFromGIdx(gIdx, K, G, group);
      gIdx = perm ? gIdx.slice() : null;
    }
    const scaleDtype: ScaleDType = typedArrayKind(scales) === 'Float32Array' ? 'float32' : 'float16';
    return new Int4Weight({ format: 'int4', N, K, group, symmetric: zeros === null, scaleDtype, perm }, { qweight, scales, zeros }, gIdx);
  }

  /**
   * From a GPTQ checkpoint (AutoGPTQ): qweight int32 [K/8, N] (8 rows of K per word, low bits
   * first), qzeros int32 [G, N/8] (holding zero - 1), scales [G, N] (float16 bits or float32),
   * optional gIdx [K] (act-order). Bit-exact with AutoGPTQ's own unpacking.
   */
  static fromGPTQ(parts: { qweight: Int32Array; qzeros: Int32Array; scales: Float32Array | Uint16Array; gIdx?: Int32Array | null }, shape: [number, number]): Int4Weight {
    return Int4Weight.fromPacked('gptq', parts, shape);
  }

  /**
   * From an AWQ checkpoint (AutoAWQ, GEMM layout): qweight int32 [K, N/8] and qzeros int32
   * [G, N/8], 8 values per word in the order 0, 2, 4, 6, 1, 3, 5, 7; zeros hold the zero point
   * itself; scales [G, N]. Bit-exact with AutoAWQ's own unpacking.
   */
  static fromAWQ(parts: { qweight: Int32Array; qzeros: Int32Array; scales: Float32Array | Uint16Array }, shape: [number, number]): Int4Weight {
    return Int4Weight.fromPacked('awq', parts, shape);
  }

  private static fromPacked(
    kind: 'gptq' | 'awq',
    parts: { qweight: Int32Array; qzeros: Int32Array; scales: Float32Array | Uint16Array; gIdx?: Int32Array | null },
    shape: [number, number],
  ): Int4Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const p = readOptions(parts, 'parts', ['qweight', 'qzeros', 'scales', 'gIdx'] as const);
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `K must be a multiple of 8, got ${K}`);
    if (N % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `${kind === 'gptq' ? 'GPTQ' : 'AWQ'} packs zero points 8 rows per word: N must be a multiple of 8, got ${N}`);
    const qweight = checkTypedArray<Int32Array>(p.qweight, 'Int32Array', 'qweight');
    const qzeros = checkTypedArray<Int32Array>(p.qzeros, 'Int32Array', 'qzeros');
    if (qweight.length !== (N * K) / 8) {
      throw new CgRangeError('ERR_SHAPE_MISMATCH', `qweight has ${qweight.length} words; ${kind === 'gptq' ? '[K/8, N]' : '[K, N/8]'} needs ${(N * K) / 8}`);
    }
    const scales = checkScaleArray(p.scales, 'scales');
    if (scales.length === 0 || scales.length % N !== 0) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries, not a multiple of N = ${N}`);
    const G = scales.length / N;
    if (K % G !== 0 || (K / G) % 8 !== 0) {
      throw new CgRangeError('ERR_GROUP_SIZE', `${G} groups do not split K = ${K} into groups of a multiple of 8 columns`);
    }
    if (qzeros.length !== (G * N) / 8) throw new CgRangeError('ERR_SHAPE_MISMATCH', `qzeros has ${qzeros.length} words; [G, N/8] needs ${(G * N) / 8}`);
    checkScales(scales, 'scales');
    const outQ = new Uint8Array(N * (K / 2));
    const outZeros = new Uint8Array(N * G);
    const f32 = typedArrayKind(scales) === 'Float32Array';
    const outScales = f32 ? new Float32Array(N * G) : new Uint16Array(N * G);
    const args = { N, K, G, qweight, qzeros, scales, scaleDtype: (f32 ? 'float32' : 'float16') as ScaleDType, outQ, outZeros, outScales };
    const addon = selectBackend().cpuAddon;
    if (kind === 'gptq') addon.gptqToCanonical(args);
    else addon.awqToCanonical(args);
    const gIdx = kind === 'gptq' && p.gIdx !== undefined ? (p.gIdx as Int32Array | null) : null;
    return Int4Weight.fromCanonical({ qweight: outQ, scales: outScales, zeros: outZeros, gIdx }, [N, K]);
  }

  /** The canonical arrays (fresh copies): qweight, scales (in scaleDtype), zeros (null if symmetric), gIdx. */
  canonical(): { qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null; gIdx: Int32Array | null; groupSize: number } {
    const p = int4Params(this);
    const G = p.K / p.group;
    const qweight = new Uint8Array(p.N * (p.K / 2));
    const scales = p.scaleDtype === 'float16' ? new Uint16Array(p.N * G) : new Float32Array(p.N * G);
    const zeros = p.symmetric ? null : new Uint8Array(p.N * G);
    readCanonical(this, { qweight, scales, zeros });
    const gIdx = G_IDX.get(this);
    return { qweight, scales, zeros, gIdx: gIdx ? gIdx.slice() : null, groupSize: p.group };
  }

  /** The dequantized weight, float32 [N, K]: (q - z) * s per element, in float32. */
  toDense(): Float32Array {
    return super.toDense() as Float32Array;
  }
}
