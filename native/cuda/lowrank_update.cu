// The in-place low-rank update (lowrank_update.cuh) compiled by nvcc into the CUDA addon: every
// configuration launch_lowrank can pick is instantiated here, so ptxas assembles (and reports
// registers and spills for) each one on every build; binding_gemm.cu launches through it. The
// simulated device runs the same source (binding/cuda_sim/gemm.cc).
#include "cuda/lowrank_update.cuh"

namespace cg {
namespace gemm {

cudaError_t launch_lowrank_entry(const LowRankArgs& a, bool sparse, DenseGemmStream stream) {
  return launch_lowrank(a, sparse, stream);
}

}  // namespace gemm
}  // namespace cg
