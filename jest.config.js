/**
 * Jest configuration: TypeScript tests under test/, run by ts-jest against the TypeScript sources
 * in lib/ (which find the built addons relative to the package root).
 *
 * test/tsconfig.json extends the package's tsconfig with rootDir '.' (so test/ and lib/ compile
 * together) and isolatedModules (transpile only: quick on small CI machines; `npx tsc -p
 * test/tsconfig.json` type-checks the tests).
 *
 * This runs every suite on the backend the environment picks (the CPU backend here: one row per
 * instruction set, test/helpers/matrix.ts; COMPRESSED_GEMM_BACKEND=cuda on a GPU machine).
 * `npm test` then runs jest.cuda-sim.config.js: the numerics suites again, on the CUDA backend's
 * simulated device, in a jest run of their own (the backend and the simulated device's memory
 * are per process, and jest reuses its worker processes across test files).
 */
/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  // Kernels on the scalar path and child processes that load the addon take a while on small machines.
  testTimeout: 120000,
};
