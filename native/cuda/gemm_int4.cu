// The INT4 GEMM (gemm_int4.cuh: the act-order permutation and the W4A16 tensor-core kernel)
// compiled by nvcc into the CUDA addon: every configuration launch_int4_gemm can pick is
// instantiated here, so ptxas assembles (and reports registers, shared memory and spills for)
// each one on every build; binding_gemm.cu launches through it. The simulated device runs the
// same source (native/binding/cuda_sim/gemm.cc).
//
// ptxas, CUDA 13.0 (CMakeLists.txt: -Xptxas=-v,-warn-spills,-warn-lmem-usage --Werror=all-warnings),
// 0 bytes of stack frame, spill stores and spill loads; shared memory is dynamic only:
//   PTXAS_REPORT
#include "cuda/gemm_int4.cuh"

namespace cg {
namespace gemm {

// A host-side use of every configuration, so that each kernel instance is compiled even before
// an export calls the launcher.
Int4GemmStatus launch_int4_gemm_entry(const Int4GemmArgs& a, DenseGemmStream stream) {
  return launch_int4_gemm(a, stream);
}

}  // namespace gemm
}  // namespace cg
