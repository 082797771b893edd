// runMisbehaving({ case, ... }) -> { ok, error, data? } [sync]: runs one of the simulator's test
// kernels (native/cuda/sim_tests/refusal_kernels.cuh) on the simulated device and returns the
// launch's result: ok and error as cg::sim::launch gave them, and data (numbers) where the case
// computes something. Cases and their optional arguments (defaults in brackets):
//
//   computing:
//     block_reduce        input (Int32Array), n (per block), block [256] -> the per-block sums
//     grid_ids            grid [3,2,2], block [4,3,2] -> counts (1 per thread), then 6 indices each
//     warp_sum_loop       grid [1], block [64,2,1], iters [20] -> each thread's fold of warp sums
//     cp_async_fill       cp (4, 8, 16), srcSize, block [32] -> 6 snapshots of cp bytes per thread
//     cp_async_read_before_wait  block [32] -> per thread: bits before the wait, bits after
//     smem_poison         smem [4096], grid [3], block [64] -> non-0xFF counts, then base % 128
//     smem_reverse        smem [4096], block [128] -> the words read back
//     trivial             grid, block, smem: a kernel that does nothing (bad configurations)
//   refused:
//     warp_sum_all (block [48]), different_ops (odd [3]), early_return_collective (gone [5]),
//     barrier_not_reached (block [64], keep [40]), barrier_vs_collective (block [64]),
//     cp_async_misuse (kind 1..8, who [7]), copies_in_flight (kind 1..3, who [9]),
//     stop_after_failure (grid [8], badBlock [2]) -> ran (per block), throws (kind 1..2, who [9]),
//     collective_refuses (odd [7]).
//   both (refused or computing, as the ISA defines the case or not):
//     mma_sp_misuse (kind 0..4, who [5], meta [0]) -> each lane's d[0] (16 when it runs)
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/cuda_sim/entry_points.h"
#include "cuda/sim_tests/refusal_kernels.cuh"

