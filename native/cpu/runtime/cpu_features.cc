#include "cpu/runtime/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <cpuid.h>
#include <cstdint>
#define CG_X86 1
#endif

namespace cg {
namespace {

#ifdef CG_X86
uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  unsigned max_leaf = a;
  __cpuid_count(1, 0, a, b, c, d);
  f.sse42 = c & (1u << 20);
  bool osxsave = c & (1u << 27);
  bool avx_hw = c & (1u << 28);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  bool ymm_os = (xcr0 & 0x6) == 0x6;               // SSE + AVX state saved by the OS
  bool zmm_os = (xcr0 & 0xe6) == 0xe6;             // + opmask, ZMM_Hi256, Hi16_ZMM
  bool amx_os = (xcr0 & (3ull << 17)) == (3ull << 17);  // XTILECFG + XTILEDATA
  f.avx = avx_hw && ymm_os;
  if (!f.avx) { f.fma = f.f16c = false; }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = f.avx && (b & (1u << 5));
    if (zmm_os) {
      f.avx512f = b & (1u << 16);
      f.avx512dq = b & (1u << 17);
      f.avx512bw = b & (1u << 30);
      f.avx512vl = b & (1u << 31);
      f.avx512_vnni = c & (1u << 11);
      f.avx512_vbmi = c & (1u << 1);
      f.avx512_fp16 = d & (1u << 23);
    }
    if (amx_os) {
      f.amx_bf16 = d & (1u << 22);
      f.amx_tile = d & (1u << 24);
      f.amx_int8 = d & (1u << 25);
    }
    __cpuid_count(7, 1, a, b, c, d);
    f.avx_vnni = f.avx && (a & (1u << 4));
    f.avx512_bf16 = zmm_os && (a & (1u << 5));
  }
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace cg
