// runDenseGemm(args) -> { ok, error } [sync]: the dense GEMM (native/cuda/gemm_dense.cuh: the
// tensor-core kernel for 16-bit inputs, gemm_dense_f32.cuh's for float32) on the simulated device, Y = X·Wᵀ (+ bias), over the caller's
// arrays: `out` is written in place (only its M*N elements; nothing around a subarray view is
// touched), x and w are read in place when 16-byte aligned and from an aligned copy otherwise
// (cp.async reads 16-byte chunks; a copy of a read-only input changes nothing the caller sees).
//
// args (typed arrays of exactly the sizes named):
//   M, N, K: integers >= 1 (M*K, N*K, M*N below 2^31)
//   dtype: 'float16' | 'bfloat16' | 'float32' (X's, and W's unless wDtype says otherwise)
//   wDtype?: W's dtype (default dtype): a differing one reaches the launcher, which refuses it
//   x: [M*K], w: [N*K], row-major: Uint16Array (16-bit bits) or Float32Array for float32
//   bias: Float32Array [N] | null | undefined
//   outDtype: 'float32' | 'float16' | 'bfloat16'
//   out: Float32Array [M*N] for float32, Uint16Array [M*N] otherwise; must not overlap the inputs
// ok is false, with error, for a configuration the launcher refuses (K % 8 != 0 for 16-bit inputs,
// K % 4 != 0 for float32, X and W of different dtypes: its message) or a launch the simulator refused (its first
// refusal, naming kernel, block and thread); error is null when ok. Malformed arguments throw
// (ERR_NATIVE, binding/args.h).
//
// linearDense(args) [sync] and linearDenseAsync(args) -> Promise: the same GEMM over device
// memory handles (deviceAlloc), on the device's stream: binding/gemm_exports.h, shared with the
// CUDA addon (cuda/binding_gemm.cu), documents them.
//
// faultStream(device = 0) [sim only, for tests]: enqueues on the device's stream (the one every
// copy and linearDense use) a kernel the simulator refuses, so the stream holds the sticky
// cudaErrorLaunchFailure a faulted kernel leaves: every later call on that device fails with
// ERR_CUDA for the rest of the process (tests call it in a child process).
#include <napi.h>

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/cuda_sim/entry_points.h"
#include "binding/gemm_exports.h"
#include "binding/gemm_sparse24_exports.h"
#include "binding/timing_exports.h"
#include "binding/gemm_int4_exports.h"
#include "binding/lowrank_exports.h"
#include "binding/lora_exports.h"
#include "cuda/gemm_dense.cuh"

namespace cg {
namespace binding {
namespace {

// A typed array of the one element type `type` (what ERR_NATIVE names if not).
Bytes typed_of(const Napi::Object& o, const char* key, napi_typedarray_type type, const char* type_name,
               size_t elements, size_t elem_bytes) {
  const Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(o.Env(), std::string(key) + " must be a " + type_name);
  return bytes_sized(o, key, elements * elem_bytes);
}

// A 16-byte aligned view of `in`: in itself, or a copy held by `copy`.
const void* aligned16(const Bytes& in, std::vector<uint64_t>& copy) {
  if (reinterpret_cast<uintptr_t>(in.data) % 16 == 0) return in.data;
  copy.assign(in.length / 8 + 3, 0);  // 16 spare bytes: the start is aligned by hand below
  uint8_t* p = reinterpret_cast<uint8_t*>(copy.data());
  p += (16 - reinterpret_cast<uintptr_t>(p) % 16) % 16;
  std::memcpy(p, in.data, in.length);
  return p;
}

Napi::Value RunDenseGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const Napi::Object o = object_arg(info);
    const int64_t M = int_of(o, "M", 1, kMaxDim - 1);
    const int64_t N = int_of(o, "N", 1, kMaxDim - 1);
    const int64_t K = int_of(o, "K", 1, kMaxDim - 1);
    need(env, M * K < kMaxDim && N * K < kMaxDim && M * N < kMaxDim, "M*K, N*K and M*N must be below 2^31");
    const DType x_dtype = dtype_of(o, "dtype");
    const Napi::Value wv = o.Get("wDtype");
    const DType w_dtype = (wv.IsUndefined() || wv.IsNull()) ? x_dtype : dtype_of(o, "wDtype");
    const DType out_dtype = dtype_of(o, "outDtype");

