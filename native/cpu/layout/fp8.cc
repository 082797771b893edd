// Canonical FP8 codes and scales <-> the CPU layout (cpu/layout/fp8.h).
#include "cpu/layout/fp8.h"

#include <cstring>

namespace cg {

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
