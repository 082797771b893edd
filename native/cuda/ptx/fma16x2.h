// fma.rn.f16x2 / fma.rn.bf16x2 (PTX ISA §9.7.4.1 half-precision fma; bf16x2 from sm_80): two
// 16-bit fused multiply-adds in one instruction, d.h = a.h * b.h + c.h per half, rounded once to
// nearest even. The INT4 kernel's dequantization uses it as a packed subtraction of the
// magic-number bias and the zero point ((1024 + q) * 1 - (1024 + z) = q - z, exact), because
// sub.bf16x2 needs sm_90 and fma.rn.bf16x2 only sm_80 (one wrapper for both types).
//
// Halves: bits [15:0] and [31:16] are independent lanes (the lower-indexed value in [15:0], as in
// the mma fragments).
//
// On the simulated device: each half exactly as the ISA defines it, a*b + c with one rounding.
// The product of two 16-bit values is exact in double (11 x 11 or 8 x 8 significant bits); the
// sum is rounded once to double and then to the 16-bit grid, which is the single rounding of the
// exact sum except where c or a*b is so small that double absorbed it (the sum then equals the
// larger term and would turn a near-tie into a tie): the sum is then nudged one double ulp toward
// the absorbed term, which keeps it on the correct side of every 16-bit midpoint. NaN results are
// the canonical NaN (0x7FFF for both types).
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

#if !defined(__CUDACC__)
#include <cmath>

#include "cg/dtype.h"
#endif

namespace cg {
namespace ptx {

#if !defined(__CUDACC__)
namespace sim_face {

// v rounded to nearest even on the grid of a 16-bit type with `mant` stored mantissa bits,
// smallest normal exponent `emin` and largest finite value `maxv` (infinity beyond).
inline double round_to_16bit_grid(double v, int mant, int emin, double maxv) {
  if (v == 0 || !std::isfinite(v)) return v;
  int e = std::ilogb(v);
  if (e < emin) e = emin;  // subnormals share the smallest normal's ulp
  const double ulp = std::ldexp(1.0, e - mant);
  const double r = std::nearbyint(v / ulp) * ulp;  // v / ulp is exact (a power of two); default mode is RNE
  if (std::fabs(r) > maxv) return std::copysign(INFINITY, v);
  return r;
}

template <bool kBf16>
inline uint16_t fma16(uint16_t a, uint16_t b, uint16_t c) {
  const double da = kBf16 ? bf16_to_f32(a) : f16_to_f32(a);
  const double db = kBf16 ? bf16_to_f32(b) : f16_to_f32(b);
  const double dc = kBf16 ? bf16_to_f32(c) : f16_to_f32(c);
  const double p = da * db;  // exact
  double s = p + dc;
  if (std::isnan(s)) return 0x7FFF;
  if (std::isfinite(s)) {
    if (s == p && dc != 0) s = std::nextafter(s, dc > 0 ? INFINITY : -INFINITY);
    else if (s == dc && p != 0) s = std::nextafter(s, p > 0 ? INFINITY : -INFINITY);
    s = kBf16 ? round_to_16bit_grid(s, 7, -126, 3.3895313892515355e38) : round_to_16bit_grid(s, 10, -14, 65504.0);
  }
  // s is now a value of the 16-bit type (or +-0, +-inf): exact in float32, converted exactly.
  return kBf16 ? f32_to_bf16(float(s)) : f32_to_f16(float(s));
}

template <bool kBf16>
inline uint32_t fma16x2(uint32_t a, uint32_t b, uint32_t c) {
  const uint16_t lo = fma16<kBf16>(uint16_t(a), uint16_t(b), uint16_t(c));
  const uint16_t hi = fma16<kBf16>(uint16_t(a >> 16), uint16_t(b >> 16), uint16_t(c >> 16));
  return uint32_t(lo) | (uint32_t(hi) << 16);
}

}  // namespace sim_face
#endif

// d = a * b + c per 16-bit half: f16 (kBf16 false) or bf16 (true), one rounding to nearest even.
template <bool kBf16>
__device__ __forceinline__ uint32_t fma_rn_16x2(uint32_t a, uint32_t b, uint32_t c) {
#if defined(__CUDACC__)
  uint32_t d;
  if constexpr (kBf16) {
    asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  } else {
    asm("fma.rn.f16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  }
  return d;
#else
  return sim_face::fma16x2<kBf16>(a, b, c);
#endif
}

}  // namespace ptx
}  // namespace cg
