// mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.{f16,bf16}.{f16,bf16}.f32: one warp's
// sparse tensor-core product D = A·B + C, where A (16x32) is 2:4 structured sparse and only its
// kept values (16x16) and their positions (the metadata e) are passed (PTX ISA §9.7.14.6: storage
// §9.7.14.6.1, fragments §9.7.14.6.2.2, the instruction §9.7.14.6.3). The inner step of the 2:4
// GEMM kernels.
//
// Fragments, as the ISA lists them (g = lane / 4, t = lane % 4; a 32-bit register holds two 16-bit
// values, the lower-indexed one in bits [15:0]):
//   A, compressed 16x16 (the same layout as the dense m16n8k16 A fragment, one register per
//   4-wide chunk of the logical 16x32 row: its two kept values, the lower column in [15:0]):
//        a[0] = row g, chunk t (logical columns 4t..4t+3)     a[1] = row g+8, chunk t
//        a[2] = row g, chunk t+4 (columns 4t+16..4t+19)       a[3] = row g+8, chunk t+4
//        ("row = groupID for a_i, i < 2 or 4 <= i < 6; groupID + 8 otherwise; firstcol =
//        threadID_in_group * 4 for i < 4, + 16 for i >= 4", the values mapped by the metadata)
//   B 32x8 (k = row):    b[j] = B[2t+8j .. 2t+8j+1][g], j = 0..3 (Figure 121; Sparse-Marlin's
//                        marlin/common/mma.h loads it the same way)
//   C, D 16x8 float32:   as m16n8k16: c[0] = (g, 2t)  c[1] = (g, 2t+1)  c[2] = (g+8, 2t)  c[3] = (g+8, 2t+1)
//   e, the metadata (Figure 122): a chunk's nibble is idx0 | idx1 << 2, the positions (0..3) in
//        the chunk of its low-half and high-half kept values. Only the lane pair that the
//        sparsity selector f names in each group of four supplies it (§9.7.14.6.1: f = 0: threads
//        T0, T1; f = 1: T2, T3): lane 4g + 2f + p (p = 0, 1) holds, in nibble j of bits [15:0],
//        row g's chunk 4p + j (columns 16p + 4j ..), and in nibble j of bits [31:16] row g+8's.
//        The other lanes' e is not read.
// Cross-checks: kmsmith137/gputils src_bin/test-sparse-mma.cu (the row g / g+8 halves and the
// nibble encoding on hardware, m16n8k16), LLVM mlir/test/Integration/Dialect/SparseTensor/GPU/CUDA/
// sparse-mma-2-4-f16.mlir (a hardware answer with uniform metadata 0x8888), CUTLASS
// include/cutlass/arch/mma_sparse_sm80.h (the asm form). The k32 column-half split across the lane
// pair (p) is the ISA figure's; the GPU check's probe_mma_sp, with metadata that differs per row
// and chunk under both selectors, is what confirms it on hardware.
//
// Undefined by the ISA, so refused by the simulated device (kernel, block and thread named):
//   - a selector other than 0 or 1 (ptxas 13.0 assembles 2 and 3 without a word; the nvcc face
//     static_asserts instead);
//   - a nibble of a selected lane outside the ordered set {0x4, 0x8, 0x9, 0xC, 0xD, 0xE}, i.e. one
//     with idx0 >= idx1 (§9.7.14.6.1: "for mma.sp::ordered_metadata, 0b0100, 0b1000, 0b1001,
//     0b1100, 0b1101, 0b1110 are the meaningful values of indices"); a chunk with fewer than two
//     non-zeros still names two distinct positions and stores a zero;
//   - like every .sync.aligned op, a warp whose 32 lanes do not all reach it (sim.h).
//
// Under nvcc: the instruction (PTX 8.5+, sm_80+). On the simulated device: a warp collective that
// gathers the 32 lanes' fragments, checks the selected lanes' metadata, puts each kept value of
// A at its logical column, computes D in float32 and scatters it back. The ISA leaves the accumulation order
// and rounding unspecified (§9.7.14.5.14, as for mma); the simulator's order: each product
// A[m][k]·B[k][n] is exact in float32 (f16: 11x11 significant bits, bf16: 8x8; outside
// overflow/underflow), and d = C[m][n], then d += product over the 16 kept values of row m in
// increasing column k, each addition rounded to nearest even. The 16 pruned positions are not
// multiplied (the ISA does not say whether an Inf or NaN of B at a pruned k reaches D on hardware;
// here it does not). Hardware may differ by rounding unless the partial sums are exact. d may
// alias c.
#pragma once
#include <cstdint>

#include "cuda/kernel.h"
#include "cuda/ptx/mma.h"

#if !defined(__CUDACC__)
#include <cstdio>
#include <string>
#endif

