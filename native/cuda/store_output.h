// The GEMM kernels' epilogue store: one float32 value (accumulator + bias) written to Y in Y's
// element type, rounded to nearest even once (cvt.rn under nvcc; cg/dtype.h's round-to-nearest-even
// in the simulator, the same rounding).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/kernel.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace cg {
namespace gemm {

// Y's element types, rounded to nearest even from float32 (cvt.rn).
template <DType kOut>
__device__ __forceinline__ void store_output(void* out, size_t i, float v) {
  if constexpr (kOut == DType::F32) {
    static_cast<float*>(out)[i] = v;
  } else if constexpr (kOut == DType::F16) {
#if defined(__CUDACC__)
    static_cast<uint16_t*>(out)[i] = __half_as_ushort(__float2half_rn(v));
#else
    static_cast<uint16_t*>(out)[i] = f32_to_f16(v);
#endif
  } else {
#if defined(__CUDACC__)
    static_cast<uint16_t*>(out)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
#else
    static_cast<uint16_t*>(out)[i] = f32_to_bf16(v);
#endif
  }
}

}  // namespace gemm
}  // namespace cg
