// The M-vectorised 2:4 register tile (colwise_micro, native/cpu/impl/sparse24_impl.h) alone, on
// one core, with its XT slice in L1 and a few panels of weights in L2: G FMA instructions per
// second, against the register-only FMA rate of scripts/microbench/fma-limits.cc. It includes
// the kernel header as the AVX-512 build does, so the register tile can be resized from the
// command line (XMV vectors of x, XNRS weight rows, XKC columns per slice) without touching
// the library:
//
//   g++ -O3 -std=c++17 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mf16c \
//     -Inative/include -Inative [-DXMV=8 -DXNRS=3 -DXKC=64] \
//     scripts/microbench/sparse24-colwise.cc -o /tmp/sp24-colwise && /tmp/sp24-colwise
//
// Two runs: every code 0b0100 (columns 0 and 1 of each group), and random valid codes.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/layout/sparse24.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"

#ifndef XMV
#define XMV 8
#endif
#ifndef XNRS
#define XNRS 3
#endif
#ifndef XKC
#define XKC 64
#endif

namespace cg {
namespace avx512 {
namespace {
#include "cpu/impl/simd_avx512.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
constexpr int kPermMR = 10;
constexpr int kPermNV = 2;
constexpr int64_t kPanelKC = 1024;
constexpr int kColMV = XMV;
constexpr int kColNRS = XNRS;
constexpr int kColKC = XKC;
constexpr int64_t kSparseColwiseFromM = 128;
#include "cpu/impl/sparse24_impl.h"

volatile double g_sink;

double g_fma_per_s(bool random_codes) {
  constexpr int es = 4;
  constexpr int kPanels = 64, kCols = 256;  // 64 panels x 2 superblocks of weights: 139 KiB
  const int64_t SB = sp24_super_bytes(es);
  const int nsuper = kColKC / kSp24SuperCols;
  auto* w = static_cast<uint8_t*>(aligned_alloc(64, size_t(kPanels * nsuper * SB)));
  auto* xt = static_cast<float*>(aligned_alloc(64, size_t(kColKC) * kColMB * sizeof(float)));
  auto* ct = static_cast<float*>(aligned_alloc(64, size_t(kCols) * kColMB * sizeof(float)));
  srand(1);
  for (int64_t s = 0; s < int64_t(kPanels) * nsuper; ++s) {
    float* v = reinterpret_cast<float*>(w + s * SB);
    for (int q = 0; q < kSp24SuperGroups * 2 * kSp24Panel; ++q) v[q] = 0.001f * float(q % 7);
    for (int j = 0; j < kSp24SuperGroups; ++j) {
      uint64_t word = 0;
      for (int l = 0; l < kSp24Panel; ++l) {
        const int a = random_codes ? rand() % 3 : 0;
        const int b = random_codes ? a + 1 + rand() % (3 - a) : 1;
        word |= uint64_t(a | (b << 2)) << sp24_code_shift(l);
      }
      memcpy(w + s * SB + sp24_value_bytes(es) + 8 * j, &word, 8);
    }
  }
  for (int64_t i = 0; i < int64_t(kColKC) * kColMB; ++i) xt[i] = 0.01f * float(i % 13);
  for (int64_t i = 0; i < int64_t(kCols) * kColMB; ++i) ct[i] = 0.0f;
  long fmas = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 2000; ++rep) {
    for (int c0 = 0; c0 + kColNRS <= kCols; c0 += kColNRS) {
      const uint8_t* sb[kColNRS];
      int lane[kColNRS];
      for (int q = 0; q < kColNRS; ++q) {
        const int n = c0 + q;
        sb[q] = w + (n / kSp24Panel % kPanels) * nsuper * SB;
        lane[q] = n % kSp24Panel;
      }
      colwise_micro<kColMV, kColNRS, DType::F32>(xt, sb, lane, nsuper, ct + c0 * kColMB, false);
      fmas += long(kColNRS) * kColMV * 2 * kSp24SuperGroups * nsuper;
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double sum = 0;
  for (int64_t i = 0; i < int64_t(kCols) * kColMB; ++i) sum += ct[i];
  g_sink = sum;
  free(w);
  free(xt);
  free(ct);
  return double(fmas) / s / 1e9;
}
}  // namespace
}  // namespace avx512
}  // namespace cg

int main() {
  printf("colwise_micro %d vectors x %d rows, %d-column slices: G FMA/s, one core\n", XMV, XNRS, XKC);
  printf("  codes 0b0100   %.2f\n", cg::avx512::g_fma_per_s(false));
  printf("  random codes   %.2f\n", cg::avx512::g_fma_per_s(true));
}
