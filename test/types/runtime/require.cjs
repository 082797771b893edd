// CommonJS: const cg = require('compressed-gemm') (package.json "exports" -> "require").
'use strict';
const cg = require('compressed-gemm');
const compute = require('./compute.cjs');

let deepImport = null;
try {
  require('compressed-gemm/dist/ops/linear.js');
} catch (e) {
  deepImport = e.code;
}
compute(cg, {
  resolved: require.resolve('compressed-gemm'),
  version: require('compressed-gemm/package.json').version,
  deepImport,
});
