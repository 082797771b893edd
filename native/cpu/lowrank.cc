// The ISA dispatch of lowRankUpdate, and the fused LoRA forward's first product (lowrank.h).
#include "cpu/lowrank.h"

#include <cstring>
#include <vector>

#include "cpu/runtime/scratch.h"

namespace cg {

int64_t lowrank_update(Isa isa, const LowRankUpdate& u) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Amx:
    case Isa::Avx512: return avx512::lowrank_update(u);
    case Isa::Avx2: return avx2::lowrank_update(u);
#endif
    default: return scalar::lowrank_update(u);
  }
}

namespace {

// t[rows[i]][0..r) = alpha * (x rows) · Aᵀ for the given rows of x (all of them when rows is null).
bool first_product(Isa isa, const GemmProblem& p, const LoraAdapterRef& a, const int64_t* rows, int64_t nrows, float* t,
                   int64_t tstride) {
  const size_t es = size_t(dtype_size(p.xdt));
  float* tmp = static_cast<float*>(aligned_alloc_bytes(size_t(nrows * a.r) * sizeof(float)));
  uint8_t* xs = rows ? static_cast<uint8_t*>(aligned_alloc_bytes(size_t(nrows * p.K) * es)) : nullptr;
  if (!tmp || (rows && !xs)) {
    aligned_free_bytes(tmp);
    aligned_free_bytes(xs);
    return false;
  }
  if (rows)  // the adapter's rows, gathered so that they run as one product (a segment)
    for (int64_t i = 0; i < nrows; ++i)
      std::memcpy(xs + i * p.K * es, static_cast<const uint8_t*>(p.x) + rows[i] * p.K * es, size_t(p.K) * es);
  GemmProblem q;
  q.x = rows ? xs : p.x;
  q.xdt = p.xdt;
  q.M = nrows;
  q.N = a.r;
  q.K = p.K;
  q.y = tmp;
  q.ydt = DType::F32;
  q.threads = p.threads;
  const bool ok = dense_linear(isa, q, a.a_packed, DType::F32);
  if (ok)
    for (int64_t i = 0; i < nrows; ++i) {
      float* dst = t + (rows ? rows[i] : i) * tstride;
      for (int j = 0; j < a.r; ++j) dst[j] = a.alpha * tmp[i * a.r + j];
    }
  aligned_free_bytes(tmp);
  aligned_free_bytes(xs);
  return ok;
}

}  // namespace

bool lora_first_product(Isa isa, const GemmProblem& p, const LoraAdapterRef* adapters, int nadapters,
                        const int32_t* row_adapter, float* t, int64_t tstride) {
  if (!row_adapter) return first_product(isa, p, adapters[0], nullptr, p.M, t, tstride);
  std::vector<int64_t> rows;
  for (int a = 0; a < nadapters; ++a) {
    rows.clear();
    for (int64_t m = 0; m < p.M; ++m)
      if (row_adapter[m] == a) rows.push_back(m);
    if (!rows.empty() && !first_product(isa, p, adapters[a], rows.data(), int64_t(rows.size()), t, tstride)) return false;
  }
  return true;
}

}  // namespace cg
