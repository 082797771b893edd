// The dense GEMM on tensor cores: Y = X·Wᵀ (+ bias), the torch.nn.Linear product.
//
//   X    [M, K] row-major, float16 or bfloat16 (16-bit bits in uint16_t), 16-byte aligned
//   W    [N, K] row-major (torch.nn.Linear's weight layout), the same type as X, 16-byte aligned
//   bias [N] float32, optional (nullptr: none)
//   Y    [M, N] row-major, float32, float16 or bfloat16 (rounded to nearest even once, from the
//        float32 accumulator plus the bias)
// Any M >= 1 and N >= 1; K >= 8 and a multiple of 8, so that every row of X and W is a whole
// number of 16-byte chunks (cp.async copies 16 bytes) and every chunk is wholly inside or wholly
// outside the matrix.
//
// One source, two executors (kernel.h): nvcc compiles this file (gemm_dense.cu) into the CUDA
// addon; the host compiler compiles it over the simulated device (native/binding/cuda_sim/gemm.cc),
// where every PTX wrapper (native/cuda/ptx/) is the ISA's emulation and every misuse is refused.
//
// ---- The design, and why ---------------------------------------------------------------------------
// Block tile 64 x 64 (M x N), K-step 32; 4 warps (128 threads) as 2 x 2, each warp a 32 x 32 tile
// = 2 (m16) x 4 (n8) mma tiles, so one K-step is 2 k16 slices x 8 mma.sync.m16n8k16 per warp.
//   Why: 32 float32 accumulators per thread leave ptxas room (no spills on sm_80/89/90a, see the
//   report in the .cu), the per-warp ratio of ldmatrix to mma (4 ldmatrix.x4 : 8 mma per k16) is
//   Marlin's/CUTLASS's usual, and a 64-wide tile wastes little on ragged edges.
// The decode tile (DenseDecodeTile, 16-bit inputs at M <= 16 unless the caller picks): 16 x 64,
//   one row of 4 warps of 16 x 16 (1 m16 x 2 n8 mma tiles: per k16 1 ldmatrix.x4 of X, 1 of W,
//   2 mma), 6 stages of 6400 bytes, so 5 K-steps of W are in flight instead of 2 while the block
//   streams W (decode is memory-bound), and no warp works on rows past M. Split-K (split_k.cuh)
//   fills the SMs when the (N, M) tiles alone do not. Larger tiles (128 x 128, 8 warps) are a
//   later configuration of the same template; neither tile has been timed on a GPU yet.
// Pipeline: kStages = 3 shared-memory stages filled by cp.async (global -> shared without
//   registers). K-step kt is multiplied while K-steps kt+1 and kt+2 are in flight; one commit
//   group per K-step (empty groups past the end keep the wait count uniform), wait_group
//   kStages-2 then one __syncthreads per K-step (cp.async data is visible to the issuing thread
//   only; the barrier also tells every thread that the stage about to be refilled is no longer
//   read).
// Shared memory per stage: the X tile [64 rows][32 k] then the W tile [64 rows][32 k], each row
//   padded from 64 to 80 bytes (kRowPitchBytes). Bank model (PTX.md, a model, not a fact): an
//   8-row ldmatrix phase is conflict-free when its 8 row addresses fall in distinct 16-byte bank
//   groups ((addr / 16) % 8). With an 80-byte pitch, row r, chunk c sits in group (5r + c) % 8:
//   8 consecutive rows give 8 distinct groups (5 is odd, so r -> 5r is a bijection mod 8). A
//   64-byte pitch would give (4r + c) % 8: only 2 groups, a 4-way conflict. The pad costs 25% of
//   shared memory (30 KiB in all, under the 48 KiB every launch gets without opting in); an XOR
//   swizzle would save it and is the choice for larger tiles. The pad bytes are never read.
// Edges: every 16-byte chunk of every stage is written by a cp.async, with src-size 0 (all zeros)
//   for chunks past M (rows of X), past N (rows of W) or past K; so zero rows/columns enter the
//   mma and no poisoned or stale shared memory ever does. The epilogue writes only (m < M, n < N).
//
// ---- Fragments (PTX ISA §9.7.14.5.8, §9.7.14.5.15; ptx/mma.h, ptx/ldmatrix.h) --------------------
// g = lane / 4, t = lane % 4.
// FragA (4 x b32): the m16 x k16 slice of X: a[0] = X[g][2t..2t+1], a[1] = X[g+8][2t..2t+1],
//   a[2] = X[g][2t+8..2t+9], a[3] = X[g+8][2t+8..2t+9]. One ldmatrix.x4: lane L points at row
//   L % 16, column 8 (L / 16) of the slice (matrices 0..3 = rows 0-7/8-15 x columns 0-7/8-15,
//   in the order a[0..3] wants).
// FragB (2 x b32): the k16 x n8 slice of B = Wᵀ ("col": B[k][n] = W[n][k], k contiguous in W's
//   rows, which is exactly how W is stored). b[0] = B[2t..2t+1][g] = W[n0+g][k0+2t..k0+2t+1] and
//   b[1] = W[n0+g][k0+2t+8..+9]. A non-transposed ldmatrix of the 8 x 8 matrix whose rows are
//   W's rows n0..n0+7 and columns k0..k0+7 gives lane L row L / 4 = g, columns 2(L % 4) = 2t and
//   2t+1: that is b[0]; the matrix at k0+8 gives b[1]. One ldmatrix.x4 loads two n8 tiles: lane L
//   points at W-row n0 + 8 (L / 16) + L % 8, column k0 + 8 ((L / 8) % 2); registers 0, 1 are the
//   FragB of n0..n0+7 and registers 2, 3 that of n0+8..n0+15. No .trans needed.
// FragC (4 x f32): c[0] = (g, 2t), c[1] = (g, 2t+1), c[2] = (g+8, 2t), c[3] = (g+8, 2t+1) of the
//   m16 x n8 tile: each (m, n) of the block tile belongs to exactly one warp, one (mt, nt) tile
//   and one lane/register, so every output element is written exactly once.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/kernel.h"
#include "cuda/ptx/cp_async.h"
#include "cuda/ptx/ldmatrix.h"
#include "cuda/ptx/mma.h"
#include "cuda/lora_epilogue.h"
#include "cuda/split_k.cuh"
#include "cuda/store_output.h"
#include "cuda/gemm_dense_f32.cuh"

