/**
 * Quantized weights: INT4 (group-wise, symmetric or with zero points; GPTQ and AWQ import) and
 * FP8 (e4m3 / e5m2 with tensor, channel or block scales), plus the FP8 codec. The formats are
 * documented once, in native/common/quant_format.h and native/common/fp8.h, and in the README.
 * Each weight holds only its CPU layout (codes plus float32 scales and zeros); `canonical()`
 * gives the canonical arrays back and `toDense()` the dequantized float32 matrix.
 */
import { selectBackend } from './backend';
import { FLOAT_DTYPES, FloatArray } from './dtype';
import { CgRangeError, CgTypeError } from './errors';
import { checkFloatArray, checkNotDetached, checkOptions, checkShape2 } from './validate';
import { Weight, registerWeight } from './weights';

// ---- FP8 codec -------------------------------------------------------------------------------

export type Fp8Format = 'e4m3' | 'e5m2';
const FP8_CODES: Record<Fp8Format, number> = { e4m3: 0, e5m2: 1 };
const FP8_MAX: Record<Fp8Format, number> = { e4m3: 448, e5m2: 57344 };

function checkFp8Format(f: unknown): Fp8Format {
  if (f === 'e4m3' || f === 'e5m2') return f;
  throw new CgRangeError('ERR_INVALID_ARG', `unknown FP8 format ${JSON.stringify(f)} (e4m3 or e5m2)`);
}

function checkTyped<T extends ArrayBufferView>(a: unknown, ctor: { new (n: number): T; name: string }, name: string): T {
  if (!(a instanceof (ctor as unknown as typeof Uint8Array))) {
    const got = a === null ? 'null' : typeof a === 'object' ? (a as object).constructor?.name ?? 'object' : typeof a;
    throw new CgTypeError('ERR_DTYPE', `${name} must be a ${ctor.name}, got ${got}`);
  }
  checkNotDetached(a as unknown as ArrayBufferView, name);
  return a as unknown as T;
}

/**
 * OCP FP8 (the formats of torch.float8_e4m3fn and torch.float8_e5m2). Encoding rounds to nearest
 * even and saturates: e4m3 maps every |x| > 448, infinities included, to +-448; e5m2 maps finite
 * |x| > 57344 to +-57344 and keeps infinities; NaN stays NaN. Decoding is exact.
 */
export const fp8 = {
  encode(values: Float32Array, format: Fp8Format = 'e4m3'): Uint8Array {
    const src = checkTyped(values, Float32Array, 'values');
    const dst = new Uint8Array(src.length);
    selectBackend().cpuAddon.fp8Encode({ src, dst, format: FP8_CODES[checkFp8Format(format)] });
    return dst;
  },
  decode(codes: Uint8Array, format: Fp8Format = 'e4m3'): Float32Array {
    const src = checkTyped(codes, Uint8Array, 'codes');
    const dst = new Float32Array(src.length);
    selectBackend().cpuAddon.fp8Decode({ src, dst, format: FP8_CODES[checkFp8Format(format)] });
    return dst;
  },
  /** The largest finite value: 448 (e4m3) or 57344 (e5m2). */
  max(format: Fp8Format = 'e4m3'): number {
    return FP8_MAX[checkFp8Format(format)];
  },
};

// ---- shared helpers ----------------------------------------------------------------------------

/** Weight data for quantization: a Float32Array, or 16-bit bits with their dtype, as float32. */
function floatData(data: unknown, N: number, K: number, dtype: unknown): Float32Array {
  const { array, dtype: dt } = checkFloatArray(data, dtype, N * K, 'data');
  if (dt === 'float32') return array as Float32Array;
  const out = new Float32Array(N * K);
  selectBackend().cpuAddon.convert({ src: array, srcDtype: FLOAT_DTYPES[dt].code, dst: out, dstDtype: 0 });
  return out;
}

/** Checks that every scale is finite and positive (what a checkpoint must hold). */
function checkScales(scales: Float32Array | Uint16Array, name: string): void {
  const f = scales instanceof Float32Array ? scales : decodeF16(scales);
  for (let i = 0; i < f.length; ++i) {
    const s = f[i];
    if (!(s > 0) || s === Infinity) {
      throw new CgRangeError('ERR_SCALE', `${name}[${i}] = ${s}: scales must be finite and positive`);
    }
  }
}

function decodeF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  selectBackend().cpuAddon.convert({ src: bits, srcDtype: FLOAT_DTYPES.float16.code, dst: out, dstDtype: 0 });
  return out;
}

