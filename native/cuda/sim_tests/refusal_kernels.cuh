// Kernels for the simulator's own tests (native/binding/cuda_sim/refusals.cc runs them through
// runMisbehaving; test/cuda-sim/simulator.test.ts checks them): kernels that compute something
// checkable, and kernels that do what the hardware leaves undefined, which the simulated device
// must refuse with the kernel, block and thread named.
//
// CUDA C++ over kernel.h, so nvcc compiles them too (sm_80+: redux.sync and cp.async); what only
// the simulator can express (a cp-size that ptxas would reject, C++ exceptions, a collective whose
// fn refuses) sits inside `#if !defined(__CUDACC__)`.
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda/kernel.h"
#include "cuda/ptx/mma_sp.h"

#if !defined(__CUDACC__)
#include <stdexcept>
#endif

namespace cg {
namespace sim_tests {

// ---- helpers: one PTX instruction each ----------------------------------------------------------

#if !defined(__CUDACC__)
inline void redux_add_fn(const unsigned* ins, unsigned* outs, void*) {
  unsigned s = 0;
  for (int l = 0; l < 32; ++l) s += ins[l];
  for (int l = 0; l < 32; ++l) outs[l] = s;
}
inline void redux_max_fn(const unsigned* ins, unsigned* outs, void*) {
  unsigned m = 0;
  for (int l = 0; l < 32; ++l) m = ins[l] > m ? ins[l] : m;
  for (int l = 0; l < 32; ++l) outs[l] = m;
}
#endif

// redux.sync.add.u32 over the full warp: every lane gets the sum of the 32 lanes' values.
__device__ __forceinline__ unsigned warp_sum(unsigned v) {
#if defined(__CUDACC__)
  return __reduce_add_sync(0xffffffffu, v);
#else
  return ::cg::sim::warp_op<unsigned, unsigned>("redux.sync.add.u32", v, redux_add_fn);
#endif
}

// redux.sync.max.u32 over the full warp.
__device__ __forceinline__ unsigned warp_max(unsigned v) {
#if defined(__CUDACC__)
  return __reduce_max_sync(0xffffffffu, v);
#else
  return ::cg::sim::warp_op<unsigned, unsigned>("redux.sync.max.u32", v, redux_max_fn);
#endif
}

// cp.async.ca.shared.global of kBytes (4, 8 or 16), src_size of them read from src, the rest zeros.
template <int kBytes>
__device__ __forceinline__ void cp_async(void* smem_dst, const void* gmem_src, int src_size) {
#if defined(__CUDACC__)
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(s), "l"(gmem_src), "n"(kBytes), "r"(src_size)
               : "memory");
#else
  ::cg::sim::cp_async(smem_dst, gmem_src, kBytes, src_size);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  ::cg::sim::cp_async_commit();
#endif
}

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#else
  ::cg::sim::cp_async_wait(kPending);
#endif
}

__device__ __forceinline__ unsigned block_linear_tid() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// ---- kernels that compute something -------------------------------------------------------------

// Block b sums in[b*n .. b*n+n) into out[b]: strided partial sums, then a tree in shared memory
// (blockDim.x a power of two, blockDim.x ints of dynamic shared memory), __syncthreads each step.
__global__ void block_reduce(const int* in, int n, int* out) {
  int* s = reinterpret_cast<int*>(cg::dynamic_smem());
  const unsigned t = threadIdx.x;
  const int* chunk = in + static_cast<size_t>(blockIdx.x) * n;
  int acc = 0;
  for (int i = static_cast<int>(t); i < n; i += static_cast<int>(blockDim.x)) acc += chunk[i];
  s[t] = acc;
  __syncthreads();
  for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
    if (t < h) s[t] += s[t + h];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

// Each thread of a 3-D grid of 3-D blocks counts itself at its global id and writes its indices
// there (ids: 6 per thread, blockIdx then threadIdx).
__global__ void grid_ids(unsigned* count, unsigned* ids) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  const unsigned g = block * threads + block_linear_tid();
  count[g] += 1;
  unsigned* id = ids + 6 * static_cast<size_t>(g);
  id[0] = blockIdx.x;
  id[1] = blockIdx.y;
  id[2] = blockIdx.z;
  id[3] = threadIdx.x;
  id[4] = threadIdx.y;
  id[5] = threadIdx.z;
}

