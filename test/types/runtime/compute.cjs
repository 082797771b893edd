// The module-format children's one computation, whichever way each loaded the package: a dense
// float32 linear with bias, synchronously (into a poisoned `out`) and on the thread pool. Reads
// { M, N, K, x, w, bias } from the JSON file named by argv[2]; prints { y, yAsync, ...extra } with
// the results as base64 float32 bytes, so NaN (an output never written) survives the trip.
'use strict';
const fs = require('fs');

const bytes = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

module.exports = async function compute({ linear, linearAsync, DenseWeight }, extra) {
  const { M, N, K, x, w, bias } = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const weight = DenseWeight.from(Float32Array.from(w), [N, K]);
  const xs = Float32Array.from(x);
  const b = Float32Array.from(bias);
  const out = new Float32Array(M * N).fill(NaN);
  const y = linear(xs, [M, K], weight, { bias: b, out });
  const yAsync = await linearAsync(xs, [M, K], weight, { bias: b });
  process.stdout.write(JSON.stringify({ y: bytes(y), wroteOut: y === out, yAsync: bytes(yAsync), ...extra }));
};
