// The device runtime's Node exports, the same in both addons: the simulated device's
// (binding/cuda_sim/device.cc) and the CUDA addon's (cuda/binding_device.cc). Each of those
// files includes this header once, defines platform_failure() and calls register_all(); the
// runtime underneath is whichever implementation of cuda/runtime/device_runtime.h the addon links.
// (Header-only because the CUDA addon does not link binding/args.cc; the argument checks below
// follow args.h: code ERR_NATIVE, "compressed-gemm native check: ...".)
//
//   devices()                                 -> [{ device, name, sm, totalMemory, multiprocessors, simulated }]
//   deviceAlloc({ device, bytes })            -> handle (an External; bytes may be 0)
//   deviceFree(handle)                        -> undefined; a second free is a no-op
//   copyToDevice({ handle, offset?, src })    [sync]  src: any TypedArray, bytes at handle+offset
//   copyToDeviceAsync({ handle, offset?, src }) -> Promise<undefined> (src copied at call time)
//   copyToHost({ handle, offset?, dst })      [sync]  -> dst
//   copyToHostAsync({ handle, offset?, dst }) -> Promise<dst> (dst filled on the JS thread)
//   copyDeviceToDevice({ dst, dstOffset?, src, srcOffset?, bytes }) [sync]
//   copyDeviceToDeviceAsync({ ...the same })  -> Promise<undefined>
//   memory()                                  -> { devices: [{ device, bytes, peakBytes, cachedBytes, reservedBytes }] }
//   releaseCache({ device? })                 -> bytes freed from the cache (device -1 or absent: all)
//
// Errors: bad arguments TypeError/RangeError code ERR_NATIVE (thrown, also by the async calls);
// a freed handle TypeError ERR_DISPOSED; out of device memory Error ERR_CUDA_OOM (with device,
// bytes); any other runtime failure Error ERR_CUDA with the CUDA error's name in `cudaError`;
// host memory exhausted ERR_OUT_OF_MEMORY. An async call's runtime failure rejects its promise;
// a copyToHostAsync whose dst was detached meanwhile rejects with TypeError ERR_DETACHED.
//
// Handles: an External over a Handle that holds a shared_ptr to the Allocation; deviceFree()
// drops it, the External's finalizer drops it too (the safety net for a forgotten handle), and
// every copy in flight holds its own reference, so the device memory is freed when the last of
// them lets go (a handle freed with copies in flight is freed after them). Handles are checked
// against a registry of live ones (never reinterpreting a foreign External).
//
// Streams: one process-wide stream per device (created on first use, never destroyed) carries
// every copy of every environment, so a sync copy is ordered after the async ones before it.
//
// Async copies stage their host side in page-locked memory (rt::HostBuffer): a copy with pageable
// memory would make the JS thread wait for the work queued before it.
//
// Async completion: the copy and then a host callback are enqueued on the stream; the callback
// (a runtime thread) hands the call to the JS thread through the environment's one
// thread-safe function, which the JS thread settles. No libuv pool thread waits on the device.
// Teardown (a worker terminated, the process exiting with copies in flight): an env cleanup
// hook, registered after the thread-safe function (so it runs before Node closes that
// function), marks the environment dead under the mutex that every call into the thread-safe
// function takes; from then on a completion only frees its C++ state (staging, device-memory
// reference) and settles nothing, and JS handles of the dead environment are left alone.
// Nothing lets an exception escape a completion.
#pragma once
#include <napi.h>

#include "binding/args.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <vector>

#include "cuda/runtime/device_runtime.h"

