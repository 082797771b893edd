// A register-only FMA loop that measures the machine's fp32 FMA throughput, so the bench can
// state the dense kernel's efficiency against what this CPU really sustains (clocks included)
// rather than against a datasheet number. Each ISA TU defines it for its vector width.
#pragma once
#include <cstdint>

namespace cg {
namespace avx2 { double fma_loop_flops(int64_t iterations); }
namespace avx512 { double fma_loop_flops(int64_t iterations); }
}  // namespace cg
