// The AMX kernels (Intel Sapphire Rapids and later; compiled with -mamx-tile -mamx-bf16
// -mamx-int8 -mavx512bf16 -mavx512vbmi, chosen at run time: ISA 'amx'): INT4, FP8 and dense bfloat16 weights
// with float activations on AMX-BF16 tiles (below), and INT4 with int8 activations on AMX-INT8
// tiles (further down, its own section). The same bfloat16 path also runs without tiles, its
// multiplies by AVX512-BF16 (dot_block): for bfloat16 x on the avx512 ISA of CPUs with
// AVX512-BF16 and AVX512-VBMI but no AMX (AMD Zen 4 and 5), namespace avx512bf16 at the end;
// it executes none of the AMX instructions this file is also compiled for.
//
// Exact products, float32 sums, as the AVX-512 kernels (quant_impl.h), within the same error
// bound (test/helpers/act-reference.ts derives it). AMX multiplies bfloat16
// pairs and adds them into float32 (TDPBF16PS: each product of two bfloat16 values is exact in
// float32; the sums round to nearest even). The weight's decoded values are small: INT4's q - z
// is an integer in [-16, 15] and an FP8 value has at most 4 significant bits, so each is one
// exact bfloat16. x is split into P bfloat16 pieces whose sum is x exactly:
//   x1 = bf16(x), x2 = bf16(x - x1), x3 = x - x1 - x2
// (a float32 has 24 significant bits, each piece holds 8; float16 needs two, bfloat16 one), and
// every piece runs through the tile multiply against the same weight tile. So each group's
// sum(x * (q - z)) is float32 arithmetic on exact products, as in the FMA kernels, and the group
// scale is applied to it the same way: acc += s * part. Only the order of the additions differs.
// Limits of AMX itself: it reads bfloat16 subnormals as zero and flushes subnormal results, so
// activations below about 2^-110 in magnitude lose low bits (x3 drops below 2^-126).
// An infinity in x stays a single piece (x2 = x3 = 0), so Inf * w follows IEEE as on the FMA
// kernels (Inf * 0 is NaN); a NaN makes its row NaN.
//
// Layouts (the tiles are 16 rows of 64 bytes):
//   A, x's pieces: bfloat16, rows padded to a multiple of 16 with zeros and K to a multiple of
//      32, stored tile by tile: the tile of piece p, rows 16 mb.., columns 32 ks.. is 1 KiB at
//      ((p * MB + mb) * KS + ks) * 512 elements, row r's 32 columns at r * 32. (Row-major x with
//      a row stride of 2K bytes put a tile's 16 rows in one L1 set: 2.5x slower than the AVX-512
//      kernel at M = 512.)
//   B, one tile per 32 columns of K and 16 output columns: row i holds, for n = 0..15, the
//      pair (k = 2i, k = 2i + 1) as two bfloat16 (AMX's pair-interleaved "VNNI" layout), decoded
//      from the CPU layout's panels into thread scratch, one chunk of K at a time.
//   C, float32 16 x 16, for 16 rows x 32 columns of y: tiles 0, 1 (columns 0-15, 16-31) sum the
//      first piece of x, tiles 2, 3 the others; A tiles 4, 5; B tiles 6, 7.
// Each scale block (an INT4 group, an FP8 K block) starts from zeroed C tiles, whose sums are
// then multiplied by the block's scales and added into a float32 accumulator per output in
// thread scratch; the usual epilogue (gemm_tile_impl.h's store_tile: bias, low-rank terms, the
// output dtype) writes y.
#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "cpu/layout/fp8.h"
#include "cpu/runtime/scratch.h"
#include "cpu/runtime/thread_pool.h"
#include "cpu/kernels.h"

