// The LoRA shrink (lora_shrink.cuh) compiled by nvcc into the CUDA addon: every configuration
// launch_lora_shrink can pick is instantiated here, so ptxas assembles (and reports registers
// and spills for) each one on every build; binding_gemm.cu launches through it. The simulated
// device runs the same source (binding/cuda_sim/gemm.cc).
// ptxas (CUDA 13.0, 2026-12-04): lora_shrink_kernel<F32|F16|BF16> with the K split: 67-68
// registers on sm_90a, 1 barrier (S > 1 only), no spills, 256 bytes of shared memory (S > 1).
// (2026-12-03, one warp per rank: 56 registers on sm_80 and sm_89, 59-64 on sm_90a, no barrier;
// the shared-memory version before it: 48 registers, 1 barrier, 10368 bytes.)
#include "cuda/lora_shrink.cuh"

namespace cg {
namespace gemm {

cudaError_t launch_lora_shrink_entry(const LoraShrinkArgs& s, DenseGemmStream stream) {
  return launch_lora_shrink(s, stream);
}

}  // namespace gemm
}  // namespace cg
