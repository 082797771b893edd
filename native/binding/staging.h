// Host buffers for what an async call copies when it is made (x, the bias, low-rank factors) and
// for the result it writes before the JS thread copies it into the caller's `out`: recycled
// instead of allocated and freed per call.
//
// Why: a fresh block of more than 128 KiB comes from mmap, and each of its pages faults on first
// touch. On a virtual machine a fault costs microseconds (the AMD EPYC VM of the README: about
// 8 us), so copying an M = 128, K = 4096 float32 x (2 MiB, 512 pages) into a new block took ~4 ms
// on the JS thread, as long as the INT4 kernel it fed, and 0.8 ms at M = 16: the main part of
// an async call's cost over a sync one (which copies nothing), and time the event loop stood
// still. A recycled buffer's pages are already there.
//
// Buffers come in power-of-two sizes from 4 KiB; a returned buffer is kept for the next call of
// its size class while the idle ones total at most kStagingCacheBytes, and freed otherwise. Safe
// from any thread (a mutex); 64-byte aligned.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cg {
namespace binding {

constexpr size_t kStagingCacheBytes = size_t(64) << 20;

class StagingBuffer {
 public:
  StagingBuffer() = default;
  // At least `bytes` (0: an empty buffer, no memory). Throws std::bad_alloc.
  explicit StagingBuffer(size_t bytes);
  // A copy of src[0, n) (throws std::bad_alloc)
  static StagingBuffer copy_of(const uint8_t* src, size_t n);
  ~StagingBuffer() { release(); }
  StagingBuffer(StagingBuffer&& o) noexcept : p_(o.p_), cap_(o.cap_) { o.p_ = nullptr, o.cap_ = 0; }
  StagingBuffer& operator=(StagingBuffer&& o) noexcept;
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;

  uint8_t* data() const { return p_; }

 private:
  void release();
  uint8_t* p_ = nullptr;
  size_t cap_ = 0;
};

// What the cache holds now, and how many buffers were taken and how many of those came from it
// (tests, addon.stagingStats()).
struct StagingStats {
  size_t idle_buffers = 0, idle_bytes = 0;
  uint64_t taken = 0, reused = 0;
};
StagingStats staging_stats();

}  // namespace binding
}  // namespace cg