// iters warp sums per thread, with a __syncthreads every 4th: out[t] = fold of the sums
// (acc = acc * 31 + warp_sum(t * 7 + it), in uint32).
__global__ void warp_sum_loop(unsigned* out, int iters) {
  const unsigned t = block_linear_tid();
  unsigned acc = 0;
  for (int it = 0; it < iters; ++it) {
    acc = acc * 31u + warp_sum(t * 7u + static_cast<unsigned>(it));
    if (it % 4 == 3) __syncthreads();
  }
  out[static_cast<size_t>(blockIdx.x) * blockDim.x * blockDim.y * blockDim.z + t] = acc;
}

// Each of the block's threads copies kBytes from src + t*kBytes into shared memory, twice (group
// A at smem + t*kBytes, group B kBytes*blockDim.x further on), src_size bytes each, and reads its
// destinations as it goes: seen = 6 snapshots of kBytes per thread: A and B after issue (poison),
// A and B after wait_group 1 (A landed, B poisoned), A and B after wait_group 0 (both landed).
template <int kBytes>
__global__ void cp_async_fill(const uint8_t* src, int src_size, uint8_t* seen) {
  uint8_t* smem = cg::dynamic_smem();
  const unsigned t = threadIdx.x;
  uint8_t* a = smem + t * kBytes;
  uint8_t* b = smem + (blockDim.x + t) * kBytes;
  uint8_t* out = seen + static_cast<size_t>(t) * 6 * kBytes;
  cp_async<kBytes>(a, src + t * kBytes, src_size);
  cp_async_commit();
  cp_async<kBytes>(b, src + (blockDim.x + t) * kBytes, src_size);
  cp_async_commit();
  for (int i = 0; i < kBytes; ++i) out[i] = a[i], out[kBytes + i] = b[i];
  cp_async_wait<1>();
  for (int i = 0; i < kBytes; ++i) out[2 * kBytes + i] = a[i], out[3 * kBytes + i] = b[i];
  cp_async_wait<0>();
  for (int i = 0; i < kBytes; ++i) out[4 * kBytes + i] = a[i], out[5 * kBytes + i] = b[i];
}

// One float per thread through cp.async (4 bytes), read before the wait (the poison: a NaN whose
// bits are 0xFFFFFFFF) and after it; bits = before and after per thread. An empty commit first
// (allowed: it is an empty group).
__global__ void cp_async_read_before_wait(const float* src, unsigned* bits) {
  float* smem = reinterpret_cast<float*>(cg::dynamic_smem());
  const unsigned t = threadIdx.x;
  cp_async_commit();
  cp_async<4>(smem + t, src + t, 4);
  cp_async_commit();
  const float before = smem[t];
  cp_async_wait<0>();
  const float after = smem[t];
  unsigned b, a;
  memcpy(&b, &before, 4);
  memcpy(&a, &after, 4);
  bits[2 * t] = b;
  bits[2 * t + 1] = a;
}

// Shared memory is poisoned when each block starts: each thread counts the bytes of its stripe
// that are not 0xFF (bad[block * threads + t]), then every block scribbles over its shared memory
// for the next one to find poisoned again. align[block] = the shared base's address mod 128.
__global__ void smem_poison(unsigned bytes, unsigned* bad, unsigned* align) {
  uint8_t* smem = cg::dynamic_smem();
  const unsigned t = threadIdx.x;
  unsigned n = 0;
  for (unsigned i = t; i < bytes; i += blockDim.x) n += smem[i] != 0xFF;
  bad[blockIdx.x * blockDim.x + t] = n;
  if (t == 0) align[blockIdx.x] = static_cast<unsigned>(reinterpret_cast<uintptr_t>(smem) % 128);
  __syncthreads();
  for (unsigned i = t; i < bytes; i += blockDim.x) smem[i] = static_cast<uint8_t>(i * 13 + 1);
}

