/** The CUDA addon's surface (native/cuda/binding_cuda.cc): the device probe, no kernels yet. */

export interface CudaProbe {
  ok: boolean;
  deviceCount: number;
  error?: string;
  errorName?: string;
  runtimeVersion: number;
  driverVersion: number;
  devices: Array<{ index: number; name: string; computeCapability: string; sm: number; totalMemory: number; multiProcessorCount: number }>;
}

export interface CudaAddon {
  probe(): CudaProbe;
  compiledArchitectures(): number[];
}

/** The simulated device's addon (native/binding/cuda_sim/): the CUDA kernel sources built by the host compiler. */
export interface CudaSimAddon {
  simulated: true;
}