// ---- INT4 ----------------------------------------------------------------------------------

export type ScaleDType = 'float16' | 'float32';

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

interface Int4State {
  packed: ArrayBuffer;
  perm: Int32Array | null;
  gIdx: Int32Array | null;
  group: number;
}

const INT4 = new WeakMap<object, Int4State>();

/** @internal */
export function int4StateOf(w: Int4Weight): Int4State {
  const s = INT4.get(w);
  if (!s) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm');
  return s;
}

function scaleDtypeCode(d: ScaleDType): number {
  return d === 'float16' ? FLOAT_DTYPES.float16.code : FLOAT_DTYPES.float32.code;
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

  private constructor(shape: [number, number], state: Int4State, symmetric: boolean, scaleDtype: ScaleDType) {
    super(shape, 'float32');
    this.groupSize = state.group;
    this.symmetric = symmetric;
    this.scaleDtype = scaleDtype;
    this.actOrder = state.perm !== null;
    INT4.set(this, state);
    registerWeight(this, state.packed);
    Object.freeze(this);
  }

  /** Round-to-nearest quantization of a float weight (README "INT4" gives the exact rule). */
  static quantize(data: FloatArray, shape: [number, number], opts?: Int4QuantizeOptions): Int4Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = checkOptions(opts, 'options') as Int4QuantizeOptions & Record<string, unknown>;
    const groupSize = o.groupSize === undefined ? 128 : o.groupSize;
    if (![32, 64, 128, -1].includes(groupSize as number)) {
      throw new CgRangeError('ERR_GROUP_SIZE', `groupSize must be 32, 64, 128 or -1 (per channel), got ${String(groupSize)}`);
    }
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `INT4 packs 8 columns per word: K must be a multiple of 8, got ${K}`);
    const group = groupSize === -1 ? K : groupSize;
    if (K % group !== 0) throw new CgRangeError('ERR_GROUP_SIZE', `groupSize ${groupSize} does not divide K = ${K}`);
    const symmetric = o.symmetric === undefined ? true : o.symmetric;
    if (typeof symmetric !== 'boolean') throw new CgTypeError('ERR_INVALID_ARG', 'symmetric must be a boolean');
    const scaleDtype = o.scaleDtype === undefined ? 'float16' : o.scaleDtype;
    if (scaleDtype !== 'float16' && scaleDtype !== 'float32') {
      throw new CgTypeError('ERR_DTYPE', `scaleDtype must be 'float16' or 'float32', got ${String(scaleDtype)}`);
    }
    const w = floatData(data, N, K, o.dtype);
    const G = K / group;
    const qweight = new Uint8Array(N * (K / 2));
    const scales = scaleDtype === 'float16' ? new Uint16Array(N * G) : new Float32Array(N * G);
    const zeros = symmetric ? null : new Uint8Array(N * G);
    const addon = selectBackend().cpuAddon;
    const r = addon.int4Quantize({ data: w, N, K, group, symmetric, scaleDtype: scaleDtypeCode(scaleDtype), qweight, scales, zeros });
    if (r.bad >= 0) {
      const where = `row ${Math.floor(r.bad / K)}, column ${r.bad % K}`;
      throw new CgRangeError(
        r.reason === 1 ? 'ERR_INVALID_ARG' : 'ERR_SCALE',
        r.reason === 1 ? `the weight is not finite at ${where}; quantization needs finite values`
          : scaleDtype === 'float16' ? `the group at ${where} needs a scale beyond float16's range; use scaleDtype 'float32'`
            : `the group at ${where} needs a scale beyond float32's range`,
      );
    }
    const packed = addon.int4Pack({ N, K, group, qweight, scales, scaleDtype: scaleDtypeCode(scaleDtype), zeros, perm: null });
    return new Int4Weight([N, K], { packed, perm: null, gIdx: null, group }, symmetric, scaleDtype);
  }

  /**
   * From the canonical arrays (README "INT4"). groupSize is K / G, where G = scales.length / N;
   * scales travel as float32 or float16 bits; zeros (0..16) may be omitted for symmetric
   * weights; gIdx groups columns in any order as long as every group has groupSize columns (a
   * gIdx equal to floor(k / groupSize) is no act-order at all, and canonical() reports null).
   */
  static fromCanonical(parts: Int4Parts, shape: [number, number]): Int4Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const p = checkOptions(parts, 'parts') as unknown as Int4Parts;
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `INT4 packs 8 columns per word: K must be a multiple of 8, got ${K}`);
    const qweight = checkTyped(p.qweight, Uint8Array, 'qweight');
    if (qweight.length !== N * (K / 2)) throw new CgRangeError('ERR_SHAPE_MISMATCH', `qweight has ${qweight.length} bytes; [N, K/2] needs ${N * (K / 2)}`);
    const scales = p.scales;
    if (!(scales instanceof Float32Array) && !(scales instanceof Uint16Array)) {
      throw new CgTypeError('ERR_DTYPE', 'scales must be a Float32Array or a Uint16Array of float16 bits');
    }
    checkNotDetached(scales, 'scales');
    if (scales.length === 0 || scales.length % N !== 0) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries, not a multiple of N = ${N}`);
    const G = scales.length / N;
    if (K % G !== 0 || (K / G) % 8 !== 0) {
      throw new CgRangeError('ERR_GROUP_SIZE', `${G} groups do not split K = ${K} into groups of a multiple of 8 columns`);
    }
    const group = K / G;
    checkScales(scales, 'scales');
    let zeros: Uint8Array | null = null;
    if (p.zeros !== undefined && p.zeros !== null) {
      zeros = checkTyped(p.zeros, Uint8Array, 'zeros');
      if (zeros.length !== N * G) throw new CgRangeError('ERR_SHAPE_MISMATCH', `zeros has ${zeros.length} entries; [N, G] needs ${N * G}`);
      const bad = zeros.findIndex((z) => z > 16);
      if (bad >= 0) throw new CgRangeError('ERR_FORMAT', `zeros[${bad}] = ${zeros[bad]}: zero points are 0..16`);
    }
    let gIdx: Int32Array | null = null;
    let perm: Int32Array | null = null;
    if (p.gIdx !== undefined && p.gIdx !== null) {
      gIdx = checkTyped(p.gIdx, Int32Array, 'gIdx');
      if (gIdx.length !== K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `gIdx has ${gIdx.length} entries; K = ${K}`);
      perm = permFromGIdx(gIdx, K, G, group);
      gIdx = perm ? gIdx.slice() : null;
    }
    const scaleDtype: ScaleDType = scales instanceof Float32Array ? 'float32' : 'float16';
    const packed = selectBackend().cpuAddon.int4Pack({ N, K, group, qweight, scales, scaleDtype: scaleDtypeCode(scaleDtype), zeros, perm });
    return new Int4Weight([N, K], { packed, perm, gIdx, group }, zeros === null, scaleDtype);
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
    const p = checkOptions(parts, 'parts') as typeof parts;
    if (K % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `K must be a multiple of 8, got ${K}`);
    if (N % 8 !== 0) throw new CgRangeError('ERR_K_ALIGNMENT', `${kind === 'gptq' ? 'GPTQ' : 'AWQ'} packs zero points 8 rows per word: N must be a multiple of 8, got ${N}`);
    const qweight = checkTyped(p.qweight, Int32Array, 'qweight');
    const qzeros = checkTyped(p.qzeros, Int32Array, 'qzeros');
    if (qweight.length !== (N * K) / 8) {
      throw new CgRangeError('ERR_SHAPE_MISMATCH', `qweight has ${qweight.length} words; ${kind === 'gptq' ? '[K/8, N]' : '[K, N/8]'} needs ${(N * K) / 8}`);
    }
    const scales = p.scales;
    if (!(scales instanceof Float32Array) && !(scales instanceof Uint16Array)) {
      throw new CgTypeError('ERR_DTYPE', 'scales must be a Float32Array or a Uint16Array of float16 bits');
    }
    checkNotDetached(scales, 'scales');
    if (scales.length === 0 || scales.length % N !== 0) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries, not a multiple of N = ${N}`);
    const G = scales.length / N;
    if (K % G !== 0 || (K / G) % 8 !== 0) {
      throw new CgRangeError('ERR_GROUP_SIZE', `${G} groups do not split K = ${K} into groups of a multiple of 8 columns`);
    }
    if (qzeros.length !== (G * N) / 8) throw new CgRangeError('ERR_SHAPE_MISMATCH', `qzeros has ${qzeros.length} words; [G, N/8] needs ${(G * N) / 8}`);
    checkScales(scales, 'scales');
    const outQ = new Uint8Array(N * (K / 2));
    const outZeros = new Uint8Array(N * G);
    const outScales = scales instanceof Float32Array ? new Float32Array(N * G) : new Uint16Array(N * G);
    const args = { N, K, G, qweight, qzeros, scales, scaleDtype: scaleDtypeCode(scales instanceof Float32Array ? 'float32' : 'float16'), outQ, outZeros, outScales };
    const addon = selectBackend().cpuAddon;
    if (kind === 'gptq') addon.gptqToCanonical(args);
    else addon.awqToCanonical(args);
    const gIdx = kind === 'gptq' && p.gIdx !== undefined ? p.gIdx : null;
    return Int4Weight.fromCanonical({ qweight: outQ, scales: outScales, zeros: outZeros, gIdx }, [N, K]);
  }

  /** The canonical arrays (fresh copies): qweight, scales (in scaleDtype), zeros (null if symmetric), gIdx. */
  canonical(): { qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null; gIdx: Int32Array | null; groupSize: number } {
    const [N, K] = this.shape;
    const st = int4StateOf(this);
    const G = K / st.group;
    const qweight = new Uint8Array(N * (K / 2));
    const scales = this.scaleDtype === 'float16' ? new Uint16Array(N * G) : new Float32Array(N * G);
    const zeros = this.symmetric ? null : new Uint8Array(N * G);
    selectBackend().cpuAddon.int4Unpack({
      packed: st.packed, N, K, group: st.group, perm: st.perm, qweight, scales, scaleDtype: scaleDtypeCode(this.scaleDtype), zeros,
    });
    return { qweight, scales, zeros, gIdx: st.gIdx ? st.gIdx.slice() : null, groupSize: this.groupSize };
  }

  get byteLength(): number {
    return int4StateOf(this).packed.byteLength;
  }

  /** The dequantized weight, float32 [N, K]: (q - z) * s per element, in float32. */
  toDense(): Float32Array {
    const [N, K] = this.shape;
    const st = int4StateOf(this);
    const out = new Float32Array(N * K);
    selectBackend().cpuAddon.int4Dequant({ packed: st.packed, N, K, group: st.group, perm: st.perm, out });
    return out;
  }
}

