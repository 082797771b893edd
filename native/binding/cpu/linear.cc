// linear(args) [sync] and linearAsync(args) [libuv pool; Promise]: y = x · Wᵀ (+ bias) (+ the
// low-rank terms), through the CPU backend's dispatch table (cpu/dispatch.cc).
//
// args: { weight: descriptor of the CPU placement (binding/weight_desc.h), M, x, xDtype,
//         bias: Float32Array [N] | null, out, outDtype, threads, isa,
//         activations: 'native' | 'fp8' | 'int8', actBlock (fp8 activations: K columns per
//         scale, 0 = one per row),
//         lora: { adapters: [{ a, b, r, alpha }], rowAdapter: Int32Array [M] | null } | null }
//
// Sync calls read and write the caller's arrays in place (no JS runs meanwhile). Async calls
// copy x and the bias when the call is made, so the caller may reuse them at once. The result:
//   outPrivate: `out` is the library's own new array, which no other code can reach until the
//     promise resolves (lib/ops/linear.ts): the kernel writes into it in place, held alive by a
//     reference; the event loop neither fills nor copies a result;
//   otherwise (the caller's `out`): the kernel writes into a buffer of the call's own, taken on
//     the worker thread, copied into `out` on the JS thread when the work is done, so neither
//     transferring nor resizing `out` while the call runs can make a kernel touch freed memory.
// The copies and that buffer are recycled staging buffers (binding/staging.h): a fresh block's
// page faults made the copy of x on the JS thread cost as much as a whole INT4 call.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
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

// COMPRESSED_GEMM_POISON_RESULTS=1 (tests only): a result buffer the caller did not provide (the
// library's unfilled array, or an async call's own buffer) is filled with 0xff bytes (NaN in every
// output dtype) before the kernel runs, so an element a kernel never wrote shows, as it does in
// the poisoned `out` arrays of the tests.
bool poison_results() {
  static const bool on = [] {
    const char* s = std::getenv("COMPRESSED_GEMM_POISON_RESULTS");
    return s && s[0] == '1';
  }();
  return on;
}

struct LinearCall {
  WeightArg weight;
  int64_t M = 0;
  DType xdt = DType::F32, ydt = DType::F32;
  Bytes x, bias, y;
  int threads = 1;
  Isa isa = Isa::Scalar;
  bool async = false;
  ActQuant act = ActQuant::None;
  int64_t act_block = 0;
  std::vector<Napi::ObjectReference> keep;  // the adapters' packed buffers
  StagingBuffer xcopy, biascopy;
  bool out_private = false;  // see the top of this file
  StagingBuffer ybuf;        // async into the caller's out: the result, taken by run()
  Napi::ObjectReference out_ref;
  // Low-rank terms (fused LoRA, or one adapter per row): the adapters' packed A and B, and each
  // row's adapter (empty: adapter 0 for every row).
  std::vector<LoraAdapterRef> adapters;
  std::vector<int32_t> row_adapter;

  Bytes hold(const Napi::Object& o, const char* key) {
    Napi::Value v = o.Get(key);
    Bytes b = bytes_of(v, key);
    keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
    return b;
  }

