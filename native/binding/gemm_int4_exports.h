// The INT4 GEMM over device memory (native/cuda/gemm_int4.cuh) and its weight layout
// (native/cuda/gemm_int4_layout.h), as Node exports that are the same in both addons: the
// simulated device's (binding/cuda_sim/gemm.cc) and the CUDA addon's (cuda/binding_gemm.cu).
// Conventions (argument checks, codes, streams, async completion) are gemm_exports.h's.
//
//   int4DeviceLayout({ N, K, group, zeros, actOrder })  -> { bytes, Np, Kp }   [host]
//   int4ToDeviceLayout({ N, K, group, qweight, scales, zeros, perm, out })      [host] -> undefined
//       the canonical arrays (qweight Uint8Array [N*K/2]; scales Float32Array or Uint16Array
//       (float16 bits) [N*G]; zeros Uint8Array [N*G] (0..16) or null; perm Int32Array [K] (a
//       permutation of 0..K-1) or null) -> out, a Uint8Array of `bytes`, to upload as it is
//   int4FromDeviceLayout({ N, K, group, actOrder, blob, qweight, scales, zeros })  [host]
//       the inverse: blob (the downloaded bytes) -> qweight, scales (its dtype says float16 or
//       float32), zeros (a Uint8Array [N*G] to fill, or null for a symmetric weight)
//   linearInt4({ x, w, scratch, bias, out, M, N, K, group, zeros, actOrder, dtype, outDtype, blockM?, splits?, lora? })  [sync]
//   linearInt4Async({ ...the same })  -> Promise<undefined>
//
//   x        device handle: [M, K] of dtype ('float16' | 'bfloat16'), at least M*K*2 bytes
//   w        device handle: the weight's layout, at least int4DeviceLayout(...).bytes bytes
//   scratch  device handle, act-order only (else null/undefined): at least M*K*2 bytes, where the
//            permuted x is written first; must not overlap x, w or out
//   bias     device handle [N] float32, or null / undefined
//   out      device handle: [M, N] of outDtype ('float32' | 'float16' | 'bfloat16')
//   M, N, K, group  integers (K % 8 == 0; group divides K: a multiple of 16, or K)
//   zeros, actOrder booleans: what the layout holds
//   blockM   optional, the tile's rows of X: 16 (the decode tile) or 64 (the wide tile); absent:
//            16 up to M = 16, else 64 (int4_block_m); 128 (a dense tile only) ERR_NOT_SUPPORTED,
//            any other value ERR_NATIVE
//   splits   optional split-K slices, 1..8 (int4_effective_splits may give fewer); absent: chosen
//            by int4_auto_splits from the device's SM count. Above 1 the call uses the device's
//            split-K workspace (float32 [splits, M, N] at least; split_workspace below), which is
//            kept for the next call and counted by memory()
//   lora     optional, the fused LoRA term, as linearDense's (gemm_exports.h)
//
// Errors (thrown, also by the async export, before anything is enqueued): malformed arguments
// TypeError/RangeError ERR_NATIVE; a freed handle ERR_DISPOSED; out (or scratch) overlapping what
// the kernels read, ERR_OVERLAP; a configuration the kernel does not run (validate_int4_gemm):
// RangeError ERR_NOT_SUPPORTED with its message. Launch failures: ERR_CUDA, as linearDense's.
#pragma once
#include <napi.h>

#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "binding/device_exports.h"
#include "binding/gemm_exports.h"
#include "cuda/gemm_int4.cuh"

#if defined(__CUDACC__)
namespace cg {
namespace gemm {
// Defined in cuda/gemm_int4.cu, which instantiates every configuration (gemm_exports.h's reason).
Int4GemmStatus launch_int4_gemm_entry(const Int4GemmArgs& a, DenseGemmStream stream);
}  // namespace gemm
}  // namespace cg
#endif