namespace cg {
namespace amx {
namespace {
#include "cpu/impl/simd_avx512.h"
#include "cpu/impl/convert_impl.h"
#include "cpu/impl/gemm_tile_impl.h"
#include "cpu/impl/gemm_driver_impl.h"
// Only quant_impl.h's decoders and activation preparation are used here (it needs dense_impl.h);
// the constants are the AVX-512 build's, which runs the rows this kernel leaves.
#include "cpu/isa/avx512/tuning.h"
#include "cpu/impl/dense_impl.h"
#include "cpu/impl/quant_impl.h"

// From how many rows of x the tiles beat the AVX-512 kernels (below: their direct kernels, which
// stream the weight once), by the pieces of x: each piece is one more tile multiply per block.
// A row tile is 16 rows, so the tiles cost the same from M = 1 to 16 while the direct kernels
// grow with M. Intel Xeon VM, 2 threads, 4096 x 4096 and 11008 x 4096, INT4 g128 and FP8 e4m3,
// `scripts/microbench/tune-ab.js --tune amx_m=2 --tune amx_m=100`, medians of 4-5 rounds
// (2026-12-03, after the decoder lost its per-octet division), the tiles' speed against the
// direct kernels': float32 x 1.20-1.52x at M = 16, 0.94-1.15x at 14, 0.80-1.06x at 12,
// 0.93-1.27x at 24. float16 x 0.93x at 12, 0.63-0.69x at 8. bfloat16 x at M = 8: INT4 1.45x
// (4096 x 4096), FP8 0.89x and 1.08x; at 6 INT4 1.12x, FP8 0.63-0.88x; at 4 INT4 0.89x.
constexpr int64_t kAmxFromM[4] = {0, 8, 14, 14};
// Dense bfloat16 weights against the AVX-512 dense kernel (4096 x 4096, medians of 5, a loaded
// machine): bfloat16 x 1.26x at M = 16; float32 x even at M = 32, 1.22 vs 0.95x dense float32
// at M = 64, 1.92 vs 1.02x at M = 512.
constexpr int64_t kAmxDenseFromM[4] = {0, 10, 16, 48};
// The AVX512-BF16 engine (dot_block; bfloat16 x on the avx512 ISA): from this many rows it runs
// instead of the AVX-512 FMA kernels. AMD EPYC (Zen 5) VM, 2 threads, 4096 x 4096 and
// 11008 x 4096, `tune-ab.js --x bfloat16 --tune amx_m=100000 --tune amx_m=1` (FMA kernels
// against the engine), medians of 3-4 rounds, 2026-12-03, the engine's speed against the FMA
// kernels': INT4 g128 0.71-0.80x at M = 4, 0.96-1.13x at 8, 1.13x at 12, 1.28-1.33x at 16 (with
// dot_one_row_tile; 1.12-1.19x before it), 1.35-1.82x at 64, 1.30-1.63x at 512; FP8 e4m3 (channel
// scales) 0.58-0.68x at 8, 0.77-1.12x at 16, 0.84-1.12x at 24, 1.22x at 32, 1.38-1.45x at 64,
// 1.59-1.90x at 512; a dense bfloat16 weight (the FMA kernel streams half the bytes of float32
// and wins while memory bounds it) 0.99-1.04x at 64, 1.12-1.21x at 96, 1.22x at 128, 1.40x at 512.
constexpr int64_t kDotInt4FromM = 12;
constexpr int64_t kDotFp8FromM = 32;
constexpr int64_t kDotDenseFromM = 96;
// INT4 with int8 activations: from this many rows the int8 tiles (below: the AVX512-VNNI kernel).
// 4096 x 4096, g128, medians of 7, a loaded machine: M = 16 and 24 0.82-0.94x the VNNI kernel,
// M = 32 1.21x, 64 1.47x, 512 1.78x.
constexpr int64_t kI8FromM = 32;
constexpr int kTileN = 32;        // output columns per column tile: two panels, two B tiles
constexpr int64_t kChunkK = 512;  // K columns decoded into scratch at once: 32 KiB of B tiles
constexpr int64_t kMc = 256;      // rows of x per block (a multiple of 16)
constexpr int64_t kTg = 16;       // column tiles per group
constexpr int64_t kSuperRows = 1024;  // rows of x split into pieces at once (bounds that buffer)
constexpr int kBTileBytes = 1024;

// The tile configuration (palette 1): tiles 0..7 of 16 rows x 64 bytes. Built as bytes, with a
// compiler barrier before ldtilecfg reads it: GCC 12 dropped the column-width stores of a struct
// version (ldtilecfg's operand is not seen as reading them), and ldtilecfg faulted.
inline void configure_tiles() {
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;  // palette
  for (int i = 0; i < 8; ++i) {
    cfg[16 + 2 * i] = 64;  // bytes per row (little-endian uint16)
    cfg[48 + i] = 16;      // rows
  }
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
}

// Where the B tile row of column k (k0 <= k < k0 + chunk) of panel h lives in the chunk buffer.
inline uint16_t* brow(uint16_t* b, int64_t k0, int64_t k, int h) {
  const int64_t kk = k - k0;
  return b + ((kk / 32) * 2 + h) * (kBTileBytes / 2) + ((kk % 32) / 2) * 32;
}

// The bfloat16 bits of an integer v in -16..15.
// Each is exact (at most 5 significant bits): sign, exponent 127 + e for 2^e <= |v|, and |v|'s
// bits below its leading one as the top of the 7-bit significand.
constexpr uint16_t int_bf16(int v) {
  if (v == 0) return 0;
  const unsigned a = unsigned(v < 0 ? -v : v);
  int e = 0;
  while ((2u << e) <= a) ++e;
  return uint16_t((v < 0 ? 0x8000u : 0u) | unsigned(127 + e) << 7 | ((a << (7 - e)) & 0x7fu));
}
// q - z + 16 (0..31) -> the low and high bytes of bfloat16(q - z), for VBMI's byte lookup
// (vpermb reads an index's low 6 bits; entries 32..63 are never read).
struct IntBf16Bytes {
  alignas(64) uint8_t lo[64], hi[64];
};
constexpr IntBf16Bytes make_int_bf16_bytes() {
  IntBf16Bytes t{};
  for (int i = 0; i < 32; ++i) {
    t.lo[i] = uint8_t(int_bf16(i - 16) & 0xff);
    t.hi[i] = uint8_t(int_bf16(i - 16) >> 8);
  }
  return t;
}
constexpr IntBf16Bytes kIntBf16 = make_int_bf16_bytes();
static_assert(int_bf16(1) == 0x3f80 && int_bf16(3) == 0x4040 && int_bf16(15) == 0x4170, "bfloat16 of 1, 3, 15");
static_assert(int_bf16(-1) == 0xbf80 && int_bf16(-16) == 0xc180 && int_bf16(-9) == 0xc110, "bfloat16 of -1, -16, -9");
// The two B rows (column pairs 0-1 and 2-3) of 4 columns of 16 lanes, each column's values
// held as low bytes in one register and high bytes in another: byte 4n + j of row r is the low
// (j even; the first register, indices 0..63) or high (j odd; the second, 64..127) byte of
// column c = 2r + j / 2, lane n, found at byte 4n + c of its register (lane-major: INT4, one
// dword per lane) or 16c + n (column-major: FP8's [K][16] panels).
struct RowBytes {
  alignas(64) uint8_t ix[2][64];
};
constexpr RowBytes make_row_bytes(bool lane_major) {
  RowBytes p{};
  for (int r = 0; r < 2; ++r)
    for (int n = 0; n < 16; ++n)
      for (int j = 0; j < 4; ++j) {
        const int c = 2 * r + j / 2;
        p.ix[r][4 * n + j] = uint8_t((j & 1) * 64 + (lane_major ? 4 * n + c : 16 * c + n));
      }
  return p;
}
constexpr RowBytes kQuadRows = make_row_bytes(true), kPairRows = make_row_bytes(false);

// INT4: columns [k0, k0 + kl) of the column tile's two panels, q - z as bfloat16; beyond K,
// zeros. In bytes: a lane's word holds columns 8c..8c+3 in its bytes' low nibbles and
// 8c+4..8c+7 in the high ones (cpu/layout/int4.h); per nibble half, q + (16 - z) in bytes
// (z per lane, in all 4 bytes of its dword), two 64-entry byte lookups (VBMI vpermb) give the
// low and high bytes of bfloat16(q - z), and one two-source byte permute per column pair
// interleaves them into a B tile row. 13 vector instructions per 128 weights (the 16-bit word
// route took 19, 12 of them on the shuffle port; the float32 route, convert then pack, 44).
void decode_int4(const Int4View& t, int64_t k0, int64_t kl, uint16_t* b) {
  const int64_t C = t.K / 8, octets = t.group / 8;
  // octets [c0, c1) of the chunk; those from cv on lie beyond K (zeros)
  const int64_t c0 = k0 / 8, c1 = (k0 + kl) / 8, cv = c1 < C ? c1 : (C > c0 ? C : c0);
  const __m512i tlo = _mm512_load_si512(kIntBf16.lo), thi = _mm512_load_si512(kIntBf16.hi);
  const __m512i r0 = _mm512_load_si512(kQuadRows.ix[0]), r1 = _mm512_load_si512(kQuadRows.ix[1]);
  const __m512i nib = _mm512_set1_epi8(0x0f), zero = _mm512_setzero_si512();
  for (int h = 0; h < 2; ++h) {
    const uint8_t* codes = t.codes + h * C * kQuantPanel * 4;
    const float* zr = t.zeros + h * t.G * kQuantPanel;
    // Octet c's four B rows (columns 8c..8c+7 as pairs) are consecutive, 128 words at
    // brow(b, k0, 8c, h); computed from i = c - c0 with shifts (brow's signed divisions and a
    // division per octet for its group were most of this function's time).
    const auto rows = [&](uint64_t i) { return b + ((i >> 2) * 2 + uint64_t(h)) * (kBTileBytes / 2) + (i & 3) * 128; };
    for (int64_t ca = c0; ca < cv;) {  // one group (one zero point) at a time
      const int64_t g = ca / octets, cb = (g + 1) * octets < cv ? (g + 1) * octets : cv;
      // 16 - z in every byte of the lane's dword (z is 0..16)
      const __m512i zb = _mm512_mullo_epi32(_mm512_sub_epi32(_mm512_set1_epi32(16), _mm512_cvttps_epi32(vload(zr + g * kQuantPanel))),
                                            _mm512_set1_epi32(0x01010101));
      const uint8_t* src = codes + ca * kQuantPanel * 4;
      for (uint64_t i = uint64_t(ca - c0); i < uint64_t(cb - c0); ++i, src += kQuantPanel * 4) {
        const __m512i word = _mm512_loadu_si512(src);
        uint16_t* dst = rows(i);
        for (int half = 0; half < 2; ++half) {  // columns 8c+0..3, then 8c+4..7
          const __m512i d = _mm512_add_epi8(_mm512_and_si512(half ? _mm512_srli_epi32(word, 4) : word, nib), zb);
          const __m512i lo = _mm512_permutexvar_epi8(d, tlo), hi = _mm512_permutexvar_epi8(d, thi);
          _mm512_storeu_si512(dst + half * 64, _mm512_permutex2var_epi8(lo, r0, hi));
          _mm512_storeu_si512(dst + half * 64 + 32, _mm512_permutex2var_epi8(lo, r1, hi));
        }
      }
      ca = cb;
    }
    for (uint64_t i = uint64_t(cv - c0); i < uint64_t(c1 - c0); ++i)
      for (int r = 0; r < 4; ++r) _mm512_storeu_si512(rows(i) + r * 32, zero);
  }
}

// A dense bfloat16 weight (kernels.h's packed layout: panels of 16 rows, [K][16] each): columns
// k and k + 1 of a panel are 64 consecutive bytes, interleaved into one B tile row.
void decode_dense_bf16(const uint16_t* w, int64_t K, int64_t k0, int64_t kl, uint16_t* b) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
                                       19, 3, 18, 2, 17, 1, 16, 0);
  for (int h = 0; h < 2; ++h) {
    const uint16_t* panel = w + h * K * kDensePanel;
    for (int64_t k = k0; k < k0 + kl; k += 2) {
      const int n = k + 2 <= K ? 32 : (k < K ? 16 : 0);  // bfloat16 words of columns k, k + 1 that exist
      const __m512i both = _mm512_maskz_loadu_epi16(n == 32 ? ~__mmask32(0) : __mmask32((1ull << n) - 1), panel + k * kDensePanel);
      _mm512_storeu_si512(brow(b, k0, k, h), _mm512_permutexvar_epi16(idx, both));
    }
  }
}

// FP8 -> bfloat16 by table: the value of each magnitude code 0..127 (e4m3: times 2^-8, as the
// direct kernels decode it; exact in bfloat16, subnormals included: at most 4 significant bits,
// and 2^-17 is a normal bfloat16), split into the bfloat16's low and high bytes so that VBMI's
// 128-entry byte lookup (vpermi2b) reads them; the code's sign bit goes onto the high byte.
// v = mant * 2^e2 (mant < 256) as bfloat16 bits; 0 for mant = 0.
constexpr uint16_t pow2_bf16(unsigned mant, int e2) {
  if (mant == 0) return 0;
  int p = 0;
  while ((2u << p) <= mant) ++p;
  return uint16_t(unsigned(127 + p + e2) << 7 | ((mant << (7 - p)) & 0x7fu));
}
constexpr uint16_t fp8_mag_bf16(bool e4m3, unsigned i) {
  if (e4m3) {
    const unsigned e = i >> 3, m = i & 7;
    if (i == 0x7f) return 0x7fc0;                                // NaN
    return e == 0 ? pow2_bf16(m, -9 - 8) : pow2_bf16(8 + m, int(e) - 7 - 3 - 8);
  }
  const unsigned e = i >> 2, m = i & 3;
  if (e == 31) return m == 0 ? 0x7f80 : 0x7fc0;                  // infinity, NaN
  return e == 0 ? pow2_bf16(m, -16) : pow2_bf16(4 + m, int(e) - 15 - 2);
}
struct Fp8Bf16Table {
  alignas(64) uint8_t lo[128], hi[128];
};
constexpr Fp8Bf16Table make_fp8_table(bool e4m3) {
  Fp8Bf16Table t{};
  for (unsigned i = 0; i < 128; ++i) {
    t.lo[i] = uint8_t(fp8_mag_bf16(e4m3, i) & 0xff);
    t.hi[i] = uint8_t(fp8_mag_bf16(e4m3, i) >> 8);
  }
  return t;
}
constexpr Fp8Bf16Table kFp8Table[2] = {make_fp8_table(false), make_fp8_table(true)};
// e4m3 (times 2^-8): 1 = 2^-8, 448 = 1.75, the smallest subnormal 2^-9 = 2^-17, 0x7e = 240 * 2^-8
static_assert(fp8_mag_bf16(true, 0x38) == 0x3b80 && fp8_mag_bf16(true, 0x7e) == 0x3fe0 && fp8_mag_bf16(true, 1) == 0x3700, "e4m3");
// e5m2: 1, 57344, 2^-16 and 3 * 2^-16 (the smallest and largest subnormals), infinity
static_assert(fp8_mag_bf16(false, 0x3c) == 0x3f80 && fp8_mag_bf16(false, 0x7b) == 0x4760 && fp8_mag_bf16(false, 1) == 0x3780 &&
                  fp8_mag_bf16(false, 3) == 0x3840 && fp8_mag_bf16(false, 0x7c) == 0x7f80, "e5m2");


// Columns [k0, k0 + kl) (k0 a multiple of 32) of the tile's two panels. A panel's codes are
// [K][16] bytes, so one 64-byte load is 4 columns: two table lookups give the low and high bytes
// of their bfloat16 values, the sign goes onto the high bytes, and one two-source byte permute
// per column pair interleaves them into a B tile row (16 lanes of (k, k+1) words). Beyond K the
// masked load reads code 0, value 0. 5 vector instructions per 64 weights (the float16 -> float32
// -> bfloat16 route took about 24).
template <bool E4M3>
void decode_fp8(const Fp8View& t, int64_t k0, int64_t kl, uint16_t* b) {
  const Fp8Bf16Table& tb = kFp8Table[E4M3 ? 1 : 0];
  const __m512i lo0 = _mm512_load_si512(tb.lo), lo1 = _mm512_load_si512(tb.lo + 64);
  const __m512i hi0 = _mm512_load_si512(tb.hi), hi1 = _mm512_load_si512(tb.hi + 64);
  const __m512i sign = _mm512_set1_epi8(char(0x80));
  const __m512i i0 = _mm512_load_si512(kPairRows.ix[0]), i1 = _mm512_load_si512(kPairRows.ix[1]);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* codes = t.codes + h * t.K * kQuantPanel;
    for (int64_t k = k0; k < k0 + kl; k += 4) {
      const int64_t n = k + 4 <= t.K ? 64 : (k < t.K ? (t.K - k) * 16 : 0);  // code bytes that exist
      const __m512i c = _mm512_maskz_loadu_epi8(n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1, codes + k * kQuantPanel);
      const __m512i lo = _mm512_permutex2var_epi8(lo0, c, lo1);
      const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, c, hi1), c, sign, 0xf8);  // hi | (c & 0x80)
      uint16_t* row = brow(b, k0, k, h);
      _mm512_storeu_si512(row, _mm512_permutex2var_epi8(lo, i0, hi));
      _mm512_storeu_si512(row + 32, _mm512_permutex2var_epi8(lo, i1, hi));
    }
  }
}