  void capture_lora(const Napi::Object& o, int64_t N, int64_t K) {
    Napi::Env env = o.Env();
    Napi::Value lv = o.Get("lora");
    if (lv.IsNull() || lv.IsUndefined()) return;
    if (!lv.IsObject()) throw_type(env, "lora must be an object");
    Napi::Object lo = lv.As<Napi::Object>();
    Napi::Value av = lo.Get("adapters");
    if (!av.IsArray()) throw_type(env, "lora.adapters must be an array");
    Napi::Array arr = av.As<Napi::Array>();
    need(env, arr.Length() >= 1 && arr.Length() <= 65536, "lora.adapters must hold 1 to 65536 adapters");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value e = arr.Get(i);
      if (!e.IsObject()) throw_type(env, "each adapter must be an object");
      Napi::Object ao = e.As<Napi::Object>();
      const int r = int(int_of(ao, "r", 1, 65536));
      Bytes a = hold(ao, "a"), b = hold(ao, "b");
      need(env, a.data && a.length == size_t(dense_packed_elems(r, K)) * 4, "adapter A has the wrong length");
      need(env, b.data && b.length == size_t(dense_packed_elems(N, r)) * 4, "adapter B has the wrong length");
      adapters.push_back({a.data, reinterpret_cast<const float*>(b.data), r, finite_float_of(ao, "alpha")});
    }
    Napi::Value rv = lo.Get("rowAdapter");
    if (!rv.IsNull() && !rv.IsUndefined()) {
      Bytes rb = bytes_sized(lo, "rowAdapter", size_t(M) * 4);
      const int32_t* ri = reinterpret_cast<const int32_t*>(rb.data);
      row_adapter.assign(ri, ri + M);  // a copy: an async call must not read the caller's array later
      for (int32_t a : row_adapter) need(env, a >= -1 && a < int32_t(adapters.size()), "rowAdapter entries must be -1 or adapter indices");
    }
  }

  void capture(const Napi::Object& o, bool is_async) {
    Napi::Env env = o.Env();
    async = is_async;
    Napi::Value wv = o.Get("weight");
    if (!wv.IsObject()) throw_type(env, "weight must be a weight descriptor");
    read_weight(wv.As<Napi::Object>(), cpu_placement_bytes, weight);
    const WeightDesc& w = weight.desc;
    const int64_t N = w.N, K = w.K;
    M = int_of(o, "M", 1, kMaxDim - 1);
    need(env, M * K < kMaxDim && M * N < kMaxDim, "dimensions too large");
    xdt = dtype_of(o, "xDtype");
    ydt = dtype_of(o, "outDtype");
    threads = int(int_of(o, "threads", 1, 1024));
    isa = isa_of(o, "isa");
    x = bytes_sized(o, "x", size_t(M * K) * size_t(dtype_size(xdt)));
    y = bytes_sized(o, "out", size_t(M * N) * size_t(dtype_size(ydt)));
    out_private = !o.Get("outPrivate").IsUndefined() && bool_of(o, "outPrivate");  // optional for callers that bypass lib/
    const std::string a = string_of(o, "activations");
    need(env, a == "native" || a == "fp8" || a == "int8", "activations is not native, fp8 or int8");
    act = a == "fp8" ? ActQuant::Fp8 : a == "int8" ? ActQuant::Int8 : ActQuant::None;
    need(env, act == ActQuant::None || w.format == WeightFormat::Int4 || w.format == WeightFormat::Fp8,
         "quantized activations need an INT4 or FP8 weight");
    need(env, act != ActQuant::Int8 || w.format == WeightFormat::Int4, "int8 activations need an INT4 weight");
    act_block = int_of(o, "actBlock", 0, K);
    bias = optional_bytes_sized(o, "bias", size_t(N) * 4);
    // The kernels read x and the bias while they write y: memory shared with y (whatever JS
    // objects carry it, e.g. two SharedArrayBuffers over one block) would give wrong results.
    if (overlap(x, y) || overlap(bias, y))
      throw coded(Napi::RangeError::New(env, std::string("compressed-gemm: out shares memory with ") + (overlap(x, y) ? "x" : "the bias") +
                                                 "; pass a separate array"),
                  "ERR_OVERLAP");
    capture_lora(o, N, K);
    if (async) {
      xcopy = StagingBuffer::copy_of(x.data, x.length);
      x.data = xcopy.data();
      if (bias.data) {
        biascopy = StagingBuffer::copy_of(bias.data, bias.length);
        bias.data = biascopy.data();
      }
      out_ref = Napi::Persistent(o.Get("out").As<Napi::Object>());
      if (!out_private) y.data = nullptr;  // run() allocates the call's own buffer, off the JS thread
    }
  }

  int cores() const { return threads; }

  // Any thread; touches no JS value.
  void run() {
    if (async && !out_private) {
      ybuf = StagingBuffer(y.length);  // no fill; std::bad_alloc when out of memory
      y.data = ybuf.data();
    }
    if ((out_private || ybuf.data()) && poison_results()) std::memset(y.data, 0xff, y.length);
    const WeightDesc& w = weight.desc;
    GemmProblem p;
    p.x = x.data; p.xdt = xdt;
    p.M = M; p.N = w.N; p.K = w.K;
    p.bias = reinterpret_cast<const float*>(bias.data);
    p.y = y.data; p.ydt = ydt;
    p.threads = threads;
    // Low-rank terms: t = alpha * x · Aᵀ first (per adapter segment), added in the epilogue.
    std::vector<float> t;
    std::vector<const float*> bs;
    std::vector<int32_t> ranks;
    LoraEpilogue lora;
    if (!adapters.empty()) {
      int rmax = 0;
      for (const auto& ad : adapters) rmax = ad.r > rmax ? ad.r : rmax;
      t.assign(size_t(M) * size_t(rmax), 0.0f);
      const int32_t* ra = row_adapter.empty() ? nullptr : row_adapter.data();
      if (!lora_first_product(isa, p, adapters.data(), int(adapters.size()), ra, t.data(), rmax)) throw std::bad_alloc();
      for (const auto& ad : adapters) {
        bs.push_back(ad.b_packed);
        ranks.push_back(ad.r);
      }
      lora.t = t.data();
      lora.tstride = rmax;
      lora.row_adapter = ra;
      lora.b = bs.data();
      lora.rank = ranks.data();
      p.lora = &lora;
    }
    if (!linear(isa, p, w, act, act_block)) throw std::bad_alloc();
  }

  // JS thread. Async into the caller's `out`: the result is copied into it, unless it was
  // detached or resized meanwhile.
  Napi::Value deliver(const Napi::Env& env) {
    if (ybuf.data()) {
      Bytes dst = bytes_of(out_ref.Value(), "out");
      if (dst.length != y.length || dst.data == nullptr)
        throw CallFailure{CallFailure::Type, "ERR_DETACHED", "compressed-gemm: `out` was detached or resized while linearAsync ran"};
      std::memcpy(dst.data, ybuf.data(), y.length);
    }
    return env.Undefined();
  }
};

Napi::Value Linear(const Napi::CallbackInfo& info) {
  LinearCall call;
  call.capture(object_arg(info), false);
  return call_sync(info.Env(), call);
}

Napi::Value LinearAsync(const Napi::CallbackInfo& info) {
  auto call = std::make_unique<LinearCall>();
  try {
    call->capture(object_arg(info), true);
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  return call_async(info.Env(), "compressed-gemm:linear", std::move(call));
}

// { idleBuffers, idleBytes, taken, reused }: the async calls' staging buffers (binding/staging.h)
Napi::Value StagingStatsJs(const Napi::CallbackInfo& info) {
  const StagingStats s = staging_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("idleBuffers", double(s.idle_buffers));
  o.Set("idleBytes", double(s.idle_bytes));
  o.Set("taken", double(s.taken));
  o.Set("reused", double(s.reused));
  return o;
}

}  // namespace

void register_linear(Napi::Env env, Napi::Object exports) {
  exports.Set("linear", Napi::Function::New(env, Linear));
  exports.Set("linearAsync", Napi::Function::New(env, LinearAsync));
  exports.Set("stagingStats", Napi::Function::New(env, StagingStatsJs));
}

}  // namespace binding
}  // namespace cg
