// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32: one warp's tensor-core product
// D = A·B + C, the inner step of every GEMM kernel here (PTX ISA §9.7.14.5.8).
//
// Fragments, as the ISA lists them (g = lane / 4, t = lane % 4; a 32-bit register holds two 16-bit
// values, the lower-indexed one in bits [15:0]):
//   A 16x16, row-major:  a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]
//                        a[2] = A[g][2t+8..2t+9]  a[3] = A[g+8][2t+8..2t+9]
//   B 16x8 (k = row):    b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..2t+9][g]
//   C, D 16x8 float32:   c[0] = (g, 2t)  c[1] = (g, 2t+1)  c[2] = (g+8, 2t)  c[3] = (g+8, 2t+1)
// The same layouts in CuTe: include/cute/atom/mma_traits_sm80.hpp, SM80_16x8x16_F32F16F16F32_TN
// (test/helpers/ptx-reference.ts evaluates both).
//
// Under nvcc: the instruction. On the simulated device: a warp collective that gathers the 32
// lanes' fragments into A, B, C, computes D in float32 and scatters it back. The ISA leaves the
// accumulation order and rounding unspecified (§9.7.14.5.14); the simulator's order is: each
// product A[m][k]·B[k][n] is exact in float32 (f16: 11x11 significant bits, bf16: 8x8; outside
// overflow/underflow), and d = C[m][n], then d += product for k = 0, 1, ..., 15, each addition
// rounded to nearest even. Hardware may differ by rounding unless the partial sums are exact.
// d may alias c (the usual accumulate-in-place call).
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

#if !defined(__CUDACC__)
#include "cg/dtype.h"
#endif

namespace cg {
namespace ptx {

#if !defined(__CUDACC__)
namespace sim_face {

struct MmaIn {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};
struct MmaOut {
  float d[4];
};

template <bool kBf16>
inline float mma_operand(uint32_t packed, int half) {
  const uint16_t bits = uint16_t(packed >> (16 * half));
  return kBf16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

template <bool kBf16>
void mma_m16n8k16_warp(const MmaIn* in, MmaOut* out, void*) {
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    const MmaIn& f = in[lane];
    for (int r = 0; r < 4; ++r) {  // r: bit 0 picks row g / g+8, bit 1 picks column 2t / 2t+8
      const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
      A[row][col] = mma_operand<kBf16>(f.a[r], 0);
      A[row][col + 1] = mma_operand<kBf16>(f.a[r], 1);
    }
    for (int r = 0; r < 2; ++r) {
      const int k = 2 * t + 8 * r;
      B[k][g] = mma_operand<kBf16>(f.b[r], 0);
      B[k + 1][g] = mma_operand<kBf16>(f.b[r], 1);
    }
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = f.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      const int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
      float d = C[m][n];
      for (int k = 0; k < 16; ++k) d += A[m][k] * B[k][n];
      out[lane].d[i] = d;
    }
  }
}

template <bool kBf16>
inline void mma_m16n8k16(const char* op, float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                         const float (&c)[4]) {
  MmaIn in;
  for (int i = 0; i < 4; ++i) in.a[i] = a[i], in.c[i] = c[i];
  for (int i = 0; i < 2; ++i) in.b[i] = b[i];
  const MmaOut out = ::cg::sim::warp_op<MmaIn, MmaOut>(op, in, &mma_m16n8k16_warp<kBf16>);
  for (int i = 0; i < 4; ++i) d[i] = out.d[i];
}

}  // namespace sim_face
#endif

// f16 inputs, float32 accumulators.
__device__ __forceinline__ void mma_m16n8k16_f16f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                    const float (&c)[4]) {
#if defined(__CUDACC__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
        "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  sim_face::mma_m16n8k16<false>("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", d, a, b, c);
#endif
}

// bf16 inputs, float32 accumulators (the only accumulator type bf16 allows).
__device__ __forceinline__ void mma_m16n8k16_bf16f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                     const float (&c)[4]) {
#if defined(__CUDACC__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
        "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  sim_face::mma_m16n8k16<true>("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", d, a, b, c);
#endif
}

}  // namespace ptx
}  // namespace cg
