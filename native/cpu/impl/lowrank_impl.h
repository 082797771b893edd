// W <- W + alpha * B * A, tile by tile (lowrank.h). One tile is one panel of 16 weight rows by
// up to tile_k columns; the tile's float32 increment D = alpha * B[rows] * A[:, cols] is a
// register-blocked product of depth r (delta_tile), written to a small per-thread buffer and
// applied by the weight's format:
//   dense:  w = round(w + D) in the weight's dtype (the sum in float32, rounded once);
//   2:4:    kept positions only, or (reprune) the 2 largest of every 4 of (old + D) again;
//   INT4:   every group (q - z) * s + D, quantized again with int4_quantize's rule;
//   FP8:    two passes: the new amax of every scale unit, then every code again with the new
//           scale (so no unit, even a whole tensor, is ever held in full).
// The full B * A never exists. Included inside `namespace cg::<isa> { namespace { ... } }`
// after convert_impl.h.

constexpr int kLrCols = 16 / L < 2 ? 16 : 8;  // columns per register block: 16 x 1 zmm, 8 x 2 ymm
constexpr int kLrVpp = 16 / L;                 // vectors per panel row

struct LrCtx {
  const LowRankUpdate* u;
  uint8_t* scratch;        // threads x per_thread bytes, allocated before any write
  int64_t per_thread;      // bytes
  int64_t npanels;
  bool a_direct;           // A is float32 and unpermuted: read in place
  float* amax;             // FP8: the new amax of every scale unit
  bool check_only;         // INT4: a first pass that writes nothing and only looks for trouble
  bool bad;                // a group's new scale (INT4) or a unit's new amax (FP8) is not representable
};

// bp[j][l] = alpha * B[panel*16 + l][j] (0 past N).
inline void lr_build_bp(const LowRankUpdate& u, int64_t panel, float* bp) {
  for (int j = 0; j < u.r; ++j)
    for (int l = 0; l < 16; ++l) {
      const int64_t n = panel * 16 + l;
      bp[j * 16 + l] = n < u.N ? u.alpha * load_as_f32(u.b, u.abdt, n * u.r + j) : 0.0f;
    }
}

// Columns [k0, k0 + kc) of A as float32 [r][lda]: A itself when it is float32 and unpermuted,
// else converted (and permuted) into at.
inline const float* lr_a_cols(const LrCtx& c, int64_t k0, int64_t kc, float* at, int64_t* lda) {
  const LowRankUpdate& u = *c.u;
  if (c.a_direct) {
    *lda = u.K;
    return static_cast<const float*>(u.a) + k0;
  }
  for (int j = 0; j < u.r; ++j)
    for (int64_t q = 0; q < kc; ++q) {
      const int64_t col = u.perm ? u.perm[k0 + q] : k0 + q;
      at[j * kc + q] = load_as_f32(u.a, u.abdt, j * u.K + col);
    }
  *lda = kc;
  return at;
}

// d[q][l] = sum_j bp[j][l] * a[j][q] for q < kc: kLrCols columns per register block, the
// panel's 16 rows along the vector.
inline void lr_delta(const float* __restrict bp, int r, const float* __restrict a, int64_t lda, int64_t kc, float* __restrict d) {
  int64_t q0 = 0;
  for (; q0 + kLrCols <= kc; q0 += kLrCols) {
    V acc[kLrCols][kLrVpp];
#pragma GCC unroll 16
    for (int q = 0; q < kLrCols; ++q)
#pragma GCC unroll 16
      for (int h = 0; h < kLrVpp; ++h) acc[q][h] = vzero();
    for (int j = 0; j < r; ++j) {
      V bv[kLrVpp];
#pragma GCC unroll 16
      for (int h = 0; h < kLrVpp; ++h) bv[h] = vload(bp + j * 16 + h * L);
      const float* aj = a + j * lda + q0;
#pragma GCC unroll 16
      for (int q = 0; q < kLrCols; ++q) {
        const V av = vbcast(aj + q);
#pragma GCC unroll 16
        for (int h = 0; h < kLrVpp; ++h) acc[q][h] = vfma(bv[h], av, acc[q][h]);
      }
    }
#pragma GCC unroll 16
    for (int q = 0; q < kLrCols; ++q)
#pragma GCC unroll 16
      for (int h = 0; h < kLrVpp; ++h) vstore(d + (q0 + q) * 16 + h * L, acc[q][h]);
  }
  for (; q0 < kc; ++q0) {  // the last few columns, one at a time
    V acc[kLrVpp];
#pragma GCC unroll 16
    for (int h = 0; h < kLrVpp; ++h) acc[h] = vzero();
    for (int j = 0; j < r; ++j) {
      const V av = vbcast(a + j * lda + q0);
#pragma GCC unroll 16
      for (int h = 0; h < kLrVpp; ++h) acc[h] = vfma(vload(bp + j * 16 + h * L), av, acc[h]);
    }
#pragma GCC unroll 16
    for (int h = 0; h < kLrVpp; ++h) vstore(d + q0 * 16 + h * L, acc[h]);
  }
}

