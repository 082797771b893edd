// The simulated device's execution core (the contract is sim.h).
//
// A launch runs its blocks one after another (x fastest, then y, z). The threads of a block are
// OS threads: one per thread of the block, borrowed from a process-wide pool for the whole launch
// (thread i runs thread i of each block in turn). Each one's simulated-thread state is reached
// through a thread_local pointer while it runs the kernel body.
//
// Bookkeeping: every counter of the running block (barrier, warps, threads still running,
// threads blocked) is guarded by one block mutex; a barrier has its condition variable, and so
// has each warp, so that releasing one warp wakes only its lanes. A refusal records the launch's
// first error (under its own mutex), sets the `failed` flag, then wakes every waiter of the block
// (taking the block mutex before notifying, so no waiter misses it); waiters check the flag and
// unwind with a private exception, as does the refusing thread. Deadlocks the kernel cannot get
// out of are refusals too: a thread that returns while others wait at a barrier or at its
// warp's collective, a thread that reaches one after another thread (or lane) returned, and a
// block whose every running thread waits.
#include "cuda/sim/sim.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cg {
namespace sim {

void log_launch(const char* kernel, Dim3 grid, Dim3 block, size_t smem);  // below: the launch log

namespace {

constexpr unsigned kWarpSize = 32;
constexpr unsigned kMaxBlockThreads = 1024;
constexpr size_t kSharedAlign = 128;

// Unwinds a simulated thread after a refusal (its own or another thread's); caught by the
// thread's entry function, never seen by a kernel that does not catch everything.
struct Abort {};

struct Copy {
  uint8_t* dst;
  int size;
  uint8_t bytes[16];
};

struct Launch;

struct ThreadState {
  Launch* launch = nullptr;
  Dim3 tidx;
  unsigned linear = 0;
  std::vector<Copy> open;                  // cp.async issued since the last commit
  std::deque<std::vector<Copy>> groups;    // committed groups not yet waited for, oldest first
};

struct Warp {
  unsigned size = 0;           // its threads: 32, or fewer in a block's partial last warp
  unsigned arrived = 0;        // lanes waiting at `op` (32 while the last one runs fn)
  uint64_t gen = 0;            // completed collectives
  const char* op = nullptr;    // the op of the first waiting lane (valid while it waits)
  unsigned first_lane = 0;
  size_t in_bytes = 0, out_bytes = 0;
  int exited_lane = -1;        // the first lane of this warp that returned from the kernel
  const void* in[kWarpSize] = {};
  void* out[kWarpSize] = {};
  std::vector<uint8_t> ins, outs;  // gathered inputs / outputs, touched only by the lane running fn
  std::condition_variable cv;
};

struct Block {
  Dim3 idx;
  std::mutex mu;
  std::condition_variable bar_cv;
  unsigned running = 0;      // threads that have not returned
  unsigned blocked = 0;      // threads waiting at a barrier or a collective, not yet released
  unsigned bar_waiting = 0;  // threads at the barrier now
  uint64_t bar_gen = 0;
  int first_exited = -1;     // linear tid of the first thread that returned
};

struct SharedDeleter {
  void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(kSharedAlign)); }
};

struct Launch {
  std::string kernel;
  Dim3 grid, block;
  size_t smem = 0;
  unsigned nthreads = 0;
  std::unique_ptr<uint8_t, SharedDeleter> shared;
  const std::function<void()>* body = nullptr;

  std::atomic<bool> failed{false};
  std::mutex err_mu;
  std::string error;

  Block blk;
  std::unique_ptr<Warp[]> warps;
  unsigned nwarps = 0;
  std::unique_ptr<ThreadState[]> ts;

  // Its threads (borrowed from the pool): block `seq` starts when seq changes; the launching
  // thread waits until `done` threads have finished it; `active` threads still hold the launch.
  std::mutex pool_mu;
  std::condition_variable start_cv, done_cv;
  uint64_t seq = 0;
  unsigned done = 0;
  unsigned active = 0;
  bool stop = false;
};

thread_local ThreadState* t_cur = nullptr;

ThreadState& cur() {
  ThreadState* t = t_cur;
  if (!t) throw std::logic_error("cg::sim: a device function was called outside a kernel launch");
  return *t;
}

