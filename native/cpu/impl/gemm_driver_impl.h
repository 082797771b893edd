// The blocked GEMM loop nest shared by the weight formats whose kernels vectorise along N
// (dense, and the quantized formats through a dequantized copy of each tile). A Policy
// describes one weight format:
//
//   struct Policy {
//     static constexpr int MR;   // most rows of x in one register tile
//     static constexpr int NV;   // vectors of L columns in one register tile
//     using View = ...;          // what the micro-kernel reads for one tile and K block
//     bool view(int64_t tile, int64_t k0, int64_t kl, View* v) const;
//       // makes it (a quantized format dequantizes here, into thread scratch); false: no memory
//     template <int R> void micro(const float* xp, const View& v, int64_t kl, V (&acc)[R][NV]) const;
//       // acc[i][j] += sum over k in [0, kl) of xp[k*R + i] * W[tile*NV*L + j*L + lane][k0 + k]
//       // (and, when v.pf is set, prefetches v's part of the next block into L2 as it goes)
//     void prefetch_part(int64_t tile, int64_t k0, int64_t kl, int part, int parts, int64_t steps,
//                        View* v) const;
//       // sets v to prefetch part `part` of `parts` of that block over `steps` columns of K
//       // (weights read in place); a no-op where view() makes the tile
//   };
//
// Loop nest, per thread (threads own disjoint ranges of column tiles, so nothing is shared
// but the read-only inputs): for each block of mc rows, for each block of kc columns of K:
// pack that x block once (float32, k-major per register-tile row block), then for each column
// tile, for each row block, run the micro-kernel and add into the output. Included inside
// `namespace cg::<isa> { namespace { ... } }` after gemm_tile_impl.h.

// Never inlined: inlined into driver_task (every R in one large function, with the driver's
// pointers and counters live across it), GCC kept 6 of the 14 x 2 AVX-512 accumulators on the
// stack, a load and a store per FMA for those (3 of 12 x 2 at R = 12). Compiled on its own, each
// R's K loop holds every accumulator in a register. One call per tile, row block and K block.
// Same-process A/B on the Intel Xeon VM, 1 thread, best of 40: dense float32 M = 112 and 448
// (14-row blocks), N = 512-1024, K = 1024: 1.28-1.30x faster (86 -> 111 GFLOP/s).
template <class P, int R>
__attribute__((noinline)) void run_tile(const P& pol, const float* xp, const typename P::View& v, int64_t kl, const TileOut& o,
                                        int64_t m0, int64_t n0, int ncols) {
  V acc[R][P::NV];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < P::NV; ++j) acc[i][j] = vzero();
  pol.template micro<R>(xp, v, kl, acc);
  store_tile<R, P::NV>(acc, o, m0, n0, ncols);
}

// run_tile for a row count known only at run time (1..P::MR).
template <class P, int R = P::MR>
inline void run_tile_rows(int rows, const P& pol, const float* xp, const typename P::View& v, int64_t kl,
                          const TileOut& o, int64_t m0, int64_t n0, int ncols) {
  if constexpr (R == 1) {
    run_tile<P, 1>(pol, xp, v, kl, o, m0, n0, ncols);
  } else {
    if (rows == R) run_tile<P, R>(pol, xp, v, kl, o, m0, n0, ncols);
    else run_tile_rows<P, R - 1>(rows, pol, xp, v, kl, o, m0, n0, ncols);
  }
}

template <class P>
struct DriverCtx {
  const GemmProblem* p;
  const P* pol;
  int64_t ntiles;
  int64_t mc, kc;
  bool failed;  // an allocation failed in some task
};

