// W <- W + alpha·B·A in place on the device (cg.lowRankUpdate on the CUDA backend), for the
// device layouts of dense weights (lib/backends/cuda-dense.ts: [N, kp] row-major in the weight's
// dtype) and of 16-bit 2:4 weights (cuda-sparse24.ts and gemm_sparse24.cuh: values [np, kp/2],
// the lanes' metadata words [np/16][kp/32][16]). A [r, K] and B [N, r] are float32 device
// buffers (lib/ widens 16-bit factors exactly before the upload). B·A is never materialised:
// each thread computes the increments of the elements it owns, and writes each element once.
//
// ---- Arithmetic: bit for bit the CPU kernels' (native/cpu/impl/lowrank_impl.h) ------------------
// For element (n, k): b_j = alpha * B[n][j] rounded to float32; d = fma(b_{r-1}, A[r-1][k],
// ... fma(b_0, A[0][k], 0)) in j order; the new value is (w + d) in float32, rounded once into the
// weight's dtype (round to nearest even). The CPU kernels do the same operations in the same order
// (its bp = alpha * B, its vfma chain from zero, vadd, one store), so the device result equals
// theirs bit for bit (test/cuda-sim/lowrank-device.test.ts checks it, besides the float64
// reference bound of test/ops/lowrank-update.test.ts, which also runs on cuda-sim).
//   2:4: only the two kept positions of every group of 4 change (their nibble names them); with
// reprune the candidates are the kept values plus d and, at the two dropped positions, d alone;
// the two largest magnitudes are kept (a NaN counts as the largest, the lower column on ties), in
// column order, and the group's nibble is rewritten. Padding rows (n >= N) and groups (k >= K)
// are never touched, so they stay zeros with nibble 0x4, as the GEMM expects.
//
// ---- Work split ---------------------------------------------------------------------------------
// Dense: a block of kDenseThreads threads owns kDenseThreads columns of kDenseRows rows; each
// thread one column, its kDenseRows accumulators in registers. A[j][k] is read once per thread
// (coalesced across the warp), B[n][j] by every thread of the block at one address (a broadcast).
// 2:4: one thread per metadata word: the word holds 4 consecutive groups of 2 rows (16b + g and
// 16b + g + 8), so the thread that rewrites it (reprune) is the only one that reads or writes it
// and its 16 values: no two threads share a byte.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/gemm_dense.cuh"
#include "cuda/kernel.h"
#include "cuda/store_output.h"