    // 16-bit inputs travel as Uint16Array bits, float32 inputs as Float32Array.
    const auto input = [&](const char* key, DType t, int64_t elements) {
      return t == DType::F32 ? typed_of(o, key, napi_float32_array, "Float32Array", size_t(elements), 4)
                             : typed_of(o, key, napi_uint16_array, "Uint16Array", size_t(elements), 2);
    };
    const Bytes x = input("x", x_dtype, M * K);
    const Bytes w = input("w", w_dtype, N * K);
    Bytes bias;
    const Napi::Value bv = o.Get("bias");
    if (!bv.IsUndefined() && !bv.IsNull()) bias = typed_of(o, "bias", napi_float32_array, "Float32Array", size_t(N), 4);
    const Bytes out = out_dtype == DType::F32
                          ? typed_of(o, "out", napi_float32_array, "Float32Array", size_t(M * N), 4)
                          : typed_of(o, "out", napi_uint16_array, "Uint16Array", size_t(M * N), 2);
    need(env, !overlap(out, x) && !overlap(out, w) && !overlap(out, bias), "out must not overlap x, w or bias");

    std::vector<uint64_t> x_copy, w_copy;
    gemm::DenseGemmArgs a;
    a.M = int(M);
    a.N = int(N);
    a.K = int(K);
    a.x_dtype = x_dtype;
    a.w_dtype = w_dtype;
    a.out_dtype = out_dtype;
    a.x = aligned16(x, x_copy);
    a.w = aligned16(w, w_copy);
    a.bias = reinterpret_cast<const float*>(bias.data);
    a.out = out.data;
    const gemm::DenseGemmStatus s = gemm::launch_dense_gemm(a, nullptr);

    Napi::Object r = Napi::Object::New(env);
    if (s.error != gemm::DenseGemmError::kNone) {
      r.Set("ok", Napi::Boolean::New(env, false));
      r.Set("error", Napi::String::New(env, gemm::dense_gemm_error_message(s.error)));
    } else {
      r.Set("ok", Napi::Boolean::New(env, s.launch.ok));
      r.Set("error", s.launch.ok ? env.Null() : Napi::String::New(env, s.launch.error));
    }
    return r;
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw out_of_memory(env);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("compressed-gemm simulated device: ") + e.what());
  }
}

// Thread 0 returns while the others wait at the barrier: the simulator refuses it.
__global__ void fault_stream_kernel() {
  if (threadIdx.x == 0) return;
  __syncthreads();
}

Napi::Value FaultStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw_type(env, "faultStream(device): device must be a number");
    const double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 1024) || double(int(d)) != d) throw_range(env, "faultStream(device): device out of range");
    device = int(d);
  }
  device_exports::stream_for(device).launch([](void*) {
    const sim::LaunchResult lr = CG_LAUNCH(fault_stream_kernel, sim::Dim3{1}, sim::Dim3{64}, 0, nullptr);
    return lr.ok ? std::string() : lr.error;
  });
  return env.Undefined();
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("runDenseGemm", Napi::Function::New(env, RunDenseGemm, "runDenseGemm"));
  gemm_exports::register_all_gemm(env, exports);
  gemm_sparse24_exports::register_all_sparse24(env, exports);
  timing_exports::register_all_timing(env, exports);
  gemm_int4_exports::register_all_int4(env, exports);
  lowrank_exports::register_all_lowrank(env, exports);
  lora_exports::register_all_lora(env, exports);
  exports.Set("faultStream", Napi::Function::New(env, device_exports::guard<FaultStream>, "faultStream"));
}

}  // namespace binding
}  // namespace cg
