// The dense GEMM over device memory (native/cuda/gemm_dense.cuh), Y = X·Wᵀ (+ bias), as Node
// exports that are the same in both addons: the simulated device's (binding/cuda_sim/gemm.cc) and
// the CUDA addon's (cuda/binding_gemm.cu, compiled by nvcc). Each of those files includes this
// header once and calls register_all_gemm(); device memory, handles, the per-device stream and
// the async completion are binding/device_exports.h's (whose platform_failure() each addon
// defines once, in device.cc / binding_device.cc).
//
//   linearDense({ x, w, bias, out, M, N, K, dtype, outDtype, blockM?, splits?, lora? })       [sync] -> undefined
//   linearDenseAsync({ x, w, bias, out, M, N, K, dtype, outDtype, blockM?, splits?, lora? })  -> Promise<undefined>
//
//   x    device handle (deviceAlloc): [M, K] row-major of dtype, at least M*K*2 bytes
//   w    device handle: [N, K] row-major of dtype (torch.nn.Linear's layout), at least N*K*2 bytes
//   bias device handle: [N] float32, at least N*4 bytes; or null / undefined (no bias)
//   out  device handle: [M, N] row-major of outDtype, at least M*N*sizeof(outDtype) bytes; only
//        its first M*N elements are written
//   M, N, K   integers in [1, 2^31 - 1]
//   dtype     'float16' | 'bfloat16' (x's and w's: the tensor-core kernel) | 'float32' (the
//             CUDA-core kernel, gemm_dense_f32.cuh)
//   outDtype  'float32' | 'float16' | 'bfloat16'
//   blockM    optional, the tile's rows of X: 16 (the decode tile) or 128 (the wide tile), 16-bit
//             inputs, or 64; absent: for 16-bit inputs 16 up to M = 16, 128 from M = 512, else
//             64 (dense_block_m);
//             16 or 128 with float32 inputs is ERR_NOT_SUPPORTED, any other value ERR_NATIVE
//   splits    optional split-K slices for 16-bit inputs, 1..8 (dense_effective_splits may give
//             fewer; float32 inputs take 1 only); absent: dense_auto_splits for the device's SM
//             count. Above 1 the call has its own float32 [splits, M, N] partial buffer
//             (partial_buffer) and a second kernel adds the slices (cuda/split_k.cuh)
//   lora      optional, the fused LoRA term (cuda/lora_epilogue.h): { t, bt, rows, table, rsum, tld }:
//             t device handle [M, tld] float32 (row m: x[m]·Aᵀ of its adapter, written earlier on
//             the stream by loraShrink, lora_exports.h), bt [rsum, N] float32, rows a device handle
//             of at least 3M 32-bit words that the export fills from `table` (an Int32Array [3M]:
//             off[m], r[m], alpha's float32 bits), after checking it (0 <= off, 0 <= r <= tld,
//             off + r <= rsum), on the stream before the kernel
// Every buffer is used from byte 0 of its allocation (allocations are 256-byte aligned, which
// the kernel's alignment rules need). All handles must be live and on one device.
//
// linearDense enqueues the kernel on the device's stream (device_exports::stream_for, the stream
// every copy uses, so it is ordered after the copies before it and before those after it) and
// waits for the stream. linearDenseAsync enqueues it, then settles its promise from the stream
// (device_exports::run_async, as copyToHostAsync): its op holds a reference to each of x, w,
// bias and out, so a handle freed meanwhile (deviceFree, or its finalizer) keeps its device
// memory until the kernel is done.
//
// Errors (thrown, also by linearDenseAsync, before anything is enqueued):
//   - a malformed argument (not an object, a handle that is not one, a bad M/N/K, an unknown
//     dtype, a buffer smaller than the sizes above, handles on different devices):
//     TypeError/RangeError code ERR_NATIVE ("compressed-gemm native check: ...");
//   - a freed handle: TypeError ERR_DISPOSED;
//   - out overlapping the bytes read from x, w or bias: RangeError ERR_OVERLAP;
//   - a configuration the kernel does not run (K % 8 != 0 for 16-bit inputs, K % 4 != 0 for float32,
//     reach; validate_dense_gemm): RangeError ERR_NOT_SUPPORTED with the launcher's message.
//     lib/ checks these first; this is the last line.
// A failed launch, or the stream's sticky error of an earlier failure, is thrown by linearDense
// (rejects linearDenseAsync's promise) as Error ERR_CUDA with the CUDA error's name in cudaError:
// on the simulated device the kernel runs on the stream's worker and a refusal becomes the
// stream's sticky cudaErrorLaunchFailure; under CUDA the launch's own cudaError_t
// (cudaGetLastError) is thrown at enqueue time as a cg::CudaError, and a fault inside the kernel
// surfaces as the stream's error at the next synchronize or completion. Without a usable device
// (the CUDA addon on a machine without a driver) deviceAlloc already fails with ERR_CUDA.
#pragma once
#include <napi.h>

