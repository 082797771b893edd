// The dense GEMM for float32 weights, on the CUDA cores: Y = X·Wᵀ (+ bias) with X and W float32.
//
//   X    [M, K] row-major float32, 16-byte aligned
//   W    [N, K] row-major float32 (torch.nn.Linear's layout), 16-byte aligned
//   bias [N] float32, optional
//   Y    [M, N] row-major, float32, float16 or bfloat16 (rounded to nearest even once)
// Any M >= 1 and N >= 1; K >= 4 and a multiple of 4 (rows are copied as 16-byte chunks of 4
// values, each wholly inside or wholly outside the matrix).
//
// ---- Why FFMA and not TF32 tensor cores -----------------------------------------------------------
// A user who keeps float32 weights asks for float32 arithmetic: torch.matmul's default on float32
// (allow_tf32 = False) is full float32 too. TF32's 10-bit mantissa would give an error near 2^-11
// relative per product, a thousand times float32's; this kernel gives float32's: each output is a
// chain of fused multiply-adds in k order, acc = fma(x[m][k], w[n][k], acc) from acc = 0, then
// + bias, so |Y - Y_exact| <= γ_K · Σ_k |x||w| (+ one rounding of the bias add) with γ_K = K·2^-24
// / (1 - K·2^-24): the CPU backend's bound (test/cuda-sim/gemm-dense.test.ts and backend-api.test.ts check it).
// FFMA runs at 1/16 to 1/32 of the tensor cores' dense rate; 16-bit weights are the fast path,
// float32 ones the exact one.
//
// ---- The design --------------------------------------------------------------------------------------
// Block tile 64 x 64 (M x N), K-step 16, 128 threads as 8 (ty) x 16 (tx). Thread (ty, tx) owns the
// 8 x 4 outputs m = ty + 8i (i < 8), n = tx + 16j (j < 4): at each k it reads 8 X values (two
// distinct rows per warp: broadcasts) and 4 W values, for 32 FMAs. A warp's 16 tx write 16
// consecutive n of one row: coalesced stores.
// Pipeline: kStages = 2 shared-memory stages filled by cp.async.16 (the next K-step's copy in
// flight while this one is multiplied), one commit group per K-step, wait_group 0 and one
// __syncthreads per K-step (the same protocol as gemm_dense.cuh with one stage fewer: FFMA on
// shared memory is not latency-bound the way the tensor cores are).
// Shared memory per stage: the X tile [64 rows][16 k] then the W tile [64][16], rows padded from
// 64 to 80 bytes (20 floats; cp.async.16 needs 16-byte aligned rows). Bank model: W row r at k
// is bank (20r + k) % 32: the 16 rows a warp reads at one k hit 8 distinct banks, a 2-way
// conflict (a 17-float pitch would be conflict-free but breaks the 16-byte copies).
// Edges: chunks past M, N or K are copied with src-size 0 (zeros), so only zeros enter the FMAs
// there; the epilogue writes only (m < M, n < N).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/kernel.h"
#include "cuda/ptx/cp_async.h"
#include "cuda/lora_epilogue.h"
#include "cuda/store_output.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace cg {
namespace gemm {

struct DenseF32Tile {
  static constexpr int kBlockM = 64;
  static constexpr int kBlockN = 64;
  static constexpr int kBlockK = 16;
  static constexpr int kThreadsX = 16;  // along N
  static constexpr int kThreadsY = 8;   // along M
  static constexpr int kThreads = kThreadsX * kThreadsY;
  static constexpr int kRowsPerThread = kBlockM / kThreadsY;  // 8
  static constexpr int kColsPerThread = kBlockN / kThreadsX;  // 4
  static constexpr int kStages = 2;