namespace cg {
namespace binding {
namespace gemm_int4_exports {

namespace de = device_exports;
namespace ge = gemm_exports;

// ---- the kernels on a stream ----------------------------------------------------------------------
inline rt::Kernel int4_kernel(const gemm::Int4GemmArgs& a) {
  return [a](void* native_stream) -> std::string {
#if defined(__CUDACC__)
    const gemm::Int4GemmStatus s = gemm::launch_int4_gemm_entry(a, static_cast<gemm::DenseGemmStream>(native_stream));
    if (s.error != gemm::Int4GemmError::kNone) return gemm::int4_gemm_error_message(s.error);
    if (s.launch != cudaSuccess) throw CudaError(s.launch, "int4_gemm_kernel<<<...>>> (linearInt4)");
    return std::string();
#else
    const gemm::Int4GemmStatus s = gemm::launch_int4_gemm(a, native_stream);
    if (s.error != gemm::Int4GemmError::kNone) return gemm::int4_gemm_error_message(s.error);
    return s.launch.ok ? std::string() : s.launch.error;
#endif
  };
}

// ---- arguments ----------------------------------------------------------------------------------
// N, K, group of a weight: K % 8 == 0 (the format), group dividing K; the layout's sizes then fit
// in 64 bits (each factor below 2^31).
struct Int4Dims {
  int64_t N = 0, K = 0, group = 0;
};

inline Int4Dims int4_dims(const Napi::Object& o) {
  Int4Dims d;
  d.N = int_of(o, "N", 1, INT_MAX);
  d.K = int_of(o, "K", 8, INT_MAX);
  d.group = int_of(o, "group", 1, INT_MAX);
  if (d.K % 8 != 0) throw_range(o.Env(), "K must be a multiple of 8 (INT4 packs 8 columns per word)");
  if (d.K % d.group != 0) throw_range(o.Env(), "group must divide K");
  return d;
}

// A TypedArray of exactly `elements` elements of `type`, as bytes.
inline Bytes typed_exact(const Napi::Object& o, const char* key, napi_typedarray_type type, const char* type_name,
                         size_t elements, size_t elem_bytes) {
  const Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(o.Env(), std::string(key) + " must be a " + type_name);
  return bytes_sized(o, key, elements * elem_bytes);
}

inline bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

// scales: Float32Array (float32) or Uint16Array (float16 bits) of `elements`; sets f16.
inline Bytes scales_arg(const Napi::Object& o, size_t elements, bool& f16) {
  const Napi::Value v = o.Get("scales");
  f16 = v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  return f16 ? typed_exact(o, "scales", napi_uint16_array, "Uint16Array (float16 bits) or Float32Array", elements, 2)
             : typed_exact(o, "scales", napi_float32_array, "Uint16Array (float16 bits) or Float32Array", elements, 4);
}

// ---- host exports: the layout ---------------------------------------------------------------------
inline Napi::Value Int4DeviceLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = object_arg(info);
  const Int4Dims d = int4_dims(o);
  const gemm::Int4DeviceLayout l = gemm::int4_device_layout(d.N, d.K, d.group, bool_of(o, "zeros"), bool_of(o, "actOrder"));
  Napi::Object r = Napi::Object::New(env);
  r.Set("bytes", Napi::Number::New(env, double(l.total)));
  r.Set("Np", Napi::Number::New(env, double(l.Np)));
  r.Set("Kp", Napi::Number::New(env, double(l.Kp)));
  return r;
}

inline Napi::Value Int4ToDeviceLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = object_arg(info);
  const Int4Dims d = int4_dims(o);
  const int64_t G = d.K / d.group;
  const Bytes q = typed_exact(o, "qweight", napi_uint8_array, "Uint8Array", size_t(d.N * (d.K / 2)), 1);
  bool f16 = false;
  const Bytes s = scales_arg(o, size_t(d.N * G), f16);
  const bool has_zeros = !absent(o.Get("zeros"));
  const Bytes z = has_zeros ? typed_exact(o, "zeros", napi_uint8_array, "Uint8Array", size_t(d.N * G), 1) : Bytes();
  const bool act_order = !absent(o.Get("perm"));
  const Bytes p = act_order ? typed_exact(o, "perm", napi_int32_array, "Int32Array", size_t(d.K), 4) : Bytes();
  const gemm::Int4DeviceLayout l = gemm::int4_device_layout(d.N, d.K, d.group, has_zeros, act_order);
  const Bytes out = typed_exact(o, "out", napi_uint8_array, "Uint8Array", l.total, 1);
  need(env, !overlap(out, q) && !overlap(out, s) && !overlap(out, z) && !overlap(out, p), "out must not overlap the canonical arrays");
  if (act_order) {
    const int32_t* perm = reinterpret_cast<const int32_t*>(p.data);
    for (int64_t k = 0; k < d.K; ++k)
      if (perm[k] < 0 || perm[k] >= d.K) throw_range(env, "perm[" + std::to_string(k) + "] is outside 0..K-1");
  }
  gemm::int4_to_device_layout(l, q.data, s.data, f16, z.data, reinterpret_cast<const int32_t*>(p.data), out.data);
  return env.Undefined();
}

inline Napi::Value Int4FromDeviceLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = object_arg(info);
  const Int4Dims d = int4_dims(o);
  const int64_t G = d.K / d.group;
  const bool has_zeros = !absent(o.Get("zeros"));
  const gemm::Int4DeviceLayout l = gemm::int4_device_layout(d.N, d.K, d.group, has_zeros, bool_of(o, "actOrder"));
  const Bytes blob = typed_exact(o, "blob", napi_uint8_array, "Uint8Array", l.total, 1);
  const Bytes q = typed_exact(o, "qweight", napi_uint8_array, "Uint8Array", size_t(d.N * (d.K / 2)), 1);
  bool f16 = false;
  const Bytes s = scales_arg(o, size_t(d.N * G), f16);
  const Bytes z = has_zeros ? typed_exact(o, "zeros", napi_uint8_array, "Uint8Array", size_t(d.N * G), 1) : Bytes();
  need(env, !overlap(blob, q) && !overlap(blob, s) && !overlap(blob, z) && !overlap(q, s) && !overlap(q, z) && !overlap(s, z),
       "blob, qweight, scales and zeros must not overlap");
  if (l.act_order) {
    const int32_t* perm = reinterpret_cast<const int32_t*>(blob.data + l.perm_off);
    for (int64_t k = 0; k < d.K; ++k)
      if (perm[k] < 0 || perm[k] >= d.K) throw_range(env, "the layout's perm[" + std::to_string(k) + "] is outside 0..K-1");
  }
  gemm::int4_from_device_layout(l, blob.data, q.data, s.data, f16, z.data);
  return env.Undefined();
}

