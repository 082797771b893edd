// The INT4 weight GEMM (W4A16, Marlin-style) on tensor cores: Y = X·dequant(W)ᵀ (+ bias).
//
//   X     [M, K] row-major, float16 or bfloat16 (16-bit bits in uint16_t), 16-byte aligned
//   W     [N, K] INT4 in the device layout of gemm_int4_layout.h (one allocation: codes in
//         Marlin's order, scales float32 [G][Np], zero points uint8 [G][Np] or none (symmetric:
//         zero 8), and for GPTQ act-order the column permutation perm [K])
//         w[n][k] = (q[n][k] - z[n][k / group]) * s[n][k / group]   (placement columns)
//   bias  [N] float32, optional
//   Y     [M, N] row-major, float32, float16 or bfloat16 (rounded to nearest even once)
// Any M >= 1, N >= 1; K >= 8 and a multiple of 8 (the INT4 format's rule, and X's rows are copied
// as 16-byte chunks); group a multiple of 16 (32, 64, 128) or one group per row (group = K).
// Act-order: permute_x_kernel first gathers X's columns into a scratch buffer, xp[m][c] =
// x[m][perm[c]], on the same stream; the GEMM then reads xp (the weight was permuted the same
// way on upload, so each group is a contiguous run of columns).
//
// One source, two executors (kernel.h): nvcc compiles this file (gemm_int4.cu); the host compiler
// compiles it over the simulated device (binding/gemm_int4_exports.h via cuda_sim/gemm.cc).
//
// ---- The design, and why ----------------------------------------------------------------------------
// Small M is the case that matters (decode: M = 1..16) and it is memory-bound: the weight is read
// once and X is tiny. So the block tile is one m16 row of mma tiles by 64 columns (one column
// group of Marlin's layout), and the block's 4 warps split K instead of N: a stage holds 4 k16
// tiles and warp w multiplies tile w of every stage, all 8 n8 tiles of the 64 columns. At the end
// the 4 warps' float32 partial sums are added in shared memory (warp 0, 1, 2, 3 in that order).
//   Why: N = 8192 gives 128 blocks of 64 columns (about one per SM of an H100/H200) with no split
//   across blocks; each warp streams 512 contiguous bytes of codes per k16 tile; 32 float32
//   accumulators per thread.
// M > 16: the wide tile (Int4WideTile): 64 rows of X, each warp 4 m16 tiles, so every FragB it
//   dequantizes feeds 4 mma (Marlin's thread_m_blocks = 4) and each block row reads and decodes
//   the weight once per 64 rows of X instead of per 16; m16 tiles wholly past M are skipped
//   (warp-uniformly). 128 float32 accumulators per thread. The 4 warps' partial tiles are added
//   one warp after the other into one [64][64] float32 tile in shared memory (16 KiB: the 4
//   tiles at once would need 64 KiB), in warp order as before. Larger M tiles (Marlin's up to
//   256 rows with 8 warps) are the next configuration.
// What to tune on a GPU (measured once, on an H200: 31 µs for 4096 x 4096 at M = 1, ~270 GB/s of
// weight, latency-bound; README, Performance, "On a GPU"):
//   split-K across blocks when Np / 64 blocks cannot fill the GPU (small N), 128 columns per block
//   for more X reuse, stages (kStages), evict-first loads of the codes (read once; the hint faulted
//   in the decode tile, see fetch_to_shared), scales staged
//   in shared memory instead of read per k16 tile through L1, and Marlin's 1/16 fma trick, which
//   saves the shifts of the f16 dequantization.
// Pipeline: kStages = 4 shared-memory stages filled by cp.async (X tile and code tile of one
//   K-step each; one commit group per K-step, empty groups past the end, wait_group kStages-2 and
//   one __syncthreads per K-step: the dense kernel's scheme, gemm_dense.cuh).
// Shared memory per stage: X [16 rows][64 k] with rows padded to 144 bytes (9 16-byte units:
//   odd, so the 8 rows of an ldmatrix phase fall in 8 distinct bank groups, the dense kernel's
//   bank model), then the codes of 4 k16 tiles x 512 bytes (each warp reads its own 512 bytes as
//   one 16-byte load per lane: consecutive lanes, consecutive 16 bytes). 4 stages: 17408 bytes;
//   the final reduction reuses them (4 warps x 16 x 64 float32 = 16384 bytes).
// Edges: X rows past M and columns past K are cp.async zero-fills (src-size 0); code tiles past
//   Kp / 16 are zero-filled too and never multiplied (the warp skips them, warp-uniformly); columns
//   past N are zero codes with scale 0 in the layout and never stored.
//
// ---- Dequantization in registers (PTX.md "INT4 -> fp16 / bf16"; Marlin's dequant()) ------------
// A code q (0..15) in bits 0-3 of a 16-bit half, OR-ed into the exponent pattern of 1024.0 (f16
// 0x6400, ulp 1 from 1024 to 2048) or 128.0 (bf16 0x4300, ulp 1 from 128 to 256), is the 16-bit
// value 1024 + q or 128 + q: lop3<0xEA>(word >> shift, 0x000f000f, 0x64006400 | 0x43004300) does
// it for both halves at once ((a & b) | c). One fma.rn.{f16,bf16}x2 with 1.0 and -(1024 + z) (or
// -(128 + z)) then gives q - z, exactly (an integer in -16..15, exact in both types). The zero
// point z (0..16; 8 when symmetric) is per group and per B column, so the lane builds its
// subtrahend 0x8000 | magic | z per n8 tile and group.
//   The scale is NOT applied in 16 bits: each k16 tile's mma runs on the exact q - z into a fresh
//   float32 partial p (every product x·(q - z) is exact in float32), and p is scaled into the
//   accumulator with one float32 fma per element: acc = fma(s, p, acc). So nothing is rounded to
//   16 bits (Marlin's 16-bit s·(q - z) rounds each weight once, 2^-11 or 2^-8 relative, and
//   overflows float16 for scales above 4096), float32 scales keep their precision, and the error
//   is float32 accumulation alone: per term at most 16 additions inside the mma, one fma per k16
//   tile of its warp (ceil(Kp / 64)), 3 additions across warps, splits - 1 across split-K slices
//   and 1 of the bias, each a rounding to nearest (test/cuda-sim/gemm-int4.test.ts derives its
//   bound from this). The cost: 4 FFMA
//   per n8 tile per k16 tile, against Marlin's 2 HMUL2, and 4 more registers.
//
// ---- Fragments (PTX ISA §9.7.14.5.8, §9.7.14.5.15; ptx/mma.h, ptx/ldmatrix.h) --------------------
// g = lane / 4, t = lane % 4. The warp's tile is m16 x n64 = 8 n8 tiles.
// FragA (4 x b32): the m16 x k16 slice of X, one ldmatrix.x4 (lane L -> row L % 16, column
//   8 (L / 16) of the slice), as in gemm_dense.cuh.
// FragB (2 x b32): b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g] of one n8 tile: dequantized from
//   the lane's 16-byte code load (gemm_int4_layout.h): word j >> {0, 4} -> tile 2j, >> {8, 12} ->
//   tile 2j+1; B column g of tile nt is weight column n0 + 8 nt + g (its zero point).
// FragC (4 x f32): (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1): output columns n0 + 8 nt + 2t and
//   +1 (their scales).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/gemm_dense.cuh"
#include "cuda/gemm_int4_layout.h"
#include "cuda/kernel.h"
#include "cuda/ptx/bits.h"
#include "cuda/ptx/cp_async.h"
#include "cuda/ptx/fma16x2.h"
#include "cuda/ptx/ldmatrix.h"
#include "cuda/ptx/mma.h"
#include "cuda/lora_epilogue.h"
#include "cuda/split_k.cuh"
#include "cuda/store_output.h"

