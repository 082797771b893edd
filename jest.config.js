/**
 * Jest configuration: TypeScript tests under test/, run by ts-jest against the TypeScript sources
 * in lib/ (which find the built addons relative to the package root).
 *
 * test/tsconfig.json extends the package's tsconfig with rootDir '.' (so test/ and lib/ compile
 * together) and isolatedModules (transpile only: quick on small CI machines; `npx tsc -p
 * test/tsconfig.json` type-checks the tests).
 *
 * Two projects. `default`: every suite, on the backend the environment picks (the CPU backend
 * here: one row per instruction set, test/helpers/matrix.ts). `cuda-sim`: the numerics suites
 * again with COMPRESSED_GEMM_BACKEND=cuda-sim (test/helpers/cuda-sim-env.js), so the same cases
 * and the same float64 references run through the CUDA backend on the simulated device: its
 * kernels where the routing table sends an op to CUDA, its CPU fallbacks elsewhere. (Set
 * COMPRESSED_GEMM_BACKEND=cuda on a GPU machine to run the default project on the GPU.)
 */
const base = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
};

/** @type {import('jest').Config} */
module.exports = {
  // Kernels on the scalar path and child processes that load the addon take a while on small machines.
  testTimeout: 120000,
  projects: [
    { ...base, displayName: 'default', testMatch: ['**/*.test.ts'] },
    {
      ...base,
      displayName: 'cuda-sim',
      setupFiles: ['<rootDir>/test/helpers/cuda-sim-env.js'],
      testMatch: [
        '**/test/linear.numerics.test.ts',
        '**/test/linear.edges.test.ts',
        '**/test/concurrency.test.ts',
        '**/test/ops/lora.test.ts',
        '**/test/ops/multi-lora.test.ts',
      ],
    },
  ],
};
