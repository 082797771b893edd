// The 2:4 sparse GEMM over device memory (native/cuda/gemm_sparse24.cuh), Y = X·Wᵀ (+ bias), as
// Node exports that are the same in both addons (registered next to gemm_exports.h's, by
// binding/cuda_sim/gemm.cc and cuda/binding_gemm.cu):
//
//   linearSparse24({ x, values, meta, bias, out, M, N, K, np, kp, dtype, outDtype, blockM?, splits?, lora? }) [sync]
//   linearSparse24Async({ ... })                                                          -> Promise
//
//   x       device handle: [M, K] row-major of dtype (K a multiple of 8), at least M*K*2 bytes
//   values  device handle: [np, kp/2] of dtype (the kept values, gemm_sparse24.cuh's layout)
//   meta    device handle: [np/16][kp/32][16] uint32 words (the lanes' metadata, the same file)
//   bias    device handle [N] float32, or null / undefined
//   out     device handle: [M, N] of outDtype
//   np, kp  the weight's padded shape: multiples of 64, N <= np, K <= kp
//   dtype   'float16' | 'bfloat16'; outDtype 'float32' | 'float16' | 'bfloat16'
//   lora    optional, the fused LoRA term: as linearDense's (gemm_exports.h)
//   blockM  optional, the tile's rows of X: 16 (the decode tile) or 64; absent: 16 up to M = 16,
//           else 64 (sparse24_block_m); 128 (a dense tile only) ERR_NOT_SUPPORTED, any other
//           value ERR_NATIVE
//   splits  optional split-K slices, 1..8 (sparse24_effective_splits may give fewer); absent:
//           chosen by sparse24_auto_splits from the device's SM count. Above 1 the call has a
//           float32 [splits, M, N] buffer of its own for the partial sums, and a second kernel
//           (split_k.cuh) adds them, the bias and the LoRA term.
//
// Errors, and the ordering on the device's stream, are gemm_exports.h's: malformed arguments
// ERR_NATIVE, a freed handle ERR_DISPOSED, out overlapping an input ERR_OVERLAP, a configuration
// the kernel does not run ERR_NOT_SUPPORTED (validate_sparse24_gemm's message), a failed launch
// or a sticky stream error ERR_CUDA. The async form holds every handle until the kernel is done.
#pragma once
#include <napi.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binding/gemm_exports.h"
#include "cuda/gemm_sparse24.cuh"

#if defined(__CUDACC__)
namespace cg {
namespace gemm {
// Defined in cuda/gemm_sparse24.cu, which instantiates every configuration for nvcc.
Sparse24LaunchStatus launch_sparse24_gemm_entry(const Sparse24GemmArgs& a, Sparse24Stream stream);
}  // namespace gemm
}  // namespace cg
#endif

