// The device runtime on the simulated device (device_runtime.h): COMPRESSED_GEMM_SIM_DEVICES
// devices (a decimal count from 1 to 8, read once; default 1), each "cuda-sim", sm 80, so that the
// `device` option and the checks of which device a weight or tensor is on are testable.
//
// Memory: aligned host memory (256 bytes, as cudaMalloc), registered in a table {base -> size}
// so that a copy can check that its "device" range lies inside one allocation (and refuse,
// cudaErrorInvalidValue, otherwise). The device holds at most COMPRESSED_GEMM_SIM_MEMORY bytes
// (a decimal byte count, read once; default 4 GiB) on each device, so that out-of-memory is
// testable (the limit applies to what is in use and what the cache of block_cache.h keeps). One
// table of the blocks in use for all devices (each block knows its device), counts per device. A
// cached block is not in the table, so a copy into memory freed by its owner is refused (a use
// after free caught), and every block is filled with 0xFF bytes when it is handed out (unwritten
// elements read as NaN, as a reused block on a GPU would hold garbage).
//
// Host memory: a copy whose host side is not inside a block of host_alloc() (page-locked under
// CUDA) makes its caller wait until the copy has run, as CUDA makes it wait, and is counted
// (sim_host_waits), so that tests can check that async calls never wait on the JS thread.
//
// Streams: a worker thread per stream running a FIFO queue of tasks (copies, kernels, events,
// host callbacks). One mutex per stream guards its queue, its counters and its sticky error; the
// worker runs each task outside the lock. synchronize() waits until the tasks enqueued before it
// have run. The destructor drains the queue, then joins the worker.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <new>
#include <thread>

#include "cuda/runtime/block_cache.h"
#include "cuda/runtime/device_runtime.h"

