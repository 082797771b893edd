// Canonical 2:4 (values, meta) <-> the CPU layout (cpu/layout/sparse24.h). Exact: values move as
// raw bits.
#include "cpu/layout/sparse24.h"

#include <cstring>

namespace cg {
namespace {

template <class T>
void pack_t(const T* values, const uint8_t* meta, int64_t N, int64_t K, uint8_t* packed) {
  const int es = int(sizeof(T));
  const int64_t S = sp24_supers(K), P = sp24_padded_rows(N) / kSp24Panel, G = K / 4;
  const int64_t SB = sp24_super_bytes(es), VB = sp24_value_bytes(es), mrow = sparse24_meta_row_bytes(K);
  std::memset(packed, 0, size_t(P * S * SB));
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t s = 0; s < S; ++s) {
      uint8_t* sb = packed + (p * S + s) * SB;
      T* vals = reinterpret_cast<T*>(sb);
      for (int j = 0; j < kSp24SuperGroups; ++j) {
        uint64_t word = 0;
        const int64_t g = s * kSp24SuperGroups + j;
        for (int l = 0; l < kSp24Panel; ++l) {
          const int64_t n = p * kSp24Panel + l;
          uint64_t code = 0x4;  // padding: columns 0 and 1, zero values
          if (n < N && g < G) {
            const uint8_t byte = meta[n * mrow + g / 2];
            code = g % 2 == 0 ? byte & 0xf : byte >> 4;
            vals[(j * 2 + 0) * kSp24Panel + l] = values[n * (K / 2) + 2 * g];
            vals[(j * 2 + 1) * kSp24Panel + l] = values[n * (K / 2) + 2 * g + 1];
          }
          word |= code << sp24_code_shift(l);
        }
        std::memcpy(sb + VB + j * 8, &word, 8);
      }
    }
  }
}

template <class T>
void unpack_t(const uint8_t* packed, int64_t N, int64_t K, T* values, uint8_t* meta) {
  const int es = int(sizeof(T));
  const int64_t S = sp24_supers(K), G = K / 4;
  const int64_t SB = sp24_super_bytes(es), VB = sp24_value_bytes(es), mrow = sparse24_meta_row_bytes(K);
  std::memset(meta, 0, size_t(N * mrow));
  for (int64_t n = 0; n < N; ++n) {
    const int64_t p = n / kSp24Panel;
    const int l = int(n % kSp24Panel);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t s = g / kSp24SuperGroups;
      const int j = int(g % kSp24SuperGroups);
      const uint8_t* sb = packed + (p * S + s) * SB;
      const T* vals = reinterpret_cast<const T*>(sb);
      uint64_t word;
      std::memcpy(&word, sb + VB + j * 8, 8);
      const uint8_t code = uint8_t((word >> sp24_code_shift(l)) & 0xf);
      values[n * (K / 2) + 2 * g] = vals[(j * 2 + 0) * kSp24Panel + l];
      values[n * (K / 2) + 2 * g + 1] = vals[(j * 2 + 1) * kSp24Panel + l];
      meta[n * mrow + g / 2] |= uint8_t(g % 2 == 0 ? code : code << 4);
    }
  }
}

}  // namespace

void sparse24_pack(const void* values, const uint8_t* meta, DType dt, int64_t N, int64_t K, void* packed) {
  if (dtype_size(dt) == 4) pack_t(static_cast<const uint32_t*>(values), meta, N, K, static_cast<uint8_t*>(packed));
  else pack_t(static_cast<const uint16_t*>(values), meta, N, K, static_cast<uint8_t*>(packed));
}

void sparse24_unpack(const void* packed, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta) {
  if (dtype_size(dt) == 4) unpack_t(static_cast<const uint8_t*>(packed), N, K, static_cast<uint32_t*>(values), meta);
  else unpack_t(static_cast<const uint8_t*>(packed), N, K, static_cast<uint16_t*>(values), meta);
}

}  // namespace cg