template <class P>
void driver_task(void* vctx, int t, int nt) {
  auto& d = *static_cast<DriverCtx<P>*>(vctx);
  const GemmProblem& p = *d.p;
  constexpr int TC = P::NV * L;
  const int64_t t0 = d.ntiles * t / nt, t1 = d.ntiles * (t + 1) / nt;
  if (t0 >= t1) return;
  const int64_t M = p.M, N = p.N, K = p.K;
  const int64_t col0 = t0 * TC, col1 = t1 * TC < N ? t1 * TC : N;
  const bool single_k = d.kc >= K;
  const bool need_c = p.ydt != DType::F32 && !single_k;
  const int64_t mc = d.mc;
  float* xp = static_cast<float*>(thread_scratch(0, size_t(mc) * size_t(d.kc < K ? d.kc : K) * sizeof(float)));
  float* cbuf = need_c ? static_cast<float*>(thread_scratch(1, size_t(mc) * size_t(col1 - col0) * sizeof(float))) : nullptr;
  if (!xp || (need_c && !cbuf)) {
    __atomic_store_n(&d.failed, true, __ATOMIC_RELAXED);
    return;
  }
  int64_t starts[kMaxRowBlocks + 1];
  for (int64_t m0 = 0; m0 < M; m0 += mc) {
    const int64_t rows = M - m0 < mc ? M - m0 : mc;
    const int nb = split_rows(rows, P::MR, starts, kMaxRowBlocks);
    for (int64_t k0 = 0; k0 < K; k0 += d.kc) {
      const int64_t kl = K - k0 < d.kc ? K - k0 : d.kc;
      for (int b = 0; b < nb; ++b)
        pack_rows_kmajor(p.x, p.xdt, K, m0 + starts[b], int(starts[b + 1] - starts[b]), k0, kl, xp + starts[b] * kl);
      const TileOut o = k_block_out(p, k0 == 0, k0 + kl >= K, cbuf, col1 - col0, m0, col0);
      for (int64_t tile = t0; tile < t1; ++tile) {
        const int64_t n0 = tile * TC;
        const int ncols = N - n0 < TC ? int(N - n0) : TC;
        typename P::View view;
        if (!d.pol->view(tile, k0, kl, &view)) {
          __atomic_store_n(&d.failed, true, __ATOMIC_RELAXED);
          return;
        }
        // With several row blocks the tile's weights are reused from L2, but the first row block
        // would wait on memory for them (2 x 64 B per 28 FMAs on AVX-512: more than memory
        // delivers with every core computing). So the next tile's K block is fetched into L2
        // meanwhile, a part during each row block (prefetch_part; the quantized formats fetch
        // the codes their view() will decode). Measured on Zen 5, 2 cores, dense float32,
        // K = 11008: M = 16 1.25x, 32 1.18x, 64 1.08x, 128 1.03x faster; INT4 g128 over
        // dequantized tiles, 4096 x 11008: M = 64 1.06x, 512 1.05x (4096 x 4096: 1.02x, 1.00x).
        int64_t next = tile + 1, nk0 = k0;
        if (next >= t1) {
          next = t0;
          nk0 = k0 + d.kc;
        }
        const bool fetch = nb >= 2 && nk0 < K;
        const int64_t nkl = K - nk0 < d.kc ? K - nk0 : d.kc;
        for (int b = 0; b < nb; ++b) {
          typename P::View vb = view;
          if (fetch) d.pol->prefetch_part(next, nk0, nkl, b, nb, kl, &vb);
          run_tile_rows<P>(int(starts[b + 1] - starts[b]), *d.pol, xp + starts[b] * kl, vb, kl, o,
                           m0 + starts[b], n0, ncols);
        }
      }
    }
    if (need_c) convert_block(cbuf, col1 - col0, p.y, p.ydt, m0 * N + col0, N, rows, col1 - col0);
  }
}

// Runs the whole problem; false when scratch memory could not be allocated.
template <class P>
bool run_gemm(const GemmProblem& p, const P& pol, int64_t mc, int64_t kc) {
  constexpr int TC = P::NV * L;
  DriverCtx<P> d{&p, &pol, (p.N + TC - 1) / TC, mc, kc, false};
  if (d.mc > int64_t(P::MR) * kMaxRowBlocks) d.mc = int64_t(P::MR) * kMaxRowBlocks;
  int threads = p.threads < 1 ? 1 : p.threads;
  int ntasks = d.ntiles < threads ? int(d.ntiles) : threads;
  parallel_for(ntasks, threads, driver_task<P>, &d);
  return !d.failed;
}