namespace cg {
namespace rt {
namespace {

constexpr size_t kAlign = 256;
constexpr uint64_t kDefaultLimit = uint64_t(4) << 30;
constexpr int kMaxDevices = 8;

int sim_devices() {
  static const int n = [] {
    const char* s = std::getenv("COMPRESSED_GEMM_SIM_DEVICES");
    if (!s || !*s) return 1;
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (!end || *end != '\0' || v < 1 || v > kMaxDevices) return 1;
    return int(v);
  }();
  return n;
}

uint64_t memory_limit() {
  static const uint64_t limit = [] {
    const char* s = std::getenv("COMPRESSED_GEMM_SIM_MEMORY");
    if (!s || !*s) return kDefaultLimit;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (!end || *end != '\0' || s[0] == '-') return kDefaultLimit;
    return uint64_t(v);
  }();
  return limit;
}

struct Block {
  size_t size;  // as asked: copies must stay inside it
  size_t cls;   // its size class: what the device holds for it
  int device;
};

struct Counts {
  uint64_t bytes = 0, peak = 0;  // in use (as asked)
  uint64_t reserved = 0;         // in use (size classes) + cached: what the limit applies to
  bool used = false;
};

struct Table {
  std::mutex mu;
  std::map<uintptr_t, Block> blocks;  // base -> block, in use only: a cached block is no device range
  Counts counts[kMaxDevices];
  detail::BlockCache cache;
  uint64_t host_waits = 0;  // copies whose caller waited: pageable host memory
};

Table& table() {
  static Table* t = new Table;  // never destroyed: streams and finalizers may outlive statics
  return *t;
}

void check_device(int device, const char* call) {
  if (device < 0 || device >= sim_devices())
    throw Error("cudaErrorInvalidDevice", call,
                "the simulator has " + std::to_string(sim_devices()) + " device(s) (COMPRESSED_GEMM_SIM_DEVICES); got " +
                    std::to_string(device));
}

// Whether [p, p + n) lies inside one allocation.
bool is_device_range(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  auto it = t.blocks.upper_bound(a);
  if (it == t.blocks.begin()) return false;
  --it;
  return a >= it->first && n <= it->second.size && a - it->first <= it->second.size - n;
}

void check_range(const void* p, size_t n, const char* call, const char* side) {
  if (!is_device_range(p, n))
    throw Error("cudaErrorInvalidValue", call,
                std::string("the ") + side + " range of " + std::to_string(n) + " bytes is not inside one device allocation");
}

}  // namespace

// ---- devices ------------------------------------------------------------------------------------
int device_count() { return sim_devices(); }

DeviceInfo device_info(int device) {
  check_device(device, "device_info");
  DeviceInfo d;
  d.index = device;
  d.name = "cuda-sim";
  d.sm = 80;
  d.total_memory = memory_limit();
  d.multiprocessors = 132;
  d.simulated = true;
  return d;
}

int multiprocessors(int device) { return device_info(device).multiprocessors; }

bool simulated() noexcept { return true; }

// ---- memory -------------------------------------------------------------------------------------
namespace {

constexpr unsigned char kPoison = 0xFF;  // every byte of a block handed out: NaN in each float dtype

void delete_block(void* p) { ::operator delete(p, std::align_val_t(kAlign)); }

// Deletes device blocks that left the cache, and `also` when its p is not null, uncounting them first.
void free_blocks(const detail::Blocks& blocks, detail::CachedBlock also = {}) {
  Table& t = table();
  {
    std::lock_guard<std::mutex> lk(t.mu);
    for (const detail::CachedBlock& b : blocks) t.counts[b.device].reserved -= b.bytes;
    if (also.p) t.counts[also.device].reserved -= also.bytes;
  }
  for (const detail::CachedBlock& b : blocks) delete_block(b.p);
  if (also.p) delete_block(also.p);
}

}  // namespace

void* alloc(int device, size_t bytes) {
  check_device(device, "alloc");
  if (bytes == 0) throw Error("cudaErrorInvalidValue", "alloc", "0 bytes");
  const size_t cls = detail::size_class(bytes);
  const uint64_t limit = memory_limit();
  Table& t = table();
  Counts& c = t.counts[device];
  void* p = nullptr;
  detail::Blocks drained;
  {
    std::lock_guard<std::mutex> lk(t.mu);
    c.used = true;
    p = t.cache.take(device, cls);
    if (!p) {
      if (cls > limit || c.reserved > limit - cls) {  // what the cache holds may be what is missing
        t.cache.drain(device, drained);
        for (const detail::CachedBlock& b : drained) c.reserved -= b.bytes;
      }
      if (cls > limit || c.reserved > limit - cls) {
        for (const detail::CachedBlock& b : drained) delete_block(b.p);
        throw OutOfMemory(device, bytes, size_t(c.bytes), "the simulated device holds " + std::to_string(limit) + " bytes (COMPRESSED_GEMM_SIM_MEMORY)");
      }
      c.reserved += cls;  // reserved before the host allocation, so that racing allocs respect the limit
    }
    c.bytes += bytes;
    c.peak = std::max(c.peak, c.bytes);
  }
  for (const detail::CachedBlock& b : drained) delete_block(b.p);
  if (!p) p = ::operator new(cls, std::align_val_t(kAlign), std::nothrow);  // not from the cache: a new block
  if (p) std::memset(p, kPoison, cls);  // in no table yet: no other thread can reach it
  std::lock_guard<std::mutex> lk(t.mu);
  if (!p) {
    c.bytes -= bytes;
    c.reserved -= cls;
    throw OutOfMemory(device, bytes, size_t(c.bytes), "the host could not provide the memory");
  }
  try {
    t.blocks.emplace(reinterpret_cast<uintptr_t>(p), Block{bytes, cls, device});
  } catch (...) {
    c.bytes -= bytes;
    c.reserved -= cls;
    delete_block(p);
    throw;
  }
  return p;
}

void free(void* p) {
  if (!p) return;
  Table& t = table();
  detail::Blocks evicted;
  detail::CachedBlock uncached{};
  {
    std::lock_guard<std::mutex> lk(t.mu);
    auto it = t.blocks.find(reinterpret_cast<uintptr_t>(p));
    if (it == t.blocks.end()) throw Error("cudaErrorInvalidValue", "free", "not a pointer alloc() returned (or freed twice)");
    const Block b = it->second;
    t.counts[b.device].bytes -= b.size;
    t.blocks.erase(it);
    uncached = t.cache.give_back(b.device, p, b.cls, detail::cache_limit(memory_limit()), evicted);
  }
  free_blocks(evicted, uncached);
}

uint64_t release_cached(int device) {
  if (device >= 0) check_device(device, "release_cached");
  Table& t = table();
  return t.cache.drain_and_free(t.mu, device, [](const detail::Blocks& blocks) { free_blocks(blocks); });
}

std::vector<MemoryStats> memory() {
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  std::vector<MemoryStats> v;
  for (int d = 0; d < kMaxDevices; ++d)
    if (t.counts[d].used) v.push_back(MemoryStats{d, t.counts[d].bytes, t.counts[d].peak, t.cache.bytes(d), t.counts[d].reserved});
  return v;
}

// ---- page-locked host memory --------------------------------------------------------------------
namespace {

detail::HostPool& host_pool() {
  static detail::HostPool* pool = new detail::HostPool;  // never destroyed, as the table
  return *pool;
}

void* raw_host_alloc(size_t bytes) { return ::operator new(bytes, std::align_val_t(kAlign), std::nothrow); }

// Whether [p, p + n) lies inside one block of host_alloc(); if not, counts a wait.
bool pinned_or_count(const void* p, size_t n) {
  if (host_pool().contains(p, n)) return true;
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  ++t.host_waits;
  return false;
}

}  // namespace

void* host_alloc(size_t bytes) { return host_pool().alloc(bytes, raw_host_alloc, delete_block); }
void host_free(void* p) { host_pool().free(p, delete_block); }

uint64_t sim_host_waits() noexcept {
  Table& t = table();
  std::lock_guard<std::mutex> lk(t.mu);
  return t.host_waits;
}

// ---- events -------------------------------------------------------------------------------------
struct Event::Impl {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::chrono::steady_clock::time_point at;
};

Event::Event(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Event::~Event() = default;

bool Event::done() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->done;
}

void Event::synchronize() {
  std::unique_lock<std::mutex> lk(impl_->mu);
  impl_->cv.wait(lk, [&] { return impl_->done; });
}

float Event::elapsed_ms_since(Event& earlier) {
  std::chrono::steady_clock::time_point a, b;
  {
    std::lock_guard<std::mutex> lk(earlier.impl_->mu);
    if (!earlier.impl_->done) throw Error("cudaErrorNotReady", "elapsed_ms_since", "the earlier event has not completed");
    a = earlier.impl_->at;
  }
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (!impl_->done) throw Error("cudaErrorNotReady", "elapsed_ms_since", "the event has not completed");
    b = impl_->at;
  }
  return std::chrono::duration<float, std::milli>(b - a).count();
}

// ---- streams ------------------------------------------------------------------------------------
struct Stream::Impl {
  // Runs on the worker; `error` is the sticky error (null when none). A task that fails sets it
  // through its return value.
  using Task = std::function<std::exception_ptr(std::exception_ptr error)>;

