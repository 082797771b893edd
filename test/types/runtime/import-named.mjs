// ES module, named imports: import { linear } from 'compressed-gemm'.
import { linear, linearAsync, DenseWeight } from 'compressed-gemm';
import * as ns from 'compressed-gemm';
import { createRequire } from 'module';
import compute from './compute.cjs';

const cjs = createRequire(import.meta.url)('compressed-gemm');
await compute({ linear, linearAsync, DenseWeight }, {
  // Every CommonJS export is a named export, each the very same value.
  named: Object.keys(ns).filter((k) => k !== 'default').sort(),
  required: Object.keys(cjs).sort(),
  mismatched: Object.keys(cjs).filter((k) => ns[k] !== cjs[k]),
});
