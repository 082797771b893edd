// The CUDA addon's N-API surface (build: CMakeLists.txt, via cmake-js). lib/binding.ts declares
// it. No compute kernels yet:
//   probe()                 -> devices, driver/runtime versions; never throws
//   compiledArchitectures() -> [80, 89, 90]: the SASS targets compiled in
//   compiledTargets()       -> ['sm_80', 'sm_89', 'sm_90a']
//   selfTest(device = 0)    -> launches a tiny kernel when the device exists; never throws
//
// Errors: a cg::CudaError escaping an export becomes a JS Error with code 'ERR_CUDA' and the
// CUDA error's name in `cudaError` (see Guard). NODE_ADDON_API_CPP_EXCEPTIONS_ALL (set by CMake)
// turns any other stray C++ exception into a JS Error instead of std::terminate.
#include <napi.h>

#include <exception>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/device_query.h"

namespace {

Napi::Error cuda_js_error(Napi::Env env, const cg::CudaError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, "ERR_CUDA"));
  err.Set("cudaError", Napi::String::New(env, e.name()));
  err.Set("cudaErrorCode", Napi::Number::New(env, double(int(e.code()))));
  return err;
}

// Wraps an export so that a CUDA failure surfaces as ERR_CUDA and nothing else escapes as a
// native exception. Napi::Error passes through untouched (TypeError/RangeError from checks).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const cg::CudaError& e) {
    throw cuda_js_error(info.Env(), e);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("compressed-gemm CUDA addon: ") + e.what());
  }
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cg::CudaProbeResult r = cg::cuda_probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", Napi::Boolean::New(env, r.ok));
  o.Set("deviceCount", Napi::Number::New(env, r.deviceCount));
  if (!r.ok) {
    o.Set("error", Napi::String::New(env, r.error));
    o.Set("errorName", Napi::String::New(env, r.errorName));
  }
  o.Set("runtimeVersion", Napi::Number::New(env, r.runtimeVersion));
  o.Set("driverVersion", Napi::Number::New(env, r.driverVersion));
  Napi::Array devices = Napi::Array::New(env, r.devices.size());
  for (size_t i = 0; i < r.devices.size(); ++i) {
    const cg::CudaDeviceInfo& d = r.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", Napi::Number::New(env, d.index));
    dev.Set("name", Napi::String::New(env, d.name));
    dev.Set("computeCapability", Napi::String::New(env, std::to_string(d.major) + "." + std::to_string(d.minor)));
    dev.Set("sm", Napi::Number::New(env, d.major * 10 + d.minor));
    dev.Set("totalMemory", Napi::Number::New(env, double(d.totalMemory)));
    dev.Set("multiProcessorCount", Napi::Number::New(env, d.multiProcessorCount));
    dev.Set("sharedMemPerBlockOptin", Napi::Number::New(env, double(d.sharedMemPerBlockOptin)));
    dev.Set("l2CacheSize", Napi::Number::New(env, d.l2CacheSize));
    dev.Set("kernelsSupported", Napi::Boolean::New(env, d.kernelsSupported));
    devices.Set(uint32_t(i), dev);
  }
  o.Set("devices", devices);
  return o;
}

Napi::Value CompiledArchitectures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& archs = cg::compiled_architectures();
  Napi::Array a = Napi::Array::New(env, archs.size());
  for (size_t i = 0; i < archs.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, archs[i]));
  return a;
}

Napi::Value CompiledTargets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& targets = cg::compiled_targets();
  Napi::Array a = Napi::Array::New(env, targets.size());
  for (size_t i = 0; i < targets.size(); ++i) a.Set(uint32_t(i), Napi::String::New(env, targets[i]));
  return a;
}

Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "selfTest: device must be a number");
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 1024) || double(int(d)) != d)
      throw Napi::RangeError::New(env, "selfTest: device must be an integer in [0, 1024)");
    device = int(d);
  }
  const cg::CudaSelfTestResult r = cg::cuda_self_test(device);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ran", Napi::Boolean::New(env, r.ran));
  o.Set("passed", Napi::Boolean::New(env, r.passed));
  o.Set("device", Napi::Number::New(env, r.device));
  o.Set("binaryVersion", Napi::Number::New(env, r.binaryVersion));
  o.Set("ptxVersion", Napi::Number::New(env, r.ptxVersion));
  if (!r.errorName.empty()) {
    o.Set("error", Napi::String::New(env, r.error));
    o.Set("errorName", Napi::String::New(env, r.errorName));
  }
  return o;
}

}  // namespace

namespace cg {
namespace binding {
// Defined by binding_device.cc (device memory and streams), binding_gemm.cu (the dense GEMM
// over device memory: linearDense, linearDenseAsync) and binding_probes.cc (the probe kernels of
// scripts/gpu-check.sh).
void register_device_exports(Napi::Env env, Napi::Object exports);
void register_gemm_exports(Napi::Env env, Napi::Object exports);
void register_probe_exports(Napi::Env env, Napi::Object exports);
}  // namespace binding
}  // namespace cg

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cg::binding::register_device_exports(env, exports);
  cg::binding::register_gemm_exports(env, exports);
  cg::binding::register_probe_exports(env, exports);
  exports.Set("probe", Napi::Function::New(env, Guard<Probe>, "probe"));
  exports.Set("compiledArchitectures", Napi::Function::New(env, Guard<CompiledArchitectures>, "compiledArchitectures"));
  exports.Set("compiledTargets", Napi::Function::New(env, Guard<CompiledTargets>, "compiledTargets"));
  exports.Set("selfTest", Napi::Function::New(env, Guard<SelfTest>, "selfTest"));
  return exports;
}

}  // namespace

NODE_API_MODULE(compressed_gemm_cuda, Init)
