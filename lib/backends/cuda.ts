/**
 * The CUDA backend, on a GPU or on the simulated device (cuda-sim): placements in device memory
 * (native/cuda/runtime/), kernels launched on the device's stream, in order with its copies. It
 * runs what the routing table sends it — today dense weights: float16/bfloat16 on the tensor-core
 * GEMM of native/cuda/gemm_dense.cuh, float32 on its CUDA-core twin (gemm_dense_f32.cuh, float32
 * arithmetic); everything else stays on the CPU kernels, and cg.backend().routes says so.
 *
 * Host arrays in give host arrays out: x (rounded to the weight's 16-bit dtype when it is in
 * another one: documented) and the bias are uploaded, y downloaded into `out`. Device tensors
 * (lib/tensor.ts) stay on the device.
 */
import { FLOAT_DTYPES, FloatDType, allocFloat } from '../dtype';
import { CgError, CgRangeError, CgTypeError, show, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle } from '../native/cuda';
import type { Backend, LinearPlan, Placement, UpdatePlan } from './backend';
import { selectBackend } from './select';
import { int4 } from './cuda-int4';

/**
 * A weight in device memory: dense, [N, kp] row-major in its dtype, where kp is K rounded up to
 * the kernel's 16-byte rule (K itself when it already meets it; the padding columns are zeros,
 * so they add nothing, and never leave the placement).
 */
export interface DevicePlacement extends Placement {
  readonly backend: 'cuda';
  readonly device: number;
  readonly handle: DeviceHandle;
  readonly kp: number;
}

/** The device runtime of this process's CUDA backend. */
export function deviceAddon(): DeviceAddon {
  const a = selectBackend().deviceAddon;
  if (!a) throw new CgError('ERR_NOT_SUPPORTED', 'compressed-gemm: device memory needs the CUDA backend (COMPRESSED_GEMM_BACKEND=cuda or cuda-sim)');
  return a;
}

