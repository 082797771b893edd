// One entry point per operation; the ISA was chosen (and range-checked) by the caller.
#include "kernels.h"

namespace cg {

void dense_linear(Isa isa, const GemmProblem& p, const void* wpacked, DType wdt) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx512: return avx512::dense_linear(p, wpacked, wdt);
    case Isa::Avx2: return avx2::dense_linear(p, wpacked, wdt);
#endif
    default: return scalar::dense_linear(p, wpacked, wdt);
  }
}

void sparse24_linear(Isa isa, const GemmProblem& p, const void* values, DType wdt, const uint8_t* meta) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx512: return avx512::sparse24_linear(p, values, wdt, meta);
    case Isa::Avx2: return avx2::sparse24_linear(p, values, wdt, meta);
#endif
    default: return scalar::sparse24_linear(p, values, wdt, meta);
  }
}

}  // namespace cg
