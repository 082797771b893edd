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
// Block (tile, j-chunk): kShrinkWarps warps in groups of S (the K split: 1, 2, 4 or 8); the warps
// of group g compute T[rows[i]][j] for j = (kShrinkWarps / S) blockIdx.y + g and the tile's rows
// i, warp s of the group (s < S) taking its share of K. Its 32 lanes split that share: lane L
// multiplies columns 4 L + 128 (S c + s) .. + 3 (c = 0, 1, ..), one float32 FMA chain per row in
// increasing k, then the 32 lane sums are added by a butterfly of shuffles (shfl.bfly 16, 8, 4,
// 2, 1), and with S > 1 lane 0 of each warp puts its sums in shared memory and, after one
// barrier, warp 0 of the group adds the S of them in order s = 0, 1, ..: the same additions in
// the same order on every run. So a product passes through at most ceil(K / (128 S)) * 4 FMA
// roundings, then at most ceil(log2(lanes with columns)) + S - 1 rounded additions (adding the
// exact 0 of a lane or warp without columns rounds nothing): never more than K + 1, the float32
// bound the tests hold it to.
//   Why: decode (M = 1..16) has one or two tiles, and the shrink's K loop is its latency. With
//   one warp per rank (S = 1) each lane's chain is K / 32 long: on an H200 (2026-12-04) that took
//   30 µs at M = 16, r = 16, K = 4096 and 117 µs at K = 11008, 4 blocks in all. S comes from K
//   (shrink_ksplit: 8 from K = 4096), so the chains are K / 256 long and the grid S times larger;
//   a launch may also ask for S itself (test/cuda-sim/lora-shrink.test.ts runs every S; the
//   simulated device runs threads as OS threads, and the other tests' small K keep S at 1 or 2).
//   Every warp reads its slice of a row of A once, coalesced (lane L's 16 bytes of each 512),
//   and the rows of x are read through the cache (8 rows of x are tiny beside A).

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
constexpr int kShrinkWarps = 8;
constexpr int kShrinkThreads = kShrinkWarps * 32;
constexpr int kShrinkTileWords = 2 + kShrinkRows;
constexpr int kShrinkSmemBytes = kShrinkWarps * kShrinkRows * 4;  // the warps' row sums (S > 1)
constexpr int kShrinkMaxSplit = kShrinkWarps;

// The K split a launch uses when it does not ask for one: the largest power of two S <= 8 with
// K >= 512 S (each warp's share at least 512 columns: 4 passes of 128).
inline int shrink_ksplit(int K) {
  int s = 1;
  while (s < kShrinkMaxSplit && K >= 512 * 2 * s) s *= 2;
  return s;
}

