// The 2:4 sparse GEMM (gemm_sparse24.cuh) compiled by nvcc into the CUDA addon: every
// configuration launch_sparse24_gemm can pick is instantiated here, so ptxas assembles (and
// reports registers, shared memory and spills for) each one on every build; binding_gemm.cu
// launches through it. The simulated device runs the same source (binding/cuda_sim/gemm.cc).
#include "cuda/gemm_sparse24.cuh"

namespace cg {
namespace gemm {

Sparse24LaunchStatus launch_sparse24_gemm_entry(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  return launch_sparse24_gemm(a, stream);
}

}  // namespace gemm
}  // namespace cg