namespace cg {
namespace binding {
namespace {

using sim::Dim3;
using namespace cg::sim_tests;

int64_t opt_int(const Napi::Object& o, const char* key, int64_t lo, int64_t hi, int64_t def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  return int_of(o, key, lo, hi);
}

// o[key]: a number or an array of 1 to 3 numbers (x, y, z; missing ones are 1), or def.
Dim3 dim_of(const Napi::Object& o, const char* key, Dim3 def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  Napi::Object holder = Napi::Object::New(o.Env());
  if (v.IsNumber()) {
    holder.Set("x", v);
    return Dim3{unsigned(int_of(holder, "x", 0, 0xffffffffLL)), 1, 1};
  }
  if (!v.IsArray()) throw_type(o.Env(), std::string(key) + " must be a number or an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  need(o.Env(), a.Length() >= 1 && a.Length() <= 3, std::string(key) + " must have 1 to 3 dims");
  unsigned d[3] = {1, 1, 1};
  for (uint32_t i = 0; i < a.Length(); ++i) {
    holder.Set("d", a.Get(i));
    d[i] = unsigned(int_of(holder, "d", 0, 0xffffffffLL));
  }
  return Dim3{d[0], d[1], d[2]};
}

unsigned count(const Dim3& d) { return d.x * d.y * d.z; }

// CG_LAUNCH is a macro: its dims are named, never braced lists (whose commas would split them).
const Dim3 kOne{1, 1, 1};
const Dim3 kWarp{32, 1, 1};
const Dim3 kTwoWarps{64, 1, 1};

struct Outcome {
  sim::LaunchResult r;
  std::vector<double> data;
  bool has_data = false;
};

template <class T>
void put(Outcome& out, const std::vector<T>& v) {
  out.has_data = true;
  out.data.insert(out.data.end(), v.begin(), v.end());
}

Outcome run_case(const Napi::Object& o) {
  const Napi::Env env = o.Env();
  const std::string c = string_of(o, "case");
  Outcome out;

  if (c == "block_reduce") {
    const Bytes in = bytes_of(o.Get("input"), "input");
    const int n = int(int_of(o, "n", 1, 1 << 20));
    const Dim3 block = dim_of(o, "block", Dim3{256, 1, 1});
    need(env, in.length % (4 * size_t(n)) == 0 && in.length > 0, "input must hold a whole number of n-int chunks");
    const unsigned blocks = unsigned(in.length / (4 * size_t(n)));
    std::vector<int> input(in.length / 4);
    std::memcpy(input.data(), in.data, in.length);
    std::vector<int> sums(blocks, -1);
    const Dim3 grid{blocks, 1, 1};
    out.r = CG_LAUNCH(block_reduce, grid, block, size_t(block.x) * 4, 0, input.data(), n, sums.data());
    put(out, sums);
  } else if (c == "grid_ids") {
    const Dim3 grid = dim_of(o, "grid", Dim3{3, 2, 2}), block = dim_of(o, "block", Dim3{4, 3, 2});
    const size_t total = size_t(count(grid)) * count(block);
    need(env, total <= (1u << 20), "grid_ids: at most 2^20 threads");
    std::vector<unsigned> counts(total, 0), ids(6 * total, 0xffffffffu);
    out.r = CG_LAUNCH(grid_ids, grid, block, 0, 0, counts.data(), ids.data());
    put(out, counts);
    put(out, ids);
  } else if (c == "warp_sum_loop") {
    const Dim3 grid = dim_of(o, "grid", Dim3{1, 1, 1}), block = dim_of(o, "block", Dim3{64, 2, 1});
    const int iters = int(opt_int(o, "iters", 0, 100000, 20));
    std::vector<unsigned> res(size_t(count(grid)) * count(block), 0);
    out.r = CG_LAUNCH(warp_sum_loop, grid, block, 0, 0, res.data(), iters);
    put(out, res);
  } else if (c == "cp_async_fill") {
    const int cp = int(int_of(o, "cp", 4, 16));
    const int src_size = int(int_of(o, "srcSize", 0, 16));
    const Dim3 block = dim_of(o, "block", Dim3{32, 1, 1});
    const size_t threads = block.x;
    // 16-byte aligned source bytes 1, 2, 3, ... (never 0 or 0xFF, so zero fill and poison show).
    std::vector<uint64_t> store((2 * threads * 16) / 8 + 2);
    uint8_t* src = reinterpret_cast<uint8_t*>(store.data());
    src += (16 - reinterpret_cast<uintptr_t>(src) % 16) % 16;
    for (size_t i = 0; i < 2 * threads * size_t(cp); ++i) src[i] = uint8_t(1 + i % 250);
    std::vector<uint8_t> seen(threads * 6 * size_t(cp), 0x55);
    const size_t smem = 2 * threads * size_t(cp);
    if (cp == 4) out.r = CG_LAUNCH(cp_async_fill<4>, kOne, block, smem, 0, src, src_size, seen.data());
    else if (cp == 8) out.r = CG_LAUNCH(cp_async_fill<8>, kOne, block, smem, 0, src, src_size, seen.data());
    else if (cp == 16) out.r = CG_LAUNCH(cp_async_fill<16>, kOne, block, smem, 0, src, src_size, seen.data());
    else need(env, false, "cp must be 4, 8 or 16");
    put(out, seen);
  } else if (c == "cp_async_read_before_wait") {
    const Dim3 block = dim_of(o, "block", Dim3{32, 1, 1});
    std::vector<float> src(block.x);
    for (unsigned i = 0; i < block.x; ++i) src[i] = 1.5f + float(i);
    std::vector<unsigned> bits(2 * size_t(block.x), 0);
    out.r = CG_LAUNCH(cp_async_read_before_wait, kOne, block, size_t(block.x) * 4, 0, src.data(), bits.data());
    put(out, bits);
  } else if (c == "smem_poison") {
    const unsigned smem = unsigned(opt_int(o, "smem", 0, 1 << 20, 4096));
    const Dim3 grid = dim_of(o, "grid", Dim3{3, 1, 1}), block = dim_of(o, "block", Dim3{64, 1, 1});
    std::vector<unsigned> bad(size_t(grid.x) * block.x, 0xffffffffu), align(grid.x, 0xffffffffu);
    out.r = CG_LAUNCH(smem_poison, grid, block, smem, 0, smem, bad.data(), align.data());
    put(out, bad);
    put(out, align);
  } else if (c == "smem_reverse") {
    const unsigned smem = unsigned(opt_int(o, "smem", 0, 1 << 20, 4096));
    const Dim3 block = dim_of(o, "block", Dim3{128, 1, 1});
    std::vector<unsigned> res(smem / 4, 0);
    out.r = CG_LAUNCH(smem_reverse, kOne, block, smem, 0, smem / 4, res.data());
    put(out, res);
  } else if (c == "trivial") {
    const Dim3 grid = dim_of(o, "grid", Dim3{1, 1, 1}), block = dim_of(o, "block", Dim3{32, 1, 1});
    const size_t smem = size_t(opt_int(o, "smem", 0, int64_t(1) << 40, 0));
    out.r = CG_LAUNCH(trivial, grid, block, smem, 0, nullptr);
  } else if (c == "warp_sum_all") {
    const Dim3 block = dim_of(o, "block", Dim3{48, 1, 1});
    std::vector<unsigned> res(count(block), 0);
    out.r = CG_LAUNCH(warp_sum_all, kOne, block, 0, 0, res.data());
    put(out, res);
  } else if (c == "different_ops") {
    const unsigned odd = unsigned(opt_int(o, "odd", 0, 31, 3));
    std::vector<unsigned> res(32, 0);
    out.r = CG_LAUNCH(different_ops, kOne, kWarp, 0, 0, res.data(), odd);
  } else if (c == "early_return_collective") {
    const unsigned gone = unsigned(opt_int(o, "gone", 0, 31, 5));
    std::vector<unsigned> res(64, 0);
    out.r = CG_LAUNCH(early_return_collective, kOne, kTwoWarps, 0, 0, res.data(), gone);
  } else if (c == "barrier_not_reached") {
    const Dim3 block = dim_of(o, "block", Dim3{64, 1, 1});
    const unsigned keep = unsigned(opt_int(o, "keep", 1, 1024, 40));
    std::vector<unsigned> res(block.x, 0);
    out.r = CG_LAUNCH(barrier_not_reached, kOne, block, size_t(block.x) * 4, 0, res.data(), keep);
    put(out, res);
  } else if (c == "barrier_vs_collective") {
    const Dim3 block = dim_of(o, "block", Dim3{64, 1, 1});
    std::vector<unsigned> res(block.x, 0);
    out.r = CG_LAUNCH(barrier_vs_collective, kOne, block, 0, 0, res.data());
  } else if (c == "cp_async_misuse") {
    const int kind = int(int_of(o, "kind", 1, 8));
    const Dim3 block = dim_of(o, "block", Dim3{32, 1, 1});
    const unsigned who = unsigned(opt_int(o, "who", 0, 1023, 7));
    std::vector<uint64_t> store(2 * (size_t(block.x) + 1) + 8, 0x0101010101010101ull);
    uint8_t* src = reinterpret_cast<uint8_t*>(store.data());
    src += (64 - reinterpret_cast<uintptr_t>(src) % 64) % 64;
    std::vector<uint64_t> gstore(8 + 2, 0);
    uint8_t* gdst = reinterpret_cast<uint8_t*>(gstore.data());
    gdst += (16 - reinterpret_cast<uintptr_t>(gdst) % 16) % 16;
    const unsigned smem = 16 * block.x;
    out.r = CG_LAUNCH(cp_async_misuse, kOne, block, smem, 0, src, gdst, kind, who, smem);
  } else if (c == "copies_in_flight") {
    const int kind = int(int_of(o, "kind", 1, 3));
    const unsigned who = unsigned(opt_int(o, "who", 0, 31, 9));
    std::vector<uint64_t> store(4 * 32 + 2, 0x0202020202020202ull);
    uint8_t* src = reinterpret_cast<uint8_t*>(store.data());
    src += (16 - reinterpret_cast<uintptr_t>(src) % 16) % 16;
    out.r = CG_LAUNCH(copies_in_flight, kOne, kWarp, 32 * 32, 0, src, kind, who);
  } else if (c == "stop_after_failure") {
    const Dim3 grid = dim_of(o, "grid", Dim3{8, 1, 1});
    const unsigned bad = unsigned(opt_int(o, "badBlock", 0, 1 << 20, 2));
    alignas(16) static const uint8_t src[16] = {};
    std::vector<unsigned> ran(grid.x, 0);
    out.r = CG_LAUNCH(stop_after_failure, grid, kWarp, 64, 0, src, ran.data(), bad);
    put(out, ran);
  } else if (c == "throws") {
    const int kind = int(int_of(o, "kind", 1, 2));
    const unsigned who = unsigned(opt_int(o, "who", 0, 63, 9));
    out.r = CG_LAUNCH(throws, kOne, kTwoWarps, 0, 0, kind, who);
  } else if (c == "collective_refuses") {
    const unsigned odd = unsigned(opt_int(o, "odd", 0, 63, 7));
    std::vector<unsigned> res(64, 0);
    out.r = CG_LAUNCH(collective_refuses, kOne, kTwoWarps, 0, 0, res.data(), odd);
    put(out, res);
  } else if (c == "mma_sp_misuse") {
    const int kind = int(int_of(o, "kind", 0, 4));
    const unsigned who = unsigned(opt_int(o, "who", 0, 31, 5));
    const unsigned meta = unsigned(opt_int(o, "meta", 0, 0xffffffffLL, 0));
    std::vector<float> res(32, -2.f);
    out.r = CG_LAUNCH(mma_sp_misuse, kOne, kWarp, 0, 0, kind, who, meta, res.data());
    put(out, res);
  } else {
    throw_range(env, "runMisbehaving: unknown case '" + c + "'");
  }
  return out;
}

Napi::Value RunMisbehaving(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const Napi::Object o = object_arg(info);
  const Outcome out = run_case(o);
  Napi::Object res = Napi::Object::New(env);
  res.Set("ok", Napi::Boolean::New(env, out.r.ok));
  res.Set("error", Napi::String::New(env, out.r.error));
  if (out.has_data) {
    Napi::Array a = Napi::Array::New(env, out.data.size());
    for (size_t i = 0; i < out.data.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, out.data[i]));
    res.Set("data", a);
  }
  return res;
}

}  // namespace

void register_refusals(Napi::Env env, Napi::Object exports) {
  exports.Set("runMisbehaving", Napi::Function::New(env, RunMisbehaving, "runMisbehaving"));
}

}  // namespace binding
}  // namespace cg
