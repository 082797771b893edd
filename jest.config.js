/**
 * Jest configuration: TypeScript tests under test/, run by ts-jest against the TypeScript sources
 * in lib/ (which find the built addons relative to the package root).
 *
 * test/tsconfig.json extends the package's tsconfig with rootDir '.' (so test/ and lib/ compile
 * together) and isolatedModules (transpile only: quick on small CI machines; `npx tsc -p
 * test/tsconfig.json` type-checks the tests).
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
