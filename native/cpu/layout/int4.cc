// Canonical INT4 <-> the CPU layout (cpu/layout/int4.h).
#include "cpu/layout/int4.h"

#include <cstring>

namespace cg {

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
        word |= uint32_t(int4_code_at(qweight, d.K, n, src)) << int4_shift(j);
      }
      std::memcpy(codes + ((p * C + c) * kQuantPanel + l) * 4, &word, 4);
    }
    for (int64_t g = 0; g < G; ++g) {
      cpu_scales[(p * G + g) * kQuantPanel + l] = load_as_f32(scales, sdt, n * G + g);
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
        int4_code_put(qweight, d.K, n, perm ? perm[col] : col, int((word >> int4_shift(j)) & 15));
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

}  // namespace cg
