// The canonical formats (native/formats/, backend-independent), all [sync]:
//   convert({ src, srcDtype, dst, dstDtype })                 element-wise, round to nearest even
//   fp8Encode({ src: Float32Array, dst: Uint8Array, format }) / fp8Decode({ src, dst, format })
//   sparse24Encode({ weight, mode: 'prune'|'compress', data, values, meta }) -> bad
//   int4Quantize({ weight, data, qweight, scales, zeros }) -> { bad, reason }
//   fp8Quantize({ weight, data, codes, scales }) -> bad
//   gptqToCanonical / awqToCanonical({ N, K, G, qweight, qzeros, scales, scaleDtype, outQ, outZeros, outScales })
// `weight` is a weight descriptor without data (binding/weight_desc.h); `data` the dense float
// matrix to encode; the canonical arrays are written into the caller's arrays.
#include <string>

#include "binding/args.h"
#include "binding/canonical_args.h"
#include "binding/cpu/entry_points.h"
#include "binding/weight_desc.h"
#include "cg/fp8.h"
#include "formats/fp8_weight.h"
#include "formats/int4.h"
#include "formats/sparse24.h"

namespace cg {
namespace binding {
namespace {

Napi::Value Convert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const DType sdt = dtype_of(o, "srcDtype"), ddt = dtype_of(o, "dstDtype");
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  const size_t n = src.length / size_t(dtype_size(sdt));
  need(env, src.length % size_t(dtype_size(sdt)) == 0 && dst.length == n * size_t(dtype_size(ddt)), "src and dst lengths differ");
  for (size_t i = 0; i < n; ++i) store_from_f32(dst.data, ddt, int64_t(i), load_as_f32(src.data, sdt, int64_t(i)));
  return env.Undefined();
}

Napi::Value Fp8Encode(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const Fp8Format f = fp8_format_of(o, "format");
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  need(info.Env(), src.length == dst.length * 4, "src and dst lengths differ");
  const float* x = reinterpret_cast<const float*>(src.data);
  for (size_t i = 0; i < dst.length; ++i) dst.data[i] = fp8_encode(x[i], f);
  return info.Env().Undefined();
}

Napi::Value Fp8Decode(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const Fp8Format f = fp8_format_of(o, "format");
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  need(info.Env(), dst.length == src.length * 4, "src and dst lengths differ");
  float* y = reinterpret_cast<float*>(dst.data);
  for (size_t i = 0; i < src.length; ++i) y[i] = fp8_decode(src.data[i], f);
  return info.Env().Undefined();
}

// The weight descriptor of o.weight, which must be of `format`.
WeightDesc weight_params_of(const Napi::Object& o, WeightFormat format) {
  Napi::Value wv = o.Get("weight");
  if (!wv.IsObject()) throw_type(o.Env(), "weight must be a weight descriptor");
  WeightArg w;
  read_weight_params(wv.As<Napi::Object>(), w);
  need(o.Env(), w.desc.format == format && w.desc.perm == nullptr, "the weight descriptor has the wrong format");
  return w.desc;
}

// -1, or (compress only) the flat index row * (K/4) + group of the first group that is not 2:4.
Napi::Value Sparse24Encode(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const WeightDesc d = weight_params_of(o, WeightFormat::Sparse24);
  Bytes data = bytes_sized(o, "data", size_t(d.N * d.K) * size_t(dtype_size(d.dtype)));
  const CanonicalParts c = canonical_parts_of(o, d);
  const std::string mode = string_of(o, "mode");
  need(info.Env(), mode == "prune" || mode == "compress", "mode is not prune or compress");
  int64_t bad = -1;
  if (mode == "prune") sparse24_prune(data.data, d.dtype, d.N, d.K, c.values, c.meta);
  else bad = sparse24_compress(data.data, d.dtype, d.N, d.K, c.values, c.meta);
  return Napi::Number::New(info.Env(), double(bad));
}

// { bad, reason }: bad is -1, or the flat index of the first offending weight, reason 1 = not
// finite, 2 = its group's scale exceeds the scale dtype's range.
Napi::Value Int4Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const WeightDesc d = weight_params_of(o, WeightFormat::Int4);
  Bytes data = bytes_sized(o, "data", size_t(d.N * d.K) * 4);
  const CanonicalParts c = canonical_parts_of(o, d);
  int reason = 0;
  const int64_t bad = int4_quantize(Int4Dims{d.N, d.K, d.group}, reinterpret_cast<const float*>(data.data), d.symmetric,
                                    d.scale_dtype, c.qweight, c.scales, c.zeros, &reason);
  auto out = Napi::Object::New(env);
  out.Set("bad", Napi::Number::New(env, double(bad)));
  out.Set("reason", Napi::Number::New(env, reason));
  return out;
}

// -1, or the flat index of the first non-finite weight.
Napi::Value Fp8Quantize(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const WeightDesc d = weight_params_of(o, WeightFormat::Fp8);
  Bytes data = bytes_sized(o, "data", size_t(d.N * d.K) * 4);
  const CanonicalParts c = canonical_parts_of(o, d);
  return Napi::Number::New(info.Env(), double(fp8_quantize(Fp8Dims{d.N, d.K, d.bn, d.bk}, reinterpret_cast<const float*>(data.data),
                                                           d.fp8_format, c.codes, static_cast<float*>(c.scales))));
}

template <bool kAwq>
Napi::Value PackedToCanonical(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const int64_t N = int_of(o, "N", 8, kMaxDim), K = int_of(o, "K", 8, kMaxDim), G = int_of(o, "G", 1, kMaxDim);
  need(env, N * K < kMaxDim && N % 8 == 0 && K % 8 == 0 && K % G == 0, "bad packed INT4 dimensions");
  const DType sdt = dtype_of(o, "scaleDtype");
  need(env, sdt != DType::BF16, "INT4 scales are float16 or float32");
  const size_t scale_bytes = size_t(G * N) * size_t(dtype_size(sdt));
  Bytes qw = bytes_sized(o, "qweight", size_t(N * K / 8) * 4), qz = bytes_sized(o, "qzeros", size_t(G * N / 8) * 4);
  Bytes sc = bytes_sized(o, "scales", scale_bytes);
  Bytes oq = bytes_sized(o, "outQ", size_t(N * K / 2)), oz = bytes_sized(o, "outZeros", size_t(N * G));
  Bytes os = bytes_sized(o, "outScales", scale_bytes);
  const int32_t* q = reinterpret_cast<const int32_t*>(qw.data);
  const int32_t* z = reinterpret_cast<const int32_t*>(qz.data);
  if (kAwq) awq_to_canonical(N, K, G, q, z, sc.data, sdt, oq.data, oz.data, os.data);
  else gptq_to_canonical(N, K, G, q, z, sc.data, sdt, oq.data, oz.data, os.data);
  return env.Undefined();
}

}  // namespace

void register_formats(Napi::Env env, Napi::Object exports) {
  exports.Set("convert", Napi::Function::New(env, Convert));
  exports.Set("fp8Encode", Napi::Function::New(env, Fp8Encode));
  exports.Set("fp8Decode", Napi::Function::New(env, Fp8Decode));
  exports.Set("sparse24Encode", Napi::Function::New(env, Sparse24Encode));
  exports.Set("int4Quantize", Napi::Function::New(env, Int4Quantize));
  exports.Set("fp8Quantize", Napi::Function::New(env, Fp8Quantize));
  exports.Set("gptqToCanonical", Napi::Function::New(env, PackedToCanonical<false>));
  exports.Set("awqToCanonical", Napi::Function::New(env, PackedToCanonical<true>));
}

}  // namespace binding
}  // namespace cg
