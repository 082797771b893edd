/**
 * FP8 weights: e4m3 / e5m2 codes with tensor, channel or block scales; from a float weight
 * (quantize) or from codes and scales (fromCodes). The canonical format is
 * native/formats/fp8_weight.h (and README "FP8"); the CPU placement native/cpu/layout/fp8.h.
 */
import { selectBackend } from '../backends/select';
import { FloatArray } from '../dtype';
import { CgRangeError, CgTypeError, show } from '../errors';
import type { Fp8Format, WeightParams } from '../native/descriptor';
import { checkShape2, checkTypedArray, readOptions } from '../validate';
import { checkFp8Format, checkScales, floatData } from './quantized';
import { Weight, paramsOf, readCanonical } from './weight';

export type Fp8Scaling = 'tensor' | 'channel' | { block: [number, number] };

export interface Fp8Options {
  /** 'e4m3' (default) or 'e5m2'. */
  format?: Fp8Format;
  /** One scale for the tensor, one per output row ('channel', default), or per bn x bk block. */
  scaling?: Fp8Scaling;
  /** Only when data is a Uint16Array: which 16-bit format it holds. */
  dtype?: 'float32' | 'float16' | 'bfloat16';
}

function fp8Params(w: unknown): Extract<WeightParams, { format: 'fp8' }> {
  const p = paramsOf(w);
  if (p.format !== 'fp8') throw new CgTypeError('ERR_WEIGHT', 'an Fp8Weight method was called on another weight');
  return p;
}

function scalingUnit(scaling: unknown, N: number, K: number): { bn: number; bk: number; scaling: Fp8Scaling } {
  if (scaling === undefined || scaling === 'channel') return { bn: 1, bk: K, scaling: 'channel' };
  if (scaling === 'tensor') return { bn: N, bk: K, scaling: 'tensor' };
  if (typeof scaling !== 'string' && (typeof scaling !== 'object' || scaling === null)) {
    throw new CgTypeError('ERR_INVALID_ARG', `scaling must be 'tensor', 'channel' or { block: [bn, bk] }, got ${typeof scaling}`);
  }
  const block = typeof scaling === 'object' && scaling !== null ? readOptions(scaling, 'scaling', ['block'] as const).block : undefined;
  if (Array.isArray(block)) {
    const [len, bn, bk] = [block.length, block[0], block[1]] as unknown[]; // each read once
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0 && (v as number) < 2 ** 31;
    if (len !== 2 || !ok(bn) || !ok(bk)) {
      throw new CgRangeError('ERR_INVALID_ARG', 'scaling.block must be [bn, bk], two positive integers below 2^31');
    }
    return { bn: bn as number, bk: bk as number, scaling: Object.freeze({ block: Object.freeze([bn, bk]) as [number, number] }) };
  }
  throw new CgRangeError('ERR_INVALID_ARG', `scaling must be 'tensor', 'channel' or { block: [bn, bk] }, got ${show(scaling)}`);
}

export class Fp8Weight extends Weight {
  readonly format = 'fp8' as const;
  readonly fp8Format: Fp8Format;
  readonly scaling: Fp8Scaling;

  private constructor(params: Extract<WeightParams, { format: 'fp8' }>, scaling: Fp8Scaling, codes: Uint8Array, scales: Float32Array) {
    super(params, 'float32', { codes, scales });
    this.fp8Format = params.fp8Format;
    this.scaling = scaling;
    Object.freeze(this);
  }

  /** scale = amax / max(format) per unit (1 for an all-zero unit); code = encode(w / scale). */
  static quantize(data: FloatArray, shape: [number, number], opts?: Fp8Options): Fp8Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const o = readOptions(opts, 'options', ['format', 'scaling', 'dtype'] as const);
    const fmt = checkFp8Format(o.format === undefined ? 'e4m3' : o.format);
    const { bn, bk, scaling } = scalingUnit(o.scaling, N, K);
    const w = floatData(data, N, K, o.dtype);
    const codes = new Uint8Array(N * K);
    const scales = new Float32Array(Math.ceil(N / bn) * Math.ceil(K / bk));
    const params = { format: 'fp8' as const, N, K, fp8Format: fmt, bn, bk };
    const bad = selectBackend().cpuAddon.fp8Quantize({ weight: params, data: w, codes, scales });
    if (bad >= 0) {
      throw new CgRangeError('ERR_INVALID_ARG', `the weight is not finite at row ${Math.floor(bad / K)}, column ${bad % K}; quantization needs finite values`);
    }
    return new Fp8Weight(params, scaling, codes, scales);
  }

  /**
   * From FP8 codes [N, K] (e.g. an F8_E4M3 safetensors tensor) and their float32 scales: a
   * number for 'tensor', [N] for 'channel', [ceil(N/bn), ceil(K/bk)] for blocks. e4m3 NaN codes
   * (0x7f, 0xff) are refused: no finite weight encodes to them.
   */
  static fromCodes(parts: { codes: Uint8Array; scales: Float32Array | number }, shape: [number, number], opts?: Fp8Options): Fp8Weight {
    const [N, K] = checkShape2(shape, ['N', 'K']);
    const p = readOptions(parts, 'parts', ['codes', 'scales'] as const);
    const o = readOptions(opts, 'options', ['format', 'scaling'] as const);
    const fmt = checkFp8Format(o.format === undefined ? 'e4m3' : o.format);
    const { bn, bk, scaling } = scalingUnit(o.scaling, N, K);
    const codes = checkTypedArray<Uint8Array>(p.codes, 'Uint8Array', 'codes', N * K);
    const want = Math.ceil(N / bn) * Math.ceil(K / bk);
    let scales: Float32Array;
    if (typeof p.scales === 'number') scales = Float32Array.of(p.scales);
    else scales = checkTypedArray<Float32Array>(p.scales, 'Float32Array', 'scales');
    if (scales.length !== want) throw new CgRangeError('ERR_SHAPE_MISMATCH', `scales has ${scales.length} entries; ${show(scaling)} scaling needs ${want}`);
    checkScales(scales, 'scales');
    if (fmt === 'e4m3') {
      let nan = -1;
      for (let i = 0; i < codes.length && nan < 0; ++i) if ((codes[i] & 0x7f) === 0x7f) nan = i;
      if (nan >= 0) throw new CgRangeError('ERR_FORMAT', `codes[${nan}] is an e4m3 NaN (0x${codes[nan].toString(16)}): not a weight`);
    }
    return new Fp8Weight({ format: 'fp8', N, K, fp8Format: fmt, bn, bk }, scaling, codes.slice(), scales.slice());
  }

  /** The canonical arrays (fresh copies): codes [N, K] and the float32 scales. */
  canonical(): { codes: Uint8Array; scales: Float32Array } {
    const p = fp8Params(this);
    const codes = new Uint8Array(p.N * p.K);
    const scales = new Float32Array(Math.ceil(p.N / p.bn) * Math.ceil(p.K / p.bk));
    readCanonical(this, { codes, scales });
    return { codes, scales };
  }

  /** The dequantized weight, float32 [N, K]: decode(code) * scale. */
  toDense(): Float32Array {
    return super.toDense() as Float32Array;
  }
}
