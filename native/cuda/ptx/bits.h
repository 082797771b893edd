// Per-thread bit operations of in-register dequantization (INT4 -> f16/bf16, FP8 byte shuffles).
// Plain functions on the simulated device (no warp involved), each the ISA's definition.
#pragma once
#include <cstdint>

#include "cuda/kernel.h"

namespace cg {
namespace ptx {

// lop3.b32 d, a, b, c, immLut (PTX ISA §9.7.8.6): any three-input bitwise function in one
// instruction, e.g. (q & mask) | exponent in one step (0xEA). immLut is F(0xF0, 0xCC, 0xAA); bit i
// of d is bit ((a_i << 2) | (b_i << 1) | c_i) of immLut.
template <int immLut>
__device__ __forceinline__ uint32_t lop3(uint32_t a, uint32_t b, uint32_t c) {
  static_assert(immLut >= 0 && immLut <= 0xFF, "immLut is an 8-bit table");
#if defined(__CUDACC__)
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, %4;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c), "n"(immLut));
  return d;
#else
  // The definition as a sum of minterms: each set bit idx of immLut contributes the bits where
  // (a, b, c) spell idx.
  uint32_t d = 0;
  for (int idx = 0; idx < 8; ++idx) {
    if ((immLut >> idx) & 1) d |= ((idx & 4) ? a : ~a) & ((idx & 2) ? b : ~b) & ((idx & 1) ? c : ~c);
  }
  return d;
#endif
}

// prmt.b32 d, a, b, c, default mode (PTX ISA §9.7.9.7): any four of the eight bytes of {b, a} in
// one instruction, optionally sign-replicated (FP8/INT8 byte shuffles). Bytes 0-3 are a's, 4-7
// b's; result byte k comes from selector nibble s = c[4k+3 : 4k]: byte s & 7, or, when s & 8, that
// byte's sign bit replicated over all 8 bits.
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t c) {
#if defined(__CUDACC__)
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
#else
  const uint64_t tmp64 = (uint64_t(b) << 32) | a;
  uint32_t d = 0;
  for (int k = 0; k < 4; ++k) {
    const uint32_t ctl = (c >> (4 * k)) & 0xF;
    uint32_t byte = uint32_t(tmp64 >> (8 * (ctl & 7))) & 0xFF;
    if (ctl & 8) byte = (byte & 0x80) ? 0xFF : 0x00;
    d |= byte << (8 * k);
  }
  return d;
#endif
}

}  // namespace ptx
}  // namespace cg
