// A weight's CPU placement (cpu/placement.h), all [sync]:
//   place({ weight, values?, meta?, qweight?, scales?, zeros?, codes? }) -> ArrayBuffer
//       the CPU layout, made from the canonical arrays (weight: a descriptor without data);
//   canonical({ weight, values?, meta?, qweight?, scales?, zeros?, codes? })
//       the canonical arrays, written from the placement weight.data;
//   toDense({ weight, out })   the dense matrix (dense, 2:4: weight dtype; int4, fp8: float32).
#include "binding/args.h"
#include "binding/canonical_args.h"
#include "binding/cpu/entry_points.h"
#include "binding/weight_desc.h"
#include "cpu/placement.h"

namespace cg {
namespace binding {
namespace {

Napi::Object weight_object(const Napi::Object& o) {
  Napi::Value wv = o.Get("weight");
  if (!wv.IsObject()) throw_type(o.Env(), "weight must be a weight descriptor");
  return wv.As<Napi::Object>();
}

Napi::Value Place(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  WeightArg w;
  read_weight_params(weight_object(o), w);
  const CanonicalParts c = canonical_parts_of(o, w.desc);
  auto out = Napi::ArrayBuffer::New(info.Env(), cpu_placement_bytes(w.desc));
  cpu_place(w.desc, c, static_cast<uint8_t*>(out.Data()));
  return out;
}

Napi::Value Canonical(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  WeightArg w;
  read_weight(weight_object(o), cpu_placement_bytes, w);
  cpu_canonical(w.desc, canonical_parts_of(o, w.desc));
  return info.Env().Undefined();
}

Napi::Value ToDense(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  WeightArg w;
  read_weight(weight_object(o), cpu_placement_bytes, w);
  const WeightDesc& d = w.desc;
  const bool quantized = d.format == WeightFormat::Int4 || d.format == WeightFormat::Fp8;
  Bytes out = bytes_sized(o, "out", size_t(d.N * d.K) * size_t(quantized ? 4 : dtype_size(d.dtype)));
  cpu_to_dense(d, out.data);
  return info.Env().Undefined();
}

}  // namespace

void register_placement(Napi::Env env, Napi::Object exports) {
  exports.Set("place", Napi::Function::New(env, Place));
  exports.Set("canonical", Napi::Function::New(env, Canonical));
  exports.Set("toDense", Napi::Function::New(env, ToDense));
}

}  // namespace binding
}  // namespace cg
