// The 2:4 sparse GEMM on sparse tensor cores: Y = X·Wᵀ (+ bias), W [N, K] 2:4 sparse along K.
//
//   X     [M, K] row-major, float16 or bfloat16, 16-byte aligned; K a multiple of 8 (16-byte rows)
//   W     the device layout made on upload (lib/backends/cuda-sparse24.ts), [Np, Kp] logically,
//         Np = N rounded up to 64 and Kp = K rounded up to 64 (the padding: zero values with
//         metadata 0x4, "positions 0 and 1", a valid ordered nibble), in two arrays:
//           values [Np, Kp/2] row-major, the weight dtype: the canonical format's kept values
//                  (two per group of 4 columns, in increasing column order), unchanged;
//           meta   uint32 [Np/16][Kp/32][16]: for each 16-row x 32-column tile of W, the 16 words
//                  the lanes of mma.sp's selector-0 pairs hold (below), word 2g + p for lane 4g + p.
//   bias  [N] float32, optional
//   Y     [M, N] row-major, float32, float16 or bfloat16
//
// ---- The product, and why W is the A operand --------------------------------------------------------
// mma.sp compresses its A operand (16 x 32, rows = the instruction's m). The sparse matrix is W,
// so the kernel computes Yᵀ = W·Xᵀ: the instruction's m runs along N (16 rows of W), its n along
// M (8 rows of X), its k along K (32 logical columns, 16 stored). A warp's accumulator tile is a
// 16 (N) x 8 (M) tile of Yᵀ, written transposed into Y by the epilogue.
//
// ---- Fragments (PTX ISA §9.7.14.6.2.2; ptx/mma_sp.h) ---------------------------------------------------
// g = lane / 4, t = lane % 4; n0, k0: the tile's first row of W and first logical column.
// A (4 x b32): the compressed 16 x 16 tile of W's values (columns k0/2 .. k0/2+15 of `values`), in
//   the dense m16n8k16 A layout: a[0] = values[n0+g][k0/2+2t .. +1] (the two kept values of group
//   k0/4 + t of row n0+g), a[1] = row n0+g+8, a[2] = columns +8 (group k0/4 + t + 4), a[3] = both.
//   So `values` needs no re-layout: one ldmatrix.x4 over the shared tile, lane L pointing at row
//   L % 16, compressed column 8 (L / 16), exactly as gemm_dense.cuh loads X.
// B (4 x b32): the 32 x 8 tile of Xᵀ: b[j] = Xᵀ[k0+2t+8j .. +1][m0+g] = X[m0+g][k0+8j+2t .. +1]. A
//   non-transposed ldmatrix of the 8 x 8 matrix of X's rows m0..m0+7 and columns k0+8j..+7 gives
//   lane L row L / 4 = g, columns 2 (L % 4) = 2t: that is b[j]; one ldmatrix.x4 loads j = 0..3,
//   lane L pointing at row m0 + L % 8, column k0 + 8 (L / 8).
// e (1 x b32), selector 0: lane 4g + p (p = 0, 1) holds in bits [15:0] the nibbles of row n0+g's
//   groups k0/4 + 4p .. +3 (group j of those in bits 4j..4j+3) and in bits [31:16] row n0+g+8's.
//   The canonical meta stores a row's groups two per byte, the even one in the low nibble, so a
//   half-word is two consecutive canonical bytes, little-endian: the upload only gathers the 16
//   rows' half-words into the word each lane loads with one 32-bit read. Lanes 4g+2, 4g+3 pass 0
//   (not read by the instruction; the simulator checks that it never reads them).
// C, D (4 x f32): d[0] = Yᵀ(n0+g, m0+2t), d[1] = Yᵀ(n0+g, m0+2t+1), d[2] = Yᵀ(n0+g+8, m0+2t),
//   d[3] = Yᵀ(n0+g+8, m0+2t+1).
//
// ---- Tiles and the pipeline --------------------------------------------------------------------------
// The general tile (Sparse24Tile, M > 16): block tile 64 (N) x 64 (M), K-step 64 logical columns
// (two k32 mma.sp slices); 4 warps as 2 (N) x 2 (M), each warp 32 x 32 = 2 m16 (N) x 4 n8 (M) mma.sp tiles: per k32 slice 2 ldmatrix.x4
// of W, 4 of X, 2 metadata words, 8 mma.sp. 32 float32 accumulators per thread, as gemm_dense.cuh.
// kStages = 3 shared-memory stages filled by cp.async, one commit group per K-step, the same
// protocol as gemm_dense.cuh (wait_group kStages-2, one __syncthreads).
// Shared memory per stage: W values [64 rows][32 stored values] (64 bytes, pitch 80: the odd
// 16-byte pitch spreads 8 rows over the 8 bank groups), X [64 rows][64 k] (128 bytes, pitch 144,
// odd again), metadata [4 n16 tiles][2 k32 slices][16 words] (512 bytes). 14848 bytes a stage.
// Edges: W and its metadata are padded on upload (no edge); X's chunks past M or K are copied
// with src-size 0 (zeros), so only zeros meet the padding; the epilogue writes only m < M, n < N.
// Split-K across blocks (split_k.cuh) when the (N, M) tiles alone leave SMs idle: small M on a
// narrow N.
// The decode tile (Sparse24DecodeTile, M <= 16 unless the caller picks): 64 (N) x 16 (M), the 4
// warps along N, each 16 x 16 = 1 m16 (N) x 2 n8 (M) mma.sp tiles (per k32 slice 1 ldmatrix.x4 of
// W, 2 of X, 1 metadata word, 2 mma.sp; 8 accumulators per thread), 5 stages of 7936 bytes. At
// decode the block streams W from memory and X is tiny: the 64-row tile spent 9216 of every
// stage's 14848 bytes, and half its warps, on rows of X past M; the decode tile spends that
// shared memory on 2 more K-steps in flight. At M <= 8 its second n8 tile (rows 8-15, past M)
// is skipped (no ldmatrix, no mma.sp): one n8 tile per warp.
// Still to come on a GPU: timing both tiles (the GPU check times the 64-row tile at M = 1 and 16
// beside the automatic choice), and Hopper's wgmma.sp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/kernel.h"
#include "cuda/ptx/cp_async.h"
#include "cuda/ptx/ldmatrix.h"
#include "cuda/ptx/mma_sp.h"
#include "cuda/lora_epilogue.h"
#include "cuda/split_k.cuh"
#include "cuda/store_output.h"

