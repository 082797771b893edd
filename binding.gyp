{
  # The CPU addon. Each instruction set's kernels are a static library of their own, compiled
  # with that ISA's flags; the addon picks among them at run time (native/cpu/dispatch.cc).
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
    "cflags": ["-fPIC", "-O3", "-fno-math-errno", "-fvisibility=hidden"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "include_dirs": ["native/include", "native"],
    "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" }
  },
  "targets": [
    {
      "target_name": "cg_kernels_avx2",
      "type": "static_library",
      "sources": ["native/cpu/isa/avx2/dense.cc", "native/cpu/isa/avx2/sparse24.cc", "native/cpu/isa/avx2/quant.cc", "native/cpu/isa/avx2/lowrank.cc", "native/cpu/isa/avx2/fma_peak.cc"],
      "conditions": [["target_arch=='x64'", { "cflags": ["-mavx2", "-mfma", "-mf16c"] }]]
    },
    {
      "target_name": "cg_kernels_avx512",
      "type": "static_library",
      "sources": ["native/cpu/isa/avx512/dense.cc", "native/cpu/isa/avx512/sparse24.cc", "native/cpu/isa/avx512/quant.cc", "native/cpu/isa/avx512/lowrank.cc", "native/cpu/isa/avx512/fma_peak.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-mf16c", "-Wno-maybe-uninitialized"]
      }]]
    },
    {
      "target_name": "cg_kernels_avx512_vnni",
      "type": "static_library",
      "sources": ["native/cpu/isa/avx512/int4_vnni.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni", "-mfma", "-mf16c", "-Wno-maybe-uninitialized"]
      }]]
    },
    {
      "target_name": "cg_kernels_amx",
      "type": "static_library",
      "sources": ["native/cpu/isa/amx/quant_amx.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512bf16", "-mavx512vbmi", "-mamx-tile", "-mamx-bf16", "-mamx-int8", "-mfma", "-mf16c", "-Wno-maybe-uninitialized"]
      }]]
    },
    {
      "target_name": "compressed_gemm_cpu",
      "dependencies": ["cg_kernels_avx2", "cg_kernels_avx512", "cg_kernels_avx512_vnni", "cg_kernels_amx"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "sources": [
        "native/formats/canonical.cc",
        "native/formats/sparse24.cc",
        "native/formats/int4.cc",
        "native/formats/fp8_weight.cc",
        "native/cpu/runtime/thread_pool.cc",
        "native/cpu/runtime/cpu_features.cc",
        "native/cpu/runtime/scratch.cc",
        "native/cpu/layout/dense.cc",
        "native/cpu/layout/sparse24.cc",
        "native/cpu/layout/int4.cc",
        "native/cpu/layout/fp8.cc",
        "native/cpu/placement.cc",
        "native/cpu/isa/scalar/dense.cc",
        "native/cpu/isa/scalar/sparse24.cc",
        "native/cpu/isa/scalar/quant.cc",
        "native/cpu/isa/scalar/lowrank.cc",
        "native/cpu/act_quant.cc",
        "native/cpu/lowrank.cc",
        "native/cpu/dispatch.cc",
        "native/binding/args.cc",
        "native/binding/weight_desc.cc",
        "native/binding/canonical_args.cc",
        "native/binding/cpu/addon.cc",
        "native/binding/cpu/info.cc",
        "native/binding/cpu/formats.cc",
        "native/binding/cpu/placement.cc",
        "native/binding/cpu/linear.cc",
        "native/binding/cpu/lowrank.cc",
        "native/binding/staging.cc"
      ]
    },
    {
      # The simulated CUDA device: the CUDA addon's kernel sources compiled by the host compiler
      # over native/cuda/sim/ (native/cuda/kernel.h), built on every machine so that every test
      # run executes them (COMPRESSED_GEMM_BACKEND=cuda-sim).
      "target_name": "compressed_gemm_cuda_sim",
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-pthread"],
      "ldflags": ["-pthread"],
      "sources": [
        "native/cuda/sim/sim.cc",
        "native/cuda/runtime/runtime_sim.cc",
        "native/binding/args.cc",
        "native/binding/cuda_sim/addon.cc",
        "native/binding/cuda_sim/probes.cc",
        "native/binding/cuda_sim/refusals.cc",
        "native/binding/cuda_sim/gemm.cc",
        "native/binding/cuda_sim/device.cc"
      ]
    }
  ]
}
