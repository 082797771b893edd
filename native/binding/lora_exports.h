// The LoRA shrink over device memory (native/cuda/lora_shrink.cuh), T = per-row x·Aᵀ of each row's
// adapter, as Node exports that are the same in both addons (registered next to
// gemm_exports.h's, by binding/cuda_sim/gemm.cc and cuda/binding_gemm.cu):
//
//   loraShrink({ x, xDtype, M, K, a, lda, rsum, tiles, tilesDev, t, tld })       [sync]
//   loraShrinkAsync({ ... })                                                    -> Promise
//
//   x         device handle: [M, K] row-major of xDtype ('float32' | 'float16' | 'bfloat16')
//   a         device handle: A_all [rsum, lda] float32 (the adapters' A stacked, lda >= K)
//   tiles     Int32Array: the tile table (lora_shrink.cuh: per tile off, r, then 8 row indices
//             or -1), checked here (0 <= off, 1 <= r <= tld, off + r <= rsum, -1 <= row < M, a
//             row in at most one tile) and uploaded into tilesDev on the stream before the kernel
//   tilesDev  device handle of at least tiles.byteLength bytes
//   t         device handle: [M, tld] float32, written at (m, j < r) of every row m of a tile
// Errors as gemm_exports.h's: malformed arguments (or a bad tile table) ERR_NATIVE, a freed handle
// ERR_DISPOSED, t overlapping x, a or tilesDev ERR_OVERLAP, a failed launch ERR_CUDA. The async
// form holds every handle until the kernel is done.
#pragma once
#include <napi.h>

#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "binding/gemm_exports.h"
#include "cuda/lora_shrink.cuh"

#if defined(__CUDACC__)
namespace cg {
namespace gemm {
// Defined in cuda/lora_shrink.cu, which instantiates every configuration for nvcc.
cudaError_t launch_lora_shrink_entry(const LoraShrinkArgs& s, DenseGemmStream stream);
}  // namespace gemm
}  // namespace cg
#endif

