// cpuInfo() -> { features, isas, hardwareThreads }; fmaPeak({ isa, threads, iterations }).
#include <chrono>
#include <memory>
#include <string>

#include "binding/args.h"
#include "binding/cpu/entry_points.h"
#include "cpu/fma_peak.h"
#include "cpu/runtime/cpu_features.h"
#include "cpu/runtime/thread_pool.h"

namespace cg {
namespace binding {
namespace {

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Scalar: return true;
#if defined(__x86_64__)
    case Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma && f.f16c;
    // (VBMI: the FP8 tile decoder's byte lookups; every AMX CPU so far has it)
    case Isa::Amx: return isa_supported(Isa::Avx512) && f.avx512_bf16 && f.avx512_vbmi && f.amx_tile && f.amx_bf16 && amx::amx_permitted();
#endif
    default: (void)f; return false;
  }
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  auto features = Napi::Array::New(env);
  uint32_t i = 0;
  auto add = [&](bool on, const char* name) { if (on) features.Set(i++, name); };
  add(f.sse42, "sse4.2"); add(f.avx, "avx"); add(f.avx2, "avx2"); add(f.fma, "fma"); add(f.f16c, "f16c");
  add(f.avx512f, "avx512f"); add(f.avx512bw, "avx512bw"); add(f.avx512dq, "avx512dq"); add(f.avx512vl, "avx512vl");
  add(f.avx512_vnni, "avx512_vnni"); add(f.avx512_bf16, "avx512_bf16"); add(f.avx512_fp16, "avx512_fp16");
  add(f.avx512_vbmi, "avx512vbmi");
  add(f.avx_vnni, "avx_vnni"); add(f.amx_tile, "amx_tile"); add(f.amx_int8, "amx_int8"); add(f.amx_bf16, "amx_bf16");
  auto isas = Napi::Array::New(env);
  uint32_t j = 0;
  isas.Set(j++, "scalar");
  if (isa_supported(Isa::Avx2)) isas.Set(j++, "avx2");
  if (isa_supported(Isa::Avx512)) isas.Set(j++, "avx512");
  if (isa_supported(Isa::Amx)) isas.Set(j++, "amx");
  auto out = Napi::Object::New(env);
  out.Set("features", features);
  out.Set("isas", isas);
  out.Set("hardwareThreads", hardware_threads());
  return out;
}

// GFLOP/s of a register-only FMA loop on `threads` threads at once: the machine's sustained
// fp32 FMA peak, to which the bench compares the dense kernel.
struct PeakCtx { Isa isa; int64_t iterations; double flops[1024]; };

void peak_task(void* ctx, int t, int) {
  auto* c = static_cast<PeakCtx*>(ctx);
#if defined(__x86_64__)
  c->flops[t] = c->isa == Isa::Avx512 || c->isa == Isa::Amx ? avx512::fma_loop_flops(c->iterations) : avx2::fma_loop_flops(c->iterations);
#else
  c->flops[t] = 0;
#endif
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const Isa isa = isa_of(o, "isa");
  need(env, isa != Isa::Scalar, "fmaPeak measures avx2 or avx512");
  const int threads = int(int_of(o, "threads", 1, 1024));
  auto ctx = std::make_unique<PeakCtx>();
  ctx->isa = isa;
  ctx->iterations = int_of(o, "iterations", 1, int64_t(1) << 40);
  auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, threads, peak_task, ctx.get());
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double flops = 0;
  for (int t = 0; t < threads; ++t) flops += ctx->flops[t];
  return Napi::Number::New(env, flops / s / 1e9);
}

}  // namespace

Isa isa_of(const Napi::Object& o, const char* key) {
  const std::string s = string_of(o, key);
  const Isa isa = s == "amx" ? Isa::Amx : s == "avx512" ? Isa::Avx512 : s == "avx2" ? Isa::Avx2 : Isa::Scalar;
  need(o.Env(), s == "scalar" || s == "avx2" || s == "avx512" || s == "amx", std::string(key) + " is not scalar, avx2, avx512 or amx");
  need(o.Env(), isa_supported(isa), "this CPU cannot run the requested instruction set");
  return isa;
}

void register_info(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
}

}  // namespace binding
}  // namespace cg
