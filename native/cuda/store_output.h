// The GEMM kernels' epilogue store: one float32 value (accumulator + bias) written to Y in Y's
// element type, rounded to nearest even once (cvt.rn under nvcc; cg/dtype.h's round-to-nearest-even
// in the simulator, the same rounding). load_value reads an element back as float32, for kernels
// that update in place (lowrank_update.cuh).
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

// An element of type kT read as float32 (exact).
template <DType kT>
__device__ __forceinline__ float load_value(const void* p, size_t i) {
  if constexpr (kT == DType::F32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (kT == DType::F16) {
#if defined(__CUDACC__)
    return __half2float(__ushort_as_half(static_cast<const uint16_t*>(p)[i]));
#else
    return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
#endif
  } else {
#if defined(__CUDACC__)
    return __bfloat162float(__ushort_as_bfloat16(static_cast<const uint16_t*>(p)[i]));
#else
    return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
#endif
  }
}

}  // namespace gemm
}  // namespace cg
