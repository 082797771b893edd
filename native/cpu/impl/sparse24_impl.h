// The 2:4 sparse linear on the CPU layout of cpu/layout/sparse24.h (panels of 16 weight
// rows, superblocks of 8 groups), two kernels:
//
// Panel kernel (up to a few dozen rows of x; memory-bound at M = 1). Vectors run along N, one
// lane per weight row, as in the dense kernel; for group g a lane needs x[m][4g + a] and
// x[m][4g + b] for its own columns a < b. The group's 4 x values are broadcast to every 128-bit
// lane (bcast4) and each lane picks its two with an in-lane permute (select4, vpermilps) driven
// by the lane's code, read from the group's 64-bit code word with one shift (code_lanes). Two
// permutes and two FMAs replace the dense kernel's four FMAs, and the weight bytes halve.
//
// M-vectorised kernel (many rows of x; compute-bound). Vectors run along M: x is packed
// transposed, XT[k][0..MB) (MB = kColMV*L rows of x), and every kept weight W[n][k] is broadcast
// and multiplied by the vector XT[k], whose address comes from the code, so the selection costs
// no arithmetic, only the load the FMA folds in. Register tile: kColNRS weight rows x kColMV
// vectors. A kColKC-column slice of XT (MB x KC floats, 32 KiB) stays in L1 while every weight
// row of a chunk of kColNC columns of y passes over it; the chunk's float32 results (transposed,
// [n][m]) stay in L2 until its K loop ends, then go to y with the bias, rounded once.
//
// Included inside `namespace cg::<isa> { namespace { ... } }` after gemm_tile_impl.h, with
//   kPermMR                   rows of x per panel-kernel register tile,
//   kPermNV                   vectors per panel-kernel tile (kPermNV * L columns),
//   kPanelKC                  columns of K per panel-kernel block (several row blocks only),
//   kColMV, kColNRS, kColKC   the M-vectorised kernel's register tile and L1 slice,
//   kSparseColwiseFromM       from this many rows of x on, the M-vectorised kernel runs.

constexpr int kVecsPerSpPanel = kSp24Panel / L;
static_assert((kPermNV * L) % kSp24Panel == 0, "a tile is whole panels");
static_assert(kSp24NAlign % (kPermNV * L) == 0, "padded rows cover every tile");

template <DType WT> constexpr int dtype_bytes() { return WT == DType::F32 ? 4 : 2; }

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

// ---- panel kernel --------------------------------------------------------------------------

// acc[r][v] += sum over the tile's groups: for lanes of vector v (rows n0 + v*L + lane),
//   x[r][4g + a] * W[n][4g + a] + x[r][4g + b] * W[n][4g + b].
//   xp: the row block's x packed [group][R][4] (float32, zero past K)
//   w:  the tile's first panel at superblock 0; panels are `pstride` bytes apart
//   pf: where to prefetch into L2 as it goes (pf.pf nullptr: nowhere): pf.lines lines per
//       superblock s from pf.pf + s * pf.lines * 64, in each of the tile's panels (pstride apart)
struct PanelPrefetch {
  const char* pf = nullptr;
  int64_t lines = 0;
};

