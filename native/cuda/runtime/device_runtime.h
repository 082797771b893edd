// The device runtime: devices, memory, streams, events and host callbacks, as one small interface
// with two implementations, of which each addon links exactly one:
//   runtime_cuda.cc  the CUDA runtime (the CUDA addon, CMakeLists.txt);
//   runtime_sim.cc   the simulated device (the cuda-sim addon, binding.gyp): "device memory" is
//                    aligned host memory registered in a table, each stream a worker thread
//                    running a FIFO queue, kernels run by sim::launch on that thread.
// Plain C++ (no N-API, no CUDA header), so that both addons and nvcc-compiled files include it.
//
// Errors. Every failing call throws:
//   - rt::OutOfMemory (an rt::Error) when the device cannot hold an allocation (CUDA:
//     cudaErrorMemoryAllocation; the sim: its memory limit, COMPRESSED_GEMM_SIM_MEMORY bytes,
//     default 4 GiB). The bindings map it to code ERR_CUDA_OOM. Nothing is left allocated.
//   - in the CUDA implementation, cg::CudaError (cuda_check.h) naming the failing call;
//   - in the simulator, rt::Error named as the CUDA runtime would name the failure
//     ("cudaErrorInvalidValue" for a copy whose "device" range is not device memory,
//     "cudaErrorLaunchFailure" for a refused kernel, "cudaErrorInvalidDevice").
// The bindings map rt::Error and cg::CudaError to code ERR_CUDA with the error's name.
//
// Threading. Every function may be called from any thread; the process-wide state (the
// allocation table, the byte counts) is guarded by a mutex. A Stream may be used from several
// threads (its enqueue calls are serialised); work enqueued on one stream runs in order.
//
// Ownership. alloc() returns memory the caller owns until free(). Host memory handed to an
// enqueued copy is borrowed: it must stay valid (and, for a device->host copy, untouched) until
// the copy is known to be done (a later synchronize(), a completed event, or a then() callback
// enqueued after it). A Stream owns its queue: its destructor waits for the work enqueued so far.
#pragma once
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cg {
namespace rt {

// A failed runtime call: `name` as CUDA names the error ("cudaErrorInvalidValue"), `call` the
// call that failed ("copy_h2d", "cudaMalloc"); what() is "name: description (call)".
class Error : public std::runtime_error {
 public:
  Error(std::string name, std::string call, const std::string& description)
      : std::runtime_error(name + ": " + description + " (" + call + ")"), name_(std::move(name)), call_(std::move(call)) {}
  const std::string& name() const noexcept { return name_; }
  const std::string& call() const noexcept { return call_; }

 private:
  std::string name_;
  std::string call_;
};

// The device cannot hold `requested` more bytes.
class OutOfMemory : public Error {
 public:
  OutOfMemory(int device, size_t requested, size_t held, const std::string& detail)
      : Error("cudaErrorMemoryAllocation", "alloc",
              "out of device memory on device " + std::to_string(device) + ": " + std::to_string(requested) +
                  " bytes requested, " + std::to_string(held) + " held by this process" + (detail.empty() ? "" : "; " + detail)),
        device_(device),
        requested_(requested) {}
  int device() const noexcept { return device_; }
  size_t requested() const noexcept { return requested_; }

 private:
  int device_;
  size_t requested_;
};

// ---- devices ------------------------------------------------------------------------------------
struct DeviceInfo {
  int index = 0;
  std::string name;        // the sim: "cuda-sim"
  int sm = 0;              // compute capability major*10 + minor (the sim: 80)
  uint64_t total_memory = 0;  // the sim: its memory limit
  int multiprocessors = 0;    // SMs (the sim: 132, an H100 / H200 SXM's, so launch heuristics meet real counts)
  bool simulated = false;
};

// device_info(device).multiprocessors, asked of the device once per process (kernel launchers
// choose their grids with it). Throws as device_info.
int multiprocessors(int device);

// Throws (CUDA: cudaErrorInsufficientDriver on a machine without a driver).
int device_count();
DeviceInfo device_info(int device);
// Whether this implementation is the simulator.
bool simulated() noexcept;

// ---- memory -------------------------------------------------------------------------------------
// `bytes` > 0 bytes of device memory on `device`, 256-byte aligned: a cached block of the
// request's size class when there is one (block_cache.h), else a new one from the device (CUDA:
// cudaMalloc; when it is refused, the device's cache is emptied and it is tried once more).
// Never initialised (the sim fills every block it hands out with 0xFF bytes, a NaN in every
// float dtype, so a kernel that leaves an element unwritten is caught). Throws OutOfMemory, or an
// error for a bad device.
void* alloc(int device, size_t bytes);
// Gives back what alloc() returned (null: nothing) to the cache, which frees what it cannot keep.
// Waits for nothing: the caller makes sure no enqueued work still uses it (which is what lets
// the next alloc() hand the block to any stream at once). Throws for a pointer alloc() did not
// return (the sim) or a failing cudaFree; the memory is no longer counted as in use either way.
void free(void* p);
// Frees the cached blocks of `device` (-1: of every device); returns their bytes. Throws for a
// failing cudaFree (after trying all of them).
uint64_t release_cached(int device);

struct MemoryStats {
  int device = 0;
  uint64_t bytes = 0;           // in use now: what alloc() was asked for and free() not yet given
  uint64_t peak_bytes = 0;      // the most in use at once since the process started
  uint64_t cached_bytes = 0;    // freed blocks kept for reuse (held on the device)
  uint64_t reserved_bytes = 0;  // all the device memory held: blocks in use (their size classes) + cached
};
// One entry per device that alloc() has been called for, in device order. Never throws (but for
// std::bad_alloc).
std::vector<MemoryStats> memory();

// ---- page-locked host memory --------------------------------------------------------------------
// A copy between the device and pageable host memory makes its caller wait: device -> host
// returns only once the copy is done (so after all the work queued before it), and host -> device
// may wait for the stream while the driver stages it (CUDA's "API synchronization behavior").
// An async call's host side of a copy is therefore page-locked memory from here, so that the JS
// thread never waits for the GPU. CUDA: cudaHostAlloc (portable); the sim: aligned host memory
// that its copies recognise. Freed blocks are cached by size class as device memory is
// (block_cache.h; at most kHostCacheBytes kept), since pinning pages is slow.
constexpr uint64_t kHostCacheBytes = uint64_t(256) << 20;
// `bytes` > 0. Throws std::bad_alloc when the host cannot provide it.
void* host_alloc(size_t bytes);
// What host_alloc returned (null: nothing), once no enqueued copy uses it. Throws for a pointer
// host_alloc did not return, or a failing cudaFreeHost.
void host_free(void* p);

// Page-locked host memory owned as a value: empty (no memory) for 0 bytes.
class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(size_t bytes) : p_(bytes ? host_alloc(bytes) : nullptr), n_(bytes) {}
  ~HostBuffer() { reset(); }
  HostBuffer(HostBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  HostBuffer& operator=(HostBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  uint8_t* data() const noexcept { return static_cast<uint8_t*>(p_); }
  size_t size() const noexcept { return n_; }

 private:
  void reset() noexcept {
    try {
      host_free(p_);
    } catch (...) {
      // a destructor: nowhere to report it
    }
    p_ = nullptr, n_ = 0;
  }
  void* p_ = nullptr;
  size_t n_ = 0;
};

// The simulator only (runtime_sim.cc; the CUDA addon does not link it): how many copies so far
// made their caller wait because their host memory was not from host_alloc, as CUDA would.
uint64_t sim_host_waits() noexcept;

// ---- streams ------------------------------------------------------------------------------------
class Event;

// A kernel launch: called with the native stream (cudaStream_t under CUDA, nullptr in the sim);
// returns "" when the launch went, else what went wrong (the sim: sim::launch's refusal). Under
// CUDA it runs on the enqueuing thread at once (it enqueues the kernel with <<<..., stream>>>);
// in the sim it runs on the stream's worker thread, in order, and a failure becomes the stream's
// sticky error (cudaErrorLaunchFailure with the refusal), reported by every later synchronize()
// and then(); work enqueued after a failure is skipped (as a faulted CUDA context does).
using Kernel = std::function<std::string(void* native_stream)>;

// Runs on a runtime thread once the work enqueued before it is done (CUDA: through
// cudaStreamAddCallback, then handed to the runtime's completion thread, so it may call alloc()
// and free(); the sim: on the stream's worker thread). `error` is null, or the stream's sticky
// error. It must not throw (what it throws is dropped), must not synchronize its own stream, and
// later work on the stream may run before it returns.
using HostFn = std::function<void(std::exception_ptr error)>;

class Stream {
 public:
  // A new stream on `device` (CUDA: non-blocking w.r.t. the legacy default stream). Throws.
  explicit Stream(int device);
  // Waits for the work enqueued so far (errors are dropped), then releases the stream.
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int device() const noexcept;
  void* native() const noexcept;  // cudaStream_t, or nullptr in the sim

  // Asynchronous copies (see Ownership above) when the host side is from host_alloc(); with
  // pageable host memory they make the caller wait (see host_alloc; the sim waits as CUDA
  // does: for the copy to complete). The device side must lie inside one allocation of alloc()
  // (the sim checks it at enqueue time and throws cudaErrorInvalidValue; CUDA fails as it does).
  // bytes == 0 is a no-op.
  void copy_h2d(void* dst_device, const void* src_host, size_t bytes);
  void copy_d2h(void* dst_host, const void* src_device, size_t bytes);
  void copy_d2d(void* dst_device, const void* src_device, size_t bytes);
  void launch(const Kernel& kernel);
  // An event that completes when the work enqueued before it is done.
  std::shared_ptr<Event> record();
  void then(HostFn fn);
  // Waits for the work enqueued so far; throws the stream's sticky error.
  void synchronize();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Event {
 public:
  ~Event();
  bool done();            // whether the work before it is done (throws a sticky error, CUDA)
  void synchronize();     // waits until done
  // Milliseconds between two completed events (`earlier` recorded first). Throws if either is
  // not done.
  float elapsed_ms_since(Event& earlier);

  struct Impl;  // each implementation's (shared with the stream that completes it)
  explicit Event(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace rt
}  // namespace cg
