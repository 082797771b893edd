// The 2:4 sparse linear, AVX-512 build of sparse24_impl.h: panel-kernel tiles of 10 rows of x
// x 32 weight rows; M-vectorised tiles of 3 weight rows x 128 rows of x over 64-column K slices
// (XT slice = 32 KiB, in L1).
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "cpu/runtime/scratch.h"
#include "cpu/layout/sparse24.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace avx512 {
namespace {
#include "cpu/impl/simd_avx512.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
constexpr int kPermMR = 10;
// Two panels per tile: one-panel tiles of 16 or 20 rows of x (half the weight bytes per FMA
// from L2) measured 0.68-0.98x at M = 16-64 (tune-ab, 4096 x 11008 and 11008 x 4096, 2026-12-04),
// and 2.4-3.0 against 3.2-3.4 G FMA/s with their weights in L2.
constexpr int kPermNV = 2;
constexpr int64_t kPanelKC = 1024;
constexpr int kColMV = 8;
constexpr int kColNRS = 3;
#ifndef CG_COL_KC
#define CG_COL_KC 64
#endif
constexpr int kColKC = CG_COL_KC;
constexpr int64_t kSparseColwiseFromM = 128;
#include "cpu/impl/sparse24_impl.h"
}  // namespace

bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt) { return sparse24_linear_impl(p, packed, wdt); }

}  // namespace avx512
}  // namespace cg
#endif
