// cp.async (sm_80): copies global memory into shared memory without passing through registers,
// so the next tile loads while the current one is multiplied (PTX ISA §9.7.9.25.3.1 cp.async,
// §9.7.9.25.3.2 cp.async.commit_group, §9.7.9.25.3.3 cp.async.wait_group).
//
// cp_async<Bytes>(smem, gmem, src_bytes): Bytes (cp-size) is 4, 8 or 16; the first src_bytes
// (0..Bytes) come from gmem and the rest of the Bytes are zeros: the idiom for tile edges. 16-byte
// copies use .cg (cached in L2 only: a tile is read once per block, keeping L1 for the rest);
// .cg exists only for 16 bytes, so 4 and 8 use .ca. Both addresses are aligned to Bytes.
// cp_async_commit(): the copies issued since the last commit become one group.
// cp_async_wait<N>(): returns when at most N of this thread's most recent groups are pending; the
// data is then visible to this thread only (other threads need __syncthreads()).
//
// On the simulated device: cg::sim::cp_async / cp_async_commit / cp_async_wait, which refuse
// misaligned or out-of-shared-memory destinations and keep a destination poisoned until its wait.
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

namespace cg {
namespace ptx {

template <int Bytes>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem, int src_bytes = Bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(__CUDACC__)
  const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint64_t src = static_cast<uint64_t>(__cvta_generic_to_global(gmem));
  if constexpr (Bytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(Bytes), "r"(src_bytes)
                 : "memory");
  }
#else
  ::cg::sim::cp_async(smem, gmem, Bytes, src_bytes);
#endif
}

// An L2 eviction policy that marks every line it touches evict-first (createpolicy, PTX ISA
// §9.7.9.17; sm_80): for data a kernel streams once (a weight read by one block), so that it
// does not push out of L2 what is reused (the activations, the scales). Make it once per thread.
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
#if defined(__CUDACC__)
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
#else
  return 0;  // the simulated device has no cache: the policy is a hint that changes no result
#endif
}

// cp_async<16> with an L2 cache hint (.L2::cache_hint, the policy of l2_evict_first_policy): the
// same copy, src-size zero fill and group rules; on the simulated device exactly cp_async<16>.
__device__ __forceinline__ void cp_async16_hinted(void* smem, const void* gmem, int src_bytes, uint64_t policy) {
#if defined(__CUDACC__)
  const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint64_t src = static_cast<uint64_t>(__cvta_generic_to_global(gmem));
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(dst), "l"(src), "r"(src_bytes), "l"(policy) : "memory");
#else
  (void)policy;
  ::cg::sim::cp_async(smem, gmem, 16, src_bytes);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  ::cg::sim::cp_async_commit();
#endif
}

// The "memory" clobber keeps the compiler from moving shared-memory reads above the wait.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a non-negative count");
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  ::cg::sim::cp_async_wait(N);
#endif
}

}  // namespace ptx
}  // namespace cg
