// runProbe(args) -> { ok, error, regs } [sync]: runs one probe kernel
// (native/cuda/probes/probe_kernels.cuh) on the simulated device and returns every lane's raw
// result registers, lane-major, as uint32 numbers (float results as their bits). ok is false,
// with the simulator's refusal in error (kernel, block, thread and what), when the launch was
// refused; regs then holds whatever was stored before the refusal. error is null when ok.
//
// args.kind and what each kind reads (typed arrays of exactly the sizes named):
//   'ldmatrix_x1' | 'ldmatrix_x2' | 'ldmatrix_x4' | 'ldmatrix_x1_trans' | ... | 'ldmatrix_x4_trans'
//       faultLane?: number (-1..31, default -1), fault?: 'none' | 'misaligned' | 'outside'
//       -> regs: 32 x num (coded r * 256 + c, r = the row's lane, see probe_kernels.cuh)
//   'mma_f16' | 'mma_bf16'
//       a: 32 x 4 uint32, b: 32 x 2 uint32, c: 32 x 4 float32 (fragments, lane-major) -> regs: 32 x 4 (D's bits)
//   'mma_f16_tile' | 'mma_bf16_tile'
//       a: 16 x 32 uint16, b: 32 x 8 uint16 (row-major bits) -> regs: 32 x 4 (D's bits)
//   'cp_async'
//       bytes: 4 | 8 | 16, srcBytes: 64 int32, src: 64 x bytes uint8 -> regs: 32 x bytes (see the kernel)
//   'shfl'
//       mode: 'idx' | 'bfly' | 'down', values: 32 uint32, operand: 32 uint32 -> regs: 32
//   'lop3'
//       a, b, c: 32 uint32 each, luts: n uint32 (each 0..255, 1 <= n <= 256) -> regs: 32 x n
//   'prmt'
//       a, b, c: 32 uint32 each -> regs: 32
// Argument errors throw (ERR_NATIVE, binding/args.h); refusals of the simulator never throw.
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/cuda_sim/entry_points.h"
#include "cuda/probes/probe_kernels.cuh"

namespace cg {
namespace binding {
namespace {

// "Global memory" for a probe: 16-byte aligned (cp.async and ldmatrix need it), zero-filled.
class GlobalBuffer {
 public:
  explicit GlobalBuffer(size_t bytes) : chunks_((bytes + 15) / 16 + 1) {}
  uint8_t* bytes() { return chunks_.data()->b; }
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(bytes());
  }

 private:
  struct alignas(16) Chunk {
    uint8_t b[16] = {};
  };
  std::vector<Chunk> chunks_;
};

// o[key]: a typed array of exactly `bytes` bytes, copied into aligned global memory.
GlobalBuffer input(const Napi::Object& o, const char* key, size_t bytes) {
  const Bytes in = bytes_sized(o, key, bytes);
  GlobalBuffer g(bytes);
  if (bytes) std::memcpy(g.bytes(), in.data, bytes);
  return g;
}

Napi::Object result(Napi::Env env, const probes::ProbeStatus& status, const uint32_t* regs, size_t n) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", Napi::Boolean::New(env, status.ok));
  r.Set("error", status.ok ? env.Null() : Napi::String::New(env, status.error));
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(regs[i])));
  r.Set("regs", a);
  return r;
}

Napi::Value run_ldmatrix(const Napi::Object& o, int num, bool trans) {
  Napi::Env env = o.Env();
  int fault_lane = -1;
  probes::LdmatrixFault fault = probes::kLdmNoFault;
  if (!o.Get("faultLane").IsUndefined()) fault_lane = int(int_of(o, "faultLane", -1, 31));
  if (!o.Get("fault").IsUndefined()) {
    const std::string f = string_of(o, "fault");
    if (f == "misaligned") {
      fault = probes::kLdmMisaligned;
    } else if (f == "outside") {
      fault = probes::kLdmOutsideShared;
    } else {
      need(env, f == "none", "fault must be 'none', 'misaligned' or 'outside'");
    }
  }
  GlobalBuffer outside(16);
  GlobalBuffer regs(32 * 4 * size_t(num));
  const probes::ProbeStatus s =
      probes::launch_probe_ldmatrix(num, trans, fault_lane, fault, outside.bytes(), regs.as<uint32_t>());
  return result(env, s, regs.as<uint32_t>(), 32 * size_t(num));
}

Napi::Value run_mma(const Napi::Object& o, bool bf16) {
  GlobalBuffer a = input(o, "a", 32 * 4 * 4), b = input(o, "b", 32 * 2 * 4), c = input(o, "c", 32 * 4 * 4);
  GlobalBuffer d(32 * 4 * 4);
  const probes::ProbeStatus s =
      probes::launch_probe_mma(bf16, a.as<uint32_t>(), b.as<uint32_t>(), c.as<float>(), d.as<float>());
  return result(o.Env(), s, d.as<uint32_t>(), 32 * 4);
}

Napi::Value run_mma_tile(const Napi::Object& o, bool bf16) {
  GlobalBuffer a = input(o, "a", probes::kTileABytes), b = input(o, "b", probes::kTileBBytes);
  GlobalBuffer d(32 * 4 * 4);
  const probes::ProbeStatus s = probes::launch_probe_mma_tile(bf16, a.as<uint16_t>(), b.as<uint16_t>(), d.as<float>());
  return result(o.Env(), s, d.as<uint32_t>(), 32 * 4);
}