template <int R, DType WT>
inline void panel_tile(const float* __restrict xp, const uint8_t* __restrict w, int64_t pstride, int64_t S,
                      V (&acc)[R][kPermNV], const PanelPrefetch& pf) {
  constexpr int es = dtype_bytes<WT>();
  constexpr int64_t VB = int64_t(kSp24SuperGroups) * 2 * kSp24Panel * es;
  constexpr int64_t SB = VB + kSp24SuperGroups * 8;
  for (int64_t s = 0; s < S; ++s) {
    if (pf.pf) {
      for (int q = 0; q < kPermNV / kVecsPerSpPanel; ++q)
        for (int64_t l = 0; l < pf.lines; ++l) __builtin_prefetch(pf.pf + q * pstride + (s * pf.lines + l) * 64, 0, 2);
    }
    const uint8_t* sb = w + s * SB;
    for (int j = 0; j < kSp24SuperGroups; ++j) {
      V va[kPermNV], vb[kPermNV];
      VI ia[kPermNV], ib[kPermNV];
#pragma GCC unroll 4
      for (int v = 0; v < kPermNV; ++v) {
        const uint8_t* panel = sb + (v / kVecsPerSpPanel) * pstride;
        const int half = v % kVecsPerSpPanel;
        va[v] = load_weight<WT>(panel, (2 * j) * kSp24Panel + half * L);
        vb[v] = load_weight<WT>(panel, (2 * j + 1) * kSp24Panel + half * L);
        ia[v] = code_lanes(load_u64(panel + VB + 8 * j), half);
        ib[v] = code_hi(ia[v]);
      }
      const float* xg = xp + (s * kSp24SuperGroups + j) * R * 4;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V x4 = bcast4(xg + 4 * r);
#pragma GCC unroll 4
        for (int v = 0; v < kPermNV; ++v) {
          acc[r][v] = vfma(select4(x4, ia[v]), va[v], acc[r][v]);
          acc[r][v] = vfma(select4(x4, ib[v]), vb[v], acc[r][v]);
        }
      }
    }
  }
}

// Never inlined, as run_tile (gemm_driver_impl.h): inlined into panel_task, GCC spilled
// accumulators of the larger R to the stack inside the K loop.
template <int R, DType WT>
__attribute__((noinline)) void panel_run(const float* xp, const uint8_t* w, int64_t pstride, int64_t S, const TileOut& o, int64_t m0, int64_t n0,
                                         int ncols, const PanelPrefetch& pf) {
  V acc[R][kPermNV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kPermNV; ++v) acc[r][v] = vzero();
  panel_tile<R, WT>(xp, w, pstride, S, acc, pf);
  store_tile<R, kPermNV>(acc, o, m0, n0, ncols);
}

template <DType WT, int R = kPermMR>
inline void panel_rows(int rows, const float* xp, const uint8_t* w, int64_t pstride, int64_t S, const TileOut& o, int64_t m0,
                      int64_t n0, int ncols, const PanelPrefetch& pf) {
  if constexpr (R == 1) {
    panel_run<1, WT>(xp, w, pstride, S, o, m0, n0, ncols, pf);
  } else {
    if (rows == R) panel_run<R, WT>(xp, w, pstride, S, o, m0, n0, ncols, pf);
    else panel_rows<WT, R - 1>(rows, xp, w, pstride, S, o, m0, n0, ncols, pf);
  }
}

struct PermCtx {
  const GemmProblem* p;
  const uint8_t* w;
  const float* xp;        // every row block's x, packed
  const int64_t* starts;  // row blocks
  int nb;
  int64_t ntiles;
  int64_t kcs;            // superblocks of K per block (every superblock: one block)
  bool failed;            // an allocation failed in some task
};