namespace cg {
namespace gemm {

constexpr int kLowRankDenseThreads = 128;
constexpr int kLowRankDenseRows = 16;
constexpr int kLowRankSparseThreads = 128;

// d = sum_j (alpha B[n][j]) A[j][k], in j order, from zero.
__device__ __forceinline__ float lr_delta(const float* __restrict__ a, const float* __restrict__ b, float alpha, int r, int K, int n, int k) {
  float d = 0.0f;
  for (int j = 0; j < r; ++j) d = fma_rn(mul_rn(alpha, b[int64_t(n) * r + j]), a[int64_t(j) * K + k], d);
  return d;
}

template <DType kW>
__global__ void lowrank_dense_kernel(void* w, const float* __restrict__ a, const float* __restrict__ b, float alpha, int N, int K, int kp, int r) {
  const int k = int(blockIdx.x) * kLowRankDenseThreads + int(threadIdx.x);
  const int n0 = int(blockIdx.y) * kLowRankDenseRows;
  if (k >= K) return;  // no barrier in this kernel
  float d[kLowRankDenseRows];
  CG_UNROLL
  for (int i = 0; i < kLowRankDenseRows; ++i) d[i] = 0.0f;
  for (int j = 0; j < r; ++j) {
    const float av = a[int64_t(j) * K + k];
    CG_UNROLL
    for (int i = 0; i < kLowRankDenseRows; ++i) {
      const int n = n0 + i < N ? n0 + i : N - 1;  // rows past N compute a copy of row N-1, never stored
      d[i] = fma_rn(mul_rn(alpha, b[int64_t(n) * r + j]), av, d[i]);
    }
  }
  CG_UNROLL
  for (int i = 0; i < kLowRankDenseRows; ++i) {
    if (n0 + i >= N) break;
    const size_t at = size_t(n0 + i) * size_t(kp) + size_t(k);
    store_output<kW>(w, at, add_rn(load_value<kW>(w, at), d[i]));
  }
}

// The two largest magnitudes of c0..c3 (a NaN counts as the largest; the lower column on ties),
// in column order: lr_top2 of lowrank_impl.h, written with constant indices only (registers).
__device__ __forceinline__ void lr_top2(const float (&c)[4], int* lo, int* hi) {
  float mag[4];
  CG_UNROLL
  for (int q = 0; q < 4; ++q) mag[q] = c[q] != c[q] ? INFINITY : (c[q] < 0 ? -c[q] : c[q]);
  int first = 0;
  float mf = mag[0];
  CG_UNROLL
  for (int q = 1; q < 4; ++q)
    if (mag[q] > mf) {
      first = q;
      mf = mag[q];
    }
  // The CPU's second starts at the first column other than `first` and moves on a strictly
  // larger magnitude: a sentinel below every magnitude (they are >= 0) does the same.
  int second = -1;
  float ms = -1.0f;
  CG_UNROLL
  for (int q = 0; q < 4; ++q)
    if (q != first && mag[q] > ms) {
      second = q;
      ms = mag[q];
    }
  *lo = first < second ? first : second;
  *hi = first < second ? second : first;
}

template <DType kW>
__global__ void lowrank_sparse24_kernel(uint16_t* values, uint32_t* meta, const float* __restrict__ a, const float* __restrict__ b, float alpha, int N, int K,
                                        int np, int kp, int r, bool reprune) {
  const int64_t word_index = int64_t(blockIdx.x) * kLowRankSparseThreads + int64_t(threadIdx.x);
  const int64_t tiles_k = kp / 32;
  if (word_index >= int64_t(np / 16) * tiles_k * 16) return;  // no barrier in this kernel
  const int64_t tile = word_index / 16;
  const int w = int(word_index % 16), g = w / 2, p = w % 2;
  const int rb = int(tile / tiles_k), kt = int(tile % tiles_k);
  const int groups = K / 4;
  uint32_t word = meta[word_index];
  const uint32_t old_word = word;
  for (int h = 0; h < 2; ++h) {
    const int n = 16 * rb + g + 8 * h;
    if (n >= N) continue;
    for (int j = 0; j < 4; ++j) {
      const int grp = kt * 8 + 4 * p + j;
      if (grp >= groups) break;
      const int sh = 16 * h + 4 * j;
      const int nib = int((word >> sh) & 0xfu);
      const int pa = nib & 3, pb = nib >> 2;
      const size_t ia = size_t(n) * size_t(kp / 2) + size_t(2 * grp), ib = ia + 1;
      const float va = add_rn(load_value<kW>(values, ia), lr_delta(a, b, alpha, r, K, n, 4 * grp + pa));
      const float vb = add_rn(load_value<kW>(values, ib), lr_delta(a, b, alpha, r, K, n, 4 * grp + pb));
      if (!reprune) {
        store_output<kW>(values, ia, va);
        store_output<kW>(values, ib, vb);
        continue;
      }
      // Every column's new value: the kept two, and the update alone at the dropped two.
      float cand[4];
      CG_UNROLL
      for (int q = 0; q < 4; ++q) cand[q] = q == pa ? va : q == pb ? vb : lr_delta(a, b, alpha, r, K, n, 4 * grp + q);
      int na, nb;
      lr_top2(cand, &na, &nb);
      float keep_a = cand[0], keep_b = cand[0];
      CG_UNROLL
      for (int q = 0; q < 4; ++q) {  // cand[na], cand[nb] with constant indices only (registers)
        if (q == na) keep_a = cand[q];
        if (q == nb) keep_b = cand[q];
      }
      store_output<kW>(values, ia, keep_a);
      store_output<kW>(values, ib, keep_b);
      word = (word & ~(0xfu << sh)) | (uint32_t(na | (nb << 2)) << sh);
    }
  }
  if (word != old_word) meta[word_index] = word;
}

struct LowRankArgs {
  DType dtype = DType::F32;  // the weight's
  int N = 0, K = 0, r = 0;
  float alpha = 0.0f;
  const float* a = nullptr;  // [r, K] float32
  const float* b = nullptr;  // [N, r] float32
  // dense: w [N, kp] of dtype
  void* w = nullptr;
  int kp = 0;
  // 2:4 (16-bit): values [np, kp/2], meta words [np/16][kp/32][16]
  uint16_t* values = nullptr;
  uint32_t* meta = nullptr;
  int np = 0;
  bool reprune = false;
};

// The configuration's refusal (empty: it runs): lib/ checks all of these first.
inline const char* validate_lowrank(const LowRankArgs& x, bool sparse) {
  if (x.N < 1 || x.K < 1 || x.r < 1 || !x.a || !x.b) return "lowRankUpdate: N, K, r >= 1 and the factors are needed";
  if (!sparse) {
    if (!x.w || x.kp < x.K) return "lowRankUpdate (dense): w [N, kp] with kp >= K is needed";
    if ((int64_t(x.N) + kLowRankDenseRows - 1) / kLowRankDenseRows > 65535) return "lowRankUpdate (dense): N is too large for the grid";
    return nullptr;
  }
  if (x.dtype == DType::F32) return "lowRankUpdate (2:4): float32 2:4 weights stay on the CPU kernels";
  if (!x.values || !x.meta || x.K % 4 != 0 || x.np % 16 != 0 || x.kp % 32 != 0 || x.np < x.N || x.kp < x.K)
    return "lowRankUpdate (2:4): the device layout's np (a multiple of 16, >= N) and kp (a multiple of 32, >= K) are needed";
  return nullptr;
}

template <DType kW>
inline DenseGemmLaunchStatus launch_lowrank_dense_config(const LowRankArgs& x, DenseGemmStream stream) {
  LaunchDim grid = dim_x(unsigned((x.K + kLowRankDenseThreads - 1) / kLowRankDenseThreads));
  grid.y = unsigned((x.N + kLowRankDenseRows - 1) / kLowRankDenseRows);
  auto* const kernel = &lowrank_dense_kernel<kW>;
  return CG_LAUNCH_STATUS(kernel, grid, dim_x(kLowRankDenseThreads), 0, stream, x.w, x.a, x.b, x.alpha, x.N, x.K, x.kp, x.r);
}

template <DType kW>
inline DenseGemmLaunchStatus launch_lowrank_sparse24_config(const LowRankArgs& x, DenseGemmStream stream) {
  const int64_t words = int64_t(x.np / 16) * (x.kp / 32) * 16;
  auto* const kernel = &lowrank_sparse24_kernel<kW>;
  return CG_LAUNCH_STATUS(kernel, dim_x(unsigned((words + kLowRankSparseThreads - 1) / kLowRankSparseThreads)), dim_x(kLowRankSparseThreads), 0, stream,
                          x.values, x.meta, x.a, x.b, x.alpha, x.N, x.K, x.np, x.kp, x.r, x.reprune);
}

// Launches the update of a validated configuration on `stream`.
inline DenseGemmLaunchStatus launch_lowrank(const LowRankArgs& x, bool sparse, DenseGemmStream stream) {
  if (sparse) return x.dtype == DType::F16 ? launch_lowrank_sparse24_config<DType::F16>(x, stream) : launch_lowrank_sparse24_config<DType::BF16>(x, stream);
  switch (x.dtype) {
    case DType::F32: return launch_lowrank_dense_config<DType::F32>(x, stream);
    case DType::F16: return launch_lowrank_dense_config<DType::F16>(x, stream);
    default: return launch_lowrank_dense_config<DType::BF16>(x, stream);
  }
}

}  // namespace gemm
}  // namespace cg
