// W <- W + alpha * B * A (lowrank.h), portable (one-lane) build of lowrank_impl.h.

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
namespace scalar {
namespace {
#include "simd_scalar.h"
#include "convert_impl.h"
#include "lowrank_impl.h"
}  // namespace

int64_t lowrank_update(const LowRankUpdate& u) { return lowrank_update_impl(u); }

}  // namespace scalar
}  // namespace cg

