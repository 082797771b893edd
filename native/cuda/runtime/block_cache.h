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
#include <iterator>
#include <list>
#include <map>
#include <vector>

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

  // Keeps the freed block (p, class `bytes`) for reuse; appends to `evicted` what no longer fits
  // within `limit` (possibly p itself), for the caller to free. Throws std::bad_alloc with p
  // not cached (the blocks already in `evicted` stay there).
  void put(int device, void* p, size_t bytes, uint64_t limit, std::vector<CachedBlock>& evicted) {
    if (bytes > limit) {
      evicted.push_back(CachedBlock{p, bytes, device});
      return;
    }
    auto& d = devices_[device];
    while (d.bytes + bytes > limit) {
      const CachedBlock oldest = d.lru.front();
      erase_index(d, oldest.bytes, d.lru.begin());
      d.lru.pop_front();
      d.bytes -= oldest.bytes;
      evicted.push_back(oldest);
    }
    d.lru.push_back(CachedBlock{p, bytes, device});
    try {
      d.by_size.emplace(bytes, std::prev(d.lru.end()));
    } catch (...) {
      d.lru.pop_back();  // as if never put (the caller frees p)
      throw;
    }
    d.bytes += bytes;
  }

  // Moves every cached block of `device` (-1: of every device) into `out`.
  void drain(int device, std::vector<CachedBlock>& out) {
    for (auto& kv : devices_) {
      if (device >= 0 && kv.first != device) continue;
      for (const CachedBlock& b : kv.second.lru) out.push_back(b);
      kv.second.lru.clear();
      kv.second.by_size.clear();
      kv.second.bytes = 0;
    }
  }

  uint64_t bytes(int device) const {
    auto it = devices_.find(device);
    return it == devices_.end() ? 0 : it->second.bytes;
  }

 private:
  struct PerDevice {
    std::list<CachedBlock> lru;  // least recently freed first
    std::multimap<size_t, std::list<CachedBlock>::iterator> by_size;
    uint64_t bytes = 0;
  };

  static void erase_index(PerDevice& d, size_t bytes, std::list<CachedBlock>::iterator which) {
    auto range = d.by_size.equal_range(bytes);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == which) {
        d.by_size.erase(it);
        return;
      }
  }

  std::map<int, PerDevice> devices_;
};

}  // namespace detail
}  // namespace rt
}  // namespace cg
