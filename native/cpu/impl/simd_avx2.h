// AVX2 vector helpers for the kernel templates (*_impl.h). Included inside
// `namespace cg::avx2 { namespace { ... } }` by files compiled with -mavx2 -mfma -mf16c, so every
// inline function here is private to that ISA's translation units (see the rules in kernels.h).
// (the including file has included <immintrin.h> at global scope)

using V = __m256;
constexpr int L = 8;  // float lanes per vector

inline V vzero() { return _mm256_setzero_ps(); }
inline V vset1(float f) { return _mm256_set1_ps(f); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline V vbcast(const float* p) { return _mm256_broadcast_ss(p); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
inline float vreduce(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline __m256i tail_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// The first n (0 < n <= L) lanes; the others read as zero and are not touched in memory.
inline V vload_n(const float* p, int n) { return _mm256_maskload_ps(p, tail_mask(n)); }
inline void vstore_n(float* p, V v, int n) { _mm256_maskstore_ps(p, tail_mask(n), v); }

// 16-bit floats <-> float32: float16 by F16C (round to nearest even on the way down); bfloat16
// by shifting (up) and integer round-to-nearest-even with NaN kept quiet (down).
inline V vload_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline V vload_bf16(const uint16_t* p) {
  __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
inline __m128i load16_n(const uint16_t* p, int n) {
  alignas(16) uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
}
inline V vload_f16_bcast(uint16_t h) { return _mm256_cvtph_ps(_mm_set1_epi16(short(h))); }
inline V vload_f16_n(const uint16_t* p, int n) { return _mm256_cvtph_ps(load16_n(p, n)); }
inline V vload_bf16_n(const uint16_t* p, int n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16_n(p, n)), 16));
}
inline __m128i vto_f16(V v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m128i vto_bf16(V v) {
  __m256i u = _mm256_castps_si256(v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, qnan, nan);
  // pack 8 x 32-bit (values < 65536) into 8 x 16-bit
  __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
  return _mm_packus_epi32(lo, hi);
}
inline void vstore_f16(uint16_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), vto_f16(v)); }
inline void vstore_bf16(uint16_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), vto_bf16(v)); }
inline void store16_n(uint16_t* p, __m128i v, int n) {
  alignas(16) uint16_t tmp[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
inline void vstore_f16_n(uint16_t* p, V v, int n) { store16_n(p, vto_f16(v), n); }
inline void vstore_bf16_n(uint16_t* p, V v, int n) { store16_n(p, vto_bf16(v), n); }

using VI = __m256i;  // integer lanes: the 2:4 panel codes, INT4 / FP8 decoding

// ---- 2:4 panel helpers (the CPU 2:4 layout of cpu/layout/sparse24.h) -----------------------
// The 4 floats at p in both 128-bit lanes (a group's 4 columns of one row of x).
inline V bcast4(const float* p) { return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p)); }
// Each lane's 4-bit code from a group's 64-bit code word, for vector `half` (lanes 8*half ..
// 8*half+7) of a 16-lane panel: lane l's code sits at bit (l % 2) * 32 + (l / 2) * 4 of the word.
inline VI code_lanes(uint64_t word, int half) {
  const __m256i shifts = half == 0 ? _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12) : _mm256_setr_epi32(16, 16, 20, 20, 24, 24, 28, 28);
  return _mm256_srlv_epi32(_mm256_set1_epi64x(int64_t(word)), shifts);
}
inline VI code_hi(VI c) { return _mm256_srli_epi32(c, 2); }
// xg[code & 3] in every lane (vpermilps reads the low two bits of each 32-bit index).
inline V select4(V xg, VI code) { return _mm256_permutevar_ps(xg, code); }

// ---- integer lanes and FP8 decoding (INT4 / FP8 kernels) -------------------------------------
inline VI vload_i(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline VI vset1_i(int v) { return _mm256_set1_epi32(v); }
inline VI vand_i(VI a, VI b) { return _mm256_and_si256(a, b); }
inline VI vsub_i(VI a, VI b) { return _mm256_sub_epi32(a, b); }
template <int S> inline VI vsrli_i(VI a) { return S == 0 ? a : _mm256_srli_epi32(a, S); }
inline V vcvt_i2f(VI a) { return _mm256_cvtepi32_ps(a); }
inline VI vcvt_f2i(V a) { return _mm256_cvttps_epi32(a); }
// 8 e4m3 codes as float32, each the FP8 value times 2^-8 (see simd_avx512.h).
inline V vfp8_e4m3_scaled(const uint8_t* p) {
  __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  w = _mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16(short(0xBF80)));
  return _mm256_cvtph_ps(w);
}
// 8 e5m2 codes as float32 (an e5m2 code is the high byte of a float16).
inline V vfp8_e5m2(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), 8));
}
// (code & 15) as float32 for each lane (vpermps holds only 8 entries here: mask and convert).
inline V vnibble_f32(VI idx) { return _mm256_cvtepi32_ps(_mm256_and_si256(idx, _mm256_set1_epi32(15))); }
// The same less 8 (a symmetric INT4 weight's q - z).
inline V vnibble_f32_m8(VI idx) { return _mm256_sub_ps(vnibble_f32(idx), _mm256_set1_ps(8.0f)); }
// Two columns of half a panel (k at p, k+1 at p + 16).
inline void vfp8x2_e4m3_scaled(const uint8_t* p, V& k0, V& k1) {
  k0 = vfp8_e4m3_scaled(p);
  k1 = vfp8_e4m3_scaled(p + 16);
}
inline void vfp8x2_e5m2(const uint8_t* p, V& k0, V& k1) {
  k0 = vfp8_e5m2(p);
  k1 = vfp8_e5m2(p + 16);
}

// ---- more lane arithmetic (activation quantization) -------------------------------------------
inline V vabs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm256_min_ps(a, b); }
inline V vmin_keepnan(V a, V b) { return _mm256_min_ps(a, b); }  // b when either is NaN
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V vround_ne(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VI vcast_f2i(V a) { return _mm256_castps_si256(a); }
inline V vcast_i2f(VI a) { return _mm256_castsi256_ps(a); }
inline VI vadd_i(VI a, VI b) { return _mm256_add_epi32(a, b); }
inline V vblend_lt(V a, V b, V x, V y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
inline V vblend_nan(V a, V r) { return _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q)); }
inline V vcopysign(V mag, V sgn) {
  const V m = _mm256_set1_ps(-0.0f);
  return _mm256_or_ps(_mm256_andnot_ps(m, mag), _mm256_and_ps(m, sgn));
}
inline float vreduce_max(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