namespace cg {
namespace binding {
namespace lora_exports {

namespace de = device_exports;
namespace ge = gemm_exports;

struct ShrinkCall {
  gemm::LoraShrinkArgs args;
  int device = 0;
  std::vector<std::shared_ptr<de::Allocation>> keep;
  std::shared_ptr<rt::HostBuffer> table;  // the checked host copy, uploaded before the kernel
};

inline ShrinkCall shrink_call(const Napi::Object& o) {
  Napi::Env env = o.Env();
  ShrinkCall c;
  gemm::LoraShrinkArgs& s = c.args;
  const std::shared_ptr<de::Allocation> x = de::live_alloc(env, o.Get("x"), "x");
  const std::shared_ptr<de::Allocation> a = de::live_alloc(env, o.Get("a"), "a");
  const std::shared_ptr<de::Allocation> tiles_dev = de::live_alloc(env, o.Get("tilesDev"), "tilesDev");
  const std::shared_ptr<de::Allocation> t = de::live_alloc(env, o.Get("t"), "t");
  const int64_t M = int_of(o, "M", 1, INT_MAX);
  const int64_t K = int_of(o, "K", 1, INT_MAX);
  const int64_t lda = int_of(o, "lda", K, INT_MAX);
  const int64_t rsum = int_of(o, "rsum", 1, 1 << 24);
  const int64_t tld = int_of(o, "tld", 1, 1 << 24);
  s.x_dtype = ge::dtype_arg(o, "xDtype", "'float32', 'float16' or 'bfloat16'");
  for (const auto* h : {&a, &tiles_dev, &t})
    if ((*h)->device != x->device) throw_range(env, "x, a, tilesDev and t must be on the same device");

  const Napi::Value tv = o.Get("tiles");
  if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw_type(env, "tiles must be an Int32Array");
  const size_t words = tv.As<Napi::TypedArray>().ElementLength();
  if (words == 0 || words % gemm::kShrinkTileWords != 0 || words / gemm::kShrinkTileWords > size_t(INT_MAX / gemm::kShrinkTileWords))
    throw_range(env, "tiles must hold whole tiles of " + std::to_string(gemm::kShrinkTileWords) + " words");
  const Bytes tb = bytes_sized(o, "tiles", words * 4);
  c.table = std::make_shared<rt::HostBuffer>(words * 4);  // page-locked, as ge::LoraArg's
  std::memcpy(c.table->data(), tb.data, words * 4);
  const int32_t* tab = reinterpret_cast<const int32_t*>(c.table->data());
  std::vector<uint8_t> seen(size_t(M), 0);
  int rmax = 0;
  for (size_t i = 0; i < words; i += gemm::kShrinkTileWords) {
    const int64_t off = tab[i], r = tab[i + 1];
    if (off < 0 || r < 1 || r > tld || off + r > rsum)
      throw_range(env, "tile " + std::to_string(i / gemm::kShrinkTileWords) + ": off " + std::to_string(off) + ", r " + std::to_string(r) +
                           " outside rsum " + std::to_string(rsum) + " or tld " + std::to_string(tld));
    if (r > rmax) rmax = int(r);
    for (int q = 0; q < gemm::kShrinkRows; ++q) {
      const int64_t row = tab[i + 2 + q];
      if (row == -1) continue;
      if (row < 0 || row >= M || seen[size_t(row)]) throw_range(env, "tile " + std::to_string(i / gemm::kShrinkTileWords) + ": row " + std::to_string(row) + " out of range or in two tiles");
      seen[size_t(row)] = 1;
    }
  }

  const uint64_t x_bytes = uint64_t(M) * uint64_t(K) * uint64_t(dtype_size(s.x_dtype));
  const uint64_t a_bytes = uint64_t(rsum) * uint64_t(lda) * 4;
  const uint64_t t_bytes = uint64_t(M) * uint64_t(tld) * 4;
  const uint64_t tiles_bytes = uint64_t(words) * 4;
  ge::need_bytes(env, *x, x_bytes, "x", "[M, K] of xDtype");
  ge::need_bytes(env, *a, a_bytes, "a", "[rsum, lda] float32");
  ge::need_bytes(env, *t, t_bytes, "t", "[M, tld] float32");
  ge::need_bytes(env, *tiles_dev, tiles_bytes, "tilesDev", "the tile table");
  if (ge::overlaps(t->ptr, t_bytes, x->ptr, x_bytes)) ge::overlap(env, "x");
  if (ge::overlaps(t->ptr, t_bytes, a->ptr, a_bytes)) ge::overlap(env, "a");
  if (ge::overlaps(t->ptr, t_bytes, tiles_dev->ptr, tiles_bytes)) ge::overlap(env, "tilesDev");

  s.x = x->ptr;
  s.M = int(M);
  s.K = int(K);
  s.a = static_cast<const float*>(a->ptr);
  s.lda = int(lda);
  s.rsum = int(rsum);
  s.tiles = static_cast<const int32_t*>(tiles_dev->ptr);
  s.ntiles = int(words / gemm::kShrinkTileWords);
  s.rmax = rmax;
  s.t = static_cast<float*>(t->ptr);
  s.tld = int(tld);
  // kSplit (optional; tests and timings): the warps splitting K per rank, else the kernel's choice
  if (!o.Get("kSplit").IsUndefined()) s.ksplit = int(int_of(o, "kSplit", 1, gemm::kShrinkMaxSplit));
  const char* refused = gemm::validate_lora_shrink(s);
  if (refused) throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + refused), "ERR_NOT_SUPPORTED");
  c.device = x->device;
  c.keep = {x, a, tiles_dev, t};
  return c;
}

inline rt::Kernel shrink_kernel(const gemm::LoraShrinkArgs& s) {
  return [s](void* native_stream) -> std::string {
#if defined(__CUDACC__)
    const cudaError_t e = gemm::launch_lora_shrink_entry(s, static_cast<gemm::DenseGemmStream>(native_stream));
    if (e != cudaSuccess) throw CudaError(e, "lora_shrink_kernel<<<...>>> (loraShrink)");
    return std::string();
#else
    const gemm::DenseGemmLaunchStatus r = gemm::launch_lora_shrink(s, native_stream);
    return r.ok ? std::string() : r.error;
#endif
  };
}

template <bool kAsync>
inline Napi::Value LoraShrink(const Napi::CallbackInfo& info) {
  ShrinkCall c = shrink_call(object_arg(info));
  // The tile table goes up on the stream before the kernel, as a LoRA row table does (ge::LoraArg).
  ge::LoraArg upload;
  upload.rows = c.keep[2];
  upload.table = c.table;
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), upload, shrink_kernel(c.args), kAsync);
}

inline void register_all_lora(Napi::Env env, Napi::Object exports) {
  exports.Set("loraShrink", Napi::Function::New(env, de::guard<LoraShrink<false>>, "loraShrink"));
  exports.Set("loraShrinkAsync", Napi::Function::New(env, de::guard<LoraShrink<true>>, "loraShrinkAsync"));
}

}  // namespace lora_exports
}  // namespace binding
}  // namespace cg
