// The simulated device's execution core: runs a kernel written once as CUDA C++ (compiled here
// by the host compiler, see kernel.h) block by block, the threads of a block as OS threads.
//
// It refuses, loudly, what the hardware leaves undefined: the first refusal of a launch names the
// kernel, the block and the thread ("kernel probe_mma, block (0,0,0), thread (5,0,0): ...") and
// the launch fails with it (launch() returns it; nothing aborts the process). Refusals:
//   - a warp-collective op (.sync.aligned: mma, ldmatrix, shfl) that not all 32 lanes reach, or
//     that lanes reach at different ops;
//   - __syncthreads that some threads of the block never reach (they returned);
//   - ldmatrix / cp.async addresses that are misaligned or outside the block's shared memory;
//   - a launch that ends with cp.async copies in flight (not waited for);
//   - mma.sp (ptx/mma_sp.h): a sparsity selector other than 0/1, a metadata nibble outside the
//     ordered set in a lane the selector names (the other lanes' metadata is never read).
// Shared memory is one buffer per block, poisoned (every byte 0xFF: a float32 NaN, a float16
// NaN) when the block starts; a cp.async destination stays poisoned until its wait_group.
//
// Only the host build includes this file (kernel.h picks it when __CUDACC__ is not defined).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include <type_traits>

namespace cg {
namespace sim {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// ---- the current simulated thread (valid inside a kernel body) ----------------------------------
const Dim3& thread_idx();
const Dim3& block_idx();
const Dim3& block_dim();
const Dim3& grid_dim();
// Linear index of the thread in its block (x fastest), its lane (that % 32) and warp.
unsigned linear_tid();
unsigned lane();

// The block's dynamic shared memory (the launch's smem_bytes), and its size.
uint8_t* shared_base();
size_t shared_bytes();

// __syncthreads(): every thread of the block must reach it; a thread that returns while others
// wait there is a refusal ("barrier some threads never reach").
void sync_threads();

// Refuses: records "kernel K, block (x,y,z), thread (x,y,z): what" as the launch's error, wakes
// every waiting thread of the launch, and unwinds this thread (an exception the launch catches).
// Only the first refusal of a launch is kept. Outside a kernel it throws std::logic_error.
[[noreturn]] void fail(const std::string& what);
// fail(), naming the thread of lane `lane` (0..31) of the calling thread's warp instead of the
// calling thread: for a warp-collective fn (which runs on one lane) that finds one lane's input
// bad, e.g. a misaligned ldmatrix row address.
[[noreturn]] void fail_lane(unsigned lane, const std::string& what);

// A warp-collective operation: every one of the 32 lanes of the calling thread's warp calls it
// with the same `op` name; each passes in_bytes of input. When the 32th arrives, `fn` runs once
// (on one of the lanes), over ins = the 32 inputs (lane-major, in_bytes each) writing outs = the
// 32 outputs (lane-major, out_bytes each); then every lane gets its own output. A lane that
// returns from the kernel, or reaches a different op, while others wait is a refusal naming
// the op. fn may call fail() (e.g. a bad address in one lane; fail_lane() names that lane).
// fn and ctx are those the last arriving lane passed; all lanes of one op must pass the same
// in_bytes and out_bytes (else a refusal). fn's outputs start zeroed.
void warp_collective(const char* op, const void* in, size_t in_bytes, void* out, size_t out_bytes,
                     void (*fn)(const void* ins, void* outs, void* ctx), void* ctx);

// Typed convenience over warp_collective (In and Out are copied as bytes: trivially copyable).
namespace detail {
template <class In, class Out>
struct WarpOpThunk {
  void (*fn)(const In*, Out*, void*);
  void* ctx;
  // Calls fn through its own type (calling it through a cast function pointer would be UB).
  static void call(const void* ins, void* outs, void* thunk) {
    const WarpOpThunk* t = static_cast<const WarpOpThunk*>(thunk);
    t->fn(static_cast<const In*>(ins), static_cast<Out*>(outs), t->ctx);
  }
};
}  // namespace detail

template <class In, class Out>
Out warp_op(const char* op, const In& in, void (*fn)(const In* ins, Out* outs, void* ctx), void* ctx = nullptr) {
  static_assert(std::is_trivially_copyable<In>::value && std::is_trivially_copyable<Out>::value,
                "warp_op copies In and Out as bytes");
  Out out{};
  detail::WarpOpThunk<In, Out> thunk{fn, ctx};
  warp_collective(op, &in, sizeof(In), &out, sizeof(Out), &detail::WarpOpThunk<In, Out>::call, &thunk);
  return out;
}

// cp.async, per thread: copies cp_size bytes (4, 8 or 16) from global src to shared dst, of
// which the first src_size (0..cp_size) come from src and the rest are zeros. The source bytes
// are read when the instruction issues; dst stays poisoned until the group that holds the copy
// completes. Refuses a dst outside the block's shared memory, dst/src not aligned to cp_size, a
// src inside shared memory (when src_size > 0), and a cp_size or src_size out of range.
void cp_async(void* dst, const void* src, int cp_size, int src_size);
// cp.async.commit_group: the copies issued since the last commit become one group.
void cp_async_commit();
// cp.async.wait_group n: completes every committed group but the n most recent (copies not yet
// committed stay in flight). A thread that returns with copies in flight is refused.
void cp_async_wait(int n);

// Whether p .. p+bytes lies inside the current block's shared memory.
bool in_shared(const void* p, size_t bytes);

// ---- launches -----------------------------------------------------------------------------------
// The most dynamic shared memory one block may have: sm_90's opt-in limit (227 KiB).
constexpr size_t kMaxSharedBytes = size_t(227) * 1024;

struct LaunchResult {
  bool ok = true;
  std::string error;  // the first refusal, with kernel, block and thread named
};

// Runs `body` once per thread of every block of the grid, block after block (x fastest), the
// threads of one block concurrently; shared memory of smem_bytes per block (16-byte aligned or
// better, every byte 0xFF when the block starts). A bad configuration (a block of 0 or more
// than 1024 threads, block dims above 1024 x 1024 x 64, a grid dim of 0 or above 2^31-1 x 65535 x
// 65535, smem_bytes above kMaxSharedBytes) is refused with the kernel named. The first refusal
// ends the launch: no later block runs. Never throws; every simulated thread has ended when it
// returns.
LaunchResult launch(const char* kernel, Dim3 grid, Dim3 block, size_t smem_bytes, const std::function<void()>& body);

// The launches that ran (accepted configurations, in order, the last kLaunchLogSize kept), so that
// tests can tell which configuration a launcher chose (a tile's block and shared memory).
struct LaunchRecord {
  std::string kernel;
  Dim3 grid, block;
  size_t smem = 0;
};
constexpr size_t kLaunchLogSize = 256;
// Returns the log, oldest first, and empties it.
std::vector<LaunchRecord> take_launch_log();

}  // namespace sim
}  // namespace cg
