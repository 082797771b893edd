/**
 * The Weight base. A weight's identity is its canonical format (README "Formats"): its format,
 * shape and canonical parameters (`WeightParams`, the same for every backend). What it holds in
 * memory are placements: each a backend's copy in that backend's own layout, made from the
 * canonical arrays when the weight is placed there (as ggml repacks a tensor on upload, and
 * torchao's layouts convert with from_plain / get_plain). `canonical()` and `toDense()` read
 * through whichever placement exists, so they work for every backend.
 *
 * A weight made on the host is placed on the CPU at once (its only host copy: the canonical
 * arrays are not kept twice); the CUDA backend adds a device placement on first use, on the
 * device of the call (device 0 for host arrays, the tensor's device for a cg.Tensor).
 * `w.toDevice({ device })` makes it device-only (the host copy is dropped), `w.dispose()` frees
 * every placement at once.
 */
import type { Backend, BackendName, Placement } from '../backends/backend';
import { cpuBackend } from '../backends/cpu';
import { DevicePlacement, checkDevice, cudaBackend } from '../backends/cuda';
import { FloatArray, FloatDType, allocFloat } from '../dtype';
import { CgError, CgTypeError } from '../errors';
import { readOptions } from '../validate';
import type { CanonicalArrays, WeightFormat, WeightParams } from '../native/descriptor';

export type { WeightFormat } from '../native/descriptor';

interface WeightState {
  readonly params: WeightParams;
  readonly placements: Map<BackendName, Placement>;
  /** Async calls reading the weight now, and whether an update is writing it. */
  readers: number;
  writer: boolean;
  /** toDevice(): the host copy was dropped and is not made again. */
  deviceOnly: boolean;
  disposed: boolean;
}

/**
 * Each weight's state, out of users' reach: async calls read a placement on another thread, so
 * no user code may transfer or replace it; and a forged `{ format: 'dense', ... }` or a spread
 * copy of a real weight has no state, so it is refused before native code sees it.
 */
const STATE = new WeakMap<object, WeightState>();

const BACKENDS: Record<BackendName, Backend | null> = { cpu: cpuBackend, cuda: cudaBackend };

function stateOf(w: unknown): WeightState {
  const s = typeof w === 'object' && w !== null ? STATE.get(w) : undefined;
  if (!s) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm (DenseWeight, Sparse24Weight, Int4Weight, Fp8Weight)');
  return s;
}

export abstract class Weight {
  readonly shape: readonly [number, number];
  /** The dtype of the values (dense, 2:4); float32 for quantized weights, whose toDense() is float32. */
  readonly dtype: FloatDType;
  abstract readonly format: WeightFormat;

  /** Made by each format's factory, from its canonical arrays, placed on `backend`. */
  protected constructor(params: WeightParams, dtype: FloatDType, canonical: CanonicalArrays, backend: Backend = cpuBackend) {
    this.shape = Object.freeze([params.N, params.K]) as readonly [number, number];
    this.dtype = dtype;
    const placements = new Map<BackendName, Placement>([[backend.name, backend.place(params, canonical)]]);
    STATE.set(this, { params, placements, readers: 0, writer: false, deviceOnly: false, disposed: false });
  }

  /**
   * Makes the weight device-only: placed on CUDA device `device` (default 0) in its kernel's
   * layout, and its host copy dropped (for servers that cannot hold every weight twice). Moves it
   * when it is on another device. Needs the CUDA backend and a format it has a kernel for
   * (ERR_NOT_SUPPORTED otherwise, with the weight unchanged). toDense() and canonical() still
   * work (read back from the device); ops whose kernel runs on the CPU (cg.backend().routes)
   * refuse a device-only weight with ERR_NOT_SUPPORTED rather than make a host copy again.
   * Returns the weight.
   */
  toDevice(options?: { device?: number }): this {
    const s = liveState(this);
    const o = readOptions(options, 'options', ['device'] as const);
    checkReadable(this);
    const device = checkDevice(o.device);
    const current = s.placements.get('cuda') as DevicePlacement | undefined;
    if (!current || current.device !== device) {
      const canonical = allocCanonical(s.params);
      readCanonical(this, canonical);
      const p = cudaBackend.place(s.params, canonical, device);
      if (current) cudaBackend.release(current);
      s.placements.set('cuda', p);
    }
    for (const [name, p] of [...s.placements]) {
      if (name === 'cuda') continue;
      BACKENDS[name]?.release(p);
      s.placements.delete(name);
    }
    s.deviceOnly = true;
    return this;
  }