// One column tile's weights, decoded into B tiles by the format's decoder above; and its scales.
struct TileDecoder {
  const QuantProblem* q = nullptr;
  Int4View iv{};
  Fp8View fv{};
  const uint16_t* dense = nullptr;
  void set(const QuantProblem& qq, int64_t tile) {
    q = &qq;
    if (qq.format == WeightFormat::Dense) dense = reinterpret_cast<const uint16_t*>(qq.packed) + tile * 2 * qq.p->K * kDensePanel;
    else if (qq.format == WeightFormat::Int4) iv = int4_view(qq.packed, qq.int4, tile);
    else fv = fp8_view(qq.packed, qq.fp8, qq.fp8_format, tile);
  }
  // Columns [k, k + kl) of the weight (codes, and the scale block's scales and zero points)
  // into L2 ahead of decode: a chunk of a tile is a few short runs of each panel, too short for
  // the hardware prefetcher, so each decode waited on memory (half its time at M = 16).
  void prefetch(int64_t k, int64_t kl) const {
    const GemmProblem& p = *q->p;
    if (k >= p.K) return;
    if (k + kl > p.K) kl = p.K - k;
    const auto lines = [](const void* a, int64_t bytes) {
      for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(static_cast<const char*>(a) + o, 0, 2);
    };
    for (int h = 0; h < 2; ++h) {
      if (q->format == WeightFormat::Dense) {
        lines(dense + (h * p.K + k) * kDensePanel, kl * kDensePanel * 2);
      } else if (q->format == WeightFormat::Int4) {
        const int64_t C = iv.K / 8, g = k / iv.group;
        lines(iv.codes + (h * C + k / 8) * kQuantPanel * 4, kl / 8 * kQuantPanel * 4);
        lines(iv.scales + (h * iv.G + g) * kQuantPanel, 64);
        lines(iv.zeros + (h * iv.G + g) * kQuantPanel, 64);
      } else {
        lines(fv.codes + (h * fv.K + k) * kQuantPanel, kl * kQuantPanel);
        lines(fv.scales + (h * fv.SC + k / fv.bk) * kQuantPanel, 64);
      }
    }
  }
  // Columns [k, k + kl) into b, which holds the B tiles of columns from k on.
  // Scale block blk's scales of panel h (FP8 e4m3's times fp8f, which undoes the decoder's 2^-8).
  V scale(int h, int64_t blk, float fp8f) const {
    if (q->format == WeightFormat::Dense) return vset1(1.0f);
    if (q->format == WeightFormat::Int4) return vload(iv.scales + h * iv.G * kQuantPanel + blk * kQuantPanel);
    return vmul(vload(fv.scales + h * fv.SC * kQuantPanel + blk * kQuantPanel), vset1(fp8f));
  }
  void decode(int64_t k, int64_t kl, uint16_t* b) const {
    if (q->format == WeightFormat::Dense) decode_dense_bf16(dense, q->p->K, k, kl, b);
    else if (q->format == WeightFormat::Int4) decode_int4(iv, k, kl, b);
    else if (fv.e4m3) decode_fp8<true>(fv, k, kl, b);
    else decode_fp8<false>(fv, k, kl, b);
  }
};