// ---- FP8 ------------------------------------------------------------------------------------

export type Fp8Scaling = 'tensor' | 'channel' | { block: [number, number] };

export interface Fp8Options {
  /** 'e4m3' (default) or 'e5m2'. */
  format?: Fp8Format;
  /** One scale for the tensor, one per output row ('channel', default), or per bn x bk block. */
  scaling?: Fp8Scaling;
  /** Only when data is a Uint16Array: which 16-bit format it holds. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
}

interface Fp8State {
  packed: ArrayBuffer;
  bn: number;
  bk: number;
}

const FP8 = new WeakMap<object, Fp8State>();

/** @internal */
export function fp8StateOf(w: Fp8Weight): Fp8State {
  const s = FP8.get(w);
  if (!s) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm');
  return s;
}

function scalingUnit(scaling: unknown, N: number, K: number): { bn: number; bk: number; scaling: Fp8Scaling } {
  if (scaling === undefined || scaling === 'channel') return { bn: 1, bk: K, scaling: 'channel' };
  if (scaling === 'tensor') return { bn: N, bk: K, scaling: 'tensor' };
  if (typeof scaling !== 'string' && (typeof scaling !== 'object' || scaling === null)) {
    throw new CgTypeError('ERR_INVALID_ARG', `scaling must be 'tensor', 'channel' or { block: [bn, bk] }, got ${typeof scaling}`);
  }
  if (typeof scaling === 'object' && scaling !== null && Array.isArray((scaling as { block?: unknown }).block)) {
    const b = (scaling as { block: unknown[] }).block;
    if (b.length !== 2 || !b.every((v) => Number.isSafeInteger(v) && (v as number) > 0)) {
      throw new CgRangeError('ERR_INVALID_ARG', 'scaling.block must be [bn, bk], two positive integers');
    }
    const [bn, bk] = b as number[];
    return { bn, bk, scaling: Object.freeze({ block: Object.freeze([bn, bk]) as [number, number] }) };
  }
  throw new CgRangeError('ERR_INVALID_ARG', `scaling must be 'tensor', 'channel' or { block: [bn, bk] }, got ${JSON.stringify(scaling)}`);
}

export class Fp8Weight extends Weight {
  readonly format = 'fp8' as const;
  readonly fp8Format: Fp8Format;
  readonly scaling: Fp8Scaling;

