// The CPU placement of a 2:4 weight: the layout Sparse24Weight's CPU kernels read, made from the
// canonical format (formats/sparse24.h) when the weight is placed on the CPU.
#pragma once
#include <cstdint>
#include "cg/dtype.h"
#include "formats/sparse24.h"

namespace cg {

// ---- The CPU layout (what Sparse24Weight holds, and the CPU kernels read) -------------------
// Rows in panels of 16 (N padded with zero rows to a multiple of 32, so that tiles of two
// panels always exist); K in superblocks of 32 columns = 8 groups (K padded with zero groups to
// a multiple of 32). Panel p, superblock s occupies kSp24SuperBytes(es) bytes at
// (p * S + s) * kSp24SuperBytes(es), S = ceil(K / 32), and holds
//   values [8 groups][2 slots][16 lanes] in the weight dtype, lane = row % 16; slot 0 is the
//          value at the group's lower kept column, slot 1 at the higher one;
//   codes  [8 groups] of 8 bytes (little-endian uint64): lane l's canonical 4-bit code (bits 0-1
//          the lower column, bits 2-3 the higher) at bit (l % 2) * 32 + (l / 2) * 4, so that one
//          64-bit broadcast and one per-lane shift put every lane's code in its own 32-bit lane.
// Padding (rows past N, groups past K) holds zero values and code 0b0100 (columns 0 and 1).
// Every superblock is a multiple of 64 bytes: 1088 for float32, 576 for the 16-bit types.
constexpr int kSp24Panel = 16;
constexpr int kSp24NAlign = 32;
constexpr int kSp24SuperCols = 32;
constexpr int kSp24SuperGroups = kSp24SuperCols / 4;
static inline int64_t sp24_value_bytes(int es) { return int64_t(kSp24SuperGroups) * 2 * kSp24Panel * es; }
static inline int64_t sp24_super_bytes(int es) { return sp24_value_bytes(es) + kSp24SuperGroups * 8; }
static inline int64_t sp24_padded_rows(int64_t N) { return (N + kSp24NAlign - 1) / kSp24NAlign * kSp24NAlign; }
static inline int64_t sp24_supers(int64_t K) { return (K + kSp24SuperCols - 1) / kSp24SuperCols; }
static inline int64_t sp24_packed_bytes(int64_t N, int64_t K, int es) {
  return sp24_padded_rows(N) / kSp24Panel * sp24_supers(K) * sp24_super_bytes(es);
}
// The bit of lane l's code in a group's 64-bit code word.
static inline int sp24_code_shift(int lane) { return (lane % 2) * 32 + (lane / 2) * 4; }

// Canonical (values, meta) -> CPU layout, and back. Exact (values move as raw bits).
void sparse24_pack(const void* values, const uint8_t* meta, DType dt, int64_t N, int64_t K, void* packed);
void sparse24_unpack(const void* packed, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta);

}  // namespace cg
