// Conversions between the INT4 / FP8 canonical formats and their CPU layouts (quant_format.h).
#include "quant_format.h"

#include <cmath>
#include <cstring>

namespace cg {
namespace {

float load_scale(const void* p, DType dt, int64_t i) { return load_as_f32(p, dt, i); }

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

inline int q_at(const uint8_t* qweight, int64_t K, int64_t n, int64_t k) {
  const uint8_t b = qweight[n * (K / 2) + k / 2];
  return (k & 1) ? b >> 4 : b & 15;
}

inline void q_put(uint8_t* qweight, int64_t K, int64_t n, int64_t k, int q) {
  uint8_t& b = qweight[n * (K / 2) + k / 2];
  b = (k & 1) ? uint8_t((b & 0x0f) | (q << 4)) : uint8_t((b & 0xf0) | q);
}

}  // namespace

// ---- INT4 ---------------------------------------------------------------------------------

void int4_pack(const Int4Dims& d, const uint8_t* qweight, const void* scales, DType sdt, const uint8_t* zeros,
               const int32_t* perm, uint8_t* codes, float* cpu_scales, float* cpu_zeros) {
  const int64_t Np = quant_padded_rows(d.N), C = d.K / 8, G = d.groups();
  std::memset(codes, 0, size_t(int4_codes_bytes(d)));
  for (int64_t i = 0; i < Np * G; ++i) cpu_scales[i] = 0.0f, cpu_zeros[i] = 0.0f;
  for (int64_t n = 0; n < d.N; ++n) {
    const int64_t p = n / kQuantPanel, l = n % kQuantPanel;
    for (int64_t c = 0; c < C; ++c) {
      uint32_t word = 0;
      for (int j = 0; j < 8; ++j) {
        const int64_t col = 8 * c + j;
        const int64_t src = perm ? perm[col] : col;
        word |= uint32_t(q_at(qweight, d.K, n, src)) << int4_shift(j);
      }
      std::memcpy(codes + ((p * C + c) * kQuantPanel + l) * 4, &word, 4);
    }
    for (int64_t g = 0; g < G; ++g) {
      cpu_scales[(p * G + g) * kQuantPanel + l] = load_scale(scales, sdt, n * G + g);
      cpu_zeros[(p * G + g) * kQuantPanel + l] = zeros ? float(zeros[n * G + g]) : 8.0f;
    }
  }
}

void int4_unpack(const Int4Dims& d, const uint8_t* codes, const float* cpu_scales, const float* cpu_zeros,
                 const int32_t* perm, uint8_t* qweight, void* scales, DType sdt, uint8_t* zeros) {
  const int64_t C = d.K / 8, G = d.groups();
  std::memset(qweight, 0, size_t(d.N * (d.K / 2)));
  for (int64_t n = 0; n < d.N; ++n) {
    const int64_t p = n / kQuantPanel, l = n % kQuantPanel;
    for (int64_t c = 0; c < C; ++c) {
      uint32_t word;
      std::memcpy(&word, codes + ((p * C + c) * kQuantPanel + l) * 4, 4);
      for (int j = 0; j < 8; ++j) {
        const int64_t col = 8 * c + j;
        q_put(qweight, d.K, n, perm ? perm[col] : col, int((word >> int4_shift(j)) & 15));
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      store_from_f32(scales, sdt, n * G + g, cpu_scales[(p * G + g) * kQuantPanel + l]);
      if (zeros) zeros[n * G + g] = uint8_t(cpu_zeros[(p * G + g) * kQuantPanel + l]);
    }
  }
}

void int4_dequant(const Int4Dims& d, const uint8_t* codes, const float* cpu_scales, const float* cpu_zeros,
                  const int32_t* perm, float* out) {
  const int64_t C = d.K / 8, G = d.groups();
  for (int64_t n = 0; n < d.N; ++n) {
    const int64_t p = n / kQuantPanel, l = n % kQuantPanel;
    for (int64_t c = 0; c < C; ++c) {
      uint32_t word;
      std::memcpy(&word, codes + ((p * C + c) * kQuantPanel + l) * 4, 4);
      for (int j = 0; j < 8; ++j) {
        const int64_t col = 8 * c + j;
        const int64_t g = col / d.group;
        const float s = cpu_scales[(p * G + g) * kQuantPanel + l], z = cpu_zeros[(p * G + g) * kQuantPanel + l];
        out[n * d.K + (perm ? perm[col] : col)] = (float(int((word >> int4_shift(j)) & 15)) - z) * s;
      }
    }
  }
}

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
      for (int64_t k = 0; k < d.group; ++k) q_put(qweight, d.K, n, g * d.group + k, q[k]);
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
      for (int i = 0; i < 8; ++i) q_put(out_q, K, n, 8 * r + i, int((word >> (4 * i)) & 15));
    }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      const uint32_t word = uint32_t(qzeros[g * (N / 8) + n / 8]);
      out_zeros[n * G + g] = uint8_t(((word >> (4 * (n % 8))) & 15) + 1);
      store_from_f32(out_scales, sdt, n * G + g, load_scale(scales, sdt, g * N + n));
    }
}

