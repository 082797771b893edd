// The device memory cache that both runtime implementations (runtime_cuda.cc, runtime_sim.cc)
// put between rt::alloc/rt::free and the device's own allocator.
//
// Why: a host-array call allocates its x, bias, output and LoRA temporaries and frees them when
// it is done. Under CUDA, cudaMalloc is slow and cudaFree waits for the whole device (every
// stream), so one call's free would stall the others' pipelines. A freed block is kept here
// instead, by size class, and the next allocation of that class on that device takes it: in
// steady state a call makes no cudaMalloc and no cudaFree.
//
// Rules:
//   - Size classes: a request is rounded up to a multiple of 512 bytes up to 4 KiB, then to one
//     of 8 steps per power of two (at most 12.5% more than asked). Only a block of exactly the
//     request's class is reused (no splitting: nothing to fragment, nothing to coalesce).
//   - A block is cached only after its owner freed it, and rt::free's contract says the owner
//     frees only once no enqueued work uses it: so a cached block may go to any stream at once.
//   - The cache holds at most limit() bytes per device (COMPRESSED_GEMM_CUDA_CACHE_BYTES, a
//     decimal byte count, read once; default min(device memory / 8, 2 GiB); 0 caches nothing).
//     A put beyond it evicts the least recently freed blocks (a block larger than the limit is
//     not cached at all); the implementation frees the evicted ones outside its lock.
//   - An allocation that the device refuses empties the device's cache and is tried once more.
//   - rt::release_cached() empties it on request (cg.cuda.emptyCache()).
// Not thread-safe by itself: each implementation calls it under its table's mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <new>

#include "cuda/runtime/device_runtime.h"

namespace cg {
namespace rt {
namespace detail {

constexpr uint64_t kDefaultCacheCap = uint64_t(2) << 30;

// The block size that a request of `bytes` (> 0) gets.
inline size_t size_class(size_t bytes) {
  constexpr size_t kSmallStep = 512, kSmallEnd = 4096;
  if (bytes <= kSmallEnd) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  int top = 63;
  while (!((uint64_t(bytes) - 1) >> top & 1)) --top;  // 2^top <= bytes - 1 < 2^(top + 1)
  const size_t step = size_t(1) << (top - 2);         // 8 steps per octave: 2^(top+1) / 8
  return (bytes + step - 1) / step * step;
}

// The cache's byte limit per device, given the device's memory (see the header).
inline uint64_t cache_limit(uint64_t device_memory) {
  static const long long from_env = [] {
    const char* s = std::getenv("COMPRESSED_GEMM_CUDA_CACHE_BYTES");
    if (!s || !*s || s[0] == '-') return -1LL;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (!end || *end != '\0' || v > (1ULL << 62)) return -1LL;
    return (long long)v;
  }();
  if (from_env >= 0) return uint64_t(from_env);
  const uint64_t eighth = device_memory / 8;
  return eighth < kDefaultCacheCap ? eighth : kDefaultCacheCap;
}

struct CachedBlock {
  void* p;
  size_t bytes;  // its size class
  int device;
};

// Blocks that left the cache, for the caller to free outside its lock (spliced in: moving
// blocks out of the cache never allocates, so it never throws).
using Blocks = std::list<CachedBlock>;

inline uint64_t total_bytes(const Blocks& blocks) {
  uint64_t n = 0;
  for (const CachedBlock& b : blocks) n += b.bytes;
  return n;
}

class BlockCache {
 public:
  // A cached block of class `bytes` on `device`, or null.
  void* take(int device, size_t bytes) {
    auto& d = devices_[device];
    auto it = d.by_size.find(bytes);
    if (it == d.by_size.end()) return nullptr;
    auto lru_it = it->second;
    void* p = lru_it->p;
    d.by_size.erase(it);
    d.lru.erase(lru_it);
    d.bytes -= bytes;
    return p;
  }

  // Keeps the freed block (p, class `bytes`) for reuse, moving into `evicted` the least recently
  // freed blocks that no longer fit within `limit`. Returns the block itself when it is not kept
  // (larger than the limit, or std::bad_alloc for the cache's own bookkeeping), else a block with
  // a null p: the caller frees what is returned and what is in `evicted`. Never throws.
  CachedBlock give_back(int device, void* p, size_t bytes, uint64_t limit, Blocks& evicted) noexcept {
    const CachedBlock self{p, bytes, device};
    if (bytes > limit) return self;
    try {
      PerDevice& d = devices_[device];
      Blocks node;
      node.push_back(self);
      d.by_size.emplace(bytes, node.begin());  // the iterator stays valid when the node is spliced
      while (d.bytes + bytes > limit) {
        erase_index(d, d.lru.front().bytes, d.lru.begin());
        d.bytes -= d.lru.front().bytes;
        evicted.splice(evicted.end(), d.lru, d.lru.begin());
      }
      d.lru.splice(d.lru.end(), node);
      d.bytes += bytes;
      return CachedBlock{nullptr, 0, device};
    } catch (...) {  // std::bad_alloc, before anything changed
      return self;
    }
  }