struct Ctx {
  const QuantProblem* q = nullptr;
  const uint16_t* xa = nullptr;  // [P][Mp/16][Kp/32] tiles of 16 x 32
  int P = 3;
  int64_t m_base = 0, rows = 0;  // the rows of x in xa: [m_base, m_base + rows)
  int64_t Mp = 0, Kp = 0, blk = 0;  // Mp: rows rounded up to 16; blk: K columns per scale block, a multiple of 32
  int64_t ntiles = 0;
  bool amx = true;  // false: the AVX512-BF16 engine (dot_block) instead of the tiles
  // FP8 activations on the engine: xa holds the e4m3 values themselves, and either (one scale
  // per row) row m's sums are multiplied by row_scale[m] before the epilogue, or (one per row and
  // scale block: an FP8 weight's [bn, bk] blocks, whose bk the activations share) each scale
  // block's sums of row m by block_scale[m * units + block] with the weight's scale
  // (scale_add_rows). Both nullptr: x is x itself.
  const float* row_scale = nullptr;
  const float* block_scale = nullptr;
  int64_t units = 0;
  std::atomic<bool> failed{false};
};

// acc[m][n] (16 rows of 32 columns) += s[n] * (main[m][n] + small[m][n]) (small: P > 1 only).
template <int P>
inline void scale_add(float* acc, const float* cbuf, V s0, V s1) {
  for (int i = 0; i < 16; ++i) {
    V a = vload(cbuf + i * kTileN), b = vload(cbuf + i * kTileN + 16);
    if (P > 1) {
      a = vadd(a, vload(cbuf + 16 * kTileN + i * kTileN));
      b = vadd(b, vload(cbuf + 16 * kTileN + i * kTileN + 16));
    }
    vstore(acc + i * kTileN, vfma(a, s0, vload(acc + i * kTileN)));
    vstore(acc + i * kTileN + 16, vfma(b, s1, vload(acc + i * kTileN + 16)));
  }
}

// scale_add<1> with each row's own factor on top of the weight's scales: acc[i][n] +=
// (s[n] * xs[i * stride]) * part[i][n], for the block's live rows i < rows (the activations'
// scale of row i in this block).
inline void scale_add_rows(float* acc, const float* cbuf, V s0, V s1, const float* xs, int64_t stride, int64_t rows) {
  for (int64_t i = 0; i < rows; ++i) {
    const V x = vset1(xs[i * stride]);
    vstore(acc + i * kTileN, vfma(vload(cbuf + i * kTileN), vmul(s0, x), vload(acc + i * kTileN)));
    vstore(acc + i * kTileN + 16, vfma(vload(cbuf + i * kTileN + 16), vmul(s1, x), vload(acc + i * kTileN + 16)));
  }
}

// Scale block blkIdx's sums of rows m.. (`rows` live, m counted from c.m_base) into acc, with the
// weight's scales s0, s1, and with block-scaled activations (one piece of x only) the rows' own.
template <int P>
inline void add_block(const Ctx& c, float* acc, const float* cbuf, V s0, V s1, int64_t m, int64_t rows, int64_t blkIdx) {
  if (P == 1 && c.block_scale) scale_add_rows(acc, cbuf, s0, s1, c.block_scale + (c.m_base + m) * c.units + blkIdx, c.units, rows);
  else scale_add<P>(acc, cbuf, s0, s1);
}

// K columns [ka, kb) (multiples of 32) of rows m0..m0+15 against the chunk's B tiles. x's first
// piece goes into C tiles 0, 1 and the others (2^-8 of x and less) into C tiles 2, 3, added only
// at the end: each float32 sum is then as long as the block, as on the FMA kernels (one chain
// of 3b additions would triple the rounding bound; act-reference.ts derives it), and the small
// pieces' own roundings are 2^-8 of that. Results to cbuf: [16][32] main, then [16][32] small.
// Tile loads: P of x (alternating tiles 4 and 5) and 2 of the weight per 2P multiplies.
// next (when not null): after each 32 columns' multiplies are issued, the same columns of the
// next column tile are decoded into nb (its chunk buffer, columns from k0 on), on the vector
// units while the tile unit works through the multiplies. Decoded after all of this tile's
// multiplies instead, the two took turns: at M = 16 the decode was a third of the time.
// after (when not null): the tile after next, whose same columns are prefetched.
template <int P>
inline void tile_block(const Ctx& c, const uint16_t* b, int64_t k0, int64_t ka, int64_t kb, int64_t m0, float* cbuf,
                       const TileDecoder* next, uint16_t* nb, const TileDecoder* after) {
  _tile_zero(0);
  _tile_zero(1);
  if (P > 1) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const int64_t KS = c.Kp / 32, piece = c.Mp * c.Kp;
  const uint16_t* a = c.xa + (m0 / 16) * KS * 512;
  for (int64_t k = ka; k < kb; k += 32) {
    const uint16_t* bt = b + ((k - k0) / 32) * 2 * (kBTileBytes / 2);
    const uint16_t* ak = a + (k / 32) * 512;
    _tile_loadd(6, bt, 64);
    _tile_loadd(7, bt + kBTileBytes / 2, 64);
    _tile_loadd(4, ak, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (P > 1) {
      _tile_loadd(5, ak + piece, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    if (P > 2) {
      _tile_loadd(4, ak + 2 * piece, 64);
      _tile_dpbf16ps(2, 4, 6);
      _tile_dpbf16ps(3, 4, 7);
    }
    if (next) next->decode(k, 32, nb + ((k - k0) / 32) * 2 * (kBTileBytes / 2));
    if (after) after->prefetch(k, 32);
  }
  _tile_stored(0, cbuf, kTileN * 4);
  _tile_stored(1, cbuf + 16, kTileN * 4);
  if (P > 1) {
    _tile_stored(2, cbuf + 16 * kTileN, kTileN * 4);
    _tile_stored(3, cbuf + 16 * kTileN + 16, kTileN * 4);
  }
}

// tile_block without tiles, for CPUs with AVX512-BF16 and AVX512-VBMI (the decoders' byte
// permutes) and no AMX (AMD Zen 4 and 5; not Intel Cooper Lake, which lacks VBMI; the `avx512`
// ISA): the same A and B tiles, the same sums by VDPBF16PS, which multiplies bfloat16 pairs as
// TDPBF16PS does (each product exact in float32, the two added to the float32
// sum with round to nearest even; subnormal inputs read as zero, subnormal results flushed).
// Only x's first piece: it runs for bfloat16 x (P = 1), where the vector engine beats the
// AVX-512 FMA kernels (VDPBF16PS does 32 multiplies to an FMA's 16; three pieces of float32 x
// would cost three). Register tile: 8 rows x 32 columns (16 sums, 2 weight rows, a broadcast
// pair of x), twice per 16-row tile; rows past `live` are not computed (their cbuf rows are 0).
// Never inlined, as run_tile (gemm_driver_impl.h), so that the sums stay in registers.
__attribute__((noinline)) void dot_block(const Ctx& c, const uint16_t* b, int64_t k0, int64_t ka, int64_t kb, int64_t m0, int64_t live,
                                         float* cbuf) {
  const int64_t KS = c.Kp / 32;
  for (int half = 0; half < 2; ++half) {
    __m512 acc[8][2];
    if (half * 8 >= live) {
      for (int r = 0; r < 8; ++r) {
        vstore(cbuf + (half * 8 + r) * kTileN, vzero());
        vstore(cbuf + (half * 8 + r) * kTileN + 16, vzero());
      }
      continue;
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const uint16_t* a = c.xa + (m0 / 16) * KS * 512 + half * 8 * 32;
    for (int64_t k = ka; k < kb; k += 32) {
      const uint16_t* bt = b + ((k - k0) / 32) * 2 * (kBTileBytes / 2);
      const uint16_t* ak = a + (k / 32) * 512;
#pragma GCC unroll 2
      for (int i = 0; i < 16; ++i) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bt + i * 32);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bt + kBTileBytes / 2 + i * 32);
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
          int32_t pair;
          std::memcpy(&pair, ak + r * 32 + 2 * i, 4);
          const __m512bh xa = (__m512bh)_mm512_set1_epi32(pair);
          acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xa, b0);
          acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xa, b1);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      vstore(cbuf + (half * 8 + r) * kTileN, acc[r][0]);
      vstore(cbuf + (half * 8 + r) * kTileN + 16, acc[r][1]);
    }
  }
}