/** A dense weight's parameters; ERR_NOT_SUPPORTED for a format the CUDA backend has no kernel for yet. */
function denseParams(params: WeightParams): { N: number; K: number; dtype: FloatDType } {
  if (params.format !== 'dense') {
    throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: the CUDA backend has no ${params.format} kernel yet (its linear runs on the CPU kernels: keep the weight on the host)`);
  }
  return { N: params.N, K: params.K, dtype: params.dtype };
}

/** The dense kernels copy rows as 16-byte chunks: K a multiple of 8 for 16-bit values, of 4 for float32. */
function kStep(dtype: FloatDType): number {
  return 16 / FLOAT_DTYPES[dtype].bytes;
}

/**
 * Device tensors are used as they are, so their K must meet the kernel's rule (ERR_K_ALIGNMENT
 * otherwise, before anything is allocated). Host arrays have no such rule: x and the weight are
 * padded with zero columns on upload.
 */
export function checkDeviceK(params: WeightParams): void {
  const { K, dtype } = denseParams(params);
  const step = kStep(dtype);
  if (K % step !== 0) {
    throw new CgRangeError('ERR_K_ALIGNMENT', `a device tensor x with a ${dtype} weight needs K to be a multiple of ${step} (the kernel copies rows as 16-byte chunks), got K = ${K}: pad K, or pass host arrays (padded for you)`);
  }
}

/** rows x K row-major values as rows x kp, zero columns added (the array itself when kp = K). */
function padColumns(src: ArrayBufferView, dtype: FloatDType, rows: number, K: number, kp: number): ArrayBufferView {
  if (kp === K) return src;
  const bytes = FLOAT_DTYPES[dtype].bytes;
  const from = new Uint8Array(src.buffer, src.byteOffset, rows * K * bytes);
  const to = new Uint8Array(rows * kp * bytes);
  for (let r = 0; r < rows; ++r) to.set(from.subarray(r * K * bytes, (r + 1) * K * bytes), r * kp * bytes);
  return to;
}

/** The placement's [N, kp] values read back as [N, K] into `dst`. */
function download(p: DevicePlacement, dtype: FloatDType, N: number, K: number, dst: ArrayBufferView): void {
  const d = deviceAddon();
  if (p.kp === K) {
    withNativeErrors(() => d.copyToHost({ handle: p.handle, dst }));
    return;
  }
  const bytes = FLOAT_DTYPES[dtype].bytes;
  const padded = new Uint8Array(N * p.kp * bytes);
  withNativeErrors(() => d.copyToHost({ handle: p.handle, dst: padded }));
  const to = new Uint8Array(dst.buffer, dst.byteOffset, N * K * bytes);
  for (let r = 0; r < N; ++r) to.set(padded.subarray(r * p.kp * bytes, r * p.kp * bytes + K * bytes), r * K * bytes);
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

/** x in the weight's dtype (a copy when it is in another dtype: rounded to nearest even, or widened exactly). */
function asWeightDtype(x: ArrayBufferView, xDtype: FloatDType, dtype: FloatDType): ArrayBufferView {
  if (xDtype === dtype) return x;
  const out = allocFloat(dtype, x.byteLength / FLOAT_DTYPES[xDtype].bytes);
  selectBackend().cpuAddon.convert({ src: x, srcDtype: xDtype, dst: out, dstDtype: dtype });
  return out;
}

/** The device buffers of one host-array call, made and freed around it. */
function hostCall(params: WeightParams, p: Placement, plan: LinearPlan) {
  const { N, K, dtype } = denseParams(params);
  const d = deviceAddon();
  const dp = p as DevicePlacement;
  const handles: DeviceHandle[] = [];
  const free = () => {
    for (const h of handles) d.deviceFree(h);
  };
  try {
    const x = upload(d, dp.device, padColumns(asWeightDtype(plan.x, plan.xDtype, dtype), dtype, plan.M, K, dp.kp));
    handles.push(x);
    const bias = plan.bias ? upload(d, dp.device, plan.bias) : null;
    if (bias) handles.push(bias);
    const out = withNativeErrors(() => d.deviceAlloc({ device: dp.device, bytes: plan.out.byteLength }));
    handles.push(out);
    return { d, out, free, args: { x, w: dp.handle, bias, out, M: plan.M, N, K: dp.kp, dtype, outDtype: plan.outDtype } };
  } catch (e) {
    free();
    throw e;
  }
}

export const cudaBackend: Backend = {
  name: 'cuda',
  place(params: WeightParams, canonical: CanonicalArrays, device = 0): DevicePlacement {
    if (params.format === 'int4') return int4.place(params, canonical, device);
    const { N, K, dtype } = denseParams(params);
    const step = kStep(dtype);
    const kp = Math.ceil(K / step) * step;
    const values = padColumns(canonical.values!, dtype, N, K, kp);
    const handle = upload(deviceAddon(), device, values);
    return Object.freeze({ backend: 'cuda' as const, device, handle, kp, byteLength: values.byteLength });
  },
  release(p: Placement) {
    deviceAddon().deviceFree((p as DevicePlacement).handle); // a second free is a no-op
  },
  canonical(params, p, out) {
    if (params.format === 'int4') return int4.canonical(params, p, out);
    const { N, K, dtype } = denseParams(params);
    download(p as DevicePlacement, dtype, N, K, out.values!);
  },
  toDense(params, p, out) {
    if (params.format === 'int4') return int4.toDense(params, p, out);
    const { N, K, dtype } = denseParams(params);
    download(p as DevicePlacement, dtype, N, K, out);
  },
  linear(params, p, plan) {
    if (params.format === 'int4') return int4.linear(params, p, plan);
    const c = hostCall(params, p, plan);
    try {
      withNativeErrors(() => c.d.linearDense(c.args));
      withNativeErrors(() => c.d.copyToHost({ handle: c.out, dst: plan.out }));
    } finally {
      c.free();
    }
  },
  async linearAsync(params, p, plan) {
    if (params.format === 'int4') return int4.linearAsync(params, p, plan);
    const c = hostCall(params, p, plan);
    try {
      // One stream: the kernel runs after the uploads, the download after the kernel.
      const settled = await Promise.allSettled([
        withNativeErrorsAsync(() => c.d.linearDenseAsync(c.args)),
        withNativeErrorsAsync(() => c.d.copyToHostAsync({ handle: c.out, dst: plan.out })),
      ]);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
    } finally {
      c.free();
    }
  },
  lowRankUpdate(params: WeightParams, _p: Placement, _plan: UpdatePlan): number {
    throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: lowRankUpdate of a ${params.format} weight is not supported on the CUDA backend yet`);
  },
  async lowRankUpdateAsync(params: WeightParams, p: Placement, plan: UpdatePlan): Promise<number> {
    return cudaBackend.lowRankUpdate(params, p, plan);
  },
};