struct LrBuffers {
  float* bp;  // [r][16]
  float* d;   // [tile_k][16]
  float* at;  // [r][tile_k]
};

inline LrBuffers lr_buffers(const LrCtx& c, int t) {
  const LowRankUpdate& u = *c.u;
  float* base = reinterpret_cast<float*>(c.scratch + t * c.per_thread);
  return {base, base + u.r * 16, base + u.r * 16 + u.tile_k * 16};
}

// ---- dense ---------------------------------------------------------------------------------

inline void lr_dense_panel(const LrCtx& c, const LrBuffers& b, int64_t p) {
  const LowRankUpdate& u = *c.u;
  const int es = u.wdt == DType::F32 ? 4 : 2;
  uint8_t* panel = u.w + p * u.K * 16 * es;
  lr_build_bp(u, p, b.bp);
  for (int64_t k0 = 0; k0 < u.K; k0 += u.tile_k) {
    const int64_t kc = u.K - k0 < u.tile_k ? u.K - k0 : u.tile_k;
    int64_t lda;
    const float* a = lr_a_cols(c, k0, kc, b.at, &lda);
    lr_delta(b.bp, u.r, a, lda, kc, b.d);
    for (int64_t q = 0; q < kc; ++q)
#pragma GCC unroll 16
      for (int h = 0; h < kLrVpp; ++h) {
        const int64_t i = (k0 + q) * 16 + h * L;
        store_any_n(panel, u.wdt, i, vadd(load_any(panel, u.wdt, i), vload(b.d + q * 16 + h * L)), L);
      }
  }
}

// ---- 2:4 -----------------------------------------------------------------------------------

// The two largest magnitudes of c[0..4) (a NaN counts as the largest; the lower column on ties).
inline void lr_top2(const float (&c)[4], int* lo, int* hi) {
  float mag[4];
  for (int q = 0; q < 4; ++q) mag[q] = c[q] != c[q] ? INFINITY : (c[q] < 0 ? -c[q] : c[q]);
  int first = 0;
  for (int q = 1; q < 4; ++q) if (mag[q] > mag[first]) first = q;
  int second = first == 0 ? 1 : 0;
  for (int q = 0; q < 4; ++q) if (q != first && mag[q] > mag[second]) second = q;
  *lo = first < second ? first : second;
  *hi = first < second ? second : first;
}

inline void lr_sparse_panel(const LrCtx& c, const LrBuffers& b, int64_t p) {
  const LowRankUpdate& u = *c.u;
  const int es = u.wdt == DType::F32 ? 4 : 2;
  const int64_t S = sp24_supers(u.K), SB = sp24_super_bytes(es), VB = sp24_value_bytes(es), G = u.K / 4;
  lr_build_bp(u, p, b.bp);
  const int64_t tk = u.tile_k / kSp24SuperCols * kSp24SuperCols;  // whole superblocks per tile
  for (int64_t s0 = 0; s0 < S; s0 += tk / kSp24SuperCols) {
    const int64_t k0 = s0 * kSp24SuperCols;
    const int64_t kc = u.K - k0 < tk ? u.K - k0 : tk;
    int64_t lda;
    const float* a = lr_a_cols(c, k0, kc, b.at, &lda);
    lr_delta(b.bp, u.r, a, lda, kc, b.d);
    for (int64_t s = s0; s < S && s * kSp24SuperCols < k0 + kc; ++s) {
      uint8_t* sb = u.w + (p * S + s) * SB;
      for (int j = 0; j < kSp24SuperGroups; ++j) {
        const int64_t g = s * kSp24SuperGroups + j;
        if (g >= G) break;  // padding groups stay zero
        uint64_t word;
        std::memcpy(&word, sb + VB + 8 * j, 8);
        for (int l = 0; l < 16; ++l) {
          if (p * 16 + l >= u.N) break;
          const int sh = sp24_code_shift(l);
          const int code = int((word >> sh) & 15);
          const int pa = code & 3, pb = code >> 2;
          const int64_t ia = (2 * j) * 16 + l, ib = (2 * j + 1) * 16 + l;
          const float* dd = b.d + (g * 4 - k0) * 16 + l;  // d[(4g + q) - k0][l] at dd + q * 16
          const float va = load_as_f32(sb, u.wdt, ia) + dd[pa * 16];
          const float vb = load_as_f32(sb, u.wdt, ib) + dd[pb * 16];
          if (!u.reprune) {
            store_from_f32(sb, u.wdt, ia, va);
            store_from_f32(sb, u.wdt, ib, vb);
            continue;
          }
          // Every column's new value: the kept two, and the update alone at the dropped two.
          float cand[4];
          for (int q = 0; q < 4; ++q) cand[q] = dd[q * 16];
          cand[pa] = va;
          cand[pb] = vb;
          int na, nb;
          lr_top2(cand, &na, &nb);
          store_from_f32(sb, u.wdt, ia, cand[na]);
          store_from_f32(sb, u.wdt, ib, cand[nb]);
          word = (word & ~(uint64_t(15) << sh)) | (uint64_t(na | (nb << 2)) << sh);
        }
        std::memcpy(sb + VB + 8 * j, &word, 8);
      }
    }
  }
}

