// W <- W + alpha·B·A in place on device memory (native/cuda/lowrank_update.cuh), as Node exports
// that are the same in both addons (registered next to gemm_exports.h's, by
// binding/cuda_sim/gemm.cc and cuda/binding_gemm.cu):
//
//   lowRankUpdateDense({ w, a, b, N, K, kp, r, alpha, dtype })                       [sync]
//   lowRankUpdateDenseAsync({ ... })                                                 -> Promise
//   lowRankUpdateSparse24({ values, meta, a, b, N, K, np, kp, r, alpha, dtype, reprune }) [sync]
//   lowRankUpdateSparse24Async({ ... })                                              -> Promise
//
//   w       device handle: [N, kp] row-major of dtype (a dense weight's placement, cuda-dense.ts)
//   values  device handle: [np, kp/2] of dtype; meta: [np/16][kp/32][16] uint32 words (a 2:4
//           weight's placement, cuda-sparse24.ts / gemm_sparse24.cuh)
//   a       device handle: A [r, K] float32; b: B [N, r] float32
//   alpha   a finite number (used as float32); reprune: boolean (2:4)
//   dtype   dense 'float32' | 'float16' | 'bfloat16'; 2:4 'float16' | 'bfloat16'
// The update runs on the device's stream, after the copies before it (the factors' uploads) and
// before those after it. Errors, as gemm_exports.h's: malformed arguments ERR_NATIVE, a freed
// handle ERR_DISPOSED, the factors overlapping the weight ERR_OVERLAP, a configuration the kernel
// does not run ERR_NOT_SUPPORTED, a failed launch ERR_CUDA. The async form holds every handle until
// the kernel is done.
#pragma once
#include <napi.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "binding/gemm_exports.h"
#include "cuda/lowrank_update.cuh"

#if defined(__CUDACC__)
namespace cg {
namespace gemm {
// Defined in cuda/lowrank_update.cu, which instantiates every configuration for nvcc.
cudaError_t launch_lowrank_entry(const LowRankArgs& a, bool sparse, DenseGemmStream stream);
}  // namespace gemm
}  // namespace cg
#endif

