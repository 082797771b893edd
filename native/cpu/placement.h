// The CPU placement of a weight of any format: how many bytes it takes, how it is made from the
// canonical format (the weight's identity, formats/), and how the canonical format and the dense
// matrix are read back from it. One switch per question, over cg::WeightFormat; the layouts
// themselves are documented in cpu/layout/ and cpu/kernels.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cg/weight.h"
#include "formats/canonical.h"

namespace cg {

size_t cpu_placement_bytes(const WeightDesc& d);
// Canonical -> the CPU layout, into `out` (cpu_placement_bytes(d) bytes; d.data is not read).
void cpu_place(const WeightDesc& d, const CanonicalParts& c, uint8_t* out);
// The CPU layout d.data -> canonical.
void cpu_canonical(const WeightDesc& d, const CanonicalParts& out);
// The CPU layout d.data -> the dense [N, K] matrix: in d.dtype for dense and 2:4 weights, in
// float32 (dequantized) for int4 and fp8.
void cpu_to_dense(const WeightDesc& d, void* out);

}  // namespace cg