// ---- device exports: the GEMM ---------------------------------------------------------------------
// Split-K's partial buffer: one per device, kept for reuse and grown when a call needs more (it is
// at most kInt4MaxSplits x M x N x 4 bytes with M N below 132 x 64 x 16 = 135168 when split-K
// runs at all: about 4.3 MB), so a small-M call does not pay an allocation and the free's device
// synchronization each time. Every INT4 launch of a device runs on that device's one stream, in
// order, so calls never use it at the same time; a call holds the buffer it was given (its keep
// list), so growing it never frees memory a queued kernel still uses. Never destroyed: freeing
// device memory while the process exits could meet a runtime already torn down.
inline std::shared_ptr<de::Allocation> split_workspace(int device, size_t bytes) {
  static std::mutex* const mu = new std::mutex;
  static std::map<int, std::shared_ptr<de::Allocation>>* const cache = new std::map<int, std::shared_ptr<de::Allocation>>;
  std::lock_guard<std::mutex> lock(*mu);
  std::shared_ptr<de::Allocation>& w = (*cache)[device];
  if (!w || w->bytes < bytes) {
    auto grown = std::make_shared<de::Allocation>();
    grown->device = device;
    grown->bytes = bytes;
    grown->ptr = rt::alloc(device, bytes);
    w = grown;
  }
  return w;
}

struct Int4Call {
  gemm::Int4GemmArgs args;
  int device = 0;
  std::vector<std::shared_ptr<de::Allocation>> keep;
  ge::LoraArg lora;
};

