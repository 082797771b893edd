// Probe kernels: one small kernel per PTX wrapper family (native/cuda/ptx/), one warp each, over
// identity-coded inputs, storing every lane's raw result registers, lane-major. The same source
// runs on the simulated device (native/binding/cuda_sim/probes.cc: runProbe) and, compiled by
// nvcc (probe_kernels.cu, which proves every wrapper's asm assembles for each target), on a GPU,
// where its dumps are to become the fixtures the simulator is held to.
//
// No probe knows a fragment layout: layouts live in the wrappers (their simulated face) and,
// independently, in test/helpers/ptx-reference.ts (the ISA's formulas and CuTe's), so a test
// compares one with the other. The probes only place inputs and collect registers.
//
// The launchers at the end take "global memory" pointers: device pointers under nvcc, host memory
// on the simulated device. They return the simulator's LaunchResult there, and the launch's
// cudaError_t under nvcc. This header is included by exactly one translation unit per addon.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/kernel.h"
#include "cuda/ptx/bits.h"
#include "cuda/ptx/cp_async.h"
#include "cuda/ptx/fma16x2.h"
#include "cuda/ptx/ldmatrix.h"
#include "cuda/ptx/mma.h"
#include "cuda/ptx/mma_sp.h"
#include "cuda/ptx/shfl.h"

