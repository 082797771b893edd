/**
 * The numerics suites of jest.cuda-sim.config.js on a real GPU: COMPRESSED_GEMM_BACKEND=cuda
 * (test/helpers/cuda-env.js), the same cases and float64 references, one row 'cuda'
 * (test/helpers/matrix.ts). Needs the CUDA addon (build-cuda/Release) and a usable GPU: the
 * library refuses COMPRESSED_GEMM_BACKEND=cuda otherwise, so this is not part of `npm test`.
 * scripts/gpu-check.sh runs it (step 4) on the GPU machine; by hand: `npx jest -c jest.cuda.config.js`.
 */
const simulated = require('./jest.cuda-sim.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...simulated,
  displayName: 'cuda',
  setupFiles: ['<rootDir>/test/helpers/cuda-env.js'],
  // and the LoRA shrink's K split on the CUDA addon itself (K = 11008 there)
  testMatch: [...simulated.testMatch, '**/test/cuda-sim/lora-shrink.test.ts'],
};
