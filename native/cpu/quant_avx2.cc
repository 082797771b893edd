// INT4 and FP8 weights with float32 activations, AVX2 build of quant_impl.h.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "../common/quant_format.h"
#include "../common/scratch.h"
#include "../common/thread_pool.h"
#include "kernels.h"

namespace cg {
namespace avx2 {
namespace {
#include "simd_avx2.h"
#include "convert_impl.h"
#include "gemm_tile_impl.h"
#include "gemm_driver_impl.h"
constexpr int kDenseMR = 6;
constexpr int kDenseNV = 2;
#include "dense_impl.h"
constexpr int kQdR = 2;
constexpr int64_t kQuantDirectUpToM = 8;
#include "quant_impl.h"
}  // namespace

bool quant_linear(const QuantProblem& q) { return quant_linear_impl(q); }

}  // namespace avx2
}  // namespace cg
#endif