// Every 32-bit word of `words` of dynamic shared memory written (word i = i * 2654435761 + 1),
// then read back reversed by other threads: out[i] = word (words - 1 - i).
__global__ void smem_reverse(unsigned words, unsigned* out) {
  unsigned* smem = reinterpret_cast<unsigned*>(cg::dynamic_smem());
  const unsigned t = threadIdx.x;
  for (unsigned i = t; i < words; i += blockDim.x) smem[i] = i * 2654435761u + 1u;
  __syncthreads();
  for (unsigned i = t; i < words; i += blockDim.x) out[i] = smem[words - 1 - i];
}

__global__ void trivial(unsigned* out) {
  if (out) out[block_linear_tid()] = 1;
}

// ---- kernels the simulator must refuse -----------------------------------------------------------

// Every thread does a warp sum: refused when the block's last warp is partial.
__global__ void warp_sum_all(unsigned* out) {
  const unsigned t = block_linear_tid();
  out[t] = warp_sum(t);
}

// Lane `odd` does a warp max while the others do a warp sum.
__global__ void different_ops(unsigned* out, unsigned odd) {
  const unsigned t = threadIdx.x;
  out[t] = (t % 32 == odd) ? warp_max(t) : warp_sum(t);
}

// Lane `gone` returns; the others do a warp sum.
__global__ void early_return_collective(unsigned* out, unsigned gone) {
  const unsigned t = threadIdx.x;
  if (t % 32 == gone) return;
  out[t] = warp_sum(t);
}

// Threads from `keep` on return; the others meet at __syncthreads.
__global__ void barrier_not_reached(unsigned* out, unsigned keep) {
  unsigned* smem = reinterpret_cast<unsigned*>(cg::dynamic_smem());
  const unsigned t = threadIdx.x;
  if (t >= keep) return;
  smem[t] = t;
  __syncthreads();
  out[t] = smem[(t + 1) % keep];
}

// Lanes 0..15 of warp 0 wait at a warp sum, every other thread at __syncthreads.
__global__ void barrier_vs_collective(unsigned* out) {
  const unsigned t = threadIdx.x;
  if (t < 16) {
    out[t] = warp_sum(t);
  } else {
    __syncthreads();
    out[t] = t;
  }
}

// cp.async misuse by thread `who` (the others copy properly and wait); src is 64-byte aligned
// global memory of 16 * (blockDim.x + 1) bytes, gdst global memory of 64 bytes.
//   kind 1: 16-byte copy to a shared address 4 bytes past a 16-byte boundary
//   kind 2: 16-byte copy to global memory
//   kind 3: 16-byte copy from a source 4 bytes past a 16-byte boundary
//   kind 4: 8-byte copy to the last 4 bytes of shared memory and past its end
//   kind 5: src-size 9 for an 8-byte copy
//   kind 6: (simulator only) cp-size 12
//   kind 7: (simulator only) src-size -1
//   kind 8: 16-byte copy whose source is shared memory
__global__ void cp_async_misuse(const uint8_t* src, uint8_t* gdst, int kind, unsigned who, unsigned smem_bytes) {
  uint8_t* smem = cg::dynamic_smem();
  const unsigned t = threadIdx.x;
  if (t == who) {
    switch (kind) {
      case 1: cp_async<16>(smem + 16 * t + 4, src + 16 * t, 16); break;
      case 2: cp_async<16>(gdst, src + 16 * t, 16); break;
      case 3: cp_async<16>(smem + 16 * t, src + 16 * t + 4, 16); break;
      case 4: cp_async<8>(smem + smem_bytes - 4, src + 16 * t, 8); break;
      case 5: cp_async<8>(smem + 16 * t, src + 16 * t, 9); break;
      case 8: cp_async<16>(smem + 16 * t, smem, 16); break;
#if !defined(__CUDACC__)
      case 6: ::cg::sim::cp_async(smem + 16 * t, src + 16 * t, 12, 12); break;
      case 7: ::cg::sim::cp_async(smem + 16 * t, src + 16 * t, 16, -1); break;
#endif
      default: break;
    }
  } else {
    cp_async<16>(smem + 16 * t, src + 16 * t, 16);
  }
  cp_async_commit();
  cp_async_wait<0>();
}

