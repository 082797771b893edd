// INT4 weights with int8 activations on AVX512-VNNI (compiled with -mavx512vnni; chosen at run
// time when the CPU has it). x is quantized per row (act_quant.h: s = amax / 127, q =
// round_half_even(x / s) clamped to +-127), and each group of the weight contributes
//   s_w * (sum_k q_w[k] * q_x[k] - z * sum_k q_x[k])
// where the first sum is vpdpbusd's exact int32 dot product of unsigned 4-bit codes with signed
// 8-bit activations, four columns per lane per instruction: the INT4 CPU layout keeps columns
// 8c..8c+3 in a lane word's low nibbles and 8c+4..8c+7 in its high nibbles
// (cpu/layout/int4.h, cpu/layout/fp8.h), so one AND and one shift-AND make the two byte vectors the
// instruction wants. Row m's sum is finally multiplied by its activation scale. A symmetric
// weight (every z = 8) never reads its zero points: 1/18 fewer bytes from memory at group 128.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace avx512vnni {
namespace {
#include "cpu/impl/simd_avx512.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"

constexpr int kNV = 2;  // vectors (panels) per tile: 32 weight rows
constexpr int kR = 6;   // rows of x per tile: 12 int32 + 12 float32 accumulators
constexpr int kPrefetchBytes = 2048;  // how far ahead a GEMV asks for each panel's codes

struct Ctx {
  const QuantProblem* q;
  const int8_t* x8;    // [M][K], columns in the weight's (permuted) order
  const float* xsum;   // [M][G]: sum of each group's q_x, as float32 (exact: |sum| < 2^24)
  const float* sx;     // [M]
  int64_t ntiles;
};

// Row m of x (any float dtype, columns permuted by perm if any) -> int8 and its scale.
void quantize_row(const GemmProblem& p, const int32_t* perm, int64_t m, float* tmp, int8_t* out, float* scale) {
  const int64_t K = p.K;
  if (perm) {
    for (int64_t k = 0; k < K; ++k) tmp[k] = load_as_f32(p.x, p.xdt, m * K + perm[k]);
  } else {
    for (int64_t k = 0; k < K; k += L) {
      const int n = K - k < L ? int(K - k) : L;
      store_any_n(tmp, DType::F32, k, load_any_n(p.x, p.xdt, m * K + k, n), n);
    }
  }
  V amax = vzero();
  int64_t k = 0;
  for (; k + L <= K; k += L) amax = _mm512_max_ps(amax, _mm512_abs_ps(vload(tmp + k)));
  float a = _mm512_reduce_max_ps(amax);
  for (; k < K; ++k) a = std::fmax(a, std::fabs(tmp[k]));
  // A NaN or an infinity makes the whole row NaN (act_quant.h): scale NaN, codes 0 (a NaN must
  // never be cast to int8, nor clamped into a finite code).
  for (k = 0; k < K; ++k) {
    if (!(tmp[k] - tmp[k] == 0.0f)) {
      *scale = NAN;
      for (k = 0; k < K; ++k) out[k] = 0;
      return;
    }
  }
  float s = a / 127.0f;
  if (!(s > 0.0f)) s = 1.0f;
  *scale = s;
  const V vs = vset1(s), lo = vset1(-127.0f), hi = vset1(127.0f);
  for (k = 0; k + L <= K; k += L) {
    // x / s rounded to nearest even (the division, not a multiply by 1/s, as act_quant.h says)
    const V qf = _mm512_roundscale_ps(_mm512_div_ps(vload(tmp + k), vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(qf, lo), hi))));
  }
  for (; k < K; ++k) {
    float qv = std::nearbyint(tmp[k] / s);
    qv = qv < -127.0f ? -127.0f : (qv > 127.0f ? 127.0f : qv);
    out[k] = int8_t(qv);
  }
}