  private constructor(shape: [number, number], fmt: Fp8Format, scaling: Fp8Scaling, state: Fp8State) {
    super(shape, 'float32');
    this.fp8Format = fmt;
    this.scaling = scaling;
    FP8.set(this, state);
    registerWeight(this, state.packed);
    Object.freeze(this);
  }

  /** scale = amax / max(format) per unit (1 for an all-zero unit); code = encode(w / scale). */
  static quantize(data: FloatArray, shape: [number, number], opts?: Fp8Options): Fp8Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = checkOptions(opts, 'options') as Fp8Options & Record<string, unknown>;
    const fmt = checkFp8Format(o.format === undefined ? 'e4m3' : o.format);
    const { bn, bk, scaling } = scalingUnit(o.scaling, N, K);
    const w = floatData(data, N, K, o.dtype);
    const codes = new Uint8Array(N * K);
    const scales = new Float32Array(Math.ceil(N / bn) * Math.ceil(K / bk));
    const addon = selectBackend().cpuAddon;
    const bad = addon.fp8Quantize({ data: w, N, K, bn, bk, format: FP8_CODES[fmt], codes, scales });
    if (bad >= 0) {
      throw new CgRangeError('ERR_INVALID_ARG', `the weight is not finite at row ${Math.floor(bad / K)}, column ${bad % K}; quantization needs finite values`);
    }
    const packed = addon.fp8Pack({ codes, scales, N, K, bn, bk });
    return new Fp8Weight([N, K], fmt, scaling, { packed, bn, bk });
  }

