// Low-rank terms: W <- W + alpha * B * A in place, tile by tile (lowRankUpdate), and the
// low-rank products a fused LoRA forward needs first (t = alpha * x * Aᵀ, per adapter).
#pragma once
#include <cstdint>

#include "cg/dtype.h"
#include "cpu/layout/fp8.h"
#include "cpu/kernels.h"

namespace cg {

// ---- W <- W + alpha * B * A --------------------------------------------------------------------


struct LowRankUpdate {
  WeightFormat format = WeightFormat::Dense;
  int64_t N = 0, K = 0;
  int r = 0;
  float alpha = 1.0f;
  const void* b = nullptr;  // [N, r] row-major, dtype abdt
  const void* a = nullptr;  // [r, K] row-major, dtype abdt
  DType abdt = DType::F32;
  // The weight's buffer (its CPU layout, updated in place) and what it takes to read it:
  uint8_t* w = nullptr;
  DType wdt = DType::F32;          // Dense, Sparse24
  bool reprune = false;            // Sparse24: choose the 2 largest of every 4 again
  Int4Dims int4{};                 // Int4
  const int32_t* perm = nullptr;   // Int4 act-order: the layout's column c is A's column perm[c]
  bool symmetric = true;           // Int4: keep z = 8
  DType scale_dt = DType::F32;     // Int4: scales stay representable in this dtype
  Fp8Dims fp8{};                   // Fp8
  Fp8Format fp8_format = Fp8Format::E4M3;
  int64_t tile_k = 256;            // columns of W per tile (rows: one panel of 16)
  int threads = 1;
};

// Returns the scratch bytes the update used (every buffer it allocated, all threads together);
// -1 when it could not allocate them, -2 when a quantized weight's new scale would not be
// representable (a group's or unit's new values are not finite, or beyond float16 scales).
// Either way the weight is untouched: buffers are allocated, and quantized updates checked,
// before the first write.
int64_t lowrank_update(Isa isa, const LowRankUpdate& u);

// ---- the fused LoRA forward's first product ---------------------------------------------------

struct LoraAdapterRef {
  const void* a_packed;  // A [r, K] as a dense float32 weight (kernels.h panel layout)
  const float* b_packed; // B [N, r] as a dense float32 weight
  int r;
  float alpha;
};

// t[m][0..r_a) = alpha_a * x_m · A_aᵀ for every row m with an adapter (row_adapter null: adapter
// 0 for all rows), computed with the dense kernels; rows without one are left as they are.
// Returns false when out of memory.
bool lora_first_product(Isa isa, const GemmProblem& p, const LoraAdapterRef* adapters, int nadapters,
                        const int32_t* row_adapter, float* t, int64_t tstride);

// One output's low-rank terms (the scalar kernels' epilogue).
static inline float lora_term(const LoraEpilogue& e, int64_t m, int64_t n) {
  const int a = e.row_adapter ? e.row_adapter[m] : 0;
  if (a < 0) return 0.0f;
  const int r = e.rank[a];
  const float* b = e.b[a] + (n / 16) * r * 16 + n % 16;
  const float* t = e.t + m * e.tstride;
  float s = 0.0f;
  for (int j = 0; j < r; ++j) s += t[j] * b[j * 16];
  return s;
}

namespace scalar {
int64_t lowrank_update(const LowRankUpdate& u);
}
namespace avx2 {
int64_t lowrank_update(const LowRankUpdate& u);
}
namespace avx512 {
int64_t lowrank_update(const LowRankUpdate& u);
}

}  // namespace cg
