// The AVX2 builds' register tiles and thresholds, in one place (isa/avx2/dense.cc and
// isa/avx2/quant.cc). Included inside `namespace cg::avx2 { namespace { ... } }`, before
// dense_impl.h.
#pragma once

// Dense: 6 rows x 16 columns (2 vectors) of partial sums in registers.
constexpr int kDenseMR = 6;
constexpr int kDenseNV = 2;

// INT4 and FP8: direct tiles of 2 rows, up to M = 8; then the dequantized tiles.
constexpr int kQdR = 2;
constexpr int64_t kInt4DirectUpToM = 8;
constexpr int64_t kFp8DirectUpToM = 8;
constexpr int64_t kQuantTileK = 1024;
