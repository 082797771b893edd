// The device runtime on the CUDA runtime (device_runtime.h). Every CUDA call is checked:
// a failure throws cg::CudaError naming the call (cuda_check.h), but cudaErrorMemoryAllocation
// from cudaMalloc, which throws rt::OutOfMemory (the bindings' ERR_CUDA_OOM).
//
// Host callbacks: cudaStreamAddCallback rather than cudaLaunchHostFunc, because a host function
// is not called at all once the context has faulted (a promise waiting on it would never
// settle), whereas a stream callback is always called, with the error. CUDA forbids CUDA calls
// inside the callback, so it only hands (fn, status) to the runtime's completion thread (one per
// process, started on first use, never joined), where fn runs and may call alloc()/free().
//
// Memory: rt::free keeps blocks in the cache of block_cache.h, rt::alloc takes them back; only a
// miss calls cudaMalloc and only the cache's evictions and release_cached() call cudaFree.
// Bookkeeping: a table {pointer -> (device, bytes, class)} under a mutex gives memory()'s counts.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/runtime/block_cache.h"
#include "cuda/runtime/device_runtime.h"

namespace cg {
namespace rt {
namespace {

struct Block {
  int device;
  size_t bytes;  // as asked
  size_t cls;    // its size class: what the device holds for it
};

struct Table {
  std::mutex mu;
  std::map<void*, Block> blocks;        // in use
  std::map<int, MemoryStats> stats;     // bytes, peak_bytes and reserved_bytes (cached_bytes: from cache)
  std::map<int, uint64_t> cache_limit;  // per device, asked once
  detail::BlockCache cache;
};

Table& table() {
  static Table* t = new Table;  // never destroyed: finalizers may run after static destructors
  return *t;
}

// The completion thread: runs the HostFns that stream callbacks hand over, in arrival order.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<HostFn, cudaError_t>> queue;
  bool started = false;

  void push(HostFn fn, cudaError_t status) {
    std::lock_guard<std::mutex> lk(mu);
    queue.emplace_back(std::move(fn), status);
    cv.notify_one();
  }

  void start() {
    std::lock_guard<std::mutex> lk(mu);
    if (started) return;
    std::thread([this] { run(); }).detach();
    started = true;
  }

  void run() noexcept {
    for (;;) {
      std::pair<HostFn, cudaError_t> item;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return !queue.empty(); });
        item = std::move(queue.front());
        queue.pop_front();
      }
      try {
        std::exception_ptr err;
        if (item.second != cudaSuccess) err = std::make_exception_ptr(CudaError(item.second, "a stream callback's status"));
        item.first(err);
      } catch (...) {
      }
    }
  }
};

Completions& completions() {
  static Completions* c = new Completions;  // never destroyed (its thread runs until exit)
  return *c;
}

struct Pending {
  HostFn fn;
};

void CUDART_CB on_stream_callback(cudaStream_t, cudaError_t status, void* data) {
  // No CUDA call here. push() may throw std::bad_alloc: then the function is dropped.
  Pending* p = static_cast<Pending*>(data);
  try {
    completions().push(std::move(p->fn), status);
  } catch (...) {
  }
  delete p;
}

void set_device(int device) { CG_CUDA_CHECK(cudaSetDevice(device)); }

}  // namespace

// ---- devices ------------------------------------------------------------------------------------
int device_count() {
  int n = 0;
  CG_CUDA_CHECK(cudaGetDeviceCount(&n));
  return n;
}

DeviceInfo device_info(int device) {
  cudaDeviceProp prop{};
  CG_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  DeviceInfo d;
  d.index = device;
  d.name = prop.name;
  d.sm = prop.major * 10 + prop.minor;
  d.total_memory = prop.totalGlobalMem;
  d.multiprocessors = prop.multiProcessorCount;
  d.simulated = false;
  return d;
}

int multiprocessors(int device) {
  static std::mutex mu;
  static std::vector<int> known;
  std::lock_guard<std::mutex> lock(mu);
  if (device >= 0 && size_t(device) < known.size() && known[size_t(device)] > 0) return known[size_t(device)];
  int n = 0;
  CG_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  if (device >= 0) {
    if (known.size() <= size_t(device)) known.resize(size_t(device) + 1, 0);
    known[size_t(device)] = n;
  }
  return n;
}

