// Encoder and decoder of the canonical 2:4 format (formats/sparse24.h). Values are
// moved as raw bits in their dtype, so prune/compress/to_dense are exact.
#include "formats/sparse24.h"

#include <cmath>
#include <cstring>

namespace cg {
namespace {

// |v| for ranking; a NaN ranks above everything, so pruning never silently drops one.
float magnitude(float v) { return std::isnan(v) ? INFINITY : std::fabs(v); }

// Writes group g of row n: the values at columns a < b of the group and their code.
template <class T>
void put_group(const T* row, int64_t g, int a, int b, T* vals_row, uint8_t* meta_row) {
  vals_row[2 * g] = row[4 * g + a];
  vals_row[2 * g + 1] = row[4 * g + b];
  const uint8_t code = uint8_t(a | (b << 2));
  uint8_t& byte = meta_row[g / 2];
  if (g % 2 == 0) byte = uint8_t((byte & 0xf0) | code);
  else byte = uint8_t((byte & 0x0f) | (code << 4));
}

template <class T>
void prune_t(const T* w, DType dt, int64_t N, int64_t K, T* values, uint8_t* meta) {
  const int64_t G = K / 4, mrow = sparse24_meta_row_bytes(K);
  std::memset(meta, 0, size_t(N * mrow));
  for (int64_t n = 0; n < N; ++n) {
    const T* row = w + n * K;
    for (int64_t g = 0; g < G; ++g) {
      float mag[4];
      for (int j = 0; j < 4; ++j) mag[j] = magnitude(load_as_f32(row, dt, 4 * g + j));
      // The two largest; on ties the lower column wins (strict > when scanning upwards).
      int first = 0;
      for (int j = 1; j < 4; ++j) if (mag[j] > mag[first]) first = j;
      int second = first == 0 ? 1 : 0;
      for (int j = 0; j < 4; ++j) if (j != first && mag[j] > mag[second]) second = j;
      const int a = first < second ? first : second, b = first < second ? second : first;
      put_group(row, g, a, b, values + n * (K / 2), meta + n * mrow);
    }
  }
}

template <class T>
int64_t compress_t(const T* w, DType dt, int64_t N, int64_t K, T* values, uint8_t* meta) {
  const int64_t G = K / 4, mrow = sparse24_meta_row_bytes(K);
  std::memset(meta, 0, size_t(N * mrow));
  for (int64_t n = 0; n < N; ++n) {
    const T* row = w + n * K;
    for (int64_t g = 0; g < G; ++g) {
      int kept[4], nk = 0;
      for (int j = 0; j < 4; ++j) {
        const float v = load_as_f32(row, dt, 4 * g + j);
        if (v != 0.0f || std::isnan(v)) kept[nk++] = j;  // -0.0 counts as zero
      }
      if (nk > 2) return n * G + g;
      // Fewer than two non-zeros: pad with the lowest free columns (which hold zeros).
      for (int j = 0; j < 4 && nk < 2; ++j) {
        bool used = false;
        for (int q = 0; q < nk; ++q) used = used || kept[q] == j;
        if (!used) kept[nk++] = j;
      }
      const int a = kept[0] < kept[1] ? kept[0] : kept[1], b = kept[0] < kept[1] ? kept[1] : kept[0];
      put_group(row, g, a, b, values + n * (K / 2), meta + n * mrow);
    }
  }
  return -1;
}

template <class T>
void to_dense_t(const T* values, const uint8_t* meta, int64_t N, int64_t K, T* w) {
  const int64_t G = K / 4, mrow = sparse24_meta_row_bytes(K);
  std::memset(w, 0, size_t(N * K) * sizeof(T));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t byte = meta[n * mrow + g / 2];
      const int code = g % 2 == 0 ? byte & 0xf : byte >> 4;
      w[n * K + 4 * g + (code & 3)] = values[n * (K / 2) + 2 * g];
      w[n * K + 4 * g + (code >> 2)] = values[n * (K / 2) + 2 * g + 1];
    }
  }
}

}  // namespace

void sparse24_prune(const void* w, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta) {
  if (dtype_size(dt) == 4) prune_t(static_cast<const float*>(w), dt, N, K, static_cast<float*>(values), meta);
  else prune_t(static_cast<const uint16_t*>(w), dt, N, K, static_cast<uint16_t*>(values), meta);
}

int64_t sparse24_compress(const void* w, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta) {
  if (dtype_size(dt) == 4) return compress_t(static_cast<const float*>(w), dt, N, K, static_cast<float*>(values), meta);
  return compress_t(static_cast<const uint16_t*>(w), dt, N, K, static_cast<uint16_t*>(values), meta);
}

void sparse24_to_dense(const void* values, const uint8_t* meta, DType dt, int64_t N, int64_t K, void* w) {
  if (dtype_size(dt) == 4) to_dense_t(static_cast<const float*>(values), meta, N, K, static_cast<float*>(w));
  else to_dense_t(static_cast<const uint16_t*>(values), meta, N, K, static_cast<uint16_t*>(w));
}

}  // namespace cg
