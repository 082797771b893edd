// The CPU addon: registers the exports of each entry-point file (entry_points.h).
#include <napi.h>

#include "binding/cpu/entry_points.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cg::binding::register_info(env, exports);
  cg::binding::register_formats(env, exports);
  cg::binding::register_placement(env, exports);
  cg::binding::register_linear(env, exports);
  cg::binding::register_lowrank(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(compressed_gemm_cpu, Init)