  /** The CUDA device of the weight's device placement, or null when it has none. */
  get device(): number | null {
    const p = STATE.get(this)?.placements.get('cuda') as DevicePlacement | undefined;
    return p ? p.device : null;
  }

  /**
   * Frees every placement now (device memory at once; calls already in flight keep what they
   * use until they finish). Idempotent; any later use throws ERR_DISPOSED. `using w = ...` calls
   * it; a weight that is garbage-collected frees its device memory too (a finalizer).
   */
  dispose(): void {
    const s = stateOf(this);
    if (s.disposed) return;
    s.disposed = true;
    for (const [name, p] of s.placements) BACKENDS[name]?.release(p);
    s.placements.clear();
  }

  get disposed(): boolean {
    return stateOf(this).disposed;
  }

  /** dispose(): for `using w = cg.DenseWeight.from(...)` (defined where the runtime has Symbol.dispose). */
  declare [Symbol.dispose]: () => void;

  /** Bytes this weight holds, all its placements together. */
  get byteLength(): number {
    let n = 0;
    for (const p of stateOf(this).placements.values()) n += p.byteLength;
    return n;
  }

  /** The weight as a dense [N, K] row-major array (its dtype; float32, dequantized, for INT4 and FP8). */
  toDense(): FloatArray {
    checkReadable(this);
    const s = liveState(this);
    const [backend, p] = anyPlacement(s);
    const out = allocFloat(s.params.format === 'int4' || s.params.format === 'fp8' ? 'float32' : this.dtype, s.params.N * s.params.K);
    backend.toDense(s.params, p, out);
    return out;
  }
}

// `using w = cg.DenseWeight.from(...)` (TypeScript 5.2+, Node with Symbol.dispose).
const symbolDispose = (Symbol as { dispose?: symbol }).dispose;
if (symbolDispose) Object.defineProperty(Weight.prototype, symbolDispose, { value: Weight.prototype.dispose, writable: true, configurable: true });

/** The state of a weight not disposed (ERR_DISPOSED otherwise). */
function liveState(w: unknown): WeightState {
  const s = stateOf(w);
  if (s.disposed) throw new CgError('ERR_DISPOSED', 'this weight was disposed');
  return s;
}

function anyPlacement(s: WeightState): [Backend, Placement] {
  for (const [name, p] of s.placements) {
    const b = BACKENDS[name];
    if (b) return [b, p];
  }
  throw new CgError('ERR_NATIVE', 'the weight has no placement a backend of this process can read');
}

export function isWeight(w: unknown): w is Weight {
  return typeof w === 'object' && w !== null && STATE.has(w);
}

/**
 * @internal The canonical parameters of a weight (ERR_WEIGHT for anything this library did not
 * make, ERR_DISPOSED for a disposed one): every op reads them first.
 */
export function paramsOf(w: unknown): WeightParams {
  return liveState(w).params;
}

/** @internal The canonical arrays, read back through any placement, into `out`. */
export function readCanonical(w: Weight, out: CanonicalArrays): void {
  checkReadable(w);
  const s = liveState(w);
  const [backend, p] = anyPlacement(s);
  backend.canonical(s.params, p, out);
}