// Per thread: a range of column tiles. For each block of kcs superblocks of K, every tile, every
// row block: the register tile sums that block and adds it to the output (float32 y, or a
// float32 copy of the thread's columns for 16-bit y, converted at the end). With several row
// blocks x is read once per tile and block, so the blocks keep x's part (all rows, kcs * 32
// columns) in L2 across the tiles; summed over the whole K at once, x (2.8 MiB for M = 64 and
// K = 11008) came from L3 again for every tile.
template <DType WT>
void panel_task(void* vctx, int t, int nt) {
  auto& c = *static_cast<PermCtx*>(vctx);
  const GemmProblem& p = *c.p;
  constexpr int TC = kPermNV * L;
  const int64_t S = sp24_supers(p.K), G = S * kSp24SuperGroups;
  const int64_t SB = sp24_super_bytes(dtype_bytes<WT>());
  const int64_t pstride = S * SB;
  const int64_t t0 = c.ntiles * t / nt, t1 = c.ntiles * (t + 1) / nt;
  if (t0 >= t1) return;
  const int64_t col0 = t0 * TC, col1 = t1 * TC < p.N ? t1 * TC : p.N;
  const bool single_k = c.kcs >= S;
  const bool need_c = p.ydt != DType::F32 && !single_k;
  float* cbuf = need_c ? static_cast<float*>(thread_scratch(1, size_t(p.M) * size_t(col1 - col0) * sizeof(float))) : nullptr;
  if (need_c && !cbuf) {
    __atomic_store_n(&c.failed, true, __ATOMIC_RELAXED);
    return;
  }
  for (int64_t s0 = 0; s0 < S; s0 += c.kcs) {
    const int64_t sl = S - s0 < c.kcs ? S - s0 : c.kcs;
    const TileOut o = k_block_out(p, s0 == 0, s0 + sl >= S, cbuf, col1 - col0, 0, col0);
    // With several row blocks, the tile's weights are read from memory by the first and from L2
    // by the others; the next tile's (or the next K block's first tile's) are prefetched into L2
    // meanwhile, a part during each row block, so that no row block waits on memory (as the
    // dense driver does; same-process A/B on Zen 5, 2 cores, float32: M = 16 1.10-1.15x,
    // M = 32 1.05x, M = 64-100 1.015x faster).
    for (int64_t tile = t0; tile < t1; ++tile) {
      const int64_t n0 = tile * TC;
      const int ncols = p.N - n0 < TC ? int(p.N - n0) : TC;
      const uint8_t* w = c.w + (n0 / kSp24Panel) * pstride + s0 * SB;
      int64_t next = tile + 1, ns0 = s0;
      if (next >= t1) {
        next = t0;
        ns0 = s0 + c.kcs;
      }
      const bool fetch = c.nb >= 2 && ns0 < S;
      const int64_t nsl = S - ns0 < c.kcs ? S - ns0 : c.kcs;
      const int64_t lines = (nsl * SB + 63) / 64;  // of one panel's next block
      for (int b = 0; b < c.nb; ++b) {
        PanelPrefetch pf;
        if (fetch) {
          const int64_t l0 = lines * b / c.nb, l1 = lines * (b + 1) / c.nb;
          pf.pf = reinterpret_cast<const char*>(c.w + (next * TC / kSp24Panel) * pstride + ns0 * SB) + l0 * 64;
          pf.lines = (l1 - l0 + sl - 1) / sl;
        }
        const int64_t r0 = c.starts[b];
        const int rows = int(c.starts[b + 1] - r0);
        panel_rows<WT>(rows, c.xp + r0 * G * 4 + s0 * kSp24SuperGroups * rows * 4, w, pstride, sl, o, r0, n0, ncols, pf);
      }
    }
  }
  if (need_c) convert_block(cbuf, col1 - col0, p.y, p.ydt, col0, p.N, p.M, col1 - col0);
}