std::string dim_str(const Dim3& d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

Dim3 tidx_of(const Dim3& block, unsigned linear) {
  Dim3 t;
  t.x = linear % block.x;
  t.y = (linear / block.x) % block.y;
  t.z = linear / (block.x * block.y);
  return t;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
  return buf;
}

// Wakes every waiter of the running block. The caller must not hold blk.mu.
void wake_all(Launch& L) {
  std::lock_guard<std::mutex> lk(L.blk.mu);
  L.blk.bar_cv.notify_all();
  for (unsigned w = 0; w < L.nwarps; ++w) L.warps[w].cv.notify_all();
}

// Records the launch's first error, naming thread `linear` of the running block, and wakes every
// waiter. Never throws; the caller must not hold blk.mu.
void record(Launch& L, unsigned linear, const std::string& what) noexcept {
  try {
    std::lock_guard<std::mutex> lk(L.err_mu);
    if (L.error.empty()) {
      L.error = "kernel " + L.kernel + ", block " + dim_str(L.blk.idx) + ", thread " +
                dim_str(tidx_of(L.block, linear)) + ": " + what;
    }
  } catch (...) {
    // Out of memory for the message: the flag below still fails the launch.
  }
  L.failed.store(true, std::memory_order_release);
  try {
    wake_all(L);
  } catch (...) {
  }
}

[[noreturn]] void refuse(Launch& L, unsigned linear, const std::string& what) {
  record(L, linear, what);
  throw Abort{};
}

void check_abort(const Launch& L) {
  if (L.failed.load(std::memory_order_acquire)) throw Abort{};
}

Warp& warp_of(Launch& L, unsigned linear) { return L.warps[linear / kWarpSize]; }

// With blk.mu held (through lk): if every thread that has not returned waits, none can go on.
// Then describes who waits where, releases lk and refuses, naming the calling thread.
void check_deadlock(Launch& L, std::unique_lock<std::mutex>& lk, unsigned linear) {
  Block& b = L.blk;
  if (b.running == 0 || b.blocked != b.running) return;
  std::string what = "deadlock: every thread of the block that has not returned waits, and none can go on (";
  bool first = true;
  if (b.bar_waiting) {
    what += std::to_string(b.bar_waiting) + " at __syncthreads";
    first = false;
  }
  for (unsigned w = 0; w < L.nwarps; ++w) {
    const Warp& wp = L.warps[w];
    if (wp.arrived == 0 || wp.arrived == kWarpSize) continue;
    what += std::string(first ? "" : "; ") + "warp " + std::to_string(w) + ": " + std::to_string(wp.arrived) +
            " of 32 lanes at .sync.aligned op " + wp.op;
    first = false;
  }
  what += "): a .sync.aligned op or __syncthreads that not all threads reach";
  lk.unlock();
  refuse(L, linear, what);
}

// After the kernel body: copies still pending are a refusal.
void check_copies(ThreadState& t) {
  size_t open = t.open.size(), committed = 0, groups = 0, bytes = 0;
  for (const Copy& c : t.open) bytes += size_t(c.size);
  for (const auto& g : t.groups) {
    if (g.empty()) continue;
    ++groups;
    committed += g.size();
    for (const Copy& c : g) bytes += size_t(c.size);
  }
  const size_t copies = open + committed;
  if (copies == 0) return;
  std::string what = "cp.async copies in flight when the kernel returned (missing cp.async.wait_group): " +
                     std::to_string(copies) + (copies == 1 ? " copy (" : " copies (") + std::to_string(bytes) +
                     " bytes) pending, ";
  if (open) what += open == copies ? "never committed" : std::to_string(open) + " never committed, ";
  if (committed) {
    if (committed != copies) what += std::to_string(committed) + " ";
    what += "in " + std::to_string(groups) + (groups == 1 ? " committed group" : " committed groups") +
            " not waited for";
  }
  refuse(*t.launch, t.linear, what);
}

// A thread has returned (or unwound): updates the block's bookkeeping, and refuses what its
// return makes impossible to finish. Never throws.
void on_exit(ThreadState& t) noexcept {
  Launch& L = *t.launch;
  Block& b = L.blk;
  std::string what;
  bool no_memory = false;
  try {
    std::unique_lock<std::mutex> lk(b.mu);
    b.running--;
    if (L.failed.load(std::memory_order_acquire)) return;
    if (b.first_exited < 0) b.first_exited = int(t.linear);
    Warp& w = warp_of(L, t.linear);
    const unsigned lane = t.linear % kWarpSize;
    if (w.exited_lane < 0) w.exited_lane = int(lane);
    if (b.bar_waiting > 0) {
      what = "returned from the kernel while " + std::to_string(b.bar_waiting) +
             " threads wait at __syncthreads (a __syncthreads that some threads never reach)";
    } else if (w.arrived > 0 && w.arrived < kWarpSize) {
      what = std::string(".sync.aligned op ") + w.op + ": lane " + std::to_string(lane) +
             " returned without reaching it (" + std::to_string(w.arrived) + " lanes wait there, lane " +
             std::to_string(w.first_lane) + " first)";
    } else if (b.running > 0 && b.blocked == b.running) {
      try {
        check_deadlock(L, lk, t.linear);
      } catch (const Abort&) {
      }
      return;
    } else {
      return;
    }
  } catch (...) {
    no_memory = true;  // building the message failed: fail the launch without one
  }
  record(L, t.linear, no_memory ? std::string() : what);
}

// The entry of one simulated thread. Nothing escapes it.
void run_thread(ThreadState& t) noexcept {
  Launch& L = *t.launch;
  t_cur = &t;
  try {
    try {
      (*L.body)();
      check_copies(t);
    } catch (const Abort&) {
    } catch (const std::exception& e) {
      record(L, t.linear, std::string("an exception escaped the kernel body: ") + e.what());
    } catch (...) {
      record(L, t.linear, "an exception (not a std::exception) escaped the kernel body");
    }
  } catch (...) {
    // Building a message failed (out of memory): fail the launch without one.
    record(L, t.linear, std::string());
  }
  t.open.clear();
  t.groups.clear();
  on_exit(t);
  t_cur = nullptr;
}

// ---- the worker threads ---------------------------------------------------------------------------
// A launch borrows one OS thread per thread of its block from a process-wide pool of idle ones
// (making new ones when too few are idle), keeps them for all its blocks, and gives them back
// before it returns. Making a thread costs far more than a block handoff, so tests that launch
// many small kernels stay fast; the pool keeps at most kMaxIdle idle threads (the others end),
// and a thread idle for kIdleEnd ends too. The pool is never destroyed: its idle threads wait
// until they time out or the process exits.

constexpr size_t kMaxIdle = 1024;
constexpr std::chrono::seconds kIdleEnd(30);

struct PoolThread {
  std::mutex mu;
  std::condition_variable cv;
  Launch* launch = nullptr;  // the job: run thread `linear` of every block of `launch`
  unsigned linear = 0;
};

struct ThreadPool {
  std::mutex mu;
  std::vector<PoolThread*> idle;
};

ThreadPool& pool() {
  static ThreadPool* p = new ThreadPool;  // never destroyed (see above)
  return *p;
}

// Runs thread `linear` of each block of the launch until the launch stops.
void run_blocks(Launch* L, unsigned linear) noexcept {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(L->pool_mu);
      L->start_cv.wait(lk, [&] { return L->stop || L->seq != seen; });
      if (L->stop) return;
      seen = L->seq;
    }
    run_thread(L->ts[linear]);
    {
      std::lock_guard<std::mutex> lk(L->pool_mu);
      if (++L->done == L->nthreads) L->done_cv.notify_all();
    }
  }
}

