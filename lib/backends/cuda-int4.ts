/**
 * INT4 weights on the CUDA backend (cuda.ts dispatches here): the W4A16 tensor-core kernel of
 * native/cuda/gemm_int4.cuh, over the device layout of native/cuda/gemm_int4_layout.h (one
 * allocation: codes in Marlin's order, scales as float32, zero points, the act-order permutation),
 * made from the canonical arrays on upload and inverted on the host for canonical()/toDense().
 *
 * Activations: float16 and bfloat16 x run as they are. A float32 host x is rounded to float16 on
 * the host first (the kernel's A operand is 16-bit: documented, as the dense kernel rounds x to
 * its weight's dtype); a value beyond float16's range is refused (pass bfloat16 bits instead)
 * rather than turned into an infinity. A float32 device tensor is ERR_DTYPE. Act-order: x is
 * permuted on the device (a small kernel, into a scratch buffer made per call) before the GEMM.
 */
import type { FloatDType } from '../dtype';
import { CgError, CgRangeError, CgTypeError, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle, Int4DeviceArgs } from '../native/cuda';
import type { LinearPlan, Placement } from './backend';
import { cpuBackend } from './cpu';
import { DevicePlacement, deviceAddon, upload } from './cuda';
import { selectBackend } from './select';

type Int4Params = Extract<WeightParams, { format: 'int4' }>;

/** The layout's flags and size for these parameters. */
function layoutOf(d: DeviceAddon, params: Int4Params): { bytes: number; zeros: boolean; actOrder: boolean } {
  const zeros = !params.symmetric;
  const actOrder = params.perm !== null;
  const l = withNativeErrors(() => d.int4DeviceLayout({ N: params.N, K: params.K, group: params.group, zeros, actOrder }));
  return { bytes: l.bytes, zeros, actOrder };
}

/**
 * The kernel takes one scale per k16 tile: groups of a multiple of 16 columns (quantize's 32, 64,
 * 128), or one group per row. Other groups (fromCanonical allows any multiple of 8) are refused
 * before anything is uploaded.
 */
function checkGroup(params: Int4Params): void {
  if (params.group % 16 !== 0 && params.group !== params.K) {
    throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: the CUDA INT4 kernel needs groups of a multiple of 16 columns (32, 64, 128) or per-channel scales; this weight has groups of ${params.group} (it runs on the CPU backend: COMPRESSED_GEMM_BACKEND=cpu)`);
  }
}

/** x as float16/bfloat16 bits for the kernel: 16-bit x as it is, float32 x rounded to float16. */
function activations16(plan: LinearPlan): { x: ArrayBufferView; dtype: 'float16' | 'bfloat16' } {
  if (plan.xDtype !== 'float32') return { x: plan.x, dtype: plan.xDtype };
  const src = plan.x as Float32Array;
  const out = new Uint16Array(src.length);
  selectBackend().cpuAddon.convert({ src, srcDtype: 'float32', dst: out, dstDtype: 'float16' });
  for (let i = 0; i < out.length; ++i) {
    if ((out[i] & 0x7c00) === 0x7c00 && Number.isFinite(src[i])) {
      throw new CgRangeError('ERR_INVALID_ARG', `x[${i}] = ${src[i]} is beyond float16's range: the CUDA INT4 kernel rounds float32 x to float16 (W4A16); pass x as bfloat16 bits ({ dtype: 'bfloat16' })`);
    }
  }
  return { x: out, dtype: 'float16' };
}

/**
 * One launch of the kernel over device buffers the caller owns (x, bias, out), with the act-order
 * scratch made and freed here: sync() waits for the stream, async() settles when the kernel is done.
 */
function launcher(d: DeviceAddon, params: Int4Params, p: DevicePlacement, a: { x: DeviceHandle; bias: DeviceHandle | null; out: DeviceHandle; M: number; dtype: 'float16' | 'bfloat16'; outDtype: FloatDType }) {
  const { zeros, actOrder } = layoutOf(d, params);
  const scratch = actOrder ? withNativeErrors(() => d.deviceAlloc({ device: p.device, bytes: a.M * params.K * 2 })) : null;
  const args: Int4DeviceArgs = { ...a, w: p.handle, scratch, N: params.N, K: params.K, group: params.group, zeros, actOrder };
  const free = () => {
    if (scratch) d.deviceFree(scratch); // its memory stays until the kernel that uses it is done
  };
  return {
    sync(): void {
      try {
        withNativeErrors(() => d.linearInt4(args));
      } finally {
        free();
      }
    },
    async async(): Promise<void> {
      try {
        await withNativeErrorsAsync(() => d.linearInt4Async(args));
      } finally {
        free();
      }
    },
  };
}

