// A fixed pool of worker threads for the CPU kernels.
//
// parallel_for takes a plain function pointer (not a std::function or a template) on purpose:
// the kernels live in translation units compiled with -mavx2 / -mavx512f, and nothing inline
// may be shared between those and the baseline code, or the linker could hand an AVX-512 copy
// of it to a machine without AVX-512.
#pragma once

namespace cg {

using TaskFn = void (*)(void* ctx, int task, int ntasks);

// Runs fn(ctx, t, ntasks) for t in [0, ntasks), spread over at most `threads` threads (the
// caller included). Calls from several threads at once are serialised: one kernel owns the
// pool at a time, which is what a machine's cores can do anyway.
void parallel_for(int ntasks, int threads, TaskFn fn, void* ctx);

// Number of hardware threads (at least 1).
int hardware_threads();

// Held by an async call for as long as it runs: a claim on min(threads, hardware_threads()) of
// the machine's cores. A call whose claim does not fit next to those running waits for them,
// first come first served, before it starts. Without it, concurrent async calls would
// interleave their kernels' phases on the pool and run their single-threaded parts next to
// another call's kernel on every core: more runnable threads than cores, each call's working set
// evicting the other's, and the event loop's thread waiting for a core behind them all.
// Sync calls take none: they run on the event loop's thread, which is blocked meanwhile anyway,
// and must not wait behind queued async calls (parallel_for still serialises their kernels).
class CoreLease {
 public:
  explicit CoreLease(int threads);
  ~CoreLease();
  CoreLease(const CoreLease&) = delete;
  CoreLease& operator=(const CoreLease&) = delete;

 private:
  int cores_;
};

}  // namespace cg