void pool_main(PoolThread* p) noexcept {
  for (;;) {
    Launch* L;
    unsigned linear;
    {
      std::unique_lock<std::mutex> lk(p->mu);
      if (!p->cv.wait_for(lk, kIdleEnd, [&] { return p->launch != nullptr; })) {
        // Idle too long: end, unless a launch has just taken us from the idle list (under the
        // pool's mutex), in which case its job is on the way.
        lk.unlock();
        bool removed = false;
        {
          std::lock_guard<std::mutex> plk(pool().mu);
          auto& idle = pool().idle;
          auto it = std::find(idle.begin(), idle.end(), p);
          if (it != idle.end()) {
            idle.erase(it);
            removed = true;
          }
        }
        if (removed) {
          delete p;
          return;
        }
        continue;
      }
      L = p->launch;
      linear = p->linear;
      p->launch = nullptr;
    }
    run_blocks(L, linear);
    // Back to the idle list before the launch learns that we are done, so that the next launch
    // finds us there.
    bool keep = false;
    try {
      std::lock_guard<std::mutex> lk(pool().mu);
      if (pool().idle.size() < kMaxIdle) {
        pool().idle.push_back(p);
        keep = true;
      }
    } catch (...) {
    }
    {
      std::lock_guard<std::mutex> lk(L->pool_mu);
      if (--L->active == 0) L->done_cv.notify_all();  // under the lock: L may end right after
    }
    if (!keep) {
      delete p;
      return;
    }
  }
}

