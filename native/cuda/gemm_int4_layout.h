// The INT4 weight's device layout (one allocation), made on upload from the canonical format
// (native/formats/int4.h) and read back from it for canonical()/toDense(). Host code only: both
// addons compile it (binding/gemm_int4_exports.h), and gemm_int4.cuh's kernel reads what it
// describes.
//
// One allocation, four parts at 256-byte aligned offsets (int4_device_layout computes them; every
// reader of the allocation goes through it, so there is one place for the fact):
//   packed  uint32 [Kp/16][Np/64][32 lanes][4 words]: the codes in Marlin's order (below), Kp = K
//           rounded up to 16, Np = N rounded up to 64; codes past K or N are 0 (their x columns
//           are zero-filled by the kernel and their outputs never stored);
//   scales  float32 [G][Np] (transposed from [N, G]; float16 scales widened, exactly), 0 past N;
//   zeros   uint8 [G][Np] (transposed), 8 past N; only for weights with zero points;
//   perm    int32 [K] (act-order only): placement column c holds canonical column perm[c]
//           (groups contiguous, lib/weights/int4.ts permFromGIdx); the kernel's x is permuted the
//           same way on the device before the GEMM.
//
// ---- Marlin's order (marlin/__init__.py `_get_perms`; vLLM gptq_marlin_repack.cu; PTX.md) -----
// Per k16 tile r and 64-column group c, 512 bytes: lane l (g = l / 4, t = l % 4) owns the 16 bytes
// at 16 l, words j = 0..3, and nibble p (bits 4p..4p+3) of word j holds the code of
//     W[n = 64c + 16j + 8((p >> 1) & 1) + g][k = 16r + 2t + (p >> 2) + 8(p & 1)]
// So one 128-bit load per lane per k16 tile is every B fragment (ptx/mma.h: b[0] = B[2t..2t+1][g],
// b[1] = B[2t+8..2t+9][g], B[k][n] = W[n][k]) the lane needs for the 64 columns: word j, shifted
// right by 0 / 4 / 8 / 12, has in its nibbles 0 and 4 (bits 0-3 and 16-19: the two 16-bit halves)
// b[0] of n8 tile 2j, b[1] of tile 2j, b[0] of tile 2j+1, b[1] of tile 2j+1. The interleave of p
// ([0, 2, 4, 6, 1, 3, 5, 7] read as k offsets) is what puts the two k values of one fragment
// register 16 bits apart.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cg/dtype.h"

