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
  devices(): Array<{ device: number; name: string; sm: number; totalMemory: number; multiprocessors: number; simulated?: boolean }>;
  deviceAlloc(a: { device: number; bytes: number }): DeviceHandle;
  deviceFree(h: DeviceHandle): void;
  copyToDevice(a: { handle: DeviceHandle; offset?: number; src: ArrayBufferView }): void;
  copyToDeviceAsync(a: { handle: DeviceHandle; offset?: number; src: ArrayBufferView }): Promise<void>;
  copyToHost(a: { handle: DeviceHandle; offset?: number; dst: ArrayBufferView }): ArrayBufferView;
  copyToHostAsync(a: { handle: DeviceHandle; offset?: number; dst: ArrayBufferView }): Promise<ArrayBufferView>;
  copyDeviceToDevice(a: { dst: DeviceHandle; dstOffset?: number; src: DeviceHandle; srcOffset?: number; bytes: number }): void;
  copyDeviceToDeviceAsync(a: { dst: DeviceHandle; dstOffset?: number; src: DeviceHandle; srcOffset?: number; bytes: number }): Promise<void>;
  memory(): { devices: Array<{ device: number; bytes: number; peakBytes: number; cachedBytes: number; reservedBytes: number }> };
  /** Frees the blocks the memory cache keeps (native/cuda/runtime/block_cache.h) on `device` (absent: every device); returns their bytes. */
  releaseCache(a: { device?: number }): number;
  /** Y = X Wᵀ (+ bias) on device memory: x [M, K], w [N, K] in dtype, bias [N] float32, out [M, N] in outDtype. */
  linearDense(a: DenseDeviceArgs): void;
  linearDenseAsync(a: DenseDeviceArgs): Promise<void>;
  /** Y = X Wᵀ (+ bias) for a 2:4 weight in its device layout (native/cuda/gemm_sparse24.cuh). */
  linearSparse24(a: Sparse24DeviceArgs): void;
  linearSparse24Async(a: Sparse24DeviceArgs): Promise<void>;
  /** The INT4 weight's device layout (native/cuda/gemm_int4_layout.h): its size in bytes. */
  int4DeviceLayout(a: { N: number; K: number; group: number; zeros: boolean; actOrder: boolean }): { bytes: number; Np: number; Kp: number };
  /** The canonical INT4 arrays -> the layout's bytes (host memory; uploaded as they are). */
  int4ToDeviceLayout(a: { N: number; K: number; group: number; qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null; perm: Int32Array | null; out: Uint8Array }): void;
  /** The inverse: the layout's bytes (downloaded) -> the canonical arrays. */
  int4FromDeviceLayout(a: { N: number; K: number; group: number; actOrder: boolean; blob: Uint8Array; qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null }): void;
  /** Y = X dequant(W)ᵀ (+ bias): the W4A16 kernel (native/binding/gemm_int4_exports.h). */
  linearInt4(a: Int4DeviceArgs): void;
  linearInt4Async(a: Int4DeviceArgs): Promise<void>;
  /** W <- W + alpha B A in place on a dense weight's placement (native/binding/lowrank_exports.h). */
  lowRankUpdateDense(a: DenseUpdateArgs): void;
  lowRankUpdateDenseAsync(a: DenseUpdateArgs): Promise<void>;
  /** The same on a 16-bit 2:4 weight's placement: kept positions only, or reprune. */
  lowRankUpdateSparse24(a: Sparse24UpdateArgs): void;
  lowRankUpdateSparse24Async(a: Sparse24UpdateArgs): Promise<void>;
  /** The LoRA shrink: T = each row's x·Aᵀ against its own adapter (native/cuda/lora_shrink.cuh). */
  loraShrink(a: LoraShrinkArgs): void;
  loraShrinkAsync(a: LoraShrinkArgs): Promise<void>;
}

/** The factors of a device update: A [r, K] and B [N, r], float32 device buffers. */
export interface UpdateFactorArgs {
  a: DeviceHandle;
  b: DeviceHandle;
  N: number;
  K: number;
  r: number;
  alpha: number;
}

export interface DenseUpdateArgs extends UpdateFactorArgs {
  /** [N, kp] of dtype. */
  w: DeviceHandle;
  kp: number;
  dtype: 'float32' | 'float16' | 'bfloat16';
}

export interface Sparse24UpdateArgs extends UpdateFactorArgs {
  values: DeviceHandle;
  meta: DeviceHandle;
  np: number;
  kp: number;
  dtype: 'float16' | 'bfloat16';
  reprune: boolean;
}

export interface Int4DeviceArgs {
  x: DeviceHandle;
  /** The weight's layout (int4ToDeviceLayout, uploaded). */
  w: DeviceHandle;
  /** Act-order: [M, K] of dtype, where x is permuted first; else null. */
  scratch: DeviceHandle | null;
  bias: DeviceHandle | null;
  out: DeviceHandle;
  M: number;
  N: number;
  K: number;
  group: number;
  zeros: boolean;
  actOrder: boolean;
  dtype: 'float16' | 'bfloat16';
  outDtype: 'float32' | 'float16' | 'bfloat16';
  lora?: DeviceLoraArg;
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
  /** The tile's rows of X: 16 (decode) or 64; absent: 16 up to M = 16, else 64. */
  blockM?: 16 | 64;
  /** Split-K slices, 1..8; absent: the kernel's automatic choice. */
  splits?: number;
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
  /** The tile's rows of X: 16 (decode, 16-bit inputs) or 64; absent: 16 for 16-bit inputs up to M = 16, else 64. */
  blockM?: 16 | 64;
  /** Split-K slices, 1..8 (16-bit inputs); absent: the kernel's automatic choice. */
  splits?: number;
  lora?: DeviceLoraArg;
}

/** The fused LoRA term of a GEMM (native/cuda/lora_epilogue.h; lib/backends/cuda-lora.ts builds it). */
export interface DeviceLoraArg {
  /** [M, tld] float32: row m's x·Aᵀ (loraShrink). */
  t: DeviceHandle;
  /** [rsum, N] float32: the adapters' B, transposed and stacked. */
  bt: DeviceHandle;
  rows: DeviceHandle;
  table: Int32Array;
  rsum: number;
  tld: number;
}

/** T = each row's x·Aᵀ against its own adapter (native/binding/lora_exports.h). */
export interface LoraShrinkArgs {
  x: DeviceHandle;
  xDtype: 'float32' | 'float16' | 'bfloat16';
  M: number;
  K: number;
  /** A_all [rsum, lda] float32. */
  a: DeviceHandle;
  lda: number;
  rsum: number;
  /** Per tile: off, r, then 8 row indices (-1: empty). */
  tiles: Int32Array;
  tilesDev: DeviceHandle;
  t: DeviceHandle;
  tld: number;
  /** Warps splitting K per rank (1, 2, 4 or 8); omitted: the kernel's choice from K (lora_shrink.cuh shrink_ksplit). */
  kSplit?: number;
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
