// ES module, default import: import cg from 'compressed-gemm' (package.json "exports" -> "import").
import cg from 'compressed-gemm';
import { createRequire } from 'module';
import compute from './compute.cjs';

const require = createRequire(import.meta.url);
// The same library object as require() gives: one instance, so weights, tensors and error
// classes are shared with CommonJS code in the same process.
await compute(cg, { sameAsRequire: cg === require('compressed-gemm'), resolved: import.meta.resolve('compressed-gemm') });
