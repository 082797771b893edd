// INT4 and FP8 weights with float32 activations, AVX2 build of quant_impl.h.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace avx2 {
namespace {
#include "cpu/impl/simd_avx2.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
#include "cpu/impl/gemm_driver_impl.h"
#include "cpu/isa/avx2/tuning.h"
#include "cpu/impl/dense_impl.h"
#include "cpu/impl/quant_impl.h"
}  // namespace

bool quant_linear(const QuantProblem& q) { return quant_linear_impl(q); }

}  // namespace avx2
}  // namespace cg
#endif