namespace cg {
namespace gemm {

// The block tile: kBlockM_ rows of X (and Y) by 64 rows of W (columns of Y), warps laid out
// kWarpsN_ (along N) x kWarpsM_ (along M), kStages_ shared-memory stages.
template <int kBlockM_, int kWarpsN_, int kWarpsM_, int kStages_>
struct Sparse24TileConfig {
  static constexpr int kBlockN = 64;  // rows of W (columns of Y) per block
  static constexpr int kBlockM = kBlockM_;  // rows of X (and Y) per block
  static constexpr int kBlockK = 64;  // logical K per pipeline stage (two k32 slices)
  static constexpr int kWarpsN = kWarpsN_;
  static constexpr int kWarpsM = kWarpsM_;
  static constexpr int kStages = kStages_;
  // The decode tile (one warp row of 2 n8 tiles) skips its second n8 tile at M <= 8.
  static constexpr bool kSkipsPastM = kBlockM_ == 16 && kWarpsM_ == 1;

  static constexpr int kWarps = kWarpsN * kWarpsM;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kWarpN = kBlockN / kWarpsN;  // general 32, decode 16
  static constexpr int kWarpM = kBlockM / kWarpsM;  // general 32, decode 16
  static constexpr int kMmaN = kWarpN / 16;         // m16 tiles (along N) per warp: 2, 1
  static constexpr int kMmaM = kWarpM / 8;          // n8 tiles (along M) per warp: 4, 2
  static constexpr int kSlicesK = kBlockK / 32;     // k32 slices per stage: 2

