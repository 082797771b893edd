// The dense linear, AVX-512 build of dense_impl.h (14 x 32 register tiles).
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

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
#include "cpu/isa/avx512/tuning.h"
#include "cpu/impl/dense_impl.h"
}  // namespace

bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt) { return dense_linear_impl(p, wpacked, wdt); }

}  // namespace avx512
}  // namespace cg
#endif