  int device = 0;
  std::mutex mu;
  std::condition_variable wake;  // the worker: a task or stop
  std::condition_variable idle;  // synchronize(): `completed` moved
  std::deque<Task> queue;
  uint64_t enqueued = 0, completed = 0;
  std::exception_ptr error;  // sticky: the first failure
  bool stop = false;
  std::thread worker;

  // Returns the task's ticket: it has run once `completed` reaches it.
  uint64_t push(Task task) {
    std::lock_guard<std::mutex> lk(mu);
    queue.push_back(std::move(task));
    ++enqueued;
    wake.notify_one();
    return enqueued;
  }

  // Waits until the task of `ticket` has run (whether or not it failed): what a copy with
  // pageable host memory makes its caller do under CUDA.
  void wait_for(uint64_t ticket) {
    std::unique_lock<std::mutex> lk(mu);
    idle.wait(lk, [&] { return completed >= ticket; });
  }

  void run() noexcept {
    for (;;) {
      Task task;
      std::exception_ptr err;
      {
        std::unique_lock<std::mutex> lk(mu);
        wake.wait(lk, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;  // stop, and drained
        task = std::move(queue.front());
        queue.pop_front();
        err = error;
      }
      std::exception_ptr failed;
      try {
        failed = task(err);
      } catch (...) {
        failed = std::current_exception();
      }
      task = nullptr;  // release what the task holds before the work counts as done
      {
        std::lock_guard<std::mutex> lk(mu);
        if (failed && !error) error = failed;
        ++completed;
        idle.notify_all();
      }
    }
  }
};

Stream::Stream(int device) : impl_(new Impl) {
  check_device(device, "Stream");
  impl_->device = device;
  Impl* s = impl_.get();
  impl_->worker = std::thread([s] { s->run(); });
}

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
    impl_->wake.notify_one();
  }
  if (impl_->worker.joinable()) impl_->worker.join();
}

