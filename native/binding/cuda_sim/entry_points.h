// The simulated CUDA device's addon (compressed_gemm_cuda_sim.node, built by binding.gyp on every
// machine: it needs no nvcc). The kernels it runs are the CUDA addon's own sources, compiled by
// the host compiler over native/cuda/sim/. One file per concern:
//   probes.cc    runProbe(args): a probe kernel per PTX wrapper, per-lane registers back [sync]
//   refusals.cc  runMisbehaving(args): kernels that do what the hardware leaves undefined, so
//                that the tests see the simulator refuse each one [sync]
//   gemm.cc      runDenseGemm(args): the dense tensor-core GEMM kernel on host arrays [sync]
//   device.cc    device memory and streams of the simulated device (native/cuda/runtime/)
#pragma once
#include <napi.h>

namespace cg {
namespace binding {

void register_probes(Napi::Env env, Napi::Object exports);
void register_refusals(Napi::Env env, Napi::Object exports);
void register_gemm(Napi::Env env, Napi::Object exports);
void register_device(Napi::Env env, Napi::Object exports);

}  // namespace binding
}  // namespace cg
