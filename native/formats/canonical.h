// The canonical arrays of a weight of any format, as one struct, and their sizes: what lib/
// hands to a backend when it places a weight, and what it gets back from any placement.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/weight.h"

namespace cg {

// The canonical arrays of a weight (README "Formats"); each format uses some of them:
//   dense   values [N, K] (dtype)
//   2:4     values [N, K/2] (dtype), meta [N, ceil(K/8)]
//   int4    qweight [N, K/2], scales [N, G] (scale_dtype), zeros [N, G] (nullptr when symmetric)
//   fp8     codes [N, K], scales (float32, one per bn x bk unit)
struct CanonicalParts {
  void* values = nullptr;
  uint8_t* meta = nullptr;
  uint8_t* qweight = nullptr;
  void* scales = nullptr;
  uint8_t* zeros = nullptr;
  uint8_t* codes = nullptr;
};

// Byte lengths of the canonical arrays of d (0 where the format has no such array).
struct CanonicalSizes {
  size_t values = 0, meta = 0, qweight = 0, scales = 0, zeros = 0, codes = 0;
};
CanonicalSizes canonical_sizes(const WeightDesc& d);

}  // namespace cg