// acc's `rows` rows (kTileN columns each) times their rows' scales rs[0..rows): y = s x sum, one
// rounding, before the epilogue adds the bias and the low-rank terms.
inline void scale_rows(float* acc, const float* rs, int64_t rows) {
  for (int64_t i = 0; i < rows; ++i) {
    const V s = vset1(rs[i]);
    vstore(acc + i * kTileN, vmul(vload(acc + i * kTileN), s));
    vstore(acc + i * kTileN + 16, vmul(vload(acc + i * kTileN + 16), s));
  }
}

// Rows m0.. (`rows` of them, 1..16) of the accumulator through the epilogue.
template <int R = 16>
inline void store_rows(int rows, const float* acc, const TileOut& o, int64_t m0, int64_t n0, int ncols) {
  if constexpr (R > 1) {
    if (rows < R) return store_rows<R - 1>(rows, acc, o, m0, n0, ncols);
  }
  V v[R][2];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    v[i][0] = vload(acc + i * kTileN);
    v[i][1] = vload(acc + i * kTileN + 16);
  }
  store_tile<R, 2>(v, o, m0, n0, ncols);
}

// The accumulators of tgn column tiles (kMc rows apart): only the block's mr rows, rounded up to
// whole row tiles (the whole kMc rows were a 512 KiB memset per tile group at M = 16).
inline void zero_acc(float* acc, int64_t tgn, int64_t mr) {
  for (int64_t ti = 0; ti < tgn; ++ti) std::memset(acc + ti * kMc * kTileN, 0, size_t((mr + 15) / 16 * 16) * kTileN * 4);
}

// The AVX512-BF16 engine for one row tile (at most 16 rows: nothing to reuse a decoded tile for):
// tile by tile over the whole of K, each scale block (in pieces of at most kChunkK columns)
// decoded into b just before its multiplies.
// Each panel's codes are then read in order, long runs the hardware prefetcher follows; in
// chunks of 512 columns, tile after tile (as the row blocks need), the decoder waited on memory
// for most of its time (perf at M = 16: the code loads, half the kernel's time).
inline void dot_one_row_tile(const Ctx& c, int64_t t0, int64_t t1, int64_t mc0, int64_t mr, uint16_t* b, float* acc, float* cbuf,
                             const TileOut& o, float fp8f) {
  const QuantProblem& q = *c.q;
  const GemmProblem& p = *q.p;
  for (int64_t t = t0; t < t1; ++t) {
    TileDecoder cur;
    cur.set(q, t);
    zero_acc(acc, 1, mr);
    for (int64_t ka = 0; ka < c.Kp; ka += c.blk) {
      const int64_t kb = ka + c.blk < c.Kp ? ka + c.blk : c.Kp, blkIdx = ka / c.blk;
      // a block longer than the buffer (a per-channel scale) in pieces: their float32 sums are
      // added into the first one's before the scale (the sums of exact products, added in
      // another order)
      for (int64_t pa = ka; pa < kb; pa += kChunkK) {
        const int64_t pb = pa + kChunkK < kb ? pa + kChunkK : kb;
        cur.decode(pa, pb - pa, b);
        dot_block(c, b, pa, pa, pb, mc0, mr, pa == ka ? cbuf : cbuf + 16 * kTileN);
        if (pa != ka)
          for (int i = 0; i < 16 * kTileN; i += 16) vstore(cbuf + i, vadd(vload(cbuf + i), vload(cbuf + 16 * kTileN + i)));
      }
      add_block<1>(c, acc, cbuf, cur.scale(0, blkIdx, fp8f), cur.scale(1, blkIdx, fp8f), mc0, mr, blkIdx);
    }
    const int64_t n0 = t * kTileN;
    if (c.row_scale) scale_rows(acc, c.row_scale + c.m_base + mc0, mr);
    store_rows(int(mr), acc, o, c.m_base + mc0, n0, p.N - n0 < kTileN ? int(p.N - n0) : kTileN);
  }
}