#include <climits>
#include <cstring>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binding/device_exports.h"
#include "cuda/gemm_dense.cuh"

#if defined(__CUDACC__)
#include "cuda/cuda_check.h"

namespace cg {
namespace gemm {
// Defined in cuda/gemm_dense.cu, which instantiates every kernel configuration: the CUDA addon
// launches through it, so that nvcc compiles (and ptxas assembles) the kernels once.
DenseGemmStatus launch_dense_gemm_entry(const DenseGemmArgs& a, DenseGemmStream stream);
}  // namespace gemm
}  // namespace cg
#endif

namespace cg {
namespace binding {
namespace gemm_exports {

namespace de = device_exports;

// ---- the kernel on a stream ---------------------------------------------------------------------
// An rt::Kernel that launches the dense GEMM on the native stream (arguments already validated;
// a refusal here would only be a second opinion of the launcher, reported as the launch's).
inline rt::Kernel dense_kernel(const gemm::DenseGemmArgs& a) {
  return [a](void* native_stream) -> std::string {
#if defined(__CUDACC__)
    const gemm::DenseGemmStatus s = gemm::launch_dense_gemm_entry(a, static_cast<gemm::DenseGemmStream>(native_stream));
    if (s.error != gemm::DenseGemmError::kNone) return gemm::dense_gemm_error_message(s.error);
    // Runs on the enqueuing thread (runtime_cuda.cc): the launch's own error, by its CUDA name.
    if (s.launch != cudaSuccess) throw CudaError(s.launch, "dense_gemm_kernel<<<...>>> (linearDense)");
    return std::string();
#else
    const gemm::DenseGemmStatus s = gemm::launch_dense_gemm(a, native_stream);
    if (s.error != gemm::DenseGemmError::kNone) return gemm::dense_gemm_error_message(s.error);
    return s.launch.ok ? std::string() : s.launch.error;
#endif
  };
}

// ---- arguments ----------------------------------------------------------------------------------
inline DType dtype_arg(const Napi::Object& o, const char* key, const char* allowed) {
  const Napi::Value v = o.Get(key);
  if (!v.IsString()) throw_type(o.Env(), std::string(key) + " must be a string (" + allowed + ")");
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "float32") return DType::F32;
  if (s == "float16") return DType::F16;
  if (s == "bfloat16") return DType::BF16;
  throw_range(o.Env(), std::string(key) + " must be " + allowed + "; got '" + s + "'");
}

// The optional `lora` argument, checked: the epilogue's pointers, and the row table's checked
// host copy, uploaded into `rows` on the stream before the kernel (upload()).
struct LoraArg {
  gemm::LoraEpilogue ep;
  std::shared_ptr<de::Allocation> rows;
  std::shared_ptr<rt::HostBuffer> table;  // page-locked (an async call's upload never waits); null: no LoRA term
  std::vector<std::shared_ptr<de::Allocation>> keep;

