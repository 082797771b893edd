// INT4 and FP8 weights with float32 activations (cpu/layout/int4.h, cpu/layout/fp8.h has the CPU layouts),
// two kernels per format:
//
// Direct (few rows of x; memory-bound at M = 1). Vectors along N as in the dense kernel; each
// column of the weight is decoded in registers as it is used and never written anywhere:
//   INT4: lane word >> shift & 15 is the code q; q - z (exact, integer) becomes float32;
//   FP8:  the code, sign-extended into 16 bits and shifted, is a float16 whose value is the FP8
//         value times 2^-8 (e4m3; exact for every finite code, subnormals included) or exactly
//         the FP8 value (e5m2: the code is the high byte of the float16); vcvtph2ps widens it.
// Scales are applied once per group (INT4) or K block (FP8): acc += s * (sum over the group of
// x * decoded), so every weight costs its decode and one FMA per row of x.
//
// Pre-dequantized (many rows of x; compute-bound). Each tile's weights for a K block are
// dequantized into thread scratch as float32 panels, (q - z) * s or decode(c) * s exactly as
// toDense() computes them, and the dense register tile runs over them (gemm_driver_impl.h).
//
// Included inside `namespace cg::<isa> { namespace { ... } }` after dense_impl.h, with
//   kQdR                the direct kernels' rows of x per tile,
//   kInt4DirectUpToM,
//   kFp8DirectUpToM     the direct kernels run up to this many rows of x (per format).

constexpr int kQdNV = kDenseNV;  // vectors per tile: a tile is whole panels
static_assert(kQuantPanel == kDensePanel, "quantized and dense panels are the same width");

// The bit of column J (0..7) in a lane's INT4 word (cpu/layout/int4.h).
template <int J> constexpr int int4_shift() { return J < 4 ? 8 * J : 8 * (J - 4) + 4; }

// Column J (0..7) of a lane's INT4 word.
template <int J>
inline VI int4_column(VI word) {
  return vand_i(vsrli_i<int4_shift<J>()>(word), vset1_i(15));
}

// f(J, column J) for J = 0..7, unrolled at compile time (the shifts are immediates).
template <int J = 0, class F>
inline void int4_octet(VI word, F&& f) {
  if constexpr (J < 8) {
    f(J, int4_column<J>(word));
    int4_octet<J + 1>(word, f);
  }
}

// ---- INT4 ----------------------------------------------------------------------------------

struct Int4View {
  const uint8_t* codes;  // the tile's first panel
  const float* scales;   // [panel][G][16]
  const float* zeros;
  int64_t K, G, group;
};

inline Int4View int4_view(const uint8_t* packed, const Int4Dims& d, int64_t tile) {
  const Int4Layout lay = int4_layout(d);
  const int64_t p0 = tile * (kQdNV / kVecsPerPanel);
  return {packed + p0 * (d.K / 2) * kQuantPanel, reinterpret_cast<const float*>(packed + lay.scales_off) + p0 * d.groups() * kQuantPanel,
          reinterpret_cast<const float*>(packed + lay.zeros_off) + p0 * d.groups() * kQuantPanel, d.K, d.groups(), d.group};
}

// q (0..15) of column J for each lane, as float32; M8: q - 8 (a symmetric weight's q - z).
// (vnibble_f32 reads the low 4 bits only: the bits above need no mask.)
template <int J, bool M8 = false>
inline V int4_q(VI word) {
  const VI w = vsrli_i<int4_shift<J>()>(word);
  if constexpr (M8) return vnibble_f32_m8(w);
  else return vnibble_f32(w);
}

// f(j, w) for the octet's columns j = 0..7, w[v] = column j's q (SYM: q - 8) for vector v's lanes.
template <bool SYM = false, int J = 0, class F>
inline void int4_q_all(const VI (&word)[kQdNV], F&& f) {
  if constexpr (J < 8) {
    V w[kQdNV];
#pragma GCC unroll 4
    for (int v = 0; v < kQdNV; ++v) w[v] = int4_q<J, SYM>(word[v]);
    f(J, w);
    int4_q_all<SYM, J + 1>(word, f);
  }
}