void awq_to_canonical(int64_t N, int64_t K, int64_t G, const int32_t* qweight, const int32_t* qzeros,
                      const void* scales, DType sdt, uint8_t* out_q, uint8_t* out_zeros, void* out_scales) {
  static const int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // bits 4i hold column 8c + kOrder[i]
  std::memset(out_q, 0, size_t(N * (K / 2)));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < N / 8; ++c) {
      const uint32_t word = uint32_t(qweight[k * (N / 8) + c]);
      for (int i = 0; i < 8; ++i) q_put(out_q, K, 8 * c + kOrder[i], k, int((word >> (4 * i)) & 15));
    }
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t c = 0; c < N / 8; ++c) {
      const uint32_t word = uint32_t(qzeros[g * (N / 8) + c]);
      for (int i = 0; i < 8; ++i) out_zeros[(8 * c + kOrder[i]) * G + g] = uint8_t((word >> (4 * i)) & 15);
    }
    for (int64_t n = 0; n < N; ++n) store_from_f32(out_scales, sdt, n * G + g, load_scale(scales, sdt, g * N + n));
  }
}

// ---- FP8 ----------------------------------------------------------------------------------

int64_t fp8_quantize(const Fp8Dims& d, const float* w, Fp8Format f, uint8_t* codes, float* scales) {
  for (int64_t i = 0; i < d.N * d.K; ++i)
    if (!std::isfinite(w[i])) return i;
  const float fmax = fp8_spec(f).max_value;
  const int64_t SR = d.scale_rows(), SC = d.scale_cols();
  for (int64_t br = 0; br < SR; ++br)
    for (int64_t bc = 0; bc < SC; ++bc) {
      const int64_t n0 = br * d.bn, n1 = n0 + d.bn < d.N ? n0 + d.bn : d.N;
      const int64_t k0 = bc * d.bk, k1 = k0 + d.bk < d.K ? k0 + d.bk : d.K;
      float amax = 0.0f;
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t k = k0; k < k1; ++k) amax = std::fmax(amax, std::fabs(w[n * d.K + k]));
      float s = amax / fmax;
      if (!(s > 0.0f)) s = 1.0f;  // an all-zero unit (or amax so small that amax / max underflows)
      scales[br * SC + bc] = s;
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t k = k0; k < k1; ++k) codes[n * d.K + k] = fp8_encode(w[n * d.K + k] / s, f);
    }
  return -1;
}

void fp8_pack(const Fp8Dims& d, const uint8_t* codes, const float* scales, uint8_t* packed) {
  std::memset(packed, 0, size_t(fp8_bytes(d)));
  for (int64_t n = 0; n < d.N; ++n) {
    uint8_t* panel = packed + (n / kQuantPanel) * d.K * kQuantPanel + n % kQuantPanel;
    for (int64_t k = 0; k < d.K; ++k) panel[k * kQuantPanel] = codes[n * d.K + k];
  }
  float* lane = reinterpret_cast<float*>(packed + fp8_lane_scales_off(d));
  const int64_t SC = d.scale_cols();
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t b = 0; b < SC; ++b)
      lane[((n / kQuantPanel) * SC + b) * kQuantPanel + n % kQuantPanel] = scales[(n / d.bn) * SC + b];
  std::memcpy(packed + fp8_scales_off(d), scales, size_t(d.scales()) * 4);
}

void fp8_unpack(const Fp8Dims& d, const uint8_t* cpu_codes, uint8_t* codes) {
  for (int64_t n = 0; n < d.N; ++n) {
    const uint8_t* panel = cpu_codes + (n / kQuantPanel) * d.K * kQuantPanel + n % kQuantPanel;
    for (int64_t k = 0; k < d.K; ++k) codes[n * d.K + k] = panel[k * kQuantPanel];
  }
}

void fp8_dequant(const Fp8Dims& d, const uint8_t* cpu_codes, const float* scales, Fp8Format f, float* out) {
  float table[256];
  for (int c = 0; c < 256; ++c) table[c] = fp8_decode(uint8_t(c), f);
  const int64_t SC = d.scale_cols();
  for (int64_t n = 0; n < d.N; ++n) {
    const uint8_t* panel = cpu_codes + (n / kQuantPanel) * d.K * kQuantPanel + n % kQuantPanel;
    for (int64_t k = 0; k < d.K; ++k)
      out[n * d.K + k] = table[panel[k * kQuantPanel]] * scales[(n / d.bn) * SC + k / d.bk];
  }
}

}  // namespace cg
