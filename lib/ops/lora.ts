/**
 * Low-rank factors: A [r, K] and B [N, r] with a scale alpha, as LoRA, EoRA-style error
 * compensation, LQ-LoRA and GaLore-style steps use them. Three uses:
 *   - cg.lowRankUpdate(w, B, A, { alpha }): W <- W + alpha * B * A in place (lowrank-update.ts);
 *   - cg.linear(x, [M, K], w, { lora: { A, B, alpha } }): Y = X Wᵀ + alpha (X Aᵀ) Bᵀ, fused;
 *   - cg.linearMultiLora(x, [M, K], w, adapters, adapterIndexPerRow): one adapter per row.
 * A LoraAdapter checks and packs its factors once, so that a server reuses it across calls.
 */
import { cpuBackend } from '../backends/cpu';
import { selectBackend } from '../backends/select';
import { FloatArray, FloatDType } from '../dtype';
import { CgError, CgRangeError, CgTypeError } from '../errors';
import { releaseDeviceCopies } from '../backends/cuda-lora';
import type { NativeLoraArgs } from '../native/cpu';
import { checkFloatArray, checkNotDetached, checkShape2, readOptions, typedArrayKind, typedLength } from '../validate';

/** Factors as plain arrays: A [r, K], B [N, r], row-major; 16-bit factors say their dtype. */
export interface LoraFactors {
  A: FloatArray;
  B: FloatArray;
  alpha?: number;
  dtype?: FloatDType;
}

/** The largest rank, and the most adapters in one call: 65,536 (what the kernels index). */
export const MAX_RANK = 65536;
export const MAX_ADAPTERS = 65536;
const FLOAT32_MAX = 3.4028234663852886e38;

/** A scale: finite, and finite as float32 (the kernels compute in float32). */
export function checkAlpha(v: unknown, name = 'alpha'): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number') throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a number, got ${typeof v}`);
  if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) throw new CgRangeError('ERR_INVALID_ARG', `${name} must be finite in float32, got ${v}`);
  return v;
}

/** The rank that A [r, K] and B [N, r] share, from their real lengths. */
export function rankOf(A: unknown, B: unknown, N: number, K: number): number {
  for (const [a, name] of [[A, 'A'], [B, 'B']] as const) {
    const kind = typedArrayKind(a);
    if (kind !== 'Float32Array' && kind !== 'Uint16Array') throw new CgTypeError('ERR_DTYPE', `${name} must be a Float32Array or a Uint16Array`);
    checkNotDetached(a as FloatArray, name);
  }
  const la = typedLength(A as FloatArray);
  const lb = typedLength(B as FloatArray);
  if (la === 0 || la % K !== 0) throw new CgRangeError('ERR_SHAPE_MISMATCH', `A has ${la} elements, not [r, K] for K = ${K}`);
  const r = la / K;
  if (r > MAX_RANK) throw new CgRangeError('ERR_INVALID_ARG', `rank ${r} is above ${MAX_RANK}`);
  if (lb !== N * r) {
    throw new CgRangeError('ERR_SHAPE_MISMATCH', `A is [${r}, ${K}] but B has ${lb} elements, not [N, r] = [${N}, ${r}]: the ranks of A and B differ`);
  }
  return r;
}

export function asFloat32(a: FloatArray, dtype: FloatDType): Float32Array {
  if (dtype === 'float32') return a as Float32Array;
  const out = new Float32Array(a.length);
  selectBackend().cpuAddon.convert({ src: a, srcDtype: dtype, dst: out, dstDtype: 'float32' });
  return out;
}

interface AdapterState {
  a: ArrayBuffer; // A as a dense float32 weight [r, K], CPU placement
  b: ArrayBuffer; // B as a dense float32 weight [N, r]
  disposed: boolean;
}

const ADAPTERS = new WeakMap<object, AdapterState>();

/**
 * A LoRA adapter for weights of shape [N, K]: checked and packed once, reusable across calls. On
 * the CUDA backend its factors are uploaded once per device, on first use, and kept with it.
 * dispose() frees all of that at once (a server unloading an adapter); the garbage collector
 * does it otherwise.
 */
