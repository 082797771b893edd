// The one reader of a weight descriptor (lib/native/descriptor.ts): every entry point that takes
// a weight reads it here, once, into a cg::WeightDesc (cg/weight.h), fully checked. The
// descriptor is
//   { format: 'dense'|'2:4'|'int4'|'fp8', N, K, dtype,
//     group, symmetric, scaleDtype, perm: Int32Array|null   (int4)
//     fp8Format, bn, bk                                      (fp8)
//     data: ArrayBuffer }                                    (the placement's buffer)
// The placement's expected size comes from the backend that owns the layout (cpu/layout/...).
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

#include "binding/args.h"
#include "cg/weight.h"

namespace cg {
namespace binding {

// What a read weight owns: the descriptor, a validated copy of the INT4 permutation, and a
// reference that keeps the placement's buffer alive while an async call runs.
struct WeightArg {
  WeightDesc desc;
  std::vector<int32_t> perm;
  Napi::ObjectReference keep;
};

// The bytes a backend's placement of `d` holds.
using PlacementBytes = size_t (*)(const WeightDesc& d);

// Reads the descriptor's format and canonical parameters (everything but data).
void read_weight_params(const Napi::Object& o, WeightArg& w);
// read_weight_params, then the placement's buffer, checked against placement_bytes(desc).
void read_weight(const Napi::Object& o, PlacementBytes placement_bytes, WeightArg& w);

}  // namespace binding
}  // namespace cg
