// Reads the canonical arrays of a weight (formats/canonical.h) from the properties lib/ names
// them by: values, meta, qweight, scales, zeros, codes, each checked against its size.
#pragma once
#include <napi.h>

#include "formats/canonical.h"

namespace cg {
namespace binding {

CanonicalParts canonical_parts_of(const Napi::Object& o, const WeightDesc& d);

}  // namespace binding
}  // namespace cg
