/**
 * What every weight format of the CUDA backend shares (lib/backends/cuda.ts dispatches to one
 * DeviceFormat per format: cuda-dense.ts, cuda-sparse24.ts, cuda-int4.ts): the device runtime, device memory
 * made from host arrays, the padding of rows to a kernel's width, and the placement's shape.
 */
import { FLOAT_DTYPES, FloatDType, allocFloat } from '../dtype';
import { CgError, CgRangeError, CgTypeError, show, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle, DeviceLoraArg } from '../native/cuda';
import type { Placement } from './backend';
import { selectBackend } from './select';

/**
 * A weight in device memory, in its format's device layout (each format adds its fields). Every
 * allocation it holds is in `handles`, freed by release().
 */
export interface DevicePlacement extends Placement {
  readonly backend: 'cuda';
  readonly device: number;
  readonly handles: readonly DeviceHandle[];
}

/** One kernel call on device memory: x already in the weight's dtype, `xK` values a row. */
export interface KernelCall {
  x: DeviceHandle;
  xK: number;
  bias: DeviceHandle | null;
  out: DeviceHandle;
  M: number;
  outDtype: FloatDType;
  /** x's dtype: the weight's, or what the format's activations() chose. */
  xDtype: FloatDType;
  /** The fused LoRA term (lib/backends/cuda-lora.ts), when the call has adapters. */
  lora?: DeviceLoraArg;
}

/** What the CUDA backend does with one weight format. */
export interface DeviceFormat {
  /** The device placement, made from the canonical arrays (its layout made here). */
  place(params: WeightParams, canonical: CanonicalArrays, device: number): DevicePlacement;
  /** The canonical arrays, read back from the placement. */
  canonical(params: WeightParams, p: DevicePlacement, out: CanonicalArrays): void;
  /** The dense [N, K] matrix in the weight's dtype, from the placement. */
  toDense(params: WeightParams, p: DevicePlacement, out: ArrayBufferView): void;
  /** The row length a host x is padded to before upload (zeros past K). */
  hostK(params: WeightParams, p: DevicePlacement): number;
  /** Throws ERR_K_ALIGNMENT when a device tensor's K (used as it is) does not meet the kernel's rule. */
  checkTensorK(params: WeightParams): void;
  /**
   * Formats whose kernel takes x in a dtype of its own (INT4: float16 or bfloat16, whatever the
   * weight): a host x converted to it (`host` given: returns the converted copy), or a device
   * tensor's dtype checked (ERR_DTYPE). Absent: x goes in the weight's dtype.
   */
  activations?(params: WeightParams, x: { dtype: FloatDType; host?: ArrayBufferView }): { dtype: FloatDType; host?: ArrayBufferView };
  /** Enqueues the kernel on the placement's device: waits for it (sync), or returns a Promise settled when it is done (async). */
  run(d: DeviceAddon, params: WeightParams, p: DevicePlacement, call: KernelCall, async: boolean): void | Promise<void>;
  /**
   * W <- W + alpha B A in the placement, on its device (A [r, K] and B [N, r] already there, as
   * float32): as run(), sync or async. Absent: the format's updates run on the CPU kernels.
   */
  update?(d: DeviceAddon, params: WeightParams, p: DevicePlacement, f: DeviceFactors, async: boolean): void | Promise<void>;
}

/** The factors of an update in device memory, and how they are applied. */
export interface DeviceFactors {
  a: DeviceHandle;
  b: DeviceHandle;
  r: number;
  alpha: number;
  reprune: boolean;
}

/** The device runtime of this process's CUDA backend. */
export function deviceAddon(): DeviceAddon {
  const a = selectBackend().deviceAddon;
  if (!a) throw new CgError('ERR_NOT_SUPPORTED', 'compressed-gemm: device memory needs the CUDA backend (COMPRESSED_GEMM_BACKEND=cuda or cuda-sim)');
  return a;
}

/** A `device` option: an integer index of a device this process sees (default 0). */
export function checkDevice(device: unknown): number {
  if (device === undefined) return 0;
  if (typeof device !== 'number' || !Number.isInteger(device)) throw new CgTypeError('ERR_INVALID_ARG', `device must be an integer, got ${show(device)}`);
  const count = deviceAddon().devices().length;
  if (device < 0 || device >= count) {
    throw new CgRangeError('ERR_DEVICE', `device ${device} does not exist: this process sees ${count} CUDA device(s) (0..${count - 1})`);
  }
  return device;
}

