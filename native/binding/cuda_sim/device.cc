// Device memory and streams of the simulated device: the exports of binding/device_exports.h
// (devices, deviceAlloc, deviceFree, copyToDevice[Async], copyToHost[Async],
// copyDeviceToDevice, memory) over the simulator's runtime (cuda/runtime/runtime_sim.cc), and
// streamSelfTest() (below).
// The simulated device holds COMPRESSED_GEMM_SIM_MEMORY bytes (default 4 GiB).
#include "binding/cuda_sim/entry_points.h"
#include "binding/device_exports.h"

namespace cg {
namespace binding {

namespace device_exports {
// The simulator throws rt::Error only: no platform exception.
bool platform_failure(const std::exception&, Failure&) { return false; }
}  // namespace device_exports

void register_device_selftest(Napi::Env env, Napi::Object exports);  // below

void register_device(Napi::Env env, Napi::Object exports) {
  device_exports::register_all(env, exports);
  register_device_selftest(env, exports);
}

}  // namespace binding
}  // namespace cg

// ---- streamSelfTest() [sim only, for the tests] -------------------------------------------------
// Exercises what the copy exports do not: kernel launches on a stream's worker, events, host
// callbacks, the sticky error of a refused launch, and a stream's destruction draining its queue.
// Returns { filled, eventsDone, elapsedMs, callbackOk, stickyName, stickyMessage, callbackSawError,
//           skippedAfterError, drained }.
#include <atomic>
#include <vector>

#include "cuda/kernel.h"

namespace cg {
namespace binding {
namespace {

__global__ void selftest_fill(uint32_t* p, uint32_t n, uint32_t base) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = base + i;
}

// Thread 0 returns while the others wait at the barrier: the simulator refuses it.
__global__ void selftest_bad_barrier() {
  if (threadIdx.x == 0) return;
  __syncthreads();
}

struct DeviceMem {
  void* p;
  explicit DeviceMem(size_t n) : p(rt::alloc(0, n)) {}
  ~DeviceMem() {
    try {
      rt::free(p);
    } catch (...) {
    }
  }
};

Napi::Value StreamSelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  const uint32_t n = 1000;
  DeviceMem mem(n * 4);
  uint32_t* d = static_cast<uint32_t*>(mem.p);
  {
    rt::Stream s(0);
    std::shared_ptr<rt::Event> e0 = s.record();
    s.launch([=](void*) {
      sim::LaunchResult lr = CG_LAUNCH(selftest_fill, sim::Dim3{(n + 127) / 128}, sim::Dim3{128}, 0, nullptr, d, n, 7u);
      return lr.ok ? std::string() : lr.error;
    });
    std::shared_ptr<rt::Event> e1 = s.record();
    std::vector<uint32_t> host(n);
    s.copy_d2h(host.data(), d, n * 4);
    std::atomic<int> cb{0};
    s.then([&cb](std::exception_ptr err) { cb = err ? 2 : 1; });
    s.synchronize();
    bool filled = true;
    for (uint32_t i = 0; i < n; ++i) filled = filled && host[i] == 7 + i;
    r.Set("filled", Napi::Boolean::New(env, filled));
    r.Set("eventsDone", Napi::Boolean::New(env, e0->done() && e1->done()));
    r.Set("elapsedMs", Napi::Number::New(env, e1->elapsed_ms_since(*e0)));
    r.Set("callbackOk", Napi::Boolean::New(env, cb.load() == 1));
  }
  {
    rt::Stream s(0);
    s.launch([](void*) {
      sim::LaunchResult lr = CG_LAUNCH(selftest_bad_barrier, sim::Dim3{1}, sim::Dim3{64}, 0, nullptr);
      return lr.ok ? std::string() : lr.error;
    });
    std::vector<uint32_t> host(n, 0xdeadbeefu);
    s.copy_d2h(host.data(), d, n * 4);  // skipped: the stream has faulted
    std::atomic<int> cb{0};
    s.then([&cb](std::exception_ptr err) { cb = err ? 2 : 1; });
    std::string name, message;
    try {
      s.synchronize();
    } catch (const rt::Error& e) {
      name = e.name();
      message = e.what();
    }
    r.Set("stickyName", Napi::String::New(env, name));
    r.Set("stickyMessage", Napi::String::New(env, message));
    r.Set("callbackSawError", Napi::Boolean::New(env, cb.load() == 2));
    r.Set("skippedAfterError", Napi::Boolean::New(env, host[0] == 0xdeadbeefu));
  }
  {
    // Destruction drains: the callbacks enqueued before it have all run when it returns.
    std::atomic<int> ran{0};
    {
      rt::Stream s(0);
      for (int i = 0; i < 50; ++i) s.then([&ran](std::exception_ptr) { ++ran; });
    }
    r.Set("drained", Napi::Boolean::New(env, ran.load() == 50));
  }
  return r;
}

// hostWaits() -> how many copies so far made their caller wait because their host memory was
// pageable (rt::sim_host_waits): tests check that async calls make none.
Napi::Value HostWaits(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(rt::sim_host_waits())); }

// takeLaunchLog() -> [{ kernel, grid: [x, y, z], block: [x, y, z], smem }]: the launches run
// since the last call (sim::take_launch_log, the last 256 kept), oldest first, and empties the
// log: tests check which configuration a launcher chose (a tile's threads and shared memory).
Napi::Value TakeLaunchLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<sim::LaunchRecord> log = sim::take_launch_log();
  Napi::Array out = Napi::Array::New(env, log.size());
  const auto dims = [&](const sim::Dim3& d) {
    Napi::Array a = Napi::Array::New(env, 3);
    a.Set(uint32_t(0), Napi::Number::New(env, double(d.x)));
    a.Set(uint32_t(1), Napi::Number::New(env, double(d.y)));
    a.Set(uint32_t(2), Napi::Number::New(env, double(d.z)));
    return a;
  };
  for (size_t i = 0; i < log.size(); ++i) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("kernel", Napi::String::New(env, log[i].kernel));
    r.Set("grid", dims(log[i].grid));
    r.Set("block", dims(log[i].block));
    r.Set("smem", Napi::Number::New(env, double(log[i].smem)));
    out.Set(uint32_t(i), r);
  }
  return out;
}

}  // namespace

void register_device_selftest(Napi::Env env, Napi::Object exports) {
  exports.Set("streamSelfTest", Napi::Function::New(env, device_exports::guard<StreamSelfTest>, "streamSelfTest"));
  exports.Set("hostWaits", Napi::Function::New(env, device_exports::guard<HostWaits>, "hostWaits"));
  exports.Set("takeLaunchLog", Napi::Function::New(env, device_exports::guard<TakeLaunchLog>, "takeLaunchLog"));
}

}  // namespace binding
}  // namespace cg