template <int R, bool SYM>
inline void tile(const Ctx& c, int64_t m0, int64_t t, const TileOut& o) {
  const QuantProblem& q = *c.q;
  const GemmProblem& p = *q.p;
  const Int4Dims& d = q.int4;
  const int64_t K = p.K, C = K / 8, G = d.groups(), octets = d.group / 8;
  const Int4Layout lay = int4_layout(d);
  const int64_t p0 = t * kNV;
  const uint8_t* codes = q.packed + p0 * C * kQuantPanel * 4;
  const float* sc = reinterpret_cast<const float*>(q.packed + lay.scales_off) + p0 * G * kQuantPanel;
  const float* zr = reinterpret_cast<const float*>(q.packed + lay.zeros_off) + p0 * G * kQuantPanel;
  const int8_t* x = c.x8 + m0 * K;
  const __m512i mask = _mm512_set1_epi8(0x0f);
  V acc[R][kNV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < kNV; ++v) acc[r][v] = vzero();
  // Few rows of x: the low and high nibbles feed separate chains, so two dot products per lane
  // are in flight instead of one waiting on the other.
  constexpr int CH = R <= 2 ? 2 : 1;
  for (int64_t g = 0; g < G; ++g) {
    __m512i iacc[R][kNV][CH];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < kNV; ++v)
#pragma GCC unroll 2
        for (int h = 0; h < CH; ++h) iacc[r][v][h] = _mm512_setzero_si512();
    for (int64_t cc = g * octets; cc < (g + 1) * octets; ++cc) {
      __m512i lo[kNV], hi[kNV];
#pragma GCC unroll 2
      for (int v = 0; v < kNV; ++v) {
        const uint8_t* wp = codes + (v * C + cc) * kQuantPanel * 4;
        if (R <= 2) _mm_prefetch(reinterpret_cast<const char*>(wp) + kPrefetchBytes, _MM_HINT_T0);  // GEMV: memory-bound
        const __m512i w = _mm512_loadu_si512(wp);
        lo[v] = _mm512_and_si512(w, mask);
        hi[v] = _mm512_and_si512(_mm512_srli_epi32(w, 4), mask);
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        int32_t xa, xb;
        std::memcpy(&xa, x + r * K + 8 * cc, 4);
        std::memcpy(&xb, x + r * K + 8 * cc + 4, 4);
        const __m512i va = _mm512_set1_epi32(xa), vb = _mm512_set1_epi32(xb);
#pragma GCC unroll 2
        for (int v = 0; v < kNV; ++v) {
          iacc[r][v][0] = _mm512_dpbusd_epi32(iacc[r][v][0], lo[v], va);
          iacc[r][v][CH - 1] = _mm512_dpbusd_epi32(iacc[r][v][CH - 1], hi[v], vb);
        }
      }
    }
#pragma GCC unroll 2
    for (int v = 0; v < kNV; ++v) {
      // sum q_w q_x - z sum q_x in float32: integers below 2^24 in magnitude for groups up to
      // 8 Ki columns (15 * 127 * 8192 < 2^24), so the product and the one rounding of the fused
      // subtraction are exact, and a row whose codes equal z gives exactly 0 before the scale.
      const V s = vload(sc + (v * G + g) * kQuantPanel);
      const V z = SYM ? vset1(8.0f) : vload(zr + (v * G + g) * kQuantPanel);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const V dot = _mm512_cvtepi32_ps(CH == 2 ? _mm512_add_epi32(iacc[r][v][0], iacc[r][v][CH - 1]) : iacc[r][v][0]);
        acc[r][v] = vfma(_mm512_fnmadd_ps(z, vbcast(c.xsum + (m0 + r) * G + g), dot), s, acc[r][v]);
      }
    }
  }
  const int64_t n0 = t * kNV * L;
  store_tile<R, kNV>(acc, o, m0, n0, p.N - n0 < kNV * L ? int(p.N - n0) : kNV * L);
}

template <int R = kR>
inline void tile_rows(int rows, const Ctx& c, int64_t m0, int64_t t, const TileOut& o) {
  if (rows == R || R == 1) {
    if (c.q->int4_symmetric) tile<R, true>(c, m0, t, o);
    else tile<R, false>(c, m0, t, o);
  } else if constexpr (R > 1) {
    tile_rows<R - 1>(rows, c, m0, t, o);
  }
}

void task(void* vctx, int ti, int nt) {
  const Ctx& c = *static_cast<const Ctx*>(vctx);
  const GemmProblem& p = *c.q->p;
  const int64_t t0 = c.ntiles * ti / nt, t1 = c.ntiles * (ti + 1) / nt;
  TileOut o = whole_k_out(p);
  o.row_scale = c.sx;
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t m0 = 0; m0 < p.M; m0 += kR) tile_rows(p.M - m0 < kR ? int(p.M - m0) : kR, c, m0, t, o);
}

}  // namespace

Int8Rows int8_rows(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  const int64_t M = p.M, K = p.K, G = q.int4.groups();
  // One buffer: x8 [M][K], the row scales, the group sums, and a float row to convert into.
  const size_t x8_bytes = size_t((M * K + 63) / 64 * 64);
  const size_t bytes = x8_bytes + size_t(M + M * G + K) * sizeof(float);
  uint8_t* buf = static_cast<uint8_t*>(aligned_alloc_bytes(bytes));
  Int8Rows r;
  if (!buf) return r;
  r.buf = buf;
  r.x8 = reinterpret_cast<int8_t*>(buf);
  r.sx = reinterpret_cast<float*>(buf + x8_bytes);
  r.xsum = r.sx + M;
  float* tmp = r.xsum + M * G;
  for (int64_t m = 0; m < M; ++m) {
    quantize_row(p, q.perm, m, tmp, r.x8 + m * K, r.sx + m);
    for (int64_t g = 0; g < G; ++g) {
      int32_t s = 0;
      for (int64_t k = g * q.int4.group; k < (g + 1) * q.int4.group; ++k) s += r.x8[m * K + k];
      r.xsum[m * G + g] = float(s);
    }
  }
  return r;
}

bool int4_int8_linear(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  const Int8Rows r = int8_rows(q);
  if (!r.buf) return false;
  void* buf = r.buf;
  Ctx c{&q, r.x8, r.xsum, r.sx, (p.N + kNV * L - 1) / (kNV * L)};
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = c.ntiles < threads ? int(c.ntiles) : threads;
  parallel_for(ntasks, threads, task, &c);
  aligned_free_bytes(buf);
  return true;
}

}  // namespace avx512vnni
}  // namespace cg
#endif
