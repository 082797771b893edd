// Device memory and streams on the GPU: the exports of binding/device_exports.h (devices,
// deviceAlloc, deviceFree, copyToDevice[Async], copyToHost[Async], copyDeviceToDevice, memory)
// over the CUDA runtime (cuda/runtime/runtime_cuda.cc). Without a usable device every call but
// memory() throws (or rejects with) Error code ERR_CUDA naming the CUDA error (on a machine
// without a driver: cudaErrorInsufficientDriver); cudaErrorMemoryAllocation is ERR_CUDA_OOM.
#include <napi.h>

#include "binding/device_exports.h"
#include "cuda/cuda_check.h"

namespace cg {
namespace binding {

namespace device_exports {
bool platform_failure(const std::exception& e, Failure& out) {
  const CudaError* c = dynamic_cast<const CudaError*>(&e);
  if (!c) return false;
  out.kind = Failure::Plain;
  out.code = "ERR_CUDA";
  out.message = std::string("compressed-gemm: ") + c->what();
  out.cuda_name = c->name();
  out.cuda_code = int(c->code());
  return true;
}
}  // namespace device_exports

void register_device_exports(Napi::Env env, Napi::Object exports) { device_exports::register_all(env, exports); }

}  // namespace binding
}  // namespace cg
