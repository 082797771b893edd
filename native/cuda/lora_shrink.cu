// The LoRA shrink (lora_shrink.cuh) compiled by nvcc into the CUDA addon: every configuration
// launch_lora_shrink can pick is instantiated here, so ptxas assembles (and reports registers
// and spills for) each one on every build; binding_gemm.cu launches through it. The simulated
// device runs the same source (binding/cuda_sim/gemm.cc).
// ptxas (CUDA 13.0): lora_shrink_kernel<F32|F16|BF16>: 48 registers on sm_80, sm_89 and sm_90a,
// 1 barrier, no spills, kShrinkSmemBytes = 10368 of dynamic shared memory.
#include "cuda/lora_shrink.cuh"

namespace cg {
namespace gemm {

cudaError_t launch_lora_shrink_entry(const LoraShrinkArgs& s, DenseGemmStream stream) {
  return launch_lora_shrink(s, stream);
}

}  // namespace gemm
}  // namespace cg
