// The CPU placement of an INT4 weight: the layout its CPU kernels read, made from the canonical
// format (formats/int4.h) when the weight is placed on the CPU.
//
// ---- INT4, CPU layout ---------------------------------------------------------------------
// Act-order weights are stored with their columns permuted so that groups are contiguous (the
// linear permutes x the same way). Rows in panels of 16 (N padded to a multiple of 32 with zero
// rows: q = 0, z = 0, s = 0). For panel p:
//   codes  [K/8][16] uint32 at codes + (p * K/8 + c) * 64 bytes: lane l's word holds the 8 codes
//          of columns 8c..8c+7 as byte j = q[8c + j] | q[8c + 4 + j] << 4 (j = 0..3), so that
//          `word & 0x0f0f0f0f` is the bytes of columns 8c..8c+3 and `(word >> 4) & 0x0f0f0f0f`
//          those of 8c+4..8c+7 (what AVX512-VNNI's u8 x s8 dot product wants), and column
//          8c + j alone is `(word >> kInt4Shift[j]) & 15`;
//   scales [G][16] float32 and zeros [G][16] float32 at (p * G + g) * 16 floats.
//
#pragma once
#include <cstdint>
#include "cg/dtype.h"
#include "formats/int4.h"

namespace cg {

constexpr int kQuantPanel = 16;
constexpr int kQuantNAlign = 32;
static inline int64_t quant_padded_rows(int64_t N) { return (N + kQuantNAlign - 1) / kQuantNAlign * kQuantNAlign; }
static inline int int4_shift(int j) { return j < 4 ? 8 * j : 8 * (j - 4) + 4; }

static inline int64_t int4_codes_bytes(const Int4Dims& d) { return quant_padded_rows(d.N) * (d.K / 2); }
static inline int64_t int4_scale_floats(const Int4Dims& d) { return quant_padded_rows(d.N) * d.groups(); }
static inline int64_t align64(int64_t b) { return (b + 63) / 64 * 64; }

// The one buffer an Int4Weight holds: codes, then scales, then zeros (64-byte aligned parts).
struct Int4Layout {
  int64_t scales_off, zeros_off, bytes;
};
static inline Int4Layout int4_layout(const Int4Dims& d) {
  const int64_t s = align64(int4_codes_bytes(d)), fl = int4_scale_floats(d) * 4;
  return {s, s + align64(fl), s + 2 * align64(fl)};
}

// Canonical -> CPU layout. scales in sdt (F32 or F16), zeros may be null (symmetric: 8).
// perm (may be null): the CPU layout's column c holds canonical column perm[c].
void int4_pack(const Int4Dims& d, const uint8_t* qweight, const void* scales, DType sdt, const uint8_t* zeros,
               const int32_t* perm, uint8_t* codes, float* cpu_scales, float* cpu_zeros);
// CPU layout -> canonical (qweight, scales in sdt, zeros if not null), undoing perm.
void int4_unpack(const Int4Dims& d, const uint8_t* codes, const float* cpu_scales, const float* cpu_zeros,
                 const int32_t* perm, uint8_t* qweight, void* scales, DType sdt, uint8_t* zeros);
// Dequantized float32 [N, K] in canonical column order.
void int4_dequant(const Int4Dims& d, const uint8_t* codes, const float* cpu_scales, const float* cpu_zeros,
                  const int32_t* perm, float* out);

}  // namespace cg
