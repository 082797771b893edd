// Portable reference for the 2:4 sparse linear on the CPU layout (cpu/layout/sparse24.h):
// y[m, n] = sum over groups g of x[m, 4g + a] * v0 + x[m, 4g + b] * v1 (+ bias[n]), float32
// accumulation in column order. Work is split over the rows of W.
#include <cstdint>
#include <cstring>

#include "cpu/layout/sparse24.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"
#include "cpu/lowrank.h"

namespace cg {
namespace scalar {
namespace {

struct Ctx {
  const GemmProblem* p;
  const uint8_t* w;
  DType wdt;
};

void task(void* ctx, int t, int ntasks) {
  const Ctx& c = *static_cast<const Ctx*>(ctx);
  const GemmProblem& p = *c.p;
  const int64_t K = p.K, N = p.N, G = K / 4;
  const int es = dtype_size(c.wdt);
  const int64_t SB = sp24_super_bytes(es), VB = sp24_value_bytes(es), S = sp24_supers(K);
  const int64_t n0 = N * t / ntasks, n1 = N * (t + 1) / ntasks;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* panel = c.w + (n / kSp24Panel) * S * SB;
    const int lane = int(n % kSp24Panel);
    for (int64_t m = 0; m < p.M; ++m) {
      float acc = 0.0f;
      for (int64_t g = 0; g < G; ++g) {
        const uint8_t* sb = panel + (g / kSp24SuperGroups) * SB;
        const int j = int(g % kSp24SuperGroups);
        uint64_t word;
        std::memcpy(&word, sb + VB + 8 * j, 8);
        const int code = int((word >> sp24_code_shift(lane)) & 0xf);
        const float v0 = load_as_f32(sb, c.wdt, (2 * j) * kSp24Panel + lane);
        const float v1 = load_as_f32(sb, c.wdt, (2 * j + 1) * kSp24Panel + lane);
        acc += load_as_f32(p.x, p.xdt, m * K + 4 * g + (code & 3)) * v0;
        acc += load_as_f32(p.x, p.xdt, m * K + 4 * g + (code >> 2)) * v1;
      }
      store_from_f32(p.y, p.ydt, m * N + n, acc + (p.bias ? p.bias[n] : 0.0f) + (p.lora ? lora_term(*p.lora, m, n) : 0.0f));
    }
  }
}

}  // namespace

bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt) {
  if (p.M <= 0 || p.N <= 0) return true;
  Ctx c{&p, static_cast<const uint8_t*>(packed), wdt};
  int threads = p.threads < 1 ? 1 : p.threads;
  int ntasks = p.N < threads ? int(p.N) : threads;
  parallel_for(ntasks, threads, task, &c);
  return true;
}

}  // namespace scalar
}  // namespace cg
