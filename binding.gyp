{
  # The CPU addon. Each instruction set's kernels are a static library of their own, compiled
  # with that ISA's flags; the addon picks among them at run time (native/cpu/dispatch.cc).
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
    "cflags": ["-fPIC", "-O3", "-fno-math-errno", "-fvisibility=hidden"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" }
  },
  "targets": [
    {
      "target_name": "cg_kernels_avx2",
      "type": "static_library",
      "sources": ["native/cpu/dense_avx2.cc", "native/cpu/sparse24_avx2.cc", "native/cpu/quant_avx2.cc", "native/cpu/lowrank_avx2.cc", "native/cpu/fma_peak_avx2.cc"],
      "conditions": [["target_arch=='x64'", { "cflags": ["-mavx2", "-mfma", "-mf16c"] }]]
    },
    {
      "target_name": "cg_kernels_avx512",
      "type": "static_library",
      "sources": ["native/cpu/dense_avx512.cc", "native/cpu/sparse24_avx512.cc", "native/cpu/quant_avx512.cc", "native/cpu/lowrank_avx512.cc", "native/cpu/fma_peak_avx512.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-mf16c", "-Wno-maybe-uninitialized"]
      }]]
    },
    {
      "target_name": "cg_kernels_avx512_vnni",
      "type": "static_library",
      "sources": ["native/cpu/int4_vnni_avx512.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni", "-mfma", "-mf16c", "-Wno-maybe-uninitialized"]
      }]]
    },
    {
      "target_name": "compressed_gemm_cpu",
      "dependencies": ["cg_kernels_avx2", "cg_kernels_avx512", "cg_kernels_avx512_vnni"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "sources": [
        "native/common/thread_pool.cc",
        "native/common/cpu_features.cc",
        "native/common/sparse24_format.cc",
        "native/common/scratch.cc",
        "native/common/quant_format.cc",
        "native/cpu/dense_pack.cc",
        "native/cpu/dense_scalar.cc",
        "native/cpu/sparse24_scalar.cc",
        "native/cpu/quant_scalar.cc",
        "native/cpu/act_quant.cc",
        "native/cpu/lowrank.cc",
        "native/cpu/lowrank_scalar.cc",
        "native/cpu/dispatch.cc",
        "native/binding/binding_cpu.cc"
      ]
    }
  ]
}