Napi::Value run_cp_async(const Napi::Object& o) {
  Napi::Env env = o.Env();
  const int bytes = int(int_of(o, "bytes", 4, 16));
  need(env, bytes == 4 || bytes == 8 || bytes == 16, "bytes must be 4, 8 or 16");
  GlobalBuffer src_bytes = input(o, "srcBytes", 64 * 4);
  for (int i = 0; i < 64; ++i) {
    const int32_t n = src_bytes.as<int32_t>()[i];
    need(env, n >= 0 && n <= bytes, "srcBytes must be within 0..bytes");
  }
  GlobalBuffer src = input(o, "src", 64 * size_t(bytes));
  GlobalBuffer regs(32 * size_t(bytes) * 4);
  const probes::ProbeStatus s =
      probes::launch_probe_cp_async(bytes, src_bytes.as<int32_t>(), src.bytes(), regs.as<uint32_t>());
  return result(env, s, regs.as<uint32_t>(), 32 * size_t(bytes));
}

Napi::Value run_shfl(const Napi::Object& o) {
  Napi::Env env = o.Env();
  const std::string m = string_of(o, "mode");
  probes::ShflProbeMode mode = probes::kShflIdx;
  if (m == "bfly") {
    mode = probes::kShflBfly;
  } else if (m == "down") {
    mode = probes::kShflDown;
  } else {
    need(env, m == "idx", "mode must be 'idx', 'bfly' or 'down'");
  }
  GlobalBuffer values = input(o, "values", 32 * 4), operand = input(o, "operand", 32 * 4);
  GlobalBuffer regs(32 * 4);
  const probes::ProbeStatus s =
      probes::launch_probe_shfl(mode, values.as<uint32_t>(), operand.as<uint32_t>(), regs.as<uint32_t>());
  return result(env, s, regs.as<uint32_t>(), 32);
}

Napi::Value run_lop3(const Napi::Object& o) {
  Napi::Env env = o.Env();
  GlobalBuffer a = input(o, "a", 32 * 4), b = input(o, "b", 32 * 4), c = input(o, "c", 32 * 4);
  const Bytes luts_in = bytes_of(o.Get("luts"), "luts");
  const size_t n = luts_in.length / 4;
  need(env, n >= 1 && n <= 256 && luts_in.length % 4 == 0, "luts must hold 1 to 256 uint32 values");
  GlobalBuffer luts = input(o, "luts", n * 4);
  for (size_t i = 0; i < n; ++i) need(env, luts.as<uint32_t>()[i] <= 0xFF, "each lut must be within 0..255");
  GlobalBuffer regs(32 * n * 4);
  const probes::ProbeStatus s = probes::launch_probe_lop3(a.as<uint32_t>(), b.as<uint32_t>(), c.as<uint32_t>(),
                                                          luts.as<uint32_t>(), int(n), regs.as<uint32_t>());
  return result(env, s, regs.as<uint32_t>(), 32 * n);
}

Napi::Value run_prmt(const Napi::Object& o) {
  GlobalBuffer a = input(o, "a", 32 * 4), b = input(o, "b", 32 * 4), c = input(o, "c", 32 * 4);
  GlobalBuffer regs(32 * 4);
  const probes::ProbeStatus s =
      probes::launch_probe_prmt(a.as<uint32_t>(), b.as<uint32_t>(), c.as<uint32_t>(), regs.as<uint32_t>());
  return result(o.Env(), s, regs.as<uint32_t>(), 32);
}

Napi::Value RunProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const Napi::Object o = object_arg(info);
    const std::string kind = string_of(o, "kind");
    struct Ldm {
      const char* name;
      int num;
      bool trans;
    };
    static const Ldm kLdm[] = {{"ldmatrix_x1", 1, false},      {"ldmatrix_x2", 2, false},
                               {"ldmatrix_x4", 4, false},      {"ldmatrix_x1_trans", 1, true},
                               {"ldmatrix_x2_trans", 2, true}, {"ldmatrix_x4_trans", 4, true}};
    for (const Ldm& l : kLdm) {
      if (kind == l.name) return run_ldmatrix(o, l.num, l.trans);
    }
    if (kind == "mma_f16") return run_mma(o, false);
    if (kind == "mma_bf16") return run_mma(o, true);
    if (kind == "mma_f16_tile") return run_mma_tile(o, false);
    if (kind == "mma_bf16_tile") return run_mma_tile(o, true);
    if (kind == "cp_async") return run_cp_async(o);
    if (kind == "shfl") return run_shfl(o);
    if (kind == "lop3") return run_lop3(o);
    if (kind == "prmt") return run_prmt(o);
    throw_range(env, "unknown probe kind '" + kind + "'");
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("compressed-gemm simulated device: ") + e.what());
  }
}

}  // namespace

void register_probes(Napi::Env env, Napi::Object exports) {
  exports.Set("runProbe", Napi::Function::New(env, RunProbe, "runProbe"));
}

}  // namespace binding
}  // namespace cg
