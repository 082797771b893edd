// The in-place low-rank update (lowrank_update.cuh) compiled by nvcc into the CUDA addon: every
// configuration launch_lowrank can pick is instantiated here, so ptxas assembles (and reports
// registers and spills for) each one on every build; binding_gemm.cu launches through it. The
// simulated device runs the same source (binding/cuda_sim/gemm.cc).
// ptxas (CUDA 13.0), no spills, no local memory, no barrier:
//   lowrank_dense_kernel<F32|F16|BF16>: 32 registers on sm_80 and sm_90a, 40 on sm_89
//   lowrank_sparse24_kernel<F16|BF16>: 48 registers on sm_80, 43 on sm_89, 40 on sm_90a
#include "cuda/lowrank_update.cuh"

namespace cg {
namespace gemm {

cudaError_t launch_lowrank_entry(const LowRankArgs& a, bool sparse, DenseGemmStream stream) {
  return launch_lowrank(a, sparse, stream);
}

}  // namespace gemm
}  // namespace cg
