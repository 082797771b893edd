// What this CPU can run, read once with cpuid/xgetbv (OS support for the wider registers included).
#pragma once

namespace cg {

struct CpuFeatures {
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx512_fp16 = false, avx_vnni = false, avx512_vbmi = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
};

const CpuFeatures& cpu_features();

}  // namespace cg
