/**
 * cg.Tensor: activations in device memory, so that a chain of layers never round-trips through
 * the host. Made by Tensor.fromHost (a copy), read back by toHost() (a Promise) or toHostSync(),
 * freed by dispose() (idempotent; `using t = ...` calls it; a finalizer frees what a user forgets).
 * `cg.linear(tensor, tensor.shape, w)` returns a device tensor. Device tensors need the CUDA
 * backend (a GPU, or the simulated device: COMPRESSED_GEMM_BACKEND=cuda-sim).
 */
import { checkDevice, deviceAddon } from './backends/cuda';
import { selectBackend } from './backends/select';
import { FLOAT_DTYPES, FloatArray, FloatDType, allocFloat } from './dtype';
import { CgError, CgRangeError, CgTypeError, fromNative, withNativeErrors } from './errors';
import type { DeviceHandle } from './native/cuda';
import { checkFloatArray, checkShape2, readOptions } from './validate';

interface TensorState {
  handle: DeviceHandle | null; // null once disposed
}

const STATE = new WeakMap<object, TensorState>();

function stateOf(t: unknown): TensorState {
  const s = typeof t === 'object' && t !== null ? STATE.get(t) : undefined;
  if (!s) throw new CgTypeError('ERR_INVALID_ARG', 'not a Tensor made by compressed-gemm');
  return s;
}

export class Tensor {
  readonly shape: readonly [number, number];
  readonly dtype: FloatDType;
  /** The CUDA device index. */
  readonly device: number;

  private constructor(shape: [number, number], dtype: FloatDType, device: number, handle: DeviceHandle) {
    this.shape = Object.freeze([shape[0], shape[1]]) as readonly [number, number];
    this.dtype = dtype;
    this.device = device;
    STATE.set(this, { handle });
    Object.freeze(this);
  }

  /** A device copy of a row-major host array (16-bit dtypes as raw bits in a Uint16Array). */
  static fromHost(data: FloatArray, shape: [number, number], opts?: { dtype?: FloatDType; device?: number }): Tensor {
    const [rows, cols] = checkShape2(shape, ['rows', 'cols']);
    const o = readOptions(opts, 'options', ['dtype', 'device'] as const);
    const { array, dtype } = checkFloatArray(data, o.dtype, rows * cols, 'data');
    const d = deviceAddon();
    const device = checkDevice(o.device);
    let handle: DeviceHandle;
    try {
      handle = d.deviceAlloc({ device, bytes: array.byteLength });
      d.copyToDevice({ handle, src: array });
    } catch (e) {
      throw fromNative(e);
    }
    return new Tensor([rows, cols], dtype, device, handle);
  }

  /** @internal A tensor over new device memory (its contents are written by the caller). */
  static alloc(shape: [number, number], dtype: FloatDType, device: number): Tensor {
    try {
      const handle = deviceAddon().deviceAlloc({ device, bytes: shape[0] * shape[1] * FLOAT_DTYPES[dtype].bytes });
      return new Tensor(shape, dtype, device, handle);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** The contents, copied to a new host array once the device's preceding work is done. */
  async toHost(): Promise<FloatArray> {
    const handle = handleOf(this);
    const dst = allocFloat(this.dtype, this.shape[0] * this.shape[1]);
    try {
      await deviceAddon().copyToHostAsync({ handle, dst });
    } catch (e) {
      throw fromNative(e);
    }
    return dst;
  }

  /** toHost(), waiting on this thread. */
  toHostSync(): FloatArray {
    const handle = handleOf(this);
    const dst = allocFloat(this.dtype, this.shape[0] * this.shape[1]);
    try {
      deviceAddon().copyToHost({ handle, dst });
    } catch (e) {
      throw fromNative(e);
    }
    return dst;
  }

  /** Frees the device memory now (work already queued on it finishes first). Idempotent. */
  dispose(): void {
    const s = stateOf(this);
    if (s.handle) {
      const h = s.handle;
      s.handle = null;
      deviceAddon().deviceFree(h);
    }
  }

  get disposed(): boolean {
    return stateOf(this).handle === null;
  }

  /** dispose(): for `using t = cg.Tensor.fromHost(...)` (defined where the runtime has Symbol.dispose). */
  declare [Symbol.dispose]: () => void;
}

declare global {
  // TypeScript < 5.2's lib, and consumers without esnext.disposable, lack it (as @types/node polyfills it).
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

// `using t = cg.Tensor.fromHost(...)` (TypeScript 5.2+, Node with Symbol.dispose).
const dispose = (Symbol as { dispose?: symbol }).dispose;
if (dispose) Object.defineProperty(Tensor.prototype, dispose, { value: Tensor.prototype.dispose, writable: true, configurable: true });

/** @internal The device memory of a live tensor (ERR_DISPOSED after dispose()). */
export function handleOf(t: unknown): DeviceHandle {
  const s = stateOf(t);
  if (!s.handle) throw new CgError('ERR_DISPOSED', 'this Tensor was disposed');
  return s.handle;
}

export function isTensor(t: unknown): t is Tensor {
  return typeof t === 'object' && t !== null && STATE.has(t);
}

/** The device side of the library. */
export const cuda = {
  /** The CUDA devices this process sees (simulated ones on cuda-sim); an empty list without the CUDA backend. */
  devices(): Array<{ device: number; name: string; sm: number; totalMemory: number; multiprocessors: number; simulated: boolean }> {
    const a = selectBackend().deviceAddon;
    return a ? a.devices().map((d) => ({ device: d.device, name: d.name, sm: d.sm, totalMemory: d.totalMemory, multiprocessors: d.multiprocessors, simulated: !!d.simulated })) : [];
  },
  /**
   * Device memory the library holds, per device that it has used: `bytes` in use now (weights
   * placed there, tensors, a call's temporaries, as asked) and `peakBytes` the most at once so
   * far; `cachedBytes` freed blocks kept for reuse, so that a call's temporaries cost no
   * cudaMalloc and no cudaFree (which waits for the whole GPU); `reservedBytes` all of it (in-use
   * blocks rounded to their size class, plus the cache): what the GPU sees this process hold.
   * An empty list without the CUDA backend.
   */
  memory(): Array<{ device: number; bytes: number; peakBytes: number; cachedBytes: number; reservedBytes: number }> {
    const a = selectBackend().deviceAddon;
    return a ? a.memory().devices.map((d) => ({ ...d })) : [];
  },
  /**
   * Frees the cached blocks (cg.cuda.memory()'s cachedBytes) of `device`, or of every device when
   * none is given, and returns how many bytes that gave back to the GPU. Memory in use is not
   * touched. The cache holds at most min(device memory / 8, 2 GiB) per device
   * (COMPRESSED_GEMM_CUDA_CACHE_BYTES overrides it; 0 turns it off) and is emptied by itself
   * when an allocation would not fit otherwise. 0 without the CUDA backend.
   */
  emptyCache(options?: { device?: number }): number {
    const a = selectBackend().deviceAddon;
    const o = readOptions(options, 'emptyCache', ['device']) as { device?: unknown };
    if (!a) return 0;
    const device = o.device === undefined ? undefined : checkDevice(o.device);
    return withNativeErrors(() => a.releaseCache(device === undefined ? {} : { device }));
  },
};
