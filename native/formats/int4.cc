// The canonical INT4 format: quantization and the GPTQ / AWQ importers (formats/int4.h).
#include "formats/int4.h"

#include <cmath>
#include <cstring>

namespace cg {
namespace {

// The smallest scale in dtype sdt with s * 15 >= range (range >= 0, exact in double): a
// quantization scale may grow, never shrink, so the group's range still maps into 0..15 and
// no code clamps by more than half a step. Infinity when sdt cannot hold it.
float scale_round_up(double range, DType sdt) {
  float s = float(range / 15.0);
  while (double(s) * 15.0 < range) s = std::nextafter(s, INFINITY);
  if (sdt == DType::F16) {
    const uint16_t h = f32_to_f16(s);
    float r = f16_to_f32(h);
    if (r < s) r = f16_to_f32(uint16_t(h + 1));  // positive s: the next float16 up (Inf past the top)
    s = r;
  }
  return s;
}

}  // namespace

bool int4_quantize_group(const float* w, int64_t g, bool symmetric, DType sdt, uint8_t* q, float* s_out, int* z_out) {
  float lo = 0.0f, hi = 0.0f, amax = 0.0f;
  for (int64_t k = 0; k < g; ++k) {
    lo = std::fmin(lo, w[k]);
    hi = std::fmax(hi, w[k]);
    amax = std::fmax(amax, std::fabs(w[k]));
  }
  float s = scale_round_up(symmetric ? 2.0 * double(amax) : double(hi) - double(lo), sdt);
  if (!std::isfinite(s)) return false;
  if (!(s > 0.0f)) s = 1.0f;  // an all-zero group (or one whose scale underflows)
  int z = 8;
  if (!symmetric) {
    z = int(std::nearbyint(-lo / s));
    z = z < 0 ? 0 : (z > 15 ? 15 : z);
  }
  for (int64_t k = 0; k < g; ++k) {
    int v = int(std::nearbyint(w[k] / s)) + z;
    q[k] = uint8_t(v < 0 ? 0 : (v > 15 ? 15 : v));
  }
  *s_out = s;
  *z_out = z;
  return true;
}

int64_t int4_quantize(const Int4Dims& d, const float* w, bool symmetric, DType sdt, uint8_t* qweight, void* scales,
                      uint8_t* zeros, int* reason) {
  const int64_t G = d.groups();
  *reason = 0;
  for (int64_t i = 0; i < d.N * d.K; ++i)
    if (!std::isfinite(w[i])) {
      *reason = 1;
      return i;
    }
  std::memset(qweight, 0, size_t(d.N * (d.K / 2)));
  uint8_t* q = new uint8_t[size_t(d.group)];
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      float s;
      int z;
      if (!int4_quantize_group(w + n * d.K + g * d.group, d.group, symmetric, sdt, q, &s, &z)) {
        delete[] q;
        *reason = 2;
        return n * d.K + g * d.group;
      }
      if (!symmetric) zeros[n * G + g] = uint8_t(z);
      store_from_f32(scales, sdt, n * G + g, s);
      for (int64_t k = 0; k < d.group; ++k) int4_code_put(qweight, d.K, n, g * d.group + k, q[k]);
    }
  }
  delete[] q;
  return -1;
}

void gptq_to_canonical(int64_t N, int64_t K, int64_t G, const int32_t* qweight, const int32_t* qzeros,
                       const void* scales, DType sdt, uint8_t* out_q, uint8_t* out_zeros, void* out_scales) {
  std::memset(out_q, 0, size_t(N * (K / 2)));
  for (int64_t r = 0; r < K / 8; ++r)
    for (int64_t n = 0; n < N; ++n) {
      const uint32_t word = uint32_t(qweight[r * N + n]);
      for (int i = 0; i < 8; ++i) int4_code_put(out_q, K, n, 8 * r + i, int((word >> (4 * i)) & 15));
    }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      const uint32_t word = uint32_t(qzeros[g * (N / 8) + n / 8]);
      out_zeros[n * G + g] = uint8_t(((word >> (4 * (n % 8))) & 15) + 1);
      store_from_f32(out_scales, sdt, n * G + g, load_as_f32(scales, sdt, g * N + n));
    }
}

void awq_to_canonical(int64_t N, int64_t K, int64_t G, const int32_t* qweight, const int32_t* qzeros,
                      const void* scales, DType sdt, uint8_t* out_q, uint8_t* out_zeros, void* out_scales) {
  static const int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // bits 4i hold column 8c + kOrder[i]
  std::memset(out_q, 0, size_t(N * (K / 2)));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < N / 8; ++c) {
      const uint32_t word = uint32_t(qweight[k * (N / 8) + c]);
      for (int i = 0; i < 8; ++i) int4_code_put(out_q, K, 8 * c + kOrder[i], k, int((word >> (4 * i)) & 15));
    }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t c = 0; c < N / 8; ++c) {
      const uint32_t word = uint32_t(qzeros[g * (N / 8) + c]);
      for (int i = 0; i < 8; ++i) out_zeros[(8 * c + kOrder[i]) * G + g] = uint8_t((word >> (4 * i)) & 15);
    }
    for (int64_t n = 0; n < N; ++n) store_from_f32(out_scales, sdt, n * G + g, load_as_f32(scales, sdt, g * N + n));
  }
}

}  // namespace cg