// acc[r][v] = sum_k x[r][k] * w[k][v lanes] for R rows of x (row stride ldx) over the whole K.
// Per group: part = sum_k x * (q - z), then acc += s * part. q - z is an integer of at most 5
// bits, exact in float32, so a weight row whose codes all equal its zero point contributes
// exactly 0 (subtracting z * sum(x) after the loop instead saves one vector op per decoded
// column but leaves ~2^-24 z s sum|x| of cancellation, bias + 7.6e-6 for an all-zero row).
// Independent accumulator chains per output vector: with few rows of x, one chain per output
// would wait on the FMA latency at every column; CH chains (column j feeds chain j % CH) keep
// enough FMAs in flight. With many rows (R >= 3) the rows are the independent chains, and
// each decoded column is reused by R FMAs.
// SYM (a symmetric weight, every z = 8): the lookup gives q - 8 itself on AVX-512, one vector op
// less per 16 weights and no zero points to load, the same values (q - 8 is exact either way).
// tune-ab on Zen 5, INT4 g128: M = 1 1.07-1.53x, M = 2 1.24-1.40x, M = 3-8 1.06-1.35x.
// With one or two rows of x (the GEMV case) the direct kernels (INT4 and FP8) are bounded by how
// fast the codes come from memory: each line of codes is asked for 2 KiB ahead into L1 and
// 8 KiB ahead into L2. Cold weights on Zen 5 (a 180 MB GEMV between calls, M = 1, 2 threads):
// INT4 1.1-1.3x, FP8 1.13-1.25x.
constexpr int kQdPrefetchBytes = 2048, kQdPrefetchL2Bytes = 8192;
template <int R>
inline void direct_prefetch(const uint8_t* codes) {
  if constexpr (R <= 2) {
    __builtin_prefetch(codes + kQdPrefetchBytes, 0, 3);
    __builtin_prefetch(codes + kQdPrefetchL2Bytes, 0, 1);
  }
}
template <int R> constexpr int direct_chains() { return R == 1 ? 4 : (R == 2 ? 2 : 1); }

template <int R, bool SYM = false>
inline void int4_direct_tile(const float* __restrict x, int64_t ldx, const Int4View& t, V (&acc)[R][kQdNV]) {
  constexpr int CH = direct_chains<R>();
  const int64_t C = t.K / 8, octets = t.group / 8;
  for (int64_t g = 0; g < t.G; ++g) {
    V part[R][kQdNV][CH], z[kQdNV];
    if constexpr (!SYM) {
#pragma GCC unroll 4
      for (int v = 0; v < kQdNV; ++v) z[v] = vload(t.zeros + (v / kVecsPerPanel) * t.G * kQuantPanel + g * kQuantPanel + (v % kVecsPerPanel) * L);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kQdNV; ++v)
#pragma GCC unroll 4
        for (int h = 0; h < CH; ++h) part[r][v][h] = vzero();
    for (int64_t c = g * octets; c < (g + 1) * octets; ++c) {
      VI word[kQdNV];
#pragma GCC unroll 4
      for (int v = 0; v < kQdNV; ++v) {
        const uint8_t* wp = t.codes + ((v / kVecsPerPanel) * C * kQuantPanel + c * kQuantPanel + (v % kVecsPerPanel) * L) * 4;
        direct_prefetch<R>(wp);
        word[v] = vload_i(wp);
      }
      const float* xc = x + 8 * c;
      int4_q_all<SYM>(word, [&](int j, V (&w)[kQdNV]) {
        if constexpr (!SYM) {
#pragma GCC unroll 4
          for (int v = 0; v < kQdNV; ++v) w[v] = vsub(w[v], z[v]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const V xb = vbcast(xc + r * ldx + j);
#pragma GCC unroll 4
          for (int v = 0; v < kQdNV; ++v) part[r][v][j % CH] = vfma(xb, w[v], part[r][v][j % CH]);
        }
      });
    }
#pragma GCC unroll 4
    for (int v = 0; v < kQdNV; ++v) {
      const V s = vload(t.scales + (v / kVecsPerPanel) * t.G * kQuantPanel + g * kQuantPanel + (v % kVecsPerPanel) * L);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        V sum = part[r][v][0];
#pragma GCC unroll 4
        for (int h = 1; h < CH; ++h) sum = vadd(sum, part[r][v][h]);
        acc[r][v] = vfma(sum, s, acc[r][v]);
      }
    }
  }
}