namespace cg {
namespace gemm {

struct Int4DeviceLayout {
  int64_t N = 0, K = 0, group = 0, G = 0;
  int64_t Np = 0, Kp = 0;  // N rounded up to 64, K to 16
  bool zeros = false, act_order = false;
  size_t packed_off = 0, packed_bytes = 0;
  size_t scales_off = 0, scales_bytes = 0;
  size_t zeros_off = 0, zeros_bytes = 0;  // 0 bytes for symmetric weights
  size_t perm_off = 0, perm_bytes = 0;    // 0 bytes without act-order
  size_t total = 0;
  size_t row_bytes() const { return size_t(Np / 64) * 512; }  // one k16 tile of every column group
};

inline size_t int4_align256(size_t v) { return (v + 255) / 256 * 256; }

// The layout of an [N, K] weight with groups of `group` columns (K % group == 0 checked by the caller).
inline Int4DeviceLayout int4_device_layout(int64_t N, int64_t K, int64_t group, bool zeros, bool act_order) {
  Int4DeviceLayout l;
  l.N = N;
  l.K = K;
  l.group = group;
  l.G = K / group;
  l.Np = (N + 63) / 64 * 64;
  l.Kp = (K + 15) / 16 * 16;
  l.zeros = zeros;
  l.act_order = act_order;
  l.packed_bytes = size_t(l.Kp / 16) * l.row_bytes();
  l.scales_off = int4_align256(l.packed_bytes);
  l.scales_bytes = size_t(l.G * l.Np) * 4;
  l.zeros_off = int4_align256(l.scales_off + l.scales_bytes);
  l.zeros_bytes = zeros ? size_t(l.G * l.Np) : 0;
  l.perm_off = int4_align256(l.zeros_off + l.zeros_bytes);
  l.perm_bytes = act_order ? size_t(K) * 4 : 0;
  l.total = l.perm_off + l.perm_bytes;
  return l;
}

// Visits every (word, nibble) of the packed part with the (n, k) whose code it holds.
template <class F>
inline void int4_for_each_packed(const Int4DeviceLayout& l, F f) {
  const int64_t groups_n = l.Np / 64;
  for (int64_t r = 0; r < l.Kp / 16; ++r)
    for (int64_t c = 0; c < groups_n; ++c)
      for (int lane = 0; lane < 32; ++lane)
        for (int j = 0; j < 4; ++j) {
          const size_t word = size_t((r * groups_n + c) * 128 + 4 * lane + j);
          const int g = lane / 4, t = lane % 4;
          for (int p = 0; p < 8; ++p) {
            const int64_t n = 64 * c + 16 * j + 8 * ((p >> 1) & 1) + g;
            const int64_t k = 16 * r + 2 * t + (p >> 2) + 8 * (p & 1);
            f(word, p, n, k);
          }
        }
}

// The canonical arrays -> the device allocation's bytes (`blob`, l.total bytes).
//   qweight [N, K/2] (low nibble first), scales [N, G] float16 bits or float32, zeros [N, G] or
//   null (l.zeros says which), perm [K] or null (l.act_order).
inline void int4_to_device_layout(const Int4DeviceLayout& l, const uint8_t* qweight, const void* scales, bool scales_f16,
                                  const uint8_t* zeros, const int32_t* perm, uint8_t* blob) {
  std::memset(blob, 0, l.total);
  uint32_t* packed = reinterpret_cast<uint32_t*>(blob + l.packed_off);
  int4_for_each_packed(l, [&](size_t word, int p, int64_t n, int64_t k) {
    if (n >= l.N || k >= l.K) return;  // stays 0
    const int64_t kc = perm ? perm[k] : k;
    const uint8_t b = qweight[n * (l.K / 2) + kc / 2];
    const uint32_t q = (kc & 1) ? b >> 4 : b & 15;
    packed[word] |= q << (4 * p);
  });
  float* s = reinterpret_cast<float*>(blob + l.scales_off);
  uint8_t* z = blob + l.zeros_off;
  for (int64_t gi = 0; gi < l.G; ++gi)
    for (int64_t n = 0; n < l.Np; ++n) {
      const bool in = n < l.N;
      s[gi * l.Np + n] = !in ? 0.f
                         : scales_f16 ? f16_to_f32(static_cast<const uint16_t*>(scales)[n * l.G + gi])
                                      : static_cast<const float*>(scales)[n * l.G + gi];
      if (l.zeros) z[gi * l.Np + n] = in ? zeros[n * l.G + gi] : 8;
    }
  if (l.act_order) std::memcpy(blob + l.perm_off, perm, l.perm_bytes);
}

// The inverse: the device allocation's bytes -> the canonical arrays (qweight in canonical column
// order, scales in their dtype: float16 scales were widened exactly, so they narrow back exactly).
inline void int4_from_device_layout(const Int4DeviceLayout& l, const uint8_t* blob, uint8_t* qweight, void* scales,
                                    bool scales_f16, uint8_t* zeros) {
  const uint32_t* packed = reinterpret_cast<const uint32_t*>(blob + l.packed_off);
  const int32_t* perm = l.act_order ? reinterpret_cast<const int32_t*>(blob + l.perm_off) : nullptr;
  std::memset(qweight, 0, size_t(l.N * (l.K / 2)));
  int4_for_each_packed(l, [&](size_t word, int p, int64_t n, int64_t k) {
    if (n >= l.N || k >= l.K) return;
    const int64_t kc = perm ? perm[k] : k;
    const uint8_t q = uint8_t((packed[word] >> (4 * p)) & 15);
    qweight[n * (l.K / 2) + kc / 2] |= (kc & 1) ? uint8_t(q << 4) : q;
  });
  const float* s = reinterpret_cast<const float*>(blob + l.scales_off);
  const uint8_t* z = blob + l.zeros_off;
  for (int64_t n = 0; n < l.N; ++n)
    for (int64_t gi = 0; gi < l.G; ++gi) {
      const float v = s[gi * l.Np + n];
      if (scales_f16) static_cast<uint16_t*>(scales)[n * l.G + gi] = f32_to_f16(v);
      else static_cast<float*>(scales)[n * l.G + gi] = v;
      if (l.zeros && zeros) zeros[n * l.G + gi] = z[gi * l.Np + n];
    }
}

}  // namespace gemm
}  // namespace cg
