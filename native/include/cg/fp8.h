// FP8 (OCP 8-bit floating point, the formats of torch.float8_e4m3fn / torch.float8_e5m2):
//
//   e4m3 ("e4m3fn"): 1 sign, 4 exponent (bias 7), 3 mantissa bits. No infinities; the only NaN
//        codes are 0x7f and 0xff. Largest finite 448 (0x7e), smallest subnormal 2^-9.
//   e5m2:            1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-like: infinities
//        0x7c / 0xfc, NaNs 0x7d-0x7f / 0xfd-0xff. Largest finite 57344 (0x7b), smallest
//        subnormal 2^-16.
//
// Encoding rounds to nearest, ties to even (subnormals included), and saturates:
//   - e4m3: every |x| > 448 (finite or infinite) becomes +-448, as quantization recipes clamp
//     before the cast (PyTorch's plain cast would give NaN instead); NaN stays NaN (0x7f/0xff).
//   - e5m2: finite |x| > 57344 becomes +-57344 (no finite value turns into an infinity);
//     +-Inf stays +-Inf, NaN stays NaN (0x7f/0xff).
// Decoding is exact (every FP8 value is a float32).
//
// Plain scalar code, `static inline` so that every translation unit (any ISA) has its own copy.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cg {

enum class Fp8Format : int32_t { E4M3 = 0, E5M2 = 1 };

struct Fp8Spec {
  int mant;        // mantissa bits
  int bias;        // exponent bias
  uint8_t max_code;  // largest finite magnitude's code
  float max_value;
};

static inline Fp8Spec fp8_spec(Fp8Format f) {
  return f == Fp8Format::E4M3 ? Fp8Spec{3, 7, 0x7e, 448.0f} : Fp8Spec{2, 15, 0x7b, 57344.0f};
}

static inline float fp8_decode(uint8_t code, Fp8Format f) {
  const Fp8Spec s = fp8_spec(f);
  const bool neg = code & 0x80;
  const int mag = code & 0x7f;
  const int exp = mag >> s.mant, man = mag & ((1 << s.mant) - 1);
  float v;
  if (f == Fp8Format::E4M3 && mag == 0x7f) {
    v = NAN;
  } else if (f == Fp8Format::E5M2 && exp == 31) {
    v = man == 0 ? INFINITY : NAN;
  } else if (exp == 0) {
    v = std::ldexp(float(man), 1 - s.bias - s.mant);  // subnormal: man * 2^(1 - bias - mant)
  } else {
    v = std::ldexp(float((1 << s.mant) | man), exp - s.bias - s.mant);
  }
  return neg ? -v : v;
}

static inline uint8_t fp8_encode(float x, Fp8Format f) {
  const Fp8Spec s = fp8_spec(f);
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = uint8_t((bits >> 24) & 0x80);
  if (std::isnan(x)) return uint8_t(sign | 0x7f);
  const float a = std::fabs(x);
  if (std::isinf(a) && f == Fp8Format::E5M2) return uint8_t(sign | 0x7c);
  if (!(a < s.max_value)) return uint8_t(sign | s.max_code);  // saturate (finite overflow, e4m3 Inf)
  if (a == 0.0f) return sign;
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1): the unbiased exponent of a is e - 1
  int ub = e - 1;
  const int min_normal = 1 - s.bias;
  if (ub < min_normal) {
    // Subnormal range: units of 2^(min_normal - mant). q may round up to 2^mant, which is the
    // code of the smallest normal: the integer code arithmetic below covers both.
    const float q = std::nearbyint(std::ldexp(a, s.mant - min_normal));
    return uint8_t(sign | uint8_t(q));
  }
  float q = std::nearbyint(std::ldexp(a, s.mant - ub));  // in [2^mant, 2^(mant+1)]
  if (q >= float(2 << s.mant)) {
    q = float(1 << s.mant);
    ++ub;
  }
  const int code = ((ub + s.bias) << s.mant) | (int(q) - (1 << s.mant));
  return uint8_t(sign | (code > s.max_code ? s.max_code : code));
}

}  // namespace cg
