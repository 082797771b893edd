// INT4 and FP8 weights with float32 activations, AVX-512 build of quant_impl.h.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace avx512 {
namespace {
#include "cpu/impl/simd_avx512.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
#include "cpu/impl/gemm_driver_impl.h"
constexpr int kDenseMR = 14;
constexpr int kDenseNV = 2;
#include "cpu/impl/dense_impl.h"
// Direct tiles of 12 rows x 32 columns: 24 partial sums, 2 zero points, 2 code words, 2 decoded
// columns, a broadcast and the nibble table fill the 32 registers. Up to M = 64 the direct
// kernels beat the dequantized tiles for FP8 (M = 16: 1.5-2x; M = 32: 1.2x; M = 64: about
// even, on Zen 5). An INT4 weight decodes more per column (shift, mask, subtract, convert) and
// is decoded again for every 12 rows of x: from M = 32 its dequantized tiles win (1.25-1.4x at
// M = 32 and 64, 2026-12-02; about even at M = 24).
constexpr int kQdR = 12;
constexpr int64_t kInt4DirectUpToM = 24;
constexpr int64_t kFp8DirectUpToM = 64;
constexpr int64_t kQuantTileK = 1024;
#include "cpu/impl/quant_impl.h"
}  // namespace

bool quant_linear(const QuantProblem& q) { return quant_linear_impl(q); }

}  // namespace avx512
}  // namespace cg
#endif
