/**
 * The CUDA backend, on a GPU or on the simulated device (cuda-sim): placements in device memory
 * (native/cuda/runtime/), kernels launched on the device's stream, in order with its copies. It
 * runs what the routing table sends it, one DeviceFormat per weight format (its device layout
 * and its kernel): dense (cuda-dense.ts: float16/bfloat16 on the tensor-core GEMM, float32 on the
 * CUDA cores), 2:4 float16/bfloat16 (cuda-sparse24.ts: sparse tensor cores) and INT4 (cuda-int4.ts:
 * W4A16, INT4 dequantized in registers); everything else stays on the CPU kernels, and
 * cg.backend().routes says so.
 *
 * Host arrays in give host arrays out: x (converted to the weight's dtype when it is in another
 * one: documented; padded with zero columns to the kernel's row width) and the bias are
 * uploaded, y downloaded into `out`. Device tensors (lib/tensor.ts) stay on the device.
 */
import { CgError, CgTypeError, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { NativeLoraArgs } from '../native/cpu';
import type { DeviceHandle } from '../native/cuda';
import { FLOAT_DTYPES, FloatDType } from '../dtype';
import type { Backend, LinearPlan, Placement, UpdatePlan } from './backend';
import { denseFormat } from './cuda-dense';
import { sparse24Format } from './cuda-sparse24';
import { int4Format } from './cuda-int4';
import { DeviceFormat, DevicePlacement, abandonCall, asWeightDtype, deviceAddon, padColumns, uploaderFor } from './cuda-common';
import { prepareLora } from './cuda-lora';

export type { DevicePlacement } from './cuda-common';
export { checkDevice, deviceAddon, upload, uploadAsync } from './cuda-common';

/** The weight's format on the device; ERR_NOT_SUPPORTED for one the CUDA backend has no kernel for yet. */
function formatOf(params: WeightParams): DeviceFormat {
  if (params.format === 'dense') return denseFormat;
  if (params.format === '2:4' && params.dtype !== 'float32') return sparse24Format;
  if (params.format === 'int4') return int4Format;
  const what = params.format === '2:4' ? '2:4 float32' : params.format;
  throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: the CUDA backend has no ${what} kernel yet (its linear runs on the CPU kernels: keep the weight on the host)`);
}

/** The dtype the weight's kernel takes x in. */
function weightDtype(params: WeightParams): FloatDType {
  return 'dtype' in params ? params.dtype : 'float32';
}

/** Throws ERR_K_ALIGNMENT when a device tensor x cannot be used as it is with this weight's kernel. */
export function checkDeviceK(params: WeightParams): void {
  formatOf(params).checkTensorK(params);
}

/** Throws ERR_DTYPE when a device tensor x of `dtype` is not what this weight's kernel takes. */
export function checkDeviceDtype(params: WeightParams, dtype: FloatDType): void {
  const f = formatOf(params);
  if (f.activations) {
    f.activations(params, { dtype });
    return;
  }
  const wDtype = weightDtype(params);
  if (dtype !== wDtype) throw new CgTypeError('ERR_DTYPE', `x is ${dtype} but the weight is ${wDtype}: the GEMM takes both in one dtype`);
}

/**
 * The device buffers of one host-array call, made and freed around it (the LoRA term's too).
 * Async: x and the bias go up through page-locked staging (uploadAsync) and `queued` holds those
 * copies and the LoRA term, so that the JS thread never waits for the device.
 */
function hostCall(params: WeightParams, p: DevicePlacement, plan: LinearPlan, async: boolean) {
  const f = formatOf(params);
  const a = f.activations ? f.activations(params, { dtype: plan.xDtype, host: plan.x }) : null;
  const dtype = a ? a.dtype : weightDtype(params);
  const xs = a ? a.host! : asWeightDtype(plan.x, plan.xDtype, dtype);
  const d = deviceAddon();
  const handles: DeviceHandle[] = [];
  const queued: Array<Promise<unknown>> = [];
  const free = () => {
    for (const h of handles) d.deviceFree(h);
  };
  const put = uploaderFor(d, p.device, async, handles, queued);
  try {
    const xK = f.hostK(params, p);
    const x = put(padColumns(xs, FLOAT_DTYPES[dtype].bytes, plan.M, params.K, xK));
    const bias = plan.bias ? put(plan.bias) : null;
    const out = withNativeErrors(() => d.deviceAlloc({ device: p.device, bytes: plan.out.byteLength }));
    handles.push(out);
    // The LoRA shrink reads x as the caller passed it: the x just uploaded when that is what it
    // holds (not converted, not padded), else its own copy of the caller's x.
    const xShrink = xs === plan.x && xK === params.K ? { device: x } : { host: plan.x };
    const lora = plan.lora ? prepareLora(d, p.device, plan.lora, xShrink, plan.xDtype, plan.M, params.N, params.K, async) : null;
    if (lora) handles.push(...lora.temporaries);
    if (lora?.done) queued.push(lora.done);
    return { d, f, out, free, queued, call: { x, xK, bias, out, M: plan.M, outDtype: plan.outDtype, xDtype: dtype, lora: lora?.arg } };
  } catch (e) {
    abandonCall(d, handles, queued);
    throw e;
  }
}

/**
 * The kernel on device memory (a device tensor x of xDtype, K wide: checkDeviceDtype and
 * checkDeviceK first), with the fused LoRA term when `lora` is given (its T from the same
 * device x): waits for it, or (async) returns a Promise settled when it is done. The LoRA
 * temporaries are freed once the kernel is done (or has failed).
 */
export function runOnDevice(
  params: WeightParams, p: Placement, x: DeviceHandle, bias: DeviceHandle | null, out: DeviceHandle, M: number, outDtype: FloatDType, async: boolean,
  xDtype: FloatDType, lora: NativeLoraArgs | null = null,
): void | Promise<void> {
  const d = deviceAddon();
  const dp = p as DevicePlacement;
  const l = lora ? prepareLora(d, dp.device, lora, { device: x }, xDtype, M, params.N, params.K, async) : null;
  const free = () => {
    for (const h of l?.temporaries ?? []) d.deviceFree(h);
  };
  const call = { x, xK: params.K, bias, out, M, outDtype, xDtype, lora: l?.arg };
  if (!async) {
    try {
      formatOf(params).run(d, params, dp, call, false);
    } finally {
      free();
    }
    return;
  }
  return settleAfterQueued(l?.done ? [l.done] : [], () => [formatOf(params).run(d, params, dp, call, true) as Promise<void>], free);
}

/**
 * Starts an async call's work (`start`: its promises, queued on one stream after `queued`, the
 * work already queued for it: uploads, the LoRA term's T) and settles when all of it has: `free`
 * runs then, and the first failure is thrown. When `start` throws before queuing anything, the
 * queued work may still be in flight: its temporaries are freed after it, never under it, and
 * the error is thrown at once.
 */
function settleAfterQueued(queued: Array<Promise<unknown>>, start: () => Array<Promise<unknown>>, free: () => void): Promise<void> {
  for (const q of queued) q.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
  let started: Array<Promise<unknown>>;
  try {
    started = start();
  } catch (e) {
    void Promise.allSettled(queued).then(free);
    throw e;
  }
  return Promise.allSettled([...queued.map((q) => withNativeErrorsAsync(() => q)), ...started]).then((settled) => {
    free();
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
  });
}

export const cudaBackend: Backend = {
  name: 'cuda',
  place(params: WeightParams, canonical: CanonicalArrays, device = 0): DevicePlacement {
    return formatOf(params).place(params, canonical, device);
  },
  release(p: Placement) {
    const d = deviceAddon();
    for (const h of (p as DevicePlacement).handles) d.deviceFree(h); // a second free is a no-op
  },
  canonical(params, p, out) {
    formatOf(params).canonical(params, p as DevicePlacement, out);
  },
  toDense(params, p, out) {
    formatOf(params).toDense(params, p as DevicePlacement, out);
  },
  linear(params, p, plan) {
    const c = hostCall(params, p as DevicePlacement, plan, false);
    try {
      c.f.run(c.d, params, p as DevicePlacement, c.call, false);
      withNativeErrors(() => c.d.copyToHost({ handle: c.out, dst: plan.out }));
    } finally {
      c.free();
    }
  },
  async linearAsync(params, p, plan) {
    const c = hostCall(params, p as DevicePlacement, plan, true);
    // One stream: the kernel runs after the uploads (and the LoRA term's T), the download after the kernel.
    // Nothing here waits for the device: the copies go through page-locked staging.
    await settleAfterQueued(c.queued, () => [
      c.f.run(c.d, params, p as DevicePlacement, c.call, true) as Promise<void>,
      withNativeErrorsAsync(() => c.d.copyToHostAsync({ handle: c.out, dst: plan.out })),
    ], c.free);
  },
  lowRankUpdate(params: WeightParams, p: Placement, plan: UpdatePlan): number {
    const u = updateCall(params, p as DevicePlacement, plan, false);
    try {
      u.f.update!(u.d, params, p as DevicePlacement, u.factors, false);
    } finally {
      u.free();
    }
    return u.bytes;
  },
  async lowRankUpdateAsync(params: WeightParams, p: Placement, plan: UpdatePlan): Promise<number> {
    const u = updateCall(params, p as DevicePlacement, plan, true);
    await settleAfterQueued(u.queued, () => [u.f.update!(u.d, params, p as DevicePlacement, u.factors, true) as Promise<void>], u.free);
    return u.bytes;
  },
};

/**
 * An update's factors in device memory (float32: 16-bit ones widened exactly), freed by free()
 * once the kernel is done; bytes is that device memory, the update's only scratch (the kernel
 * keeps each element's increment in registers: B·A is never made). Async: uploaded through
 * page-locked staging (`queued`: those copies), so the JS thread never waits for the device.
 */
function updateCall(params: WeightParams, p: DevicePlacement, plan: UpdatePlan, async: boolean) {
  const f = formatOf(params);
  if (!f.update) throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: the CUDA backend has no lowRankUpdate kernel for a ${params.format} weight (the routing table runs it on the CPU kernels)`);
  const d = deviceAddon();
  const a = asWeightDtype(plan.a, plan.abDtype, 'float32');
  const b = asWeightDtype(plan.b, plan.abDtype, 'float32');
  const handles: DeviceHandle[] = [];
  const queued: Array<Promise<unknown>> = [];
  const put = uploaderFor(d, p.device, async, handles, queued);
  try {
    put(a);
    put(b);
  } catch (e) {
    abandonCall(d, handles, queued);
    throw e;
  }
  const free = () => {
    for (const h of handles) d.deviceFree(h);
  };
  return { f, d, free, queued, bytes: a.byteLength + b.byteLength, factors: { a: handles[0], b: handles[1], r: plan.r, alpha: plan.alpha, reprune: plan.reprune } };
}
