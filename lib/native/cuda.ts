/** The CUDA addon's surface (native/cuda/binding_cuda.cc) and the simulated device's: devices, memory, copies, the dense GEMM. */

export interface CudaProbe {
  ok: boolean;
  deviceCount: number;
  error?: string;
  errorName?: string;
  runtimeVersion: number;
  driverVersion: number;
  /** kernelsSupported: a SASS target compiled in runs on this device (PTX aside). */
  devices: Array<{ index: number; name: string; computeCapability: string; sm: number; totalMemory: number; multiProcessorCount: number; kernelsSupported: boolean }>;
}

/** A block of device memory (an External owned by the addon; freed by deviceFree or, as a safety net, a finalizer). */
export type DeviceHandle = object & { readonly __device: unique symbol };

/**
 * Device memory, copies and the dense GEMM: the same exports in the CUDA addon and in the
 * simulated device's addon (native/binding/device_exports.h, gemm_exports.h). Copies and
 * kernels of one device run in order on one stream.
 */
export interface DeviceAddon {
  devices(): Array<{ device: number; name: string; sm: number; totalMemory: number; simulated?: boolean }>;
  deviceAlloc(a: { device: number; bytes: number }): DeviceHandle;
  deviceFree(h: DeviceHandle): void;
  copyToDevice(a: { handle: DeviceHandle; offset?: number; src: ArrayBufferView }): void;
  copyToDeviceAsync(a: { handle: DeviceHandle; offset?: number; src: ArrayBufferView }): Promise<void>;
  copyToHost(a: { handle: DeviceHandle; offset?: number; dst: ArrayBufferView }): ArrayBufferView;
  copyToHostAsync(a: { handle: DeviceHandle; offset?: number; dst: ArrayBufferView }): Promise<ArrayBufferView>;
  copyDeviceToDevice(a: { dst: DeviceHandle; dstOffset?: number; src: DeviceHandle; srcOffset?: number; bytes: number }): void;
  memory(): { devices: Array<{ device: number; bytes: number; peakBytes: number }> };
  /** Y = X Wᵀ (+ bias) on device memory: x [M, K], w [N, K] in dtype, bias [N] float32, out [M, N] in outDtype. */
  linearDense(a: DenseDeviceArgs): void;
  linearDenseAsync(a: DenseDeviceArgs): Promise<void>;
  /** Y = X Wᵀ (+ bias) for a 2:4 weight in its device layout (native/cuda/gemm_sparse24.cuh). */
  linearSparse24(a: Sparse24DeviceArgs): void;
  linearSparse24Async(a: Sparse24DeviceArgs): Promise<void>;
}

export interface Sparse24DeviceArgs {
  x: DeviceHandle;
  values: DeviceHandle;
  meta: DeviceHandle;
  bias: DeviceHandle | null;
  out: DeviceHandle;
  M: number;
  N: number;
  K: number;
  np: number;
  kp: number;
  dtype: 'float16' | 'bfloat16';
  outDtype: 'float32' | 'float16' | 'bfloat16';
  lora?: DeviceLoraArg;
}

export interface DenseDeviceArgs {
  x: DeviceHandle;
  w: DeviceHandle;
  bias: DeviceHandle | null;
  out: DeviceHandle;
  M: number;
  N: number;
  K: number;
  /** x's and w's: float16/bfloat16 run the tensor-core kernel, float32 the CUDA-core one. */
  dtype: 'float32' | 'float16' | 'bfloat16';
  outDtype: 'float32' | 'float16' | 'bfloat16';
  lora?: DeviceLoraArg;
}

/** The fused LoRA term of a GEMM (native/cuda/lora_epilogue.h; lib/backends/cuda-lora.ts builds it). */
export interface DeviceLoraArg {
  t: DeviceHandle;
  bt: DeviceHandle;
  rows: DeviceHandle;
  table: Int32Array;
  rsum: number;
}

export interface CudaAddon extends DeviceAddon {
  probe(): CudaProbe;
  compiledArchitectures(): number[];
  /** The SASS targets compiled in, as nvcc names them: ['sm_80', 'sm_89', 'sm_90a']. */
  compiledTargets(): string[];
}

/** The simulated device's addon (native/binding/cuda_sim/): the CUDA kernel sources built by the host compiler. */
export interface CudaSimAddon extends DeviceAddon {
  simulated: true;
}