namespace cg {
namespace binding {
namespace device_exports {

// ---- errors -------------------------------------------------------------------------------------
struct Failure {
  enum Kind { Type, Range, Plain } kind = Plain;
  const char* code = "ERR_NATIVE";
  std::string message;
  std::string cuda_name;  // e.g. "cudaErrorInvalidValue"; empty when not a CUDA error
  int cuda_code = -1;     // the cudaError_t, when known
  double oom_device = -1, oom_bytes = -1;
};

// Defined once per addon (device.cc, binding_device.cc): a platform exception (the CUDA addon's
// cg::CudaError) as a Failure; false when `e` is not one.
bool platform_failure(const std::exception& e, Failure& out);

// The exception in `ep` as a Failure. Never throws.
inline Failure failure_of(std::exception_ptr ep) noexcept {
  Failure f;
  try {
    try {
      std::rethrow_exception(ep);
    } catch (const rt::OutOfMemory& e) {
      f.code = "ERR_CUDA_OOM";
      f.message = std::string("compressed-gemm: ") + e.what();
      f.cuda_name = e.name();
      f.oom_device = double(e.device());
      f.oom_bytes = double(e.requested());
    } catch (const rt::Error& e) {
      f.code = "ERR_CUDA";
      f.message = std::string("compressed-gemm: ") + e.what();
      f.cuda_name = e.name();
    } catch (const std::bad_alloc&) {
      f.code = "ERR_OUT_OF_MEMORY";
      f.message = "compressed-gemm: out of host memory";
    } catch (const std::exception& e) {
      if (!platform_failure(e, f)) {
        f.code = "ERR_NATIVE";
        f.message = std::string("compressed-gemm device runtime: ") + e.what();
      }
    } catch (...) {
      f.code = "ERR_NATIVE";
      f.message = "compressed-gemm device runtime: an unknown failure";
    }
  } catch (...) {
    // A string could not be allocated: the code alone.
  }
  return f;
}

inline Napi::Error to_js(const Napi::Env& env, const Failure& f) {
  const std::string msg = f.message.empty() ? std::string(f.code) : f.message;
  Napi::Error e = f.kind == Failure::Type    ? Napi::TypeError::New(env, msg)
                  : f.kind == Failure::Range ? Napi::RangeError::New(env, msg)
                                             : Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, f.code));
  if (!f.cuda_name.empty()) e.Set("cudaError", Napi::String::New(env, f.cuda_name));
  if (f.cuda_code >= 0) e.Set("cudaErrorCode", Napi::Number::New(env, f.cuda_code));
  if (f.oom_device >= 0) e.Set("device", Napi::Number::New(env, f.oom_device));
  if (f.oom_bytes >= 0) e.Set("bytes", Napi::Number::New(env, f.oom_bytes));
  return e;
}

// Wraps an export: a Napi::Error passes through; anything else becomes its coded JS error.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guard(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw to_js(info.Env(), failure_of(std::current_exception()));
  }
}

// ---- arguments ----------------------------------------------------------------------------------
constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;

inline int64_t int_opt(const Napi::Object& o, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return int_of(o, key, lo, hi);
}

struct HostBytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

// A TypedArray's bytes; a detached one reads as (nullptr, 0). Returns false when `v` is not a
// TypedArray.
inline bool typed_bytes(napi_env env, napi_value v, HostBytes& out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return false;
  size_t elem = 4;
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
    case napi_int16_array: case napi_uint16_array: elem = 2; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
    default: elem = 4; break;
  }
  out.data = static_cast<uint8_t*>(data);
  out.length = length * elem;
  return true;
}

inline HostBytes bytes_arg(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  HostBytes b;
  if (!typed_bytes(o.Env(), v, b)) throw_type(o.Env(), std::string(key) + " must be a TypedArray");
  if (!b.data && b.length == 0) {
    // Either empty or detached: a detached one has no buffer left to copy.
    napi_value ab;
    napi_typedarray_type type;
    size_t len = 0, off = 0;
    void* data = nullptr;
    bool detached = false;
    if (napi_get_typedarray_info(o.Env(), v, &type, &len, &data, &ab, &off) == napi_ok &&
        napi_is_detached_arraybuffer(o.Env(), ab, &detached) == napi_ok && detached)
      throw coded(Napi::TypeError::New(o.Env(), std::string("compressed-gemm: ") + key + " is detached"), "ERR_DETACHED");
  }
  return b;
}

// ---- handles ------------------------------------------------------------------------------------
struct Allocation {
  int device = 0;
  size_t bytes = 0;
  void* ptr = nullptr;  // null when bytes == 0
  ~Allocation() {
    if (!ptr) return;
    try {
      rt::free(ptr);
    } catch (...) {
      // Nowhere to report it (a finalizer, a completion); the runtime no longer counts it.
    }
  }
};

struct Handle {
  std::shared_ptr<Allocation> alloc;  // null once freed
};

struct Registry {
  std::mutex mu;
  std::unordered_set<const Handle*> live;
};
inline Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: finalizers may run late
  return *r;
}

inline void finalize_handle(Napi::Env, Handle* h) {
  {
    std::lock_guard<std::mutex> lk(registry().mu);
    registry().live.erase(h);
  }
  delete h;  // drops its reference to the allocation (if deviceFree did not)
}

