// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16: one warp loads one, two or four 8x8
// matrices of 16-bit values from shared memory straight into mma fragment order, so a kernel
// never shuffles fragments by hand (PTX ISA §9.7.14.5.15).
//
// Addresses: lane L gives the start of row L % 8 of matrix L / 8 (x1 reads lanes 0-7, x2 lanes
// 0-15, x4 all 32; the ISA asks valid addresses of the other lanes only for sm_75 and below, and
// our targets are sm_80+); a row is 8 contiguous 16-bit values, 16 bytes, 16-byte aligned, in
// shared memory.
// Result: register j of lane L holds matrix j, row L / 4, columns 2(L % 4) (bits [15:0]) and
// 2(L % 4) + 1 (bits [31:16]); with .trans, rows 2(L % 4) and 2(L % 4) + 1 of column L / 4.
// The same layouts in CuTe: include/cute/atom/copy_traits_sm75.hpp (SM75_U32x{1,2,4}_LDSM_N,
// SM75_U16x{2,4,8}_LDSM_T).
//
// On the simulated device: a warp collective that refuses (cg::sim::fail_lane: the error names that
// lane's thread, and the message the lane) a used lane whose row is not 16-byte aligned or not
// inside the block's shared memory, then reads the rows and distributes them as above.
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

#if !defined(__CUDACC__)
#include <cstdio>
#include <cstring>
#include <string>
#endif

namespace cg {
namespace ptx {

#if !defined(__CUDACC__)
namespace sim_face {

struct LdmatrixIn {
  const void* row;
};
template <int Num>
struct LdmatrixOut {
  uint32_t r[Num];
};

template <int Num, bool Trans>
const char* ldmatrix_op() {
  static_assert(Num == 1 || Num == 2 || Num == 4, "ldmatrix loads 1, 2 or 4 matrices");
  if (Num == 1) return Trans ? "ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x1.shared.b16";
  if (Num == 2) return Trans ? "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x2.shared.b16";
  return Trans ? "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" : "ldmatrix.sync.aligned.m8n8.x4.shared.b16";
}

template <int Num, bool Trans>
void ldmatrix_warp(const LdmatrixIn* in, LdmatrixOut<Num>* out, void*) {
  uint16_t m[Num][8][8];  // [matrix][row][column]
  const uint8_t* const shared = ::cg::sim::shared_base();
  for (int lane = 0; lane < 8 * Num; ++lane) {
    const uint8_t* p = static_cast<const uint8_t*>(in[lane].row);
    const char* wrong = nullptr;
    if (!::cg::sim::in_shared(p, 16)) {
      wrong = "is not inside the block's shared memory";
    } else if ((p - shared) % 16 != 0) {  // the .shared window address, not the host pointer
      wrong = "is not 16-byte aligned";
    }
    if (wrong) {
      char msg[256];
      std::snprintf(msg, sizeof msg, "%s: lane %d's address %p (row %d of matrix %d) %s", ldmatrix_op<Num, Trans>(),
                    lane, static_cast<const void*>(p), lane % 8, lane / 8, wrong);
      ::cg::sim::fail_lane(unsigned(lane), msg);
    }
    std::memcpy(m[lane / 8][lane % 8], p, 16);
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int j = 0; j < Num; ++j) {
      uint16_t lo, hi;
      if (Trans) {
        lo = m[j][2 * (lane % 4)][lane / 4];
        hi = m[j][2 * (lane % 4) + 1][lane / 4];
      } else {
        lo = m[j][lane / 4][2 * (lane % 4)];
        hi = m[j][lane / 4][2 * (lane % 4) + 1];
      }
      out[lane].r[j] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
}

template <int Num, bool Trans>
inline void ldmatrix(uint32_t (&r)[Num], const void* smem_row) {
  const LdmatrixIn in{smem_row};
  const LdmatrixOut<Num> out =
      ::cg::sim::warp_op<LdmatrixIn, LdmatrixOut<Num>>(ldmatrix_op<Num, Trans>(), in, &ldmatrix_warp<Num, Trans>);
  for (int j = 0; j < Num; ++j) r[j] = out.r[j];
}

}  // namespace sim_face
#endif

// One 8x8 matrix (rows from lanes 0-7).
__device__ __forceinline__ void ldmatrix_x1(uint32_t (&r)[1], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(addr));
#else
  sim_face::ldmatrix<1, false>(r, smem_row);
#endif
}

// Two 8x8 matrices (rows from lanes 0-15): e.g. an mma B fragment stored N-major.
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
#else
  sim_face::ldmatrix<2, false>(r, smem_row);
#endif
}

// Four 8x8 matrices (rows from all lanes): a whole m16n8k16 A fragment from a row-major tile.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  sim_face::ldmatrix<4, false>(r, smem_row);
#endif
}

// One 8x8 matrix, transposed on the way (a K-major tile read as the "col" operand).
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t (&r)[1], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(addr));
#else
  sim_face::ldmatrix<1, true>(r, smem_row);
#endif
}

// Two 8x8 matrices, transposed: an m16n8k16 B fragment from a row-major (k, n) tile.
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(addr));
#else
  sim_face::ldmatrix<2, true>(r, smem_row);
#endif
}

// Four 8x8 matrices, transposed: two B fragments (n and n+8) from a row-major (k, n) tile.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
#if defined(__CUDACC__)
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  sim_face::ldmatrix<4, true>(r, smem_row);
#endif
}

}  // namespace ptx
}  // namespace cg
