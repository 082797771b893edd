#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace cg {
namespace {

// Workers sleep on a condition variable between jobs; a job hands out task indices through an
// atomic counter so uneven tasks balance themselves. The submitting thread works too.
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
      next_.store(0); done_ = 0;
      helpers_wanted_ = threads - 1;
      ++generation_;
    }
    cv_.notify_all();
    int finished = drain();
    std::unique_lock<std::mutex> lk(m_);
    done_ += finished;
    if (done_ < ntasks_) done_cv_.wait(lk, [&] { return done_ >= ntasks_; });
    fn_ = nullptr;
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
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
      cv_.wait(lk, [&] { return stop_ || (generation_ != seen && helpers_wanted_ > 0); });
      if (stop_) return;
      seen = generation_;
      --helpers_wanted_;
      lk.unlock();
      int finished = drain();
      lk.lock();
      done_ += finished;
      if (done_ >= ntasks_) done_cv_.notify_all();
    }
  }

  std::mutex job_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int ntasks_ = 0, done_ = 0, helpers_wanted_ = 0;
  std::atomic<int> next_{0};
  uint64_t generation_ = 0;
  bool stop_ = false;
};

ThreadPool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can deadlock
  // when the exit happens on a worker-owned path; the OS reclaims the threads.
  static ThreadPool* p = new ThreadPool();
  return *p;
}

}  // namespace

void parallel_for(int ntasks, int threads, TaskFn fn, void* ctx) { pool().run(ntasks, threads, fn, ctx); }

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

}  // namespace cg