// The Handle behind o[key] (or the value itself); throws ERR_NATIVE for what is not one.
inline Handle* handle_of(const Napi::Env& env, const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw_type(env, std::string(what) + " must be a device handle (deviceAlloc)");
  Handle* h = v.As<Napi::External<Handle>>().Data();
  std::lock_guard<std::mutex> lk(registry().mu);
  if (!registry().live.count(h)) throw_type(env, std::string(what) + " is not a device handle (deviceAlloc)");
  return h;
}

// A live allocation; a freed handle throws TypeError ERR_DISPOSED.
inline std::shared_ptr<Allocation> live_alloc(const Napi::Env& env, const Napi::Value& v, const char* what) {
  Handle* h = handle_of(env, v, what);
  if (!h->alloc) throw coded(Napi::TypeError::New(env, std::string("compressed-gemm: ") + what + " was freed"), "ERR_DISPOSED");
  return h->alloc;
}

// [offset, offset + n) inside the allocation, or ERR_NATIVE RangeError.
inline void check_range(const Napi::Env& env, const Allocation& a, int64_t offset, size_t n, const char* what) {
  if (uint64_t(offset) > a.bytes || n > a.bytes - uint64_t(offset))
    throw_range(env, std::string(what) + ": " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                       " are outside the allocation of " + std::to_string(a.bytes) + " bytes");
}

inline uint8_t* at(const Allocation& a, int64_t offset) { return static_cast<uint8_t*>(a.ptr) + offset; }

// ---- streams ------------------------------------------------------------------------------------
inline rt::Stream& stream_for(int device) {
  static std::mutex* mu = new std::mutex;
  static auto* streams = new std::map<int, rt::Stream*>;  // never destroyed (see the top)
  std::lock_guard<std::mutex> lk(*mu);
  auto it = streams->find(device);
  if (it != streams->end()) return *it->second;
  std::unique_ptr<rt::Stream> s(new rt::Stream(device));
  (*streams)[device] = s.get();
  return *s.release();
}

// ---- async completion ---------------------------------------------------------------------------
struct EnvState {
  std::mutex mu;
  bool alive = true;  // false from the env's cleanup hook on (guarded by mu)
  napi_threadsafe_function tsfn = nullptr;
  size_t pending = 0;  // calls in flight (JS thread only); the tsfn is ref'd while > 0
};

struct AsyncOp {
  std::shared_ptr<EnvState> state;
  std::shared_ptr<Allocation> alloc;  // the device memory stays until the op is gone
  std::vector<std::shared_ptr<Allocation>> keep;  // more of it, for ops over several (gemm_exports.h)
  rt::HostBuffer staging;  // page-locked: the copy never makes the JS thread wait for the device
  // More page-locked memory that copies enqueued for the op read (a LoRA row table, a shrink tile
  // table): kept until the op completes. Not in the kernel task: under CUDA that task runs (and
  // is destroyed) when it is enqueued, long before the copies ahead of it read their source.
  std::vector<std::shared_ptr<rt::HostBuffer>> host_keep;
  napi_deferred deferred = nullptr;
  napi_ref dst = nullptr;  // copyToHostAsync's destination
  size_t dst_bytes = 0;
  bool failed = false;
  Failure failure;
};

struct EnvTable {
  std::mutex mu;
  std::map<napi_env, std::shared_ptr<EnvState>> envs;
};
inline EnvTable& env_table() {
  static EnvTable* t = new EnvTable;
  return *t;
}

inline void on_env_cleanup(void* arg) {
  napi_env env = static_cast<napi_env>(arg);
  std::shared_ptr<EnvState> st;
  {
    std::lock_guard<std::mutex> lk(env_table().mu);
    auto it = env_table().envs.find(env);
    if (it == env_table().envs.end()) return;
    st = it->second;
    env_table().envs.erase(it);
  }
  std::lock_guard<std::mutex> lk(st->mu);
  st->alive = false;
}

inline void settle(napi_env env, AsyncOp& op) {
  Napi::Env e(env);
  Napi::HandleScope scope(e);
  if (op.failed) {
    napi_reject_deferred(env, op.deferred, to_js(e, op.failure).Value());
    return;
  }
  if (!op.dst) {
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, op.deferred, undef);
    return;
  }
  napi_value dst = nullptr;
  HostBytes b;
  if (napi_get_reference_value(env, op.dst, &dst) != napi_ok || !dst || !typed_bytes(env, dst, b) ||
      b.length != op.dst_bytes || (!b.data && op.dst_bytes)) {
    napi_reject_deferred(env, op.deferred,
                         coded(Napi::TypeError::New(e, "compressed-gemm: copyToHostAsync: dst was detached or resized before the copy completed"),
                                     "ERR_DETACHED").Value());
    return;
  }
  if (op.dst_bytes) std::memcpy(b.data, op.staging.data(), op.dst_bytes);
  napi_resolve_deferred(env, op.deferred, dst);
}

