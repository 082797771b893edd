// The dense linear, vectorised along N over the packed panel layout of kernels.h. Included
// inside `namespace cg::<isa> { namespace { ... } }` after gemm_driver_impl.h, with
//   kDenseMR  rows of x per register tile,
//   kDenseNV  vectors of L columns per register tile (kDenseNV * L is a multiple of 16).
//
// Register tile: acc[MR][NV] += x[i][k] (broadcast) * W[n0 + j*L .. +L][k] (one vector load);
// AVX-512 runs 14 x 32 (28 accumulators, 2 weight vectors, 1 broadcast: 31 of 32 registers),
// AVX2 6 x 16 (12 + 2 + 1 of 16). 16-bit weights are widened to float32 as they are loaded.

constexpr int kVecsPerPanel = kDensePanel / L;
static_assert(kDensePanel % L == 0, "a panel is a whole number of vectors");
static_assert((kDenseNV * L) % kDensePanel == 0, "a tile is a whole number of panels");
static_assert(kDenseNAlign % (kDenseNV * L) == 0, "padded rows cover every tile");

// A tile's weights for one K block: panel q of the tile at base + q * ps elements, column k of
// the block at + k * 16.
struct PanelView {
  const void* base;
  int64_t ps;
  const char* pf = nullptr;  // prefetch into L2, spread over the K loop: pf + (k * pf_num >> 16) & ~63
  int64_t pf_num = 0;
  int64_t pf_ps = 0;
};

// v's prefetch: part `part` of `parts` of a range of `bytes` bytes from base in each of the
// tile's panels (panel_bytes apart), spread over a micro-kernel K loop of `steps` columns.
inline void set_prefetch(PanelView* v, const char* base, int64_t bytes, int64_t panel_bytes, int part, int parts, int64_t steps) {
  const int64_t lo = bytes * part / parts, hi = bytes * (part + 1) / parts;
  v->pf = base + lo;
  v->pf_num = ((hi - lo) << 16) / steps + 1;
  v->pf_ps = panel_bytes;
}

// The register tile over a PanelView of dtype WT.
template <DType WT>
struct DenseMicro {
  static constexpr int MR = kDenseMR;
  static constexpr int NV = kDenseNV;
  using View = PanelView;

  template <int R>
  inline void micro(const float* __restrict xp, const PanelView& pv, int64_t kl, V (&acc)[R][NV]) const {
    for (int64_t k = 0; k < kl; ++k) {
      if (pv.pf) {
        const int64_t off = ((k * pv.pf_num) >> 16) & ~int64_t(63);
#pragma GCC unroll 2
        for (int q = 0; q < NV / kVecsPerPanel; ++q) __builtin_prefetch(pv.pf + q * pv.pf_ps + off, 0, 2);
      }
      V b[NV];
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j)
        b[j] = load_weight<WT>(pv.base, (j / kVecsPerPanel) * pv.ps + k * kDensePanel + (j % kVecsPerPanel) * L);
      const float* xk = xp + k * R;
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const V a = vbcast(xk + i);
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] = vfma(a, b[j], acc[i][j]);
      }
    }
  }
};

template <DType WT>
struct DensePolicy : DenseMicro<WT> {
  const void* w;  // packed panels
  int64_t K;

  static constexpr int64_t kEs = WT == DType::F32 ? 4 : 2;  // bytes per weight

  bool view(int64_t tile, int64_t k0, int64_t, PanelView* v) const {
    const int64_t ps = K * kDensePanel;
    v->base = static_cast<const char*>(w) + (tile * (kDenseNV / kVecsPerPanel) * ps + k0 * kDensePanel) * kEs;
    v->ps = ps;
    return true;
  }

  // Sets v's prefetch to part `part` of `parts` of each panel of `tile`'s K block [k0, k0 + kl),
  // spread over a micro-kernel K loop of `steps` columns.
  void prefetch_part(int64_t tile, int64_t k0, int64_t kl, int part, int parts, int64_t steps, PanelView* v) const {
    PanelView next;
    view(tile, k0, kl, &next);
    set_prefetch(v, static_cast<const char*>(next.base), kl * kDensePanel * kEs, next.ps * kEs, part, parts, steps);
  }
};

// Block sizes: a K block of kc columns keeps a tile's weights (NV*L x kc: 128 KiB for float32
// on AVX-512) in L2 while every row block of x passes over them; mc rows of packed x (mc x kc
// floats) stay in L2/L3 meanwhile. With one or two row blocks (M <= 2 MR) there is little reuse
// and every pass over y costs more than it saves: K is split only past 4096 columns (measured
// on Zen 5: M = 16, K = 11008 runs 10% faster with 4096-column blocks than unsplit or 2048).
inline void dense_blocks(const GemmProblem& p, int64_t* mc, int64_t* kc) {
  const Tuning& t = tuning();
  *kc = t.kc > 0 ? t.kc : (p.M <= 2 * kDenseMR ? (p.K < 4096 ? p.K : 4096) : 1024);
  *mc = t.mc > 0 ? t.mc : 8 * kDenseMR * 4;
}

template <DType WT>
bool dense_linear_t(const GemmProblem& p, const void* wpacked) {
  int64_t mc, kc;
  dense_blocks(p, &mc, &kc);
  DensePolicy<WT> pol;
  pol.w = wpacked;
  pol.K = p.K;
  return run_gemm(p, pol, mc, kc);
}

inline bool dense_linear_impl(const GemmProblem& p, const void* wpacked, DType wdt) {
  switch (wdt) {
    case DType::F32: return dense_linear_t<DType::F32>(p, wpacked);
    case DType::F16: return dense_linear_t<DType::F16>(p, wpacked);
    default: return dense_linear_t<DType::BF16>(p, wpacked);
  }
}
