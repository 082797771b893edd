// The INT4 GEMM (gemm_int4.cuh: the act-order permutation and the W4A16 tensor-core kernel)
// compiled by nvcc into the CUDA addon: every configuration launch_int4_gemm can pick is
// instantiated here, so ptxas assembles (and reports registers, shared memory and spills for)
// each one on every build; binding_gemm.cu launches through it. The simulated device runs the
// same source (native/binding/cuda_sim/gemm.cc).
//
// ptxas, CUDA 13.0 (CMakeLists.txt: -Xptxas=-v,-warn-spills,-warn-lmem-usage --Werror=all-warnings),
// 0 bytes of stack frame, spill stores and spill loads; shared memory is dynamic only:
//   int4_gemm_kernel<Int4Tile, kBf16, kOut> (6 instances; split-K, evict-first code stream): 104
//     registers on sm_80, 90 on sm_89 and sm_90a (2026-12-03; 106 / 72 / 80 before the
//     warp-by-warp reduction), 1 barrier, kSmemBytes = 17408
//   int4_gemm_kernel<Int4WideTile, kBf16, kOut> (6 instances): 229 registers on sm_80 and sm_89,
//     227 on sm_90a (128 accumulators), 1 barrier, kSmemBytes = 45056: 2 blocks per SM by registers
//   split_k_reduce_kernel<kOut> (split_k.cuh; 3 instances): 32 registers on sm_80 and sm_90a, 40 on sm_89
//   permute_x_kernel<uint16_t>: 18 registers on sm_80 and sm_89, 20 on sm_90a, no barrier
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
