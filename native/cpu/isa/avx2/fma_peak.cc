#if defined(__x86_64__)
#include <immintrin.h>
#include "cpu/fma_peak.h"
namespace cg {
namespace avx2 {
namespace {
using V = __m256;
constexpr int kLanes = 8;
inline V set1(float f) { return _mm256_set1_ps(f); }
inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline float reduce(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
}  // namespace
#include "cpu/impl/fma_peak_impl.h"
}  // namespace avx2
}  // namespace cg
#endif