  static constexpr int kWRowBytes = kBlockK / 2 * 2;             // 64: 32 stored 16-bit values
  static constexpr int kWPitch = kWRowBytes + 16;                // 80
  static constexpr int kXRowBytes = kBlockK * 2;                 // 128
  static constexpr int kXPitch = kXRowBytes + 16;                // 144
  static constexpr int kTileWBytes = kBlockN * kWPitch;          // 5120
  static constexpr int kTileXBytes = kBlockM * kXPitch;          // 9216, 2304
  static constexpr int kMetaWords = (kBlockN / 16) * kSlicesK * 16;  // 128
  static constexpr int kTileMetaBytes = kMetaWords * 4;          // 512
  static constexpr int kStageBytes = kTileWBytes + kTileXBytes + kTileMetaBytes;  // 14848, 7936
  static constexpr int kSmemBytes = kStages * kStageBytes;       // 44544, 39680

  static constexpr int kChunksW = kBlockN * kWRowBytes / 16;     // 256
  static constexpr int kChunksX = kBlockM * kXRowBytes / 16;     // 512, 128
  static constexpr int kChunksMeta = kTileMetaBytes / 16;        // 32
};

// The general tile (M > 16): 64 x 64, 2 x 2 warps of 32 x 32, 3 stages (14848 bytes each).
using Sparse24Tile = Sparse24TileConfig<64, 2, 2, 3>;
// The decode tile (M <= 16): 16 rows of X, 4 warps along N of 16 (N) x 16 (M) each, 5 stages
// (7936 bytes each: X is a quarter of the general tile's), so 4 K-steps are in flight instead of
// 2 while the block streams W; no warp multiplies only rows past M (the general tile's 2 x 2
// warps leave half of them idle at M <= 32).
using Sparse24DecodeTile = Sparse24TileConfig<16, 4, 1, 5>;

template <class T>
constexpr bool sparse24_tile_ok() {
  static_assert((T::kWPitch / 16) % 2 == 1 && (T::kXPitch / 16) % 2 == 1,
                "an odd pitch in 16-byte units spreads 8 consecutive rows over the 8 bank groups");
  static_assert(T::kChunksW % T::kThreads == 0 && T::kChunksX % T::kThreads == 0,
                "every thread copies the same number of value and activation chunks");
  static_assert(T::kChunksMeta <= T::kThreads, "one metadata chunk per thread at most");
  static_assert(T::kSmemBytes <= 48 * 1024, "no opt-in to more than 48 KiB of dynamic shared memory");
  static_assert(T::kBlockN % 16 == 0 && T::kBlockK % 32 == 0 && T::kWarpN % 16 == 0 && T::kWarpM % 8 == 0, "whole mma.sp tiles");
  static_assert(!T::kSkipsPastM || T::kMmaM == 2, "the skip tests the second of two n8 tiles");
  return true;
}
static_assert(sparse24_tile_ok<Sparse24Tile>() && sparse24_tile_ok<Sparse24DecodeTile>(), "both tiles are valid");

// Metadata words of one 16-row x 32-column tile of W (the device layout above).
constexpr int kSparse24MetaWordsPerTile = 16;

template <bool kBf16>
__device__ __forceinline__ void mma_sp(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[4], uint32_t e) {
  if constexpr (kBf16) {
    ::cg::ptx::mma_sp_m16n8k32_bf16f32<0>(acc, a, b, acc, e);
  } else {
    ::cg::ptx::mma_sp_m16n8k32_f16f32<0>(acc, a, b, acc, e);
  }
}

// T: the tile (Sparse24Tile or Sparse24DecodeTile). Grid: (Np / 64, ceil(M / T::kBlockM), splits);
// block: T::kThreads (128) threads; dynamic shared memory T::kSmemBytes.
// kp: the padded K of W (a multiple of 64); K: X's row length (<= kp, a multiple of 8).
// Split-K (split_k.cuh): block z multiplies the K-steps [z steps_per_split, (z + 1)
// steps_per_split) only; with partial (splits > 1) it writes its float32 sum to partial[z][m][n]
// (no bias, no LoRA term, no rounding) and split_k_reduce_kernel finishes; without, it stores Y.
template <class T, bool kBf16, DType kOut>
__global__ void sparse24_gemm_kernel(const uint16_t* x, const uint16_t* values, const uint32_t* meta, const float* bias,
                                     void* out, int M, int N, int K, int kp, LoraEpilogue lora, int steps_per_split, float* partial) {
  uint8_t* const smem = ::cg::dynamic_smem();
  const int tid = int(threadIdx.x);
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int warp_n = warp / T::kWarpsM;  // this warp's rows of W: warp_n * 32 .. +31 of the block tile
  const int warp_m = warp % T::kWarpsM;  // this warp's rows of X: warp_m * 32 .. +31
  const int block_n0 = int(blockIdx.x) * T::kBlockN;
  const int block_m0 = int(blockIdx.y) * T::kBlockM;
  const int k_steps_all = kp / T::kBlockK;
  // This block's K-steps: [ks0, k_steps) (the whole K without split-K).
  const int ks0 = int(blockIdx.z) * steps_per_split;
  const int k_steps = ks0 + steps_per_split < k_steps_all ? ks0 + steps_per_split : k_steps_all;
  const size_t values_row = size_t(kp / 2);                  // stored values per row of W
  const size_t meta_tiles_k = size_t(kp / 32);               // k32 tiles per 16-row band

  // Step: fetch_to_shared. K-step ks of W's values (chunk i: row i / 4, 16 bytes i % 4), of X
  // (row i / 8, 16 bytes i % 8; zeros past M or K) and the metadata of the block's 4 bands
  // (thread i < 32: band i / 8, 16 bytes i % 8 of its two k32 tiles, contiguous in `meta`).
  auto fetch_to_shared = [&](int stage, int ks) {
    if (ks >= k_steps) return;
    uint8_t* const sw = smem + stage * T::kStageBytes;
    uint8_t* const sx = sw + T::kTileWBytes;
    uint8_t* const sm = sx + T::kTileXBytes;
    const int k0 = ks * T::kBlockK;
    for (int j = 0; j < T::kChunksW / T::kThreads; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / 4, chunk = i % 4;
      const uint16_t* src = values + size_t(block_n0 + row) * values_row + size_t(k0 / 2 + chunk * 8);
      ::cg::ptx::cp_async<16>(sw + row * T::kWPitch + chunk * 16, src, 16);
    }
    for (int j = 0; j < T::kChunksX / T::kThreads; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / 8, chunk = i % 8;
      const int m = block_m0 + row, k = k0 + chunk * 8;
      const bool inside = m < M && k < K;
      const uint16_t* src = inside ? x + size_t(m) * size_t(K) + size_t(k) : x;
      ::cg::ptx::cp_async<16>(sx + row * T::kXPitch + chunk * 16, src, inside ? 16 : 0);
    }
    if (tid < T::kChunksMeta) {
      const int band = tid / 8, chunk = tid % 8;
      const uint32_t* src = meta + ((size_t(block_n0 / 16 + band) * meta_tiles_k + size_t(k0 / 32)) * kSparse24MetaWordsPerTile) + chunk * 4;
      ::cg::ptx::cp_async<16>(sm + band * 128 + chunk * 16, src, 16);
    }
  };

  float acc[T::kMmaN][T::kMmaM][4];
  for (int nt = 0; nt < T::kMmaN; ++nt)
    for (int mt = 0; mt < T::kMmaM; ++mt)
      for (int r = 0; r < 4; ++r) acc[nt][mt][r] = 0.f;

  // Step: matmul. The warp's 32 x 32 tile of Yᵀ over one stage: per k32 slice, the A fragments of
  // its two 16-row bands of W and their metadata words, the B fragments of its four 8-row groups
  // of X, then 8 mma.sp.
  auto matmul = [&](int stage) {
    const uint8_t* const sw = smem + stage * T::kStageBytes;
    const uint8_t* const sx = sw + T::kTileWBytes;
    const uint32_t* const sm = reinterpret_cast<const uint32_t*>(sx + T::kTileXBytes);
    const int g = lane / 4, t = lane % 4;
    for (int kk = 0; kk < T::kSlicesK; ++kk) {
      uint32_t a[T::kMmaN][4], e[T::kMmaN], b[T::kMmaM][4];
      for (int nt = 0; nt < T::kMmaN; ++nt) {
        const int row = warp_n * T::kWarpN + nt * 16 + lane % 16;
        const int col = kk * 16 + (lane / 16) * 8;  // stored values
        ::cg::ptx::ldmatrix_x4(a[nt], sw + row * T::kWPitch + col * 2);
        const int band = warp_n * T::kMmaN + nt;
        e[nt] = t < 2 ? sm[(band * T::kSlicesK + kk) * kSparse24MetaWordsPerTile + 2 * g + t] : 0u;
      }
      // The decode tile skips (warp-uniformly) its second n8 tile when it lies wholly past M (M <= 8:
      // only zero rows of X): its accumulators stay 0 and the epilogue never stores them. (The
      // general tile does not test: the tests cost it 32 registers on sm_89/90a, and M > 16 there.)
      const bool second_live = !T::kSkipsPastM || block_m0 + 8 < M;
      for (int mt = 0; mt < T::kMmaM; ++mt) {
        if (T::kSkipsPastM && mt == 1 && !second_live) break;
        const int row = warp_m * T::kWarpM + mt * 8 + lane % 8;
        const int col = kk * 32 + (lane / 8) * 8;
        ::cg::ptx::ldmatrix_x4(b[mt], sx + row * T::kXPitch + col * 2);
      }
      for (int nt = 0; nt < T::kMmaN; ++nt)
        for (int mt = 0; mt < T::kMmaM; ++mt)
          if (!T::kSkipsPastM || mt == 0 || second_live) mma_sp<kBf16>(acc[nt][mt], a[nt], b[mt], e[nt]);
    }
  };

  for (int s = 0; s < T::kStages - 1; ++s) {
    fetch_to_shared(s, ks0 + s);
    ::cg::ptx::cp_async_commit();
  }
  for (int i = 0; i < k_steps - ks0; ++i) {
    ::cg::ptx::cp_async_wait<T::kStages - 2>();
    __syncthreads();
    fetch_to_shared((i + T::kStages - 1) % T::kStages, ks0 + i + T::kStages - 1);
    ::cg::ptx::cp_async_commit();
    matmul(i % T::kStages);
  }
  ::cg::ptx::cp_async_wait<0>();  // only empty groups remain; no copy outlives the block

  // Step: write_result. acc[nt][mt][r] is Yᵀ(n, m) with n = band row g (+8 for r >= 2) and
  // m = 2t (+1 for odd r): Y[m][n], only where m < M and n < N (split-K: this slice's partial).
  const int g = lane / 4, t = lane % 4;
  float* const slice = partial ? partial + size_t(blockIdx.z) * size_t(M) * size_t(N) : nullptr;
  CG_UNROLL for (int nt = 0; nt < T::kMmaN; ++nt) {
    CG_UNROLL for (int mt = 0; mt < T::kMmaM; ++mt) {
      CG_UNROLL for (int r = 0; r < 4; ++r) {
        const int n = block_n0 + warp_n * T::kWarpN + nt * 16 + g + 8 * (r / 2);
        const int m = block_m0 + warp_m * T::kWarpM + mt * 8 + 2 * t + r % 2;
        if (m >= M || n >= N) continue;
        if (slice)
          slice[size_t(m) * size_t(N) + size_t(n)] = acc[nt][mt][r];
        else
          store_output<kOut>(out, size_t(m) * size_t(N) + size_t(n), acc[nt][mt][r] + (bias ? bias[n] : 0.f) + lora_term(lora, m, n, M, N));
      }
    }
  }
}

// ---- The host launcher --------------------------------------------------------------------------------

#if defined(__CUDACC__)
using Sparse24Stream = cudaStream_t;
using Sparse24LaunchStatus = cudaError_t;
#else
using Sparse24Stream = void*;
using Sparse24LaunchStatus = ::cg::sim::LaunchResult;
#endif

struct Sparse24GemmArgs {
  int M = 0, N = 0, K = 0;  // K: X's row length
  int np = 0, kp = 0;       // W's padded shape (multiples of 64), N <= np, K <= kp
  DType dtype = DType::F16;  // X's and W's: F16 or BF16
  DType out_dtype = DType::F32;
  const uint16_t* x = nullptr;
  const uint16_t* values = nullptr;  // [np, kp/2]
  const uint32_t* meta = nullptr;    // [np/16][kp/32][16]
  const float* bias = nullptr;
  void* out = nullptr;
  LoraEpilogue lora;  // the fused LoRA term (lora_epilogue.h); lora.t null: none
  int block_m = 0;          // the tile's rows of X: 16 (Sparse24DecodeTile) or 64 (Sparse24Tile); 0: sparse24_block_m's choice
  int splits = 1;           // split-K slices, as sparse24_effective_splits gives them
  float* partial = nullptr;  // splits > 1: float32 [splits, M, N] (device), not overlapping the rest
};

// The tile's rows of X for a call: `requested` (16 or 64) when given (not 0), else the decode
// tile up to M = 16 and the general one above.
inline int sparse24_block_m(int64_t M, int requested) {
  return pick_block_m(M, requested, Sparse24DecodeTile::kBlockM, Sparse24Tile::kBlockM);
}

// The K slices the launcher uses when the caller does not choose (split_k.cuh's auto_splits over
// the (N, M) tiles of `block_m` rows and 64-column K-steps, each slice at least 4 steps). Then as
// sparse24_effective_splits.
inline int sparse24_auto_splits(int64_t M, int64_t np, int64_t kp, int block_m, int multiprocessors) {
  return auto_splits((np / Sparse24Tile::kBlockN) * ((M + block_m - 1) / block_m), kp / Sparse24Tile::kBlockK, 4, multiprocessors);
}

// The slices a request of `splits` gives (split_k.cuh's effective_splits over the K-steps).
inline int sparse24_effective_splits(int64_t kp, int splits) { return effective_splits(kp / Sparse24Tile::kBlockK, splits); }

// A configuration the kernel does not run, as a message ("" when it runs).
inline const char* validate_sparse24_gemm(const Sparse24GemmArgs& a) {
  if (a.M < 1 || a.N < 1 || a.K < 1) return "2:4 GEMM: M, N and K must be at least 1";
  if (a.block_m != 0 && a.block_m != Sparse24Tile::kBlockM && a.block_m != Sparse24DecodeTile::kBlockM)
    return "2:4 GEMM: the tile's rows of X (block_m) must be 0 (by M), 16 or 64";
  const int64_t block_m = sparse24_block_m(a.M, a.block_m);
  if ((int64_t(a.M) + block_m - 1) / block_m > 65535) return "2:4 GEMM: M above the grid's reach (65535 tiles of block_m rows)";
  if (a.K % 8 != 0) return "2:4 GEMM: K must be a multiple of 8 (rows of X are copied as 16-byte chunks of 8 values)";
  if (a.np % Sparse24Tile::kBlockN != 0 || a.kp % Sparse24Tile::kBlockK != 0 || a.N > a.np || a.K > a.kp)
    return "2:4 GEMM: the weight's padded shape must be multiples of 64 covering N and K";
  if (a.dtype != DType::F16 && a.dtype != DType::BF16) return "2:4 GEMM: X and W must be float16 or bfloat16 (sparse tensor cores)";
  if (!a.x || !a.values || !a.meta || !a.out) return "2:4 GEMM: X, W and Y must not be null";
  if (a.splits < 1 || a.splits > kMaxSplits || sparse24_effective_splits(a.kp, a.splits) != a.splits || (a.splits > 1 && !a.partial))
    return "2:4 GEMM: splits must be 1..8, no more than the K slices sparse24_effective_splits gives, with a float32 [splits, M, N] partial buffer when above 1";
  const auto addr = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  if (addr(a.x) % 16 || addr(a.values) % 16 || addr(a.meta) % 16 || addr(a.bias) % 4 || addr(a.out) % size_t(dtype_size(a.out_dtype)))
    return "2:4 GEMM: X, W and its metadata must be 16-byte aligned, bias and Y aligned to their element size";
  return "";
}

template <class T, bool kBf16, DType kOut>
inline Sparse24LaunchStatus launch_sparse24_config(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  LaunchDim grid, block;
  grid.x = unsigned(a.np / T::kBlockN);
  grid.y = unsigned((a.M + T::kBlockM - 1) / T::kBlockM);
  grid.z = unsigned(a.splits);
  block.x = unsigned(T::kThreads);
  block.y = 1;
  block.z = 1;
  const int k_steps = a.kp / T::kBlockK;
  const int steps_per_split = (k_steps + a.splits - 1) / a.splits;
  float* const partial = a.splits > 1 ? a.partial : nullptr;
  auto* const sparse24_gemm = &sparse24_gemm_kernel<T, kBf16, kOut>;
  const Sparse24LaunchStatus s = CG_LAUNCH_STATUS(sparse24_gemm, grid, block, T::kSmemBytes, stream, a.x, a.values, a.meta, a.bias,
                                                  a.out, a.M, a.N, a.K, a.kp, a.lora, steps_per_split, partial);
#if defined(__CUDACC__)
  if (!partial || s != cudaSuccess) return s;
#else
  if (!partial || !s.ok) return s;
#endif
  auto* const reduce = &split_k_reduce_kernel<kOut>;
  const int64_t mn = int64_t(a.M) * int64_t(a.N);
  return CG_LAUNCH_STATUS(reduce, dim_x(unsigned((mn + 255) / 256)), dim_x(256), 0, stream, a.partial, a.splits, a.bias, a.out, a.M, a.N, a.lora);
}

template <class T, bool kBf16>
inline Sparse24LaunchStatus launch_sparse24_input(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  switch (a.out_dtype) {
    case DType::F32: return launch_sparse24_config<T, kBf16, DType::F32>(a, stream);
    case DType::F16: return launch_sparse24_config<T, kBf16, DType::F16>(a, stream);
    default: return launch_sparse24_config<T, kBf16, DType::BF16>(a, stream);
  }
}

template <class T>
inline Sparse24LaunchStatus launch_sparse24_tile(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  return a.dtype == DType::BF16 ? launch_sparse24_input<T, true>(a, stream) : launch_sparse24_input<T, false>(a, stream);
}

// Launches on `stream` (validate_sparse24_gemm first: the caller's job).
inline Sparse24LaunchStatus launch_sparse24_gemm(const Sparse24GemmArgs& a, Sparse24Stream stream) {
  return sparse24_block_m(a.M, a.block_m) == Sparse24DecodeTile::kBlockM ? launch_sparse24_tile<Sparse24DecodeTile>(a, stream) : launch_sparse24_tile<Sparse24Tile>(a, stream);
}

}  // namespace gemm
}  // namespace cg
