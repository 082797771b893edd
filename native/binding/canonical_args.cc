#include "binding/canonical_args.h"

#include "binding/args.h"

namespace cg {
namespace binding {

CanonicalParts canonical_parts_of(const Napi::Object& o, const WeightDesc& d) {
  const CanonicalSizes s = canonical_sizes(d);
  auto part = [&](const char* key, size_t n) -> uint8_t* { return n ? bytes_sized(o, key, n).data : nullptr; };
  CanonicalParts c;
  c.values = part("values", s.values);
  c.meta = part("meta", s.meta);
  c.qweight = part("qweight", s.qweight);
  c.scales = part("scales", s.scales);
  c.zeros = part("zeros", s.zeros);
  c.codes = part("codes", s.codes);
  return c;
}

}  // namespace binding
}  // namespace cg
