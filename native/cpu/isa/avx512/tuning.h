// The AVX-512 builds' register tiles and thresholds, in one place: isa/avx512/dense.cc and
// isa/avx512/quant.cc compile dense_impl.h and quant_impl.h with them, and isa/amx/quant_amx.cc
// compiles the same headers for their decoders and activation preparation (it hands the rows it
// leaves to avx512::quant_linear, which runs these). Included inside
// `namespace cg::<isa> { namespace { ... } }`, before dense_impl.h.
#pragma once

// Dense: 14 rows x 32 columns (2 vectors) of partial sums in registers.
constexpr int kDenseMR = 14;
constexpr int kDenseNV = 2;

// INT4 and FP8. Direct tiles of 12 rows x 32 columns: 24 partial sums, 2 zero points, 2 code
// words, 2 decoded columns, a broadcast and the nibble table fill the 32 registers. Up to M = 64
// the direct kernels beat the dequantized tiles for FP8 (M = 16: 1.5-2x; M = 32: 1.2x; M = 64:
// about even, on Zen 5). An INT4 weight decodes more per column (shift, mask, subtract, convert)
// and is decoded again for every 12 rows of x: from M = 32 its dequantized tiles win (1.25-1.4x
// at M = 32 and 64, 2026-12-02; about even at M = 24).
constexpr int kQdR = 12;
constexpr int64_t kInt4DirectUpToM = 24;
constexpr int64_t kFp8DirectUpToM = 64;
constexpr int64_t kQuantTileK = 1024;