// The tile dequantized into float32 panels for K block [k0, k0+kl): dst[q][k][16].
inline void int4_dequant_tile(const Int4View& t, int64_t k0, int64_t kl, float* dst) {
  const int64_t C = t.K / 8, octets = t.group / 8, c0 = k0 / 8, c1 = (k0 + kl) / 8;
  for (int q = 0; q < kQdNV / kVecsPerPanel; ++q) {
    const uint8_t* codes = t.codes + q * C * kQuantPanel * 4;
    const float* sc = t.scales + q * t.G * kQuantPanel;
    const float* zr = t.zeros + q * t.G * kQuantPanel;
    float* out = dst + q * kl * kQuantPanel;
    // group by group: each group's scales and zero points are loaded once
    for (int64_t g = c0 / octets; g * octets < c1; ++g) {
      const int64_t ca = g * octets > c0 ? g * octets : c0, cb = (g + 1) * octets < c1 ? (g + 1) * octets : c1;
#pragma GCC unroll 2
      for (int h = 0; h < kVecsPerPanel; ++h) {
        const V s = vload(sc + g * kQuantPanel + h * L);
        const VI z = vcvt_f2i(vload(zr + g * kQuantPanel + h * L));
        for (int64_t c = ca; c < cb; ++c) {
          const VI word = vload_i(codes + (c * kQuantPanel + h * L) * 4);
          float* o = out + (8 * c - k0) * kQuantPanel + h * L;
          int4_octet(word, [&](int j, VI qj) { vstore(o + j * kQuantPanel, vmul(vcvt_i2f(vsub_i(qj, z)), s)); });
        }
      }
    }
  }
}

struct Int4Policy : DenseMicro<DType::F32> {
  const uint8_t* packed;
  Int4Dims d;
  int64_t kc;
  bool view(int64_t tile, int64_t k0, int64_t kl, PanelView* v) const {
    float* buf = static_cast<float*>(thread_scratch(3, size_t(kQdNV * L) * size_t(kc) * sizeof(float)));
    if (!buf) return false;
    int4_dequant_tile(int4_view(packed, d, tile), k0, kl, buf);
    v->base = buf;
    v->ps = kl * kQuantPanel;
    return true;
  }
  // The next tile's codes for its K block into L2 while this tile's row blocks run (its scales
  // and zero points, a line per group and panel, at once with the first part), so that its
  // view() does not wait on memory, as DensePolicy's weights are fetched.
  void prefetch_part(int64_t tile, int64_t k0, int64_t kl, int part, int parts, int64_t steps, PanelView* v) const {
    const Int4View t = int4_view(packed, d, tile);
    const int64_t C = t.K / 8, pbytes = C * kQuantPanel * 4;
    set_prefetch(v, reinterpret_cast<const char*>(t.codes + (k0 / 8) * kQuantPanel * 4), kl / 8 * kQuantPanel * 4, pbytes, part,
                 parts, steps);
    if (part == 0) {
      for (int64_t g = k0 / t.group; g * t.group < k0 + kl && g < t.G; ++g)
        for (int q = 0; q < kQdNV / kVecsPerPanel; ++q) {
          __builtin_prefetch(t.scales + (q * t.G + g) * kQuantPanel, 0, 2);
          __builtin_prefetch(t.zeros + (q * t.G + g) * kQuantPanel, 0, 2);
        }
    }
  }
};

// ---- FP8 -----------------------------------------------------------------------------------

struct Fp8View {
  const uint8_t* codes;  // the tile's first panel: [K][16] bytes per panel
  const float* scales;   // per lane: [panel][SC][16]
  int64_t K, SC, bk;
  bool e4m3;
};

inline Fp8View fp8_view(const uint8_t* packed, const Fp8Dims& d, Fp8Format f, int64_t tile) {
  const int64_t p0 = tile * (kQdNV / kVecsPerPanel);
  return {packed + p0 * d.K * kQuantPanel, reinterpret_cast<const float*>(packed + fp8_lane_scales_off(d)) + p0 * d.scale_cols() * kQuantPanel,
          d.K, d.scale_cols(), d.bk, f == Fp8Format::E4M3};
}

// L codes (one column k, one vector of a panel) as float32: the FP8 value times 2^-8 for e4m3
// (the scale vectors carry the 2^8 back: fp8_scale_factor), the FP8 value for e5m2.
template <bool E4M3>
inline V fp8_decode_vec(const uint8_t* p) {
  if constexpr (E4M3) return vfp8_e4m3_scaled(p);
  else return vfp8_e5m2(p);
}
template <bool E4M3> constexpr float fp8_scale_factor() { return E4M3 ? 256.0f : 1.0f; }