namespace cg {
namespace binding {
namespace gemm_sparse24_exports {

namespace de = device_exports;
namespace ge = gemm_exports;

inline rt::Kernel sparse24_kernel(const gemm::Sparse24GemmArgs& a) {
  return [a](void* native_stream) -> std::string {
#if defined(__CUDACC__)
    const cudaError_t s = gemm::launch_sparse24_gemm_entry(a, static_cast<gemm::Sparse24Stream>(native_stream));
    if (s != cudaSuccess) throw CudaError(s, "sparse24_gemm_kernel<<<...>>> (linearSparse24)");
    return std::string();
#else
    const gemm::Sparse24LaunchStatus s = gemm::launch_sparse24_gemm(a, native_stream);
    return s.ok ? std::string() : s.error;
#endif
  };
}

struct Sparse24Call {
  gemm::Sparse24GemmArgs args;
  int device = 0;
  std::vector<std::shared_ptr<de::Allocation>> keep;
  ge::LoraArg lora;
};

inline Sparse24Call sparse24_call(const Napi::Object& o) {
  Napi::Env env = o.Env();
  Sparse24Call c;
  const std::shared_ptr<de::Allocation> x = de::live_alloc(env, o.Get("x"), "x");
  const std::shared_ptr<de::Allocation> values = de::live_alloc(env, o.Get("values"), "values");
  const std::shared_ptr<de::Allocation> meta = de::live_alloc(env, o.Get("meta"), "meta");
  const std::shared_ptr<de::Allocation> out = de::live_alloc(env, o.Get("out"), "out");
  std::shared_ptr<de::Allocation> bias;
  const Napi::Value bv = o.Get("bias");
  if (!bv.IsUndefined() && !bv.IsNull()) bias = de::live_alloc(env, bv, "bias");

  const int64_t M = int_of(o, "M", 1, INT_MAX);
  const int64_t N = int_of(o, "N", 1, INT_MAX);
  const int64_t K = int_of(o, "K", 1, INT_MAX);
  const int64_t np = int_of(o, "np", 1, INT_MAX);
  const int64_t kp = int_of(o, "kp", 1, INT_MAX);
  const DType dtype = ge::dtype_arg(o, "dtype", "'float16' or 'bfloat16'");
  const DType out_dtype = ge::dtype_arg(o, "outDtype", "'float32', 'float16' or 'bfloat16'");

  for (const auto* a : {&values, &meta, &out})
    if ((*a)->device != x->device) throw_range(env, "x, values, meta, bias and out must be on the same device");
  if (bias && bias->device != x->device) throw_range(env, "x, values, meta, bias and out must be on the same device");

  const uint64_t x_bytes = uint64_t(M) * uint64_t(K) * uint64_t(dtype_size(dtype));
  const uint64_t values_bytes = uint64_t(np) * uint64_t(kp / 2) * uint64_t(dtype_size(dtype));
  const uint64_t meta_bytes = uint64_t(np / 16) * uint64_t(kp / 32) * gemm::kSparse24MetaWordsPerTile * 4;
  const uint64_t out_bytes = uint64_t(M) * uint64_t(N) * uint64_t(dtype_size(out_dtype));
  const uint64_t bias_bytes = bias ? uint64_t(N) * 4 : 0;
  ge::need_bytes(env, *x, x_bytes, "x", "[M, K] of dtype");
  ge::need_bytes(env, *values, values_bytes, "values", "[np, kp/2] of dtype");
  ge::need_bytes(env, *meta, meta_bytes, "meta", "[np/16][kp/32][16] uint32");
  ge::need_bytes(env, *out, out_bytes, "out", "[M, N] of outDtype");
  if (bias) ge::need_bytes(env, *bias, bias_bytes, "bias", "[N] float32");
  if (ge::overlaps(out->ptr, out_bytes, x->ptr, x_bytes)) ge::overlap(env, "x");
  if (ge::overlaps(out->ptr, out_bytes, values->ptr, values_bytes)) ge::overlap(env, "values");
  if (ge::overlaps(out->ptr, out_bytes, meta->ptr, meta_bytes)) ge::overlap(env, "meta");
  if (bias && ge::overlaps(out->ptr, out_bytes, bias->ptr, bias_bytes)) ge::overlap(env, "bias");

  gemm::Sparse24GemmArgs& a = c.args;
  a.M = int(M);
  a.N = int(N);
  a.K = int(K);
  a.np = int(np);
  a.kp = int(kp);
  a.dtype = dtype;
  a.out_dtype = out_dtype;
  a.x = static_cast<const uint16_t*>(x->ptr);
  a.values = static_cast<const uint16_t*>(values->ptr);
  a.meta = static_cast<const uint32_t*>(meta->ptr);
  a.bias = bias ? static_cast<const float*>(bias->ptr) : nullptr;
  a.out = out->ptr;
  // The tile: blockM 16 (decode) or 64 (general); absent (0), the launcher's choice by M.
  a.block_m = ge::requested_block_m(o);
  // Split-K: the rest is checked with one slice first, so that a refused call allocates nothing.
  const int splits = gemm::sparse24_effective_splits(
      kp, ge::requested_splits(o, gemm::sparse24_auto_splits(M, np, kp, gemm::sparse24_block_m(M, a.block_m), rt::multiprocessors(x->device))));
  a.splits = 1;
  std::string refused = gemm::validate_sparse24_gemm(a);
  std::shared_ptr<de::Allocation> partial;
  if (refused.empty() && splits > 1) {
    partial = ge::partial_buffer(x->device, splits, M, N);
    a.splits = splits;
    a.partial = static_cast<float*>(partial->ptr);
    refused = gemm::validate_sparse24_gemm(a);
  }
  if (!refused.empty()) throw coded(Napi::RangeError::New(env, "compressed-gemm: " + refused), "ERR_NOT_SUPPORTED");

  c.lora = ge::lora_arg(o, M, N, x->device, out->ptr, out_bytes);
  a.lora = c.lora.ep;

  c.device = x->device;
  c.keep = {x, values, meta, out};
  if (bias) c.keep.push_back(bias);
  if (partial) c.keep.push_back(partial);
  for (const auto& k : c.lora.keep) c.keep.push_back(k);
  return c;
}

inline Napi::Value LinearSparse24(const Napi::CallbackInfo& info) {
  Sparse24Call c = sparse24_call(object_arg(info));
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, sparse24_kernel(c.args), false);
}

inline Napi::Value LinearSparse24Async(const Napi::CallbackInfo& info) {
  Sparse24Call c = sparse24_call(object_arg(info));
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, sparse24_kernel(c.args), true);
}

inline void register_all_sparse24(Napi::Env env, Napi::Object exports) {
  exports.Set("linearSparse24", Napi::Function::New(env, de::guard<LinearSparse24>, "linearSparse24"));
  exports.Set("linearSparse24Async", Napi::Function::New(env, de::guard<LinearSparse24Async>, "linearSparse24Async"));
}

}  // namespace gemm_sparse24_exports
}  // namespace binding
}  // namespace cg
