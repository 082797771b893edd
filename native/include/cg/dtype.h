// Element types shared by every kernel, and exact scalar conversions between them.
// 16-bit floats travel as raw bits (uint16_t); conversions round to nearest even.
#pragma once
#include <cstdint>
#include <cstring>

namespace cg {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2 };

static inline int dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

static inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

static inline float bf16_to_f32(uint16_t h) { return bits_f32(uint32_t(h) << 16); }

static inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays a (quiet) NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                          // round to nearest even
  return uint16_t(u >> 16);
}

static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));       // inf / NaN
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    // subnormal: value = man * 2^-24, exact in float32
    float v = float(man) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);                     // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);                    // rounds to >= 65520: inf
  if (a >= 0x38800000u) {                                                   // normal half
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
    return uint16_t(sign | (r >> 13));
  }
  if (a < 0x33000000u) return sign;                                         // below half of min subnormal
  // subnormal half: shift the full mantissa, round to nearest even
  uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126u - e;                                                // 14..24
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return uint16_t(sign | q);
}

template <DType T> struct DTypeTraits;
template <> struct DTypeTraits<DType::F32> { using Storage = float; static float to_f32(float v) { return v; } };
template <> struct DTypeTraits<DType::F16> { using Storage = uint16_t; static float to_f32(uint16_t v) { return f16_to_f32(v); } };
template <> struct DTypeTraits<DType::BF16> { using Storage = uint16_t; static float to_f32(uint16_t v) { return bf16_to_f32(v); } };

static inline float load_as_f32(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

static inline void store_from_f32(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    default: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
  }
}

}  // namespace cg
