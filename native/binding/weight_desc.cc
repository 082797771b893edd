#include "binding/weight_desc.h"

#include <string>

namespace cg {
namespace binding {

void read_weight_params(const Napi::Object& o, WeightArg& w) {
  const Napi::Env env = o.Env();
  WeightDesc& d = w.desc;
  const int f = weight_format_from_name(string_of(o, "format").c_str());
  need(env, f >= 0, "format is not dense, 2:4, int4 or fp8");
  d.format = WeightFormat(f);
  d.N = int_of(o, "N", 1, kMaxDim - 1);
  d.K = int_of(o, "K", 1, kMaxDim - 1);
  need(env, d.N * d.K < kMaxDim, "N*K must be below 2^31");
  switch (d.format) {
    case WeightFormat::Dense:
      d.dtype = dtype_of(o, "dtype");
      break;
    case WeightFormat::Sparse24:
      d.dtype = dtype_of(o, "dtype");
      need(env, d.K % 4 == 0, "2:4 weights need K to be a multiple of 4");
      break;
    case WeightFormat::Int4: {
      d.group = int_of(o, "group", 8, d.K);
      need(env, d.K % 8 == 0 && d.K % d.group == 0 && d.group % 8 == 0, "bad INT4 group");
      d.symmetric = bool_of(o, "symmetric");
      d.scale_dtype = dtype_of(o, "scaleDtype");
      need(env, d.scale_dtype != DType::BF16, "INT4 scales are float16 or float32");
      Napi::Value pv = o.Get("perm");
      if (!pv.IsNull() && !pv.IsUndefined()) {
        Bytes pb = bytes_of(pv, "perm");
        need(env, pb.data != nullptr && pb.length == size_t(d.K) * 4, "perm has the wrong length");
        const int32_t* p = reinterpret_cast<const int32_t*>(pb.data);
        w.perm.assign(p, p + d.K);  // a copy: checked once, and never read from JS memory again
        std::vector<uint8_t> seen(size_t(d.K), 0);
        for (int32_t c : w.perm) {
          need(env, c >= 0 && c < d.K && !seen[size_t(c)], "perm is not a permutation of 0..K-1");
          seen[size_t(c)] = 1;
        }
        d.perm = w.perm.data();
      }
      break;
    }
    case WeightFormat::Fp8:
      d.fp8_format = fp8_format_of(o, "fp8Format");
      d.bn = int_of(o, "bn", 1, kMaxDim - 1);
      d.bk = int_of(o, "bk", 1, kMaxDim - 1);
      break;
  }
}

void read_weight(const Napi::Object& o, PlacementBytes placement_bytes, WeightArg& w) {
  read_weight_params(o, w);
  Napi::Value dv = o.Get("data");
  Bytes b = bytes_of(dv, "data");
  need(o.Env(), b.data != nullptr && b.length == placement_bytes(w.desc), "the weight's data has the wrong length");
  w.desc.data = b.data;
  w.desc.bytes = b.length;
  w.keep = Napi::Persistent(dv.As<Napi::Object>());
}

}  // namespace binding
}  // namespace cg