template <DType WT>
bool sparse24_panel(const GemmProblem& p, const uint8_t* w) {
  const int64_t S = sp24_supers(p.K), G = S * kSp24SuperGroups, Kg = p.K / 4;
  int64_t starts[kMaxRowBlocks + 1];
  const int nb = split_rows(p.M, kPermMR, starts, kMaxRowBlocks);  // M <= kPermMR * kMaxRowBlocks here
  float* xp = static_cast<float*>(thread_scratch(2, size_t(p.M * G * 4) * sizeof(float)));
  if (!xp) return false;
  // x packed per row block as [group][row][4]: the kernel reads one 16-byte group of one row at
  // a time, and these come in order. Groups past K are zero.
  alignas(64) float row[L];
  for (int b = 0; b < nb; ++b) {
    const int64_t r0 = starts[b];
    const int R = int(starts[b + 1] - r0);
    float* dst = xp + r0 * G * 4;
    for (int r = 0; r < R; ++r) {
      const int64_t base = (r0 + r) * p.K;
      for (int64_t k = 0; k < p.K; k += L) {
        const int n = p.K - k < L ? int(p.K - k) : L;
        vstore(row, load_any_n(p.x, p.xdt, base + k, n));
        for (int q = 0; q < n; q += 4) {
          const int64_t g = (k + q) / 4;
          float* d = dst + (g * R + r) * 4;
          d[0] = row[q]; d[1] = row[q + 1]; d[2] = row[q + 2]; d[3] = row[q + 3];
        }
      }
      for (int64_t g = Kg; g < G; ++g) {
        float* d = dst + (g * R + r) * 4;
        d[0] = d[1] = d[2] = d[3] = 0.0f;
      }
    }
  }
  constexpr int TC = kPermNV * L;
  // K blocks only where x has several row blocks (one block of up to kPermMR rows is small).
  const Tuning& tn = tuning();
  int64_t kcs = nb >= 2 ? kPanelKC / kSp24SuperCols : S;
  if (tn.kc > 0) kcs = (tn.kc + kSp24SuperCols - 1) / kSp24SuperCols;
  PermCtx c{&p, w, xp, starts, nb, (p.N + TC - 1) / TC, kcs, false};
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = c.ntiles < threads ? int(c.ntiles) : threads;
  parallel_for(ntasks, threads, panel_task<WT>, &c);
  return !c.failed;
}

// ---- M-vectorised kernel -------------------------------------------------------------------

constexpr int kColMB = kColMV * L;   // rows of x per block (the XT row stride, in floats)
#ifndef CG_COL_NC
#define CG_COL_NC 256
#endif
constexpr int kColNC = CG_COL_NC;           // columns of y per chunk (float32 results kept in L2)
constexpr int64_t kColKS = 16384;     // columns of K packed at once (XT scratch = MB x KS floats)
static_assert(kColKC % kSp24SuperCols == 0 && kColKS % kColKC == 0, "K slices are whole superblocks");
// colwise_micro's register tile must unroll fully (its pragmas say 4 rows and 8 vectors): a
// loop left rolled keeps the accumulators in memory (scripts/microbench/sparse24-colwise.cc,
// Zen 5: a 4 x 6 tile ran 1.7 G FMA/s rolled, 3.1 unrolled).
static_assert(kColNRS <= 4 && kColMV <= 8, "colwise_micro's unroll pragmas cover the register tile");