inline Int4Call int4_call(const Napi::Object& o) {
  Napi::Env env = o.Env();
  Int4Call c;
  const std::shared_ptr<de::Allocation> x = de::live_alloc(env, o.Get("x"), "x");
  const std::shared_ptr<de::Allocation> w = de::live_alloc(env, o.Get("w"), "w");
  const std::shared_ptr<de::Allocation> out = de::live_alloc(env, o.Get("out"), "out");
  std::shared_ptr<de::Allocation> bias, scratch;
  if (!absent(o.Get("bias"))) bias = de::live_alloc(env, o.Get("bias"), "bias");
  const bool act_order = bool_of(o, "actOrder");
  const bool zeros = bool_of(o, "zeros");
  if (act_order) scratch = de::live_alloc(env, o.Get("scratch"), "scratch");
  else if (!absent(o.Get("scratch"))) throw_type(env, "scratch is only for act-order weights (actOrder: true)");

  const int64_t M = int_of(o, "M", 1, INT_MAX);
  const Int4Dims d = int4_dims(o);
  const DType dtype = ge::dtype_arg(o, "dtype", "'float16' or 'bfloat16'");
  const DType out_dtype = ge::dtype_arg(o, "outDtype", "'float32', 'float16' or 'bfloat16'");

  for (const de::Allocation* a : {w.get(), out.get(), bias.get(), scratch.get()})
    if (a && a->device != x->device)
      throw_range(env, "x, w, scratch, bias and out must be on the same device (x is on device " + std::to_string(x->device) + ")");

  const gemm::Int4DeviceLayout l = gemm::int4_device_layout(d.N, d.K, d.group, zeros, act_order);
  const uint64_t x_bytes = uint64_t(M) * uint64_t(d.K) * 2;
  const uint64_t out_bytes = uint64_t(M) * uint64_t(d.N) * uint64_t(dtype_size(out_dtype));
  const uint64_t bias_bytes = bias ? uint64_t(d.N) * 4 : 0;
  ge::need_bytes(env, *x, x_bytes, "x", "[M, K] of dtype");
  ge::need_bytes(env, *w, l.total, "w", "the INT4 device layout of [N, K] with this group, zeros and actOrder");
  ge::need_bytes(env, *out, out_bytes, "out", "[M, N] of outDtype");
  if (bias) ge::need_bytes(env, *bias, bias_bytes, "bias", "[N] float32");
  if (scratch) ge::need_bytes(env, *scratch, x_bytes, "scratch", "[M, K] of dtype");

  if (ge::overlaps(out->ptr, out_bytes, x->ptr, x_bytes)) ge::overlap(env, "x");
  if (ge::overlaps(out->ptr, out_bytes, w->ptr, l.total)) ge::overlap(env, "w");
  if (bias && ge::overlaps(out->ptr, out_bytes, bias->ptr, bias_bytes)) ge::overlap(env, "bias");
  if (scratch) {
    if (ge::overlaps(out->ptr, out_bytes, scratch->ptr, x_bytes)) ge::overlap(env, "scratch");
    if (ge::overlaps(scratch->ptr, x_bytes, x->ptr, x_bytes) || ge::overlaps(scratch->ptr, x_bytes, w->ptr, l.total))
      throw coded(Napi::RangeError::New(env, "compressed-gemm native check: scratch overlaps x or w (the permutation reads them while writing scratch)"),
                  "ERR_OVERLAP");
  }

  gemm::Int4GemmArgs& a = c.args;
  a.M = int(M);
  a.N = int(d.N);
  a.K = int(d.K);
  a.group = int(d.group);
  a.zeros = zeros;
  a.act_order = act_order;
  a.x_dtype = dtype;
  a.out_dtype = out_dtype;
  a.x = x->ptr;
  a.w = static_cast<const uint8_t*>(w->ptr);
  a.scratch = scratch ? scratch->ptr : nullptr;
  a.bias = bias ? static_cast<const float*>(bias->ptr) : nullptr;
  a.out = out->ptr;
  // The tile: blockM 16 (decode) or 64 (wide); absent (0), the launcher's choice by M.
  a.block_m = ge::requested_block_m(o);
  const gemm::Int4GemmError refused = gemm::validate_int4_gemm(a);
  if (refused != gemm::Int4GemmError::kNone)
    throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + gemm::int4_gemm_error_message(refused)),
                "ERR_NOT_SUPPORTED");

  c.lora = ge::lora_arg(o, M, d.N, x->device, out->ptr, out_bytes);
  a.lora = c.lora.ep;

  // Split-K: `splits` (1..8) as given, else int4_auto_splits for this device's SMs; a partial
  // buffer [splits, M, N] float32 of this call's own, freed with it.
  a.splits = gemm::int4_effective_splits(
      d.K, ge::requested_splits(o, gemm::int4_auto_splits(M, d.N, d.K, gemm::int4_block_m(M, a.block_m), rt::multiprocessors(x->device))));
  std::shared_ptr<de::Allocation> partial;
  if (a.splits > 1) {
    partial = split_workspace(x->device, size_t(a.splits) * size_t(M) * size_t(d.N) * 4);
    a.partial = static_cast<float*>(partial->ptr);
  }
  const gemm::Int4GemmError bad_split = gemm::validate_int4_gemm(a);
  if (bad_split != gemm::Int4GemmError::kNone)
    throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: ") + gemm::int4_gemm_error_message(bad_split)), "ERR_NOT_SUPPORTED");

  c.device = x->device;
  for (const std::shared_ptr<de::Allocation>& h : {x, w, out, bias, scratch, partial})
    if (h) c.keep.push_back(h);
  for (const auto& k : c.lora.keep) c.keep.push_back(k);
  return c;
}

inline Napi::Value LinearInt4(const Napi::CallbackInfo& info) {
  Int4Call c = int4_call(object_arg(info));
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, int4_kernel(c.args), false);
}

inline Napi::Value LinearInt4Async(const Napi::CallbackInfo& info) {
  Int4Call c = int4_call(object_arg(info));
  return ge::run_gemm(info.Env(), c.device, std::move(c.keep), c.lora, int4_kernel(c.args), true);
}

inline void register_all_int4(Napi::Env env, Napi::Object exports) {
  exports.Set("int4DeviceLayout", Napi::Function::New(env, de::guard<Int4DeviceLayout>, "int4DeviceLayout"));
  exports.Set("int4ToDeviceLayout", Napi::Function::New(env, de::guard<Int4ToDeviceLayout>, "int4ToDeviceLayout"));
  exports.Set("int4FromDeviceLayout", Napi::Function::New(env, de::guard<Int4FromDeviceLayout>, "int4FromDeviceLayout"));
  exports.Set("linearInt4", Napi::Function::New(env, de::guard<LinearInt4>, "linearInt4"));
  exports.Set("linearInt4Async", Napi::Function::New(env, de::guard<LinearInt4Async>, "linearInt4Async"));
}

}  // namespace gemm_int4_exports
}  // namespace binding
}  // namespace cg
