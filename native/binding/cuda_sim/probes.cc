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
//   'mma_sp_f16' | 'mma_sp_bf16'
//       selector: 0 | 1, a: 32 x 4 uint32 (compressed A), b: 32 x 4 uint32, c: 32 x 4 float32,
//       e: 32 uint32 (each lane's metadata register) -> regs: 32 x 4 (D's bits)
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
//   'fma_f16x2' | 'fma_bf16x2'
//       a, b, c: 32 uint32 each (two 16-bit values a word) -> regs: 32
// Argument errors throw (ERR_NATIVE); refusals of the simulator never throw. The arguments are read
// by binding/probe_args.h, which the real CUDA addon's runProbe (native/cuda/binding_probes.cc)
// shares: the same call runs the same probe on a GPU.
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "binding/cuda_sim/entry_points.h"
#include "binding/probe_args.h"
#include "cuda/probes/probe_kernels.cuh"

namespace cg {
namespace binding {
namespace {

namespace pa = probe_args;

static_assert(pa::kLdmSmemBytes == probes::kLdmSmemBytes, "probe_args.h and probe_kernels.cuh disagree");
static_assert(pa::kTileABytes == probes::kTileABytes && pa::kTileBBytes == probes::kTileBBytes,
              "probe_args.h and probe_kernels.cuh disagree");
static_assert(int(pa::kFaultNone) == int(probes::kLdmNoFault) && int(pa::kFaultMisaligned) == int(probes::kLdmMisaligned) &&
                  int(pa::kFaultOutside) == int(probes::kLdmOutsideShared),
              "probe_args.h and probe_kernels.cuh disagree");
static_assert(int(pa::kShflIdx) == int(probes::kShflIdx) && int(pa::kShflBfly) == int(probes::kShflBfly) &&
                  int(pa::kShflDown) == int(probes::kShflDown),
              "probe_args.h and probe_kernels.cuh disagree");

// "Global memory" for a probe: 16-byte aligned (cp.async and ldmatrix need it), zero-filled.
class GlobalBuffer {
 public:
  explicit GlobalBuffer(size_t bytes) : chunks_((bytes + 15) / 16 + 1) {}
  // A copy of an input.
  explicit GlobalBuffer(const pa::Blob& in) : GlobalBuffer(in.size()) {
    if (!in.empty()) std::memcpy(bytes(), in.data(), in.size());
  }
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

probes::ProbeStatus launch(const pa::ProbeRequest& q, uint32_t* out) {
  switch (q.kind) {
    case pa::Kind::kLdmatrix: {
      GlobalBuffer outside(16);
      return probes::launch_probe_ldmatrix(q.num, q.trans, q.fault_lane, probes::LdmatrixFault(q.fault), outside.bytes(),
                                           out);
    }
    case pa::Kind::kMma: {
      GlobalBuffer a(q.a), b(q.b), c(q.c);
      return probes::launch_probe_mma(q.bf16, a.as<uint32_t>(), b.as<uint32_t>(), c.as<float>(),
                                      reinterpret_cast<float*>(out));
    }
    case pa::Kind::kMmaSp: {
      GlobalBuffer a(q.a), b(q.b), c(q.c), e(q.e);
      return probes::launch_probe_mma_sp(q.bf16, q.selector, a.as<uint32_t>(), b.as<uint32_t>(), c.as<float>(),
                                         e.as<uint32_t>(), reinterpret_cast<float*>(out));
    }
    case pa::Kind::kMmaTile: {
      GlobalBuffer a(q.a), b(q.b);
      return probes::launch_probe_mma_tile(q.bf16, a.as<uint16_t>(), b.as<uint16_t>(), reinterpret_cast<float*>(out));
    }
    case pa::Kind::kCpAsync: {
      GlobalBuffer src_bytes(q.src_bytes), src(q.src);
      return probes::launch_probe_cp_async(q.bytes, q.hinted, src_bytes.as<int32_t>(), src.bytes(), out);
    }
    case pa::Kind::kShfl: {
      GlobalBuffer values(q.values), operand(q.operand);
      return probes::launch_probe_shfl(probes::ShflProbeMode(q.mode), values.as<uint32_t>(), operand.as<uint32_t>(), out);
    }
    case pa::Kind::kLop3: {
      GlobalBuffer a(q.a), b(q.b), c(q.c), luts(q.luts);
      return probes::launch_probe_lop3(a.as<uint32_t>(), b.as<uint32_t>(), c.as<uint32_t>(), luts.as<uint32_t>(), q.nluts,
                                       out);
    }
    case pa::Kind::kFma16x2: {
      GlobalBuffer a(q.a), b(q.b), c(q.c);
      return probes::launch_probe_fma16x2(q.bf16, a.as<uint32_t>(), b.as<uint32_t>(), c.as<uint32_t>(), out);
    }
    case pa::Kind::kPrmt: {
      GlobalBuffer a(q.a), b(q.b), c(q.c);
      return probes::launch_probe_prmt(a.as<uint32_t>(), b.as<uint32_t>(), c.as<uint32_t>(), out);
    }
  }
  probes::ProbeStatus s;
  s.ok = false;
  s.error = "unknown probe";
  return s;
}

Napi::Value RunProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const pa::ProbeRequest q = pa::parse_probe(object_arg(info));
    GlobalBuffer regs(q.out_words * 4);
    const probes::ProbeStatus s = launch(q, regs.as<uint32_t>());
    return pa::probe_result(env, s.ok, s.error, regs.as<uint32_t>(), q.out_words);
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
