// The LoRA "shrink" (Punica's SGMV-shrink): T[m][j] = Σ_k x[m][k] · A_all[off(m) + j][k] for
// j < r(m), each row against its own adapter only, in float32: the first half of the fused LoRA
// term (lora_epilogue.h adds alpha · T·Bᵀ in the GEMM's epilogue). lib/backends/cuda-lora.ts
// enqueues it before the GEMM, on the same stream.
//
// ---- Segments ---------------------------------------------------------------------------------
// The rows are grouped by adapter on the host into tiles of up to kShrinkRows rows that share one
// adapter (a segment of Punica's SGMV, cut into tiles); the tile table holds, per tile,
// kShrinkTileWords int32 words: off (the adapter's first row in A_all), r (its rank, >= 1), then
// kShrinkRows row indices (-1: an empty slot). Rows without an adapter (-1) are in no tile: their
// T row is never written and never read (the epilogue's r is 0 there). Work is M · r(m) · K
// multiply-adds, not M · Σr: a row never multiplies another adapter's A.
//
// ---- Block ----------------------------------------------------------------------------------
// Block (tile, j-chunk): kShrinkWarps warps, warp w computes T[rows[i]][kShrinkWarps blockIdx.y + w]
// for the tile's rows i, its 32 lanes splitting K: lane L multiplies columns 4 L + 128 c .. + 3
// (c = 0, 1, ..), one float32 FMA chain per row in increasing k, then the 32 lane sums are added
// by a butterfly of shuffles (shfl.bfly 16, 8, 4, 2, 1), the same additions in the same order on
// every run. So a product passes through at most ceil(K / 128) * 4 FMA roundings, then at most
// ceil(log2(lanes with columns)) rounded additions (adding the exact 0 of a lane without columns
// rounds nothing): never more than K + 1, the float32 bound the tests hold it to.
//   Why: decode (M = 1..16) has one or two tiles, and the shrink's K loop is its latency. The
//   previous block gave each thread one (row, j) and walked all of K in 64-column chunks staged
//   in shared memory, two barriers each: one dependent FMA chain of K per thread. Here every
//   warp reads its row of A once, coalesced (lane L's 16 bytes of each 512), the chains are
//   K / 32 long, the rows of x are read through the cache (8 rows of x are tiny beside A), and
//   no barrier or shared memory is needed. On an H200 (2026-12-04) it took 30 µs at M = 16,
//   r = 16, K = 4096 and 117 µs at K = 11008: the grid (tiles x ceil(r / 8)) is 4 blocks there,
//   and each lane's K chain is serial; K must be split over more warps (README, "On a GPU").

// x may be float32, float16 or bfloat16 (a host x as given, or a device tensor in the weight's
// dtype): T is x·Aᵀ in float32 from x as the caller passed it, as on the CPU.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/gemm_dense.cuh"
#include "cuda/kernel.h"
#include "cuda/ptx/shfl.h"
#include "cuda/store_output.h"

