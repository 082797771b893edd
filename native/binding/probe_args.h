// runProbe's arguments and result, shared by both addons' runProbe: the simulated device's
// (native/binding/cuda_sim/probes.cc) and the real CUDA addon's (native/cuda/binding_probes.cc),
// so that one JS call means the same probe, with the same inputs, on either.
//
// parse_probe(o) reads and checks args (see probes.cc for what each kind takes) into a
// ProbeRequest: the probe to launch and its input bytes, in the order its launcher takes them.
// Each addon copies the inputs into its own "global memory" (16-byte aligned host memory on the
// simulated device, cudaMalloc'd memory on a GPU), launches, and reads back out_words uint32
// registers; probe_result() makes the JS answer { ok, error, regs }.
//
// Header-only and self-contained (N-API and the standard library; no binding/args.cc), because
// the CUDA addon does not link args.cc. Its argument errors are those of binding/args.h: a
// TypeError or RangeError with code ERR_NATIVE and the message prefix "compressed-gemm native
// check: ". Plain C++: the CUDA addon's .cc files are compiled by the host compiler.
#pragma once
#include <napi.h>

#include "binding/args.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace cg {
namespace binding {
namespace probe_args {

// Sizes that the probe kernels (native/cuda/probes/probe_kernels.cuh) take as given; the
// simulated device's probes.cc static_asserts that they equal the kernels' own constants.
constexpr size_t kLdmSmemBytes = 32 * 32;  // probes::kLdmSmemBytes
constexpr size_t kTileABytes = 16 * 32 * 2;  // probes::kTileABytes: A 16x32, 16-bit
constexpr size_t kTileBBytes = 32 * 8 * 2;   // probes::kTileBBytes: B 32x8, 16-bit
constexpr size_t kTileSmemBytes = kTileABytes + kTileBBytes;
constexpr unsigned kWarp = 32;

// probes::LdmatrixFault and probes::ShflProbeMode, by value.
enum Fault : int { kFaultNone = 0, kFaultMisaligned = 1, kFaultOutside = 2 };
enum ShflMode : int { kShflIdx = 0, kShflBfly = 1, kShflDown = 2 };

enum class Kind { kLdmatrix, kMma, kMmaSp, kMmaTile, kCpAsync, kShfl, kLop3, kPrmt, kFma16x2 };

using Blob = std::vector<uint8_t>;

struct ProbeRequest {
  Kind kind = Kind::kPrmt;
  std::string name;  // args.kind as given, e.g. 'ldmatrix_x2_trans'
  // ldmatrix
  int num = 0;
  bool trans = false;
  int fault_lane = -1;
  int fault = kFaultNone;
  // mma, mma.sp, mma tile
  bool bf16 = false;
  int selector = 0;  // mma.sp: 0 or 1
  // cp.async (hinted: the 16-byte copy with the L2 evict-first policy)
  int bytes = 0;
  bool hinted = false;
  // shfl
  int mode = kShflIdx;
  // lop3
  int nluts = 0;
  // Inputs, by the launchers' parameter names (those a kind does not take stay empty):
  //   mma: a, b, c   mma.sp: a, b, c, e   mma tile: a, b   cp_async: src_bytes, src   shfl: values, operand
  //   lop3: a, b, c, luts   prmt: a, b, c   fma16x2: a, b, c
  Blob a, b, c, e, src_bytes, src, values, operand, luts;
  size_t out_words = 0;  // uint32 registers the probe returns (its regs / d buffer)
};

// ---- readers: binding/args.h's, and one that copies ---------------------------------------------

// A TypedArray's or ArrayBuffer's bytes, copied (a detached view reads as empty).
inline Blob blob_of(const Napi::Object& o, const char* key) {
  const Bytes b = bytes_of(o.Get(key), key);
  return b.data ? Blob(b.data, b.data + b.length) : Blob();
}

inline Blob blob_sized(const Napi::Object& o, const char* key, size_t length) {
  Blob b = blob_of(o, key);
  need(o.Env(), b.size() == length, std::string(key) + " has the wrong length");
  return b;
}

inline uint32_t u32_at(const Blob& b, size_t i) {
  uint32_t x;
  std::memcpy(&x, b.data() + 4 * i, 4);
  return x;
}

// ---- the request ----------------------------------------------------------------------------------

inline ProbeRequest parse_probe(const Napi::Object& o) {
  Napi::Env env = o.Env();
  ProbeRequest r;
  r.name = string_of(o, "kind");
  const std::string& kind = r.name;

  struct Ldm {
    const char* name;
    int num;
    bool trans;
  };
  static const Ldm kLdm[] = {{"ldmatrix_x1", 1, false},      {"ldmatrix_x2", 2, false},
                             {"ldmatrix_x4", 4, false},      {"ldmatrix_x1_trans", 1, true},
                             {"ldmatrix_x2_trans", 2, true}, {"ldmatrix_x4_trans", 4, true}};
  for (const Ldm& l : kLdm) {
    if (kind != l.name) continue;
    r.kind = Kind::kLdmatrix;
    r.num = l.num;
    r.trans = l.trans;
    if (!o.Get("faultLane").IsUndefined()) r.fault_lane = int(int_of(o, "faultLane", -1, 31));
    if (!o.Get("fault").IsUndefined()) {
      const std::string f = string_of(o, "fault");
      if (f == "misaligned") {
        r.fault = kFaultMisaligned;
      } else if (f == "outside") {
        r.fault = kFaultOutside;
      } else {
        need(env, f == "none", "fault must be 'none', 'misaligned' or 'outside'");
      }
    }
    r.out_words = 32 * size_t(l.num);
    return r;
  }
  if (kind == "mma_f16" || kind == "mma_bf16") {
    r.kind = Kind::kMma;
    r.bf16 = kind == "mma_bf16";
    r.a = blob_sized(o, "a", 32 * 4 * 4);
    r.b = blob_sized(o, "b", 32 * 2 * 4);
    r.c = blob_sized(o, "c", 32 * 4 * 4);
    r.out_words = 32 * 4;
    return r;
  }
  if (kind == "mma_sp_f16" || kind == "mma_sp_bf16") {
    r.kind = Kind::kMmaSp;
    r.bf16 = kind == "mma_sp_bf16";
    // Only the two selectors the ISA defines: the probe runs on GPUs too, where another is undefined.
    r.selector = int(int_of(o, "selector", 0, 1));
    r.a = blob_sized(o, "a", 32 * 4 * 4);
    r.b = blob_sized(o, "b", 32 * 4 * 4);
    r.c = blob_sized(o, "c", 32 * 4 * 4);
    r.e = blob_sized(o, "e", 32 * 4);
    r.out_words = 32 * 4;
    return r;
  }
  if (kind == "mma_f16_tile" || kind == "mma_bf16_tile") {
    r.kind = Kind::kMmaTile;
    r.bf16 = kind == "mma_bf16_tile";
    r.a = blob_sized(o, "a", kTileABytes);
    r.b = blob_sized(o, "b", kTileBBytes);
    r.out_words = 32 * 4;
    return r;
  }
  if (kind == "cp_async") {
    r.kind = Kind::kCpAsync;
    r.bytes = int(int_of(o, "bytes", 4, 16));
    need(env, r.bytes == 4 || r.bytes == 8 || r.bytes == 16, "bytes must be 4, 8 or 16");
    const Napi::Value hv = o.Get("hinted");
    r.hinted = !hv.IsUndefined() && !hv.IsNull() && bool_of(o, "hinted");
    need(env, !r.hinted || r.bytes == 16, "hinted copies are 16 bytes");
    r.src_bytes = blob_sized(o, "srcBytes", 64 * 4);
    for (size_t i = 0; i < 64; ++i) {
      const int32_t n = int32_t(u32_at(r.src_bytes, i));
      need(env, n >= 0 && n <= r.bytes, "srcBytes must be within 0..bytes");
    }
    r.src = blob_sized(o, "src", 64 * size_t(r.bytes));
    r.out_words = 32 * size_t(r.bytes);
    return r;
  }
  if (kind == "shfl") {
    r.kind = Kind::kShfl;
    const std::string m = string_of(o, "mode");
    if (m == "bfly") {
      r.mode = kShflBfly;
    } else if (m == "down") {
      r.mode = kShflDown;
    } else {
      need(env, m == "idx", "mode must be 'idx', 'bfly' or 'down'");
      r.mode = kShflIdx;
    }
    r.values = blob_sized(o, "values", 32 * 4);
    r.operand = blob_sized(o, "operand", 32 * 4);
    r.out_words = 32;
    return r;
  }
  if (kind == "lop3") {
    r.kind = Kind::kLop3;
    r.a = blob_sized(o, "a", 32 * 4);
    r.b = blob_sized(o, "b", 32 * 4);
    r.c = blob_sized(o, "c", 32 * 4);
    r.luts = blob_of(o, "luts");
    const size_t n = r.luts.size() / 4;
    need(env, n >= 1 && n <= 256 && r.luts.size() % 4 == 0, "luts must hold 1 to 256 uint32 values");
    for (size_t i = 0; i < n; ++i) need(env, u32_at(r.luts, i) <= 0xFF, "each lut must be within 0..255");
    r.nluts = int(n);
    r.out_words = 32 * n;
    return r;
  }
  if (kind == "prmt") {
    r.kind = Kind::kPrmt;
    r.a = blob_sized(o, "a", 32 * 4);
    r.b = blob_sized(o, "b", 32 * 4);
    r.c = blob_sized(o, "c", 32 * 4);
    r.out_words = 32;
    return r;
  }
  if (kind == "fma_f16x2" || kind == "fma_bf16x2") {
    r.kind = Kind::kFma16x2;
    r.bf16 = kind == "fma_bf16x2";
    r.a = blob_sized(o, "a", 32 * 4);
    r.b = blob_sized(o, "b", 32 * 4);
    r.c = blob_sized(o, "c", 32 * 4);
    r.out_words = 32;
    return r;
  }
  throw_range(env, "unknown probe kind '" + kind + "'");
}

// { ok, error, regs }: regs as uint32 numbers (float results as their bits); error null when ok.
inline Napi::Object probe_result(Napi::Env env, bool ok, const std::string& error, const uint32_t* regs, size_t n) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", Napi::Boolean::New(env, ok));
  r.Set("error", ok ? env.Null() : Napi::String::New(env, error));
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(regs[i])));
  r.Set("regs", a);
  return r;
}

}  // namespace probe_args
}  // namespace binding
}  // namespace cg