export class LoraAdapter {
  readonly shape: readonly [number, number];
  readonly rank: number;
  readonly alpha: number;

  constructor(factors: LoraFactors, shape: [number, number]) {
    const f = readOptions(factors, 'factors', ['A', 'B', 'alpha', 'dtype'] as const);
    const [n, k] = checkShape2(shape, ['N', 'K']);
    const alpha = checkAlpha(f.alpha);
    const r = rankOf(f.A, f.B, n, k);
    const a = checkFloatArray(f.A, f.dtype, r * k, 'A');
    const b = checkFloatArray(f.B, f.dtype, n * r, 'B');
    const state: AdapterState = {
      a: cpuBackend.place({ format: 'dense', N: r, K: k, dtype: 'float32' }, { values: asFloat32(a.array, a.dtype) }).data,
      b: cpuBackend.place({ format: 'dense', N: n, K: r, dtype: 'float32' }, { values: asFloat32(b.array, b.dtype) }).data,
      disposed: false,
    };
    this.shape = Object.freeze([n, k]) as readonly [number, number];
    this.rank = r;
    this.alpha = alpha;
    ADAPTERS.set(this, state);
    Object.freeze(this);
  }

  /**
   * Frees the adapter's packed factors and its device copies now (calls already in flight keep
   * what they use until they finish). Idempotent; any later use throws ERR_DISPOSED.
   * `using a = new cg.LoraAdapter(...)` calls it.
   */
  dispose(): void {
    const s = adapterState(this);
    if (s.disposed) return;
    s.disposed = true;
    releaseDeviceCopies(s.a);
    s.a = new ArrayBuffer(0);
    s.b = new ArrayBuffer(0);
  }

  get disposed(): boolean {
    return adapterState(this).disposed;
  }

  /** dispose(): for `using a = new cg.LoraAdapter(...)` (defined where the runtime has Symbol.dispose). */
  declare [Symbol.dispose]: () => void;
}

const symbolDispose = (Symbol as { dispose?: symbol }).dispose;
if (symbolDispose) Object.defineProperty(LoraAdapter.prototype, symbolDispose, { value: LoraAdapter.prototype.dispose, writable: true, configurable: true });

function adapterState(a: unknown): AdapterState {
  const s = typeof a === 'object' && a !== null ? ADAPTERS.get(a) : undefined;
  if (!s) throw new CgTypeError('ERR_INVALID_ARG', 'not a LoraAdapter made by compressed-gemm');
  return s;
}

/** An adapter given as a LoraAdapter or as plain factors, for a weight of shape [N, K]. */
export function adapterFor(spec: unknown, N: number, K: number, name: string): LoraAdapter {
  if (typeof spec === 'object' && spec !== null && ADAPTERS.has(spec)) {
    const a = spec as LoraAdapter;
    if (ADAPTERS.get(a)!.disposed) throw new CgError('ERR_DISPOSED', `${name} was disposed`);
    if (a.shape[0] !== N || a.shape[1] !== K) {
      throw new CgRangeError('ERR_SHAPE_MISMATCH', `${name} was made for [${a.shape.join(', ')}] but the weight is [${N}, ${K}]`);
    }
    return a;
  }
  if (typeof spec !== 'object' || spec === null || spec instanceof LoraAdapter) {
    throw new CgTypeError('ERR_INVALID_ARG', `${name} must be a LoraAdapter or { A, B, alpha }`);
  }
  return new LoraAdapter(spec as LoraFactors, [N, K]);
}

/** @internal What the native call needs of some adapters. */
export function loraArgs(adapters: LoraAdapter[], rowAdapter: Int32Array | null): NativeLoraArgs {
  return {
    adapters: adapters.map((a) => {
      const s = ADAPTERS.get(a)!;
      return { a: s.a, b: s.b, r: a.rank, alpha: a.alpha };
    }),
    rowAdapter,
  };
}
