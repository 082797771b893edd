#if defined(__x86_64__)
#include <immintrin.h>
#include "cpu/fma_peak.h"
namespace cg {
namespace avx512 {
namespace {
using V = __m512;
constexpr int kLanes = 16;
inline V set1(float f) { return _mm512_set1_ps(f); }
inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline float reduce(V v) { return _mm512_reduce_add_ps(v); }
}  // namespace
#include "cpu/impl/fma_peak_impl.h"
}  // namespace avx512
}  // namespace cg
#endif