namespace cg {
namespace gemm {

// ---- Register fragments ---------------------------------------------------------------------------
using FragA = uint32_t[4];  // m16 x k16 of X, two 16-bit values per register
using FragB = uint32_t[2];  // k16 x n8 of Wᵀ
using FragC = float[4];     // m16 x n8 float32 accumulators

// ---- The configuration ----------------------------------------------------------------------------
// The block tile: kBlockM_ rows of X (and Y) by 64 rows of W (columns of Y), K-step 32, warps laid
// out kWarpsM_ (along M) x kWarpsN_ (along N), kStages_ shared-memory stages.
template <int kBlockM_, int kWarpsM_, int kWarpsN_, int kStages_>
struct DenseTileConfig {
  static constexpr int kBlockM = kBlockM_;  // rows of X (and Y) per block
  static constexpr int kBlockN = 64;  // rows of W (columns of Y) per block
  static constexpr int kBlockK = 32;  // K per pipeline stage (two k16 mma slices)
  static constexpr int kWarpsM = kWarpsM_;   // warps along M
  static constexpr int kWarpsN = kWarpsN_;   // warps along N
  static constexpr int kStages = kStages_;   // shared-memory stages in flight

  static constexpr int kWarps = kWarpsM * kWarpsN;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kWarpM = kBlockM / kWarpsM;  // rows per warp: general 32, decode 16
  static constexpr int kWarpN = kBlockN / kWarpsN;  // columns per warp: 32, 16
  static constexpr int kMmaM = kWarpM / 16;         // m16 tiles per warp: 2, 1
  static constexpr int kMmaN = kWarpN / 8;          // n8 tiles per warp: 4, 2
  static constexpr int kSlicesK = kBlockK / 16;     // k16 slices per stage: 2

