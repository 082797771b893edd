#include "cpu/placement.h"

#include <cstring>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/layout/fp8.h"
#include "cpu/layout/int4.h"
#include "cpu/layout/sparse24.h"

namespace cg {
namespace {
Int4Dims int4_dims(const WeightDesc& d) { return Int4Dims{d.N, d.K, d.group}; }
Fp8Dims fp8_dims(const WeightDesc& d) { return Fp8Dims{d.N, d.K, d.bn, d.bk}; }
}  // namespace

size_t cpu_placement_bytes(const WeightDesc& d) {
  switch (d.format) {
    case WeightFormat::Dense: return size_t(dense_packed_elems(d.N, d.K)) * size_t(dtype_size(d.dtype));
    case WeightFormat::Sparse24: return size_t(sp24_packed_bytes(d.N, d.K, dtype_size(d.dtype)));
    case WeightFormat::Int4: return size_t(int4_layout(int4_dims(d)).bytes);
    case WeightFormat::Fp8: return size_t(fp8_bytes(fp8_dims(d)));
  }
  return 0;
}

void cpu_place(const WeightDesc& d, const CanonicalParts& c, uint8_t* out) {
  switch (d.format) {
    case WeightFormat::Dense: dense_pack(c.values, d.dtype, d.N, d.K, out); break;
    case WeightFormat::Sparse24: sparse24_pack(c.values, c.meta, d.dtype, d.N, d.K, out); break;
    case WeightFormat::Int4: {
      const Int4Dims dims = int4_dims(d);
      const Int4Layout L = int4_layout(dims);
      std::memset(out, 0, size_t(L.bytes));
      int4_pack(dims, c.qweight, c.scales, d.scale_dtype, d.symmetric ? nullptr : c.zeros, d.perm, out,
                reinterpret_cast<float*>(out + L.scales_off), reinterpret_cast<float*>(out + L.zeros_off));
      break;
    }
    case WeightFormat::Fp8: fp8_pack(fp8_dims(d), c.codes, static_cast<const float*>(c.scales), out); break;
  }
}

void cpu_canonical(const WeightDesc& d, const CanonicalParts& out) {
  switch (d.format) {
    case WeightFormat::Dense: dense_unpack(d.data, d.dtype, d.N, d.K, out.values); break;
    case WeightFormat::Sparse24: sparse24_unpack(d.data, d.dtype, d.N, d.K, out.values, out.meta); break;
    case WeightFormat::Int4: {
      const Int4Dims dims = int4_dims(d);
      const Int4Layout L = int4_layout(dims);
      int4_unpack(dims, d.data, reinterpret_cast<const float*>(d.data + L.scales_off),
                  reinterpret_cast<const float*>(d.data + L.zeros_off), d.perm, out.qweight, out.scales, d.scale_dtype,
                  d.symmetric ? nullptr : out.zeros);
      break;
    }
    case WeightFormat::Fp8: {
      const Fp8Dims dims = fp8_dims(d);
      fp8_unpack(dims, d.data, out.codes);
      std::memcpy(out.scales, d.data + fp8_scales_off(dims), size_t(dims.scales()) * 4);
      break;
    }
  }
}

void cpu_to_dense(const WeightDesc& d, void* out) {
  switch (d.format) {
    case WeightFormat::Dense: dense_unpack(d.data, d.dtype, d.N, d.K, out); break;
    case WeightFormat::Sparse24: {
      const CanonicalSizes s = canonical_sizes(d);
      std::vector<uint8_t> values(s.values), meta(s.meta);
      sparse24_unpack(d.data, d.dtype, d.N, d.K, values.data(), meta.data());
      sparse24_to_dense(values.data(), meta.data(), d.dtype, d.N, d.K, out);
      break;
    }
    case WeightFormat::Int4: {
      const Int4Dims dims = int4_dims(d);
      const Int4Layout L = int4_layout(dims);
      int4_dequant(dims, d.data, reinterpret_cast<const float*>(d.data + L.scales_off),
                   reinterpret_cast<const float*>(d.data + L.zeros_off), d.perm, static_cast<float*>(out));
      break;
    }
    case WeightFormat::Fp8: {
      const Fp8Dims dims = fp8_dims(d);
      fp8_dequant(dims, d.data, reinterpret_cast<const float*>(d.data + fp8_scales_off(dims)), d.fp8_format,
                  static_cast<float*>(out));
      break;
    }
  }
}

}  // namespace cg