template <int R, bool E4M3>
inline void fp8_direct_tile(const float* __restrict x, int64_t ldx, const Fp8View& t, V (&acc)[R][kQdNV]) {
  constexpr int CH = direct_chains<R>();
  constexpr int S = CH > 2 ? CH : 2;  // columns per step: pairs decode together
  for (int64_t b = 0; b < t.SC; ++b) {
    const int64_t k0 = b * t.bk, k1 = k0 + t.bk < t.K ? k0 + t.bk : t.K;
    V part[R][kQdNV][CH];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kQdNV; ++v)
#pragma GCC unroll 4
        for (int h = 0; h < CH; ++h) part[r][v][h] = vzero();
    int64_t k = k0;
    // S columns per step, decoded two at a time (32 codes widen in one instruction)
    for (; k + S <= k1; k += S) {
#pragma GCC unroll 2
      for (int h = 0; h < S; h += 2) {
        V w0[kQdNV], w1[kQdNV];
#pragma GCC unroll 4
        for (int v = 0; v < kQdNV; ++v) {
          const uint8_t* p = t.codes + (v / kVecsPerPanel) * t.K * kQuantPanel + (k + h) * kQuantPanel + (v % kVecsPerPanel) * L;
          if (h == 0) direct_prefetch<R>(p);  // once per step (AVX-512, R = 1: 4 columns, one line of each panel)
          if constexpr (E4M3) vfp8x2_e4m3_scaled(p, w0[v], w1[v]);
          else vfp8x2_e5m2(p, w0[v], w1[v]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const V xb0 = vbcast(x + r * ldx + k + h), xb1 = vbcast(x + r * ldx + k + h + 1);
#pragma GCC unroll 4
          for (int v = 0; v < kQdNV; ++v) {
            part[r][v][h % CH] = vfma(xb0, w0[v], part[r][v][h % CH]);
            part[r][v][(h + 1) % CH] = vfma(xb1, w1[v], part[r][v][(h + 1) % CH]);
          }
        }
      }
    }
    for (; k < k1; ++k) {
      V w[kQdNV];
#pragma GCC unroll 4
      for (int v = 0; v < kQdNV; ++v)
        w[v] = fp8_decode_vec<E4M3>(t.codes + (v / kVecsPerPanel) * t.K * kQuantPanel + k * kQuantPanel + (v % kVecsPerPanel) * L);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V xb = vbcast(x + r * ldx + k);
#pragma GCC unroll 4
        for (int v = 0; v < kQdNV; ++v) part[r][v][0] = vfma(xb, w[v], part[r][v][0]);
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < kQdNV; ++v) {
      const V s = vmul(vload(t.scales + (v / kVecsPerPanel) * t.SC * kQuantPanel + b * kQuantPanel + (v % kVecsPerPanel) * L),
                       vset1(fp8_scale_factor<E4M3>()));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        V sum = part[r][v][0];
#pragma GCC unroll 4
        for (int h = 1; h < CH; ++h) sum = vadd(sum, part[r][v][h]);
        acc[r][v] = vfma(sum, s, acc[r][v]);
      }
    }
  }
}

template <bool E4M3>
inline void fp8_dequant_tile_t(const Fp8View& t, int64_t k0, int64_t kl, float* dst) {
  for (int q = 0; q < kQdNV / kVecsPerPanel; ++q) {
    const uint8_t* codes = t.codes + q * t.K * kQuantPanel;
    const float* sc = t.scales + q * t.SC * kQuantPanel;
    float* out = dst + q * kl * kQuantPanel;
    for (int64_t k = k0; k < k0 + kl; ++k) {
      const int64_t b = k / t.bk;
#pragma GCC unroll 2
      for (int h = 0; h < kVecsPerPanel; ++h) {
        // decode(c) * s, exactly as toDense(): the 2^8 of the e4m3 trick is a power of two, so
        // (value * 2^-8) * 2^8 is exact before the one rounding by s.
        const V v = vmul(fp8_decode_vec<E4M3>(codes + k * kQuantPanel + h * L), vset1(fp8_scale_factor<E4M3>()));
        vstore(out + (k - k0) * kQuantPanel + h * L, vmul(v, vload(sc + b * kQuantPanel + h * L)));
      }
    }
  }
}