  // Shared memory: a stage is the X tile then the W tile, rows of kBlockK values + 16 pad bytes.
  static constexpr int kChunksPerRow = kBlockK * 2 / 16;         // 16-byte chunks per row: 4
  static constexpr int kRowPitchBytes = kBlockK * 2 + 16;        // 80 (see "Bank model" above)
  static constexpr int kTileXBytes = kBlockM * kRowPitchBytes;   // 5120, 1280
  static constexpr int kTileWBytes = kBlockN * kRowPitchBytes;   // 5120
  static constexpr int kStageBytes = kTileXBytes + kTileWBytes;  // 10240, 6400
  static constexpr int kSmemBytes = kStages * kStageBytes;       // 30720, 38400
  // cp.async chunks per stage, and per thread (the decode tile's 64 X chunks: threads 0..63).
  static constexpr int kChunksX = kBlockM * kChunksPerRow;       // 256, 64
  static constexpr int kChunksXPerThread = (kChunksX + kThreads - 1) / kThreads;  // 2, 1
  static constexpr int kChunksWPerThread = kBlockN * kChunksPerRow / kThreads;  // 2
};

// The general tile (M > 16, or float32 inputs' grid): 64 x 64, 2 x 2 warps of 32 x 32, 3 stages.
using DenseTile = DenseTileConfig<64, 2, 2, 3>;
// The decode tile (16-bit inputs, M <= 16): 16 x 64, one row of 4 warps of 16 x 16 (1 m16 x 2 n8
// mma tiles, 8 accumulators per thread), 6 stages: 5 K-steps of W in flight instead of 2 while
// the block streams W, and no warp on rows past M (the general tile's second warp row is all
// padding at M <= 32, and its X tile takes half of every stage).
using DenseDecodeTile = DenseTileConfig<16, 1, 4, 6>;
// The wide tile (16-bit inputs; the automatic choice from M = kDenseWideFromM): 128 x 64, 4 x 2
// warps of 32 x 32 (the general tile's warp tile, so its registers), 3 stages of 15360 bytes
// (46080 in all, under the 48 KiB). Each W tile serves 128 rows of X: W is read from L2 half as
// often at large M, and a stage's copy is (128 + 64) rows for 128 x 64 outputs instead of
// (64 + 64) for 64 x 64.
using DenseWideTile = DenseTileConfig<128, 4, 2, 3>;

template <class T>
constexpr bool dense_tile_ok() {
  static_assert(T::kWarpM % 16 == 0 && T::kWarpN % 16 == 0,
                "a warp covers whole m16 tiles and whole pairs of n8 tiles (one ldmatrix.x4 loads two)");
  static_assert(T::kBlockK % 16 == 0, "a stage holds whole k16 slices");
  static_assert((T::kRowPitchBytes / 16) % 2 == 1, "an odd pitch in 16-byte units spreads 8 consecutive rows over the 8 bank groups");
  static_assert((T::kChunksX % T::kThreads == 0 || T::kChunksX < T::kThreads) && T::kBlockN * T::kChunksPerRow % T::kThreads == 0,
                "every thread copies the same number of W chunks, and of X chunks or at most one");
  static_assert(T::kSmemBytes <= 48 * 1024, "no opt-in to more than 48 KiB of dynamic shared memory");
  static_assert(T::kStages >= 2, "a pipeline needs at least two stages");
  return true;
}
static_assert(dense_tile_ok<DenseTile>() && dense_tile_ok<DenseDecodeTile>() && dense_tile_ok<DenseWideTile>(), "the tiles are valid");

// ---- Small device helpers (each the one thing it names) ---------------------------------------------

// D = A·B + C in float32 with A, B of the kernel's input type.
template <bool kBf16>
__device__ __forceinline__ void mma(FragC& acc, const FragA& a, const FragB& b) {
  if constexpr (kBf16) {
    ::cg::ptx::mma_m16n8k16_bf16f32(acc, a, b, acc);
  } else {
    ::cg::ptx::mma_m16n8k16_f16f32(acc, a, b, acc);
  }
}

// ---- The kernel -------------------------------------------------------------------------------------
// kBf16: X and W are bfloat16 (else float16); the mma instruction follows.
// kOut:  Y's element type (F32, F16, BF16); the epilogue's conversion follows.
// T: the tile (DenseTile or DenseDecodeTile). Grid: (ceil(N / 64), ceil(M / T::kBlockM), splits);
// block: T::kThreads (128) threads; dynamic shared memory T::kSmemBytes.
// Split-K (split_k.cuh): block z multiplies the K-steps [z steps_per_split, (z + 1)
// steps_per_split) only; with partial (splits > 1) it writes its float32 sum to partial[z][m][n]
// (no bias, no LoRA term, no rounding) and split_k_reduce_kernel finishes; without, it stores Y.
template <class T, bool kBf16, DType kOut>
__global__ void dense_gemm_kernel(const uint16_t* x, const uint16_t* w, const float* bias, void* out, int M, int N,
                                  int K, LoraEpilogue lora, int steps_per_split, float* partial) {
  uint8_t* const smem = ::cg::dynamic_smem();
  const int tid = int(threadIdx.x);
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int warp_m = warp / T::kWarpsN;  // this warp's rows: warp_m * kWarpM .. of the block tile
  const int warp_n = warp % T::kWarpsN;  // this warp's columns: warp_n * kWarpN ..
  const int block_m0 = int(blockIdx.y) * T::kBlockM;
  const int block_n0 = int(blockIdx.x) * T::kBlockN;
  const int k_steps_all = (K + T::kBlockK - 1) / T::kBlockK;
  // This block's K-steps: [ks0, k_steps) (the whole K without split-K).
  const int ks0 = int(blockIdx.z) * steps_per_split;
  const int k_steps = ks0 + steps_per_split < k_steps_all ? ks0 + steps_per_split : k_steps_all;

  // Step: fetch_to_shared. Thread tid copies chunks tid, tid + 128, ... of the X tile and of the
  // W tile of K-step `ks` into `stage` (chunk i: row i / 4, 16-byte column i % 4: consecutive
  // threads read consecutive 16 bytes of a row). Past M, N or K: src-size 0 (zeros) from the
  // matrix's base address (aligned; nothing is read from it). Past the last K-step: nothing,
  // but the group is still committed by the caller.
  auto fetch_to_shared = [&](int stage, int ks) {
    if (ks >= k_steps) return;
    uint8_t* const sx = smem + stage * T::kStageBytes;
    uint8_t* const sw = sx + T::kTileXBytes;
    const int k0 = ks * T::kBlockK;
    for (int j = 0; j < T::kChunksXPerThread; ++j) {
      const int i = tid + j * T::kThreads;
      if (T::kChunksX < T::kThreads && i >= T::kChunksX) break;
      const int row = i / T::kChunksPerRow, chunk = i % T::kChunksPerRow;
      const int m = block_m0 + row, k = k0 + chunk * 8;
      const bool inside = m < M && k < K;
      const uint16_t* src = inside ? x + size_t(m) * size_t(K) + size_t(k) : x;
      ::cg::ptx::cp_async<16>(sx + row * T::kRowPitchBytes + chunk * 16, src, inside ? 16 : 0);
    }
    for (int j = 0; j < T::kChunksWPerThread; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / T::kChunksPerRow, chunk = i % T::kChunksPerRow;
      const int n = block_n0 + row, k = k0 + chunk * 8;
      const bool inside = n < N && k < K;
      const uint16_t* src = inside ? w + size_t(n) * size_t(K) + size_t(k) : w;
      ::cg::ptx::cp_async<16>(sw + row * T::kRowPitchBytes + chunk * 16, src, inside ? 16 : 0);
    }
  };

  // Step: wait_for_stage. This thread's copies of the oldest pending K-step have landed, and
  // after the barrier every thread's have (and every thread is done reading the stage that the
  // next fetch refills: the one multiplied in the previous iteration).
  auto wait_for_stage = [&]() {
    ::cg::ptx::cp_async_wait<T::kStages - 2>();
    __syncthreads();
  };

  FragC acc[T::kMmaM][T::kMmaN];
  for (int mt = 0; mt < T::kMmaM; ++mt)
    for (int nt = 0; nt < T::kMmaN; ++nt)
      for (int r = 0; r < 4; ++r) acc[mt][nt][r] = 0.f;

  // Step: matmul. The warp's tile over one stage: per k16 slice, FragA of its m16 tiles and FragB
  // of its n8 tiles by ldmatrix (addresses in the header), then kMmaM x kMmaN mma (8 or 2).
  auto matmul = [&](int stage) {
    const uint8_t* const sx = smem + stage * T::kStageBytes;
    const uint8_t* const sw = sx + T::kTileXBytes;
    for (int kk = 0; kk < T::kSlicesK; ++kk) {
      FragA a[T::kMmaM];
      FragB b[T::kMmaN];
      for (int mt = 0; mt < T::kMmaM; ++mt) {
        const int row = warp_m * T::kWarpM + mt * 16 + lane % 16;
        const int col = kk * 16 + (lane / 16) * 8;
        ::cg::ptx::ldmatrix_x4(a[mt], sx + row * T::kRowPitchBytes + col * 2);
      }
      for (int np = 0; np < T::kMmaN / 2; ++np) {
        const int row = warp_n * T::kWarpN + np * 16 + (lane / 16) * 8 + lane % 8;
        const int col = kk * 16 + ((lane / 8) % 2) * 8;
        uint32_t pair[4];
        ::cg::ptx::ldmatrix_x4(pair, sw + row * T::kRowPitchBytes + col * 2);
        b[2 * np][0] = pair[0];
        b[2 * np][1] = pair[1];
        b[2 * np + 1][0] = pair[2];
        b[2 * np + 1][1] = pair[3];
      }
      for (int mt = 0; mt < T::kMmaM; ++mt)
        for (int nt = 0; nt < T::kMmaN; ++nt) mma<kBf16>(acc[mt][nt], a[mt], b[nt]);
    }
  };

  // Step: write_result. Each accumulator (plus bias[n]) goes straight from its FragC position to
  // Y, only where m < M and n < N. (Per-element stores: N may be odd, so pairs are not aligned;
  // a staged, vectorised epilogue is a later optimisation.)
  // Split-K: this slice's float32 sums go to its partial buffer instead.
  auto write_result = [&]() {
    const int g = lane / 4, t = lane % 4;
    float* const slice = partial ? partial + size_t(blockIdx.z) * size_t(M) * size_t(N) : nullptr;
    CG_UNROLL for (int mt = 0; mt < T::kMmaM; ++mt) {
      CG_UNROLL for (int nt = 0; nt < T::kMmaN; ++nt) {
        CG_UNROLL for (int r = 0; r < 4; ++r) {
          const int m = block_m0 + warp_m * T::kWarpM + mt * 16 + g + 8 * (r / 2);
          const int n = block_n0 + warp_n * T::kWarpN + nt * 8 + 2 * t + r % 2;
          if (m >= M || n >= N) continue;
          if (slice) {
            slice[size_t(m) * size_t(N) + size_t(n)] = acc[mt][nt][r];
          } else {
            const float v = acc[mt][nt][r] + (bias ? bias[n] : 0.f) + lora_term(lora, m, n, M, N);
            store_output<kOut>(out, size_t(m) * size_t(N) + size_t(n), v);
          }
        }
      }
    }
  };

  // The pipeline: kStages - 1 K-steps in flight before the first multiply, then per K-step:
  // wait for the oldest, refill the stage freed by the previous multiply, multiply.
  for (int s = 0; s < T::kStages - 1; ++s) {
    fetch_to_shared(s, ks0 + s);
    ::cg::ptx::cp_async_commit();
  }
  for (int i = 0; i < k_steps - ks0; ++i) {
    wait_for_stage();
    fetch_to_shared((i + T::kStages - 1) % T::kStages, ks0 + i + T::kStages - 1);
    ::cg::ptx::cp_async_commit();
    matmul(i % T::kStages);
  }
  ::cg::ptx::cp_async_wait<0>();  // only empty groups remain; no copy outlives the block
  write_result();
}

// ---- The host launcher ------------------------------------------------------------------------------

#if defined(__CUDACC__)
using DenseGemmStream = cudaStream_t;
using DenseGemmLaunchStatus = cudaError_t;  // the launch's own result (cudaGetLastError)
#else
using DenseGemmStream = void*;                           // the simulator's launch is synchronous
using DenseGemmLaunchStatus = ::cg::sim::LaunchResult;  // ok, or the simulator's first refusal
#endif

// CG_LAUNCH_STATUS (kernel.h) gives a launch's DenseGemmLaunchStatus.


// A configuration the kernel does not run (checked before any launch).
enum class DenseGemmError : int {
  kNone = 0,
  kBadShape,               // M, N or K below 1, or M above the grid's reach
  kKNotMultipleOf8,        // 16-bit inputs: K % 8 != 0
  kKNotMultipleOf4,        // float32 inputs: K % 4 != 0
  kDtypeMismatch,          // X and W of different types
  kMisaligned,             // X or W not 16-byte aligned, bias or Y not aligned to their element
  kNullPointer,            // X, W or Y missing
  kSplits,                 // splits outside 1..kMaxSplits, more than dense_effective_splits gives, no partial buffer, or float32 inputs
  kTile,                   // block_m not 0, 16, 64 or 128, or 16 or 128 with float32 inputs
};

inline const char* dense_gemm_error_message(DenseGemmError e) {
  switch (e) {
    case DenseGemmError::kNone: return "";
    case DenseGemmError::kBadShape:
      return "dense GEMM: M, N and K must be at least 1 (and M within the grid's reach: 65535 tiles of the tile's rows of X)";
    case DenseGemmError::kKNotMultipleOf8:
      return "dense GEMM: K must be a multiple of 8 for float16/bfloat16 (rows of X and W are copied as 16-byte chunks of 8 values)";
    case DenseGemmError::kKNotMultipleOf4:
      return "dense GEMM: K must be a multiple of 4 for float32 (rows of X and W are copied as 16-byte chunks of 4 values)";
    case DenseGemmError::kDtypeMismatch:
      return "dense GEMM: X and W must have the same dtype (the mma takes two float16 or two bfloat16 operands)";
    case DenseGemmError::kMisaligned:
      return "dense GEMM: X and W must be 16-byte aligned, bias and Y aligned to their element size";
    case DenseGemmError::kNullPointer: return "dense GEMM: X, W and Y must not be null";
    case DenseGemmError::kSplits:
      return "dense GEMM: splits must be 1..8, no more than the K slices dense_effective_splits gives, with a float32 [splits, M, N] partial buffer when above 1 (and 1 for float32 inputs)";
    case DenseGemmError::kTile:
      return "dense GEMM: the tile's rows of X (blockM) must be 16, 64 or 128, and 64 for float32 inputs (the CUDA-core kernel has one tile)";
  }
  return "dense GEMM: unknown error";
}

struct DenseGemmArgs {
  int M = 0, N = 0, K = 0;
  DType x_dtype = DType::F16;  // F16, BF16 (tensor cores) or F32 (gemm_dense_f32.cuh), the same as w_dtype
  DType w_dtype = DType::F16;
  DType out_dtype = DType::F32;  // F32, F16 or BF16
  const void* x = nullptr;       // [M, K] row-major of x_dtype, 16-byte aligned (device pointer)
  const void* w = nullptr;       // [N, K] row-major of w_dtype, 16-byte aligned
  const float* bias = nullptr;   // [N] or nullptr
  void* out = nullptr;           // [M, N] row-major of out_dtype; must not overlap x, w, bias
  LoraEpilogue lora;             // the fused LoRA term (lora_epilogue.h); lora.t null: none
  int block_m = 0;               // the tile's rows of X: 16 (DenseDecodeTile) or 128 (DenseWideTile), 16-bit inputs, or 64; 0: dense_block_m's choice
  int splits = 1;                // split-K slices (16-bit inputs only), as dense_effective_splits gives them
  float* partial = nullptr;      // splits > 1: float32 [splits, M, N] (device), not overlapping the rest
};

// From this many rows of X, 16-bit inputs take the wide tile. H200, 2026-12-04
// (bench/results/gpu-h200-2026-12-04/run4, `ours dense blockM 128` against `ours dense`, fp16):
// 1.19-1.24x faster at M = 512 on 4096x4096, 11008x4096 and 4096x11008, 1.21-1.29x at M = 4096,
// 1.30x on 8192^3. Below M = 512 it was not timed.
constexpr int64_t kDenseWideFromM = 512;

// The tile's rows of X for a call: `requested` when given (not 0), else for 16-bit inputs the
// decode tile up to M = 16, the wide tile from kDenseWideFromM, and 64 rows between (float32
// inputs have the 64-row tile only).
inline int dense_block_m(int64_t M, int requested, DType in) {
  if (requested == 0 && in == DType::F32) return DenseTile::kBlockM;
  if (requested == 0 && M >= kDenseWideFromM) return DenseWideTile::kBlockM;
  return pick_block_m(M, requested, DenseDecodeTile::kBlockM, DenseTile::kBlockM);
}

// The K slices the launcher uses when the caller does not choose (split_k.cuh's auto_splits over
// the tensor-core kernel's tiles of `block_m` x 64 and 32-column K-steps, each slice at least 8
// steps); 1 for float32 inputs (the CUDA-core kernel does not split). Then as dense_effective_splits.
inline int dense_auto_splits(int64_t M, int64_t N, int64_t K, DType in, int block_m, int multiprocessors) {
  if (in == DType::F32) return 1;
  return auto_splits(((N + DenseTile::kBlockN - 1) / DenseTile::kBlockN) * ((M + block_m - 1) / block_m),
                     (K + DenseTile::kBlockK - 1) / DenseTile::kBlockK, 8, multiprocessors);
}

// The slices a request of `splits` gives (split_k.cuh's effective_splits over the K-steps).
inline int dense_effective_splits(int64_t K, int splits) { return effective_splits((K + DenseTile::kBlockK - 1) / DenseTile::kBlockK, splits); }

struct DenseGemmStatus {
  DenseGemmError error = DenseGemmError::kNone;  // a refused configuration: nothing was launched
  DenseGemmLaunchStatus launch{};                // the launch's result when error == kNone
};

inline DenseGemmError validate_dense_gemm(const DenseGemmArgs& a) {
  if (a.M < 1 || a.N < 1 || a.K < 1) return DenseGemmError::kBadShape;
  if (a.block_m != 0 && a.block_m != DenseTile::kBlockM &&
      ((a.block_m != DenseDecodeTile::kBlockM && a.block_m != DenseWideTile::kBlockM) || a.x_dtype == DType::F32))
    return DenseGemmError::kTile;
  const int64_t block_m = dense_block_m(a.M, a.block_m, a.x_dtype);
  if ((int64_t(a.M) + block_m - 1) / block_m > 65535) return DenseGemmError::kBadShape;
  if (a.x_dtype != a.w_dtype) return DenseGemmError::kDtypeMismatch;
  if (a.x_dtype == DType::F32 ? a.K % 4 != 0 : a.K % 8 != 0)
    return a.x_dtype == DType::F32 ? DenseGemmError::kKNotMultipleOf4 : DenseGemmError::kKNotMultipleOf8;
  if (!a.x || !a.w || !a.out) return DenseGemmError::kNullPointer;
  if (a.splits < 1 || a.splits > kMaxSplits || dense_effective_splits(a.K, a.splits) != a.splits || (a.splits > 1 && !a.partial) ||
      (a.splits > 1 && a.x_dtype == DType::F32))
    return DenseGemmError::kSplits;
  const auto addr = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  if (addr(a.x) % 16 || addr(a.w) % 16 || addr(a.bias) % 4 || addr(a.out) % size_t(dtype_size(a.out_dtype)))
    return DenseGemmError::kMisaligned;
  return DenseGemmError::kNone;
}

// The compiled configurations: {f16, bf16} inputs on the tensor cores (DenseTile, DenseDecodeTile)
// and f32 inputs on the CUDA cores (DenseF32Tile), each x {f32, f16, bf16} outputs. Anything else
// is refused by validate_dense_gemm with a DenseGemmError. T: the tensor-core tile (the float32
// kernel's is 64 x 64, as DenseTile).
template <class T, DType kIn, DType kOut>
inline DenseGemmLaunchStatus launch_dense_gemm_config(const DenseGemmArgs& a, DenseGemmStream stream) {
  static_assert(DenseTile::kBlockM == DenseF32Tile::kBlockM && DenseTile::kBlockN == DenseF32Tile::kBlockN, "one grid shape");
  LaunchDim grid, block;
  grid.x = unsigned((a.N + T::kBlockN - 1) / T::kBlockN);
  grid.y = unsigned((a.M + T::kBlockM - 1) / T::kBlockM);
  grid.z = unsigned(a.splits);  // 1 for float32 inputs (validate_dense_gemm)
  block.x = unsigned(kIn == DType::F32 ? DenseF32Tile::kThreads : T::kThreads);
  block.y = 1;
  block.z = 1;
  // Named pointers: the template's commas cannot pass through CG_LAUNCH, and the simulator names
  // the kernel by this token in its refusals.
  if constexpr (kIn == DType::F32) {
    auto* const dense_gemm_f32 = &dense_gemm_f32_kernel<kOut>;
    const float* x = static_cast<const float*>(a.x);
    const float* w = static_cast<const float*>(a.w);
#if defined(__CUDACC__)
    CG_LAUNCH(dense_gemm_f32, grid, block, DenseF32Tile::kSmemBytes, stream, x, w, a.bias, a.out, a.M, a.N, a.K, a.lora);
    return cudaGetLastError();
#else
    return CG_LAUNCH(dense_gemm_f32, grid, block, DenseF32Tile::kSmemBytes, stream, x, w, a.bias, a.out, a.M, a.N, a.K, a.lora);
#endif
  } else {
    auto* const dense_gemm = &dense_gemm_kernel<T, kIn == DType::BF16, kOut>;
    const uint16_t* x = static_cast<const uint16_t*>(a.x);
    const uint16_t* w = static_cast<const uint16_t*>(a.w);
    const int k_steps = (a.K + T::kBlockK - 1) / T::kBlockK;
    const int steps_per_split = (k_steps + a.splits - 1) / a.splits;
    float* const partial = a.splits > 1 ? a.partial : nullptr;
    const DenseGemmLaunchStatus s = CG_LAUNCH_STATUS(dense_gemm, grid, block, T::kSmemBytes, stream, x, w, a.bias, a.out, a.M, a.N,
                                                     a.K, a.lora, steps_per_split, partial);
#if defined(__CUDACC__)
    if (!partial || s != cudaSuccess) return s;
#else
    if (!partial || !s.ok) return s;
#endif
    auto* const reduce = &split_k_reduce_kernel<kOut>;
    const int64_t mn = int64_t(a.M) * int64_t(a.N);
    return CG_LAUNCH_STATUS(reduce, dim_x(unsigned((mn + 255) / 256)), dim_x(256), 0, stream, a.partial, a.splits, a.bias, a.out, a.M, a.N,
                            a.lora);
  }
}

template <class T, DType kIn>
inline DenseGemmLaunchStatus launch_dense_gemm_tile(const DenseGemmArgs& a, DenseGemmStream stream) {
  switch (a.out_dtype) {
    case DType::F32: return launch_dense_gemm_config<T, kIn, DType::F32>(a, stream);
    case DType::F16: return launch_dense_gemm_config<T, kIn, DType::F16>(a, stream);
    default: return launch_dense_gemm_config<T, kIn, DType::BF16>(a, stream);
  }
}

template <DType kIn>
inline DenseGemmLaunchStatus launch_dense_gemm_input(const DenseGemmArgs& a, DenseGemmStream stream) {
  if constexpr (kIn != DType::F32) {
    const int block_m = dense_block_m(a.M, a.block_m, kIn);
    if (block_m == DenseDecodeTile::kBlockM) return launch_dense_gemm_tile<DenseDecodeTile, kIn>(a, stream);
    if (block_m == DenseWideTile::kBlockM) return launch_dense_gemm_tile<DenseWideTile, kIn>(a, stream);
  }
  return launch_dense_gemm_tile<DenseTile, kIn>(a, stream);
}

// Validates, then launches on `stream` (asynchronously under nvcc; synchronously, on host
// memory, on the simulated device). status.error != kNone: nothing ran; else status.launch is
// the launch's result.
inline DenseGemmStatus launch_dense_gemm(const DenseGemmArgs& a, DenseGemmStream stream) {
  DenseGemmStatus status;
  status.error = validate_dense_gemm(a);
  if (status.error != DenseGemmError::kNone) return status;
  switch (a.x_dtype) {
    case DType::F32: status.launch = launch_dense_gemm_input<DType::F32>(a, stream); break;
    case DType::BF16: status.launch = launch_dense_gemm_input<DType::BF16>(a, stream); break;
    default: status.launch = launch_dense_gemm_input<DType::F16>(a, stream); break;
  }
  return status;
}

}  // namespace gemm
}  // namespace cg
