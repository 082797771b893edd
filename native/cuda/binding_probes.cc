// runProbe(args) -> { ok, error, regs } [sync], on the GPU: the real CUDA addon's face of the
// probe kernels (native/cuda/probes/probe_kernels.cuh), for scripts/gpu-check.sh. It takes the
// same arguments and gives the same result shape as the simulated device's runProbe
// (native/binding/cuda_sim/probes.cc, which documents each kind); both read them with
// binding/probe_args.h. It runs on device 0: inputs are copied into cudaMalloc'd memory, the
// probe kernel is launched (one block of one warp), and its registers are copied back.
//
// ok is always true in a result: a GPU does not refuse as the simulator does. Every CUDA call is
// checked; a failure (no driver or device, a launch error, a fault inside the kernel such as a
// misaligned ldmatrix address) throws a JS Error with code 'ERR_CUDA' and the CUDA error's name
// in `cudaError` (as binding_cuda.cc's Guard does). A fault inside a kernel leaves the CUDA
// context unusable for the rest of the process, so the caller runs such probes in a child
// process. Argument errors throw as on the simulated device (ERR_NATIVE).
//
// The kernels are compiled by nvcc in probe_kernels.cu; this file is plain C++ (the host
// compiler), so it launches them with cudaLaunchKernel through their host stubs, declared below
// with the kernels' exact signatures. A declaration that drifted from its kernel would name a
// symbol that nothing defines and the addon would not load (the build's smoke test loads it).
#include <napi.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "binding/probe_args.h"
#include "cuda/cuda_check.h"

// The host stubs of the __global__ probe kernels (probe_kernels.cuh; defined in probe_kernels.cu).
namespace cg {
namespace probes {
void probe_ldmatrix(int num, int trans, int fault_lane, int fault, const uint8_t* outside, uint32_t* regs);
void probe_mma(int bf16, const uint32_t* a, const uint32_t* b, const float* c, float* d);
void probe_mma_sp(int bf16, int selector, const uint32_t* a, const uint32_t* b, const float* c, const uint32_t* e,
                  float* d);
void probe_mma_tile(int bf16, const uint16_t* a, const uint16_t* b, float* d);
void probe_cp_async(int bytes, int hinted, const int32_t* src_bytes, const uint8_t* src, uint32_t* regs);
void probe_shfl(int mode, const uint32_t* values, const uint32_t* operand, uint32_t* regs);
void probe_lop3(const uint32_t* a, const uint32_t* b, const uint32_t* c, const uint32_t* luts, int nluts,
                uint32_t* regs);
void probe_prmt(const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* regs);
void probe_fma16x2(int bf16, const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* regs);
}  // namespace probes
}  // namespace cg