struct Fp8Policy : DenseMicro<DType::F32> {
  const uint8_t* packed;
  Fp8Dims d;
  Fp8Format f;
  int64_t kc;
  bool view(int64_t tile, int64_t k0, int64_t kl, PanelView* v) const {
    float* buf = static_cast<float*>(thread_scratch(3, size_t(kQdNV * L) * size_t(kc) * sizeof(float)));
    if (!buf) return false;
    const Fp8View t = fp8_view(packed, d, f, tile);
    if (t.e4m3) fp8_dequant_tile_t<true>(t, k0, kl, buf);
    else fp8_dequant_tile_t<false>(t, k0, kl, buf);
    v->base = buf;
    v->ps = kl * kQuantPanel;
    return true;
  }
  // As Int4Policy's: the next tile's codes, and its scales at once.
  void prefetch_part(int64_t tile, int64_t k0, int64_t kl, int part, int parts, int64_t steps, PanelView* v) const {
    const Fp8View t = fp8_view(packed, d, f, tile);
    set_prefetch(v, reinterpret_cast<const char*>(t.codes + k0 * kQuantPanel), kl * kQuantPanel, t.K * kQuantPanel, part, parts, steps);
    if (part == 0) {
      for (int64_t b = k0 / t.bk; b * t.bk < k0 + kl && b < t.SC; ++b)
        for (int q = 0; q < kQdNV / kVecsPerPanel; ++q) __builtin_prefetch(t.scales + (q * t.SC + b) * kQuantPanel, 0, 2);
    }
  }
};

// ---- the direct kernels' driver --------------------------------------------------------------

template <int R>
inline void quant_direct_run(const QuantProblem& q, const float* x, int64_t m0, int64_t tile, const TileOut& o) {
  V acc[R][kQdNV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kQdNV; ++v) acc[r][v] = vzero();
  const GemmProblem& p = *q.p;
  if (q.format == WeightFormat::Int4) {
    if (q.int4_symmetric) int4_direct_tile<R, true>(x + m0 * p.K, p.K, int4_view(q.packed, q.int4, tile), acc);
    else int4_direct_tile<R>(x + m0 * p.K, p.K, int4_view(q.packed, q.int4, tile), acc);
  } else {
    const Fp8View t = fp8_view(q.packed, q.fp8, q.fp8_format, tile);
    if (t.e4m3) fp8_direct_tile<R, true>(x + m0 * p.K, p.K, t, acc);
    else fp8_direct_tile<R, false>(x + m0 * p.K, p.K, t, acc);
  }
  constexpr int TC = kQdNV * L;
  const int64_t n0 = tile * TC;
  store_tile<R, kQdNV>(acc, o, m0, n0, p.N - n0 < TC ? int(p.N - n0) : TC);
}

template <int R = kQdR>
inline void quant_direct_rows(int rows, const QuantProblem& q, const float* x, int64_t m0, int64_t tile, const TileOut& o) {
  if constexpr (R == 1) {
    quant_direct_run<1>(q, x, m0, tile, o);
  } else {
    if (rows == R) quant_direct_run<R>(q, x, m0, tile, o);
    else quant_direct_rows<R - 1>(rows, q, x, m0, tile, o);
  }
}

struct QuantDirectCtx {
  const QuantProblem* q;
  const float* x;     // float32 [M, K], columns in the weight's (permuted) order
  int64_t ntiles;
};

inline void quant_direct_task(void* vctx, int t, int nt) {
  const QuantDirectCtx& c = *static_cast<const QuantDirectCtx*>(vctx);
  const GemmProblem& p = *c.q->p;
  const int64_t t0 = c.ntiles * t / nt, t1 = c.ntiles * (t + 1) / nt;
  TileOut o = whole_k_out(p);
  // Rows in near-equal blocks (16 rows as 8 + 8, not 12 + 4): every block decodes the tile's
  // weights once more, and a short block pays that for few FMAs.
  int64_t starts[kMaxRowBlocks + 1];
  const int nb = split_rows(p.M, kQdR, starts, kMaxRowBlocks);
  for (int64_t tile = t0; tile < t1; ++tile)
    for (int b = 0; b < nb; ++b) quant_direct_rows(int(starts[b + 1] - starts[b]), *c.q, c.x, starts[b], tile, o);
}

