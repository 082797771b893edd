// What every vectorised GEMM kernel shares: the register tile's epilogue (bias, float32
// accumulation across K blocks, rounding to the output dtype) and the packing of activation
// rows into the layout the micro-kernels broadcast from. Included inside
// `namespace cg::<isa> { namespace { ... } }` after simd_<isa>.h and convert_impl.h.

// Where a register tile's results go. `c` is a float32 [.., ldc] array (y itself when y is
// float32): the first K block writes it (adding the bias), later ones add to it. When the
// whole K range is one block and y is 16-bit, `store_y` skips `c` and rounds straight into y.
struct TileOut {
  float* c = nullptr;
  int64_t ldc = 0;
  bool accumulate = false;  // add to c instead of overwriting it
  const float* bias = nullptr;  // applied by the first block only
  bool store_y = false;     // write y (dtype ydt, row stride ldy) instead of c
  void* y = nullptr;
  DType ydt = DType::F32;
  int64_t ldy = 0;
  // c holds rows from crow0 and columns from ccol0 of the output (0, 0 when c is y itself).
  int64_t crow0 = 0, ccol0 = 0;
  // Quantized activations: row m's results are multiplied by row_scale[m] (before the bias).
  const float* row_scale = nullptr;
  // The block that completes the K loop: the low-rank terms (if any) are added by this store.
  bool final = true;
  const LoraEpilogue* lora = nullptr;
};

// The output of a kernel that sums the whole K range itself: straight into y (float32 y as
// its c; 16-bit y rounded by the store), with the bias and the problem's low-rank terms.
inline TileOut whole_k_out(const GemmProblem& p) {
  TileOut o;
  o.lora = p.lora;
  if (p.ydt == DType::F32) {
    o.c = static_cast<float*>(p.y);
    o.ldc = p.N;
  } else {
    o.store_y = true;
    o.y = p.y;
    o.ydt = p.ydt;
    o.ldy = p.N;
  }
  o.bias = p.bias;
  return o;
}

// The output of one block of K columns, for a kernel that sums K in blocks: the first block adds
// the bias, the last the low-rank terms, each later block adds into what the earlier ones wrote.
// float32 y is summed into in place. 16-bit y: into cbuf when there are several blocks (float32,
// ldc apart, rows from crow0 and columns from ccol0 of the output; the caller converts it to y at
// the end), else rounded by the store (cbuf nullptr).
inline TileOut k_block_out(const GemmProblem& p, bool first, bool last, float* cbuf, int64_t ldc, int64_t crow0, int64_t ccol0) {
  TileOut o = whole_k_out(p);
  o.accumulate = !first;
  o.final = last;
  if (cbuf) {
    o.store_y = false;
    o.y = nullptr;
    o.c = cbuf;
    o.ldc = ldc;
    o.crow0 = crow0;
    o.ccol0 = ccol0;
  }
  return o;
}