// Gives the launch's threads their jobs; on failure (no thread could be made) starts none and
// throws.
void start_threads(Launch& L) {
  std::vector<PoolThread*> got;
  got.reserve(L.nthreads);
  {
    std::lock_guard<std::mutex> lk(pool().mu);
    while (got.size() < L.nthreads && !pool().idle.empty()) {
      got.push_back(pool().idle.back());
      pool().idle.pop_back();
    }
  }
  try {
    while (got.size() < L.nthreads) {
      std::unique_ptr<PoolThread> p(new PoolThread);
      std::thread(pool_main, p.get()).detach();
      got.push_back(p.release());
    }
  } catch (...) {
    std::lock_guard<std::mutex> lk(pool().mu);
    for (PoolThread* p : got) pool().idle.push_back(p);  // may exceed kMaxIdle for a while
    throw;
  }
  {
    std::lock_guard<std::mutex> lk(L.pool_mu);
    L.active = L.nthreads;
  }
  for (unsigned i = 0; i < L.nthreads; ++i) {
    PoolThread* p = got[i];
    {
      std::lock_guard<std::mutex> lk(p->mu);
      p->launch = &L;
      p->linear = i;
    }
    p->cv.notify_one();
  }
}

// On every way out of launch_impl once the threads have started: stops them and waits until
// every one has let go of the launch.
struct StopThreads {
  Launch& L;
  ~StopThreads() {
    std::unique_lock<std::mutex> lk(L.pool_mu);
    L.stop = true;
    L.start_cv.notify_all();
    L.done_cv.wait(lk, [&] { return L.active == 0; });
  }
};

std::string check_config(const Dim3& grid, const Dim3& block, size_t smem) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || threads > kMaxBlockThreads)
    return "block " + dim_str(block) + " has " + std::to_string(threads) + " threads; a block has 1 to 1024";
  if (block.x > 1024 || block.y > 1024 || block.z > 64)
    return "block " + dim_str(block) + " is over the limits 1024 x 1024 x 64";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "grid " + dim_str(grid) + " has no blocks";
  if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    return "grid " + dim_str(grid) + " is over the limits 2^31-1 x 65535 x 65535";
  if (smem > kMaxSharedBytes)
    return std::to_string(smem) + " bytes of shared memory per block; at most " + std::to_string(kMaxSharedBytes);
  return std::string();
}

