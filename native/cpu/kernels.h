// The CPU kernels' one entry point per operation, and the per-ISA implementations behind it.
//
// Each ISA lives in its own translation units, compiled with that ISA's flags (binding.gyp builds
// them as separate static libraries). Rules for those files, so no AVX-512 code can leak into a
// baseline path through the linker's choice among duplicate inline functions:
//   - everything sits in namespace cg::<isa>, helpers in an anonymous namespace inside it;
//   - small helpers in shared headers are `static inline` (each TU gets its own copy);
//   - no STL containers or algorithms, no templates shared with other TUs except the
//     ISA-specific ones in cpu/impl/simd_<isa>.h (whose types differ per ISA) and the plain-C-like
//     helpers of cg/dtype.h (only called from baseline code; kernels convert with intrinsics
//     or with their own static helpers).
// The templates shared by the vector ISAs (simd_<isa>.h, convert_impl.h, gemm_tile_impl.h,
// gemm_driver_impl.h, dense_impl.h, sparse24_impl.h) are textually included inside each ISA's
// namespace for that reason: each ISA gets its own copy, compiled with its own flags.
#pragma once
#include <cstdint>
#include "cg/dtype.h"
#include "cg/weight.h"
#include "cpu/layout/fp8.h"

namespace cg {

// Amx: the AVX-512 kernels, and AMX-BF16 tiles for INT4 / FP8 weights with float activations
// from a few rows of x on (isa/amx/quant_amx.cc). Avx512 on a CPU with AVX512-BF16 and VBMI
// runs bfloat16 x through that file's AVX512-BF16 engine (namespace avx512bf16 below).
enum class Isa : int32_t { Scalar = 0, Avx2 = 1, Avx512 = 2, Amx = 3 };

// ---- Dense weights, CPU packed layout --------------------------------------------------------
// The weight W [N, K] (row-major, torch.nn.Linear.weight) is stored in panels of 16 output rows:
//   element (n, k) lives at index ((n / 16) * K + k) * 16 + (n % 16)
// with N padded up to a multiple of 32 by zero rows (the AVX-512 kernel reads two panels at once).
// One layout for every ISA, so a weight packed once serves the scalar, AVX2 and AVX-512 kernels.
constexpr int kDensePanel = 16;
constexpr int kDenseNAlign = 32;
static inline int64_t dense_padded_rows(int64_t N) { return (N + kDenseNAlign - 1) / kDenseNAlign * kDenseNAlign; }
static inline int64_t dense_packed_elems(int64_t N, int64_t K) { return dense_padded_rows(N) * K; }
void dense_pack(const void* w, DType dt, int64_t N, int64_t K, void* packed);
void dense_unpack(const void* packed, DType dt, int64_t N, int64_t K, void* w);

// ---- 2:4 sparse weights: the CPU layout of cpu/layout/sparse24.h (panels of 16 rows,
// superblocks of 32 columns), made from the canonical format by sparse24_pack.

// ---- Low-rank terms added in a kernel's epilogue (fused LoRA, many adapters per batch) ------
// y[m][n] += sum_j t[m][j] * B_a[n][j] for row m's adapter a (t already holds alpha * x_m · A_aᵀ).
// Each B_a is packed like a dense float32 weight of shape [N, r_a]: element (n, j) at
// ((n / 16) * r_a + j) * 16 + n % 16, N padded to a multiple of 32 with zero rows.
struct LoraEpilogue {
  const float* t = nullptr;             // [M][tstride]
  int64_t tstride = 0;
  const int32_t* row_adapter = nullptr; // [M] adapter of each row, -1 for none; nullptr: adapter 0 for all
  const float* const* b = nullptr;      // per adapter: its packed B
  const int32_t* rank = nullptr;        // per adapter: r_a
};

// ---- One linear problem: y = x . W^T (+ bias) ------------------------------------------------
struct GemmProblem {
  const void* x = nullptr;      // [M, K] row-major, dtype xdt (16-bit types as raw bits)
  DType xdt = DType::F32;
  int64_t M = 0, N = 0, K = 0;
  const float* bias = nullptr;  // [N] float32, or nullptr
  void* y = nullptr;            // [M, N] row-major, dtype ydt; every element is written, none read first
  DType ydt = DType::F32;
  int threads = 1;              // how many threads may work on it (caller included)
  const LoraEpilogue* lora = nullptr;  // low-rank terms to add (after the bias), or nullptr
};

// Block sizes the kernels would otherwise pick (0 = pick). Only for tuning experiments
// (COMPRESSED_GEMM_TUNE="mc=..,kc=..,nc=.."), read once by dispatch.cc.
struct Tuning {
  int64_t mc = 0, kc = 0, nc = 0;
  int64_t sparse_m = 0;  // 2:4: rows of x from which the M-vectorised kernel is used
  int64_t amx_m = 0;     // ISA amx: rows of x from which the tile kernels run (every format); and avx512's AVX512-BF16 engine
};
const Tuning& tuning();

// Every kernel returns false when it could not allocate its scratch memory (and then has not
// finished writing y); the binding turns that into an out-of-memory error.
bool dense_linear(Isa isa, const GemmProblem& p, const void* wpacked, DType wdt);
bool sparse24_linear(Isa isa, const GemmProblem& p, const void* packed, DType wdt);

// ---- INT4 and FP8 weights (the CPU layouts of cpu/layout/int4.h, cpu/layout/fp8.h) ------------------------
enum class ActQuant : int32_t { None = 0, Fp8 = 1, Int8 = 2 };

struct QuantProblem {
  const GemmProblem* p = nullptr;
  WeightFormat format = WeightFormat::Int4;  // Int4 or Fp8
  const uint8_t* packed = nullptr;
  Int4Dims int4{};                 // kind Int4
  const int32_t* perm = nullptr;   // INT4 act-order: the layout's column c is x's column perm[c]
  bool int4_symmetric = false;     // INT4: every zero point is 8 (WeightDesc::symmetric)
  Fp8Dims fp8{};                   // kind Fp8
  Fp8Format fp8_format = Fp8Format::E4M3;
  ActQuant act = ActQuant::None;   // quantize x first (act_quant.h has the rules)
  int64_t act_block = 0;           // fp8 activations: K columns per scale (0: one per row)
};

// Picks the kernel: int8 activations with an INT4 weight run on AVX512-VNNI where the CPU has
// it (int4_vnni_avx512.cc); otherwise quantized activations are dequantized to float32 first
// (act_quant.h) and the ISA's float kernels run.
bool quant_linear(Isa isa, const QuantProblem& q);

// The CPU backend's one dispatch table: the kernel for (weight format, activation mode, ISA),
// each choice with its reason in dispatch.cc. w.data is the weight's CPU placement.
bool linear(Isa isa, const GemmProblem& p, const WeightDesc& w, ActQuant act, int64_t act_block);

namespace amx {
bool quant_linear(const QuantProblem& q);  // from kAmxFromM rows (by x's dtype); fewer go to avx512::quant_linear
// Dense bfloat16 weights on the same tiles (products exact: the weight is bfloat16 already);
// other dtypes and fewer rows go to avx512::dense_linear.
bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
// INT4 with int8 activations on AMX-INT8 (the CPU has AMX-INT8 and AVX512-VNNI); fewer rows go
// to avx512vnni::int4_int8_linear, whose results it reproduces bit for bit.
bool int4_int8_linear(const QuantProblem& q);
// Whether Linux let this process use the tile registers (asked once, on first call).
bool amx_permitted();
}  // namespace amx

// The AMX kernels' bfloat16 path without tiles (isa/amx/quant_amx.cc, dot_block): for the
// avx512 ISA on CPUs with AVX512-BF16 and AVX512-VBMI (AMD Zen 4 and 5), bfloat16 x with INT4,
// FP8 or dense bfloat16 weights, from a few rows of x. 1 done, 0 out of memory, -1 not this
// kernel's case (the caller runs avx512::).
namespace avx512bf16 {
int quant_linear(const QuantProblem& q);
int dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
}  // namespace avx512bf16

namespace avx512vnni {
bool int4_int8_linear(const QuantProblem& q);  // q.format == Int4, q.act == Int8
// x quantized to int8 per row as that kernel takes it (act_quant.h): x8 [M][K] (columns in the
// weight's order), the row scales sx [M] and the group sums of q_x, xsum [M][G] (exact integers
// as float32), in one buffer; buf null when out of memory (else free it: aligned_free_bytes).
struct Int8Rows {
  void* buf = nullptr;
  int8_t* x8 = nullptr;
  float* sx = nullptr;
  float* xsum = nullptr;
};
Int8Rows int8_rows(const QuantProblem& q);
}  // namespace avx512vnni

namespace scalar {
bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt);
bool quant_linear(const QuantProblem& q);
}  // namespace scalar
namespace avx2 {
bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt);
bool quant_linear(const QuantProblem& q);
}  // namespace avx2
namespace avx512 {
bool dense_linear(const GemmProblem& p, const void* wpacked, DType wdt);
bool sparse24_linear(const GemmProblem& p, const void* packed, DType wdt);
bool quant_linear(const QuantProblem& q);
}  // namespace avx512

}  // namespace cg