// Grid (tiles, ceil(rmax / (kShrinkWarps / S))); block kShrinkThreads; dynamic shared memory
// kShrinkSmemBytes when S > 1 (see Block above).
template <DType kX>
__global__ void lora_shrink_kernel(const void* __restrict__ x, const float* __restrict__ a_all, const int32_t* __restrict__ tiles, float* __restrict__ t, int K,
                                   int lda, int tld, int S) {
  const int32_t* tile = tiles + size_t(blockIdx.x) * kShrinkTileWords;
  const int off = tile[0], r = tile[1];
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int s = warp % S;
  const int j = int(blockIdx.y) * (kShrinkWarps / S) + warp / S;
  const bool live = j < r;  // warp-uniform: a warp past the rank computes nothing but still meets the barrier
  int rows[kShrinkRows];
  for (int i = 0; i < kShrinkRows; ++i) rows[i] = tile[2 + i];
  float acc[kShrinkRows];
  for (int i = 0; i < kShrinkRows; ++i) acc[i] = 0.0f;
  if (live) {
    const float* const arow = a_all + size_t(off + j) * size_t(lda);
    // Lane L: columns 4 L + 128 (S c + s) + e (c = 0, 1, ..; e = 0..3), in increasing order, never past K.
    for (int k0 = 4 * lane + 128 * s; k0 < K; k0 += 128 * S) {
      for (int e = 0; e < 4 && k0 + e < K; ++e) {
        const int k = k0 + e;
        const float av = arow[k];
        for (int i = 0; i < kShrinkRows; ++i)
          if (rows[i] >= 0) acc[i] = fma_rn(load_value<kX>(x, size_t(rows[i]) * size_t(K) + size_t(k)), av, acc[i]);
      }
    }
    // Each row's 32 lane sums, added by a butterfly (lane masks 16, 8, 4, 2, 1): the same
    // additions in the same order on every run.
    for (int i = 0; i < kShrinkRows; ++i) {
      float v = acc[i];
      for (int mask = 16; mask >= 1; mask /= 2) v = add_rn(v, as_f32(::cg::ptx::shfl_xor_sync(as_u32(v), mask)));
      acc[i] = v;
    }
  }
  if (S == 1) {
    if (live && lane == 0)
      for (int i = 0; i < kShrinkRows; ++i)
        if (rows[i] >= 0) t[size_t(rows[i]) * size_t(tld) + size_t(j)] = acc[i];
    return;
  }
  // S > 1 (uniform over the launch): the group's S warp sums, added in order by its first warp.
  float* const red = reinterpret_cast<float*>(::cg::dynamic_smem());
  if (lane == 0)
    for (int i = 0; i < kShrinkRows; ++i) red[warp * kShrinkRows + i] = acc[i];
  __syncthreads();
  if (live && s == 0 && lane == 0) {
    for (int i = 0; i < kShrinkRows; ++i) {
      if (rows[i] < 0) continue;
      float v = red[warp * kShrinkRows + i];
      for (int q = 1; q < S; ++q) v = add_rn(v, red[(warp + q) * kShrinkRows + i]);
      t[size_t(rows[i]) * size_t(tld) + size_t(j)] = v;
    }
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
  int ksplit = 0;  // warps splitting K per rank: 1, 2, 4 or 8; 0: shrink_ksplit(K)
};

// The K split a launch uses: the one it asks for, else shrink_ksplit(K), halved while the grid's
// y (ranks / (kShrinkWarps / S)) would pass CUDA's limit of 65535 (a rank past 65535).
inline int shrink_split_of(const LoraShrinkArgs& s) {
  if (s.ksplit > 0) return s.ksplit;
  int S = shrink_ksplit(s.K);
  while (S > 1 && (s.rmax + kShrinkWarps / S - 1) / (kShrinkWarps / S) > 65535) S /= 2;
  return S;
}

// The configuration's refusal, or null (the tile table's contents are checked on the host).
inline const char* validate_lora_shrink(const LoraShrinkArgs& s) {
  if (!s.x || !s.a || !s.tiles || !s.t) return "loraShrink: null buffer";
  if (s.M < 1 || s.K < 1 || s.lda < s.K || s.ntiles < 1 || s.rmax < 1 || s.rmax > s.tld) return "loraShrink: bad shape";
  if (s.ksplit != 0 && s.ksplit != 1 && s.ksplit != 2 && s.ksplit != 4 && s.ksplit != 8) return "loraShrink: kSplit is not 1, 2, 4 or 8";
  const int per_block = kShrinkWarps / shrink_split_of(s);
  if (s.ntiles > 2147483647 / kShrinkTileWords || (s.rmax + per_block - 1) / per_block > 65535) return "loraShrink: too many tiles or too large a rank";
  return nullptr;
}

template <DType kX>
inline DenseGemmLaunchStatus launch_lora_shrink_config(const LoraShrinkArgs& s, DenseGemmStream stream) {
  const int S = shrink_split_of(s);
  const int per_block = kShrinkWarps / S;  // ranks per block
  LaunchDim grid = dim_x(unsigned(s.ntiles));
  grid.y = unsigned((s.rmax + per_block - 1) / per_block);
  auto* const kernel = &lora_shrink_kernel<kX>;
  return CG_LAUNCH_STATUS(kernel, grid, dim_x(kShrinkThreads), S > 1 ? kShrinkSmemBytes : 0, stream, s.x, s.a, s.tiles, s.t, s.K, s.lda, s.tld, S);
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
