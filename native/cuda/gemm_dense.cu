// The dense GEMMs (gemm_dense.cuh: the tensor-core kernel for 16-bit inputs and
// gemm_dense_f32.cuh's CUDA-core kernel for float32) compiled by nvcc into the CUDA addon: every
// configuration launch_dense_gemm can pick is instantiated here, so ptxas assembles (and reports
// registers, shared memory and spills for) each one on every build; binding_gemm.cu launches
// through it. The simulated device runs the same source (native/binding/cuda_sim/gemm.cc).
//
// ptxas, CUDA 13.0 (CMakeLists.txt: -Xptxas=-v,-warn-spills,-warn-lmem-usage --Werror=all-warnings,
// so the build prints these and fails on a spill), 0 bytes of stack frame, spill stores and spill
// loads everywhere; shared memory is dynamic only. Registers on sm_80 / sm_89 / sm_90a (2026-12-03):
//   dense_gemm_kernel<DenseTile, kBf16, kOut> (6 instances):       88 / 80 / 80, 1 barrier, kSmemBytes = 30720
//   dense_gemm_kernel<DenseDecodeTile, kBf16, kOut> (6 instances): 56 / 48 / 47, 1 barrier, kSmemBytes = 38400
//   dense_gemm_kernel<DenseWideTile, kBf16, kOut> (6 instances):   80 / 72 / 72, 1 barrier, kSmemBytes = 46080
//   dense_gemm_f32_kernel<kOut> (3 instances):                     72 on sm_90a, 1 barrier, DenseF32Tile::kSmemBytes = 20480
#include "cuda/gemm_dense.cuh"

namespace cg {
namespace gemm {

// A host-side use of every configuration, so that each kernel instance is compiled even before
// an export calls the launcher.
DenseGemmStatus launch_dense_gemm_entry(const DenseGemmArgs& a, DenseGemmStream stream) {
  return launch_dense_gemm(a, stream);
}

}  // namespace gemm
}  // namespace cg
