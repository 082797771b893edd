// The simulated CUDA device's addon: registers each entry-point file's exports (entry_points.h).
#include <napi.h>

#include "binding/cuda_sim/entry_points.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("simulated", Napi::Boolean::New(env, true));
  cg::binding::register_probes(env, exports);
  cg::binding::register_refusals(env, exports);
  cg::binding::register_gemm(env, exports);
  cg::binding::register_device(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(compressed_gemm_cuda_sim, Init)
