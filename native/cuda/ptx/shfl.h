// shfl.sync.{idx,bfly,down}.b32: a register read from another lane of the warp, for reductions
// and broadcasts without shared memory (PTX ISA §9.7.9.6, shfl.sync).
//
// Always the whole warp: membermask 0xffffffff, and c = 0x1f (clamp 31, no sub-segments), what
// CUDA's __shfl_*_sync(0xffffffff, v, b) pass for width 32. There is no mask parameter, so a
// partial mask cannot be asked for; on the simulated device a lane that does not reach the same
// shuffle as the other 31 is refused (cg::sim::warp_collective).
// The ISA's source lane j for lane L, with bval = b[4:0], maxLane = 31, minLane = 0:
//   idx:  j = bval           bfly: j = L ^ bval        down: j = L + bval, or L itself if j > 31
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

namespace cg {
namespace ptx {

#if !defined(__CUDACC__)
namespace sim_face {

enum class ShflMode { Idx, Bfly, Down };

struct ShflIn {
  uint32_t a;  // the value offered
  uint32_t b;  // source lane, lane mask or offset
};

// The ISA's semantics, literally, with c = 0x1f.
template <ShflMode Mode>
void shfl_warp(const ShflIn* in, uint32_t* out, void*) {
  const uint32_t c = 0x1f;
  const uint32_t cval = c & 0x1f, mask = (c >> 8) & 0x1f;
  for (uint32_t lane = 0; lane < 32; ++lane) {
    const uint32_t bval = in[lane].b & 0x1f;
    const uint32_t maxLane = (lane & mask) | (cval & ~mask);
    const uint32_t minLane = lane & mask;
    uint32_t j = lane;
    bool pval = false;
    switch (Mode) {
      case ShflMode::Idx: j = minLane | (bval & ~mask); pval = j <= maxLane; break;
      case ShflMode::Bfly: j = lane ^ bval; pval = j <= maxLane; break;
      case ShflMode::Down: j = lane + bval; pval = j <= maxLane; break;
    }
    if (!pval) j = lane;
    out[lane] = in[j].a;
  }
}

template <ShflMode Mode>
inline uint32_t shfl(const char* op, uint32_t v, uint32_t b) {
  return ::cg::sim::warp_op<ShflIn, uint32_t>(op, ShflIn{v, b}, &shfl_warp<Mode>);
}

}  // namespace sim_face
#endif

// Lane src_lane's v (src_lane taken mod 32).
__device__ __forceinline__ uint32_t shfl_sync(uint32_t v, int src_lane) {
#if defined(__CUDACC__)
  uint32_t d;
  asm volatile("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;\n" : "=r"(d) : "r"(v), "r"(src_lane));
  return d;
#else
  return sim_face::shfl<sim_face::ShflMode::Idx>("shfl.sync.idx.b32", v, uint32_t(src_lane));
#endif
}

// Lane (lane ^ lane_mask)'s v: the butterfly of a warp reduction.
__device__ __forceinline__ uint32_t shfl_xor_sync(uint32_t v, int lane_mask) {
#if defined(__CUDACC__)
  uint32_t d;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;\n" : "=r"(d) : "r"(v), "r"(lane_mask));
  return d;
#else
  return sim_face::shfl<sim_face::ShflMode::Bfly>("shfl.sync.bfly.b32", v, uint32_t(lane_mask));
#endif
}

// Lane (lane + delta)'s v; lanes whose source would pass lane 31 keep their own v.
__device__ __forceinline__ uint32_t shfl_down_sync(uint32_t v, unsigned delta) {
#if defined(__CUDACC__)
  uint32_t d;
  asm volatile("shfl.sync.down.b32 %0, %1, %2, 0x1f, 0xffffffff;\n" : "=r"(d) : "r"(v), "r"(delta));
  return d;
#else
  return sim_face::shfl<sim_face::ShflMode::Down>("shfl.sync.down.b32", v, delta);
#endif
}

}  // namespace ptx
}  // namespace cg
