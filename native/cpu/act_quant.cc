#include "cpu/act_quant.h"

#include <cmath>

#include "cg/fp8.h"
#include "cpu/runtime/thread_pool.h"

namespace cg {
namespace {

struct Ctx {
  const void* x;
  DType xdt;
  int64_t M, K, block;
  ActQuant mode;
  float* out;
};

void task(void* vctx, int t, int nt) {
  const Ctx& c = *static_cast<const Ctx*>(vctx);
  const int64_t m0 = c.M * t / nt, m1 = c.M * (t + 1) / nt;
  for (int64_t m = m0; m < m1; ++m) {
    float* row = c.out + m * c.K;
    for (int64_t k = 0; k < c.K; ++k) row[k] = load_as_f32(c.x, c.xdt, m * c.K + k);
    const int64_t unit = c.mode == ActQuant::Int8 ? c.K : c.block;
    for (int64_t k0 = 0; k0 < c.K; k0 += unit) {
      const int64_t k1 = k0 + unit < c.K ? k0 + unit : c.K;
      float amax = 0.0f;
      bool finite = true;
      for (int64_t k = k0; k < k1; ++k) {
        amax = std::fmax(amax, std::fabs(row[k]));
        finite = finite && std::isfinite(row[k]);
      }
      if (!finite) {  // a NaN or an infinity makes the whole unit NaN (act_quant.h)
        for (int64_t k = k0; k < k1; ++k) row[k] = NAN;
        continue;
      }
      if (c.mode == ActQuant::Fp8) {
        float s = amax / 448.0f;
        if (!(s > 0.0f)) s = 1.0f;  // an all-zero unit
        for (int64_t k = k0; k < k1; ++k) row[k] = fp8_decode(fp8_encode(row[k] / s, Fp8Format::E4M3), Fp8Format::E4M3) * s;
      } else {
        float s = amax / 127.0f;
        if (!(s > 0.0f)) s = 1.0f;
        for (int64_t k = k0; k < k1; ++k) {
          float q = std::nearbyint(row[k] / s);
          q = q < -127.0f ? -127.0f : (q > 127.0f ? 127.0f : q);
          row[k] = q * s;
        }
      }
    }
  }
}

}  // namespace

void quantize_activations(const void* x, DType xdt, int64_t M, int64_t K, ActQuant mode, int64_t block, int threads,
                          float* out) {
  Ctx c{x, xdt, M, K, block < 1 ? K : block, mode, out};
  const int nt = M < threads ? int(M) : (threads < 1 ? 1 : threads);
  parallel_for(nt, nt, task, &c);
}

}  // namespace cg
