// The 2:4 sparse linear, AVX2 build of sparse24_impl.h: panel-kernel tiles of 3 rows of x x 16
// weight rows; M-vectorised tiles of 3 weight rows x 32 rows of x over 256-column K slices (XT
// slice = 32 KiB, in L1).
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "cpu/runtime/scratch.h"
#include "cpu/layout/sparse24.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace avx2 {
namespace {
#include "cpu/impl/simd_avx2.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
constexpr int kPermMR = 3;
constexpr int kPermNV = 2;
constexpr int64_t kPanelKC = 1024;
constexpr int kColMV = 4;
constexpr int kColNRS = 3;
constexpr int kColKC = 256;
constexpr int64_t kSparseColwiseFromM = 128;
#include "cpu/impl/sparse24_impl.h"
}  // namespace

bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt) { return sparse24_linear_impl(p, packed, wdt); }

}  // namespace avx2
}  // namespace cg
#endif