namespace cg {
namespace probes {

#if defined(__CUDACC__)
using ProbeStatus = cudaError_t;
#define CG_PROBE_LAUNCH(...) (CG_LAUNCH(__VA_ARGS__), cudaGetLastError())
#else
using ProbeStatus = ::cg::sim::LaunchResult;
#define CG_PROBE_LAUNCH(...) CG_LAUNCH(__VA_ARGS__)
#endif

constexpr unsigned kWarp = 32;

// ---- ldmatrix -----------------------------------------------------------------------------------
// Shared memory holds 32 logical rows: row r (matrix r / 8, row r % 8 of it) has r * 256 + c in
// column c, so each 16-bit half of a result names the row and column it came from. Lane L points
// at logical row L. The rows are scattered (slot (7r + 3) % 32, 32-byte pitch) and padded with
// 0xDEAD, so that a value is right only if the right lane's address was read, 16 bytes of it.
constexpr int kLdmPitch = 32;  // bytes between slots
constexpr size_t kLdmSmemBytes = 32 * kLdmPitch;
constexpr uint16_t kLdmPad = 0xDEAD;

// A fault put into one lane's address, to see the simulator refuse it (or ignore it, in a lane
// whose address the form does not use).
enum LdmatrixFault : int {
  kLdmNoFault = 0,
  kLdmMisaligned = 1,     // 8 bytes past its row: inside shared memory, not 16-byte aligned
  kLdmOutsideShared = 2,  // a global-memory address
};

__device__ __forceinline__ int ldm_slot(int row) { return (7 * row + 3) % 32; }

// regs[lane * N + j] = r[j] (a fixed-size copy: registers stay registers, no local memory).
template <int N>
__device__ __forceinline__ void store_lane_regs(uint32_t* regs, int lane, const uint32_t (&r)[N]) {
  for (int j = 0; j < N; ++j) regs[lane * N + j] = r[j];
}

__global__ void probe_ldmatrix(int num, int trans, int fault_lane, int fault, const uint8_t* outside,
                               uint32_t* regs) {
  uint8_t* smem = ::cg::dynamic_smem();
  const int lane = int(threadIdx.x);
  uint16_t* row = reinterpret_cast<uint16_t*>(smem + ldm_slot(lane) * kLdmPitch);
  for (int c = 0; c < 8; ++c) row[c] = uint16_t(lane * 256 + c);
  for (int c = 8; c < kLdmPitch / 2; ++c) row[c] = kLdmPad;
  __syncthreads();

  const void* addr = row;
  if (lane == fault_lane && fault == kLdmMisaligned) addr = reinterpret_cast<const uint8_t*>(row) + 8;
  if (lane == fault_lane && fault == kLdmOutsideShared) addr = outside;

  uint32_t r1[1], r2[2], r4[4];
  switch (num * 2 + (trans ? 1 : 0)) {
    case 2: ::cg::ptx::ldmatrix_x1(r1, addr); store_lane_regs(regs, lane, r1); break;
    case 3: ::cg::ptx::ldmatrix_x1_trans(r1, addr); store_lane_regs(regs, lane, r1); break;
    case 4: ::cg::ptx::ldmatrix_x2(r2, addr); store_lane_regs(regs, lane, r2); break;
    case 5: ::cg::ptx::ldmatrix_x2_trans(r2, addr); store_lane_regs(regs, lane, r2); break;
    case 8: ::cg::ptx::ldmatrix_x4(r4, addr); store_lane_regs(regs, lane, r4); break;
    case 9: ::cg::ptx::ldmatrix_x4_trans(r4, addr); store_lane_regs(regs, lane, r4); break;
    default: break;
  }
}

// ---- mma: fragments in, D fragments out -----------------------------------------------------------
// a: 32 x 4 registers, b: 32 x 2, c and d: 32 x 4 floats, all lane-major. d = c is accumulated in
// place (the usual call), so aliasing of d and c is part of what is probed.
__global__ void probe_mma(int bf16, const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  const int lane = int(threadIdx.x);
  uint32_t fa[4], fb[2];
  float acc[4];
  for (int i = 0; i < 4; ++i) fa[i] = a[lane * 4 + i], acc[i] = c[lane * 4 + i];
  for (int i = 0; i < 2; ++i) fb[i] = b[lane * 2 + i];
  if (bf16) {
    ::cg::ptx::mma_m16n8k16_bf16f32(acc, fa, fb, acc);
  } else {
    ::cg::ptx::mma_m16n8k16_f16f32(acc, fa, fb, acc);
  }
  for (int i = 0; i < 4; ++i) d[lane * 4 + i] = acc[i];
}

// ---- mma.sp: compressed A, B, C and metadata fragments in, D fragments out ---------------------------
// a, b, c: 32 x 4 (registers, floats for c), e: 32 (each lane's metadata register; the lanes the
// selector does not name pass whatever the caller put there, which the instruction must not
// read), d: 32 x 4 floats, all lane-major. selector 0 or 1 picks the instance (an immediate); d
// = c accumulates in place, as in probe_mma.
template <int kSel>
__device__ __forceinline__ void mma_sp_probe_body(int bf16, const uint32_t* a, const uint32_t* b, const float* c,
                                                  const uint32_t* e, float* d) {
  const int lane = int(threadIdx.x);
  uint32_t fa[4], fb[4];
  float acc[4];
  for (int i = 0; i < 4; ++i) fa[i] = a[lane * 4 + i], fb[i] = b[lane * 4 + i], acc[i] = c[lane * 4 + i];
  const uint32_t meta = e[lane];
  if (bf16) {
    ::cg::ptx::mma_sp_m16n8k32_bf16f32<kSel>(acc, fa, fb, acc, meta);
  } else {
    ::cg::ptx::mma_sp_m16n8k32_f16f32<kSel>(acc, fa, fb, acc, meta);
  }
  for (int i = 0; i < 4; ++i) d[lane * 4 + i] = acc[i];
}

__global__ void probe_mma_sp(int bf16, int selector, const uint32_t* a, const uint32_t* b, const float* c,
                             const uint32_t* e, float* d) {
  if (selector == 1) {
    mma_sp_probe_body<1>(bf16, a, b, c, e, d);
  } else if (selector == 0) {
    mma_sp_probe_body<0>(bf16, a, b, c, e, d);
  }
}

// ---- mma from shared memory: the usual tile path ------------------------------------------------
// A 16x32 and B 32x8 (both row-major, 16-bit, 16-byte aligned) are copied to shared memory with
// cp.async 16, then for each k-step of 16: A's fragment by ldmatrix.x4 (lane L: row L % 16,
// columns 8(L / 16)..+7) and B's by ldmatrix.x2.trans (lane L: row k = L % 16), and one mma
// accumulating from zero. d: 32 x 4 floats, lane-major (the D fragment).
constexpr int kTileM = 16, kTileN = 8, kTileK = 32;
constexpr size_t kTileABytes = kTileM * kTileK * 2, kTileBBytes = kTileK * kTileN * 2;
constexpr size_t kTileSmemBytes = kTileABytes + kTileBBytes;

__global__ void probe_mma_tile(int bf16, const uint16_t* a, const uint16_t* b, float* d) {
  uint8_t* smem = ::cg::dynamic_smem();
  const int lane = int(threadIdx.x);
  constexpr int kChunks = int(kTileSmemBytes / 16);
  for (int i = lane; i < kChunks; i += int(kWarp)) {
    const size_t off = size_t(i) * 16;
    const uint8_t* src = off < kTileABytes ? reinterpret_cast<const uint8_t*>(a) + off
                                           : reinterpret_cast<const uint8_t*>(b) + (off - kTileABytes);
    ::cg::ptx::cp_async<16>(smem + off, src);
  }
  ::cg::ptx::cp_async_commit();
  ::cg::ptx::cp_async_wait<0>();
  __syncthreads();

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int ks = 0; ks < kTileK / 16; ++ks) {
    uint32_t fa[4], fb[2];
    const int a_row = lane % 16, a_col = 16 * ks + 8 * (lane / 16);
    ::cg::ptx::ldmatrix_x4(fa, smem + (a_row * kTileK + a_col) * 2);
    const int b_row = 16 * ks + lane % 16;
    ::cg::ptx::ldmatrix_x2_trans(fb, smem + kTileABytes + b_row * kTileN * 2);
    if (bf16) {
      ::cg::ptx::mma_m16n8k16_bf16f32(acc, fa, fb, acc);
    } else {
      ::cg::ptx::mma_m16n8k16_f16f32(acc, fa, fb, acc);
    }
  }
  for (int i = 0; i < 4; ++i) d[lane * 4 + i] = acc[i];
}

// ---- cp.async -----------------------------------------------------------------------------------
// Two groups: lane L copies `bytes` from src + L*bytes (group 1) and src + (32 + L)*bytes (group 2)
// to the same offsets in shared memory, with src_bytes[L] and src_bytes[32 + L] bytes from the
// source (the rest zero-filled). It reads both destinations after wait_group 1 and again after
// wait_group 0: regs per lane = [g1, g2 after wait 1 | g1, g2 after wait 0], bytes/4 words each.
// (After wait_group 1 the second group may or may not have landed on a GPU; on the simulated
// device it is still poisoned, 0xFF bytes.)
// kHinted (16 bytes only): the copies carry the L2 evict-first policy (cp_async16_hinted), which
// must change nothing but the caching.
template <int Bytes, bool kHinted = false>
__device__ __forceinline__ void cp_async_probe_body(const int32_t* src_bytes, const uint8_t* src, uint32_t* regs) {
  uint8_t* smem = ::cg::dynamic_smem();
  const int lane = int(threadIdx.x);
  constexpr int kWords = Bytes / 4;
  const size_t off1 = size_t(lane) * Bytes, off2 = size_t(kWarp + lane) * Bytes;
  if constexpr (kHinted) {
    static_assert(Bytes == 16, "the hinted copy is a 16-byte cp.async");
    const uint64_t policy = ::cg::ptx::l2_evict_first_policy();
    ::cg::ptx::cp_async16_hinted(smem + off1, src + off1, src_bytes[lane], policy);
    ::cg::ptx::cp_async_commit();
    ::cg::ptx::cp_async16_hinted(smem + off2, src + off2, src_bytes[kWarp + lane], policy);
    ::cg::ptx::cp_async_commit();
  } else {
    ::cg::ptx::cp_async<Bytes>(smem + off1, src + off1, src_bytes[lane]);
    ::cg::ptx::cp_async_commit();
    ::cg::ptx::cp_async<Bytes>(smem + off2, src + off2, src_bytes[kWarp + lane]);
    ::cg::ptx::cp_async_commit();
  }
  uint32_t* out = regs + size_t(lane) * 4 * kWords;
  ::cg::ptx::cp_async_wait<1>();
  for (int w = 0; w < kWords; ++w) out[w] = reinterpret_cast<const uint32_t*>(smem + off1)[w];
  for (int w = 0; w < kWords; ++w) out[kWords + w] = reinterpret_cast<const uint32_t*>(smem + off2)[w];
  ::cg::ptx::cp_async_wait<0>();
  for (int w = 0; w < kWords; ++w) out[2 * kWords + w] = reinterpret_cast<const uint32_t*>(smem + off1)[w];
  for (int w = 0; w < kWords; ++w) out[3 * kWords + w] = reinterpret_cast<const uint32_t*>(smem + off2)[w];
}

__global__ void probe_cp_async(int bytes, int hinted, const int32_t* src_bytes, const uint8_t* src, uint32_t* regs) {
  switch (bytes) {
    case 4: cp_async_probe_body<4>(src_bytes, src, regs); break;
    case 8: cp_async_probe_body<8>(src_bytes, src, regs); break;
    case 16:
      if (hinted) cp_async_probe_body<16, true>(src_bytes, src, regs);
      else cp_async_probe_body<16>(src_bytes, src, regs);
      break;
    default: break;
  }
}

// ---- shfl.sync ------------------------------------------------------------------------------------
enum ShflProbeMode : int { kShflIdx = 0, kShflBfly = 1, kShflDown = 2 };

// Lane L offers values[L] with operand[L] (source lane, lane mask or offset); regs[L] is its result.
__global__ void probe_shfl(int mode, const uint32_t* values, const uint32_t* operand, uint32_t* regs) {
  const int lane = int(threadIdx.x);
  const uint32_t v = values[lane], b = operand[lane];
  uint32_t r = 0;
  switch (mode) {
    case kShflIdx: r = ::cg::ptx::shfl_sync(v, int(b)); break;
    case kShflBfly: r = ::cg::ptx::shfl_xor_sync(v, int(b)); break;
    case kShflDown: r = ::cg::ptx::shfl_down_sync(v, b); break;
    default: return;
  }
  regs[lane] = r;
}

// ---- lop3, prmt ---------------------------------------------------------------------------------
// immLut is an immediate: a run-time LUT value picks among the 256 compiled instances.
template <size_t... L>
__device__ __forceinline__ uint32_t lop3_any(uint32_t lut, uint32_t a, uint32_t b, uint32_t c,
                                             std::index_sequence<L...>) {
  uint32_t d = 0;
  (void)((lut == L && (d = ::cg::ptx::lop3<int(L)>(a, b, c), true)) || ...);
  return d;
}

// Lane L computes every LUT of luts[0..nluts) on (a[L], b[L], c[L]): regs[L * nluts + i].
__global__ void probe_lop3(const uint32_t* a, const uint32_t* b, const uint32_t* c, const uint32_t* luts, int nluts,
                           uint32_t* regs) {
  const int lane = int(threadIdx.x);
  for (int i = 0; i < nluts; ++i) {
    regs[lane * nluts + i] = lop3_any(luts[i], a[lane], b[lane], c[lane], std::make_index_sequence<256>{});
  }
}

__global__ void probe_prmt(const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* regs) {
  const int lane = int(threadIdx.x);
  regs[lane] = ::cg::ptx::prmt(a[lane], b[lane], c[lane]);
}

// ---- fma.rn.{f16,bf16}x2 -------------------------------------------------------------------------
// Lane L: regs[L] = fma_rn_16x2(a[L], b[L], c[L]), both halves (the INT4 dequantization's subtraction).
__global__ void probe_fma16x2(int bf16, const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* regs) {
  const int lane = int(threadIdx.x);
  regs[lane] = bf16 ? ::cg::ptx::fma_rn_16x2<true>(a[lane], b[lane], c[lane])
                    : ::cg::ptx::fma_rn_16x2<false>(a[lane], b[lane], c[lane]);
}

// ---- launchers: one block of one warp each ------------------------------------------------------

// regs: 32 * num words. outside: 16 global bytes, 16-byte aligned (the fault address).
inline ProbeStatus launch_probe_ldmatrix(int num, bool trans, int fault_lane, LdmatrixFault fault,
                                         const uint8_t* outside, uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_ldmatrix, ::cg::dim_x(1), ::cg::dim_x(kWarp), kLdmSmemBytes, 0, num, trans ? 1 : 0,
                         fault_lane, int(fault), outside, regs);
}

