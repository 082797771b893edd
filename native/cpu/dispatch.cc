// One entry point per operation; the ISA was chosen (and range-checked) by the caller.
#include <cstdlib>
#include <cstring>

#include "cpu/runtime/cpu_features.h"
#include "cpu/runtime/scratch.h"
#include "cpu/act_quant.h"
#include "cpu/kernels.h"

namespace cg {

namespace {
// COMPRESSED_GEMM_TUNE="mc=256,kc=512,sparse_m=32,amx_m=16": block sizes and thresholds for
// tuning experiments only.
Tuning read_tuning() {
  Tuning t;
  const char* s = std::getenv("COMPRESSED_GEMM_TUNE");
  while (s && *s) {
    const char* eq = std::strchr(s, '=');
    if (!eq) break;
    const long long v = std::strtoll(eq + 1, nullptr, 10);
    const size_t n = size_t(eq - s);
    if (v > 0 && v < (1ll << 40)) {
      if (n == 2 && !std::strncmp(s, "mc", 2)) t.mc = v;
      else if (n == 2 && !std::strncmp(s, "kc", 2)) t.kc = v;
      else if (n == 2 && !std::strncmp(s, "nc", 2)) t.nc = v;
      else if (n == 8 && !std::strncmp(s, "sparse_m", 8)) t.sparse_m = v;
      else if (n == 5 && !std::strncmp(s, "amx_m", 5)) t.amx_m = v;
    }
    const char* comma = std::strchr(eq, ',');
    s = comma ? comma + 1 : nullptr;
  }
  return t;
}
}  // namespace

const Tuning& tuning() {
  static const Tuning t = read_tuning();
  return t;
}

#if defined(__x86_64__)
namespace {
// The avx512 ISA's bfloat16 activations go to the AVX512-BF16 engine (kernels.h) where the CPU
// has it and VBMI (its decoders' byte permutes): AMD Zen 4 and 5.
bool bf16_dot() {
  static const bool ok = cpu_features().avx512_bf16 && cpu_features().avx512_vbmi;
  return ok;
}
}  // namespace
#endif

bool dense_linear(Isa isa, const GemmProblem& p, const void* wpacked, DType wdt) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Amx: return amx::dense_linear(p, wpacked, wdt);
    case Isa::Avx512:
      if (wdt == DType::BF16 && bf16_dot()) {
        const int r = avx512bf16::dense_linear(p, wpacked, wdt);
        if (r >= 0) return r == 1;
      }
      return avx512::dense_linear(p, wpacked, wdt);
    case Isa::Avx2: return avx2::dense_linear(p, wpacked, wdt);
#endif
    default: return scalar::dense_linear(p, wpacked, wdt);
  }
}

bool sparse24_linear(Isa isa, const GemmProblem& p, const void* packed, DType wdt) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Amx:
    case Isa::Avx512: return avx512::sparse24_linear(p, packed, wdt);
    case Isa::Avx2: return avx2::sparse24_linear(p, packed, wdt);
#endif
    default: return scalar::sparse24_linear(p, packed, wdt);
  }
}

namespace {
bool quant_float_linear(Isa isa, const QuantProblem& q) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Amx: return amx::quant_linear(q);
    case Isa::Avx512:
      if (bf16_dot()) {
        const int r = avx512bf16::quant_linear(q);
        if (r >= 0) return r == 1;
      }
      return avx512::quant_linear(q);
    case Isa::Avx2: return avx2::quant_linear(q);
#endif
    default: return scalar::quant_linear(q);
  }
}
}  // namespace

bool quant_linear(Isa isa, const QuantProblem& q) {
#if defined(__x86_64__)
  if ((isa == Isa::Avx512 || isa == Isa::Amx) && q.format == WeightFormat::Int4 && q.act == ActQuant::Int8 && cpu_features().avx512_vnni)
    return isa == Isa::Amx && cpu_features().amx_int8 ? amx::int4_int8_linear(q) : avx512vnni::int4_int8_linear(q);
#endif
  return quant_float_linear(isa, q);  // each ISA quantizes activations itself when asked
}

bool linear(Isa isa, const GemmProblem& p, const WeightDesc& w, ActQuant act, int64_t act_block) {
  switch (w.format) {
    // Dense and 2:4: the ISA's panel kernels read the placement as it is. Quantized activations
    // go with quantized weights only (the routing table in lib/ sends them nowhere else, and the
    // binding refuses them).
    case WeightFormat::Dense: return dense_linear(isa, p, w.data, w.dtype);
    case WeightFormat::Sparse24: return sparse24_linear(isa, p, w.data, w.dtype);
    // INT4 and FP8: quant_linear picks the VNNI int8 kernel or the ISA's float kernels.
    case WeightFormat::Int4:
    case WeightFormat::Fp8: {
      QuantProblem q;
      q.p = &p;
      q.format = w.format;
      q.packed = w.data;
      q.act = act;
      q.act_block = act_block;
      if (w.format == WeightFormat::Int4) {
        q.int4 = Int4Dims{w.N, w.K, w.group};
        q.perm = w.perm;
        q.int4_symmetric = w.symmetric;
      } else {
        q.fp8 = Fp8Dims{w.N, w.K, w.bn, w.bk};
        q.fp8_format = w.fp8_format;
      }
      return quant_linear(isa, q);
    }
  }
  return false;
}

}  // namespace cg
