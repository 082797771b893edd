// The canonical INT4 format: the identity of an Int4Weight, shared by every backend (each
// placement re-lays it out: cpu/layout/int4.h, the GPU upload), its quantizer and the GPTQ /
// AWQ importers.
//
// ---- INT4, canonical ----------------------------------------------------------------------
// W [N, K], K a multiple of 8, columns in groups of g (g in {32, 64, 128}, or g = K per channel):
//   qweight [N, K/2] bytes: byte (n, j) = q[n][2j] | q[n][2j+1] << 4, q in 0..15;
//   scales  [N, G] (G = K/g), float16 or float32;
//   zeros   [N, G] bytes, 0..16 (16 only arrives from GPTQ checkpoints, which store zero - 1),
//           or none for symmetric weights, whose zero point is 8;
//   gIdx    [K] (GPTQ act-order) or none: column k belongs to group gIdx[k] instead of k / g.
// w[n][k] = (q[n][k] - z[n][G(k)]) * s[n][G(k)], computed in float32 as written (the small
// integer q - z is exact, so each weight is the scale rounded once).
//
#pragma once
#include <cstdint>
#include "cg/dtype.h"

namespace cg {

struct Int4Dims {
  int64_t N, K, group;  // group = K for per-channel
  int64_t groups() const { return K / group; }
};

// Code of canonical column k of row n, and its store (qweight [N, K/2], low nibble first).
static inline int int4_code_at(const uint8_t* qweight, int64_t K, int64_t n, int64_t k) {
  const uint8_t b = qweight[n * (K / 2) + k / 2];
  return (k & 1) ? b >> 4 : b & 15;
}
static inline void int4_code_put(uint8_t* qweight, int64_t K, int64_t n, int64_t k, int q) {
  uint8_t& b = qweight[n * (K / 2) + k / 2];
  b = (k & 1) ? uint8_t((b & 0x0f) | (q << 4)) : uint8_t((b & 0xf0) | q);
}

// Round-to-nearest quantization of float32 w [N, K] into the canonical format (README):
// symmetric: range = 2 amax, q = clamp(round(w / s) + 8, 0, 15); asymmetric (range widened to
// include 0): range = max - min, z = clamp(round(-min / s), 0, 15), q = clamp(round(w / s) + z,
// 0, 15); s = the smallest value of the scale dtype with 15 s >= range (rounding up keeps every
// weight within s/2 of its code); an all-zero group gets s = 1. Divisions in float32, rounding
// to nearest even. Returns -1, or the flat index of the first offending weight with *reason = 1
// (not finite) or 2 (its group's scale exceeds the scale dtype's range), and then writes
// nothing meaningful.
int64_t int4_quantize(const Int4Dims& d, const float* w, bool symmetric, DType sdt, uint8_t* qweight, void* scales,
                      uint8_t* zeros, int* reason);
// One group of int4_quantize: w[0..g) -> codes q[0..g) (0..15), scale *s (representable in
// sdt), zero *z (8 when symmetric). false when the scale does not fit sdt.
bool int4_quantize_group(const float* w, int64_t g, bool symmetric, DType sdt, uint8_t* q, float* s, int* z);
// GPTQ (AutoGPTQ v1 checkpoints): qweight int32 [K/8, N] (column k at bits 4 (k % 8) of row
// k / 8), qzeros int32 [G, N/8] (row n at bits 4 (n % 8), holding zero - 1), scales [G, N].
// -> canonical qweight [N, K/2], zeros [N, G] (stored + 1, so 1..16), scales [N, G] (same dtype).
void gptq_to_canonical(int64_t N, int64_t K, int64_t G, const int32_t* qweight, const int32_t* qzeros,
                       const void* scales, DType sdt, uint8_t* out_q, uint8_t* out_zeros, void* out_scales);
// AWQ (AutoAWQ GEMM checkpoints): qweight int32 [K, N/8] and qzeros int32 [G, N/8], 8 values per
// word in the order 0, 2, 4, 6, 1, 3, 5, 7 (bits 4i hold n = 8c + order[i]); zeros are the zero
// itself; scales [G, N]. -> canonical.
void awq_to_canonical(int64_t N, int64_t K, int64_t G, const int32_t* qweight, const int32_t* qzeros,
                      const void* scales, DType sdt, uint8_t* out_q, uint8_t* out_zeros, void* out_scales);

}  // namespace cg
