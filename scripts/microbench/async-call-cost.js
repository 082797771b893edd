// What a linearAsync call costs the JS thread: the time from calling it until it returns its
// promise (arguments read and checked, x and the bias copied, the work queued), one call at a
// time, each awaited before the next, so no kernel runs while the next call is made. Medians
// over the calls, per M, for an INT4 g128 weight (the op does not change what is copied).
// The calls run on one thread by default (--threads 1), so that a core is left for the JS
// thread: with every core given to the call's kernel, the figure would include the time the
// JS thread waits to be scheduled again once the kernel starts (on 2 cores: the kernel's time).
//
//   npm run build:ts && node scripts/microbench/async-call-cost.js [--shape 11008x4096] [--m 1,16,128] [--calls 40] [--threads 1]
//   COMPRESSED_GEMM_ADDON_DIR=/tmp/before node scripts/microbench/async-call-cost.js   # another build
'use strict';
const cg = require('../..');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const [N, K] = arg('shape', '11008x4096').split('x').map(Number);
const ms = arg('m', '1,16,128').split(',').map(Number);
const calls = Number(arg('calls', '40'));
const threads = Number(arg('threads', '1'));
let s = 12345;
const rnd = (n) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

(async () => {
  const w = cg.Int4Weight.quantize(rnd(N * K), [N, K], { groupSize: 128 });
  const bias = rnd(N);
  for (const M of ms) {
    const x = rnd(M * K);
    await cg.linearAsync(x, [M, K], w, { bias, threads }); // warm-up
    const t = [];
    for (let i = 0; i < calls; i++) {
      const t0 = process.hrtime.bigint();
      const p = cg.linearAsync(x, [M, K], w, { bias, threads });
      t.push(Number(process.hrtime.bigint() - t0) / 1e3);
      await p;
    }
    console.log(`M = ${M}, ${N}x${K}, threads ${threads}: linearAsync returns after ${median(t).toFixed(0)} us (median of ${calls}; min ${Math.min(...t).toFixed(0)})`);
  }
  w.dispose();
})();
