// The dense tensor-core GEMM (gemm_dense.cuh) compiled by nvcc into the CUDA addon: every
// configuration launch_dense_gemm can pick is instantiated here, so ptxas assembles (and reports
// registers, shared memory and spills for) each one on every build. Not exported from the CUDA
// addon yet: the simulated device runs the same source (native/binding/cuda_sim/gemm.cc).
//
// ptxas, CUDA 13.0 (nvcc -O3 -Xptxas -v,-warn-spills,-warn-lmem-usage -Werror all-warnings, the
// include paths of CMakeLists.txt): each of the 6 instances of dense_gemm_kernel<kBf16, kOut> uses
// 69 registers and 1 barrier, with 0 bytes of stack frame, spill stores and spill loads, on sm_80,
// sm_89 and sm_90a alike; shared memory is dynamic only, DenseTile::kSmemBytes = 30720 per block.
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
