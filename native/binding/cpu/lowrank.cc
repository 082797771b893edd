// lowRankUpdate(args) [sync] and lowRankUpdateAsync(args) [libuv pool; Promise]:
// W <- W + alpha * B * A in place, tile by tile, on the weight's CPU placement; returns the
// scratch bytes used.
//
// args: { weight: descriptor of the CPU placement (binding/weight_desc.h), r, alpha, a [r, K],
//         b [N, r], abDtype, tileK, threads, isa, reprune (2:4) }
// A and B are copied when the call is made, so an async call never reads the caller's arrays.
#include <memory>
#include <vector>

#include "binding/args.h"
#include "binding/call.h"
#include "binding/cpu/entry_points.h"
#include "binding/staging.h"
#include "binding/weight_desc.h"
#include "cpu/lowrank.h"
#include "cpu/placement.h"

namespace cg {
namespace binding {
namespace {

struct UpdateCall {
  WeightArg weight;
  LowRankUpdate u;
  Isa isa = Isa::Scalar;
  StagingBuffer acopy, bcopy;
  int64_t scratch = 0;

  void capture(const Napi::Object& o) {
    Napi::Env env = o.Env();
    Napi::Value wv = o.Get("weight");
    if (!wv.IsObject()) throw_type(env, "weight must be a weight descriptor");
    read_weight(wv.As<Napi::Object>(), cpu_placement_bytes, weight);
    const WeightDesc& w = weight.desc;
    u.format = w.format;
    u.N = w.N;
    u.K = w.K;
    u.w = w.data;
    u.wdt = w.dtype;
    u.int4 = Int4Dims{w.N, w.K, w.group};
    u.perm = w.perm;
    u.symmetric = w.symmetric;
    u.scale_dt = w.scale_dtype;
    u.fp8 = Fp8Dims{w.N, w.K, w.bn, w.bk};
    u.fp8_format = w.fp8_format;
    u.r = int(int_of(o, "r", 1, 65536));
    u.alpha = finite_float_of(o, "alpha");
    u.abdt = dtype_of(o, "abDtype");
    const size_t es = size_t(dtype_size(u.abdt));
    Bytes a = bytes_sized(o, "a", size_t(u.r) * size_t(u.K) * es), b = bytes_sized(o, "b", size_t(u.N) * size_t(u.r) * es);
    acopy = StagingBuffer::copy_of(a.data, a.length);
    bcopy = StagingBuffer::copy_of(b.data, b.length);
    u.a = acopy.data();
    u.b = bcopy.data();
    u.tile_k = int_of(o, "tileK", 1, kMaxDim);
    u.threads = int(int_of(o, "threads", 1, 1024));
    u.reprune = w.format == WeightFormat::Sparse24 && bool_of(o, "reprune");
    isa = isa_of(o, "isa");
  }

  int cores() const { return u.threads; }

  void run() {
    scratch = lowrank_update(isa, u);
    if (scratch == -1) throw std::bad_alloc();
    if (scratch < 0)
      throw CallFailure{CallFailure::Range, "ERR_SCALE",
                        "compressed-gemm: the update would give a group or block a scale its dtype cannot hold "
                        "(non-finite values, or past float16 scales); the weight is unchanged"};
  }

  Napi::Value deliver(const Napi::Env& env) { return Napi::Number::New(env, double(scratch)); }
};

Napi::Value LowRankUpdateSync(const Napi::CallbackInfo& info) {
  UpdateCall call;
  try {
    call.capture(object_arg(info));
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  return call_sync(info.Env(), call);
}

Napi::Value LowRankUpdateAsync(const Napi::CallbackInfo& info) {
  auto call = std::make_unique<UpdateCall>();
  try {
    call->capture(object_arg(info));
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  return call_async(info.Env(), "compressed-gemm:lowRankUpdate", std::move(call));
}

}  // namespace

void register_lowrank(Napi::Env env, Napi::Object exports) {
  exports.Set("lowRankUpdate", Napi::Function::New(env, LowRankUpdateSync));
  exports.Set("lowRankUpdateAsync", Napi::Function::New(env, LowRankUpdateAsync));
}

}  // namespace binding
}  // namespace cg