// The thread-safe function's call_js: on the JS thread (env null while Node drains the queue of
// a closing environment).
inline void call_js(napi_env env, napi_value, void*, void* data) {
  std::unique_ptr<AsyncOp> op(static_cast<AsyncOp*>(data));
  if (!env || !op) return;
  EnvState* st = op->state.get();
  {
    std::lock_guard<std::mutex> lk(st->mu);
    if (!st->alive) return;
  }
  try {
    settle(env, *op);
  } catch (...) {
    // The environment cannot run JS any more: nothing can be settled.
  }
  if (op->dst) napi_delete_reference(env, op->dst);
  if (st->pending > 0 && --st->pending == 0) napi_unref_threadsafe_function(env, st->tsfn);
}

// The stream's host callback (a runtime thread): hands the op to the JS thread, or frees it when
// the environment is gone. Never throws.
inline void complete(AsyncOp* op, std::exception_ptr err) noexcept {
  if (err) {
    op->failure = failure_of(err);
    op->failed = true;
  }
  std::shared_ptr<EnvState> st = op->state;
  {
    std::lock_guard<std::mutex> lk(st->mu);
    if (st->alive && napi_call_threadsafe_function(st->tsfn, op, napi_tsfn_nonblocking) == napi_ok) return;
  }
  // The environment is gone: its JS handles (deferred, dst reference) are abandoned with it.
  op->dst = nullptr;
  delete op;
}

// This environment's state, made on first use (JS thread).
inline std::shared_ptr<EnvState> env_state(const Napi::Env& env) {
  {
    std::lock_guard<std::mutex> lk(env_table().mu);
    auto it = env_table().envs.find(env);
    if (it != env_table().envs.end()) return it->second;
  }
  auto st = std::make_shared<EnvState>();
  napi_value name = Napi::String::New(env, "compressed-gemm device copy");
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, call_js, &st->tsfn) != napi_ok)
    throw Napi::Error::New(env, "compressed-gemm: cannot create the device completion function");
  napi_unref_threadsafe_function(env, st->tsfn);
  {
    std::lock_guard<std::mutex> lk(env_table().mu);
    env_table().envs[env] = st;
  }
  // After the thread-safe function: cleanup hooks run in reverse order, so this one runs first.
  napi_add_env_cleanup_hook(env, on_env_cleanup, static_cast<napi_env>(env));
  return st;
}

// Enqueues `enqueue(stream)` and then the completion; returns the op's promise. Runtime failures
// reject it.
template <class Enqueue>
Napi::Value run_async(const Napi::Env& env, int device, std::unique_ptr<AsyncOp> op, Enqueue enqueue) {
  napi_value promise;
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok) throw Napi::Error::New(env, "compressed-gemm: cannot create a promise");
  rt::Stream* stream = nullptr;
  bool enqueued = false;
  try {
    op->state = env_state(env);
    stream = &stream_for(device);
    enqueue(*stream, *op);
    enqueued = true;
    AsyncOp* raw = op.get();
    if (op->state->pending++ == 0) napi_ref_threadsafe_function(env, op->state->tsfn);
    try {
      stream->then([raw](std::exception_ptr e) { complete(raw, e); });
    } catch (...) {
      if (--op->state->pending == 0) napi_unref_threadsafe_function(env, op->state->tsfn);
      throw;
    }
    op.release();  // complete() owns it now
  } catch (...) {
    const Failure f = failure_of(std::current_exception());
    if (enqueued) {
      try {
        stream->synchronize();  // the staging buffer must outlive the copy
      } catch (...) {
      }
    }
    if (op->dst) napi_delete_reference(env, op->dst);
    napi_reject_deferred(env, op->deferred, to_js(env, f).Value());
  }
  return Napi::Value(env, promise);
}

