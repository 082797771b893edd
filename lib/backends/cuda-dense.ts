/**
 * Dense weights on the CUDA backend: [N, kp] row-major in the weight's dtype, kp = K rounded up
 * to the kernels' 16-byte rule (the padding columns are zeros, so they add nothing, and never
 * leave the placement); float16/bfloat16 run the tensor-core GEMM (native/cuda/gemm_dense.cuh),
 * float32 its CUDA-core twin (gemm_dense_f32.cuh). lowRankUpdate updates the placement in place
 * (native/cuda/lowrank_update.cuh).
 */
import { FLOAT_DTYPES, FloatDType } from '../dtype';
import { CgRangeError, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle } from '../native/cuda';
import { DeviceFactors, DeviceFormat, DevicePlacement, KernelCall, deviceAddon, downloadColumns, kStep, padColumns, upload } from './cuda-common';

interface DensePlacement extends DevicePlacement {
  readonly w: DeviceHandle;
  readonly kp: number;
}

function dims(params: WeightParams): { N: number; K: number; dtype: FloatDType } {
  if (params.format !== 'dense') throw new Error(`cuda-dense: a ${params.format} weight`);
  return { N: params.N, K: params.K, dtype: params.dtype };
}

export const denseFormat: DeviceFormat = {
  place(params: WeightParams, canonical: CanonicalArrays, device: number): DensePlacement {
    const { N, K, dtype } = dims(params);
    const step = kStep(dtype);
    const kp = Math.ceil(K / step) * step;
    const values = padColumns(canonical.values!, FLOAT_DTYPES[dtype].bytes, N, K, kp);
    const w = upload(deviceAddon(), device, values);
    return Object.freeze({ backend: 'cuda' as const, device, handles: [w], w, kp, byteLength: values.byteLength });
  },
  canonical(params, p, out) {
    const { N, K, dtype } = dims(params);
    downloadColumns((p as DensePlacement).w, FLOAT_DTYPES[dtype].bytes, N, K, (p as DensePlacement).kp, out.values!);
  },
  toDense(params, p, out) {
    const { N, K, dtype } = dims(params);
    downloadColumns((p as DensePlacement).w, FLOAT_DTYPES[dtype].bytes, N, K, (p as DensePlacement).kp, out);
  },
  hostK(_params, p) {
    return (p as DensePlacement).kp;
  },
  checkTensorK(params) {
    const { K, dtype } = dims(params);
    const step = kStep(dtype);
    if (K % step !== 0) {
      throw new CgRangeError('ERR_K_ALIGNMENT', `a device tensor x with a ${dtype} weight needs K to be a multiple of ${step} (the kernel copies rows as 16-byte chunks), got K = ${K}: pad K, or pass host arrays (padded for you)`);
    }
  },
  run(d: DeviceAddon, params: WeightParams, p: DevicePlacement, c: KernelCall, async: boolean) {
    const { N, dtype } = dims(params);
    // x's rows are xK wide: kp for host arrays (padded), K (= kp, checkTensorK) for tensors.
    const args = { x: c.x, w: (p as DensePlacement).w, bias: c.bias, out: c.out, M: c.M, N, K: c.xK, dtype, outDtype: c.outDtype, lora: c.lora };
    return async ? withNativeErrorsAsync(() => d.linearDenseAsync(args)) : withNativeErrors(() => d.linearDense(args));
  },
  update(d: DeviceAddon, params: WeightParams, p: DevicePlacement, f: DeviceFactors, async: boolean) {
    const { N, K, dtype } = dims(params);
    const args = { w: (p as DensePlacement).w, kp: (p as DensePlacement).kp, a: f.a, b: f.b, N, K, r: f.r, alpha: f.alpha, dtype };
    return async ? withNativeErrorsAsync(() => d.lowRankUpdateDenseAsync(args)) : withNativeErrors(() => d.lowRankUpdateDense(args));
  },
};
