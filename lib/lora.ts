/**
 * Low-rank factors: A [r, K] and B [N, r] with a scale alpha, as LoRA, EoRA-style error
 * compensation, LQ-LoRA and GaLore-style steps use them. Three uses:
 *   - cg.lowRankUpdate(w, B, A, { alpha }): W <- W + alpha * B * A in place, tile by tile;
 *   - cg.linear(x, [M, K], w, { lora: { A, B, alpha } }): Y = X Wᵀ + alpha (X Aᵀ) Bᵀ, fused;
 *   - cg.linearMultiLora(x, [M, K], w, adapters, adapterIndexPerRow): one adapter per row.
 * A LoraAdapter checks and packs its factors once, so that a server reuses it across calls.
 */
import { selectBackend } from './backend';
import { FLOAT_DTYPES, FloatArray, FloatDType } from './dtype';
import { CgError, CgRangeError, CgTypeError, fromNative } from './errors';
import { Fp8Weight, Int4Weight, fp8StateOf, int4StateOf } from './quant';
import { checkFloatArray, checkOptions } from './validate';
import { DenseWeight, Sparse24Weight, Weight, isWeight, packedOf } from './weights';

/** Factors as plain arrays: A [r, K], B [N, r], row-major; 16-bit factors say their dtype. */
export interface LoraFactors {
  A: FloatArray;
  B: FloatArray;
  alpha?: number;
  dtype?: FloatDType;
}

function checkAlpha(v: unknown, name = 'alpha'): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number') throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a number, got ${typeof v}`);
  if (!Number.isFinite(v)) throw new CgRangeError('ERR_INVALID_ARG', `${name} must be finite, got ${v}`);
  return v;
}

/** The rank that A [r, K] and B [N, r] share, from their lengths. */
function rankOf(A: FloatArray, B: FloatArray, N: number, K: number): number {
  if (A.length === 0 || A.length % K !== 0) {
    throw new CgRangeError('ERR_SHAPE_MISMATCH', `A has ${A.length} elements, not [r, K] for K = ${K}`);
  }
  const r = A.length / K;
  if (B.length !== N * r) {
    throw new CgRangeError('ERR_SHAPE_MISMATCH', `A is [${r}, ${K}] but B has ${B.length} elements, not [N, r] = [${N}, ${r}]: the ranks of A and B differ`);
  }
  return r;
}

function asFloat32(a: FloatArray, dtype: FloatDType): Float32Array {
  if (dtype === 'float32') return a as Float32Array;
  const out = new Float32Array(a.length);
  selectBackend().cpuAddon.convert({ src: a, srcDtype: FLOAT_DTYPES[dtype].code, dst: out, dstDtype: 0 });
  return out;
}

interface AdapterState {
  a: ArrayBuffer;  // A as a dense float32 weight [r, K] (panel layout)
  b: ArrayBuffer;  // B as a dense float32 weight [N, r]
}

const ADAPTERS = new WeakMap<object, AdapterState>();

/** A LoRA adapter for weights of shape [N, K]: checked and packed once, reusable across calls. */
export class LoraAdapter {
  readonly shape: readonly [number, number];
  readonly rank: number;
  readonly alpha: number;

  constructor(factors: LoraFactors, shape: [number, number]) {
    const f = checkOptions(factors, 'factors') as unknown as LoraFactors;
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new CgTypeError('ERR_SHAPE', 'shape must be [N, K], two positive integers');
    }
    const [N, K] = shape;
    const alpha = checkAlpha(f.alpha);
    const A = f.A as unknown;
    const B = f.B as unknown;
    if (!(A instanceof Float32Array) && !(A instanceof Uint16Array)) throw new CgTypeError('ERR_DTYPE', 'A must be a Float32Array or a Uint16Array');
    if (!(B instanceof Float32Array) && !(B instanceof Uint16Array)) throw new CgTypeError('ERR_DTYPE', 'B must be a Float32Array or a Uint16Array');
    const r = rankOf(A, B, N, K);
    const a = checkFloatArray(A, f.dtype, r * K, 'A');
    const b = checkFloatArray(B, f.dtype, N * r, 'B');
    const addon = selectBackend().cpuAddon;
    const state: AdapterState = {
      a: addon.densePack({ data: asFloat32(a.array, a.dtype), N: r, K, dtype: 0 }),
      b: addon.densePack({ data: asFloat32(b.array, b.dtype), N, K: r, dtype: 0 }),
    };
    this.shape = Object.freeze([N, K]) as readonly [number, number];
    this.rank = r;
    this.alpha = alpha;
    ADAPTERS.set(this, state);
    Object.freeze(this);
  }
}