// x as the kernels want it: float32, columns permuted (INT4 act-order). Returns x itself when
// nothing is to change, else thread scratch; nullptr when out of memory.
inline const float* quant_prepare_x(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  if (p.xdt == DType::F32 && !q.perm) return static_cast<const float*>(p.x);
  // M rows, plus one row of room to convert a 16-bit row before permuting it.
  float* buf = static_cast<float*>(thread_scratch(2, size_t((p.M + 1) * p.K) * sizeof(float)));
  if (!buf) return nullptr;
  float* tmp = buf + p.M * p.K;
  for (int64_t m = 0; m < p.M; ++m) {
    float* row = buf + m * p.K;
    float* conv = q.perm ? tmp : row;
    const float* src = static_cast<const float*>(p.x) + m * p.K;
    if (p.xdt != DType::F32) {
      for (int64_t k = 0; k < p.K; k += L) {
        const int n = p.K - k < L ? int(p.K - k) : L;
        store_any_n(conv, DType::F32, k, load_any_n(p.x, p.xdt, m * p.K + k, n), n);
      }
      src = conv;
    }
    if (q.perm)
      for (int64_t k = 0; k < p.K; ++k) row[k] = src[q.perm[k]];
  }
  return buf;
}

// ---- quantized activations (act_quant.h has the rules), vectorised -------------------------

// v rounded to the nearest e4m3 value (ties to even), saturated at +-448, NaN kept: the value
// fp8_decode(fp8_encode(v)) as float32. Normal range: round the float32 mantissa to 3 bits in
// the integer domain; below 2^-6 (e4m3's subnormals, steps of 2^-9): round v * 2^9 to an integer.
inline V round_e4m3(V v) {
  const V a = vabs(v);
  const V sat = vmin_keepnan(vset1(448.0f), a);                         // NaN stays NaN
  const VI bits = vcast_f2i(sat);
  const VI lsb = vand_i(vsrli_i<20>(bits), vset1_i(1));
  const V normal = vcast_i2f(vand_i(vadd_i(bits, vadd_i(vset1_i(0x7ffff), lsb)), vset1_i(int(0xfff00000u))));
  const V sub = vmul(vround_ne(vmul(sat, vset1(512.0f))), vset1(1.0f / 512.0f));
  V r = vblend_lt(sat, vset1(0.015625f), sub, normal);                   // sat < 2^-6 ? sub : normal
  r = vblend_nan(sat, r);                                               // NaN in, NaN out
  return vcopysign(r, v);
}

// x (any float dtype, columns permuted by perm if any) -> float32 dequantized activations:
// per row (int8, or fp8 with block = 0) or per row and K block (fp8).
// unit_scale (fp8 only; else nullptr): out gets the e4m3 values themselves (decode(code), exact
// in bfloat16) and unit_scale[m * U + u] unit u's s (U units per row), for a kernel that
// multiplies the values and applies the scales to its sums (the AVX512-BF16 engine; quant_amx.cc).
inline void quantize_act(const GemmProblem& p, const int32_t* perm, ActQuant mode, int64_t block, float* out, float* tmp,
                         float* unit_scale = nullptr) {
  const int64_t K = p.K, unit = (mode == ActQuant::Int8 || block <= 0) ? K : block, units = (K + unit - 1) / unit;
  for (int64_t m = 0; m < p.M; ++m) {
    float* row = out + m * K;
    if (perm) {
      for (int64_t k = 0; k < K; k += L) {
        const int n = K - k < L ? int(K - k) : L;
        store_any_n(tmp, DType::F32, k, load_any_n(p.x, p.xdt, m * K + k, n), n);
      }
      for (int64_t k = 0; k < K; ++k) row[k] = tmp[perm[k]];
    } else {
      for (int64_t k = 0; k < K; k += L) {
        const int n = K - k < L ? int(K - k) : L;
        store_any_n(row, DType::F32, k, load_any_n(p.x, p.xdt, m * K + k, n), n);
      }
    }
    for (int64_t k0 = 0; k0 < K; k0 += unit) {
      const int64_t k1 = k0 + unit < K ? k0 + unit : K;
      V am = vzero();
      int64_t k = k0;
      for (; k + L <= k1; k += L) am = vmax(am, vabs(vload(row + k)));
      if (k < k1) am = vmax(am, vabs(vload_n(row + k, int(k1 - k))));
      const float amax = vreduce_max(am);
      float s = amax / (mode == ActQuant::Int8 ? 127.0f : 448.0f);
      if (!(s > 0.0f)) s = 1.0f;  // an all-zero unit
      // A NaN or an infinity makes the whole unit NaN (act_quant.h), on every ISA alike.
      bool finite = true;
      for (k = k0; k < k1 && finite; ++k) finite = row[k] - row[k] == 0.0f;
      if (!finite) s = __builtin_nanf("");
      if (unit_scale) unit_scale[m * units + k0 / unit] = s;
      const V vs = vset1(s);
      for (k = k0; k < k1; k += L) {
        const int n = k1 - k < L ? int(k1 - k) : L;
        const V v = vdiv(vload_n(row + k, n), vs);  // x / s, a true division as act_quant.h says
        V r;
        if (mode == ActQuant::Int8) r = vmin(vmax(vround_ne(v), vset1(-127.0f)), vset1(127.0f));
        else r = round_e4m3(v);
        vstore_n(row + k, unit_scale ? r : vmul(r, vs), n);
      }
    }
  }
}

