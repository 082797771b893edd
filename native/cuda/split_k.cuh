// Split-K, shared by the GEMMs that slice K across blocks (gemm_int4.cuh, gemm_sparse24.cuh):
// block z of a grid of `splits` in z multiplies its own slice of K's steps and writes its float32
// sum to partial[z][m][n] (no bias, no LoRA term, no rounding); split_k_reduce_kernel then adds
// the slices in order, the bias and the LoRA term, and rounds once into Y's type. Small-M GEMMs
// of a narrow N then stream the weight from every SM instead of the few the (N, M) tiles reach
// (Marlin's reason for its K partitioning).
#pragma once
#include <cstdint>

#include "cg/dtype.h"
#include "cuda/kernel.h"
#include "cuda/lora_epilogue.h"
#include "cuda/store_output.h"

namespace cg {
namespace gemm {

// ---- the tile's rows of X (the dense, 2:4 and INT4 GEMMs; auto_splits counts tiles of them) -----
// `requested` when the caller chose one (not 0), else the kernel's decode tile of `decode_rows`
// rows up to M = decode_rows and its general tile of `general_rows` rows above.
inline int pick_block_m(int64_t M, int requested, int decode_rows, int general_rows) {
  if (requested != 0) return requested;
  return M <= decode_rows ? decode_rows : general_rows;
}

// ---- split-K ------------------------------------------------------------------------------------
// At most this many K slices per output tile.
constexpr int kMaxSplits = 8;

// Y[m][n] = (partial[0][m][n] + ... + partial[splits - 1][m][n]) (in split order) + bias + the
// LoRA term, rounded once into Y's type. Grid ceil(M N / 256), block 256.
template <DType kOut>
__global__ void split_k_reduce_kernel(const float* partial, int splits, const float* bias, void* out, int M, int N, LoraEpilogue lora) {
  const int64_t i = int64_t(blockIdx.x) * 256 + int64_t(threadIdx.x);
  const int64_t mn = int64_t(M) * int64_t(N);
  if (i >= mn) return;  // no barrier in this kernel
  const int m = int(i / N), n = int(i % N);
  float v = partial[i];
  for (int z = 1; z < splits; ++z) v += partial[size_t(z) * size_t(mn) + size_t(i)];
  if (bias) v += bias[n];
  v += lora_term(lora, m, n, M, N);
  store_output<kOut>(out, size_t(i), v);
}

// The K slices for a GEMM of `blocks` (N, M) tiles and `steps` K-steps on a GPU of
// `multiprocessors` SMs when the caller does not choose: one while the tiles alone fill the SMs;
// else enough slices to fill them, at most kMaxSplits and each at least `min_steps` K-steps.
// Then as effective_splits.
inline int auto_splits(int64_t blocks, int64_t steps, int64_t min_steps, int multiprocessors) {
  if (multiprocessors < 1 || blocks >= multiprocessors) return 1;
  int64_t s = (multiprocessors + blocks - 1) / blocks;
  if (s > kMaxSplits) s = kMaxSplits;
  if (s > steps / min_steps) s = steps / min_steps;
  return s < 1 ? 1 : int(s);
}

// The slices a request of `splits` gives over `steps` K-steps: every slice ceil(steps / splits)
// steps but the last, none empty (so 8 slices of 10 steps are 5 slices of 2).
inline int effective_splits(int64_t steps, int splits) {
  if (splits <= 1 || steps <= 1) return 1;
  const int64_t per = (steps + splits - 1) / splits;
  return int((steps + per - 1) / per);
}

}  // namespace gemm
}  // namespace cg