// ---- exports ------------------------------------------------------------------------------------
inline Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n = rt::device_count();
  Napi::Array a = Napi::Array::New(env, size_t(n));
  for (int i = 0; i < n; ++i) {
    const rt::DeviceInfo d = rt::device_info(i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", Napi::Number::New(env, d.index));
    o.Set("name", Napi::String::New(env, d.name));
    o.Set("sm", Napi::Number::New(env, d.sm));
    o.Set("totalMemory", Napi::Number::New(env, double(d.total_memory)));
    o.Set("multiprocessors", Napi::Number::New(env, double(d.multiprocessors)));
    o.Set("simulated", Napi::Boolean::New(env, d.simulated));
    a.Set(uint32_t(i), o);
  }
  return a;
}

inline Napi::Value DeviceAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  const int device = int(int_opt(o, "device", 0, 1023, 0));
  const int64_t bytes = int_of(o, "bytes", 0, kMaxSafe);
  auto a = std::make_shared<Allocation>();
  a->device = device;
  a->bytes = size_t(bytes);
  if (bytes > 0) {
    a->ptr = rt::alloc(device, size_t(bytes));
  } else {
    (void)rt::device_info(device);  // no memory, but the device must exist
  }
  std::unique_ptr<Handle> h(new Handle{std::move(a)});
  {
    std::lock_guard<std::mutex> lk(registry().mu);
    registry().live.insert(h.get());
  }
  try {
    Napi::External<Handle> ext = Napi::External<Handle>::New(env, h.get(), finalize_handle);
    h.release();
    return ext;
  } catch (...) {
    std::lock_guard<std::mutex> lk(registry().mu);
    registry().live.erase(h.get());
    throw;
  }
}

inline Napi::Value DeviceFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw_type(env, "deviceFree(handle): no handle");
  Handle* h = handle_of(env, info[0], "handle");
  h->alloc.reset();  // the memory goes when no copy in flight holds it
  return env.Undefined();
}

inline Napi::Value CopyToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  std::shared_ptr<Allocation> a = live_alloc(env, o.Get("handle"), "handle");
  const int64_t offset = int_opt(o, "offset", 0, kMaxSafe, 0);
  const HostBytes src = bytes_arg(o, "src");
  check_range(env, *a, offset, src.length, "copyToDevice");
  if (src.length == 0) return env.Undefined();
  rt::Stream& s = stream_for(a->device);
  s.copy_h2d(at(*a, offset), src.data, src.length);
  s.synchronize();
  return env.Undefined();
}

inline Napi::Value CopyToDeviceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  std::unique_ptr<AsyncOp> op(new AsyncOp);
  op->alloc = live_alloc(env, o.Get("handle"), "handle");
  const int64_t offset = int_opt(o, "offset", 0, kMaxSafe, 0);
  const HostBytes src = bytes_arg(o, "src");
  check_range(env, *op->alloc, offset, src.length, "copyToDeviceAsync");
  op->staging = rt::HostBuffer(src.length);
  if (src.length) std::memcpy(op->staging.data(), src.data, src.length);  // the caller may reuse src at once
  const int device = op->alloc->device;
  return run_async(env, device, std::move(op), [offset](rt::Stream& s, AsyncOp& op) {
    s.copy_h2d(at(*op.alloc, offset), op.staging.data(), op.staging.size());
  });
}

inline Napi::Value CopyToHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  std::shared_ptr<Allocation> a = live_alloc(env, o.Get("handle"), "handle");
  const int64_t offset = int_opt(o, "offset", 0, kMaxSafe, 0);
  const HostBytes dst = bytes_arg(o, "dst");
  check_range(env, *a, offset, dst.length, "copyToHost");
  if (dst.length > 0) {
    rt::Stream& s = stream_for(a->device);
    s.copy_d2h(dst.data, at(*a, offset), dst.length);
    s.synchronize();  // the JS thread waits: dst cannot change meanwhile
  }
  return o.Get("dst");
}

inline Napi::Value CopyToHostAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  std::unique_ptr<AsyncOp> op(new AsyncOp);
  op->alloc = live_alloc(env, o.Get("handle"), "handle");
  const int64_t offset = int_opt(o, "offset", 0, kMaxSafe, 0);
  Napi::Value dstv = o.Get("dst");
  const HostBytes dst = bytes_arg(o, "dst");
  check_range(env, *op->alloc, offset, dst.length, "copyToHostAsync");
  op->staging = rt::HostBuffer(dst.length);
  op->dst_bytes = dst.length;
  if (napi_create_reference(env, dstv, 1, &op->dst) != napi_ok) throw Napi::Error::New(env, "compressed-gemm: cannot reference dst");
  const int device = op->alloc->device;
  return run_async(env, device, std::move(op), [offset](rt::Stream& s, AsyncOp& op) {
    s.copy_d2h(op.staging.data(), at(*op.alloc, offset), op.staging.size());
  });
}