LaunchResult launch_impl(const char* kernel, Dim3 grid, Dim3 block, size_t smem_bytes,
                         const std::function<void()>& body) {
  LaunchResult r;
  const std::string name = kernel ? kernel : "(unnamed)";
  std::string bad = check_config(grid, block, smem_bytes);
  if (bad.empty() && !body) bad = "no kernel body";
  if (!bad.empty()) {
    r.ok = false;
    r.error = "kernel " + name + ": launch refused: " + bad;
    return r;
  }
  log_launch(kernel, grid, block, smem_bytes);

  Launch L;
  L.kernel = name;
  L.grid = grid;
  L.block = block;
  L.smem = smem_bytes;
  L.nthreads = block.x * block.y * block.z;
  L.body = &body;
  L.shared.reset(static_cast<uint8_t*>(::operator new(smem_bytes, std::align_val_t(kSharedAlign))));
  L.nwarps = (L.nthreads + kWarpSize - 1) / kWarpSize;
  L.warps.reset(new Warp[L.nwarps]);
  for (unsigned w = 0; w < L.nwarps; ++w) L.warps[w].size = std::min(kWarpSize, L.nthreads - w * kWarpSize);
  L.ts.reset(new ThreadState[L.nthreads]);
  for (unsigned i = 0; i < L.nthreads; ++i) {
    L.ts[i].launch = &L;
    L.ts[i].linear = i;
    L.ts[i].tidx = tidx_of(block, i);
  }

  try {
    start_threads(L);
  } catch (const std::exception& e) {
    r.ok = false;
    r.error = "kernel " + name + ": the simulator could not start the block's " + std::to_string(L.nthreads) +
              " threads (" + e.what() + ")";
    return r;
  }
  StopThreads stop_threads{L};

  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        if (L.failed.load(std::memory_order_acquire)) break;
        // The workers are idle: set up the block, then start it (pool_mu orders the two).
        {
          std::lock_guard<std::mutex> lk(L.blk.mu);
          L.blk.idx = Dim3{x, y, z};
          L.blk.running = L.nthreads;
          L.blk.blocked = 0;
          L.blk.bar_waiting = 0;
          L.blk.first_exited = -1;
          for (unsigned w = 0; w < L.nwarps; ++w) {
            Warp& wp = L.warps[w];
            wp.arrived = 0;
            wp.op = nullptr;
            wp.exited_lane = -1;
          }
        }
        if (smem_bytes) std::memset(L.shared.get(), 0xFF, smem_bytes);
        std::unique_lock<std::mutex> lk(L.pool_mu);
        L.done = 0;
        ++L.seq;
        L.start_cv.notify_all();
        L.done_cv.wait(lk, [&] { return L.done == L.nthreads; });
      }
    }
  }

  if (L.failed.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lk(L.err_mu);
    r.ok = false;
    r.error = L.error.empty() ? "kernel " + name + ": failed (no message: out of memory)" : L.error;
  }
  return r;  // ~StopThreads waits until every thread has let go of L
}

}  // namespace

// ---- the current simulated thread -------------------------------------------------------------

const Dim3& thread_idx() { return cur().tidx; }
const Dim3& block_idx() { return cur().launch->blk.idx; }
const Dim3& block_dim() { return cur().launch->block; }
const Dim3& grid_dim() { return cur().launch->grid; }
unsigned linear_tid() { return cur().linear; }
unsigned lane() { return cur().linear % kWarpSize; }

uint8_t* shared_base() { return cur().launch->shared.get(); }
size_t shared_bytes() { return cur().launch->smem; }

void fail(const std::string& what) {
  ThreadState* t = t_cur;
  if (!t) throw std::logic_error("cg::sim::fail outside a kernel launch: " + what);
  refuse(*t->launch, t->linear, what);
}

void fail_lane(unsigned lane_id, const std::string& what) {
  ThreadState* t = t_cur;
  if (!t) throw std::logic_error("cg::sim::fail_lane outside a kernel launch: " + what);
  Launch& L = *t->launch;
  const unsigned linear = (t->linear / kWarpSize) * kWarpSize + lane_id;
  if (lane_id >= kWarpSize || linear >= L.nthreads)
    refuse(L, t->linear, what + " (fail_lane: lane " + std::to_string(lane_id) + " is not in this warp)");
  refuse(L, linear, what);
}

bool in_shared(const void* p, size_t bytes) {
  ThreadState* t = t_cur;
  if (!t) return false;
  const uintptr_t base = reinterpret_cast<uintptr_t>(t->launch->shared.get());
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const size_t size = t->launch->smem;
  if (a < base) return false;
  const uintptr_t off = a - base;
  return off <= size && bytes <= size - off;
}

// ---- __syncthreads ------------------------------------------------------------------------------

void sync_threads() {
  ThreadState& t = cur();
  Launch& L = *t.launch;
  Block& b = L.blk;
  check_abort(L);
  std::unique_lock<std::mutex> lk(b.mu);
  if (b.first_exited >= 0) {
    const unsigned who = unsigned(b.first_exited);
    lk.unlock();
    refuse(L, who,
           "returned from the kernel, and thread " + dim_str(t.tidx) +
               " waits at __syncthreads (a __syncthreads that some threads never reach)");
  }
  if (++b.bar_waiting == L.nthreads) {
    b.bar_waiting = 0;
    b.bar_gen++;
    b.blocked -= L.nthreads - 1;
    b.bar_cv.notify_all();
    return;
  }
  b.blocked++;
  check_deadlock(L, lk, t.linear);
  const uint64_t gen = b.bar_gen;
  b.bar_cv.wait(lk, [&] { return b.bar_gen != gen || L.failed.load(std::memory_order_acquire); });
  if (b.bar_gen == gen) throw Abort{};
}

