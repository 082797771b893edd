/**
 * One weight across the boundary: every native entry point that takes a weight reads this one
 * object with one reader (native/binding/weight_desc.h), into one C++ struct (cg/weight.h).
 * Enums travel as the same strings lib/ uses (as sharp passes them), so no code table exists
 * on either side to drift from the other.
 */
import type { FloatDType } from '../dtype';

export type WeightFormat = 'dense' | '2:4' | 'int4' | 'fp8';
export type Fp8Format = 'e4m3' | 'e5m2';
export type ScaleDType = 'float16' | 'float32';

/** A weight's format and canonical parameters: what it is, whatever backend holds it. */
export type WeightParams =
  | { format: 'dense' | '2:4'; N: number; K: number; dtype: FloatDType }
  | {
      format: 'int4'; N: number; K: number;
      /** Columns per group (K: one group per row). */
      group: number;
      symmetric: boolean;
      scaleDtype: ScaleDType;
      /** GPTQ act-order: the placement's column c is the canonical column perm[c]; null if none. */
      perm: Int32Array | null;
    }
  | { format: 'fp8'; N: number; K: number; fp8Format: Fp8Format; bn: number; bk: number };

/** A weight as one backend holds it: its parameters and that placement's buffer. */
export type WeightDescriptor = WeightParams & { data: ArrayBuffer };

/** The canonical arrays (README "Formats"); each format uses some of them. */
export interface CanonicalArrays {
  values?: ArrayBufferView;
  meta?: Uint8Array;
  qweight?: Uint8Array;
  scales?: Float32Array | Uint16Array;
  zeros?: Uint8Array | null;
  codes?: Uint8Array;
}

/** The dtype of a weight's values (dense, 2:4); float32 for quantized weights (what they dequantize to). */
export function valueDtype(p: WeightParams): FloatDType {
  return p.format === 'dense' || p.format === '2:4' ? p.dtype : 'float32';
}
