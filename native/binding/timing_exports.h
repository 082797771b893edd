// Kernel timing with device events, for the GPU check's bench (scripts/gpu-check/bench-ours.js),
// the same export in both addons (registered by binding/cuda_sim/gemm.cc and cuda/binding_gemm.cu):
//
//   timeGemm({ kernel, args, warmup?, reps? }) -> { ms: number[] }   [sync: waits for the device]
//
//   kernel  'dense' (args as linearDense's, binding/gemm_exports.h), 'sparse24' (as
//           linearSparse24's, gemm_sparse24_exports.h), 'int4' (as linearInt4's,
//           gemm_int4_exports.h) or 'loraShrink' (as loraShrink's, lora_exports.h: the first half
//           of a LoRA call, timed apart from the GEMM whose epilogue adds the second), checked
//           the same way
//   warmup  launches before the timed ones (default 3, 0..1000); reps: timed launches (default
//           20, 1..10000)
//   ms      one entry per timed launch: the milliseconds between the events recorded before and
//           after it. The launches are enqueued back to back on the device's stream (one event
//           between each two), so each interval is one kernel's time on the device, launch
//           overhead hidden behind the queue. On the simulated device the events time the
//           simulator (meaningless as GPU figures: the bench refuses to report them).
// Errors: the argument errors of the kernel's export, a bad kernel/warmup/reps ERR_NATIVE, a
// failed launch ERR_CUDA.
#pragma once
#include <napi.h>

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "binding/gemm_exports.h"
#include "binding/gemm_int4_exports.h"
#include "binding/gemm_sparse24_exports.h"
#include "binding/lora_exports.h"

namespace cg {
namespace binding {
namespace timing_exports {

namespace de = device_exports;

inline Napi::Value TimeGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object o = object_arg(info);
  const Napi::Value kv = o.Get("kernel");
  if (!kv.IsString()) throw_type(env, "kernel must be 'dense', 'sparse24', 'int4' or 'loraShrink'");
  const std::string kernel = kv.As<Napi::String>().Utf8Value();
  const Napi::Value av = o.Get("args");
  if (!av.IsObject()) throw_type(env, "args must be the kernel export's argument object");
  const int warmup = int(de::int_opt(o, "warmup", 0, 1000, 3));
  const int reps = int(de::int_opt(o, "reps", 1, 10000, 20));

  // The checked call: its device, its launch, and the allocations it holds until the end.
  int device = 0;
  rt::Kernel launch;
  std::vector<std::shared_ptr<de::Allocation>> keep;
  gemm_exports::LoraArg lora;
  if (kernel == "dense") {
    gemm_exports::LinearCall c = gemm_exports::linear_call(av.As<Napi::Object>());
    device = c.device;
    launch = gemm_exports::dense_kernel(c.args);
    keep = std::move(c.keep);
    lora = c.lora;
  } else if (kernel == "sparse24") {
    gemm_sparse24_exports::Sparse24Call c = gemm_sparse24_exports::sparse24_call(av.As<Napi::Object>());
    device = c.device;
    launch = gemm_sparse24_exports::sparse24_kernel(c.args);
    keep = std::move(c.keep);
    lora = c.lora;
  } else if (kernel == "int4") {
    gemm_int4_exports::Int4Call c = gemm_int4_exports::int4_call(av.As<Napi::Object>());
    device = c.device;
    launch = gemm_int4_exports::int4_kernel(c.args);
    keep = std::move(c.keep);
    lora = c.lora;
  } else if (kernel == "loraShrink") {
    lora_exports::ShrinkCall c = lora_exports::shrink_call(av.As<Napi::Object>());
    device = c.device;
    launch = lora_exports::shrink_kernel(c.args);
    lora.rows = c.keep[2];  // the tile table goes up before the launches, as loraShrink does it
    lora.table = c.table;
    keep = std::move(c.keep);
  } else {
    throw_range(env, "kernel must be 'dense', 'sparse24', 'int4' or 'loraShrink'; got '" + kernel + "'");
  }

  rt::Stream& s = de::stream_for(device);
  lora.upload(s);  // the LoRA row table (when args has one), before every launch
  for (int i = 0; i < warmup; ++i) s.launch(launch);
  std::vector<std::shared_ptr<rt::Event>> events;
  events.reserve(size_t(reps) + 1);
  events.push_back(s.record());
  for (int i = 0; i < reps; ++i) {
    s.launch(launch);
    events.push_back(s.record());
  }
  s.synchronize();
  Napi::Array ms = Napi::Array::New(env, size_t(reps));
  for (int i = 0; i < reps; ++i) ms.Set(uint32_t(i), Napi::Number::New(env, double(events[size_t(i) + 1]->elapsed_ms_since(*events[size_t(i)]))));
  Napi::Object r = Napi::Object::New(env);
  r.Set("ms", ms);
  return r;
}

inline void register_all_timing(Napi::Env env, Napi::Object exports) {
  exports.Set("timeGemm", Napi::Function::New(env, de::guard<TimeGemm>, "timeGemm"));
}

}  // namespace timing_exports
}  // namespace binding
}  // namespace cg
