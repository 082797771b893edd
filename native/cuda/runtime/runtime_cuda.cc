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
// Bookkeeping: a table {pointer -> (device, bytes)} under a mutex gives memory()'s counts.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/runtime/device_runtime.h"

namespace cg {
namespace rt {
namespace {

struct Block {
  int device;
  size_t bytes;
};

struct Table {
  std::mutex mu;
  std::map<void*, Block> blocks;
  std::map<int, MemoryStats> stats;
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
void* alloc(int device, size_t bytes) {
  if (bytes == 0) throw Error("cudaErrorInvalidValue", "alloc", "0 bytes");
  set_device(device);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky; clear it for the next call
    size_t held = 0;
    {
      std::lock_guard<std::mutex> lk(table().mu);
      auto it = table().stats.find(device);
      if (it != table().stats.end()) held = size_t(it->second.bytes);
    }
    throw OutOfMemory(device, bytes, held, "cudaMalloc");
  }
  CG_CUDA_CHECK(e);
  Table& t = table();
  try {
    std::lock_guard<std::mutex> lk(t.mu);
    t.blocks.emplace(p, Block{device, bytes});
    MemoryStats& s = t.stats[device];
    s.device = device;
    s.bytes += bytes;
    s.peak_bytes = std::max(s.peak_bytes, s.bytes);
  } catch (...) {
    (void)cudaFree(p);
    throw;
  }
  return p;
}

void free(void* p) {
  if (!p) return;
  int device = -1;
  {
    Table& t = table();
    std::lock_guard<std::mutex> lk(t.mu);
    auto it = t.blocks.find(p);
    if (it == t.blocks.end()) throw Error("cudaErrorInvalidValue", "free", "not a pointer alloc() returned (or freed twice)");
    device = it->second.device;
    t.stats[device].bytes -= it->second.bytes;
    t.blocks.erase(it);
  }
  set_device(device);
  CG_CUDA_CHECK(cudaFree(p));
}

std::vector<MemoryStats> memory() {
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  std::vector<MemoryStats> v;
  for (const auto& kv : t.stats) v.push_back(kv.second);
  return v;
}

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