/** Device memory holding `src`, on `device`. */
export function upload(d: DeviceAddon, device: number, src: ArrayBufferView): DeviceHandle {
  const h = withNativeErrors(() => d.deviceAlloc({ device, bytes: src.byteLength }));
  try {
    withNativeErrors(() => d.copyToDevice({ handle: h, src }));
  } catch (e) {
    d.deviceFree(h);
    throw e;
  }
  return h;
}

/**
 * Device memory holding `src`, for an async call: `src` is copied into page-locked staging now
 * (reusable at once) and goes up on the device's stream, so the JS thread never waits for the
 * device (a copy from pageable memory would wait for the work queued before it). `done`
 * settles when the copy has run; the kernels queued after it on the stream see the data.
 */
export function uploadAsync(d: DeviceAddon, device: number, src: ArrayBufferView): { handle: DeviceHandle; done: Promise<void> } {
  const handle = withNativeErrors(() => d.deviceAlloc({ device, bytes: src.byteLength }));
  return { handle, done: withNativeErrorsAsync(() => d.copyToDeviceAsync({ handle, src })) }; // never throws: rejects
}

/**
 * The uploads of one call: each array goes up with upload() (sync) or uploadAsync() (async, its
 * copy's promise added to `queued`, the work the call's kernel is queued after), and its handle
 * is added to `handles`, which the call frees when it is done.
 */
export function uploaderFor(d: DeviceAddon, device: number, async: boolean, handles: DeviceHandle[], queued: Array<Promise<unknown>>): (src: ArrayBufferView) => DeviceHandle {
  return (src) => {
    if (!async) {
      const h = upload(d, device, src);
      handles.push(h);
      return h;
    }
    const u = uploadAsync(d, device, src);
    handles.push(u.handle);
    queued.push(u.done);
    return u.handle;
  };
}

/**
 * A call that failed while it was being prepared: frees its handles now (work already queued
 * keeps its device memory until it has run: the native ops hold it) and keeps that work's
 * rejections handled.
 */
export function abandonCall(d: DeviceAddon, handles: DeviceHandle[], queued: Array<Promise<unknown>>): void {
  for (const q of queued) q.catch(() => undefined);
  for (const h of handles) d.deviceFree(h);
}

/** Device memory for each array in turn; what was made is freed if one fails. */
export function uploadAll(d: DeviceAddon, device: number, srcs: ArrayBufferView[]): DeviceHandle[] {
  const made: DeviceHandle[] = [];
  try {
    for (const s of srcs) made.push(upload(d, device, s));
  } catch (e) {
    for (const h of made) d.deviceFree(h);
    throw e;
  }
  return made;
}

/** The row rule of the kernels that copy rows as 16-byte chunks: 8 values of 16 bits, 4 of float32. */
export function kStep(dtype: FloatDType): number {
  return 16 / FLOAT_DTYPES[dtype].bytes;
}

/** rows x K row-major elements of `bytes` bytes as rows x kp, zero columns added (src itself when kp = K). */
export function padColumns(src: ArrayBufferView, bytes: number, rows: number, K: number, kp: number): ArrayBufferView {
  if (kp === K) return src;
  const from = new Uint8Array(src.buffer, src.byteOffset, rows * K * bytes);
  const to = new Uint8Array(rows * kp * bytes);
  for (let r = 0; r < rows; ++r) to.set(from.subarray(r * K * bytes, (r + 1) * K * bytes), r * kp * bytes);
  return to;
}

/** `handle`'s rows x kp elements read back as rows x K into `dst`. */
export function downloadColumns(handle: DeviceHandle, bytes: number, rows: number, K: number, kp: number, dst: ArrayBufferView): void {
  const d = deviceAddon();
  if (kp === K) {
    withNativeErrors(() => d.copyToHost({ handle, dst: new Uint8Array(dst.buffer, dst.byteOffset, rows * K * bytes) }));
    return;
  }
  const padded = new Uint8Array(rows * kp * bytes);
  withNativeErrors(() => d.copyToHost({ handle, dst: padded }));
  const to = new Uint8Array(dst.buffer, dst.byteOffset, rows * K * bytes);
  for (let r = 0; r < rows; ++r) to.set(padded.subarray(r * kp * bytes, r * kp * bytes + K * bytes), r * K * bytes);
}

/** x in the weight's dtype (a copy when it is in another dtype: rounded to nearest even, or widened exactly). */
export function asWeightDtype(x: ArrayBufferView, xDtype: FloatDType, dtype: FloatDType): ArrayBufferView {
  if (xDtype === dtype) return x;
  const out = allocFloat(dtype, x.byteLength / FLOAT_DTYPES[xDtype].bytes);
  selectBackend().cpuAddon.convert({ src: x, srcDtype: xDtype, dst: out, dstDtype: dtype });
  return out;
}