// Thread `who` leaves copies in flight at its return:
//   kind 1: committed, never waited for;  kind 2: never committed;
//   kind 3: two groups committed, wait_group 1 (the newest still pending).
__global__ void copies_in_flight(const uint8_t* src, int kind, unsigned who) {
  uint8_t* smem = cg::dynamic_smem();
  const unsigned t = threadIdx.x;
  cp_async<16>(smem + 32 * t, src + 32 * t, 16);
  if (t == who && kind == 2) return;
  cp_async_commit();
  if (t == who && kind == 1) return;
  cp_async<16>(smem + 32 * t + 16, src + 32 * t + 16, 16);
  cp_async_commit();
  if (t == who && kind == 3) {
    cp_async_wait<1>();
    return;
  }
  cp_async_wait<0>();
}

// Block `bad_block`'s thread 3 misaligns a cp.async; thread 0 of every block that runs marks it.
__global__ void stop_after_failure(const uint8_t* src, unsigned* ran, unsigned bad_block) {
  uint8_t* smem = cg::dynamic_smem();
  const unsigned t = threadIdx.x;
  if (t == 0) ran[blockIdx.x] = 1;
  __syncthreads();
  if (blockIdx.x == bad_block && t == 3) cp_async<16>(smem + 8, src, 16);
  __syncthreads();
  cp_async_commit();
  cp_async_wait<0>();
}

// mma.sp::ordered_metadata m16n8k32 (f16) over one warp: A's kept values and B all 1.0, C 0, every
// lane's metadata 0x44444444 (kept columns 0 and 1 of each chunk: valid) except lane `who`'s,
// which is `meta`; out[lane] = its d[0] (16 when it runs: 16 kept products of 1).
//   kind 0: selector 0    kind 1: selector 1    (meta in an unselected lane is never read)
//   kind 2: (simulator only) selector 2    kind 3: (simulator only) selector 3
//   kind 4: lane `who` returns before the mma.sp (selector 0)
template <int kSel>
__device__ __forceinline__ float mma_sp_ones(uint32_t e) {
  const uint32_t one2 = 0x3C003C00u;  // two f16 1.0
  const uint32_t a[4] = {one2, one2, one2, one2}, b[4] = {one2, one2, one2, one2};
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  ::cg::ptx::mma_sp_m16n8k32_f16f32<kSel>(d, a, b, d, e);
  return d[0];
}

__global__ void mma_sp_misuse(int kind, unsigned who, unsigned meta, float* out) {
  const unsigned t = threadIdx.x;
  const uint32_t e = t == who ? meta : 0x44444444u;
  float r = -1.f;
  switch (kind) {
    case 0: r = mma_sp_ones<0>(e); break;
    case 1: r = mma_sp_ones<1>(e); break;
#if !defined(__CUDACC__)
    case 2: r = mma_sp_ones<2>(e); break;
    case 3: r = mma_sp_ones<3>(e); break;
#endif
    case 4:
      if (t == who) return;
      r = mma_sp_ones<0>(e);
      break;
    default: break;
  }
  out[t] = r;
}

#if !defined(__CUDACC__)
// Thread `who` throws (kind 1: a std::runtime_error, kind 2: an int) while the others wait at
// __syncthreads.
__global__ void throws(int kind, unsigned who) {
  if (threadIdx.x == who) {
    if (kind == 1) throw std::runtime_error("the kernel body threw this");
    throw 42;
  }
  __syncthreads();
}

// A collective whose fn refuses one lane's input (an odd value, like a misaligned address),
// naming that lane's thread through fail_lane.
inline void even_only_fn(const unsigned* ins, unsigned* outs, void*) {
  for (unsigned l = 0; l < 32; ++l) {
    if (ins[l] % 2) ::cg::sim::fail_lane(l, "even_only: lane " + std::to_string(l) + " passes an odd value " +
                                                std::to_string(ins[l]));
    outs[l] = ins[l] / 2;
  }
}

__global__ void collective_refuses(unsigned* out, unsigned odd_thread) {
  const unsigned t = threadIdx.x;
  out[t] = ::cg::sim::warp_op<unsigned, unsigned>("even_only", t == odd_thread ? 1u : 2u * t, even_only_fn);
}
#endif

}  // namespace sim_tests
}  // namespace cg
