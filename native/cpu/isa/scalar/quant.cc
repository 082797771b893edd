// Portable reference for INT4 and FP8 weights (CPU layouts of cpu/layout/int4.h, cpu/layout/fp8.h): for each
// output, per group (INT4) or K block (FP8), s * sum_k x[k] * (q - z) or s * sum_k x[k] * fp8(c),
// float32 accumulation in column order. Work is split over the rows of W.
#include <cstdint>
#include <cstring>
#include <new>

#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/act_quant.h"
#include "cpu/kernels.h"
#include "cpu/lowrank.h"

namespace cg {
namespace scalar {
namespace {

struct Ctx {
  const QuantProblem* q;
  const float* x;  // float32, permuted
  float table[256];
};

void task(void* vctx, int t, int ntasks) {
  const Ctx& c = *static_cast<const Ctx*>(vctx);
  const QuantProblem& q = *c.q;
  const GemmProblem& p = *q.p;
  const int64_t N = p.N, K = p.K;
  const int64_t n0 = N * t / ntasks, n1 = N * (t + 1) / ntasks;
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t panel = n / kQuantPanel, lane = n % kQuantPanel;
    for (int64_t m = 0; m < p.M; ++m) {
      const float* x = c.x + m * K;
      float acc = 0.0f;
      if (q.format == WeightFormat::Int4) {
        const Int4Dims& d = q.int4;
        const Int4Layout lay = int4_layout(d);
        const int64_t G = d.groups(), C = K / 8;
        const float* sc = reinterpret_cast<const float*>(q.packed + lay.scales_off) + panel * G * kQuantPanel;
        const float* zr = reinterpret_cast<const float*>(q.packed + lay.zeros_off) + panel * G * kQuantPanel;
        for (int64_t g = 0; g < G; ++g) {
          const int z = int(zr[g * kQuantPanel + lane]);
          float part = 0.0f;
          for (int64_t k = g * d.group; k < (g + 1) * d.group; ++k) {
            uint32_t word;
            std::memcpy(&word, q.packed + ((panel * C + k / 8) * kQuantPanel + lane) * 4, 4);
            part += x[k] * float(int((word >> int4_shift(int(k % 8))) & 15) - z);
          }
          acc += part * sc[g * kQuantPanel + lane];
        }
      } else {
        const Fp8Dims& d = q.fp8;
        const int64_t SC = d.scale_cols();
        const float* sc = reinterpret_cast<const float*>(q.packed + fp8_lane_scales_off(d)) + panel * SC * kQuantPanel;
        const uint8_t* codes = q.packed + panel * K * kQuantPanel + lane;
        for (int64_t b = 0; b < SC; ++b) {
          float part = 0.0f;
          for (int64_t k = b * d.bk; k < K && k < (b + 1) * d.bk; ++k) part += x[k] * c.table[codes[k * kQuantPanel]];
          acc += part * sc[b * kQuantPanel + lane];
        }
      }
      store_from_f32(p.y, p.ydt, m * N + n, acc + (p.bias ? p.bias[n] : 0.0f) + (p.lora ? lora_term(*p.lora, m, n) : 0.0f));
    }
  }
}

}  // namespace

bool quant_linear(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  if (p.M <= 0 || p.N <= 0) return true;
  const float* x = static_cast<const float*>(p.x);
  float* xq = nullptr;
  if (q.act != ActQuant::None) {
    // Quantized activations (act_quant.h): per row, or per row and K block; a permutation of
    // the columns (INT4 act-order) does not change a row's scale, so it can come after.
    xq = static_cast<float*>(thread_scratch(1, size_t(p.M * p.K) * sizeof(float)));
    if (!xq) return false;
    quantize_activations(p.x, p.xdt, p.M, p.K, q.act, q.act_block, p.threads, xq);
    x = xq;
  }
  const DType xdt = xq ? DType::F32 : p.xdt;
  const void* xsrc = xq ? static_cast<const void*>(xq) : p.x;
  if (xdt != DType::F32 || q.perm) {
    float* buf = static_cast<float*>(thread_scratch(2, size_t(p.M * p.K) * sizeof(float)));
    if (!buf) return false;
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t k = 0; k < p.K; ++k) buf[m * p.K + k] = load_as_f32(xsrc, xdt, m * p.K + (q.perm ? q.perm[k] : k));
    x = buf;
  }
  auto ctx = new (std::nothrow) Ctx;
  if (!ctx) return false;
  ctx->q = &q;
  ctx->x = x;
  for (int i = 0; i < 256; ++i) ctx->table[i] = fp8_decode(uint8_t(i), q.fp8_format);
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = p.N < threads ? int(p.N) : threads;
  parallel_for(ntasks, threads, task, ctx);
  delete ctx;
  return true;
}

}  // namespace scalar
}  // namespace cg
