// The canonical 2:4 sparse format: the identity of a Sparse24Weight, shared by every backend
// (each placement re-lays it out: cpu/layout/sparse24.h, the GPU upload).
//
// W [N, K] with K % 4 == 0 keeps at most 2 non-zeros in every group of 4 consecutive elements
// along K (group g of row n = columns 4g..4g+3). It is stored as:
//   values [N, K/2]  in the weight dtype: for each group, its two kept elements in increasing
//                    column order (a group with fewer than 2 non-zeros still stores 2 values,
//                    padding with zeros at the lowest free columns);
//   meta   [N, ceil(K/8)] bytes: one 4-bit code per group, two groups per byte, the even group
//                    in the low nibble. In each nibble bits 0-1 hold the column (0..3 within the
//                    group) of the first kept value and bits 2-3 that of the second; the first is
//                    always below the second. When K/4 is odd the last high nibble is 0.
// So for row n, group g: meta byte n*ceil(K/8) + g/2, nibble g%2; values n*(K/2) + 2g and +2g+1.
#pragma once
#include <cstdint>
#include "cg/dtype.h"

namespace cg {

static inline int64_t sparse24_meta_row_bytes(int64_t K) { return (K + 7) / 8; }

// Magnitude pruning: keeps the 2 largest |w| of every group (on ties, the lower column).
void sparse24_prune(const void* w, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta);

// Accepts a matrix that already is 2:4. Returns -1 if it is, else the flat index of the first
// offending group (row * (K/4) + group), and writes nothing meaningful in that case.
int64_t sparse24_compress(const void* w, DType dt, int64_t N, int64_t K, void* values, uint8_t* meta);

// Expands to dense [N, K] in the same dtype (zeros at dropped positions).
void sparse24_to_dense(const void* values, const uint8_t* meta, DType dt, int64_t N, int64_t K, void* w);

}  // namespace cg