  /**
   * From FP8 codes [N, K] (e.g. an F8_E4M3 safetensors tensor) and their float32 scales: a
   * number for 'tensor', [N] for 'channel', [ceil(N/bn), ceil(K/bk)] for blocks. e4m3 NaN codes
   * (0x7f, 0xff) are refused: no finite weight encodes to them.
   */
  static fromCodes(parts: { codes: Uint8Array; scales: Float32Array | number }, shape: [number, number], opts?: Fp8Options): Fp8Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const p = checkOptions(parts, 'parts') as { codes: Uint8Array; scales: Float32Array | number };
    const o = checkOptions(opts, 'options') as Fp8Options & Record<string, unknown>;
    const fmt = checkFp8Format(o.format === undefined ? 'e4m3' : o.format);
    const { bn, bk, scaling } = scalingUnit(o.scaling, N, K);
    const codes = checkTyped(p.codes, Uint8Array, 'codes');
    if (codes.length !== N * K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `codes has ${codes.length} bytes; [N, K] needs ${N * K}`);
    const want = Math.ceil(N / bn) * Math.ceil(K / bk);
    let scales: Float32Array;
    if (typeof p.scales === 'number') scales = Float32Array.of(p.scales);
    else scales = checkTyped(p.scales, Float32Array, 'scales');
    if (scales.length !== want) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries; ${JSON.stringify(scaling)} scaling needs ${want}`);
    checkScales(scales, 'scales');
    if (fmt === 'e4m3') {
      const nan = codes.findIndex((c) => (c & 0x7f) === 0x7f);
      if (nan >= 0) throw new CgRangeError('ERR_FORMAT', `codes[${nan}] is an e4m3 NaN (0x${codes[nan].toString(16)}): not a weight`);
    }
    const packed = selectBackend().cpuAddon.fp8Pack({ codes, scales, N, K, bn, bk });
    return new Fp8Weight([N, K], fmt, scaling, { packed, bn, bk });
  }

  /** The canonical arrays (fresh copies): codes [N, K] and the float32 scales. */
  canonical(): { codes: Uint8Array; scales: Float32Array } {
    const [N, K] = this.shape;
    const st = fp8StateOf(this);
    const codes = new Uint8Array(N * K);
    const scales = new Float32Array(Math.ceil(N / st.bn) * Math.ceil(K / st.bk));
    selectBackend().cpuAddon.fp8Unpack({ packed: st.packed, N, K, bn: st.bn, bk: st.bk, codes, scales });
    return { codes, scales };
  }

  get byteLength(): number {
    return fp8StateOf(this).packed.byteLength;
  }

  /** The dequantized weight, float32 [N, K]: decode(code) * scale. */
  toDense(): Float32Array {
    const [N, K] = this.shape;
    const st = fp8StateOf(this);
    const out = new Float32Array(N * K);
    selectBackend().cpuAddon.fp8Dequant({ packed: st.packed, N, K, bn: st.bn, bk: st.bk, format: FP8_CODES[this.fp8Format], out });
    return out;
  }
}