namespace cg {
namespace binding {
namespace {

namespace pa = probe_args;

// Device memory for one probe call, freed on every path (a failing cudaFree is not reported: the
// error that unwound is the one worth reporting).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes) CG_CUDA_CHECK(cudaMalloc(&p_, bytes));
    if (bytes) CG_CUDA_CHECK(cudaMemset(p_, 0, bytes));
  }
  // A copy of an input (nullptr when the input is empty).
  explicit DeviceBuffer(const pa::Blob& in) : DeviceBuffer(in.size()) {
    if (!in.empty()) CG_CUDA_CHECK(cudaMemcpy(p_, in.data(), in.size(), cudaMemcpyHostToDevice));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_) (void)cudaFree(p_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
};

template <class T>
struct NonDeduced {
  using type = T;
};

// One block of one warp, as the launchers of probe_kernels.cuh. The arguments take the kernel's
// parameter types (converted as in a call), and cudaLaunchKernel reads each from its address.
template <class... Args>
void launch(const char* what, void (*kernel)(Args...), size_t smem, typename NonDeduced<Args>::type... args) {
  void* params[] = {static_cast<void*>(&args)...};
  const cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(1, 1, 1), dim3(pa::kWarp, 1, 1),
                                         params, smem, nullptr);
  ::cg::cuda_check(e, what, __FILE__, __LINE__);
}

void run(const pa::ProbeRequest& q, uint32_t* out_device) {
  switch (q.kind) {
    case pa::Kind::kLdmatrix: {
      DeviceBuffer outside(16);
      launch("cudaLaunchKernel(probe_ldmatrix)", probes::probe_ldmatrix, pa::kLdmSmemBytes, q.num, q.trans ? 1 : 0,
             q.fault_lane, q.fault, static_cast<const uint8_t*>(outside.as<uint8_t>()), out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kMma: {
      DeviceBuffer a(q.a), b(q.b), c(q.c);
      launch("cudaLaunchKernel(probe_mma)", probes::probe_mma, 0, q.bf16 ? 1 : 0,
             static_cast<const uint32_t*>(a.as<uint32_t>()), static_cast<const uint32_t*>(b.as<uint32_t>()),
             static_cast<const float*>(c.as<float>()), reinterpret_cast<float*>(out_device));
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kMmaSp: {
      DeviceBuffer a(q.a), b(q.b), c(q.c), e(q.e);
      launch("cudaLaunchKernel(probe_mma_sp)", probes::probe_mma_sp, 0, q.bf16 ? 1 : 0, q.selector,
             static_cast<const uint32_t*>(a.as<uint32_t>()), static_cast<const uint32_t*>(b.as<uint32_t>()),
             static_cast<const float*>(c.as<float>()), static_cast<const uint32_t*>(e.as<uint32_t>()),
             reinterpret_cast<float*>(out_device));
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kMmaTile: {
      DeviceBuffer a(q.a), b(q.b);
      launch("cudaLaunchKernel(probe_mma_tile)", probes::probe_mma_tile, pa::kTileSmemBytes, q.bf16 ? 1 : 0,
             static_cast<const uint16_t*>(a.as<uint16_t>()), static_cast<const uint16_t*>(b.as<uint16_t>()),
             reinterpret_cast<float*>(out_device));
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kCpAsync: {
      DeviceBuffer src_bytes(q.src_bytes), src(q.src);
      launch("cudaLaunchKernel(probe_cp_async)", probes::probe_cp_async, size_t(2 * pa::kWarp) * size_t(q.bytes), q.bytes, q.hinted ? 1 : 0,
             static_cast<const int32_t*>(src_bytes.as<int32_t>()), static_cast<const uint8_t*>(src.as<uint8_t>()),
             out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kShfl: {
      DeviceBuffer values(q.values), operand(q.operand);
      launch("cudaLaunchKernel(probe_shfl)", probes::probe_shfl, 0, q.mode,
             static_cast<const uint32_t*>(values.as<uint32_t>()), static_cast<const uint32_t*>(operand.as<uint32_t>()),
             out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kLop3: {
      DeviceBuffer a(q.a), b(q.b), c(q.c), luts(q.luts);
      launch("cudaLaunchKernel(probe_lop3)", probes::probe_lop3, 0, static_cast<const uint32_t*>(a.as<uint32_t>()),
             static_cast<const uint32_t*>(b.as<uint32_t>()), static_cast<const uint32_t*>(c.as<uint32_t>()),
             static_cast<const uint32_t*>(luts.as<uint32_t>()), q.nluts, out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kFma16x2: {
      DeviceBuffer a(q.a), b(q.b), c(q.c);
      launch("cudaLaunchKernel(probe_fma16x2)", probes::probe_fma16x2, 0, q.bf16 ? 1 : 0,
             static_cast<const uint32_t*>(a.as<uint32_t>()), static_cast<const uint32_t*>(b.as<uint32_t>()),
             static_cast<const uint32_t*>(c.as<uint32_t>()), out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
    case pa::Kind::kPrmt: {
      DeviceBuffer a(q.a), b(q.b), c(q.c);
      launch("cudaLaunchKernel(probe_prmt)", probes::probe_prmt, 0, static_cast<const uint32_t*>(a.as<uint32_t>()),
             static_cast<const uint32_t*>(b.as<uint32_t>()), static_cast<const uint32_t*>(c.as<uint32_t>()), out_device);
      CG_CUDA_CHECK(cudaDeviceSynchronize());
      return;
    }
  }
}

Napi::Error cuda_js_error(Napi::Env env, const CudaError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, "ERR_CUDA"));
  err.Set("cudaError", Napi::String::New(env, e.name()));
  err.Set("cudaErrorCode", Napi::Number::New(env, double(int(e.code()))));
  return err;
}

Napi::Value RunProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    // Arguments first: a bad call is ERR_NATIVE whether or not there is a device.
    const pa::ProbeRequest q = pa::parse_probe(object_arg(info));
    CG_CUDA_CHECK(cudaSetDevice(0));
    std::vector<uint32_t> regs(q.out_words, 0);
    {
      DeviceBuffer out(q.out_words * 4);
      run(q, out.as<uint32_t>());
      CG_CUDA_CHECK(cudaMemcpy(regs.data(), out.as<uint32_t>(), q.out_words * 4, cudaMemcpyDeviceToHost));
    }
    return pa::probe_result(env, true, std::string(), regs.data(), q.out_words);
  } catch (const Napi::Error&) {
    throw;
  } catch (const CudaError& e) {
    throw cuda_js_error(env, e);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("compressed-gemm CUDA addon: ") + e.what());
  }
}

}  // namespace

void register_probe_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("runProbe", Napi::Function::New(env, RunProbe, "runProbe"));
}

}  // namespace binding
}  // namespace cg