// v[i][j] += the low-rank terms of rows m0.., columns n0.. (LoraEpilogue). With one adapter for
// every row, each B vector is loaded once for all rows of the tile; with an adapter per row, each
// row walks its own adapter's B.
template <int MR, int NV>
inline void lora_add(V (&v)[MR][NV], const LoraEpilogue& e, int64_t m0, int64_t n0) {
  if (!e.row_adapter) {
    const int r = e.rank[0];
    const float* b = e.b[0] + (n0 / 16) * r * 16 + n0 % 16;
    for (int j = 0; j < r; ++j) {
      V bv[NV];
#pragma GCC unroll 8
      for (int q = 0; q < NV; ++q) bv[q] = vload(b + ((q * L) / 16) * r * 16 + j * 16 + (q * L) % 16);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const V tv = vbcast(e.t + (m0 + i) * e.tstride + j);
#pragma GCC unroll 8
        for (int q = 0; q < NV; ++q) v[i][q] = vfma(tv, bv[q], v[i][q]);
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const int a = e.row_adapter[m0 + i];
    if (a < 0) continue;
    const int r = e.rank[a];
    const float* b = e.b[a] + (n0 / 16) * r * 16 + n0 % 16;
    const float* t = e.t + (m0 + i) * e.tstride;
    for (int j = 0; j < r; ++j) {
      const V tv = vbcast(t + j);
#pragma GCC unroll 8
      for (int q = 0; q < NV; ++q) v[i][q] = vfma(tv, vload(b + ((q * L) / 16) * r * 16 + j * 16 + (q * L) % 16), v[i][q]);
    }
  }
}

// Stores rows m0..m0+MR-1, columns n0..n0+ncols-1 (ncols <= NV*L) of a register tile.
// Always inlined, as its caller's loops are: an out-of-line call takes the accumulators' address,
// and GCC then keeps them in memory through the whole K loop (a store per FMA; seen with the
// INT4 / FP8 instantiations, 2-3x slower).
template <int MR, int NV>
__attribute__((always_inline)) inline void store_tile_plain(V (&acc)[MR][NV], const TileOut& o, int64_t m0, int64_t n0, int ncols);

template <int MR, int NV>
__attribute__((always_inline)) inline void store_tile(V (&acc)[MR][NV], const TileOut& o, int64_t m0, int64_t n0, int ncols) {
  if (o.final && o.lora) {
    // The low-rank terms come after the row scale and the bias: fold those into acc first.
    V b0[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int nj = ncols - j * L;
      b0[j] = (o.accumulate || !o.bias || nj <= 0) ? vzero() : (nj >= L ? vload(o.bias + n0 + j * L) : vload_n(o.bias + n0 + j * L, nj));
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = o.row_scale ? vfma(acc[i][j], vbcast(o.row_scale + m0 + i), b0[j]) : vadd(acc[i][j], b0[j]);
    lora_add<MR, NV>(acc, *o.lora, m0, n0);
    TileOut plain = o;
    plain.lora = nullptr;
    plain.row_scale = nullptr;
    plain.bias = nullptr;
    store_tile_plain<MR, NV>(acc, plain, m0, n0, ncols);
    return;
  }
  store_tile_plain<MR, NV>(acc, o, m0, n0, ncols);
}

// store_tile without the low-rank terms.
template <int MR, int NV>
__attribute__((always_inline)) inline void store_tile_plain(V (&acc)[MR][NV], const TileOut& o, int64_t m0, int64_t n0, int ncols) {
  V b[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const int nj = ncols - j * L;
    b[j] = (o.accumulate || !o.bias || nj <= 0) ? vzero() : (nj >= L ? vload(o.bias + n0 + j * L) : vload_n(o.bias + n0 + j * L, nj));
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int nj = ncols - j * L;
      if (nj <= 0) break;
      const int n = nj >= L ? L : nj;
      V v = o.row_scale ? vfma(acc[i][j], vbcast(o.row_scale + m0 + i), b[j]) : vadd(acc[i][j], b[j]);
      if (o.store_y) {
        store_any_n(o.y, o.ydt, (m0 + i) * o.ldy + n0 + j * L, v, n);
      } else {
        float* c = o.c + (m0 + i - o.crow0) * o.ldc + (n0 - o.ccol0) + j * L;
        if (o.accumulate) v = vadd(v, n == L ? vload(c) : vload_n(c, n));
        if (n == L) vstore(c, v);
        else vstore_n(c, v, n);
      }
    }
  }
}

// Rows [r0, r0+rows) of x, columns [k0, k0+kl), as float32 in the micro-kernels' layout:
// column-major within the block, dst[k * rows + i] = x[r0 + i][k0 + k], so that the kernel
// broadcasts consecutive floats. 16-bit activations are converted here, once.
inline void pack_rows_kmajor(const void* x, DType xdt, int64_t ldx, int64_t r0, int rows, int64_t k0, int64_t kl, float* dst) {
  alignas(64) float tmp[32][L];
  for (int64_t k = 0; k < kl; k += L) {
    const int n = kl - k >= L ? L : int(kl - k);
    for (int i0 = 0; i0 < rows; i0 += 32) {
      const int ib = rows - i0 < 32 ? rows - i0 : 32;
      for (int i = 0; i < ib; ++i) vstore(tmp[i], load_any_n(x, xdt, (r0 + i0 + i) * ldx + k0 + k, n));
      for (int kk = 0; kk < n; ++kk) {
        float* d = dst + (k + kk) * rows + i0;
        for (int i = 0; i < ib; ++i) d[i] = tmp[i][kk];
      }
    }
  }
}

constexpr int kMaxRowBlocks = 1024;

// Splits `rows` into the fewest blocks of at most `mr` rows, of near-equal sizes (so M = 15
// with mr = 14 runs as 8 + 7, not 14 + 1). Returns the number of blocks; starts[b]..starts[b+1].
inline int split_rows(int64_t rows, int mr, int64_t* starts, int max_blocks) {
  int nb = int((rows + mr - 1) / mr);
  if (nb > max_blocks) nb = max_blocks;
  for (int b = 0; b <= nb; ++b) starts[b] = rows * b / nb;
  return nb;
}

// Converts a float32 [rows, cols] block (row stride ldc) into y (dtype ydt, row stride ldy).
// y_off is the element index in y of the block's first element.
inline void convert_block(const float* c, int64_t ldc, void* y, DType ydt, int64_t y_off, int64_t ldy, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t yo = y_off + i * ldy;
    int64_t j = 0;
    for (; j + L <= cols; j += L) store_any_n(y, ydt, yo + j, vload(c + i * ldc + j), L);
    if (j < cols) store_any_n(y, ydt, yo + j, vload_n(c + i * ldc + j, int(cols - j)), int(cols - j));
  }
}
