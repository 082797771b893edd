// The canonical FP8 weight format: the identity of an Fp8Weight, shared by every backend (each
// placement re-lays it out: cpu/layout/fp8.h, the GPU upload), and its quantizer. The codec of
// one value is cg/fp8.h.
//
// ---- FP8, canonical -----------------------------------------------------------------------
// codes [N, K] bytes (fp8.h), with float32 scales by unit: 'tensor' (1), 'channel' (N, one per
// row) or blocks of bn x bk ([ceil(N/bn), ceil(K/bk)], row-major). w = decode(code) * scale.
//
#pragma once
#include <cstdint>
#include "cg/fp8.h"

namespace cg {

struct Fp8Dims {
  int64_t N, K;
  int64_t bn, bk;  // scale unit: tensor = (N, K), channel = (1, K), block = (bn, bk)
  int64_t scale_rows() const { return (N + bn - 1) / bn; }
  int64_t scale_cols() const { return (K + bk - 1) / bk; }
  int64_t scales() const { return scale_rows() * scale_cols(); }
};

// scale = amax / max_value(format) per unit (1 for an all-zero unit), code = encode(w / scale).
// Returns -1, or the flat index of the first non-finite weight.
int64_t fp8_quantize(const Fp8Dims& d, const float* w, Fp8Format f, uint8_t* codes, float* scales);

}  // namespace cg
