#include "cpu/runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace cg {
namespace {

constexpr int kSpinMicros = 100;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or kSpinMicros pass; true when done() became true.
template <class F>
bool spin_until(F&& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
  }
}

// Workers sleep on a condition variable between jobs; a job hands out task indices through an
// atomic counter so uneven tasks balance themselves. The submitting thread works too.
//
// Waking a sleeping thread costs tens of microseconds on a virtual machine, as much as a whole
// small kernel (an INT4 GEMV runs in ~150 us). So a worker that finishes a job first spins for
// kSpinMicros watching for the next one, and the submitter spins for the helpers' last tasks,
// before either sleeps: back-to-back kernels (a model's layers) never pay a wake-up, and an idle
// pool costs at most that much CPU after its last job.
class ThreadPool {
 public:
  void run(int ntasks, int threads, TaskFn fn, void* ctx) {
    if (ntasks <= 0) return;
    threads = std::max(1, std::min(threads, ntasks));
    if (threads == 1) {
      for (int t = 0; t < ntasks; ++t) fn(ctx, t, ntasks);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);  // one job at a time
    ensure_workers(threads - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = fn; ctx_ = ctx; ntasks_ = ntasks;
      next_.store(0); done_.store(0);
      helpers_wanted_ = threads - 1;
      generation_.store(generation_.load() + 1, std::memory_order_release);
    }
    cv_.notify_all();
    const int finished = drain();
    done_.fetch_add(finished);
    spin_until([&] { return done_.load(std::memory_order_acquire) >= ntasks; });
    std::unique_lock<std::mutex> lk(m_);
    if (done_.load() < ntasks_) done_cv_.wait(lk, [&] { return done_.load() >= ntasks_; });
    fn_ = nullptr;
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      stop_flag_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  int drain() {
    int finished = 0;
    for (;;) {
      int t = next_.fetch_add(1);
      if (t >= ntasks_) break;
      fn_(ctx_, t, ntasks_);
      ++finished;
    }
    return finished;
  }

  void ensure_workers(int n) {
    while (int(workers_.size()) < n) workers_.emplace_back([this] { worker_loop(); });
  }

  void worker_loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      auto ready = [&] { return stop_ || (generation_.load() != seen && helpers_wanted_ > 0); };
      if (!ready()) {
        lk.unlock();
        spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_flag_.load(); });
        lk.lock();
        cv_.wait(lk, ready);
      }
      if (stop_) return;
      seen = generation_.load();
      --helpers_wanted_;
      lk.unlock();
      const int finished = drain();
      lk.lock();
      if (done_.fetch_add(finished) + finished >= ntasks_) done_cv_.notify_all();
    }
  }

  std::mutex job_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int ntasks_ = 0, helpers_wanted_ = 0;
  std::atomic<int> next_{0}, done_{0};
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
};

ThreadPool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock
  // when the exit happens on a worker-owned path; the OS reclaims the threads.
  static ThreadPool* p = new ThreadPool();
  return *p;
}

// The cores not claimed by a CoreLease, and a ticket queue that keeps the claims in arrival
// order (a large claim is not overtaken forever by small ones).
struct CoreBudget {
  std::mutex m;
  std::condition_variable cv;
  int free = hardware_threads();
  uint64_t next_ticket = 0, serving = 0;
};

CoreBudget& core_budget() {
  static CoreBudget* b = new CoreBudget();  // leaked, as the pool is
  return *b;
}

}  // namespace

CoreLease::CoreLease(int threads) : cores_(std::max(1, std::min(threads, hardware_threads()))) {
  CoreBudget& b = core_budget();
  std::unique_lock<std::mutex> lk(b.m);
  const uint64_t ticket = b.next_ticket++;
  b.cv.wait(lk, [&] { return ticket == b.serving && b.free >= cores_; });
  b.free -= cores_;
  ++b.serving;
  lk.unlock();
  b.cv.notify_all();  // the next claim in line may fit too
}

CoreLease::~CoreLease() {
  CoreBudget& b = core_budget();
  {
    std::lock_guard<std::mutex> lk(b.m);
    b.free += cores_;
  }
  b.cv.notify_all();
}

void parallel_for(int ntasks, int threads, TaskFn fn, void* ctx) { pool().run(ntasks, threads, fn, ctx); }

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

}  // namespace cg