namespace cg {
namespace gemm {

constexpr int kShrinkRows = 8;
constexpr int kShrinkWarps = 8;  // one rank j per warp
constexpr int kShrinkThreads = kShrinkWarps * 32;
constexpr int kShrinkTileWords = 2 + kShrinkRows;
constexpr int kShrinkSmemBytes = 0;

// Grid (tiles, ceil(rmax / kShrinkWarps)); block kShrinkThreads: warp w of block (tile, y)
// computes T[rows[i]][j] for j = kShrinkWarps y + w (if j < the tile's r) and the tile's rows i.
template <DType kX>
__global__ void lora_shrink_kernel(const void* __restrict__ x, const float* __restrict__ a_all, const int32_t* __restrict__ tiles, float* __restrict__ t, int K,
                                   int lda, int tld) {
  const int32_t* tile = tiles + size_t(blockIdx.x) * kShrinkTileWords;
  const int off = tile[0], r = tile[1];
  const int lane = int(threadIdx.x) % 32;
  const int j = int(blockIdx.y) * kShrinkWarps + int(threadIdx.x) / 32;
  if (j >= r) return;  // warp-uniform; this kernel has no barrier
  int rows[kShrinkRows];
  for (int i = 0; i < kShrinkRows; ++i) rows[i] = tile[2 + i];
  const float* const arow = a_all + size_t(off + j) * size_t(lda);
  float acc[kShrinkRows];
  for (int i = 0; i < kShrinkRows; ++i) acc[i] = 0.0f;
  // Lane L: columns 4 L + 128 c + e (c = 0, 1, ..; e = 0..3), in increasing order, never past K.
  for (int k0 = 4 * lane; k0 < K; k0 += 128) {
    for (int e = 0; e < 4 && k0 + e < K; ++e) {
      const int k = k0 + e;
      const float av = arow[k];
      for (int i = 0; i < kShrinkRows; ++i)
        if (rows[i] >= 0) acc[i] = fma_rn(load_value<kX>(x, size_t(rows[i]) * size_t(K) + size_t(k)), av, acc[i]);
    }
  }
  // Each row's 32 lane sums, added by a butterfly (lane masks 16, 8, 4, 2, 1): the same additions
  // in the same order on every run. Lane 0 stores.
  for (int i = 0; i < kShrinkRows; ++i) {
    float v = acc[i];
    for (int mask = 16; mask >= 1; mask /= 2) v = add_rn(v, as_f32(::cg::ptx::shfl_xor_sync(as_u32(v), mask)));
    if (lane == 0 && rows[i] >= 0) t[size_t(rows[i]) * size_t(tld) + size_t(j)] = v;
  }
}
struct LoraShrinkArgs {
  const void* x = nullptr;  // [M, K] of x_dtype
  DType x_dtype = DType::F32;
  int M = 0, K = 0;
  const float* a = nullptr;  // A_all [rsum, lda] float32
  int lda = 0, rsum = 0;
  const int32_t* tiles = nullptr;  // device copy of the tile table
  int ntiles = 0, rmax = 0;        // rmax: the largest r of the table
  float* t = nullptr;              // [M, tld] float32
  int tld = 0;
};

// The configuration's refusal, or null (the tile table's contents are checked on the host).
inline const char* validate_lora_shrink(const LoraShrinkArgs& s) {
  if (!s.x || !s.a || !s.tiles || !s.t) return "loraShrink: null buffer";
  if (s.M < 1 || s.K < 1 || s.lda < s.K || s.ntiles < 1 || s.rmax < 1 || s.rmax > s.tld) return "loraShrink: bad shape";
  if (s.ntiles > 2147483647 / kShrinkTileWords || (s.rmax + kShrinkWarps - 1) / kShrinkWarps > 65535) return "loraShrink: too many tiles or too large a rank";
  return nullptr;
}

template <DType kX>
inline DenseGemmLaunchStatus launch_lora_shrink_config(const LoraShrinkArgs& s, DenseGemmStream stream) {
  LaunchDim grid = dim_x(unsigned(s.ntiles));
  grid.y = unsigned((s.rmax + kShrinkWarps - 1) / kShrinkWarps);
  auto* const kernel = &lora_shrink_kernel<kX>;
  return CG_LAUNCH_STATUS(kernel, grid, dim_x(kShrinkThreads), kShrinkSmemBytes, stream, s.x, s.a, s.tiles, s.t, s.K, s.lda, s.tld);
}

inline DenseGemmLaunchStatus launch_lora_shrink(const LoraShrinkArgs& s, DenseGemmStream stream) {
  switch (s.x_dtype) {
    case DType::F32: return launch_lora_shrink_config<DType::F32>(s, stream);
    case DType::F16: return launch_lora_shrink_config<DType::F16>(s, stream);
    default: return launch_lora_shrink_config<DType::BF16>(s, stream);
  }
}

}  // namespace gemm
}  // namespace cg
