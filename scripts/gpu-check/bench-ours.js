#!/usr/bin/env node
// The timings of our own CUDA kernels, for the same shapes as torch_baseline.py, as JSON on stdout
// (torch_baseline.py --ours FILE puts them beside cuBLAS's, in timings.json and the table).
//
//   node scripts/gpu-check/bench-ours.js --addon build-cuda/Release/compressed_gemm_cuda.node > ours.json
//
// ======================================================================================
// HOOK: our dense tensor-core GEMM (native/cuda/gemm_dense.*) is being written. When the CUDA
// addon exports an entry point that runs it on device memory, time it here with CUDA events
// (warm-up, medians, inputs rotated past the L2, as torch_baseline.py does) for each shape of
// SHAPES, and return { status: 'measured', results: [{ name, dtype, M, N, K, median_ms, tflops }] }.
// Until then this reports { status: 'not built yet' } and never a number.
// ======================================================================================
'use strict';
const path = require('path');

// The entry points that would make the dense GEMM measurable here (none exists yet).
const DENSE_ENTRY_POINTS = ['benchDenseGemm', 'timeDenseGemm'];

function main() {
  const i = process.argv.indexOf('--addon');
  const file = i >= 0 ? path.resolve(process.argv[i + 1]) : null;
  const out = { status: 'not built yet', kernel: 'dense tensor-core GEMM (native/cuda/gemm_dense.*)' };
  if (!file) {
    out.reason = 'no --addon given';
  } else {
    try {
      // eslint-disable-next-line global-require, import/no-dynamic-require
      const addon = require(file);
      out.addonExports = Object.keys(addon).sort();
      const entry = DENSE_ENTRY_POINTS.find((n) => typeof addon[n] === 'function');
      out.reason = entry
        ? `the addon exports ${entry}, but bench-ours.js does not call it yet (see the HOOK in scripts/gpu-check/bench-ours.js)`
        : 'the CUDA addon exports no dense GEMM entry point yet';
    } catch (e) {
      out.reason = `the CUDA addon does not load: ${e.message.split('\n')[0]}`;
    }
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main();
