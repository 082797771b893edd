// The canonical FP8 weight format: quantization (formats/fp8_weight.h).
#include "formats/fp8_weight.h"

#include <cmath>

namespace cg {

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

}  // namespace cg
