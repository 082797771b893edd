#include "binding/staging.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace cg {
namespace binding {
namespace {

constexpr int kMinShift = 12;  // 4 KiB
constexpr int kClasses = 64 - kMinShift;

struct Cache {
  std::mutex m;
  std::vector<uint8_t*> idle[kClasses];
  size_t idle_bytes = 0;
  uint64_t taken = 0, reused = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // leaked: calls may still return buffers during process exit
  return *c;
}

int size_class(size_t bytes) {
  int s = kMinShift;
  while (s < 63 && (size_t(1) << s) < bytes) ++s;
  return s - kMinShift;
}

}  // namespace

StagingBuffer::StagingBuffer(size_t bytes) {
  if (bytes == 0) return;
  const int c = size_class(bytes);
  const size_t cap = size_t(1) << (c + kMinShift);
  if (cap < bytes) throw std::bad_alloc();
  {
    Cache& k = cache();
    std::lock_guard<std::mutex> lk(k.m);
    ++k.taken;
    if (!k.idle[c].empty()) {
      ++k.reused;
      p_ = k.idle[c].back();
      k.idle[c].pop_back();
      k.idle_bytes -= cap;
      cap_ = cap;
      return;
    }
  }
  void* p = nullptr;
  if (posix_memalign(&p, 64, cap) != 0 || !p) throw std::bad_alloc();
  p_ = static_cast<uint8_t*>(p);
  cap_ = cap;
}

StagingBuffer StagingBuffer::copy_of(const uint8_t* src, size_t n) {
  StagingBuffer b(n);
  if (n) std::memcpy(b.p_, src, n);
  return b;
}

StagingBuffer& StagingBuffer::operator=(StagingBuffer&& o) noexcept {
  if (this != &o) {
    release();
    p_ = o.p_, cap_ = o.cap_;
    o.p_ = nullptr, o.cap_ = 0;
  }
  return *this;
}

void StagingBuffer::release() {
  if (!p_) return;
  uint8_t* p = p_;
  const size_t cap = cap_;
  p_ = nullptr, cap_ = 0;
  {
    Cache& k = cache();
    std::lock_guard<std::mutex> lk(k.m);
    if (k.idle_bytes + cap <= kStagingCacheBytes) {
      try {
        k.idle[size_class(cap)].push_back(p);
        k.idle_bytes += cap;
        return;
      } catch (...) {
        // no room in the list: free it below
      }
    }
  }
  std::free(p);
}

StagingStats staging_stats() {
  Cache& k = cache();
  std::lock_guard<std::mutex> lk(k.m);
  StagingStats s;
  for (const auto& v : k.idle) s.idle_buffers += v.size();
  s.idle_bytes = k.idle_bytes;
  s.taken = k.taken;
  s.reused = k.reused;
  return s;
}

}  // namespace binding
}  // namespace cg
