// The CPU kernels' one entry point per operation, and the per-ISA implementations behind it.
//
// Each ISA lives in its own translation units, compiled with that ISA's flags (binding.gyp builds
// them as separate static libraries). Rules for those files, so no AVX-512 code can leak into a
// baseline path through the linker's choice among duplicate inline functions:
//   - everything sits in namespace cg::<isa>, helpers in an anonymous namespace inside it;
//   - no STL containers or algorithms, no templates shared with other TUs except the
//     ISA-specific ones in cpu/simd.h (whose types differ per ISA) and the plain-C-like
//     helpers of common/dtype.h (only called from baseline code; kernels convert with intrinsics
//     or with their own static helpers).
#pragma once
#include <cstdint>
#include "../common/dtype.h"

namespace cg {

enum class Isa : int32_t { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// ---- Dense weights, CPU packed layout --------------------------------------------------------
// The weight W [N, K] (row-major, torch.nn.Linear.weight) is stored in panels of 16 output rows:
//   element (n, k) lives at index ((n / 16) * K + k) * 16 + (n % 16)
// with N padded up to a multiple of 32 by zero rows (the AVX-512 kernel reads two panels at once).
// One layout for every ISA, so a weight packed once serves the scalar, AVX2 and AVX-512 kernels.
constexpr int kDensePanel = 16;
constexpr int kDenseNAlign = 32;
inline int64_t dense_padded_rows(int64_t N) { return (N + kDenseNAlign - 1) / kDenseNAlign * kDenseNAlign; }
inline int64_t dense_packed_elems(int64_t N, int64_t K) { return dense_padded_rows(N) * K; }
void dense_pack(const void* w, DType dt, int64_t N, int64_t K, void* packed);
void dense_unpack(const void* packed, DType dt, int64_t N, int64_t K, void* w);

// ---- 2:4 sparse weights, canonical layout (documented in common/sparse24_format.h) -----------
// values: [N, K/2] in the weight dtype; meta: [N, sparse24_meta_row_bytes(K)] bytes.

// ---- One linear problem: y = x . W^T (+ bias) ------------------------------------------------
struct GemmProblem {
  const float* x = nullptr;     // [M, K] float32 row-major (the binding converts 16-bit inputs)
  int64_t M = 0, N = 0, K = 0;
  const float* bias = nullptr;  // [N] float32, or nullptr
  float* y = nullptr;           // [M, N] float32 row-major; every element is written, none is read first
  int threads = 1;              // how many threads may work on it (caller included)
};

void dense_linear(Isa isa, const GemmProblem& p, const void* wpacked, DType wdt);
void sparse24_linear(Isa isa, const GemmProblem& p, const void* values, DType wdt, const uint8_t* meta);

namespace scalar {
void dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
void sparse24_linear(const GemmProblem& p, const void* values, DType wdt, const uint8_t* meta);
}  // namespace scalar
namespace avx2 {
void dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
void sparse24_linear(const GemmProblem& p, const void* values, DType wdt, const uint8_t* meta);
}  // namespace avx2
namespace avx512 {
void dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
void sparse24_linear(const GemmProblem& p, const void* values, DType wdt, const uint8_t* meta);
}  // namespace avx512

}  // namespace cg
