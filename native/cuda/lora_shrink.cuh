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
// Block (tile, j-chunk): kShrinkThreads = kShrinkRows x 32 threads, thread (i, jj) computes
// T[rows[i]][32 · blockIdx.y + jj]. K runs in chunks of kShrinkK columns: the tile's x rows
// (widened exactly from x's dtype) and the chunk's 32 rows of A are staged in shared memory
// (coalesced loads; A's rows padded to kShrinkK + 1 floats, so the 32 lanes of a warp read 32
// banks), then each thread adds its kShrinkK products. Each T[m][j] is one FMA chain over k in
// order, from zero: the arithmetic of the float32 GEMM (gemm_dense_f32.cuh) that computed T
// before the segments, one rounding per product-add.
//
// x may be float32, float16 or bfloat16 (a host x as given, or a device tensor in the weight's
// dtype): T is x·Aᵀ in float32 from x as the caller passed it, as on the CPU.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/gemm_dense.cuh"
#include "cuda/kernel.h"
#include "cuda/store_output.h"

namespace cg {
namespace gemm {

constexpr int kShrinkRows = 8;
constexpr int kShrinkThreads = kShrinkRows * 32;
constexpr int kShrinkK = 64;
constexpr int kShrinkTileWords = 2 + kShrinkRows;
constexpr int kShrinkSmemBytes = (kShrinkRows * kShrinkK + 32 * (kShrinkK + 1)) * 4;

template <DType kX>
__global__ void lora_shrink_kernel(const void* __restrict__ x, const float* __restrict__ a_all, const int32_t* __restrict__ tiles, float* __restrict__ t, int K,
                                   int lda, int tld) {
  float* xs = reinterpret_cast<float*>(dynamic_smem());  // [kShrinkRows][kShrinkK]
  float* as = xs + kShrinkRows * kShrinkK;                // [32][kShrinkK + 1]
  const int32_t* tile = tiles + size_t(blockIdx.x) * kShrinkTileWords;
  const int off = tile[0], r = tile[1];
  const int tid = int(threadIdx.x), i = tid / 32, jj = tid % 32;
  const int j0 = int(blockIdx.y) * 32;
  const int m = tile[2 + i];
  const int j = j0 + jj;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kShrinkK) {
    // x: kShrinkRows x kShrinkK values, kShrinkK / 32 per thread (zero past K or for empty slots).
    for (int e = tid; e < kShrinkRows * kShrinkK; e += kShrinkThreads) {
      const int row = tile[2 + e / kShrinkK], k = k0 + e % kShrinkK;
      xs[e] = (row >= 0 && k < K) ? load_value<kX>(x, size_t(row) * size_t(K) + size_t(k)) : 0.0f;
    }
    // A: the chunk's 32 rows (zero past r or K).
    for (int e = tid; e < 32 * kShrinkK; e += kShrinkThreads) {
      const int q = e / kShrinkK, kk = e % kShrinkK, k = k0 + kk;
      as[q * (kShrinkK + 1) + kk] = (j0 + q < r && k < K) ? a_all[size_t(off + j0 + q) * size_t(lda) + size_t(k)] : 0.0f;
    }
    __syncthreads();
    const int kn = K - k0 < kShrinkK ? K - k0 : kShrinkK;
    for (int kk = 0; kk < kn; ++kk) acc = fma_rn(xs[i * kShrinkK + kk], as[jj * (kShrinkK + 1) + kk], acc);
    __syncthreads();
  }
  if (m >= 0 && j < r) t[size_t(m) * size_t(tld) + size_t(j)] = acc;
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
  if (s.ntiles > 2147483647 / kShrinkTileWords || (s.rmax + 31) / 32 > 65535) return "loraShrink: too many tiles or too large a rank";
  return nullptr;
}

template <DType kX>
inline DenseGemmLaunchStatus launch_lora_shrink_config(const LoraShrinkArgs& s, DenseGemmStream stream) {
  LaunchDim grid = dim_x(unsigned(s.ntiles));
  grid.y = unsigned((s.rmax + 31) / 32);
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