  // Moves every cached block of `device` (-1: of every device) into `out`.
  void drain(int device, Blocks& out) noexcept {
    for (auto& kv : devices_) {
      if (device != -1 && kv.first != device) continue;
      kv.second.by_size.clear();
      kv.second.bytes = 0;
      out.splice(out.end(), kv.second.lru);
    }
  }

  // Drains `device` (as drain()) under `mu`, the lock its owner guards it with, then hands what
  // it took to free_all(blocks) outside the lock; returns their bytes.
  template <class FreeAll>
  uint64_t drain_and_free(std::mutex& mu, int device, FreeAll free_all) {
    Blocks blocks;
    {
      std::lock_guard<std::mutex> lk(mu);
      drain(device, blocks);
    }
    const uint64_t n = total_bytes(blocks);
    free_all(blocks);
    return n;
  }

  uint64_t bytes(int device) const {
    auto it = devices_.find(device);
    return it == devices_.end() ? 0 : it->second.bytes;
  }

 private:
  struct PerDevice {
    Blocks lru;  // least recently freed first
    std::multimap<size_t, Blocks::iterator> by_size;
    uint64_t bytes = 0;
  };

  static void erase_index(PerDevice& d, size_t bytes, Blocks::iterator which) noexcept {
    auto range = d.by_size.equal_range(bytes);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == which) {
        d.by_size.erase(it);
        return;
      }
  }

  std::map<int, PerDevice> devices_;
};

// The page-locked host blocks of rt::host_alloc/host_free, the same in both runtimes over their
// own raw allocator: the blocks in use in a table (so the sim's copies can ask whether a range is
// page-locked), the freed ones in a BlockCache (at most kHostCacheBytes), since pinning pages is
// slow. raw_alloc(bytes) returns null when the host has no memory for it (and throws for any
// other failure); raw_free(p) may throw. Thread-safe.
class HostPool {
 public:
  template <class RawAlloc, class RawFree>
  void* alloc(size_t bytes, RawAlloc raw_alloc, RawFree raw_free) {
    if (bytes == 0) throw Error("cudaErrorInvalidValue", "host_alloc", "0 bytes");
    const size_t cls = size_class(bytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      p = cache_.take(kKey, cls);
    }
    if (!p) p = raw_alloc(cls);
    if (!p) {  // what the cache holds may be what is missing
      cache_.drain_and_free(mu_, kKey, [&](const Blocks& cached) { free_all(cached, CachedBlock{}, raw_free); });
      p = raw_alloc(cls);
    }
    if (!p) throw std::bad_alloc();
    try {
      std::lock_guard<std::mutex> lk(mu_);
      live_.emplace(reinterpret_cast<uintptr_t>(p), Live{bytes, cls});
    } catch (...) {
      try {
        raw_free(p);
      } catch (...) {
        // the allocation's own failure is the one to report
      }
      throw;
    }
    return p;
  }

  template <class RawFree>
  void free(void* p, RawFree raw_free) {
    if (!p) return;
    Blocks evicted;
    CachedBlock uncached{};
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = live_.find(reinterpret_cast<uintptr_t>(p));
      if (it == live_.end()) throw Error("cudaErrorInvalidValue", "host_free", "not a pointer host_alloc() returned (or freed twice)");
      const size_t cls = it->second.cls;
      live_.erase(it);
      uncached = cache_.give_back(kKey, p, cls, kHostCacheBytes, evicted);
    }
    free_all(evicted, uncached, raw_free);
  }

  // Whether [p, p + n) lies inside one block in use.
  bool contains(const void* p, size_t n) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = live_.upper_bound(a);
    if (it == live_.begin()) return false;
    --it;
    return a - it->first <= it->second.bytes && n <= it->second.bytes - (a - it->first);
  }

 private:
  static constexpr int kKey = 0;  // one "device" in this pool's own cache
  struct Live {
    size_t bytes;  // as asked
    size_t cls;
  };

  // Frees every block of `blocks` and `also` (when its p is not null); throws the first failure.
  template <class RawFree>
  static void free_all(const Blocks& blocks, CachedBlock also, RawFree raw_free) {
    std::exception_ptr first;
    auto one = [&](void* q) {
      try {
        raw_free(q);
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    };
    for (const CachedBlock& b : blocks) one(b.p);
    if (also.p) one(also.p);
    if (first) std::rethrow_exception(first);
  }

  std::mutex mu_;
  BlockCache cache_;
  std::map<uintptr_t, Live> live_;
};

}  // namespace detail
}  // namespace rt
}  // namespace cg
