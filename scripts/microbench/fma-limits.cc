// What one core of this CPU sustains for the three instruction mixes the 2:4 kernels are built
// from (README, "Performance"): AVX-512 FMAs on registers only (the dense kernel's bound), FMAs
// whose second operand is a 64-byte load from L1 (the M-vectorised 2:4 kernel selects by
// address), and an in-lane permute per FMA (the panel 2:4 kernel selects with vpermilps).
//
//   g++ -O3 -mavx512f -mavx512dq -mfma scripts/microbench/fma-limits.cc -o /tmp/fma-limits && /tmp/fma-limits
//
// Prints G FMA instructions per second for each mix (single thread).
#include <immintrin.h>

#include <chrono>
#include <cstdio>

namespace {

volatile float g_sink;
alignas(64) float g_buf[8192];

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 12 independent accumulator chains cover the FMA latency times two FMA pipes.
double registers_only(long iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + 0.01f * float(i));
  const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  }
  const double s = seconds_since(t0);
  float t = 0;
  for (int i = 0; i < 12; ++i) t += _mm512_reduce_add_ps(a[i]);
  g_sink = t;
  return double(iters) * 12 / s / 1e9;
}

// 24 accumulators, each FMA reading its own 64-byte vector from a 32 KiB (L1) buffer, one
// broadcast weight per 24 FMAs.
double memory_operands(long iters) {
  __m512 a[24];
  for (int i = 0; i < 24; ++i) a[i] = _mm512_setzero_ps();
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iters; ++it) {
    const float* p = g_buf + ((it * 384) & 8191);
    const __m512 w = _mm512_set1_ps(p[3]);
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) a[i] = _mm512_fmadd_ps(w, _mm512_load_ps(p + 16 * i), a[i]);
  }
  const double s = seconds_since(t0);
  float t = 0;
  for (int i = 0; i < 24; ++i) t += _mm512_reduce_add_ps(a[i]);
  g_sink = t;
  return double(iters) * 24 / s / 1e9;
}

// Per row of x and group of 4 columns: broadcast the 4 values, two vpermilps (the two kept
// columns of every lane) and two FMAs, for 10 rows and two 16-lane weight vectors. Cross = true:
// the lane-crossing vpermps instead (indices 0..3 pick the same values). On Zen 5 (2026-12-04)
// vpermps was no faster: 3.59-3.87 against 3.93-4.12 G FMA/s, and the panel kernel itself ran
// 3.3-3.4 G FMA/s with either (its weights in L1), so it keeps vpermilps. Every row's x must
// differ: rows that share an x let the compiler share their permutes (a first version of this
// test did, and reported vpermps at the register-only rate).
template <bool Cross>
double permute_per_fma(long iters) {
  __m512 acc[10][2];
  for (int r = 0; r < 10; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < iters; ++it) {
    const float* xp = g_buf + (it & 63) * 40;
    const float* wp = g_buf + 4096 + (it & 31) * 64;
    __m512 va[2], vb[2];
    __m512i ia[2], ib[2];
    for (int v = 0; v < 2; ++v) {
      va[v] = _mm512_load_ps(wp + 32 * v);
      vb[v] = _mm512_load_ps(wp + 32 * v + 16);
      ia[v] = _mm512_and_si512(_mm512_castps_si512(_mm512_load_ps(wp + 32 * v + 8)), _mm512_set1_epi32(15));
      ib[v] = _mm512_srli_epi32(ia[v], 2);
    }
#pragma GCC unroll 10
    for (int r = 0; r < 10; ++r) {
      const __m512 x4 = _mm512_broadcast_f32x4(_mm_load_ps(xp + 4 * r));
#pragma GCC unroll 2
      for (int v = 0; v < 2; ++v) {
        const __m512 xa = Cross ? _mm512_permutexvar_ps(ia[v], x4) : _mm512_permutevar_ps(x4, ia[v]);
        const __m512 xb = Cross ? _mm512_permutexvar_ps(ib[v], x4) : _mm512_permutevar_ps(x4, ib[v]);
        acc[r][v] = _mm512_fmadd_ps(xa, va[v], acc[r][v]);
        acc[r][v] = _mm512_fmadd_ps(xb, vb[v], acc[r][v]);
      }
    }
  }
  const double s = seconds_since(t0);
  float t = 0;
  for (int r = 0; r < 10; ++r) t += _mm512_reduce_add_ps(acc[r][0]) + _mm512_reduce_add_ps(acc[r][1]);
  g_sink = t;
  return double(iters) * 40 / s / 1e9;
}

}  // namespace

int main() {
  for (int i = 0; i < 8192; ++i) g_buf[i] = 1e-6f * float(i % 1000);
  registers_only(1000000);  // warm up the clocks
  std::printf("G FMA/s, one core:\n");
  std::printf("  registers only          %.2f\n", registers_only(100000000));
  std::printf("  64-byte load per FMA    %.2f\n", memory_operands(50000000));
  std::printf("  vpermilps per FMA       %.2f\n", permute_per_fma<false>(10000000));
  std::printf("  vpermps per FMA         %.2f\n", permute_per_fma<true>(10000000));
  return 0;
}
