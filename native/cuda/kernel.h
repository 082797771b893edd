// The prelude of every kernel source: one source, two executors. Under nvcc it is CUDA itself;
// under the host compiler (the simulated device, sim/sim.h) the CUDA keywords and built-ins a
// kernel uses are defined over the simulator:
//   __global__, __device__, __host__, __forceinline__, threadIdx, blockIdx, blockDim, gridDim,
//   __syncthreads(), and cg::dynamic_smem() (kernels use dynamic shared memory only: a static
//   `__shared__` array has no host equivalent).
// Launch with CG_LAUNCH(kernel, grid, block, smem_bytes, stream, args...): kernel<<<...>>> under
// nvcc; cg::sim::launch(...) in the simulator (whose LaunchResult the caller must check).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_runtime.h>

namespace cg {
using LaunchDim = dim3;
__device__ __forceinline__ uint8_t* dynamic_smem() {
  extern __shared__ __align__(16) uint8_t cg_dynamic_smem[];
  return cg_dynamic_smem;
}
}  // namespace cg

#define CG_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
// Unrolls the loop that follows, so that register arrays (accumulators, fragments) are indexed by
// constants only and stay in registers (ptxas puts a dynamically indexed one in local memory).
#define CG_UNROLL _Pragma("unroll")

#else  // the simulated device
#include "cuda/sim/sim.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define threadIdx (::cg::sim::thread_idx())
#define blockIdx (::cg::sim::block_idx())
#define blockDim (::cg::sim::block_dim())
#define gridDim (::cg::sim::grid_dim())
#define __syncthreads() (::cg::sim::sync_threads())

namespace cg {
using LaunchDim = sim::Dim3;
inline uint8_t* dynamic_smem() { return sim::shared_base(); }
}  // namespace cg

#define CG_UNROLL
// The stream is ignored by the simulator's synchronous launch; the result says whether it ran.
#define CG_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::cg::sim::launch(#kernel, (grid), (block), (smem), [&]() { kernel(__VA_ARGS__); })

#endif

// CG_LAUNCH, then the launch's status: cudaGetLastError() under nvcc, the simulator's result
// (sim::LaunchResult: ok, or its first refusal) otherwise.
#if defined(__CUDACC__)
#define CG_LAUNCH_STATUS(kernel, grid, block, smem, stream, ...) \
  (CG_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__), cudaGetLastError())
#else
#define CG_LAUNCH_STATUS(kernel, grid, block, smem, stream, ...) CG_LAUNCH(kernel, grid, block, smem, stream, __VA_ARGS__)
#endif

#if !defined(__CUDACC__)
#include <cmath>
#include <cstring>
#endif

namespace cg {

// A one-dimensional grid or block of n.
inline LaunchDim dim_x(unsigned n) {
  LaunchDim d;
  d.x = n;
  d.y = 1;
  d.z = 1;
  return d;
}

// float32 arithmetic with one rounding to nearest each, never contracted with a neighbour by the
// compiler (fma.rn / mul.rn / add.rn under nvcc; std::fma and plain float operations in the
// simulator, whose host build contracts nothing across these calls): the operations whose order
// the kernels document.
__device__ __forceinline__ float fma_rn(float a, float b, float c) {
#if defined(__CUDACC__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

__device__ __forceinline__ float mul_rn(float a, float b) {
#if defined(__CUDACC__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

__device__ __forceinline__ float add_rn(float a, float b) {
#if defined(__CUDACC__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// A float32's bits and back, in device code (for register moves such as shuffles).
__device__ __forceinline__ uint32_t as_u32(float v) {
#if defined(__CUDACC__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
#endif
}

__device__ __forceinline__ float as_f32(uint32_t u) {
#if defined(__CUDACC__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, 4);
  return v;
#endif
}

}  // namespace cg