  static constexpr int kChunksPerRow = kBlockK * 4 / 16;        // 4
  static constexpr int kRowPitchFloats = kBlockK + 4;           // 20 (80 bytes)
  static constexpr int kRowPitchBytes = kRowPitchFloats * 4;
  static constexpr int kTileXBytes = kBlockM * kRowPitchBytes;  // 5120
  static constexpr int kTileWBytes = kBlockN * kRowPitchBytes;  // 5120
  static constexpr int kStageBytes = kTileXBytes + kTileWBytes;
  static constexpr int kSmemBytes = kStages * kStageBytes;      // 20480
  static constexpr int kChunksXPerThread = kBlockM * kChunksPerRow / kThreads;  // 2
  static constexpr int kChunksWPerThread = kBlockN * kChunksPerRow / kThreads;  // 2
};

static_assert(DenseF32Tile::kRowPitchBytes % 16 == 0, "cp.async.16 destinations are 16-byte aligned");
static_assert(DenseF32Tile::kBlockM * DenseF32Tile::kChunksPerRow % DenseF32Tile::kThreads == 0,
              "every thread copies the same number of chunks");
static_assert(DenseF32Tile::kSmemBytes <= 48 * 1024, "no opt-in to more than 48 KiB of dynamic shared memory");

// Grid: (ceil(N / 64), ceil(M / 64)); block: 128 threads; dynamic shared memory kSmemBytes.
template <DType kOut>
__global__ void dense_gemm_f32_kernel(const float* x, const float* w, const float* bias, void* out, int M, int N,
                                      int K, LoraEpilogue lora) {
  using T = DenseF32Tile;
  uint8_t* const smem = ::cg::dynamic_smem();
  const int tid = int(threadIdx.x);
  const int tx = tid % T::kThreadsX, ty = tid / T::kThreadsX;
  const int block_m0 = int(blockIdx.y) * T::kBlockM;
  const int block_n0 = int(blockIdx.x) * T::kBlockN;
  const int k_steps = (K + T::kBlockK - 1) / T::kBlockK;

  // Step: fetch_to_shared. Chunk i of a tile: row i / 4, 16-byte column i % 4 (consecutive
  // threads read consecutive 16 bytes of a row); past M, N or K: src-size 0 from the base address.
  auto fetch_to_shared = [&](int stage, int ks) {
    if (ks >= k_steps) return;
    uint8_t* const sx = smem + stage * T::kStageBytes;
    uint8_t* const sw = sx + T::kTileXBytes;
    const int k0 = ks * T::kBlockK;
    for (int j = 0; j < T::kChunksXPerThread; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / T::kChunksPerRow, chunk = i % T::kChunksPerRow;
      const int m = block_m0 + row, k = k0 + chunk * 4;
      const bool inside = m < M && k < K;
      ::cg::ptx::cp_async<16>(sx + row * T::kRowPitchBytes + chunk * 16, inside ? x + size_t(m) * size_t(K) + size_t(k) : x,
                              inside ? 16 : 0);
    }
    for (int j = 0; j < T::kChunksWPerThread; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / T::kChunksPerRow, chunk = i % T::kChunksPerRow;
      const int n = block_n0 + row, k = k0 + chunk * 4;
      const bool inside = n < N && k < K;
      ::cg::ptx::cp_async<16>(sw + row * T::kRowPitchBytes + chunk * 16, inside ? w + size_t(n) * size_t(K) + size_t(k) : w,
                              inside ? 16 : 0);
    }
  };

  float acc[T::kRowsPerThread][T::kColsPerThread];
  for (int i = 0; i < T::kRowsPerThread; ++i)
    for (int j = 0; j < T::kColsPerThread; ++j) acc[i][j] = 0.f;

  // Step: matmul. One stage: per k, this thread's 8 X values and 4 W values, 32 FMAs in k order.
  auto matmul = [&](int stage) {
    const float* const sx = reinterpret_cast<const float*>(smem + stage * T::kStageBytes);
    const float* const sw = reinterpret_cast<const float*>(smem + stage * T::kStageBytes + T::kTileXBytes);
    for (int k = 0; k < T::kBlockK; ++k) {
      float a[T::kRowsPerThread], b[T::kColsPerThread];
      for (int i = 0; i < T::kRowsPerThread; ++i) a[i] = sx[(ty + T::kThreadsY * i) * T::kRowPitchFloats + k];
      for (int j = 0; j < T::kColsPerThread; ++j) b[j] = sw[(tx + T::kThreadsX * j) * T::kRowPitchFloats + k];
      for (int i = 0; i < T::kRowsPerThread; ++i)
        for (int j = 0; j < T::kColsPerThread; ++j) acc[i][j] = fma_rn(a[i], b[j], acc[i][j]);
    }
  };

  fetch_to_shared(0, 0);
  ::cg::ptx::cp_async_commit();
  for (int ks = 0; ks < k_steps; ++ks) {
    // Step: wait_for_stage. This K-step's copies have landed for every thread, and every thread
    // is done with the stage the next fetch refills (multiplied in the previous iteration).
    ::cg::ptx::cp_async_wait<0>();
    __syncthreads();
    fetch_to_shared((ks + 1) % T::kStages, ks + 1);
    ::cg::ptx::cp_async_commit();
    matmul(ks % T::kStages);
  }
  ::cg::ptx::cp_async_wait<0>();  // only an empty group remains; no copy outlives the block

  // Step: write_result, only where m < M and n < N.
  CG_UNROLL for (int i = 0; i < T::kRowsPerThread; ++i) {
    const int m = block_m0 + ty + T::kThreadsY * i;
    if (m >= M) break;
    CG_UNROLL for (int j = 0; j < T::kColsPerThread; ++j) {
      const int n = block_n0 + tx + T::kThreadsX * j;
      if (n < N) store_output<kOut>(out, size_t(m) * size_t(N) + size_t(n), acc[i][j] + (bias ? bias[n] : 0.f) + lora_term(lora, m, n, M, N));
    }
  }
}

}  // namespace gemm
}  // namespace cg