// The checked arguments of a device-to-device copy.
struct D2D {
  std::shared_ptr<Allocation> dst, src;
  int64_t dst_off = 0, src_off = 0, bytes = 0;
};

inline D2D d2d_args(const Napi::CallbackInfo& info, const char* name) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  D2D c;
  c.dst = live_alloc(env, o.Get("dst"), "dst");
  c.src = live_alloc(env, o.Get("src"), "src");
  c.dst_off = int_opt(o, "dstOffset", 0, kMaxSafe, 0);
  c.src_off = int_opt(o, "srcOffset", 0, kMaxSafe, 0);
  c.bytes = int_of(o, "bytes", 0, kMaxSafe);
  check_range(env, *c.dst, c.dst_off, size_t(c.bytes), (std::string(name) + " dst").c_str());
  check_range(env, *c.src, c.src_off, size_t(c.bytes), (std::string(name) + " src").c_str());
  if (c.dst->device != c.src->device) throw_range(env, std::string(name) + ": dst and src are on different devices");
  return c;
}

inline Napi::Value CopyDeviceToDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const D2D c = d2d_args(info, "copyDeviceToDevice");
  if (c.bytes == 0) return env.Undefined();
  rt::Stream& s = stream_for(c.dst->device);
  s.copy_d2d(at(*c.dst, c.dst_off), at(*c.src, c.src_off), size_t(c.bytes));
  s.synchronize();
  return env.Undefined();
}

// The same, queued: settled once the copy has run (the JS thread does not wait for the stream).
inline Napi::Value CopyDeviceToDeviceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const D2D c = d2d_args(info, "copyDeviceToDeviceAsync");
  std::unique_ptr<AsyncOp> op(new AsyncOp);
  op->alloc = c.dst;
  op->keep.push_back(c.src);
  return run_async(env, c.dst->device, std::move(op), [c](rt::Stream& s, AsyncOp&) {
    if (c.bytes) s.copy_d2d(at(*c.dst, c.dst_off), at(*c.src, c.src_off), size_t(c.bytes));
  });
}

inline Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<rt::MemoryStats> m = rt::memory();
  Napi::Array devices = Napi::Array::New(env, m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("device", Napi::Number::New(env, m[i].device));
    d.Set("bytes", Napi::Number::New(env, double(m[i].bytes)));
    d.Set("peakBytes", Napi::Number::New(env, double(m[i].peak_bytes)));
    d.Set("cachedBytes", Napi::Number::New(env, double(m[i].cached_bytes)));
    d.Set("reservedBytes", Napi::Number::New(env, double(m[i].reserved_bytes)));
    devices.Set(uint32_t(i), d);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("devices", devices);
  return r;
}

inline Napi::Value ReleaseCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info);
  const int device = int(int_opt(o, "device", -1, 1023, -1));
  return Napi::Number::New(env, double(rt::release_cached(device)));
}

inline void register_all(Napi::Env env, Napi::Object exports) {
  exports.Set("devices", Napi::Function::New(env, guard<Devices>, "devices"));
  exports.Set("deviceAlloc", Napi::Function::New(env, guard<DeviceAlloc>, "deviceAlloc"));
  exports.Set("deviceFree", Napi::Function::New(env, guard<DeviceFree>, "deviceFree"));
  exports.Set("copyToDevice", Napi::Function::New(env, guard<CopyToDevice>, "copyToDevice"));
  exports.Set("copyToDeviceAsync", Napi::Function::New(env, guard<CopyToDeviceAsync>, "copyToDeviceAsync"));
  exports.Set("copyToHost", Napi::Function::New(env, guard<CopyToHost>, "copyToHost"));
  exports.Set("copyToHostAsync", Napi::Function::New(env, guard<CopyToHostAsync>, "copyToHostAsync"));
  exports.Set("copyDeviceToDevice", Napi::Function::New(env, guard<CopyDeviceToDevice>, "copyDeviceToDevice"));
  exports.Set("copyDeviceToDeviceAsync", Napi::Function::New(env, guard<CopyDeviceToDeviceAsync>, "copyDeviceToDeviceAsync"));
  exports.Set("memory", Napi::Function::New(env, guard<Memory>, "memory"));
  exports.Set("releaseCache", Napi::Function::New(env, guard<ReleaseCache>, "releaseCache"));
}

}  // namespace device_exports
}  // namespace binding
}  // namespace cg
