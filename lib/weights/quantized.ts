/**
 * The FP8 codec, and what the INT4 and FP8 weight formats share: reading float data to quantize,
 * and checking a checkpoint's scales. The formats are documented once, in
 * native/formats/int4.h, native/formats/fp8_weight.h and native/include/cg/fp8.h, and in the README.
 */
import { selectBackend } from '../backends/select';
import { CgRangeError, CgTypeError, show } from '../errors';
import type { Fp8Format } from '../native/descriptor';
import { checkFloatArray, checkTypedArray, typedArrayKind } from '../validate';

export type { Fp8Format } from '../native/descriptor';

// ---- FP8 codec -------------------------------------------------------------------------------

const FP8_MAX: Record<Fp8Format, number> = { e4m3: 448, e5m2: 57344 };

export function checkFp8Format(f: unknown): Fp8Format {
  if (f === 'e4m3' || f === 'e5m2') return f;
  throw new CgRangeError('ERR_INVALID_ARG', `unknown FP8 format ${show(f)} (e4m3 or e5m2)`);
}

/**
 * OCP FP8 (the formats of torch.float8_e4m3fn and torch.float8_e5m2). Encoding rounds to nearest
 * even and saturates: e4m3 maps every |x| > 448, infinities included, to +-448; e5m2 maps finite
 * |x| > 57344 to +-57344 and keeps infinities; NaN stays NaN. Decoding is exact.
 */
export const fp8 = {
  encode(values: Float32Array, format: Fp8Format = 'e4m3'): Uint8Array {
    const src = checkTypedArray<Float32Array>(values, 'Float32Array', 'values');
    const dst = new Uint8Array(src.length);
    selectBackend().cpuAddon.fp8Encode({ src, dst, format: checkFp8Format(format) });
    return dst;
  },
  decode(codes: Uint8Array, format: Fp8Format = 'e4m3'): Float32Array {
    const src = checkTypedArray<Uint8Array>(codes, 'Uint8Array', 'codes');
    const dst = new Float32Array(src.length);
    selectBackend().cpuAddon.fp8Decode({ src, dst, format: checkFp8Format(format) });
    return dst;
  },
  /** The largest finite value: 448 (e4m3) or 57344 (e5m2). */
  max(format: Fp8Format = 'e4m3'): number {
    return FP8_MAX[checkFp8Format(format)];
  },
};

// ---- shared by INT4 and FP8 ----------------------------------------------------------------------------

/** Weight data for quantization: a Float32Array, or 16-bit bits with their dtype, as float32. */
export function floatData(data: unknown, N: number, K: number, dtype: unknown): Float32Array {
  const { array, dtype: dt } = checkFloatArray(data, dtype, N * K, 'data');
  if (dt === 'float32') return array as Float32Array;
  const out = new Float32Array(N * K);
  selectBackend().cpuAddon.convert({ src: array, srcDtype: dt, dst: out, dstDtype: 'float32' });
  return out;
}

/** Checks that every scale is finite and positive (what a checkpoint must hold). */
export function checkScales(scales: Float32Array | Uint16Array, name: string): void {
  const f = typedArrayKind(scales) === 'Float32Array' ? (scales as Float32Array) : decodeF16(scales as Uint16Array);
  for (let i = 0; i < f.length; ++i) {
    const s = f[i];
    if (!(s > 0) || s === Infinity) {
      throw new CgRangeError('ERR_SCALE', `${name}[${i}] = ${s}: scales must be finite and positive`);
    }
  }
}

function decodeF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  selectBackend().cpuAddon.convert({ src: bits, srcDtype: 'float16', dst: out, dstDtype: 'float32' });
  return out;
}


/** Scales as a checkpoint gives them: float32, or float16 bits in a Uint16Array. */
export function checkScaleArray(a: unknown, name: string): Float32Array | Uint16Array {
  const kind = typedArrayKind(a);
  if (kind !== 'Float32Array' && kind !== 'Uint16Array') {
    throw new CgTypeError('ERR_DTYPE', `${name} must be a Float32Array or a Uint16Array of float16 bits`);
  }
  return checkTypedArray<Float32Array | Uint16Array>(a, kind, name);
}