int Stream::device() const noexcept { return impl_->device; }
void* Stream::native() const noexcept { return nullptr; }

void Stream::copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_range(dst, bytes, "copy_h2d", "destination");
  const bool pinned = pinned_or_count(src, bytes);
  const uint64_t ticket = impl_->push([=](std::exception_ptr err) -> std::exception_ptr {
    if (!err) std::memcpy(dst, src, bytes);
    return nullptr;
  });
  if (!pinned) impl_->wait_for(ticket);
}

void Stream::copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_range(src, bytes, "copy_d2h", "source");
  const bool pinned = pinned_or_count(dst, bytes);
  const uint64_t ticket = impl_->push([=](std::exception_ptr err) -> std::exception_ptr {
    if (!err) std::memcpy(dst, src, bytes);
    return nullptr;
  });
  if (!pinned) impl_->wait_for(ticket);
}

void Stream::copy_d2d(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_range(dst, bytes, "copy_d2d", "destination");
  check_range(src, bytes, "copy_d2d", "source");
  impl_->push([=](std::exception_ptr err) -> std::exception_ptr {
    if (!err) std::memmove(dst, src, bytes);
    return nullptr;
  });
}

void Stream::launch(const Kernel& kernel) {
  if (!kernel) throw Error("cudaErrorInvalidValue", "launch", "no kernel");
  impl_->push([kernel](std::exception_ptr err) -> std::exception_ptr {
    if (err) return nullptr;
    std::string failure = kernel(nullptr);
    if (failure.empty()) return nullptr;
    return std::make_exception_ptr(Error("cudaErrorLaunchFailure", "launch", failure));
  });
}

std::shared_ptr<Event> Stream::record() {
  auto impl = std::make_shared<Event::Impl>();
  auto ev = std::make_shared<Event>(impl);
  impl_->push([impl](std::exception_ptr) -> std::exception_ptr {
    std::lock_guard<std::mutex> lk(impl->mu);
    impl->done = true;
    impl->at = std::chrono::steady_clock::now();
    impl->cv.notify_all();
    return nullptr;
  });
  return ev;
}

void Stream::then(HostFn fn) {
  if (!fn) throw Error("cudaErrorInvalidValue", "then", "no function");
  impl_->push([fn](std::exception_ptr err) -> std::exception_ptr {
    try {
      fn(err);
    } catch (...) {
    }
    return nullptr;
  });
}

void Stream::synchronize() {
  std::unique_lock<std::mutex> lk(impl_->mu);
  const uint64_t ticket = impl_->enqueued;
  impl_->idle.wait(lk, [&] { return impl_->completed >= ticket; });
  if (impl_->error) std::rethrow_exception(impl_->error);
}

}  // namespace rt
}  // namespace cg
