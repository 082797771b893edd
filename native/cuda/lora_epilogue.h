// The fused LoRA term of the GEMM epilogues (gemm_dense.cuh, gemm_dense_f32.cuh, gemm_sparse24.cuh):
//
//   y[m][n] += alpha[m] · Σ_{j < r[m]} T[m][j] · Bt[off[m] + j][n]
//
// where T [M, tld] float32 (row m: x[m]·A_aᵀ for row m's adapter a, r[m] <= tld values) was
// computed before the kernel, on the same stream, by lora_shrink.cuh (float32, from x as given,
// as on the CPU), and Bt [rsum, N] float32 is the adapters' B, transposed and stacked: adapter a's
// rows start at off[m]. r[m] = 0: no adapter. Scaled by alpha[m]: one adapter for every row
// (linear with `lora`) or one per row (linearMultiLora), with no [M, N] temporary and no second
// pass over Y. The sum runs over j in order with fused multiply-adds, then is scaled once.
//
// The row table `rows` holds 3M 32-bit words: off[0..M), r[0..M), then alpha's float32 bits; the
// bindings check it on the host (0 <= off, 0 <= r <= tld, off + r <= rsum) before they upload it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cuda/kernel.h"

namespace cg {
namespace gemm {

struct LoraEpilogue {
  const float* t = nullptr;      // [M, tld]; null: no LoRA term
  const float* bt = nullptr;     // [rsum, N]
  const int32_t* rows = nullptr; // [3M]
  int tld = 0;
};

// The LoRA term of output (m, n) of an [M, N] product (0 when there is none).
__device__ __forceinline__ float lora_term(const LoraEpilogue& l, int m, int n, int M, int N) {
  if (!l.t) return 0.f;
  const int off = l.rows[m], r = l.rows[M + m];
  if (r == 0) return 0.f;
  const float* t = l.t + size_t(m) * size_t(l.tld);
  const float* b = l.bt + size_t(off) * size_t(N) + size_t(n);
  float s = 0.f;
  for (int j = 0; j < r; ++j) s = fma_rn(t[j], b[size_t(j) * size_t(N)], s);
  float alpha;
  std::memcpy(&alpha, l.rows + 2 * M + m, sizeof alpha);
  return alpha * s;
}

}  // namespace gemm
}  // namespace cg