  // Enqueues the row table's upload (before the kernel that reads it).
  void upload(rt::Stream& s) const {
    if (table) s.copy_h2d(rows->ptr, table->data(), table->size());
  }
};

[[noreturn]] inline void overlap(const Napi::Env& env, const char* what) {
  throw coded(Napi::RangeError::New(env, std::string("compressed-gemm native check: out overlaps ") + what +
                                                       " (the kernel reads it while writing out)"),
                        "ERR_OVERLAP");
}

// Whether [a, a + an) and [b, b + bn) share a byte.
inline bool overlaps(const void* a, uint64_t an, const void* b, uint64_t bn) {
  const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return an && bn && pa < pb + bn && pb < pa + an;
}

// Throws (ERR_NATIVE) when an allocation holds fewer than `bytes`: "what holds N bytes; shape needs M".
inline void need_bytes(const Napi::Env& env, const de::Allocation& a, uint64_t bytes, const char* what, const char* shape) {
  if (a.bytes < bytes)
    throw_range(env, std::string(what) + " holds " + std::to_string(a.bytes) + " bytes; " + shape + " needs " + std::to_string(bytes));
}

// The optional `lora` argument of a call on `device` with an [M, N] out (out_bytes at out_ptr),
// which must not overlap the LoRA buffers the epilogue reads (ERR_OVERLAP).
inline LoraArg lora_arg(const Napi::Object& o, int64_t M, int64_t N, int device, const void* out_ptr, uint64_t out_bytes) {
  Napi::Env env = o.Env();
  LoraArg l;
  const Napi::Value v = o.Get("lora");
  if (v.IsUndefined() || v.IsNull()) return l;
  if (!v.IsObject()) throw_type(env, "lora must be an object { t, bt, rows, table, rsum, tld }");
  const Napi::Object lo = v.As<Napi::Object>();
  const int64_t rsum = int_of(lo, "rsum", 1, 1 << 24);
  const int64_t tld = int_of(lo, "tld", 1, 1 << 24);
  const std::shared_ptr<de::Allocation> t = de::live_alloc(env, lo.Get("t"), "lora.t");
  const std::shared_ptr<de::Allocation> bt = de::live_alloc(env, lo.Get("bt"), "lora.bt");
  l.rows = de::live_alloc(env, lo.Get("rows"), "lora.rows");
  if (t->device != device || bt->device != device || l.rows->device != device)
    throw_range(env, "lora's buffers must be on the call's device");
  if (t->bytes < uint64_t(M) * uint64_t(tld) * 4) throw_range(env, "lora.t must hold [M, tld] float32");
  if (bt->bytes < uint64_t(rsum) * uint64_t(N) * 4) throw_range(env, "lora.bt must hold [rsum, N] float32");
  if (l.rows->bytes < uint64_t(M) * 12) throw_range(env, "lora.rows must hold 3M 32-bit words");
  const Napi::Value tv = lo.Get("table");
  if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_type(env, "lora.table must be an Int32Array");
  const Bytes tb = bytes_sized(lo, "table", size_t(M) * 12);
  l.table = std::make_shared<rt::HostBuffer>(size_t(M) * 12);
  std::memcpy(l.table->data(), tb.data, size_t(M) * 12);
  const int32_t* tab = reinterpret_cast<const int32_t*>(l.table->data());
  for (int64_t m = 0; m < M; ++m) {
    const int64_t off = tab[size_t(m)], r = tab[size_t(M + m)];
    if (off < 0 || r < 0 || off + r > rsum || r > tld)
      throw_range(env, "lora.table row " + std::to_string(m) + ": off " + std::to_string(off) + ", r " + std::to_string(r) +
                           " outside rsum " + std::to_string(rsum) + " or tld " + std::to_string(tld));
  }
  l.ep.t = static_cast<const float*>(t->ptr);
  l.ep.bt = static_cast<const float*>(bt->ptr);
  l.ep.rows = static_cast<const int32_t*>(l.rows->ptr);
  l.ep.tld = int(tld);
  l.keep = {t, bt, l.rows};
  if (overlaps(out_ptr, out_bytes, t->ptr, uint64_t(M) * uint64_t(tld) * 4) ||
      overlaps(out_ptr, out_bytes, bt->ptr, uint64_t(N) * uint64_t(rsum) * 4) ||
      overlaps(out_ptr, out_bytes, l.rows->ptr, uint64_t(M) * 12))
    overlap(env, "lora's buffers");
  return l;
}

// ---- the tile ---------------------------------------------------------------------------------------
// `blockM` as given (16 or 64: a kernel's decode or general tile; 128: the dense kernel's wide
// tile, ERR_NOT_SUPPORTED from the others' validators), or 0 when absent (the launcher chooses
// by M: split_k.cuh's pick_block_m); any other value is ERR_NATIVE.
inline int requested_block_m(const Napi::Object& o) {
  const Napi::Value v = o.Get("blockM");
  if (v.IsUndefined() || v.IsNull()) return 0;
  const int b = int(int_of(o, "blockM", 16, 128));
  if (b != 16 && b != 64 && b != 128) throw_range(o.Env(), "blockM must be 16, 64 or 128");
  return b;
}

// ---- split-K (cuda/split_k.cuh) ---------------------------------------------------------------------
// The K slices a call asks for: its `splits` (1..kMaxSplits) when given, else `automatic` (the
// kernel's auto_splits for this device's SMs).
inline int requested_splits(const Napi::Object& o, int automatic) {
  const Napi::Value v = o.Get("splits");
  return v.IsUndefined() || v.IsNull() ? automatic : int(int_of(o, "splits", 1, gemm::kMaxSplits));
}

// A call's own float32 [splits, M, N] buffer for the slices' partial sums, from the device memory
// cache (so a repeated call allocates nothing), held by the call until its kernels are done.
inline std::shared_ptr<de::Allocation> partial_buffer(int device, int splits, int64_t M, int64_t N) {
  auto p = std::make_shared<de::Allocation>();
  p->device = device;
  p->bytes = size_t(splits) * size_t(M) * size_t(N) * 4;
  p->ptr = rt::alloc(device, p->bytes);
  return p;
}

// A checked linearDense call: its arguments for the launcher, its device, the allocations it
// uses (x, w, out, and bias and the LoRA buffers when given) and the LoRA row table.
struct LinearCall {
  gemm::DenseGemmArgs args;
  int device = 0;
  std::vector<std::shared_ptr<de::Allocation>> keep;
  LoraArg lora;
};


inline LinearCall linear_call(const Napi::Object& o) {
  Napi::Env env = o.Env();
  LinearCall c;
  const std::shared_ptr<de::Allocation> x = de::live_alloc(env, o.Get("x"), "x");
  const std::shared_ptr<de::Allocation> w = de::live_alloc(env, o.Get("w"), "w");
  const std::shared_ptr<de::Allocation> out = de::live_alloc(env, o.Get("out"), "out");
  std::shared_ptr<de::Allocation> bias;
  const Napi::Value bv = o.Get("bias");
  if (!bv.IsUndefined() && !bv.IsNull()) bias = de::live_alloc(env, bv, "bias");

  const int64_t M = int_of(o, "M", 1, INT_MAX);
  const int64_t N = int_of(o, "N", 1, INT_MAX);
  const int64_t K = int_of(o, "K", 1, INT_MAX);
  const DType dtype = dtype_arg(o, "dtype", "'float32', 'float16' or 'bfloat16'");
  const DType out_dtype = dtype_arg(o, "outDtype", "'float32', 'float16' or 'bfloat16'");

  if (w->device != x->device || out->device != x->device || (bias && bias->device != x->device))
    throw_range(env, "x, w, bias and out must be on the same device (x is on device " + std::to_string(x->device) +
                           ", w on " + std::to_string(w->device) + ", out on " + std::to_string(out->device) +
                           (bias ? ", bias on " + std::to_string(bias->device) : std::string()) + ")");

  // Each factor is below 2^31: the products fit in 64 bits.
  const uint64_t x_bytes = uint64_t(M) * uint64_t(K) * uint64_t(dtype_size(dtype));
  const uint64_t w_bytes = uint64_t(N) * uint64_t(K) * uint64_t(dtype_size(dtype));
  const uint64_t out_bytes = uint64_t(M) * uint64_t(N) * uint64_t(dtype_size(out_dtype));
  const uint64_t bias_bytes = bias ? uint64_t(N) * 4 : 0;
  need_bytes(env, *x, x_bytes, "x", "[M, K] of dtype");
  need_bytes(env, *w, w_bytes, "w", "[N, K] of dtype");
  need_bytes(env, *out, out_bytes, "out", "[M, N] of outDtype");
  if (bias) need_bytes(env, *bias, bias_bytes, "bias", "[N] float32");

  if (overlaps(out->ptr, out_bytes, x->ptr, x_bytes)) overlap(env, "x");
  if (overlaps(out->ptr, out_bytes, w->ptr, w_bytes)) overlap(env, "w");
  if (bias && overlaps(out->ptr, out_bytes, bias->ptr, bias_bytes)) overlap(env, "bias");

  gemm::DenseGemmArgs& a = c.args;
  a.M = int(M);
  a.N = int(N);
  a.K = int(K);
  a.x_dtype = dtype;
  a.w_dtype = dtype;
  a.out_dtype = out_dtype;
  a.x = x->ptr;
  a.w = w->ptr;
  a.bias = bias ? static_cast<const float*>(bias->ptr) : nullptr;
  a.out = out->ptr;
  // The tile: blockM 16 (decode) or 128 (wide), 16-bit inputs, or 64; absent, dense_block_m's choice by M.
  a.block_m = requested_block_m(o);
  // Split-K (16-bit inputs): the rest is checked with one slice first, so that a refused call
  // allocates nothing.
  const int splits = gemm::dense_effective_splits(
      K, requested_splits(o, gemm::dense_auto_splits(M, N, K, dtype, gemm::dense_block_m(M, a.block_m, dtype), rt::multiprocessors(x->device))));
  a.splits = 1;
  gemm::DenseGemmError refused = gemm::validate_dense_gemm(a);
  std::shared_ptr<de::Allocation> partial;
  if (refused == gemm::DenseGemmError::kNone && splits > 1) {
    if (dtype == DType::F32) throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + gemm::dense_gemm_error_message(gemm::DenseGemmError::kSplits)), "ERR_NOT_SUPPORTED");
    partial = partial_buffer(x->device, splits, M, N);
    a.splits = splits;
    a.partial = static_cast<float*>(partial->ptr);
    refused = gemm::validate_dense_gemm(a);
  }
  if (refused != gemm::DenseGemmError::kNone)
    throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + gemm::dense_gemm_error_message(refused)),
                          "ERR_NOT_SUPPORTED");

  c.lora = lora_arg(o, M, N, x->device, out->ptr, out_bytes);
  a.lora = c.lora.ep;

  c.device = x->device;
  c.keep.reserve(8);
  c.keep.push_back(x);
  c.keep.push_back(w);
  c.keep.push_back(out);
  if (bias) c.keep.push_back(bias);
  if (partial) c.keep.push_back(partial);
  for (const auto& k : c.lora.keep) c.keep.push_back(k);
  return c;
}