// Per thread, its column tiles [t0, t1), loops from the outside in:
//   blocks of kMc rows of x (their pieces, kMc x chunk x P, stay in L2 while the tiles pass),
//   groups of kTg column tiles (their accumulators, kMc x kTg x 32 float32, in L2),
//   chunks of K (each tile's B tiles decoded once per row block: 12% more decode at most),
//   the tiles of the group, the scale blocks of the chunk, row pairs of the block.
// (Tile by tile over all of K, every tile streamed all of x's pieces from L3: one 1 KiB A tile
// per two tile multiplies, more than L3 delivers.)
template <int P, bool AMX>
void run_tiles(Ctx& c, int64_t t0, int64_t t1) {
  static_assert(AMX || P == 1, "the AVX512-BF16 engine takes one piece of x");
  const QuantProblem& q = *c.q;
  const GemmProblem& p = *q.p;
  const int64_t chunk = c.blk < kChunkK ? kChunkK / c.blk * c.blk : kChunkK;
  // two chunk buffers: the tile being multiplied, and the next one being decoded
  uint16_t* b = static_cast<uint16_t*>(thread_scratch(3, 2 * size_t(chunk) * kTileN * 2));
  float* acc = static_cast<float*>(thread_scratch(0, (size_t(kMc) * kTg + 32) * kTileN * 4));  // + cbuf
  if (!b || !acc) {
    c.failed.store(true);
    return;
  }
  float* cbuf = acc + kMc * kTg * kTileN;
  TileOut o = whole_k_out(p);
  const float fp8f = q.format == WeightFormat::Fp8 && q.fp8_format == Fp8Format::E4M3 ? fp8_scale_factor<true>() : 1.0f;
  if (AMX) configure_tiles();
  for (int64_t mc0 = 0; mc0 < c.rows; mc0 += kMc) {
    const int64_t mr = c.rows - mc0 < kMc ? c.rows - mc0 : kMc;
    if (!AMX && mr <= 16) {
      dot_one_row_tile(c, t0, t1, mc0, mr, b, acc, cbuf, o, fp8f);
      continue;
    }
    for (int64_t tg0 = t0; tg0 < t1; tg0 += kTg) {
      const int64_t tgn = t1 - tg0 < kTg ? t1 - tg0 : kTg;
      zero_acc(acc, tgn, mr);
      for (int64_t k0 = 0; k0 < c.Kp; k0 += chunk) {
        const int64_t kl = c.Kp - k0 < chunk ? c.Kp - k0 : chunk;
        TileDecoder cur, nxt, aft;
        cur.set(q, tg0);
        if (tgn > 1) {
          nxt.set(q, tg0 + 1);
          nxt.prefetch(k0, kl);
        }
        cur.decode(k0, kl, b);
        for (int64_t ti = 0; ti < tgn; ++ti) {
          uint16_t* bc = b + (ti & 1) * chunk * kTileN;
          uint16_t* bn = b + ((ti + 1) & 1) * chunk * kTileN;
          const bool has_next = ti + 1 < tgn, has_after = ti + 2 < tgn;
          if (has_next) nxt.set(q, tg0 + ti + 1);
          if (has_after) aft.set(q, tg0 + ti + 2);
          float* at = acc + ti * kMc * kTileN;
          // the scale blocks inside the chunk: [ka, kb), block blkIdx
          for (int64_t ka = k0; ka < k0 + kl;) {
            const int64_t blkIdx = ka / c.blk;
            const int64_t kb = (blkIdx + 1) * c.blk < k0 + kl ? (blkIdx + 1) * c.blk : k0 + kl;
            const V s[2] = {cur.scale(0, blkIdx, fp8f), cur.scale(1, blkIdx, fp8f)};
            for (int64_t m0 = mc0; m0 < mc0 + mr; m0 += 16) {
              // the next tile's columns [ka, kb) are decoded during the first row tile's multiplies,
              // and the tile after it prefetched
              const bool first = m0 == mc0;
              if constexpr (AMX) {
                tile_block<P>(c, bc, k0, ka, kb, m0, cbuf, has_next && first ? &nxt : nullptr, bn, has_after && first ? &aft : nullptr);
              } else {
                dot_block(c, bc, k0, ka, kb, m0, mc0 + mr - m0, cbuf);
                if (first && has_next) nxt.decode(ka, kb - ka, bn + ((ka - k0) / 32) * 2 * (kBTileBytes / 2));
                if (first && has_after) aft.prefetch(ka, kb - ka);
              }
              add_block<P>(c, at + (m0 - mc0) * kTileN, cbuf, s[0], s[1], m0, mc0 + mr - m0 < 16 ? mc0 + mr - m0 : 16, blkIdx);
            }
            ka = kb;
          }
          cur = nxt;
        }
      }
      for (int64_t ti = 0; ti < tgn; ++ti) {
        const int64_t n0 = (tg0 + ti) * kTileN;
        const int ncols = p.N - n0 < kTileN ? int(p.N - n0) : kTileN;
        if (c.row_scale) scale_rows(acc + ti * kMc * kTileN, c.row_scale + c.m_base + mc0, mr);
        for (int64_t m0 = 0; m0 < mr; m0 += 16)
          store_rows(mr - m0 < 16 ? int(mr - m0) : 16, acc + (ti * kMc + m0) * kTileN, o, c.m_base + mc0 + m0, n0, ncols);
      }
    }
  }
  if (AMX) _tile_release();
}

void task(void* vctx, int t, int nt) {
  Ctx& c = *static_cast<Ctx*>(vctx);
  const int64_t t0 = c.ntiles * t / nt, t1 = c.ntiles * (t + 1) / nt;
  if (t0 >= t1) return;
  if (!c.amx) run_tiles<1, false>(c, t0, t1);
  else if (c.P == 1) run_tiles<1, true>(c, t0, t1);
  else if (c.P == 2) run_tiles<2, true>(c, t0, t1);
  else run_tiles<3, true>(c, t0, t1);
}

// x (float32 [M, K]) -> P bfloat16 pieces in A tiles (Ctx::xa), zero-padded.
void split_x(const float* x, int64_t M, int64_t K, int P, int64_t Mp, int64_t Kp, uint16_t* xa) {
  const int64_t piece = Mp * Kp, KS = Kp / 32;
  for (int64_t m = 0; m < Mp; ++m) {
    for (int64_t k = 0; k < Kp; k += 16) {
      const int n = m >= M || k >= K ? 0 : (K - k < 16 ? int(K - k) : 16);
      const V v = n == 16 ? vload(x + m * K + k) : n > 0 ? vload_n(x + m * K + k, n) : vzero();
      V r = v;
      for (int i = 0; i < P; ++i) {
        const __m256bh h = _mm512_cvtneps_pbh(r);
        uint16_t* dst = xa + i * piece + ((m / 16) * KS + k / 32) * 512 + (m % 16) * 32 + k % 32;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), (__m256i)h);
        const V hv = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
        // the remainder, exact; 0 where the piece is infinite or NaN (x itself carries it)
        r = _mm512_maskz_sub_ps(_mm512_cmp_ps_mask(vsub(hv, hv), vzero(), _CMP_EQ_OQ), r, hv);
      }
    }
  }
}

// ---- INT4 weights with int8 activations: AMX-INT8 ----------------------------------------------
//
// The AVX512-VNNI kernel's arithmetic (isa/avx512/int4_vnni.cc) on tiles: per group the exact
// int32 sum I = sum q_x q_w (TDPBSUD: signed x bytes times unsigned code bytes; the code is q
// itself, 0..15, so the low nibbles of a lane word are four columns' bytes and the high nibbles
// the next four: no decode beyond an AND and a shift), then acc = fma(fnmadd(z, X, float(I)), s,
// acc) over the groups in order, X the group's sum of q_x, and the row scale in the epilogue:
// the same operations in the same order, so the result is the VNNI kernel's bit for bit
// (linear.amx.test.ts compares them).
//   A: x8 in tiles of 16 rows x ks columns (ks = 32 for groups of 32, else 64), tile-contiguous.
//   B: per ks columns and panel, ks / 4 rows of 64 bytes (16 lanes x 4 consecutive columns).
//   C: int32; tiles 0, 1 rows 0-15 and 2, 3 rows 16-31 of a 32 x 32 block (columns 0-15, 16-31).

struct CtxI8 {
  const QuantProblem* q = nullptr;
  const int8_t* xa = nullptr;
  const float* sx = nullptr;
  const float* xsum = nullptr;  // [M][G]
  int64_t Mp = 0, Kp = 0, ks = 64, blk = 0, chunk = 0, ntiles = 0;
  std::atomic<bool> failed{false};
};

inline void configure_tiles_i8(int ks) {
  alignas(64) uint8_t cfg[64] = {};
  cfg[0] = 1;
  for (int i = 0; i < 4; ++i) {  // C
    cfg[16 + 2 * i] = 64;
    cfg[48 + i] = 16;
  }
  for (int i = 4; i < 6; ++i) {  // A: 16 rows of ks bytes
    cfg[16 + 2 * i] = uint8_t(ks);
    cfg[48 + i] = 16;
  }
  for (int i = 6; i < 8; ++i) {  // B: ks / 4 rows of 64 bytes
    cfg[16 + 2 * i] = 64;
    cfg[48 + i] = uint8_t(ks / 4);
  }
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
}