// ---- warp collectives ---------------------------------------------------------------------------

void warp_collective(const char* op, const void* in, size_t in_bytes, void* out, size_t out_bytes,
                     void (*fn)(const void* ins, void* outs, void* ctx), void* ctx) {
  ThreadState& t = cur();
  Launch& L = *t.launch;
  Block& b = L.blk;
  check_abort(L);
  if (!op) op = "(unnamed)";
  const unsigned lane_id = t.linear % kWarpSize;
  const unsigned warp_base = t.linear - lane_id;
  Warp& w = warp_of(L, t.linear);
  if (w.size < kWarpSize)
    refuse(L, t.linear,
           std::string(".sync.aligned op ") + op + " needs all 32 lanes; this warp has " + std::to_string(w.size) +
               " threads (a block of " + std::to_string(L.nthreads) + " threads, not a multiple of 32)");
  std::unique_lock<std::mutex> lk(b.mu);
  if (w.exited_lane >= 0) {
    const unsigned who = warp_base + unsigned(w.exited_lane);
    const std::string what = std::string(".sync.aligned op ") + op + ": lane " + std::to_string(w.exited_lane) +
                             " returned without reaching it (lane " + std::to_string(lane_id) + " is there)";
    lk.unlock();
    refuse(L, who, what);
  }
  if (w.arrived == 0) {
    w.op = op;
    w.first_lane = lane_id;
    w.in_bytes = in_bytes;
    w.out_bytes = out_bytes;
  } else if (std::strcmp(w.op, op) != 0) {
    const std::string what = "lane " + std::to_string(lane_id) + " is at " + op + " while lane " +
                             std::to_string(w.first_lane) + " is at " + w.op +
                             " (.sync.aligned ops that lanes reach in different orders)";
    lk.unlock();
    refuse(L, t.linear, what);
  } else if (w.in_bytes != in_bytes || w.out_bytes != out_bytes) {
    const std::string what = std::string(".sync.aligned op ") + op + ": lane " + std::to_string(lane_id) + " passes " +
                             std::to_string(in_bytes) + "/" + std::to_string(out_bytes) + " bytes in/out, lane " +
                             std::to_string(w.first_lane) + " " + std::to_string(w.in_bytes) + "/" +
                             std::to_string(w.out_bytes);
    lk.unlock();
    refuse(L, t.linear, what);
  }
  w.in[lane_id] = in;
  w.out[lane_id] = out;
  if (++w.arrived < kWarpSize) {
    b.blocked++;
    check_deadlock(L, lk, t.linear);
    const uint64_t gen = w.gen;
    w.cv.wait(lk, [&] { return w.gen != gen || L.failed.load(std::memory_order_acquire); });
    if (w.gen == gen) throw Abort{};
    return;  // the lane that ran fn wrote our output
  }
  // The 32nd lane: run fn with the lock released (fn may refuse, which wakes everyone). The other
  // lanes wait until we release them, so their in/out pointers stay valid.
  lk.unlock();
  w.ins.resize(kWarpSize * in_bytes);
  w.outs.assign(kWarpSize * out_bytes, 0);
  if (in_bytes)
    for (unsigned l = 0; l < kWarpSize; ++l) std::memcpy(w.ins.data() + l * in_bytes, w.in[l], in_bytes);
  fn(w.ins.data(), w.outs.data(), ctx);
  if (out_bytes)
    for (unsigned l = 0; l < kWarpSize; ++l) std::memcpy(w.out[l], w.outs.data() + l * out_bytes, out_bytes);
  lk.lock();
  w.arrived = 0;
  w.op = nullptr;
  w.gen++;
  b.blocked -= kWarpSize - 1;
  w.cv.notify_all();
}

// ---- cp.async -----------------------------------------------------------------------------------

