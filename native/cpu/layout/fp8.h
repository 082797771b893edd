// The CPU placement of an FP8 weight: the layout its CPU kernels read, made from the canonical
// format (formats/fp8_weight.h) when the weight is placed on the CPU.
//
// ---- FP8, CPU layout ----------------------------------------------------------------------
// codes [N_pad/16][K][16] bytes (k-major inside a panel of 16 rows; N padded to a multiple of
// 32 with zero codes); the scales again per lane, [N_pad/16][ceil(K/bk)][16] float32 (row n's
// scale for K block b at lane n % 16; 0 for padding rows), so a kernel loads a block's 16
// scales with one vector load; and the canonical scales unchanged.
#pragma once
#include <cstdint>
#include "cpu/layout/int4.h"  // kQuantPanel, quant_padded_rows, align64: the panel shared by both
#include "formats/fp8_weight.h"

namespace cg {

static inline int64_t fp8_codes_bytes(const Fp8Dims& d) { return quant_padded_rows(d.N) * d.K; }
// The one buffer an Fp8Weight holds: codes (CPU layout), the per-lane scales, then the
// canonical float32 scales.
static inline int64_t fp8_lane_scales_off(const Fp8Dims& d) { return align64(fp8_codes_bytes(d)); }
static inline int64_t fp8_scales_off(const Fp8Dims& d) {
  return fp8_lane_scales_off(d) + align64(quant_padded_rows(d.N) * d.scale_cols() * 4);
}
static inline int64_t fp8_bytes(const Fp8Dims& d) { return fp8_scales_off(d) + d.scales() * 4; }

// Canonical codes [N, K] and scales -> the whole CPU buffer (fp8_bytes(d) bytes); and back.
void fp8_pack(const Fp8Dims& d, const uint8_t* codes, const float* scales, uint8_t* packed);
void fp8_unpack(const Fp8Dims& d, const uint8_t* cpu_codes, uint8_t* codes);
void fp8_dequant(const Fp8Dims& d, const uint8_t* cpu_codes, const float* scales, Fp8Format f, float* out);

}  // namespace cg
