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

}  // namespace cg