bool simulated() noexcept { return false; }

// ---- memory -------------------------------------------------------------------------------------
namespace {

// Frees device blocks that left the cache, and `also` when its p is not null (each on its device);
// throws the first failure after trying all of them. Their bytes are no longer counted as
// reserved either way.
void free_blocks(const detail::Blocks& blocks, detail::CachedBlock also = {}) {
  auto each = [&](auto&& f) {
    for (const detail::CachedBlock& b : blocks) f(b);
    if (also.p) f(also);
  };
  if (blocks.empty() && !also.p) return;
  {
    Table& t = table();
    std::lock_guard<std::mutex> lk(t.mu);
    each([&](const detail::CachedBlock& b) { t.stats[b.device].reserved_bytes -= b.bytes; });
  }
  cudaError_t first = cudaSuccess;
  each([&](const detail::CachedBlock& b) {
    cudaError_t e = cudaSetDevice(b.device);
    if (e == cudaSuccess) e = cudaFree(b.p);
    if (e != cudaSuccess && first == cudaSuccess) first = e;
  });
  if (first != cudaSuccess) throw CudaError(first, "cudaFree (of a block the cache let go)");
}

uint64_t cache_limit_of(int device) {
  Table& t = table();
  {
    std::lock_guard<std::mutex> lk(t.mu);
    auto it = t.cache_limit.find(device);
    if (it != t.cache_limit.end()) return it->second;
  }
  const uint64_t limit = detail::cache_limit(device_info(device).total_memory);
  std::lock_guard<std::mutex> lk(t.mu);
  t.cache_limit[device] = limit;
  return limit;
}

// Records p (class cls, asked `bytes`) as in use; `fresh`: it was not in the cache before.
void record_in_use(void* p, int device, size_t bytes, size_t cls, bool fresh) {
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  t.blocks.emplace(p, Block{device, bytes, cls});
  MemoryStats& s = t.stats[device];
  s.device = device;
  s.bytes += bytes;
  s.peak_bytes = std::max(s.peak_bytes, s.bytes);
  if (fresh) s.reserved_bytes += cls;
}

}  // namespace

void* alloc(int device, size_t bytes) {
  if (bytes == 0) throw Error("cudaErrorInvalidValue", "alloc", "0 bytes");
  const size_t cls = detail::size_class(bytes);
  set_device(device);
  Table& t = table();
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lk(t.mu);
    p = t.cache.take(device, cls);
  }
  if (p) {
    try {
      record_in_use(p, device, bytes, cls, false);
    } catch (...) {
      std::lock_guard<std::mutex> lk(t.mu);
      t.stats[device].reserved_bytes -= cls;
      (void)cudaFree(p);
      throw;
    }
    return p;
  }
  (void)cache_limit_of(device);  // asked here, so that free() never asks the device anything
  cudaError_t e = cudaMalloc(&p, cls);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky; clear it for the next call
    release_cached(device);    // what the cache holds may be what is missing
    set_device(device);
    e = cudaMalloc(&p, cls);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t held = 0;
    {
      std::lock_guard<std::mutex> lk(t.mu);
      auto it = t.stats.find(device);
      if (it != t.stats.end()) held = size_t(it->second.bytes);
    }
    throw OutOfMemory(device, bytes, held, "cudaMalloc");
  }
  CG_CUDA_CHECK(e);
  try {
    record_in_use(p, device, bytes, cls, true);
  } catch (...) {
    (void)cudaFree(p);
    throw;
  }
  return p;
}

void free(void* p) {
  if (!p) return;
  Table& t = table();
  Block b{};
  detail::Blocks evicted;
  detail::CachedBlock uncached{};
  {
    std::lock_guard<std::mutex> lk(t.mu);
    auto it = t.blocks.find(p);
    if (it == t.blocks.end()) throw Error("cudaErrorInvalidValue", "free", "not a pointer alloc() returned (or freed twice)");
    b = it->second;
    t.stats[b.device].bytes -= b.bytes;
    t.blocks.erase(it);
    uncached = t.cache.give_back(b.device, p, b.cls, t.cache_limit[b.device], evicted);  // the limit: asked by alloc()
  }
  free_blocks(evicted, uncached);
}

