// Argument readers shared by every entry point of both addons (sharp's `AttrAsInt32` habit): each
// reads one property of the plain object that lib/ passes, checks what protects memory (type,
// range, buffer length), and throws a coded JS error otherwise.
//
// lib/ validates every argument before it calls native code, so these checks are the last line:
// reaching one means a caller bypassed lib/ (or lib/ has a bug), and the error says so with
// code ERR_NATIVE. Nothing here aborts.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "cg/dtype.h"
#include "cg/fp8.h"

namespace cg {
namespace binding {

// Sizes: every dimension and every product of two is below 2^31 elements.
constexpr int64_t kMaxDim = int64_t(1) << 31;

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

Napi::Error coded(Napi::Error e, const char* code);
[[noreturn]] void throw_type(const Napi::Env& env, const std::string& msg);
[[noreturn]] void throw_range(const Napi::Env& env, const std::string& msg);
static inline void need(const Napi::Env& env, bool ok, const std::string& msg) {
  if (!ok) throw_range(env, msg);
}
Napi::Error out_of_memory(const Napi::Env& env);

// The single object argument every entry point takes.
Napi::Object object_arg(const Napi::CallbackInfo& info);

// Any TypedArray (over an ArrayBuffer or a SharedArrayBuffer) or ArrayBuffer, as bytes; a
// detached one reads as (nullptr, 0).
Bytes bytes_of(const Napi::Value& v, const char* what);
// bytes_of(o[key]) that must hold exactly `length` bytes.
Bytes bytes_sized(const Napi::Object& o, const char* key, size_t length);
// o[key] absent (undefined or null), or bytes_sized.
Bytes optional_bytes_sized(const Napi::Object& o, const char* key, size_t length);

// Whether two byte ranges share memory (compared by address, not by which JS object holds them).
static inline bool overlap(const Bytes& a, const Bytes& b) {
  return a.data && b.data && a.length && b.length && a.data < b.data + b.length && b.data < a.data + a.length;
}

int64_t int_of(const Napi::Object& o, const char* key, int64_t lo, int64_t hi);
float finite_float_of(const Napi::Object& o, const char* key);
bool bool_of(const Napi::Object& o, const char* key);
std::string string_of(const Napi::Object& o, const char* key);

DType dtype_of(const Napi::Object& o, const char* key);
Fp8Format fp8_format_of(const Napi::Object& o, const char* key);

}  // namespace binding
}  // namespace cg
