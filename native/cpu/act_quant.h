// Quantized activations, as cg.linear's `activations` option asks: x is quantized per row (or
// per row and K block), then handed to the kernels dequantized, as float32:
//   'fp8'  (e4m3): s = amax / 448 over the unit (1 when the unit is all zero), code =
//          encode(x / s) (round to nearest even, saturating), x' = decode(code) * s;
//   'int8': s = amax / 127 per row (1 when zero), q = clamp(round_half_even(x / s), -127, 127),
//          x' = q * s.
// Divisions and products in float32, as written. The kernels then see exactly the values the
// quantization represents (each rounded once to float32). One exception: 'fp8' on the
// AVX512-BF16 engine (quant_amx.cc) multiplies the e4m3 values decode(code) themselves and
// applies s to their sums (one scale per row: each output s * sum, rounded once; per K block:
// each block's sum times the weight's scale times s) instead of summing fround(decode * s)
// products (the same within the float32 accumulation bound; act-reference.ts (8)).
// A unit (a row for 'int8', a row or K block for 'fp8') that holds a NaN or an infinity becomes
// all NaN, so that row of y is NaN, identically on every ISA and kernel (the int8 kernels give
// it scale NaN and codes 0: a NaN is never cast to an integer).
#pragma once
#include <cstdint>

#include "cg/dtype.h"
#include "cpu/kernels.h"

namespace cg {

// x [M, K] (dtype xdt) -> out [M, K] float32. block: the K extent of one fp8 scale (K for one
// scale per row). Rows are spread over `threads` threads.
void quantize_activations(const void* x, DType xdt, int64_t M, int64_t K, ActQuant mode, int64_t block, int threads,
                          float* out);

}  // namespace cg
