// W <- W + alpha * B * A (lowrank.h), portable (one-lane) build of lowrank_impl.h.

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cg/fp8.h"
#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/layout/sparse24.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"
#include "cpu/lowrank.h"

namespace cg {
namespace scalar {
namespace {
#include "cpu/impl/simd_scalar.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/lowrank_impl.h"
}  // namespace

int64_t lowrank_update(const LowRankUpdate& u) { return lowrank_update_impl(u); }

}  // namespace scalar
}  // namespace cg