/** The device buffers of one host-array call, made and freed around it. */
function hostCall(params: Int4Params, p: DevicePlacement, plan: LinearPlan) {
  const d = deviceAddon();
  const { x, dtype } = activations16(plan);
  const handles: DeviceHandle[] = [];
  const free = () => {
    for (const h of handles) d.deviceFree(h);
  };
  try {
    const hx = upload(d, p.device, x);
    handles.push(hx);
    const bias = plan.bias ? upload(d, p.device, plan.bias) : null;
    if (bias) handles.push(bias);
    const out = withNativeErrors(() => d.deviceAlloc({ device: p.device, bytes: plan.out.byteLength }));
    handles.push(out);
    return { d, out, free, run: launcher(d, params, p, { x: hx, bias, out, M: plan.M, dtype, outDtype: plan.outDtype }) };
  } catch (e) {
    free();
    throw e;
  }
}

export const int4 = {
  place(params: Int4Params, canonical: CanonicalArrays, device: number): DevicePlacement {
    checkGroup(params);
    const d = deviceAddon();
    const { bytes } = layoutOf(d, params);
    const blob = new Uint8Array(bytes);
    const { N, K, group, perm } = params;
    withNativeErrors(() =>
      d.int4ToDeviceLayout({ N, K, group, qweight: canonical.qweight!, scales: canonical.scales!, zeros: params.symmetric ? null : canonical.zeros!, perm, out: blob }),
    );
    const handle = upload(d, device, blob);
    return Object.freeze({ backend: 'cuda' as const, device, handle, kp: K, byteLength: bytes });
  },
  canonical(params: Int4Params, p: Placement, out: CanonicalArrays): void {
    const d = deviceAddon();
    const dp = p as DevicePlacement;
    const { bytes, actOrder } = layoutOf(d, params);
    const blob = new Uint8Array(bytes);
    withNativeErrors(() => d.copyToHost({ handle: dp.handle, dst: blob }));
    const { N, K, group } = params;
    withNativeErrors(() =>
      d.int4FromDeviceLayout({ N, K, group, actOrder, blob, qweight: out.qweight!, scales: out.scales!, zeros: params.symmetric ? null : out.zeros! }),
    );
  },
  /** The dequantized weight: the canonical arrays read back, dequantized by the CPU's code (the same rule, the same float32 arithmetic). */
  toDense(params: Int4Params, p: Placement, out: ArrayBufferView): void {
    const G = params.K / params.group;
    const canonical: CanonicalArrays = {
      qweight: new Uint8Array(params.N * (params.K / 2)),
      scales: params.scaleDtype === 'float16' ? new Uint16Array(params.N * G) : new Float32Array(params.N * G),
      zeros: params.symmetric ? null : new Uint8Array(params.N * G),
    };
    int4.canonical(params, p, canonical);
    cpuBackend.toDense(params, cpuBackend.place(params, canonical), out);
  },
  linear(params: Int4Params, p: Placement, plan: LinearPlan): void {
    const c = hostCall(params, p as DevicePlacement, plan);
    try {
      c.run.sync();
      withNativeErrors(() => c.d.copyToHost({ handle: c.out, dst: plan.out }));
    } finally {
      c.free();
    }
  },
  async linearAsync(params: Int4Params, p: Placement, plan: LinearPlan): Promise<void> {
    const c = hostCall(params, p as DevicePlacement, plan);
    try {
      // One stream: the kernel runs after the uploads, the download after the kernel.
      const settled = await Promise.allSettled([c.run.async(), withNativeErrorsAsync(() => c.d.copyToHostAsync({ handle: c.out, dst: plan.out }))]);
      for (const r of settled) if (r.status === 'rejected') throw r.reason;
    } finally {
      c.free();
    }
  },
  /** A device tensor x of dtype `dtype` with this weight: ERR_DTYPE unless float16/bfloat16 (checked before anything is allocated). */
  checkTensor(params: Int4Params, dtype: FloatDType): 'float16' | 'bfloat16' {
    if (dtype === 'float32') {
      throw new CgTypeError('ERR_DTYPE', `x is a ${dtype} tensor: the CUDA INT4 kernel takes float16 or bfloat16 activations (W4A16); make the tensor in one of them`);
    }
    checkGroup(params);
    return dtype;
  },
  /** The launch for a device tensor x (linear.ts linearOnDevice): the caller owns x, bias and out. */
  onDevice(params: Int4Params, p: Placement, a: { x: DeviceHandle; bias: DeviceHandle | null; out: DeviceHandle; M: number; dtype: 'float16' | 'bfloat16'; outDtype: FloatDType }) {
    return launcher(deviceAddon(), params, p as DevicePlacement, a);
  },
};