void cp_async(void* dst, const void* src, int cp_size, int src_size) {
  ThreadState& t = cur();
  Launch& L = *t.launch;
  check_abort(L);
  if (cp_size != 4 && cp_size != 8 && cp_size != 16)
    refuse(L, t.linear, "cp.async: cp-size " + std::to_string(cp_size) + " (it must be 4, 8 or 16)");
  if (src_size < 0 || src_size > cp_size)
    refuse(L, t.linear,
           "cp.async: src-size " + std::to_string(src_size) + " outside 0.." + std::to_string(cp_size) +
               " (its cp-size)");
  if (!in_shared(dst, size_t(cp_size)))
    refuse(L, t.linear,
           "cp.async: destination " + hex(dst) + " (" + std::to_string(cp_size) +
               " bytes) is not inside the block's shared memory (" + std::to_string(L.smem) + " bytes at " +
               hex(L.shared.get()) + ")");
  const uintptr_t off = reinterpret_cast<uintptr_t>(dst) - reinterpret_cast<uintptr_t>(L.shared.get());
  if (reinterpret_cast<uintptr_t>(dst) % unsigned(cp_size))
    refuse(L, t.linear,
           "cp.async: destination at shared offset " + std::to_string(off) + " is not aligned to its cp-size " +
               std::to_string(cp_size));
  if (src_size > 0 && in_shared(src, 1))
    refuse(L, t.linear,
           "cp.async: source " + hex(src) + " is in the block's shared memory (cp.async reads global memory)");
  if (reinterpret_cast<uintptr_t>(src) % unsigned(cp_size))
    refuse(L, t.linear,
           "cp.async: source " + hex(src) + " is not aligned to its cp-size " + std::to_string(cp_size));
  Copy c;
  c.dst = static_cast<uint8_t*>(dst);
  c.size = cp_size;
  std::memset(c.bytes, 0, sizeof c.bytes);
  if (src_size > 0) std::memcpy(c.bytes, src, size_t(src_size));  // read when the copy issues
  std::memset(dst, 0xFF, size_t(cp_size));                        // poisoned until its wait
  t.open.push_back(c);
}

void cp_async_commit() {
  ThreadState& t = cur();
  check_abort(*t.launch);
  t.groups.push_back(std::move(t.open));  // an empty group is a group, as on hardware
  t.open.clear();
}

void cp_async_wait(int n) {
  ThreadState& t = cur();
  check_abort(*t.launch);
  if (n < 0) refuse(*t.launch, t.linear, "cp.async.wait_group " + std::to_string(n) + " (it must be >= 0)");
  while (t.groups.size() > size_t(n)) {
    for (const Copy& c : t.groups.front()) std::memcpy(c.dst, c.bytes, size_t(c.size));
    t.groups.pop_front();
  }
}

// ---- launches -------------------------------------------------------------------------------------

namespace {
std::mutex g_launch_log_mutex;
std::deque<LaunchRecord> g_launch_log;  // guarded by g_launch_log_mutex
}  // namespace

void log_launch(const char* kernel, Dim3 grid, Dim3 block, size_t smem) {
  LaunchRecord r;
  r.kernel = kernel ? kernel : "(unnamed)";
  r.grid = grid;
  r.block = block;
  r.smem = smem;
  std::lock_guard<std::mutex> lock(g_launch_log_mutex);
  if (g_launch_log.size() >= kLaunchLogSize) g_launch_log.pop_front();
  g_launch_log.push_back(std::move(r));
}

std::vector<LaunchRecord> take_launch_log() {
  std::lock_guard<std::mutex> lock(g_launch_log_mutex);
  std::vector<LaunchRecord> out(g_launch_log.begin(), g_launch_log.end());
  g_launch_log.clear();
  return out;
}

LaunchResult launch(const char* kernel, Dim3 grid, Dim3 block, size_t smem_bytes, const std::function<void()>& body) {
  try {
    return launch_impl(kernel, grid, block, smem_bytes, body);
  } catch (const std::exception& e) {
    LaunchResult r;
    r.ok = false;
    try {
      r.error = std::string("kernel ") + (kernel ? kernel : "(unnamed)") + ": the simulator could not run the launch (" +
                e.what() + ")";
    } catch (...) {
    }
    return r;
  } catch (...) {
    LaunchResult r;
    r.ok = false;
    return r;
  }
}

}  // namespace sim
}  // namespace cg