// One kept weight, widened to float32 and broadcast.
template <DType WT> inline V bcast_weight(const uint8_t* p);
template <> inline V bcast_weight<DType::F32>(const uint8_t* p) { return vbcast(reinterpret_cast<const float*>(p)); }
template <> inline V bcast_weight<DType::F16>(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return vload_f16_bcast(h);
}
template <> inline V bcast_weight<DType::BF16>(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  const uint32_t u = uint32_t(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return vset1(f);
}

// acc[c][v] (+)= sum over the slice's groups of W[row c][k] * XT[k][v*L .. v*L+L).
//   xt:     XT at the slice's first column (row stride kColMB floats)
//   sb[c]:  row c's panel at the slice's first superblock; lane[c] = row c % 16
//   ct:     the chunk's float32 results, row c at ct + c * kColMB (read back unless `first`)
template <int MV, int NRS, DType WT>
inline void colwise_micro(const float* __restrict xt, const uint8_t* const (&sb)[kColNRS], const int (&lane)[kColNRS],
                          int nsuper, float* __restrict ct, bool first) {
  constexpr int es = dtype_bytes<WT>();
  constexpr int64_t VB = int64_t(kSp24SuperGroups) * 2 * kSp24Panel * es;
  constexpr int64_t SB = VB + kSp24SuperGroups * 8;
  constexpr int64_t kRowBytes = int64_t(kColMB) * sizeof(float);
  V acc[NRS][MV];
#pragma GCC unroll 4
  for (int c = 0; c < NRS; ++c)
#pragma GCC unroll 8
    for (int v = 0; v < MV; ++v) acc[c][v] = first ? vzero() : vload(ct + c * kColMB + v * L);
  int shift[NRS];
  const uint8_t* wv[NRS];
#pragma GCC unroll 4
  for (int c = 0; c < NRS; ++c) {
    shift[c] = sp24_code_shift(lane[c]);
    wv[c] = sb[c] + lane[c] * es;
  }
  const char* xb = reinterpret_cast<const char*>(xt);
  for (int s = 0; s < nsuper; ++s) {
#if defined(__AVX512F__)
    // Each row's 8 codes of the superblock in one register (byte j: group j's code), taken
    // from the 8 code words before the groups' FMAs, so that the FMAs' addresses wait on no
    // load (tune-ab on Zen 5, float32, 4096x11008: M = 128 and 256 1.04-1.08x). The AVX2 build
    // keeps a load per group: there this measured 0.93-0.97x.
    uint64_t codes[NRS];
#pragma GCC unroll 4
    for (int c = 0; c < NRS; ++c) codes[c] = lane_codes8(wv[c] - lane[c] * es + VB, shift[c]);
#endif
    for (int j = 0; j < kSp24SuperGroups; ++j) {
      uint32_t code[NRS];
#pragma GCC unroll 4
      for (int c = 0; c < NRS; ++c) {
#if defined(__AVX512F__)
        code[c] = uint32_t(codes[c] >> (8 * j));
#else
        code[c] = uint32_t(load_u64(wv[c] - lane[c] * es + VB + 8 * j) >> shift[c]);
#endif
      }
#pragma GCC unroll 2
      for (int t = 0; t < 2; ++t) {
#pragma GCC unroll 4
        for (int c = 0; c < NRS; ++c) {
          const V w = bcast_weight<WT>(wv[c] + (2 * j + t) * kSp24Panel * es);
          const int64_t off = int64_t((code[c] >> (2 * t)) & 3u) * kRowBytes;
#pragma GCC unroll 8
          for (int v = 0; v < MV; ++v)
            acc[c][v] = vfma(w, vload(reinterpret_cast<const float*>(xb + off) + v * L), acc[c][v]);
        }
      }
      xb += 4 * kRowBytes;
    }
#pragma GCC unroll 4
    for (int c = 0; c < NRS; ++c) wv[c] += SB;
  }
#pragma GCC unroll 4
  for (int c = 0; c < NRS; ++c)
#pragma GCC unroll 8
    for (int v = 0; v < MV; ++v) vstore(ct + c * kColMB + v * L, acc[c][v]);
}

template <int MV, DType WT, int NRS = kColNRS>
inline void colwise_rows(int nrs, const float* xt, const uint8_t* const (&sb)[kColNRS], const int (&lane)[kColNRS], int nsuper,
                         float* ct, bool first) {
  if constexpr (NRS == 1) {
    colwise_micro<MV, 1, WT>(xt, sb, lane, nsuper, ct, first);
  } else {
    if (nrs == NRS) colwise_micro<MV, NRS, WT>(xt, sb, lane, nsuper, ct, first);
    else colwise_rows<MV, WT, NRS - 1>(nrs, xt, sb, lane, nsuper, ct, first);
  }
}

template <DType WT, int MV = kColMV>
inline void colwise_dispatch(int mv, int nrs, const float* xt, const uint8_t* const (&sb)[kColNRS], const int (&lane)[kColNRS],
                             int nsuper, float* ct, bool first) {
  if constexpr (MV == 1) {
    colwise_rows<1, WT>(nrs, xt, sb, lane, nsuper, ct, first);
  } else {
    if (mv == MV) colwise_rows<MV, WT>(nrs, xt, sb, lane, nsuper, ct, first);
    else colwise_dispatch<WT, MV - 1>(mv, nrs, xt, sb, lane, nsuper, ct, first);
  }
}

// XT[k][i] = x[m0 + i][k0 + k] for i < rows and k0 + k < K; 0 for rows <= i < mvl and for the
// padding columns up to kl_pad. Column blocks of L outermost, so the L rows of XT being written
// (L x 512 bytes) stay in L1 while every row of x passes by.
inline void pack_xt(const GemmProblem& p, int64_t m0, int rows, int mvl, int64_t k0, int64_t kl, int64_t kl_pad, float* xt) {
  alignas(64) float tmp[L];
  for (int64_t k = 0; k < kl; k += L) {
    const int n = kl - k < L ? int(kl - k) : L;
    for (int i = 0; i < rows; ++i) {
      vstore(tmp, load_any_n(p.x, p.xdt, (m0 + i) * p.K + k0 + k, n));
      float* d = xt + k * kColMB + i;
      for (int j = 0; j < n; ++j) d[j * kColMB] = tmp[j];
    }
    for (int j = 0; j < n; ++j)
      for (int i = rows; i < mvl; ++i) xt[(k + j) * kColMB + i] = 0.0f;
  }
  for (int64_t k = kl; k < kl_pad; ++k)
    for (int i = 0; i < mvl; ++i) xt[k * kColMB + i] = 0.0f;
}

struct ColwiseCtx {
  const GemmProblem* p;
  const uint8_t* w;
  bool failed;
};

template <DType WT>
void colwise_task(void* vctx, int t, int nt) {
  auto& c = *static_cast<ColwiseCtx*>(vctx);
  const GemmProblem& p = *c.p;
  const int64_t M = p.M, N = p.N, K = p.K;
  const int64_t S = sp24_supers(K), Kp = S * kSp24SuperCols;
  const int64_t SB = sp24_super_bytes(dtype_bytes<WT>()), pstride = S * SB;
  // Thread ranges start at multiples of 16 columns, so every chunk starts on a panel (the
  // low-rank epilogue reads B panel by panel).
  const int64_t nb = (N * t / nt) / 16 * 16, ne = t + 1 == nt ? N : (N * (t + 1) / nt) / 16 * 16;
  if (nb >= ne) return;
  const int64_t ks_max = Kp < kColKS ? Kp : kColKS;
  float* xt = static_cast<float*>(thread_scratch(0, size_t(ks_max) * kColMB * sizeof(float)));
  float* ct = static_cast<float*>(thread_scratch(1, size_t(kColNC) * kColMB * sizeof(float)));
  if (!xt || !ct) {
    __atomic_store_n(&c.failed, true, __ATOMIC_RELAXED);
    return;
  }
  alignas(64) float row[kColNC];
  for (int64_t m0 = 0; m0 < M; m0 += kColMB) {
    const int rows = M - m0 < kColMB ? int(M - m0) : kColMB;
    const int mv = (rows + L - 1) / L;
    int64_t packed_ks = -1;
    for (int64_t n0 = nb; n0 < ne; n0 += kColNC) {
      const int ncols = ne - n0 < kColNC ? int(ne - n0) : kColNC;
      for (int64_t ks0 = 0; ks0 < Kp; ks0 += kColKS) {
        const int64_t kspl = Kp - ks0 < kColKS ? Kp - ks0 : kColKS;
        if (packed_ks != ks0) {
          const int64_t real = K - ks0 < kspl ? K - ks0 : kspl;
          pack_xt(p, m0, rows, mv * L, ks0, real, kspl, xt);
          packed_ks = ks0;
        }
        for (int64_t kc0 = ks0; kc0 < ks0 + kspl; kc0 += kColKC) {
          const int kcl = ks0 + kspl - kc0 < kColKC ? int(ks0 + kspl - kc0) : kColKC;
          const int nsuper = kcl / kSp24SuperCols;
          const int64_t s0 = kc0 / kSp24SuperCols;
          int64_t prefetched_panel = -1;
          for (int c0 = 0; c0 < ncols; c0 += kColNRS) {
            const int nrs = ncols - c0 < kColNRS ? ncols - c0 : kColNRS;
            const uint8_t* sb[kColNRS];
            int lane[kColNRS];
            for (int r = 0; r < kColNRS; ++r) {
              const int64_t n = n0 + c0 + (r < nrs ? r : 0);
              sb[r] = c.w + (n / kSp24Panel) * pstride + s0 * SB;
              lane[r] = int(n % kSp24Panel);
            }
            // Each panel's slice (nsuper superblocks) is read by the few register tiles that
            // cover its 16 rows, then not again in this slice: fetch the next panel's early.
            const int64_t ahead = (n0 + c0 + 2 * kColNRS) / kSp24Panel;
            if (ahead != prefetched_panel && (n0 + c0 + 2 * kColNRS) < ne) {
              const char* q = reinterpret_cast<const char*>(c.w + ahead * pstride + s0 * SB);
              for (int64_t b = 0; b < nsuper * SB; b += 64) __builtin_prefetch(q + b);
              prefetched_panel = ahead;
            }
            colwise_dispatch<WT>(mv, nrs, xt + (kc0 - ks0) * kColMB, sb, lane, nsuper, ct + c0 * kColMB, kc0 == 0);
          }
        }
      }
      // The chunk is done: y[m0 + i][n0 + j] = ct[j][i] + bias[n0 + j] (+ the low-rank terms),
      // rounded once.
      for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < ncols; ++j) row[j] = ct[j * kColMB + i] + (p.bias ? p.bias[n0 + j] : 0.0f);
        if (p.lora) {
          const LoraEpilogue& e = *p.lora;
          const int a = e.row_adapter ? e.row_adapter[m0 + i] : 0;
          if (a >= 0) {
            const int r = e.rank[a];
            const float* tr = e.t + (m0 + i) * e.tstride;
            for (int j = 0; j < ncols; j += L) {
              const int64_t n = n0 + j;
              const float* b = e.b[a] + (n / 16) * r * 16 + n % 16;
              V v = vload(row + j);  // row has room for kColNC floats; B is padded to 32 rows
              for (int q = 0; q < r; ++q) v = vfma(vbcast(tr + q), vload(b + q * 16), v);
              vstore(row + j, v);
            }
          }
        }
        int j = 0;
        for (; j + L <= ncols; j += L) store_any_n(p.y, p.ydt, (m0 + i) * N + n0 + j, vload(row + j), L);
        if (j < ncols) store_any_n(p.y, p.ydt, (m0 + i) * N + n0 + j, vload_n(row + j, ncols - j), ncols - j);
      }
    }
  }
}

template <DType WT>
bool sparse24_colwise(const GemmProblem& p, const uint8_t* w) {
  ColwiseCtx c{&p, w, false};
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = p.N < threads ? int(p.N) : threads;
  parallel_for(ntasks, threads, colwise_task<WT>, &c);
  return !c.failed;
}

template <DType WT>
bool sparse24_linear_t(const GemmProblem& p, const uint8_t* w) {
  const Tuning& t = tuning();
  const int64_t threshold = t.sparse_m > 0 ? t.sparse_m : kSparseColwiseFromM;
  if (p.M >= threshold || p.M > int64_t(kPermMR) * kMaxRowBlocks) return sparse24_colwise<WT>(p, w);
  return sparse24_panel<WT>(p, w);
}

inline bool sparse24_linear_impl(const GemmProblem& p, const void* packed, DType wdt) {
  const uint8_t* w = static_cast<const uint8_t*>(packed);
  switch (wdt) {
    case DType::F32: return sparse24_linear_t<DType::F32>(p, w);
    case DType::F16: return sparse24_linear_t<DType::F16>(p, w);
    default: return sparse24_linear_t<DType::BF16>(p, w);
  }
}
