/**
 * The numerics suites again, with COMPRESSED_GEMM_BACKEND=cuda-sim (test/helpers/cuda-sim-env.js):
 * the same cases and the same float64 references through the CUDA backend on the simulated
 * device, its kernels where the routing table sends an op to CUDA and its CPU fallbacks elsewhere
 * (test/helpers/matrix.ts gives these runs one row, 'cuda-sim'). `npm test` runs it after
 * jest.config.js; alone: `npx jest -c jest.cuda-sim.config.js`.
 */
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  displayName: 'cuda-sim',
  setupFiles: ['<rootDir>/test/helpers/cuda-sim-env.js'],
  testMatch: [
    '**/test/linear.numerics.test.ts',
    '**/test/linear.edges.test.ts',
    '**/test/concurrency.test.ts',
    '**/test/ops/lora.test.ts',
    '**/test/ops/multi-lora.test.ts',
    '**/test/ops/lowrank-update.test.ts',
  ],
};
