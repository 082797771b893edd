// W <- W + alpha * B * A (lowrank.h), AVX2 build of lowrank_impl.h.
#if defined(__x86_64__)
#include <immintrin.h>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common/fp8.h"
#include "../common/quant_format.h"
#include "../common/scratch.h"
#include "../common/sparse24_format.h"
#include "../common/thread_pool.h"
#include "kernels.h"
#include "lowrank.h"

namespace cg {
namespace avx2 {
namespace {
#include "simd_avx2.h"
#include "convert_impl.h"
#include "lowrank_impl.h"
}  // namespace

int64_t lowrank_update(const LowRankUpdate& u) { return lowrank_update_impl(u); }

}  // namespace avx2
}  // namespace cg
#endif