// ---- running a checked call --------------------------------------------------------------------
// The LoRA row table's upload, then the kernel, on the device's stream. Sync: waits (the call's
// allocations are held by `keep` until then). Async: a promise settled when the kernel is done;
// the op holds the allocations and the row table (AsyncOp::host_keep) until then, so nothing is
// freed, or reused by the host pool, under the stream.
inline Napi::Value run_gemm(const Napi::Env& env, int device, std::vector<std::shared_ptr<de::Allocation>> keep,
                            const LoraArg& lora, const rt::Kernel& kernel, bool async) {
  if (!async) {
    rt::Stream& s = de::stream_for(device);
    lora.upload(s);
    s.launch(kernel);
    s.synchronize();
    return env.Undefined();
  }
  std::unique_ptr<de::AsyncOp> op(new de::AsyncOp);
  op->keep = std::move(keep);
  if (lora.table) op->host_keep.push_back(lora.table);
  return de::run_async(env, device, std::move(op), [&lora, &kernel](rt::Stream& s, de::AsyncOp&) {
    lora.upload(s);
    s.launch(kernel);
  });
}

// ---- exports ------------------------------------------------------------------------------------
inline Napi::Value LinearDense(const Napi::CallbackInfo& info) {
  LinearCall c = linear_call(object_arg(info));
  return run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, dense_kernel(c.args), false);
}

inline Napi::Value LinearDenseAsync(const Napi::CallbackInfo& info) {
  LinearCall c = linear_call(object_arg(info));
  return run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, dense_kernel(c.args), true);
}

inline void register_all_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("linearDense", Napi::Function::New(env, de::guard<LinearDense>, "linearDense"));
  exports.Set("linearDenseAsync", Napi::Function::New(env, de::guard<LinearDenseAsync>, "linearDenseAsync"));
}

}  // namespace gemm_exports
}  // namespace binding
}  // namespace cg
