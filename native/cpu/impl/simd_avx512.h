// AVX-512 vector helpers for the kernel templates (*_impl.h). Included inside
// `namespace cg::avx512 { namespace { ... } }` by files compiled with -mavx512f -mavx512bw
// -mavx512dq -mavx512vl -mfma -mf16c, so every inline function here is private to that ISA's
// translation units (see the rules in kernels.h).
// (the including file has included <immintrin.h> at global scope)

using V = __m512;
constexpr int L = 16;  // float lanes per vector

inline V vzero() { return _mm512_setzero_ps(); }
inline V vset1(float f) { return _mm512_set1_ps(f); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline V vbcast(const float* p) { return _mm512_set1_ps(*p); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
inline V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
inline float vreduce(V v) { return _mm512_reduce_add_ps(v); }

inline __mmask16 tail_mask(int n) { return __mmask16((1u << n) - 1u); }
// The first n (0 < n <= L) lanes; the others read as zero and are not touched in memory.
inline V vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
inline void vstore_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }

// 16-bit floats <-> float32. float16 by the F16C instructions (round to nearest even on the way
// down); bfloat16 by shifting (up) and integer round-to-nearest-even with NaN kept quiet (down).
inline V vload_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
inline V vload_bf16(const uint16_t* p) {
  __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
inline V vload_f16_bcast(uint16_t h) { return _mm512_cvtph_ps(_mm256_set1_epi16(short(h))); }
inline V vload_f16_n(const uint16_t* p, int n) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p));
}
inline V vload_bf16_n(const uint16_t* p, int n) {
  __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(tail_mask(n), p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
inline __m256i vto_f16(V v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m256i vto_bf16(V v) {
  __m512i u = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}
inline void vstore_f16(uint16_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), vto_f16(v)); }
inline void vstore_bf16(uint16_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), vto_bf16(v)); }
inline void vstore_f16_n(uint16_t* p, V v, int n) { _mm256_mask_storeu_epi16(p, tail_mask(n), vto_f16(v)); }
inline void vstore_bf16_n(uint16_t* p, V v, int n) { _mm256_mask_storeu_epi16(p, tail_mask(n), vto_bf16(v)); }

using VI = __m512i;  // integer lanes: the 2:4 panel codes, INT4 / FP8 decoding

// ---- 2:4 panel helpers (the CPU 2:4 layout of cpu/layout/sparse24.h) -----------------------
// The 4 floats at p in every 128-bit lane (a group's 4 columns of one row of x).
inline V bcast4(const float* p) { return _mm512_broadcast_f32x4(_mm_loadu_ps(p)); }
// Each lane's 4-bit code from a group's 64-bit code word, for vector `half` of a panel (one
// vector per panel here): lane l's code sits at bit (l % 2) * 32 + (l / 2) * 4 of the word.
inline VI code_lanes(uint64_t word, int /*half*/) {
  const __m512i shifts = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
  return _mm512_srlv_epi32(_mm512_set1_epi64(int64_t(word)), shifts);
}
inline VI code_hi(VI c) { return _mm512_srli_epi32(c, 2); }
// The 8 code words of a superblock (8 bytes apart from p), each shifted right by `shift`, their
// low bytes packed into one word: byte j holds group j's code for the lane of that shift.
inline uint64_t lane_codes8(const uint8_t* p, int shift) {
  const __m512i w = _mm512_srlv_epi64(_mm512_loadu_si512(p), _mm512_set1_epi64(shift));
  return uint64_t(_mm_cvtsi128_si64(_mm512_cvtepi64_epi8(w)));
}
// xg[code & 3] in every lane (vpermilps reads the low two bits of each 32-bit index).
inline V select4(V xg, VI code) { return _mm512_permutevar_ps(xg, code); }

// ---- integer lanes and FP8 decoding (INT4 / FP8 kernels) -------------------------------------
inline VI vload_i(const void* p) { return _mm512_loadu_si512(p); }
inline VI vset1_i(int v) { return _mm512_set1_epi32(v); }
inline VI vand_i(VI a, VI b) { return _mm512_and_si512(a, b); }
inline VI vsub_i(VI a, VI b) { return _mm512_sub_epi32(a, b); }
template <int S> inline VI vsrli_i(VI a) { return S == 0 ? a : _mm512_srli_epi32(a, S); }
inline V vcvt_i2f(VI a) { return _mm512_cvtepi32_ps(a); }
inline VI vcvt_f2i(V a) { return _mm512_cvttps_epi32(a); }
// 16 e4m3 codes as float32, each the FP8 value times 2^-8: the code sign-extended to 16 bits and
// shifted left 7 puts sign, exponent and mantissa where a float16 keeps them, with a copy of
// the sign in the exponent's top bit, which the mask clears (quant_impl.h).
inline V vfp8_e4m3_scaled(const uint8_t* p) {
  __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(short(0xBF80)));
  return _mm512_cvtph_ps(w);
}
// 16 e5m2 codes as float32 (an e5m2 code is the high byte of a float16; exact, Inf/NaN kept).
inline V vfp8_e5m2(const uint8_t* p) {
  const __m256i w = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 8);
  return _mm512_cvtph_ps(w);
}
// (code & 15) as float32 for each lane, by table lookup: vpermps reads only the index's low 4
// bits, so the code needs no mask.
inline V vnibble_f32(VI idx) {
  const V table = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  return _mm512_permutexvar_ps(idx, table);
}
// The same less 8 (a symmetric INT4 weight's q - z), in the one lookup.
inline V vnibble_f32_m8(VI idx) {
  const V table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  return _mm512_permutexvar_ps(idx, table);
}
// Two columns of a panel at once (k at p, k+1 at p + 16): 32 codes sign-extended in one zmm.
inline void vfp8x2_e4m3_scaled(const uint8_t* p, V& k0, V& k1) {
  __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  w = _mm512_and_si512(_mm512_slli_epi16(w, 7), _mm512_set1_epi16(short(0xBF80)));
  k0 = _mm512_cvtph_ps(_mm512_castsi512_si256(w));
  k1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(w, 1));
}
inline void vfp8x2_e5m2(const uint8_t* p, V& k0, V& k1) {
  const __m512i w = _mm512_slli_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 8);
  k0 = _mm512_cvtph_ps(_mm512_castsi512_si256(w));
  k1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(w, 1));
}

// ---- more lane arithmetic (activation quantization) -------------------------------------------
inline V vabs(V a) { return _mm512_abs_ps(a); }
inline V vmax(V a, V b) { return _mm512_max_ps(a, b); }
inline V vmin(V a, V b) { return _mm512_min_ps(a, b); }
inline V vmin_keepnan(V a, V b) { return _mm512_min_ps(a, b); }  // b when either is NaN
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
inline V vround_ne(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VI vcast_f2i(V a) { return _mm512_castps_si512(a); }
inline V vcast_i2f(VI a) { return _mm512_castsi512_ps(a); }
inline VI vadd_i(VI a, VI b) { return _mm512_add_epi32(a, b); }
inline V vblend_lt(V a, V b, V x, V y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x); }
inline V vblend_nan(V a, V r) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), r, a); }
inline V vcopysign(V mag, V sgn) {
  const __m512i m = _mm512_set1_epi32(int(0x80000000u));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)), _mm512_and_si512(m, _mm512_castps_si512(sgn))));
}
inline float vreduce_max(V a) { return _mm512_reduce_max_ps(a); }
