// Portable reference for the dense linear: y[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]),
// W read from the packed panel layout of kernels.h, float32 accumulation in k order.
// Work is split over the 16-row panels of W; each task writes its own columns of y.
#include <cstdint>

#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"
#include "cpu/lowrank.h"

namespace cg {
namespace scalar {
namespace {

struct Ctx {
  const GemmProblem* p;
  const void* w;
  DType wdt;
  int64_t npanels;  // panels that hold at least one real row: ceil(N / 16)
};

void task(void* ctx, int t, int ntasks) {
  const Ctx& c = *static_cast<const Ctx*>(ctx);
  const GemmProblem& p = *c.p;
  const int64_t p0 = c.npanels * t / ntasks, p1 = c.npanels * (t + 1) / ntasks;
  const int64_t K = p.K, N = p.N;
  for (int64_t pn = p0; pn < p1; ++pn) {
    const int64_t n0 = pn * kDensePanel;
    const int rows = N - n0 < kDensePanel ? int(N - n0) : kDensePanel;
    const int64_t base = pn * K * kDensePanel;
    for (int64_t m = 0; m < p.M; ++m) {
      float acc[kDensePanel] = {};
      for (int64_t k = 0; k < K; ++k) {
        const float xv = load_as_f32(p.x, p.xdt, m * K + k);
        for (int j = 0; j < kDensePanel; ++j) acc[j] += xv * load_as_f32(c.w, c.wdt, base + k * kDensePanel + j);
      }
      for (int j = 0; j < rows; ++j)
        store_from_f32(p.y, p.ydt, m * N + n0 + j, acc[j] + (p.bias ? p.bias[n0 + j] : 0.0f) + (p.lora ? lora_term(*p.lora, m, n0 + j) : 0.0f));
    }
  }
}

}  // namespace

bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt) {
  if (p.M <= 0 || p.N <= 0) return true;
  Ctx c{&p, wpacked, wdt, (p.N + kDensePanel - 1) / kDensePanel};
  int threads = p.threads < 1 ? 1 : p.threads;
  int ntasks = c.npanels < threads ? int(c.npanels) : threads;
  parallel_for(ntasks, threads, task, &c);
  return true;
}

}  // namespace scalar
}  // namespace cg
