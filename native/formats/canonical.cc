#include "formats/canonical.h"

#include "formats/fp8_weight.h"
#include "formats/int4.h"
#include "formats/sparse24.h"

namespace cg {

CanonicalSizes canonical_sizes(const WeightDesc& d) {
  CanonicalSizes s;
  const size_t es = size_t(dtype_size(d.dtype));
  switch (d.format) {
    case WeightFormat::Dense: s.values = size_t(d.N * d.K) * es; break;
    case WeightFormat::Sparse24:
      s.values = size_t(d.N * (d.K / 2)) * es;
      s.meta = size_t(d.N * sparse24_meta_row_bytes(d.K));
      break;
    case WeightFormat::Int4: {
      const size_t groups = size_t(d.N * (d.K / d.group));
      s.qweight = size_t(d.N * (d.K / 2));
      s.scales = groups * size_t(dtype_size(d.scale_dtype));
      s.zeros = d.symmetric ? 0 : groups;
      break;
    }
    case WeightFormat::Fp8:
      s.codes = size_t(d.N * d.K);
      s.scales = size_t(Fp8Dims{d.N, d.K, d.bn, d.bk}.scales()) * 4;
      break;
  }
  return s;
}

}  // namespace cg
