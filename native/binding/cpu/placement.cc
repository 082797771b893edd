// A weight's CPU placement (cpu/placement.h), all [sync]:
//   place({ weight, values?, meta?, qweight?, scales?, zeros?, codes? }) -> ArrayBuffer
//       the CPU layout, made from the canonical arrays (weight: a descriptor without data);
//   canonical({ weight, values?, meta?, qweight?, scales?, zeros?, codes? })
//       the canonical arrays, written from the placement weight.data;
//   toDense({ weight, out })   the dense matrix (dense, 2:4: weight dtype; int4, fp8: float32);
//   alignment(buffer)          the largest power of two (up to 4096) dividing its address.
#include <cstring>

#include "binding/args.h"
#include "binding/canonical_args.h"
#include "binding/cpu/entry_points.h"
#include "binding/weight_desc.h"
#include "cpu/placement.h"
#include "cpu/runtime/scratch.h"

namespace cg {
namespace binding {
namespace {

Napi::Object weight_object(const Napi::Object& o) {
  Napi::Value wv = o.Get("weight");
  if (!wv.IsObject()) throw_type(o.Env(), "weight must be a weight descriptor");
  return wv.As<Napi::Object>();
}

void free_placement(napi_env, void* data, void*) { aligned_free_bytes(data); }

// A placement's buffer starts on a 64-byte boundary, so that every panel of the layout does and
// a kernel's 64-byte load of weights touches one cache line, not two. V8's own ArrayBuffers come
// from malloc: a large one starts 16 bytes past a page (glibc's chunk header), and every
// AVX-512 load of it then spans two lines (the INT4 GEMV ran 0.6x on such a buffer). So the
// buffer is ours, handed to V8 as an external ArrayBuffer freed by the garbage collector. Where
// the runtime allows no external buffers (a V8 sandbox), a V8 buffer serves: the kernels load
// unaligned, so only their speed differs.
Napi::ArrayBuffer placement_buffer(const Napi::Env& env, size_t bytes) {
  void* mem = aligned_alloc_bytes(bytes);
  if (!mem) throw out_of_memory(env);
  std::memset(mem, 0, bytes);  // the layout's padding reads as zeros, as in a V8 buffer
  napi_value ab;
  if (napi_create_external_arraybuffer(env, mem, bytes, free_placement, nullptr, &ab) == napi_ok)
    return Napi::ArrayBuffer(env, ab);
  aligned_free_bytes(mem);
  if (env.IsExceptionPending()) env.GetAndClearPendingException();
  return Napi::ArrayBuffer::New(env, bytes);
}

Napi::Value Place(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  WeightArg w;
  read_weight_params(weight_object(o), w);
  const CanonicalParts c = canonical_parts_of(o, w.desc);
  auto out = placement_buffer(info.Env(), cpu_placement_bytes(w.desc));
  cpu_place(w.desc, c, static_cast<uint8_t*>(out.Data()));
  return out;
}

// The largest power of two, up to 4096, that divides the address of an ArrayBuffer's or a
// TypedArray's first byte (0 for no bytes): how the tests see that placements are aligned.
Napi::Value Alignment(const Napi::CallbackInfo& info) {
  if (info.Length() < 1) throw_type(info.Env(), "expected a buffer");
  const Bytes b = bytes_of(info[0], "buffer");
  const uintptr_t a = reinterpret_cast<uintptr_t>(b.data);
  uint32_t align = 0;
  if (a) for (align = 1; align < 4096 && a % (2 * align) == 0; align *= 2) {}
  return Napi::Number::New(info.Env(), align);
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
  exports.Set("alignment", Napi::Function::New(env, Alignment));
}

}  // namespace binding
}  // namespace cg