/** An adapter given as a LoraAdapter or as plain factors, for a weight of shape [N, K]. */
export function adapterFor(spec: unknown, N: number, K: number, name: string): LoraAdapter {
  if (spec instanceof LoraAdapter) {
    if (spec.shape[0] !== N || spec.shape[1] !== K) {
      throw new CgRangeError('ERR_SHAPE_MISMATCH', `${name} was made for [${spec.shape.join(', ')}] but the weight is [${N}, ${K}]`);
    }
    return spec;
  }
  if (typeof spec !== 'object' || spec === null) throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a LoraAdapter or { A, B, alpha }`);
  return new LoraAdapter(spec as LoraFactors, [N, K]);
}

/** @internal What the native call needs of an adapter. */
export function adapterArgs(a: LoraAdapter): { a: ArrayBuffer; b: ArrayBuffer; r: number; alpha: number } {
  const s = ADAPTERS.get(a);
  if (!s) throw new CgTypeError('ERR_INVALID_ARG', 'not a LoraAdapter made by compressed-gemm');
  return { a: s.a, b: s.b, r: a.rank, alpha: a.alpha };
}

// ---- which calls use a weight now -------------------------------------------------------------

/**
 * A weight read by async calls in flight must not be updated meanwhile, and one being updated
 * by lowRankUpdateAsync must not be read: either would compute on half-updated numbers. Such
 * calls get ERR_BUSY instead.
 */
const USE = new WeakMap<object, { readers: number; writer: boolean }>();

function useOf(w: Weight): { readers: number; writer: boolean } {
  let u = USE.get(w);
  if (!u) {
    u = { readers: 0, writer: false };
    USE.set(w, u);
  }
  return u;
}

/** @internal Throws ERR_BUSY when w is being updated. */
export function checkReadable(w: Weight): void {
  if (USE.get(w)?.writer) throw new CgError('ERR_BUSY', 'this weight is being updated by lowRankUpdateAsync; wait for it to finish');
}

/** @internal Marks w as read by an async call until `done` settles. */
export function readDuring<T>(w: Weight, done: Promise<T>): Promise<T> {
  const u = useOf(w);
  u.readers++;
  const release = () => {
    u.readers--;
  };
  return done.then(
    (v) => {
      release();
      return v;
    },
    (e) => {
      release();
      throw e;
    },
  );
}

// ---- lowRankUpdate --------------------------------------------------------------------------

export interface LowRankUpdateOptions {
  /** The scale of B·A (default 1). 0 leaves the weight bit for bit as it is. */
  alpha?: number;
  /** Tile size: columns per tile, or [rows, columns] (rows are whole panels of 16). Default 256 columns. */
  blockSize?: number | [number, number];
  /** 2:4 weights: choose the 2 largest of every 4 again after the update (default: keep the mask). */
  reprune?: boolean;
  /** dtype of A and B when they are Uint16Arrays. */
  dtype?: FloatDType;
  /** CPU threads for this call. */
  threads?: number;
}

export interface LowRankUpdateResult {
  /** The scratch memory the update used, all threads together: at most one tile per thread. */
  peakScratchBytes: number;
}

function prepareUpdate(w: unknown, B: unknown, A: unknown, options: unknown) {
  if (!isWeight(w)) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm');
  const weight = w as Weight;
  const [N, K] = weight.shape;
  const o = checkOptions(options, 'options') as LowRankUpdateOptions & Record<string, unknown>;
  const alpha = checkAlpha(o.alpha);
  if (!(A instanceof Float32Array) && !(A instanceof Uint16Array)) throw new CgTypeError('ERR_DTYPE', 'A must be a Float32Array or a Uint16Array');
  if (!(B instanceof Float32Array) && !(B instanceof Uint16Array)) throw new CgTypeError('ERR_DTYPE', 'B must be a Float32Array or a Uint16Array');
  const r = rankOf(A, B, N, K);
  const a = checkFloatArray(A, o.dtype, r * K, 'A');
  const b = checkFloatArray(B, o.dtype, N * r, 'B');
  if (a.dtype !== b.dtype) throw new CgTypeError('ERR_DTYPE', 'A and B must have the same dtype');
  let tileK = 256;
  if (o.blockSize !== undefined) {
    const bs = o.blockSize;
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
    if (typeof bs === 'number' && ok(bs)) tileK = bs;
    else if (Array.isArray(bs) && bs.length === 2 && ok(bs[0]) && ok(bs[1])) tileK = bs[1];
    else throw new CgRangeError('ERR_INVALID_ARG', 'blockSize must be a positive integer or [rows, columns]');
  }
  if (o.reprune !== undefined && typeof o.reprune !== 'boolean') throw new CgTypeError('ERR_INVALID_ARG', 'reprune must be a boolean');
  if (o.reprune && !(weight instanceof Sparse24Weight)) throw new CgRangeError('ERR_INVALID_ARG', 'reprune applies to 2:4 weights only');
  const s = selectBackend();
  let threads = s.threads;
  if (o.threads !== undefined) {
    if (typeof o.threads !== 'number') throw new CgTypeError('ERR_INVALID_ARG', 'threads must be a number');
    if (!Number.isSafeInteger(o.threads) || o.threads < 1 || o.threads > 1024) throw new CgRangeError('ERR_INVALID_ARG', 'threads must be an integer from 1 to 1024');
    threads = o.threads;
  }
  const base = { N, K, r, alpha, a: a.array, b: b.array, abDtype: FLOAT_DTYPES[a.dtype].code, tileK, threads, isa: s.isaCode };
  let args: Record<string, unknown>;
  if (weight instanceof DenseWeight) {
    args = { ...base, kind: 0, w: packedOf(weight), wDtype: FLOAT_DTYPES[weight.dtype].code };
  } else if (weight instanceof Sparse24Weight) {
    args = { ...base, kind: 1, w: packedOf(weight), wDtype: FLOAT_DTYPES[weight.dtype].code, reprune: o.reprune === true };
  } else if (weight instanceof Int4Weight || weight instanceof Fp8Weight) {
    // Requantization needs finite numbers: refuse NaN/Inf factors before anything is written.
    for (const [arr, name] of [[a, 'A'], [b, 'B']] as const) {
      const f = asFloat32(arr.array, arr.dtype);
      for (let i = 0; i < f.length; ++i) {
        if (!Number.isFinite(f[i])) throw new CgRangeError('ERR_INVALID_ARG', `${name}[${i}] = ${f[i]}: a quantized weight's update must be finite`);
      }
    }
    if (weight instanceof Int4Weight) {
      const st = int4StateOf(weight);
      args = { ...base, kind: 2, w: st.packed, group: st.group, perm: st.perm, symmetric: weight.symmetric, scaleDtype: weight.scaleDtype === 'float16' ? 1 : 0 };
    } else {
      const st = fp8StateOf(weight);
      args = { ...base, kind: 3, w: st.packed, bn: st.bn, bk: st.bk, fp8Format: weight.fp8Format === 'e4m3' ? 0 : 1 };
    }
  } else {
    throw new CgTypeError('ERR_WEIGHT', `lowRankUpdate does not know weights of format ${weight.format}`);
  }
  return { weight, alpha, args };
}