inline ProbeStatus launch_probe_mma(bool bf16, const uint32_t* a, const uint32_t* b, const float* c, float* d) {
  return CG_PROBE_LAUNCH(probe_mma, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, bf16 ? 1 : 0, a, b, c, d);
}

// selector: 0 or 1 (another value launches nothing). a, b, c: 32 x 4; e: 32; d: 32 x 4 floats.
inline ProbeStatus launch_probe_mma_sp(bool bf16, int selector, const uint32_t* a, const uint32_t* b, const float* c,
                                       const uint32_t* e, float* d) {
  return CG_PROBE_LAUNCH(probe_mma_sp, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, bf16 ? 1 : 0, selector, a, b, c, e, d);
}

// a: 16x32, b: 32x8 row-major 16-bit values, 16-byte aligned; d: 32 x 4 floats.
inline ProbeStatus launch_probe_mma_tile(bool bf16, const uint16_t* a, const uint16_t* b, float* d) {
  return CG_PROBE_LAUNCH(probe_mma_tile, ::cg::dim_x(1), ::cg::dim_x(kWarp), kTileSmemBytes, 0, bf16 ? 1 : 0, a, b, d);
}

// src: 64 * bytes, 16-byte aligned; src_bytes: 64; regs: 32 * bytes words.
inline ProbeStatus launch_probe_cp_async(int bytes, bool hinted, const int32_t* src_bytes, const uint8_t* src, uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_cp_async, ::cg::dim_x(1), ::cg::dim_x(kWarp), size_t(2 * kWarp) * size_t(bytes), 0, bytes,
                         hinted ? 1 : 0, src_bytes, src, regs);
}

inline ProbeStatus launch_probe_shfl(ShflProbeMode mode, const uint32_t* values, const uint32_t* operand,
                                     uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_shfl, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, int(mode), values, operand, regs);
}

// regs: 32 * nluts words.
inline ProbeStatus launch_probe_lop3(const uint32_t* a, const uint32_t* b, const uint32_t* c, const uint32_t* luts,
                                     int nluts, uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_lop3, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, a, b, c, luts, nluts, regs);
}

inline ProbeStatus launch_probe_fma16x2(bool bf16, const uint32_t* a, const uint32_t* b, const uint32_t* c,
                                        uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_fma16x2, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, bf16 ? 1 : 0, a, b, c, regs);
}

inline ProbeStatus launch_probe_prmt(const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* regs) {
  return CG_PROBE_LAUNCH(probe_prmt, ::cg::dim_x(1), ::cg::dim_x(kWarp), 0, 0, a, b, c, regs);
}

}  // namespace probes
}  // namespace cg
