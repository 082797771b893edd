// Is the INT4 GEMV (M = 1, int8 activations) at this machine's memory roof? Times it with its
// weight cold (a 180 MB float32 GEMV runs before every timed call, as in the bench's
// round-robin), next to a dense float32 GEMV whose weight has the same number of bytes, also
// cold, alternating the two; medians of 41 calls each. Equal times mean both stream memory at
// the same rate: the INT4 kernel's decode is hidden and only fewer bytes can make it faster.
// The INT4 GEMV with float32 activations (the direct kernel, decoding to float32) is timed the
// same way, cold, as a third figure.
//
//   npm run build:ts && node scripts/microbench/cold-stream.js [NxK ...]   (default: the bench's shapes)
'use strict';
const cg = require('../..');

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
}

const evict = cg.DenseWeight.from(new Float32Array(11008 * 4096).fill(0.5), [11008, 4096]);
const ex = new Float32Array(4096).fill(1);
const ey = new Float32Array(11008);

for (const shape of process.argv.slice(2).length ? process.argv.slice(2) : ['4096x4096', '11008x4096', '4096x11008']) {
  const [N, K] = shape.split('x').map(Number);
  const r = rng(N + K);
  const data = new Float32Array(N * K).map(() => r());
  const int4 = cg.Int4Weight.quantize(data, [N, K], { groupSize: 128 });
  // A dense float32 weight of (about) the same bytes: same K, N / 8 rows, plus the scales' share.
  const dn = Math.round(int4.byteLength / (4 * K));
  const dense = cg.DenseWeight.from(new Float32Array(dn * K).map(() => r()), [dn, K]);
  const x = new Float32Array(K).map(() => r());
  const y4 = new Float32Array(N);
  const yd = new Float32Array(dn);
  const t4 = [];
  const td = [];
  const tf = [];
  for (let i = 0; i < 41; ++i) {
    cg.linear(ex, [1, 4096], evict, { out: ey });
    let t0 = process.hrtime.bigint();
    cg.linear(x, [1, K], int4, { out: y4, activations: 'int8' });
    t4.push(Number(process.hrtime.bigint() - t0) / 1e6);
    cg.linear(ex, [1, 4096], evict, { out: ey });
    t0 = process.hrtime.bigint();
    cg.linear(x, [1, K], dense, { out: yd });
    td.push(Number(process.hrtime.bigint() - t0) / 1e6);
    cg.linear(ex, [1, 4096], evict, { out: ey });
    t0 = process.hrtime.bigint();
    cg.linear(x, [1, K], int4, { out: y4 });
    tf.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const m4 = median(t4);
  const md = median(td);
  const mf = median(tf);
  console.log(
    `${shape}: INT4 a8 ${m4.toFixed(3)} ms (${(int4.byteLength / m4 / 1e6).toFixed(1)} GB/s), ` +
      `dense f32 ${dn}x${K} (${(dense.byteLength / 1e6).toFixed(1)} MB) ${md.toFixed(3)} ms (${(dense.byteLength / md / 1e6).toFixed(1)} GB/s), ` +
      `INT4 / dense time ${(m4 / md).toFixed(2)}; INT4 float32 x ${mf.toFixed(3)} ms (${(int4.byteLength / mf / 1e6).toFixed(1)} GB/s)`,
  );
}