/**
 * W <- W + alpha * B * A in place (B [N, r], A [r, K]), one tile of one panel (16 rows) by
 * blockSize columns at a time: the full B·A is never materialised, and the scratch memory is at
 * most one tile (plus one panel's B and, for 16-bit or permuted A, one tile of A) per thread.
 * Dense: the increment is summed in float32 and rounded once into the weight's dtype. 2:4: only
 * kept positions change, unless reprune. INT4/FP8: every group or scale unit is dequantized,
 * updated and quantized again with a fresh scale (and zero point), by the same rule as quantize.
 * Everything is checked before the first write: a refused call leaves the weight as it was.
 */
export function lowRankUpdate(w: Weight, B: FloatArray, A: FloatArray, options?: LowRankUpdateOptions): LowRankUpdateResult {
  const { weight, alpha, args } = prepareUpdate(w, B, A, options);
  const u = useOf(weight);
  if (u.readers > 0 || u.writer) throw new CgError('ERR_BUSY', 'this weight is in use by calls in flight; wait for them before updating it');
  if (alpha === 0) return { peakScratchBytes: 0 };
  try {
    return { peakScratchBytes: selectBackend().cpuAddon.lowRankUpdate(args) };
  } catch (e) {
    throw fromNative(e);
  }
}

/** lowRankUpdate off the event loop; the weight refuses other calls (ERR_BUSY) until it settles. */
export async function lowRankUpdateAsync(w: Weight, B: FloatArray, A: FloatArray, options?: LowRankUpdateOptions): Promise<LowRankUpdateResult> {
  const { weight, alpha, args } = prepareUpdate(w, B, A, options);
  const u = useOf(weight);
  if (u.readers > 0 || u.writer) throw new CgError('ERR_BUSY', 'this weight is in use by calls in flight; wait for them before updating it');
  if (alpha === 0) return { peakScratchBytes: 0 };
  u.writer = true;
  try {
    return { peakScratchBytes: await selectBackend().cpuAddon.lowRankUpdateAsync(args) };
  } catch (e) {
    throw fromNative(e);
  } finally {
    u.writer = false;
  }
}
