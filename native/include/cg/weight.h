// One weight across the boundary: its format (the same names as lib/'s WeightFormat), its
// canonical parameters, and the buffer of the placement a backend runs it from. Every native
// entry point that takes a weight reads it with one reader (binding/weight_desc.h) into this
// struct; the kernels' dispatch (cpu/dispatch.cc) reads nothing else.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cg/dtype.h"
#include "cg/fp8.h"

namespace cg {

enum class WeightFormat : int32_t { Dense = 0, Sparse24 = 1, Int4 = 2, Fp8 = 3 };

// The names lib/ uses (WeightFormat in lib/weights/weight.ts); -1 for an unknown name.
static inline int weight_format_from_name(const char* s) {
  if (!std::strcmp(s, "dense")) return int(WeightFormat::Dense);
  if (!std::strcmp(s, "2:4")) return int(WeightFormat::Sparse24);
  if (!std::strcmp(s, "int4")) return int(WeightFormat::Int4);
  if (!std::strcmp(s, "fp8")) return int(WeightFormat::Fp8);
  return -1;
}

// dtype names as lib/ spells them (FloatDType); -1 for an unknown name.
static inline int dtype_from_name(const char* s) {
  if (!std::strcmp(s, "float32")) return int(DType::F32);
  if (!std::strcmp(s, "float16")) return int(DType::F16);
  if (!std::strcmp(s, "bfloat16")) return int(DType::BF16);
  return -1;
}

static inline int fp8_format_from_name(const char* s) {
  if (!std::strcmp(s, "e4m3")) return int(Fp8Format::E4M3);
  if (!std::strcmp(s, "e5m2")) return int(Fp8Format::E5M2);
  return -1;
}

struct WeightDesc {
  WeightFormat format = WeightFormat::Dense;
  int64_t N = 0, K = 0;
  DType dtype = DType::F32;        // Dense, Sparse24: the element type of the values
  uint8_t* data = nullptr;         // the placement's buffer (a backend's own layout)
  size_t bytes = 0;
  // Int4: columns per group (K for one group per row), zero points or not, the dtype the
  // scales are kept representable in, and GPTQ act-order: the placement's column c is the
  // canonical column perm[c] (nullptr: none).
  int64_t group = 0;
  bool symmetric = true;
  DType scale_dtype = DType::F32;
  const int32_t* perm = nullptr;
  // Fp8: the code format and the scale unit (bn x bk elements; tensor = N x K, channel = 1 x K).
  Fp8Format fp8_format = Fp8Format::E4M3;
  int64_t bn = 0, bk = 0;
};

}  // namespace cg