uint64_t release_cached(int device) {
  Table& t = table();
  return t.cache.drain_and_free(t.mu, device, [](const detail::Blocks& blocks) { free_blocks(blocks); });
}

std::vector<MemoryStats> memory() {
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  std::vector<MemoryStats> v;
  for (const auto& kv : t.stats) {
    MemoryStats s = kv.second;
    s.cached_bytes = t.cache.bytes(kv.first);
    v.push_back(s);
  }
  return v;
}

// ---- page-locked host memory --------------------------------------------------------------------
namespace {

detail::HostPool& host_pool() {
  static detail::HostPool* pool = new detail::HostPool;  // never destroyed, as the table
  return *pool;
}

void* raw_host_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky
    return nullptr;
  }
  CG_CUDA_CHECK(e);
  return p;
}

void raw_host_free(void* p) { CG_CUDA_CHECK(cudaFreeHost(p)); }

}  // namespace

void* host_alloc(size_t bytes) { return host_pool().alloc(bytes, raw_host_alloc, raw_host_free); }
void host_free(void* p) { host_pool().free(p, raw_host_free); }

// ---- events -------------------------------------------------------------------------------------
struct Event::Impl {
  cudaEvent_t event = nullptr;
  int device = 0;
  ~Impl() {
    if (event) (void)cudaEventDestroy(event);  // a destructor: errors have nowhere to go
  }
};

Event::Event(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Event::~Event() = default;

bool Event::done() {
  const cudaError_t e = cudaEventQuery(impl_->event);
  if (e == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  CG_CUDA_CHECK(e);
  return true;
}

void Event::synchronize() { CG_CUDA_CHECK(cudaEventSynchronize(impl_->event)); }

float Event::elapsed_ms_since(Event& earlier) {
  float ms = 0;
  CG_CUDA_CHECK(cudaEventElapsedTime(&ms, earlier.impl_->event, impl_->event));
  return ms;
}

// ---- streams ------------------------------------------------------------------------------------
struct Stream::Impl {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::mutex mu;  // serialises enqueues from several threads (set_device + the call)
};

Stream::Stream(int device) : impl_(new Impl) {
  impl_->device = device;
  set_device(device);
  CG_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
}

Stream::~Stream() {
  if (!impl_->stream) return;
  (void)cudaSetDevice(impl_->device);
  (void)cudaStreamSynchronize(impl_->stream);  // a destructor: errors have nowhere to go
  (void)cudaStreamDestroy(impl_->stream);
}

int Stream::device() const noexcept { return impl_->device; }
void* Stream::native() const noexcept { return impl_->stream; }

void Stream::copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_->stream));
}

void Stream::copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_->stream));
}

void Stream::copy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream));
}

void Stream::launch(const Kernel& kernel) {
  if (!kernel) throw Error("cudaErrorInvalidValue", "launch", "no kernel");
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  const std::string failure = kernel(impl_->stream);
  if (!failure.empty()) throw Error("cudaErrorLaunchFailure", "launch", failure);
  CG_CUDA_CHECK_LAUNCH();
}

std::shared_ptr<Event> Stream::record() {
  auto impl = std::make_shared<Event::Impl>();
  impl->device = impl_->device;
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaEventCreate(&impl->event));
  CG_CUDA_CHECK(cudaEventRecord(impl->event, impl_->stream));
  return std::make_shared<Event>(impl);
}

void Stream::then(HostFn fn) {
  if (!fn) throw Error("cudaErrorInvalidValue", "then", "no function");
  completions().start();
  std::unique_ptr<Pending> p(new Pending{std::move(fn)});
  std::lock_guard<std::mutex> lk(impl_->mu);
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaStreamAddCallback(impl_->stream, on_stream_callback, p.get(), 0));
  p.release();  // the callback owns it now
}

void Stream::synchronize() {
  set_device(impl_->device);
  CG_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

}  // namespace rt
}  // namespace cg
