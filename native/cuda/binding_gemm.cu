// The GEMMs over device memory on the GPU: linearDense / linearDenseAsync (binding/gemm_exports.h)
// and linearSparse24 / linearSparse24Async (binding/gemm_sparse24_exports.h), which document them, over the CUDA runtime (cuda/runtime/
// runtime_cuda.cc) and the device memory, handles and streams of binding/device_exports.h (whose
// platform_failure() binding_device.cc defines). Compiled by nvcc: gemm_dense.cuh is CUDA source;
// the kernels themselves are instantiated once, in gemm_dense.cu and gemm_sparse24.cu.
// Without a usable device the handles cannot exist (deviceAlloc fails with ERR_CUDA), so these
// fail with argument errors or ERR_CUDA, never crash.
#include <napi.h>

#include "binding/gemm_exports.h"
#include "binding/gemm_sparse24_exports.h"
#include "binding/timing_exports.h"
#include "binding/gemm_int4_exports.h"
#include "binding/lowrank_exports.h"
#include "binding/lora_exports.h"

namespace cg {
namespace binding {

void register_gemm_exports(Napi::Env env, Napi::Object exports) {
  gemm_exports::register_all_gemm(env, exports);
  gemm_sparse24_exports::register_all_sparse24(env, exports);
  timing_exports::register_all_timing(env, exports);
  gemm_int4_exports::register_all_int4(env, exports);
  lowrank_exports::register_all_lowrank(env, exports);
  lora_exports::register_all_lora(env, exports);
}

}  // namespace binding
}  // namespace cg