namespace cg {
namespace binding {
namespace lowrank_exports {

namespace de = device_exports;
namespace ge = gemm_exports;

inline rt::Kernel lowrank_kernel(const gemm::LowRankArgs& a, bool sparse) {
  return [a, sparse](void* native_stream) -> std::string {
#if defined(__CUDACC__)
    const cudaError_t s = gemm::launch_lowrank_entry(a, sparse, static_cast<gemm::DenseGemmStream>(native_stream));
    if (s != cudaSuccess) throw CudaError(s, sparse ? "lowrank_sparse24_kernel<<<...>>> (lowRankUpdate)" : "lowrank_dense_kernel<<<...>>> (lowRankUpdate)");
    return std::string();
#else
    const gemm::DenseGemmLaunchStatus s = gemm::launch_lowrank(a, sparse, native_stream);
    return s.ok ? std::string() : s.error;
#endif
  };
}

struct UpdateCall {
  gemm::LowRankArgs args;
  bool sparse = false;
  int device = 0;
  std::vector<std::shared_ptr<de::Allocation>> keep;
};

inline UpdateCall update_call(const Napi::Object& o, bool sparse) {
  Napi::Env env = o.Env();
  UpdateCall c;
  c.sparse = sparse;
  gemm::LowRankArgs& x = c.args;
  const std::shared_ptr<de::Allocation> a = de::live_alloc(env, o.Get("a"), "a");
  const std::shared_ptr<de::Allocation> b = de::live_alloc(env, o.Get("b"), "b");
  const int64_t N = int_of(o, "N", 1, INT_MAX);
  const int64_t K = int_of(o, "K", 1, INT_MAX);
  const int64_t kp = int_of(o, "kp", 1, INT_MAX);
  const int64_t r = int_of(o, "r", 1, INT_MAX);
  x.alpha = finite_float_of(o, "alpha");
  x.dtype = ge::dtype_arg(o, "dtype", sparse ? "'float16' or 'bfloat16'" : "'float32', 'float16' or 'bfloat16'");
  const uint64_t a_bytes = uint64_t(r) * uint64_t(K) * 4, b_bytes = uint64_t(N) * uint64_t(r) * 4;
  ge::need_bytes(env, *a, a_bytes, "a", "[r, K] float32");
  ge::need_bytes(env, *b, b_bytes, "b", "[N, r] float32");
  // The weight's buffers, and the bytes of each the kernel writes.
  std::vector<std::pair<std::shared_ptr<de::Allocation>, uint64_t>> written;
  if (!sparse) {
    const std::shared_ptr<de::Allocation> w = de::live_alloc(env, o.Get("w"), "w");
    const uint64_t w_bytes = uint64_t(N) * uint64_t(kp) * uint64_t(dtype_size(x.dtype));
    ge::need_bytes(env, *w, w_bytes, "w", "[N, kp] of dtype");
    written.push_back({w, w_bytes});
    x.w = w->ptr;
  } else {
    const int64_t np = int_of(o, "np", 1, INT_MAX);
    const std::shared_ptr<de::Allocation> values = de::live_alloc(env, o.Get("values"), "values");
    const std::shared_ptr<de::Allocation> meta = de::live_alloc(env, o.Get("meta"), "meta");
    const uint64_t values_bytes = uint64_t(np) * uint64_t(kp / 2) * uint64_t(dtype_size(x.dtype));
    const uint64_t meta_bytes = uint64_t(np / 16) * uint64_t(kp / 32) * 16 * 4;
    ge::need_bytes(env, *values, values_bytes, "values", "[np, kp/2] of dtype");
    ge::need_bytes(env, *meta, meta_bytes, "meta", "[np/16][kp/32][16] uint32");
    written.push_back({values, values_bytes});
    written.push_back({meta, meta_bytes});
    x.values = static_cast<uint16_t*>(values->ptr);
    x.meta = static_cast<uint32_t*>(meta->ptr);
    x.np = int(np);
    x.reprune = bool_of(o, "reprune");
  }
  for (const auto& wr : written) {
    if (wr.first->device != a->device || b->device != a->device) throw_range(env, "the weight's buffers, a and b must be on the same device");
    if (ge::overlaps(wr.first->ptr, wr.second, a->ptr, a_bytes)) ge::overlap(env, "a");
    if (ge::overlaps(wr.first->ptr, wr.second, b->ptr, b_bytes)) ge::overlap(env, "b");
  }
  x.N = int(N);
  x.K = int(K);
  x.kp = int(kp);
  x.r = int(r);
  x.a = static_cast<const float*>(a->ptr);
  x.b = static_cast<const float*>(b->ptr);
  const char* refused = gemm::validate_lowrank(x, sparse);
  if (refused) throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + refused), "ERR_NOT_SUPPORTED");
  c.device = a->device;
  c.keep = {a, b};
  for (const auto& wr : written) c.keep.push_back(wr.first);
  return c;
}

template <bool kSparse, bool kAsync>
inline Napi::Value LowRankUpdate(const Napi::CallbackInfo& info) {
  UpdateCall c = update_call(object_arg(info), kSparse);
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), ge::LoraArg(), lowrank_kernel(c.args, kSparse), kAsync);
}

inline void register_all_lowrank(Napi::Env env, Napi::Object exports) {
  exports.Set("lowRankUpdateDense", Napi::Function::New(env, de::guard<LowRankUpdate<false, false>>, "lowRankUpdateDense"));
  exports.Set("lowRankUpdateDenseAsync", Napi::Function::New(env, de::guard<LowRankUpdate<false, true>>, "lowRankUpdateDenseAsync"));
  exports.Set("lowRankUpdateSparse24", Napi::Function::New(env, de::guard<LowRankUpdate<true, false>>, "lowRankUpdateSparse24"));
  exports.Set("lowRankUpdateSparse24Async", Napi::Function::New(env, de::guard<LowRankUpdate<true, true>>, "lowRankUpdateSparse24Async"));
}

}  // namespace lowrank_exports
}  // namespace binding
}  // namespace cg
