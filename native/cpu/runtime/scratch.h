// Scratch memory for the kernels: 64-byte aligned, nullptr on failure (never throws, so it can
// be called from a worker thread; the caller reports the failure as an out-of-memory error).
// Defined in a baseline translation unit, so kernels of every ISA may call it.
#pragma once
#include <cstddef>

namespace cg {

void* aligned_alloc_bytes(size_t bytes);
void aligned_free_bytes(void* p);

// A buffer of at least `bytes` owned by the calling thread, one per `slot` (0..kScratchSlots-1).
// It is kept between calls and only grows, so a kernel that runs again on the same thread does
// not allocate (and fault in fresh pages) again. The contents are not preserved across calls
// that ask for more bytes than the slot holds. nullptr when the allocation fails.
constexpr int kScratchSlots = 4;
void* thread_scratch(int slot, size_t bytes);

// Bytes currently held by thread_scratch buffers, over all threads.
size_t scratch_bytes_held();

}  // namespace cg
