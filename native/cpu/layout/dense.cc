// Packing of a dense weight W [N, K] (row-major) into the CPU panel layout of kernels.h:
//   element (n, k) at ((n / 16) * K + k) * 16 + (n % 16), N padded to a multiple of 32 with zero rows.
// The values keep their dtype (16-bit types are moved as raw bits), so this is a pure permutation.
#include <cstdint>
#include <cstring>

#include "cpu/kernels.h"

namespace cg {
namespace {

template <class T>
void pack_t(const T* w, int64_t N, int64_t K, T* out) {
  const int64_t np = dense_padded_rows(N) / kDensePanel;
  for (int64_t p = 0; p < np; ++p) {
    T* dst = out + p * K * kDensePanel;
    const int64_t n0 = p * kDensePanel;
    const int64_t rows = N - n0 < kDensePanel ? (N - n0 > 0 ? N - n0 : 0) : kDensePanel;
    if (rows < kDensePanel) std::memset(dst, 0, sizeof(T) * size_t(K) * kDensePanel);
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = w + (n0 + r) * K;
      for (int64_t k = 0; k < K; ++k) dst[k * kDensePanel + r] = src[k];
    }
  }
}

template <class T>
void unpack_t(const T* packed, int64_t N, int64_t K, T* w) {
  for (int64_t n = 0; n < N; ++n) {
    const T* src = packed + (n / kDensePanel) * K * kDensePanel + (n % kDensePanel);
    T* dst = w + n * K;
    for (int64_t k = 0; k < K; ++k) dst[k] = src[k * kDensePanel];
  }
}

}  // namespace

void dense_pack(const void* w, DType dt, int64_t N, int64_t K, void* packed) {
  if (dtype_size(dt) == 4)
    pack_t(static_cast<const uint32_t*>(w), N, K, static_cast<uint32_t*>(packed));
  else
    pack_t(static_cast<const uint16_t*>(w), N, K, static_cast<uint16_t*>(packed));
}

void dense_unpack(const void* packed, DType dt, int64_t N, int64_t K, void* w) {
  if (dtype_size(dt) == 4)
    unpack_t(static_cast<const uint32_t*>(packed), N, K, static_cast<uint32_t*>(w));
  else
    unpack_t(static_cast<const uint16_t*>(packed), N, K, static_cast<uint16_t*>(w));
}

}  // namespace cg
