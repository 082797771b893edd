/**
 * cg.lowRankUpdate: W <- W + alpha * B * A in place, one tile at a time, on the weight's
 * placement (the routing table says which backend: on the CUDA backend, dense and 16-bit 2:4
 * weights are updated in device memory, on the weight's device; the placements of other backends
 * are dropped, to be made again from the updated one when needed). Arguments are read once, then
 * checked, as in linear.ts.
 */
import type { UpdatePlan } from '../backends/backend';
import { route } from '../backends/routing';
import { selectBackend } from '../backends/select';
import { FloatArray, FloatDType } from '../dtype';
import { CgRangeError, CgTypeError } from '../errors';
import { WeightParams, valueDtype } from '../native/descriptor';
import { checkFloatArray, checkThreads, readOptions } from '../validate';
import { Weight, checkWritable, deviceOf, keepOnlyPlacement, paramsOf, placementOn, useDuring } from '../weights/weight';
import { asFloat32, checkAlpha, rankOf } from './lora';

export interface LowRankUpdateOptions {
  /** The scale of B·A (default 1). 0 leaves the weight bit for bit as it is. */
  alpha?: number;
  /** CPU tile size: columns per tile, or [rows, columns] (rows are whole panels of 16). Default 256 columns. The device kernel has its own tiles. */
  blockSize?: number | [number, number];
  /** 2:4 weights: choose the 2 largest of every 4 again after the update (default: keep the mask). */
  reprune?: boolean;
  /** dtype of A and B when they are Uint16Arrays. */
  dtype?: FloatDType;
  /** CPU threads for this call (CPU kernels only). */
  threads?: number;
}

export interface LowRankUpdateResult {
  /**
   * The scratch memory the update used: on the CPU, all threads together, at most one tile per
   * thread; on the CUDA backend, the device memory of A and B as float32 (the kernel keeps each
   * element's increment in registers).
   */
  peakScratchBytes: number;
}

const OPTION_KEYS = ['alpha', 'blockSize', 'reprune', 'dtype', 'threads'] as const;

/** A tile extent: a positive integer up to 2^31 - 1. */
function tileExtent(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) > 0 && (v as number) < 2 ** 31;
}

function prepareUpdate(w: unknown, B: unknown, A: unknown, options: unknown): { weight: Weight; params: WeightParams; plan: UpdatePlan } {
  // phase 1: read once
  const params = paramsOf(w);
  const weight = w as Weight;
  const { N, K } = params;
  const o = readOptions(options, 'options', OPTION_KEYS);
  // blockSize: a number, or [rows, columns] read once into plain values.
  const bsArray = Array.isArray(o.blockSize) ? { len: (o.blockSize as unknown[]).length, rows: (o.blockSize as unknown[])[0], cols: (o.blockSize as unknown[])[1] } : null;
  // phase 2: check the values read
  const alpha = checkAlpha(o.alpha);
  const r = rankOf(A, B, N, K);
  const a = checkFloatArray(A, o.dtype, r * K, 'A');
  const b = checkFloatArray(B, o.dtype, N * r, 'B');
  if (a.dtype !== b.dtype) throw new CgTypeError('ERR_DTYPE', 'A and B must have the same dtype');
  let tileK = 256;
  if (o.blockSize !== undefined) {
    if (typeof o.blockSize !== 'number' && !bsArray) throw new CgTypeError('ERR_INVALID_ARG', 'blockSize must be a number or an array [rows, columns]');
    if (tileExtent(o.blockSize)) tileK = o.blockSize;
    else if (bsArray && bsArray.len === 2 && tileExtent(bsArray.rows) && tileExtent(bsArray.cols)) tileK = bsArray.cols;
    else throw new CgRangeError('ERR_INVALID_ARG', 'blockSize must be a positive integer below 2^31, or [rows, columns]');
  }
  if (o.reprune !== undefined && typeof o.reprune !== 'boolean') throw new CgTypeError('ERR_INVALID_ARG', 'reprune must be a boolean');
  if (o.reprune && params.format !== '2:4') throw new CgRangeError('ERR_INVALID_ARG', 'reprune applies to 2:4 weights only');
  const threads = o.threads === undefined ? selectBackend().threads : checkThreads(o.threads, 'threads');
  if (params.format === 'int4' || params.format === 'fp8') {
    // Requantization needs finite numbers: refuse NaN/Inf factors before anything is written.
    for (const [arr, name] of [[a, 'A'], [b, 'B']] as const) {
      const f = asFloat32(arr.array, arr.dtype);
      for (let i = 0; i < f.length; ++i) {
        if (!Number.isFinite(f[i])) throw new CgRangeError('ERR_INVALID_ARG', `${name}[${i}] = ${f[i]}: a quantized weight's update must be finite`);
      }
    }
  }
  const plan: UpdatePlan = { r, alpha, a: a.array, b: b.array, abDtype: a.dtype, tileK, threads, reprune: o.reprune === true };
  return { weight, params, plan };
}

/**
 * W <- W + alpha * B * A in place (B [N, r], A [r, K]), one tile of one panel (16 rows) by
 * blockSize columns at a time: the full B·A is never materialised, and the scratch memory is at
 * most one tile (plus one panel's B and, for 16-bit or permuted A, one tile of A) per thread;
 * a blockSize above K acts as K.
 * Dense: the increment is summed in float32 and rounded once into the weight's dtype. 2:4: only
 * kept positions change, unless reprune. INT4/FP8: every group or scale unit is dequantized,
 * updated and quantized again with a fresh scale (and zero point), by the same rule as quantize.
 * Everything is checked before the first write: a refused call leaves the weight as it was.
 */
export function lowRankUpdate(w: Weight, B: FloatArray, A: FloatArray, options?: LowRankUpdateOptions): LowRankUpdateResult {
  const { weight, params, plan } = prepareUpdate(w, B, A, options);
  checkWritable(weight);
  if (plan.alpha === 0) return { peakScratchBytes: 0 };
  const backend = route('lowRankUpdate', params.format, 'native', selectBackend().info.kind, valueDtype(params));
  const scratch = backend.lowRankUpdate(params, placementOn(weight, backend, deviceOf(weight)), plan);
  keepOnlyPlacement(weight, backend);
  return { peakScratchBytes: scratch };
}

/** lowRankUpdate off the event loop; the weight refuses other calls (ERR_BUSY) until it settles. */
export async function lowRankUpdateAsync(w: Weight, B: FloatArray, A: FloatArray, options?: LowRankUpdateOptions): Promise<LowRankUpdateResult> {
  const { weight, params, plan } = prepareUpdate(w, B, A, options);
  checkWritable(weight);
  if (plan.alpha === 0) return { peakScratchBytes: 0 };
  const backend = route('lowRankUpdate', params.format, 'native', selectBackend().info.kind, valueDtype(params));
  const placement = placementOn(weight, backend, deviceOf(weight));
  const scratch = await useDuring(weight, 'write', () => backend.lowRankUpdateAsync(params, placement, plan));
  keepOnlyPlacement(weight, backend);
  return { peakScratchBytes: scratch };
}