// ---- INT4 ----------------------------------------------------------------------------------

inline void lr_int4_panel(const LrCtx& c, const LrBuffers& b, int64_t p) {
  const LowRankUpdate& u = *c.u;
  const Int4Dims& d = u.int4;
  const Int4Layout lay = int4_layout(d);
  const int64_t C = d.K / 8, G = d.groups();
  uint8_t* codes = u.w + p * C * 16 * 4;
  float* sc = reinterpret_cast<float*>(u.w + lay.scales_off) + p * G * 16;
  float* zr = reinterpret_cast<float*>(u.w + lay.zeros_off) + p * G * 16;
  lr_build_bp(u, p, b.bp);
  // Whole groups per tile (tile_k is at least one group: the caller sees to it).
  const int64_t gpt = u.tile_k / d.group;
  float* vals = b.at + (c.a_direct ? 0 : u.r * u.tile_k);  // [group] after the A tile, if there is one
  uint8_t* q = reinterpret_cast<uint8_t*>(vals + d.group);
  for (int64_t g0 = 0; g0 < G; g0 += gpt) {
    const int64_t k0 = g0 * d.group;
    const int64_t kc = (G - g0 < gpt ? G - g0 : gpt) * d.group;
    int64_t lda;
    const float* a = lr_a_cols(c, k0, kc, b.at, &lda);
    lr_delta(b.bp, u.r, a, lda, kc, b.d);
    for (int64_t g = g0; g * d.group < k0 + kc; ++g) {
      for (int l = 0; l < 16; ++l) {
        if (p * 16 + l >= u.N) break;
        const float s = sc[g * 16 + l], z = zr[g * 16 + l];
        for (int64_t k = g * d.group; k < (g + 1) * d.group; ++k) {
          uint32_t word;
          std::memcpy(&word, codes + ((k / 8) * 16 + l) * 4, 4);
          const float w = (float(int((word >> int4_shift(int(k % 8))) & 15)) - z) * s;
          vals[k - g * d.group] = w + b.d[(k - k0) * 16 + l];
        }
        float ns;
        int nz;
        if (!int4_quantize_group(vals, d.group, u.symmetric, u.scale_dt, q, &ns, &nz)) {
          __atomic_store_n(const_cast<bool*>(&c.bad), true, __ATOMIC_RELAXED);  // only in the checking pass
          continue;
        }
        if (c.check_only) continue;
        sc[g * 16 + l] = ns;
        zr[g * 16 + l] = float(nz);
        for (int64_t k = g * d.group; k < (g + 1) * d.group; ++k) {
          uint8_t* wp = codes + ((k / 8) * 16 + l) * 4;
          uint32_t word;
          std::memcpy(&word, wp, 4);
          const int sh = int4_shift(int(k % 8));
          word = (word & ~(uint32_t(15) << sh)) | (uint32_t(q[k - g * d.group]) << sh);
          std::memcpy(wp, &word, 4);
        }
      }
    }
  }
}

// ---- FP8 (one thread: scale units span panels) ----------------------------------------------