/** Fresh arrays for the canonical format of a weight with these parameters. */
function allocCanonical(p: WeightParams): CanonicalArrays {
  const { N, K } = p;
  switch (p.format) {
    case 'dense': return { values: allocFloat(p.dtype, N * K) };
    case '2:4': return { values: allocFloat(p.dtype, N * (K / 2)), meta: new Uint8Array(N * Math.ceil(K / 8)) };
    case 'int4': {
      const G = K / p.group;
      return {
        qweight: new Uint8Array(N * (K / 2)),
        scales: p.scaleDtype === 'float16' ? new Uint16Array(N * G) : new Float32Array(N * G),
        zeros: p.symmetric ? null : new Uint8Array(N * G),
      };
    }
    case 'fp8': return { codes: new Uint8Array(N * K), scales: new Float32Array(Math.ceil(N / p.bn) * Math.ceil(K / p.bk)) };
  }
}

/**
 * @internal The weight's placement on `backend`, made from its canonical arrays if it has none
 * yet (on `device`, for CUDA). A CUDA placement on another device is ERR_DEVICE (the weight is
 * not copied between devices behind the user's back); a CPU placement of a device-only weight is
 * ERR_NOT_SUPPORTED (its host copy is not made again).
 */
export function placementOn(w: Weight, backend: Backend, device = 0): Placement {
  const s = liveState(w);
  let p = s.placements.get(backend.name);
  if (p && backend.name === 'cuda' && (p as DevicePlacement).device !== device) {
    throw new CgError('ERR_DEVICE', `the weight is on CUDA device ${(p as DevicePlacement).device} and this call runs on device ${device}: move it with w.toDevice({ device: ${device} })`);
  }
  if (!p) {
    if (backend.name === 'cpu' && s.deviceOnly) {
      throw new CgError('ERR_NOT_SUPPORTED', 'this weight is device-only (toDevice()) and the operation runs on the CPU kernels on this backend (cg.backend().routes): keep a host copy (do not call toDevice) to use it');
    }
    const canonical = allocCanonical(s.params);
    readCanonical(w, canonical);
    p = backend.place(s.params, canonical, device);
    s.placements.set(backend.name, p);
  }
  return p;
}

/** @internal The device a CUDA call with this weight runs on when nothing else names one: the weight's, or 0. */
export function deviceOf(w: Weight): number {
  const p = liveState(w).placements.get('cuda') as DevicePlacement | undefined;
  return p ? p.device : 0;
}

/**
 * @internal After an update of `backend`'s placement, the weight's other placements hold the old
 * values: they are dropped, and made again from the updated one when next needed.
 */
export function keepOnlyPlacement(w: Weight, backend: Backend): void {
  const s = stateOf(w);
  for (const [name, p] of [...s.placements]) {
    if (name === backend.name) continue;
    BACKENDS[name]?.release(p);
    s.placements.delete(name);
  }
}

// ---- which calls use a weight now -------------------------------------------------------------
//
// A weight read by async calls in flight must not be updated meanwhile, and one being updated by
// lowRankUpdateAsync must not be read: either would compute on half-updated numbers. Such calls
// get ERR_BUSY instead.

/** @internal Throws ERR_BUSY when w is being updated. */
export function checkReadable(w: Weight): void {
  if (stateOf(w).writer) throw new CgError('ERR_BUSY', 'this weight is being updated by lowRankUpdateAsync; wait for it to finish');
}

/** @internal Throws ERR_BUSY when w is read or written by calls in flight. */
export function checkWritable(w: Weight): void {
  const s = stateOf(w);
  if (s.readers > 0 || s.writer) throw new CgError('ERR_BUSY', 'this weight is in use by calls in flight; wait for them before updating it');
}

/** @internal Marks w as read (or written) by an async call until `done` settles. */
export async function useDuring<T>(w: Weight, mode: 'read' | 'write', done: () => Promise<T>): Promise<T> {
  const s = stateOf(w);
  if (mode === 'read') s.readers++;
  else s.writer = true;
  try {
    return await done();
  } finally {
    if (mode === 'read') s.readers--;
    else s.writer = false;
  }
}