inline bool quant_linear_float(const QuantProblem& q);

inline bool quant_linear_impl(const QuantProblem& qin) {
  QuantProblem q = qin;
  GemmProblem pq = *qin.p;
  if (q.act != ActQuant::None) {
    // Quantize the activations (the permutation folds in), then run the float kernels on them.
    float* buf = static_cast<float*>(thread_scratch(2, size_t((pq.M + 1) * pq.K) * sizeof(float)));
    if (!buf) return false;
    quantize_act(pq, q.perm, q.act, q.act_block, buf, buf + pq.M * pq.K);
    pq.x = buf;
    pq.xdt = DType::F32;
    q.p = &pq;
    q.perm = nullptr;
    q.act = ActQuant::None;
    // x now sits in scratch slot 2, which quant_prepare_x would reuse: it is float32 and
    // unpermuted, so quant_prepare_x returns it as it is.
  }
  return quant_linear_float(q);
}

inline bool quant_linear_float(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  const Tuning& tn = tuning();
  const int64_t direct_up_to = tn.sparse_m > 0 ? tn.sparse_m : (q.format == WeightFormat::Int4 ? kInt4DirectUpToM : kFp8DirectUpToM);
  if (p.M <= direct_up_to) {
    const float* x = quant_prepare_x(q);
    if (!x) return false;
    constexpr int TC = kQdNV * L;
    QuantDirectCtx c{&q, x, (p.N + TC - 1) / TC};
    const int threads = p.threads < 1 ? 1 : p.threads;
    const int ntasks = c.ntiles < threads ? int(c.ntiles) : threads;
    parallel_for(ntasks, threads, quant_direct_task, &c);
    return true;
  }
  // Many rows: the dense driver over dequantized tiles (x packed by the driver itself; act-order
  // weights first permute x).
  GemmProblem pp = p;
  if (q.perm) {
    const float* x = quant_prepare_x(q);
    if (!x) return false;
    pp.x = x;
    pp.xdt = DType::F32;
  }
  int64_t mc, kc;
  dense_blocks(pp, &mc, &kc);
  // At most kQuantTileK columns: the tile's dequantized float32 panels (NV*L x kc, 128 KiB at
  // 1024 columns on AVX-512) stay in L2 while every row block of x passes over them; the dense
  // kernel's 4096-column blocks for few rows would make them 512 KiB. (256 columns, an
  // L1-resident tile, measured no faster at M = 128 and 512: the K blocks' extra passes over y
  // and x cost what L1 saves.)
  if (tn.kc <= 0 && kc > kQuantTileK) kc = kQuantTileK;
  kc = kc / 8 * 8;  // INT4 octets, and whole groups or FP8 blocks do not matter: dequant is per column
  if (kc < 8) kc = 8;
  if (q.format == WeightFormat::Int4) {
    Int4Policy pol;
    pol.packed = q.packed;
    pol.d = q.int4;
    pol.kc = kc;
    return run_gemm(pp, pol, mc, kc);
  }
  Fp8Policy pol;
  pol.packed = q.packed;
  pol.d = q.fp8;
  pol.f = q.fp8_format;
  pol.kc = kc;
  return run_gemm(pp, pol, mc, kc);
}