namespace cg {
namespace ptx {

#if !defined(__CUDACC__)
namespace sim_face {

struct MmaSpIn {
  uint32_t a[4];
  uint32_t b[4];
  float c[4];
  uint32_t e;
};
struct MmaSpOut {
  float d[4];
};

// The nibbles mma.sp::ordered_metadata gives a meaning to, as a 16-bit set: 0x4, 0x8, 0x9, 0xC,
// 0xD, 0xE, exactly those with idx0 (bits 1:0) < idx1 (bits 3:2).
constexpr uint32_t kOrderedNibbles = (1u << 0x4) | (1u << 0x8) | (1u << 0x9) | (1u << 0xC) | (1u << 0xD) | (1u << 0xE);

// The lane that supplies the metadata of row m (0..15), chunk c (0..7) under selector sel, and
// where in its register: nibble shift.
inline int mma_sp_meta_lane(int sel, int m, int c) { return 4 * (m % 8) + 2 * sel + c / 4; }
inline int mma_sp_meta_shift(int m, int c) { return 16 * (m / 8) + 4 * (c % 4); }

// One instance per (type, selector): the selector is an immediate, so it is part of the op.
template <bool kBf16, int kSel>
void mma_sp_m16n8k32_warp(const MmaSpIn* in, MmaSpOut* out, void* op_name) {
  const char* op = static_cast<const char*>(op_name);
  if (kSel != 0 && kSel != 1) {
    // Warp-uniform (an immediate): named at lane 0 so that the refusal is the same every run.
    ::cg::sim::fail_lane(0, std::string(op) + ": sparsity selector " + std::to_string(kSel) +
                                " (for m16n8k32 with f16/bf16 it must be 0 or 1; the ISA leaves any other value undefined)");
  }
  // Logical column k of each row's kept values, in increasing k (16 per row), and those values.
  int kcol[16][16];
  float A[16][16], B[32][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    const MmaSpIn& f = in[lane];
    for (int r = 0; r < 4; ++r) {  // r: bit 0 picks row g / g+8, bit 1 picks chunk t / t+4
      const int m = g + 8 * (r & 1), chunk = t + 4 * (r >> 1);
      const int src = mma_sp_meta_lane(kSel, m, chunk);
      const uint32_t nib = (in[src].e >> mma_sp_meta_shift(m, chunk)) & 0xF;
      if (!((kOrderedNibbles >> nib) & 1)) {
        char what[224];
        std::snprintf(what, sizeof what,
                      ": lane %d's metadata 0x%08x has nibble 0x%X for row %d, columns %d..%d (idx0 %u, idx1 %u); "
                      "ordered_metadata allows only 0x4 0x8 0x9 0xC 0xD 0xE (idx0 < idx1)",
                      src, unsigned(in[src].e), unsigned(nib), m, 4 * chunk, 4 * chunk + 3, unsigned(nib & 3),
                      unsigned(nib >> 2));
        ::cg::sim::fail_lane(unsigned(src), std::string(op) + what);
      }
      for (int h = 0; h < 2; ++h) {
        kcol[m][2 * chunk + h] = 4 * chunk + int((nib >> (2 * h)) & 3);
        A[m][2 * chunk + h] = mma_operand<kBf16>(f.a[r], h);
      }
    }
    for (int j = 0; j < 4; ++j) {
      const int k = 2 * t + 8 * j;
      B[k][g] = mma_operand<kBf16>(f.b[j], 0);
      B[k + 1][g] = mma_operand<kBf16>(f.b[j], 1);
    }
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = f.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      const int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
      float d = C[m][n];
      for (int s = 0; s < 16; ++s) d += A[m][s] * B[kcol[m][s]][n];
      out[lane].d[i] = d;
    }
  }
}

// The op's name, selector included: lanes that reach the instruction with different selectors
// are at different instructions (a refusal of sim.h), never merged into one.
template <bool kBf16, int kSel>
const char* mma_sp_op_name() {
  static const std::string name = std::string("mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.") +
                                  (kBf16 ? "bf16.bf16" : "f16.f16") + ".f32 (selector " + std::to_string(kSel) + ")";
  return name.c_str();
}

template <bool kBf16, int kSel>
inline void mma_sp_m16n8k32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4], const float (&c)[4],
                            uint32_t e) {
  const char* op = mma_sp_op_name<kBf16, kSel>();
  MmaSpIn in;
  for (int i = 0; i < 4; ++i) in.a[i] = a[i], in.b[i] = b[i], in.c[i] = c[i];
  in.e = e;
  const MmaSpOut out =
      ::cg::sim::warp_op<MmaSpIn, MmaSpOut>(op, in, &mma_sp_m16n8k32_warp<kBf16, kSel>, const_cast<char*>(op));
  for (int i = 0; i < 4; ++i) d[i] = out.d[i];
}

}  // namespace sim_face
#endif

// f16 inputs, float32 accumulators. kSelector: the sparsity selector f (the ISA's last operand,
// an immediate): 0 = lanes 4g, 4g+1 supply e, 1 = lanes 4g+2, 4g+3.
template <int kSelector>
__device__ __forceinline__ void mma_sp_m16n8k32_f16f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                                       const float (&c)[4], uint32_t e) {
#if defined(__CUDACC__)
  static_assert(kSelector == 0 || kSelector == 1, "mma.sp m16n8k32 f16: the sparsity selector must be 0 or 1");
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9, %10, %11}, {%12, %13, %14, %15}, %16, %17;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
        "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]), "r"(e), "n"(kSelector));
#else
  sim_face::mma_sp_m16n8k32<false, kSelector>(d, a, b, c, e);
#endif
}

// bf16 inputs, float32 accumulators (the only accumulator type bf16 allows).
template <int kSelector>
__device__ __forceinline__ void mma_sp_m16n8k32_bf16f32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[4],
                                                        const float (&c)[4], uint32_t e) {
#if defined(__CUDACC__)
  static_assert(kSelector == 0 || kSelector == 1, "mma.sp m16n8k32 bf16: the sparsity selector must be 0 or 1");
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9, %10, %11}, {%12, %13, %14, %15}, %16, %17;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]),
        "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]), "r"(e), "n"(kSelector));
#else
  sim_face::mma_sp_m16n8k32<true, kSelector>(d, a, b, c, e);
#endif
}

}  // namespace ptx
}  // namespace cg
