#include "cpu/runtime/scratch.h"

#include <atomic>
#include <cstdlib>

namespace cg {

namespace {
std::atomic<size_t> g_held{0};

struct ThreadScratch {
  void* ptr[kScratchSlots] = {};
  size_t size[kScratchSlots] = {};
  ~ThreadScratch() {
    for (int i = 0; i < kScratchSlots; ++i) {
      std::free(ptr[i]);
      g_held -= size[i];
    }
  }
};

thread_local ThreadScratch t_scratch;
}  // namespace

void* aligned_alloc_bytes(size_t bytes) {
  if (bytes == 0) bytes = 64;
  void* p = nullptr;
  if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64) != 0) return nullptr;
  return p;
}

void aligned_free_bytes(void* p) { std::free(p); }

void* thread_scratch(int slot, size_t bytes) {
  if (slot < 0 || slot >= kScratchSlots) return nullptr;
  ThreadScratch& s = t_scratch;
  if (s.size[slot] >= bytes && s.ptr[slot]) return s.ptr[slot];
  std::free(s.ptr[slot]);
  g_held -= s.size[slot];
  s.ptr[slot] = nullptr;
  s.size[slot] = 0;
  // Grow by at least half again, so a slowly increasing size does not reallocate every call.
  size_t want = bytes + bytes / 2;
  void* p = aligned_alloc_bytes(want);
  if (!p) {
    want = bytes;
    p = aligned_alloc_bytes(want);
    if (!p) return nullptr;
  }
  s.ptr[slot] = p;
  s.size[slot] = want;
  g_held += want;
  return p;
}

size_t scratch_bytes_held() { return g_held.load(); }

}  // namespace cg
