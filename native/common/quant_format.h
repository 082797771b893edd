// INT4 and FP8 weights: the canonical host formats (the API's), the CPU layouts the kernels
// read, and the conversions between them. Plain scalar code (baseline ISA); the kernels read the
// CPU layouts with their own vector code.
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
// ---- FP8, canonical -----------------------------------------------------------------------
// codes [N, K] bytes (fp8.h), with float32 scales by unit: 'tensor' (1), 'channel' (N, one per
// row) or blocks of bn x bk ([ceil(N/bn), ceil(K/bk)], row-major). w = decode(code) * scale.
//
// ---- FP8, CPU layout ----------------------------------------------------------------------
// codes [N_pad/16][K][16] bytes (k-major inside a panel of 16 rows; N padded to a multiple of
// 32 with zero codes); the scales again per lane, [N_pad/16][ceil(K/bk)][16] float32 (row n's
// scale for K block b at lane n % 16; 0 for padding rows), so a kernel loads a block's 16
// scales with one vector load; and the canonical scales unchanged.
#pragma once
#include <cstdint>

#include "dtype.h"
#include "fp8.h"

namespace cg {

// ---- INT4 ---------------------------------------------------------------------------------

constexpr int kQuantPanel = 16;
constexpr int kQuantNAlign = 32;
static inline int64_t quant_padded_rows(int64_t N) { return (N + kQuantNAlign - 1) / kQuantNAlign * kQuantNAlign; }
static inline int int4_shift(int j) { return j < 4 ? 8 * j : 8 * (j - 4) + 4; }

struct Int4Dims {
  int64_t N, K, group;  // group = K for per-channel
  int64_t groups() const { return K / group; }
};

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

// ---- FP8 ----------------------------------------------------------------------------------

struct Fp8Dims {
  int64_t N, K;
  int64_t bn, bk;  // scale unit: tensor = (N, K), channel = (1, K), block = (bn, bk)
  int64_t scale_rows() const { return (N + bn - 1) / bn; }
  int64_t scale_cols() const { return (K + bk - 1) / bk; }
  int64_t scales() const { return scale_rows() * scale_cols(); }
};

static inline int64_t fp8_codes_bytes(const Fp8Dims& d) { return quant_padded_rows(d.N) * d.K; }
// The one buffer an Fp8Weight holds: codes (CPU layout), the per-lane scales, then the
// canonical float32 scales.
static inline int64_t fp8_lane_scales_off(const Fp8Dims& d) { return align64(fp8_codes_bytes(d)); }
static inline int64_t fp8_scales_off(const Fp8Dims& d) {
  return fp8_lane_scales_off(d) + align64(quant_padded_rows(d.N) * d.scale_cols() * 4);
}
static inline int64_t fp8_bytes(const Fp8Dims& d) { return fp8_scales_off(d) + d.scales() * 4; }

// scale = amax / max_value(format) per unit (1 for an all-zero unit), code = encode(w / scale).
// Returns -1, or the flat index of the first non-finite weight.
int64_t fp8_quantize(const Fp8Dims& d, const float* w, Fp8Format f, uint8_t* codes, float* scales);

// Canonical codes [N, K] and scales -> the whole CPU buffer (fp8_bytes(d) bytes); and back.
void fp8_pack(const Fp8Dims& d, const uint8_t* codes, const float* scales, uint8_t* packed);
void fp8_unpack(const Fp8Dims& d, const uint8_t* cpu_codes, uint8_t* codes);
void fp8_dequant(const Fp8Dims& d, const uint8_t* cpu_codes, const float* scales, Fp8Format f, float* out);

}  // namespace cg