// Columns [k0, k0 + kl) of the column tile's two panels as B tiles (zeros beyond K).
void decode_int4_u8(const Int4View& t, int64_t k0, int64_t kl, int64_t ks, uint8_t* b) {
  const int64_t C = t.K / 8, tb = ks / 4 * 64;
  const __m512i nib = _mm512_set1_epi8(0x0f);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* codes = t.codes + h * C * kQuantPanel * 4;
    for (int64_t c = k0 / 8; c < (k0 + kl) / 8; ++c) {
      const int64_t kk = 8 * c - k0;
      uint8_t* row = b + ((kk / ks) * 2 + h) * tb + ((kk % ks) / 4) * 64;
      __m512i lo = _mm512_setzero_si512(), hi = lo;
      if (c < C) {
        const __m512i w = _mm512_loadu_si512(codes + c * kQuantPanel * 4);
        lo = _mm512_and_si512(w, nib);
        hi = _mm512_and_si512(_mm512_srli_epi32(w, 4), nib);
      }
      _mm512_storeu_si512(row, lo);
      _mm512_storeu_si512(row + 64, hi);
    }
  }
}

template <bool TWO>
inline void tile_block_i8(const CtxI8& c, const uint8_t* b, int64_t k0, int64_t ka, int64_t kb, int64_t m0, int32_t* cbuf) {
  _tile_zero(0);
  _tile_zero(1);
  if (TWO) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const int64_t KS = c.Kp / c.ks, tb = c.ks / 4 * 64, at = 16 * c.ks;
  const int8_t* a = c.xa + (m0 / 16) * KS * at;
  for (int64_t k = ka; k < kb; k += c.ks) {
    const uint8_t* bt = b + ((k - k0) / c.ks) * 2 * tb;
    _tile_loadd(6, bt, 64);
    _tile_loadd(7, bt + tb, 64);
    _tile_loadd(4, a + (k / c.ks) * at, c.ks);
    _tile_dpbsud(0, 4, 6);
    _tile_dpbsud(1, 4, 7);
    if (TWO) {
      _tile_loadd(5, a + KS * at + (k / c.ks) * at, c.ks);
      _tile_dpbsud(2, 5, 6);
      _tile_dpbsud(3, 5, 7);
    }
  }
  _tile_stored(0, cbuf, kTileN * 4);
  _tile_stored(1, cbuf + 16, kTileN * 4);
  if (TWO) {
    _tile_stored(2, cbuf + 16 * kTileN, kTileN * 4);
    _tile_stored(3, cbuf + 16 * kTileN + 16, kTileN * 4);
  }
}

// acc (rows x 32) = fma(fnmadd(z, X_row, float(I)), s, acc), as the VNNI kernel.
inline void group_add_i8(float* acc, const int32_t* cbuf, int rows, const float* xsum, int64_t G, V s0, V s1, V z0, V z1) {
  for (int i = 0; i < rows; ++i) {
    const V X = vbcast(xsum + i * G);
    const V d0 = _mm512_cvtepi32_ps(_mm512_loadu_si512(cbuf + i * kTileN));
    const V d1 = _mm512_cvtepi32_ps(_mm512_loadu_si512(cbuf + i * kTileN + 16));
    vstore(acc + i * kTileN, vfma(_mm512_fnmadd_ps(z0, X, d0), s0, vload(acc + i * kTileN)));
    vstore(acc + i * kTileN + 16, vfma(_mm512_fnmadd_ps(z1, X, d1), s1, vload(acc + i * kTileN + 16)));
  }
}

void task_i8(void* vctx, int t, int nt) {
  CtxI8& c = *static_cast<CtxI8*>(vctx);
  const int64_t t0 = c.ntiles * t / nt, t1 = c.ntiles * (t + 1) / nt;
  if (t0 >= t1) return;
  const QuantProblem& q = *c.q;
  const GemmProblem& p = *q.p;
  const int64_t G = q.int4.groups(), group = q.int4.group;
  uint8_t* b = static_cast<uint8_t*>(thread_scratch(3, size_t(c.chunk) * kTileN));
  float* acc = static_cast<float*>(thread_scratch(0, (size_t(kMc) * kTg + 32) * kTileN * 4));
  if (!b || !acc) {
    c.failed.store(true);
    return;
  }
  int32_t* cbuf = reinterpret_cast<int32_t*>(acc + kMc * kTg * kTileN);
  TileOut o = whole_k_out(p);
  o.row_scale = c.sx;
  configure_tiles_i8(int(c.ks));
  for (int64_t mc0 = 0; mc0 < p.M; mc0 += kMc) {
    const int64_t mr = p.M - mc0 < kMc ? p.M - mc0 : kMc;
    for (int64_t tg0 = t0; tg0 < t1; tg0 += kTg) {
      const int64_t tgn = t1 - tg0 < kTg ? t1 - tg0 : kTg;
      zero_acc(acc, tgn, mr);
      for (int64_t k0 = 0; k0 < c.Kp; k0 += c.chunk) {
        const int64_t kl = c.Kp - k0 < c.chunk ? c.Kp - k0 : c.chunk;
        for (int64_t ti = 0; ti < tgn; ++ti) {
          const Int4View iv = int4_view(q.packed, q.int4, tg0 + ti);
          decode_int4_u8(iv, k0, kl, c.ks, b);
          float* at = acc + ti * kMc * kTileN;
          for (int64_t ka = k0; ka < k0 + kl; ka += c.blk) {  // whole groups: the chunk holds whole groups
            const int64_t g = ka / group < G ? ka / group : G - 1;
            const int64_t kb = ka + c.blk < k0 + kl ? ka + c.blk : k0 + kl;
            const V s0 = vload(iv.scales + g * kQuantPanel), s1 = vload(iv.scales + iv.G * kQuantPanel + g * kQuantPanel);
            const V z0 = vload(iv.zeros + g * kQuantPanel), z1 = vload(iv.zeros + iv.G * kQuantPanel + g * kQuantPanel);
            for (int64_t m0 = mc0; m0 < mc0 + mr; m0 += 32) {
              const int rows = mc0 + mr - m0 > 16 ? 32 : 16;
              if (rows == 32) tile_block_i8<true>(c, b, k0, ka, kb, m0, cbuf);
              else tile_block_i8<false>(c, b, k0, ka, kb, m0, cbuf);
              const int valid = mc0 + mr - m0 < rows ? int(mc0 + mr - m0) : rows;
              group_add_i8(at + (m0 - mc0) * kTileN, cbuf, valid, c.xsum + m0 * G + g, G, s0, s1, z0, z1);
            }
          }
        }
      }
      for (int64_t ti = 0; ti < tgn; ++ti) {
        const int64_t n0 = (tg0 + ti) * kTileN;
        const int ncols = p.N - n0 < kTileN ? int(p.N - n0) : kTileN;
        for (int64_t m0 = 0; m0 < mr; m0 += 16)
          store_rows(mr - m0 < 16 ? int(mr - m0) : 16, acc + (ti * kMc + m0) * kTileN, o, mc0 + m0, n0, ncols);
      }
    }
  }
  _tile_release();
}

}  // namespace

bool amx_permitted() {
  // Linux hands out the tile registers only to a process that asks (ARCH_REQ_XCOMP_PERM for
  // XFEATURE_XTILEDATA); it refuses when, e.g., a thread's signal stack is too small for them.
  static const bool ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return ok;
}

