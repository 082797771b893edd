#include "binding/args.h"

#include <cmath>

#include "cg/weight.h"

namespace cg {
namespace binding {

Napi::Error coded(Napi::Error e, const char* code) {
  e.Set("code", Napi::String::New(e.Env(), code));
  return e;
}

void throw_type(const Napi::Env& env, const std::string& msg) {
  throw coded(Napi::TypeError::New(env, "compressed-gemm native check: " + msg), "ERR_NATIVE");
}

void throw_range(const Napi::Env& env, const std::string& msg) {
  throw coded(Napi::RangeError::New(env, "compressed-gemm native check: " + msg), "ERR_NATIVE");
}

Napi::Error out_of_memory(const Napi::Env& env) {
  return coded(Napi::Error::New(env, "compressed-gemm: out of memory for the kernel's buffers"), "ERR_OUT_OF_MEMORY");
}

Napi::Object object_arg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type(info.Env(), "expected one object argument");
  return info[0].As<Napi::Object>();
}

Bytes bytes_of(const Napi::Value& v, const char* what) {
  napi_env env = v.Env();
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok)
      throw_type(v.Env(), std::string(what) + ": cannot read the TypedArray");
    size_t elem = 4;
    switch (type) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 4; break;
    }
    // data already points at the view's first byte; a detached view reads as (null, 0).
    return {static_cast<uint8_t*>(data), length * elem};
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw_type(v.Env(), std::string(what) + " must be a TypedArray");
}

Bytes bytes_sized(const Napi::Object& o, const char* key, size_t length) {
  Bytes b = bytes_of(o.Get(key), key);
  need(o.Env(), b.length == length && (b.data != nullptr || length == 0), std::string(key) + " has the wrong length");
  return b;
}

Bytes optional_bytes_sized(const Napi::Object& o, const char* key, size_t length) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return {};
  return bytes_sized(o, key, length);
}

int64_t int_of(const Napi::Object& o, const char* key, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_type(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(lo) && d <= double(hi)) || std::floor(d) != d) throw_range(o.Env(), std::string(key) + " out of range");
  return int64_t(d);
}

float finite_float_of(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_type(o.Env(), std::string(key) + " must be a number");
  const float f = float(v.As<Napi::Number>().DoubleValue());
  need(o.Env(), std::isfinite(f), std::string(key) + " must be a finite float32");
  return f;
}

bool bool_of(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw_type(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string string_of(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw_type(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

DType dtype_of(const Napi::Object& o, const char* key) {
  const int d = dtype_from_name(string_of(o, key).c_str());
  need(o.Env(), d >= 0, std::string(key) + " is not float32, float16 or bfloat16");
  return DType(d);
}

Fp8Format fp8_format_of(const Napi::Object& o, const char* key) {
  const int f = fp8_format_from_name(string_of(o, key).c_str());
  need(o.Env(), f >= 0, std::string(key) + " is not e4m3 or e5m2");
  return Fp8Format(f);
}

}  // namespace binding
}  // namespace cg
