// The 2:4 sparse GEMM (gemm_sparse24.cuh) compiled by nvcc into the CUDA addon: every
// configuration launch_sparse24_gemm can pick is instantiated here, so ptxas assembles (and
// reports registers, shared memory and spills for) each one on every build; binding_gemm.cu
// launches through it. The simulated device runs the same source (binding/cuda_sim/gemm.cc).
//
// ptxas, CUDA 13.0 (CMakeLists.txt: -Xptxas=-v,-warn-spills,-warn-lmem-usage), no spills, no stack:
//   sparse24_gemm_kernel<Sparse24Tile, kBf16, kOut> (6 instances): 128 registers sm_80, 96 sm_89 and sm_90a
//   sparse24_gemm_kernel<Sparse24DecodeTile, ...>   (6 instances): 64 registers sm_80, 56 sm_89 and sm_90a
#include "cuda/gemm_sparse24.cuh"

namespace cg {
namespace gemm {

Sparse24LaunchStatus launch_sparse24_gemm_entry(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  return launch_sparse24_gemm(a, stream);
}

}  // namespace gemm
}  // namespace cg