bool int4_int8_linear(const QuantProblem& q) {
  const GemmProblem& p = *q.p;
  if (p.M < (tuning().amx_m > 0 ? tuning().amx_m : kI8FromM)) return avx512vnni::int4_int8_linear(q);
  const avx512vnni::Int8Rows r = avx512vnni::int8_rows(q);
  if (!r.buf) return false;
  CtxI8 c;
  c.q = &q;
  c.sx = r.sx;
  c.xsum = r.xsum;
  const int64_t group = q.int4.group;
  c.ks = group < 64 ? 32 : 64;
  c.Kp = (p.K + c.ks - 1) / c.ks * c.ks;
  c.blk = group >= p.K ? c.Kp : group;
  c.chunk = c.blk <= 1024 ? 1024 / c.blk * c.blk : c.blk;  // whole groups (per channel: all of K)
  c.Mp = (p.M + 15) / 16 * 16;
  c.ntiles = (p.N + kTileN - 1) / kTileN;
  int8_t* xa = static_cast<int8_t*>(thread_scratch(1, size_t(c.Mp) * size_t(c.Kp)));
  if (!xa) {
    aligned_free_bytes(r.buf);
    return false;
  }
  // x8 [M][K] -> A tiles of 16 rows x ks columns, zero-padded
  const int64_t KS = c.Kp / c.ks;
  for (int64_t m = 0; m < c.Mp; ++m)
    for (int64_t s = 0; s < KS; ++s) {
      int8_t* dst = xa + ((m / 16) * KS + s) * 16 * c.ks + (m % 16) * c.ks;
      const int64_t k0 = s * c.ks, n = m < p.M ? (p.K - k0 < c.ks ? p.K - k0 : c.ks) : 0;
      if (n > 0) std::memcpy(dst, r.x8 + m * p.K + k0, size_t(n));
      if (n < c.ks) std::memset(dst + (n > 0 ? n : 0), 0, size_t(c.ks - (n > 0 ? n : 0)));
    }
  c.xa = xa;
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = c.ntiles < threads ? int(c.ntiles) : threads;
  parallel_for(ntasks, threads, task_i8, &c);
  aligned_free_bytes(r.buf);
  return !c.failed.load();
}

namespace {
// The bfloat16 tiles for q (INT4, FP8, or a dense bfloat16 weight as format Dense): 1 done, 0 out
// of memory, -1 not this kernel's case (few rows, or scale blocks not whole tiles of 32 columns).
int bf16_tiles(const QuantProblem& q, bool amx) {
  const GemmProblem& p = *q.p;
  // K columns per scale block (an INT4 group, an FP8 K block); one block when it covers K.
  int64_t blk = q.format == WeightFormat::Int4 ? q.int4.group : q.format == WeightFormat::Fp8 ? q.fp8.bk : p.K;
  const int64_t Kp = (p.K + 31) / 32 * 32;
  if (blk >= p.K) blk = Kp;
  int P = 3;  // bfloat16 pieces of x
  if (q.act == ActQuant::None && p.xdt == DType::BF16) P = 1;
  else if (q.act == ActQuant::None && p.xdt == DType::F16) P = 2;
  // FP8 activations with one scale per row, on the engine: the e4m3 values are one bfloat16
  // piece, exactly, and the scale goes on each row's sums (scale_rows). (The AMX tiles keep
  // three pieces of x' = value x scale: not yet measured on an AMX CPU.)
  const bool row_scaled = !amx && q.act == ActQuant::Fp8 && (q.act_block <= 0 || q.act_block >= p.K);
  // ... and block-scaled FP8 activations whose blocks are the weight's scale blocks: their scale
  // goes on each block's sums with the weight's
  const bool block_scaled = !amx && q.act == ActQuant::Fp8 && !row_scaled && q.act_block == blk;
  if (row_scaled || block_scaled) P = 1;
  if (!amx && P != 1) return -1;  // the AVX512-BF16 engine: bfloat16 x only
  const int64_t from_m = tuning().amx_m > 0 ? tuning().amx_m
                         : !amx ? (q.format == WeightFormat::Dense ? kDotDenseFromM : q.format == WeightFormat::Int4 ? kDotInt4FromM : kDotFp8FromM)
                                : (q.format == WeightFormat::Dense ? kAmxDenseFromM : kAmxFromM)[P];
  if (p.M < from_m || blk % 32 != 0) return -1;
  // x as float32, quantized (act) and permuted (act-order) as the AVX-512 kernels take it.
  const float* x;
  float* act_scale = nullptr;
  const int64_t units = block_scaled ? (p.K + blk - 1) / blk : 1;
  if (q.act != ActQuant::None) {
    // x' (or the e4m3 values), a row of scratch, and the activations' scales
    float* buf = static_cast<float*>(thread_scratch(2, (size_t((p.M + 1) * p.K) + size_t(p.M * units)) * sizeof(float)));
    if (!buf) return 0;
    if (row_scaled || block_scaled) act_scale = buf + (p.M + 1) * p.K;
    quantize_act(p, q.perm, q.act, q.act_block, buf, buf + p.M * p.K, act_scale);
    x = buf;
  } else {
    x = quant_prepare_x(q);
    if (!x) return 0;
  }
  const int64_t super = p.M < kSuperRows ? p.M : kSuperRows;
  uint16_t* xa = static_cast<uint16_t*>(thread_scratch(1, size_t(P) * size_t((super + 15) / 16 * 16) * size_t(Kp) * 2));
  if (!xa) return 0;
  Ctx c;
  c.q = &q;
  c.xa = xa;
  c.P = P;
  c.Kp = Kp;
  c.blk = blk;
  c.ntiles = (p.N + kTileN - 1) / kTileN;
  c.amx = amx;
  c.row_scale = row_scaled ? act_scale : nullptr;
  c.block_scale = block_scaled ? act_scale : nullptr;
  c.units = units;
  const int threads = p.threads < 1 ? 1 : p.threads;
  const int ntasks = c.ntiles < threads ? int(c.ntiles) : threads;
  for (int64_t m0 = 0; m0 < p.M && !c.failed.load(); m0 += super) {
    c.m_base = m0;
    c.rows = p.M - m0 < super ? p.M - m0 : super;
    c.Mp = (c.rows + 15) / 16 * 16;
    split_x(x + m0 * p.K, c.rows, p.K, P, c.Mp, Kp, xa);
    parallel_for(ntasks, threads, task, &c);
  }
  return c.failed.load() ? 0 : 1;
}
}  // namespace

bool quant_linear(const QuantProblem& q) {
  const int r = bf16_tiles(q, true);
  return r < 0 ? avx512::quant_linear(q) : r == 1;
}

namespace {
int dense_bf16_tiles(const GemmProblem& p, const void* wpacked, bool amx) {
  QuantProblem q;
  q.p = &p;
  q.format = WeightFormat::Dense;
  q.packed = static_cast<const uint8_t*>(wpacked);
  return bf16_tiles(q, amx);
}
}  // namespace

bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt) {
  if (wdt == DType::BF16) {
    const int r = dense_bf16_tiles(p, wpacked, true);
    if (r >= 0) return r == 1;
  }
  return avx512::dense_linear(p, wpacked, wdt);
}

}  // namespace amx

namespace avx512bf16 {
int quant_linear(const QuantProblem& q) { return amx::bf16_tiles(q, false); }
int dense_linear(const GemmProblem& p, const void* wpacked, DType wdt) {
  return wdt == DType::BF16 ? amx::dense_bf16_tiles(p, wpacked, false) : -1;
}
}  // namespace avx512bf16
}  // namespace cg
#endif