inline void lr_fp8(const LrCtx& c, const LrBuffers& b) {
  const LowRankUpdate& u = *c.u;
  const Fp8Dims& d = u.fp8;
  const int64_t SC = d.scale_cols(), NS = d.scales(), np = c.npanels;
  float* lane = reinterpret_cast<float*>(u.w + fp8_lane_scales_off(d));
  float* canon = reinterpret_cast<float*>(u.w + fp8_scales_off(d));
  const float fmax = fp8_spec(u.fp8_format).max_value;
  float table[256];
  for (int i = 0; i < 256; ++i) table[i] = fp8_decode(uint8_t(i), u.fp8_format);
  float* amax = c.amax;
  for (int64_t i = 0; i < NS; ++i) amax[i] = 0.0f;
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t p = 0; p < np; ++p) {
      lr_build_bp(u, p, b.bp);
      uint8_t* codes = u.w + p * d.K * 16;
      for (int64_t k0 = 0; k0 < d.K; k0 += u.tile_k) {
        const int64_t kc = d.K - k0 < u.tile_k ? d.K - k0 : u.tile_k;
        int64_t lda;
        const float* a = lr_a_cols(c, k0, kc, b.at, &lda);
        lr_delta(b.bp, u.r, a, lda, kc, b.d);
        for (int l = 0; l < 16; ++l) {
          const int64_t n = p * 16 + l;
          if (n >= d.N) break;
          for (int64_t k = k0; k < k0 + kc; ++k) {
            const int64_t unit = (n / d.bn) * SC + k / d.bk;
            const float v = table[codes[k * 16 + l]] * canon[unit] + b.d[(k - k0) * 16 + l];
            if (pass == 0) amax[unit] = std::fmax(amax[unit], std::fabs(v));
            else codes[k * 16 + l] = fp8_encode(v / amax[unit], u.fp8_format);
          }
        }
      }
    }
    if (pass == 0) {  // amax becomes the new scale; the old ones (canon) stay for pass 2's decode
      for (int64_t i = 0; i < NS; ++i) {
        if (!std::isfinite(amax[i])) {
          __atomic_store_n(const_cast<bool*>(&c.bad), true, __ATOMIC_RELAXED);
          return;  // nothing written yet
        }
        const float s = amax[i] / fmax;
        amax[i] = s > 0.0f ? s : 1.0f;
      }
    }
  }
  for (int64_t i = 0; i < NS; ++i) canon[i] = amax[i];
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t bc = 0; bc < SC; ++bc) lane[((n / 16) * SC + bc) * 16 + n % 16] = amax[(n / d.bn) * SC + bc];
}

void lr_task(void* vctx, int t, int nt) {
  const LrCtx& c = *static_cast<const LrCtx*>(vctx);
  const LrBuffers b = lr_buffers(c, t);
  if (c.u->format == WeightFormat::Fp8) {
    lr_fp8(c, b);
    return;
  }
  const int64_t p0 = c.npanels * t / nt, p1 = c.npanels * (t + 1) / nt;
  for (int64_t p = p0; p < p1; ++p) {
    switch (c.u->format) {
      case WeightFormat::Dense: lr_dense_panel(c, b, p); break;
      case WeightFormat::Sparse24: lr_sparse_panel(c, b, p); break;
      default: lr_int4_panel(c, b, p); break;
    }
  }
}

inline int64_t lowrank_update_impl(const LowRankUpdate& uin) {
  LowRankUpdate u = uin;
  if (u.tile_k > u.K) u.tile_k = u.K;  // a tile never needs more columns than the weight has
  if (u.format == WeightFormat::Int4 && u.tile_k < u.int4.group) u.tile_k = u.int4.group;  // whole groups
  if (u.format == WeightFormat::Int4) u.tile_k = u.tile_k / u.int4.group * u.int4.group;
  if (u.format == WeightFormat::Sparse24 && u.tile_k < kSp24SuperCols) u.tile_k = kSp24SuperCols;
  LrCtx c{};
  c.u = &u;
  c.npanels = (u.N + 15) / 16;
  c.a_direct = u.abdt == DType::F32 && !u.perm;
  // Per thread: bp [r][16], d [tile_k][16], the A tile [r][tile_k] when A cannot be read in
  // place, and for INT4 one group's values and codes.
  const int64_t extra = u.format == WeightFormat::Int4 ? u.int4.group * 4 + u.int4.group : 0;
  const int64_t at = c.a_direct ? 0 : int64_t(u.r) * u.tile_k;
  c.per_thread = ((int64_t(u.r) * 16 + u.tile_k * 16 + at) * 4 + extra + 63) / 64 * 64;
  const int threads = u.format == WeightFormat::Fp8 ? 1 : (u.threads < 1 ? 1 : (c.npanels < u.threads ? int(c.npanels) : u.threads));
  const int64_t fp8_bytes_extra = u.format == WeightFormat::Fp8 ? u.fp8.scales() * 4 : 0;
  const int64_t total = c.per_thread * threads + fp8_bytes_extra;
  uint8_t* scratch = static_cast<uint8_t*>(aligned_alloc_bytes(size_t(total)));
  if (!scratch) return -1;
  c.scratch = scratch;
  c.amax = reinterpret_cast<float*>(scratch + c.per_thread * threads);
  if (u.format == WeightFormat::Int4) {
    // A group whose new scale does not fit its dtype would leave half an update behind: find
    // such groups first, writing nothing.
    c.check_only = true;
    parallel_for(threads, threads, lr_task, &c);
    c.check_only = false;
  }
  if (!c.bad) parallel_for(threads, threads, lr_task, &c);  // FP8 checks inside, before writing
  aligned_free_bytes(scratch);
  return c.bad ? -2 : total;
}