#if !defined(__CUDACC__)
#include <cmath>
#endif

namespace cg {
namespace gemm {

// ---- The configuration ----------------------------------------------------------------------------
// The block tile: kMmaM_ m16 tiles of X (16 or 64 rows) by 64 columns, the 4 warps splitting K,
// kStages_ shared-memory stages.
template <int kMmaM_, int kStages_>
struct Int4TileConfig {
  static constexpr int kMmaM = kMmaM_;          // m16 tiles per warp (every warp covers the block's rows)
  static constexpr int kBlockM = 16 * kMmaM;    // rows of X per block: 16 or 64
  static constexpr int kBlockN = 64;  // columns of Y per block: one column group of the layout
  static constexpr int kWarps = 4;    // split K: warp w multiplies k16 tile w of each stage
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kBlockK = 16 * kWarps;  // K per stage: 64
  static constexpr int kStages = kStages_;
  static constexpr int kMmaN = kBlockN / 8;  // n8 tiles per warp: 8

  static constexpr int kXChunksPerRow = kBlockK * 2 / 16;     // 16-byte chunks of an X row: 8
  static constexpr int kXChunksPerThread = kBlockM * kXChunksPerRow / kThreads;  // 1, 4
  static constexpr int kXPitchBytes = kBlockK * 2 + 16;       // 144 (the bank model above)
  static constexpr int kTileXBytes = kBlockM * kXPitchBytes;  // 2304, 9216
  static constexpr int kCodeTileBytes = 512;                  // one k16 tile x 64 columns of codes
  static constexpr int kTileWBytes = kWarps * kCodeTileBytes; // 2048
  static constexpr int kStageBytes = kTileXBytes + kTileWBytes;  // 4352, 11264
  static constexpr int kReduceBytes = kBlockM * kBlockN * 4;  // 4096, 16384: one [kBlockM][64] float32 sum
  static constexpr int kSmemBytes = kStages * kStageBytes > kReduceBytes ? kStages * kStageBytes : kReduceBytes;
};

// The decode tile (M <= 16): one m16 tile, 4 stages (17408 bytes).
using Int4Tile = Int4TileConfig<1, 4>;
// The wide tile (M > 16): 4 m16 tiles, so each dequantized FragB feeds 4 mma (Marlin's
// thread_m_blocks = 4) and the weight is read and decoded once per 64 rows of X, not per 16;
// 4 stages (45056 bytes). 128 float32 accumulators per thread.
using Int4WideTile = Int4TileConfig<4, 4>;

template <class T>
constexpr bool int4_tile_ok() {
  static_assert(T::kBlockM * T::kXChunksPerRow % T::kThreads == 0, "every thread copies the same number of X chunks per stage");
  static_assert(T::kTileWBytes / 16 == T::kThreads, "one code chunk per thread per stage");
  static_assert((T::kXPitchBytes / 16) % 2 == 1, "an odd pitch in 16-byte units spreads 8 rows over 8 bank groups");
  static_assert(T::kCodeTileBytes == 32 * 16, "a code tile is one 16-byte load per lane");
  static_assert(T::kSmemBytes <= 48 * 1024, "no opt-in to more than 48 KiB of dynamic shared memory");
  static_assert(T::kBlockM * T::kBlockN % T::kThreads == 0, "the epilogue gives each thread the same count");
  return true;
}
static_assert(int4_tile_ok<Int4Tile>() && int4_tile_ok<Int4WideTile>(), "both tiles are valid");

// ---- Small device helpers ---------------------------------------------------------------------------

// The 16-bit pattern of the magic number: 1024.0 (f16) or 128.0 (bf16), whose ulp is 1.
template <bool kBf16>
__device__ __forceinline__ constexpr uint32_t int4_magic() { return kBf16 ? 0x4300u : 0x6400u; }

// Both halves of `bits` (a code in bits 0-3 and 16-19, after the caller's shift) minus the zero
// point: lop3 makes magic + q, the fma subtracts magic + z (negz2 = that, negated, in both halves).
template <bool kBf16>
__device__ __forceinline__ uint32_t dequant_pair(uint32_t bits, uint32_t negz2) {
  constexpr uint32_t kMagic2 = int4_magic<kBf16>() * 0x10001u;
  constexpr uint32_t kOne2 = kBf16 ? 0x3F803F80u : 0x3C003C00u;
  const uint32_t biased = ::cg::ptx::lop3<0xEA>(bits, 0x000F000Fu, kMagic2);  // (a & b) | c
  return ::cg::ptx::fma_rn_16x2<kBf16>(biased, kOne2, negz2);
}

// ---- The kernels -------------------------------------------------------------------------------------

// Act-order: xp[m][c] = x[m][perm[c]] (E: the 16-bit values' storage). Grid (M), block 128: row m,
// strided columns. (A template, as every kernel in a header: one definition however many
// translation units include it.)
template <typename E>
__global__ void permute_x_kernel(const E* x, const int32_t* perm, E* xp, int M, int K) {
  const int m = int(blockIdx.x);
  if (m >= M) return;
  const size_t row = size_t(m) * size_t(K);
  for (int c = int(threadIdx.x); c < K; c += int(blockDim.x)) {
    // perm comes from the upload (a permutation of 0..K-1); an index out of range, which only
    // device memory written some other way could hold, reads column 0 instead of past the row.
    const uint32_t src = uint32_t(perm[c]) < uint32_t(K) ? uint32_t(perm[c]) : 0u;
    xp[row + size_t(c)] = x[row + src];
  }
}

// kBf16: X is bfloat16 (else float16); the dequantization and the mma follow.
// kOut:  Y's element type.
// Grid: (Np / 64, ceil(M / 16), splits); block 128 threads; dynamic shared memory kSmemBytes.
//   codes: the layout's packed part; row_bytes = its bytes per k16 tile (Np / 64 * 512)
//   scales: float32 [G][Np]; zeros: uint8 [G][Np] or null (symmetric: 8); G = K / group
//   Split-K: block z multiplies the k16 tiles [z tiles_per_split, (z + 1) tiles_per_split) only;
//   with partial (splits > 1) it writes its float32 sum to partial[z][m][n] (no bias, no LoRA
//   term, no rounding), and split_k_reduce_kernel (split_k.cuh) finishes; without, it stores Y itself.
template <class T, bool kBf16, DType kOut>
__global__ void int4_gemm_kernel(const uint16_t* x, const uint8_t* codes, const float* scales, const uint8_t* zeros,
                                 const float* bias, void* out, int M, int N, int K, int Np, int group, int G,
                                 LoraEpilogue lora, int tiles_per_split, float* partial) {
  uint8_t* const smem = ::cg::dynamic_smem();
  const int tid = int(threadIdx.x);
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int block_m0 = int(blockIdx.y) * T::kBlockM;
  const int col_group = int(blockIdx.x);
  const int n0 = col_group * T::kBlockN;
  const int k_tiles_all = (K + 15) / 16;  // Kp / 16
  // This block's k16 tiles: [tile0, k_tiles) (the whole K without split-K).
  const int tile0 = int(blockIdx.z) * tiles_per_split;
  const int k_tiles = tile0 + tiles_per_split < k_tiles_all ? tile0 + tiles_per_split : k_tiles_all;
  const int k_steps = (k_tiles - tile0 + T::kWarps - 1) / T::kWarps;
  const size_t row_bytes = size_t(Np / 64) * T::kCodeTileBytes;

  // Step: fetch_to_shared. Thread tid copies X chunks tid, tid + 128, .. (chunk i: row i / 8, 8
  // values at column 8 (i % 8) of the K-step) and code chunk tid (k16 tile tid / 32 of the
  // K-step, lane tid % 32's 16 bytes). Past M, K or Kp: src-size 0 from the matrix's base
  // (aligned; nothing is read).
  auto fetch_to_shared = [&](int stage, int ks) {
    if (ks >= k_steps) return;
    uint8_t* const sx = smem + stage * T::kStageBytes;
    uint8_t* const sw = sx + T::kTileXBytes;
    for (int j = 0; j < T::kXChunksPerThread; ++j) {
      const int i = tid + j * T::kThreads;
      const int row = i / T::kXChunksPerRow, chunk = i % T::kXChunksPerRow;
      const int m = block_m0 + row, k = tile0 * 16 + ks * T::kBlockK + chunk * 8;
      const bool inside = m < M && k < K;
      const uint16_t* src = inside ? x + size_t(m) * size_t(K) + size_t(k) : x;
      ::cg::ptx::cp_async<16>(sx + row * T::kXPitchBytes + chunk * 16, src, inside ? 16 : 0);
    }
    {
      const int kk = tid / 32, l = tid % 32;
      const int r = tile0 + ks * T::kWarps + kk;
      const bool inside = r < k_tiles;
      const uint8_t* src = inside ? codes + size_t(r) * row_bytes + size_t(col_group) * T::kCodeTileBytes + size_t(l) * 16 : codes;
      // A plain cp.async, without the L2 evict-first hint (cp_async16_hinted) it had: on the H200
      // (CUDA 13.0's ptxas, sm_90a) the decode tile's copy compiled to an LDGSTS whose cache-policy
      // descriptor reads uniform registers nothing wrote, and every Int4Tile launch stopped with
      // cudaErrorIllegalInstruction (bench/results/gpu-h200-2026-12-04/diagnose/: isolate.txt and
      // sanitizer.txt); the wide tile's was fine. The hint changes no result; the simulator cannot
      // see this, scripts/gpu-check/isolate.js and the jest run of gpu-check.sh on a GPU can.
      ::cg::ptx::cp_async<16>(sw + kk * T::kCodeTileBytes + l * 16, src, inside ? 16 : 0);
    }
  };

  auto wait_for_stage = [&]() {
    ::cg::ptx::cp_async_wait<T::kStages - 2>();
    __syncthreads();
  };

  FragC acc[T::kMmaM][T::kMmaN];
  for (int mt = 0; mt < T::kMmaM; ++mt)
    for (int nt = 0; nt < T::kMmaN; ++nt)
      for (int r = 0; r < 4; ++r) acc[mt][nt][r] = 0.f;
  // The block's m16 tiles that hold rows below M (the others are only zero rows: skipped,
  // warp-uniformly, by the wide tile; the first always holds one).
  const int live_mt = (M - block_m0 + 15) / 16;

  // Step: matmul. Warp w's k16 tile of the stage (skipped, warp-uniformly, past Kp): FragA of each
  // m16 tile by ldmatrix, the lane's 16 bytes of codes, then per n8 tile: dequantize FragB once,
  // and per m16 tile an mma into a fresh partial, scaled into the accumulator.
  auto matmul = [&](int stage, int ks) {
    const int r = tile0 + ks * T::kWarps + warp;
    if (r >= k_tiles) return;
    const uint8_t* const sx = smem + stage * T::kStageBytes;
    const uint8_t* const sw = sx + T::kTileXBytes;
    FragA a[T::kMmaM];
    for (int mt = 0; mt < T::kMmaM; ++mt) {
      if (mt > 0 && mt >= live_mt) break;
      ::cg::ptx::ldmatrix_x4(a[mt], sx + (mt * 16 + lane % 16) * T::kXPitchBytes + (warp * 16 + (lane / 16) * 8) * 2);
    }
    uint32_t q[4];
    for (int j = 0; j < 4; ++j) q[j] = reinterpret_cast<const uint32_t*>(sw + warp * T::kCodeTileBytes + lane * 16)[j];
    // The group of this k16 tile (a tile never straddles groups: group % 16 == 0, or G == 1 and
    // the padding past K belongs to the last group).
    int gi = (r * 16) / group;
    if (gi > G - 1) gi = G - 1;
    const float* const s_row = scales + size_t(gi) * size_t(Np) + size_t(n0);
    const uint8_t* const z_row = zeros ? zeros + size_t(gi) * size_t(Np) + size_t(n0) : nullptr;
    for (int nt = 0; nt < T::kMmaN; ++nt) {
      const uint32_t z = z_row ? uint32_t(z_row[8 * nt + g]) : 8u;
      const uint32_t negz2 = (0x8000u | int4_magic<kBf16>() | z) * 0x10001u;
      const uint32_t word = q[nt / 2] >> (8 * (nt % 2));
      FragB b;
      b[0] = dequant_pair<kBf16>(word, negz2);
      b[1] = dequant_pair<kBf16>(word >> 4, negz2);
      const float s0 = s_row[8 * nt + 2 * t], s1 = s_row[8 * nt + 2 * t + 1];
      for (int mt = 0; mt < T::kMmaM; ++mt) {
        if (mt > 0 && mt >= live_mt) break;
        FragC part = {0.f, 0.f, 0.f, 0.f};
        mma<kBf16>(part, a[mt], b);
        acc[mt][nt][0] = fma_rn(s0, part[0], acc[mt][nt][0]);
        acc[mt][nt][1] = fma_rn(s1, part[1], acc[mt][nt][1]);
        acc[mt][nt][2] = fma_rn(s0, part[2], acc[mt][nt][2]);
        acc[mt][nt][3] = fma_rn(s1, part[3], acc[mt][nt][3]);
      }
    }
  };

  for (int s = 0; s < T::kStages - 1; ++s) {
    fetch_to_shared(s, s);
    ::cg::ptx::cp_async_commit();
  }
  for (int ks = 0; ks < k_steps; ++ks) {
    wait_for_stage();
    fetch_to_shared((ks + T::kStages - 1) % T::kStages, ks + T::kStages - 1);
    ::cg::ptx::cp_async_commit();
    matmul(ks % T::kStages, ks);
  }
  ::cg::ptx::cp_async_wait<0>();  // only empty groups remain
  __syncthreads();                // every warp is done with the stages the reduction overwrites

  // Step: write_result. The 4 warps' partial tiles are added into one [kBlockM][64] float32 tile
  // in shared memory, in warp order (warp 0 stores, then warps 1, 2, 3 add theirs in turn, a
  // barrier between: ((p0 + p1) + p2) + p3 for every element); then each thread takes outputs
  // (consecutive threads, consecutive columns), adds the bias and stores where m < M and n < N.
  float* const red = reinterpret_cast<float*>(smem);
  for (int w = 0; w < T::kWarps; ++w) {
    if (warp == w) {
      for (int mt = 0; mt < T::kMmaM; ++mt)
        for (int nt = 0; nt < T::kMmaN; ++nt)
          for (int r = 0; r < 4; ++r) {
            const int m = mt * 16 + g + 8 * (r / 2), n = 8 * nt + 2 * t + r % 2;
            float& cell = red[m * T::kBlockN + n];
            cell = w == 0 ? acc[mt][nt][r] : cell + acc[mt][nt][r];
          }
    }
    __syncthreads();
  }
  for (int i = tid; i < T::kBlockM * T::kBlockN; i += T::kThreads) {
    const int m = i / T::kBlockN, n = i % T::kBlockN;
    const int gm = block_m0 + m, gn = n0 + n;
    if (gm >= M || gn >= N) continue;
    float v = red[i];
    if (partial) {
      partial[(size_t(blockIdx.z) * size_t(M) + size_t(gm)) * size_t(N) + size_t(gn)] = v;
      continue;
    }
    if (bias) v += bias[gn];
    v += lora_term(lora, gm, gn, M, N);
    store_output<kOut>(out, size_t(gm) * size_t(N) + size_t(gn), v);
  }
}

// ---- The host launcher ------------------------------------------------------------------------------

enum class Int4GemmError : int {
  kNone = 0,
  kBadShape,         // M, N or K below 1, K % 8 != 0, or M beyond the grid's reach
  kGroup,            // group does not divide K, or is not a multiple of 16 with more than one group
  kDtype,            // X not float16/bfloat16
  kMisaligned,       // X, the weight or the scratch not 16-byte aligned; bias, Y not aligned to their element
  kNullPointer,      // X, the weight or Y missing; act-order without a scratch buffer
  kSplits,           // splits outside 1..kInt4MaxSplits, more splits than k16 tiles, or no partial buffer
  kTile,             // block_m not 0, 16 or 64
};

// Split-K (split_k.cuh): at most this many K slices per output tile.
constexpr int kInt4MaxSplits = kMaxSplits;

// The tile's rows of X for a call: `requested` (16 or 64) when given (not 0), else the decode tile
// (Int4Tile) up to M = 16 and the wide one (Int4WideTile) above.
inline int int4_block_m(int64_t M, int requested) { return pick_block_m(M, requested, Int4Tile::kBlockM, Int4WideTile::kBlockM); }

// The K slices the launcher uses when the caller does not choose (split_k.cuh's auto_splits over
// this kernel's 64-column tiles of `block_m` rows and k16 steps, each slice at least 16 k16 tiles:
// 4 steps of the pipeline). Then as int4_effective_splits.
inline int int4_auto_splits(int64_t M, int64_t N, int64_t K, int block_m, int multiprocessors) {
  return auto_splits(((N + 63) / 64) * ((M + block_m - 1) / block_m), (K + 15) / 16, 16, multiprocessors);
}

// The slices a request of `splits` gives (split_k.cuh's effective_splits over k16 tiles).
inline int int4_effective_splits(int64_t K, int splits) { return effective_splits((K + 15) / 16, splits); }

inline const char* int4_gemm_error_message(Int4GemmError e) {
  switch (e) {
    case Int4GemmError::kNone: return "";
    case Int4GemmError::kBadShape:
      return "INT4 GEMM: M, N and K must be at least 1, K a multiple of 8 (and M within the grid's reach: 65535 tiles of the tile's rows of X)";
    case Int4GemmError::kGroup:
      return "INT4 GEMM: the group size must divide K and be a multiple of 16 (32, 64, 128) or the whole row (per channel): a k16 tensor-core tile takes one scale";
    case Int4GemmError::kDtype: return "INT4 GEMM: x must be float16 or bfloat16 (W4A16)";
    case Int4GemmError::kMisaligned:
      return "INT4 GEMM: x, the weight and the scratch must be 16-byte aligned, bias and Y aligned to their element size";
    case Int4GemmError::kNullPointer:
      return "INT4 GEMM: x, the weight and Y must not be null, and an act-order weight needs a scratch buffer for the permuted x";
    case Int4GemmError::kSplits:
      return "INT4 GEMM: splits must be 1..8, no more than the K slices int4_effective_splits gives, with a float32 [splits, M, N] partial buffer when above 1";
    case Int4GemmError::kTile: return "INT4 GEMM: the tile's rows of X (blockM) must be 16 or 64";
  }
  return "INT4 GEMM: unknown error";
}

struct Int4GemmArgs {
  int M = 0, N = 0, K = 0, group = 0;
  bool zeros = false, act_order = false;  // what the weight's layout holds (gemm_int4_layout.h)
  DType x_dtype = DType::F16;             // F16 or BF16
  DType out_dtype = DType::F32;
  const void* x = nullptr;         // [M, K] of x_dtype (device)
  const uint8_t* w = nullptr;      // the weight's allocation, int4_device_layout(N, K, group, zeros, act_order).total bytes
  void* scratch = nullptr;         // act-order: [M, K] of x_dtype for the permuted x; else unused
  const float* bias = nullptr;     // [N] or nullptr
  void* out = nullptr;             // [M, N] of out_dtype; must not overlap the inputs
  LoraEpilogue lora;               // the fused LoRA term (lora_epilogue.h); lora.t null: none
  int block_m = 0;                 // the tile's rows of X: 16 (Int4Tile) or 64 (Int4WideTile); 0: int4_block_m's choice
  int splits = 1;                  // split-K slices, as int4_effective_splits gives them
  float* partial = nullptr;        // splits > 1: float32 [splits, M, N] (device), not overlapping the rest
};

struct Int4GemmStatus {
  Int4GemmError error = Int4GemmError::kNone;
  DenseGemmLaunchStatus launch{};  // the first failed launch's result (or the last one's)
};

inline Int4GemmError validate_int4_gemm(const Int4GemmArgs& a) {
  if (a.M < 1 || a.N < 1 || a.K < 1 || a.K % 8 != 0) return Int4GemmError::kBadShape;
  if (a.block_m != 0 && a.block_m != Int4Tile::kBlockM && a.block_m != Int4WideTile::kBlockM) return Int4GemmError::kTile;
  const int64_t block_m = int4_block_m(a.M, a.block_m);
  if ((int64_t(a.M) + block_m - 1) / block_m > 65535) return Int4GemmError::kBadShape;
  if (a.group < 1 || a.K % a.group != 0 || (a.group % 16 != 0 && a.group != a.K)) return Int4GemmError::kGroup;
  if (a.x_dtype != DType::F16 && a.x_dtype != DType::BF16) return Int4GemmError::kDtype;
  if (!a.x || !a.w || !a.out || (a.act_order && !a.scratch)) return Int4GemmError::kNullPointer;
  if (a.splits < 1 || a.splits > kInt4MaxSplits || int4_effective_splits(a.K, a.splits) != a.splits || (a.splits > 1 && !a.partial))
    return Int4GemmError::kSplits;
  const auto addr = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  if (addr(a.x) % 16 || addr(a.w) % 16 || addr(a.scratch) % 16 || addr(a.bias) % 4 || addr(a.partial) % 4 ||
      addr(a.out) % size_t(dtype_size(a.out_dtype)))
    return Int4GemmError::kMisaligned;
  return Int4GemmError::kNone;
}

inline bool int4_launch_ok(const DenseGemmLaunchStatus& s) {
#if defined(__CUDACC__)
  return s == cudaSuccess;
#else
  return s.ok;
#endif
}

// The compiled configurations: {f16, bf16} X x {f32, f16, bf16} Y x two tiles (Int4Tile, Int4WideTile).
template <class T, bool kBf16, DType kOut>
inline DenseGemmLaunchStatus launch_int4_gemm_config(const Int4GemmArgs& a, const uint16_t* x, DenseGemmStream stream) {
  const Int4DeviceLayout l = int4_device_layout(a.N, a.K, a.group, a.zeros, a.act_order);
  LaunchDim grid, block;
  grid.x = unsigned(l.Np / 64);
  grid.y = unsigned((a.M + T::kBlockM - 1) / T::kBlockM);
  grid.z = unsigned(a.splits);
  const int k_tiles = (a.K + 15) / 16;
  const int tiles_per_split = (k_tiles + a.splits - 1) / a.splits;
  float* const partial = a.splits > 1 ? a.partial : nullptr;
  block.x = unsigned(T::kThreads);
  block.y = 1;
  block.z = 1;
  auto* const int4_gemm = &int4_gemm_kernel<T, kBf16, kOut>;
  const uint8_t* codes = a.w + l.packed_off;
  const float* scales = reinterpret_cast<const float*>(a.w + l.scales_off);
  const uint8_t* zeros = a.zeros ? a.w + l.zeros_off : nullptr;
  const int Np = int(l.Np), G = int(l.G);
  const DenseGemmLaunchStatus s = CG_LAUNCH_STATUS(int4_gemm, grid, block, T::kSmemBytes, stream, x, codes, scales, zeros, a.bias, a.out, a.M,
                                                   a.N, a.K, Np, a.group, G, a.lora, tiles_per_split, partial);
  if (!partial || !int4_launch_ok(s)) return s;
  auto* const reduce = &split_k_reduce_kernel<kOut>;
  const int64_t mn = int64_t(a.M) * int64_t(a.N);
  return CG_LAUNCH_STATUS(reduce, dim_x(unsigned((mn + 255) / 256)), dim_x(256), 0, stream, a.partial, a.splits, a.bias, a.out, a.M, a.N, a.lora);
}

template <class T, bool kBf16>
inline DenseGemmLaunchStatus launch_int4_gemm_tile(const Int4GemmArgs& a, const uint16_t* x, DenseGemmStream stream) {
  switch (a.out_dtype) {
    case DType::F32: return launch_int4_gemm_config<T, kBf16, DType::F32>(a, x, stream);
    case DType::F16: return launch_int4_gemm_config<T, kBf16, DType::F16>(a, x, stream);
    default: return launch_int4_gemm_config<T, kBf16, DType::BF16>(a, x, stream);
  }
}

template <bool kBf16>
inline DenseGemmLaunchStatus launch_int4_gemm_input(const Int4GemmArgs& a, const uint16_t* x, DenseGemmStream stream) {
  if (int4_block_m(a.M, a.block_m) == Int4WideTile::kBlockM) return launch_int4_gemm_tile<Int4WideTile, kBf16>(a, x, stream);
  return launch_int4_gemm_tile<Int4Tile, kBf16>(a, x, stream);
}

// Validates, then launches on `stream`: the act-order permutation of X (into a.scratch), then the
// GEMM. status.error != kNone: nothing ran; else status.launch is the first failed launch's result.
inline Int4GemmStatus launch_int4_gemm(const Int4GemmArgs& a, DenseGemmStream stream) {
  Int4GemmStatus status;
  status.error = validate_int4_gemm(a);
  if (status.error != Int4GemmError::kNone) return status;
  const uint16_t* x = static_cast<const uint16_t*>(a.x);
  if (a.act_order) {
    const Int4DeviceLayout l = int4_device_layout(a.N, a.K, a.group, a.zeros, a.act_order);
    const int32_t* perm = reinterpret_cast<const int32_t*>(a.w + l.perm_off);
    uint16_t* xp = static_cast<uint16_t*>(a.scratch);
    LaunchDim grid, block;
    grid.x = unsigned(a.M);
    block.x = 128;
    auto* const permute_x = &permute_x_kernel<uint16_t>;
#if defined(__CUDACC__)
    CG_LAUNCH(permute_x, grid, block, 0, stream, x, perm, xp, a.M, a.K);
    status.launch = cudaGetLastError();
#else
    status.launch = CG_LAUNCH(permute_x, grid, block, 0, stream, x, perm, xp, a.M, a.K);
#endif
    if (!int4_launch_ok(status.launch)) return status;
    x = xp;
  }
  status.launch = a.x_dtype == DType::BF16 ? launch_int4_gemm_input<true>(a, x, stream) : launch_int4_gemm_input<false>(a, x, stream);
  return status;
}

}  // namespace gemm
}  // namespace cg
