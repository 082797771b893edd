/**
 * The CPU addon's own checks, for callers that bypass lib/ (native/binding/args.h: "a caller
 * that bypasses lib/ gets an exception, never a crash"). Run in a child process, so that a crash
 * would show as a signal here instead of killing the test runner. Buffer-size checks carry
 * code ERR_NATIVE.
 */
import * as path from 'path';
import { ROOT, describeChild, runChild } from './helpers/child';

const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cpu.node');

interface Outcome {
  name: string;
  threw: boolean;
  errName?: string;
  code?: string;
  message?: string;
}

const SCRIPT = `
const a = require(${JSON.stringify(ADDON)});
const f32 = (n) => new Float32Array(n);
const u16 = (n) => new Uint16Array(n);
const N = 5, K = 8, M = 3;
const dp = { format: 'dense', N, K, dtype: 'float32' };
const spp = { format: '2:4', N, K, dtype: 'float32' };
const dense = { ...dp, data: a.place({ weight: dp, values: f32(N * K) }) };
const sp = { ...spp, data: a.place({ weight: spp, values: f32(N * K / 2), meta: new Uint8Array(N) }) };
const base = (over) => Object.assign({ weight: dense, M, x: f32(M * K), xDtype: 'float32', bias: null, out: f32(M * N), outDtype: 'float32', threads: 1, isa: 'scalar', activations: 'native', actBlock: 0, lora: null }, over);
const cases = {
  'linear: x too short': () => a.linear(base({ x: f32(M * K - 1) })),
  'linear: x of the wrong dtype size': () => a.linear(base({ x: u16(M * K) })),
  'linear: out too short': () => a.linear(base({ out: f32(M * N - 1) })),
  'linear: out too long': () => a.linear(base({ out: f32(M * N + 1) })),
  'linear: packed dense weight too short': () => a.linear(base({ weight: { ...dense, data: dense.data.slice(4) } })),
  'linear: 2:4 weight passed as dense': () => a.linear(base({ weight: { ...dense, data: sp.data } })),
  'linear: dense weight passed as 2:4': () => a.linear(base({ weight: { ...sp, data: dense.data } })),
  'linear: 2:4 with K not a multiple of 4': () => a.linear(base({ weight: { ...sp, K: 6 }, x: f32(M * 6) })),
  'linear: bias too short': () => a.linear(base({ bias: f32(N - 1) })),
  'linear: weight dtype size wrong': () => a.linear(base({ weight: { ...dense, dtype: 'float16' } })),
  'linear: dimensions too large': () => a.linear(base({ M: 2 ** 30, weight: { ...dense, N: 4 } })),
  'linear: int4 perm not a permutation': () => a.linear(base({ weight: { format: 'int4', N, K, group: 8, symmetric: true, scaleDtype: 'float32', perm: new Int32Array(K), data: new ArrayBuffer(1024) } })),
  'linearAsync: out too short': () => a.linearAsync(base({ out: f32(1) })),
  'place: values too short': () => a.place({ weight: dp, values: f32(N * K - 1) }),
  'place: N*K >= 2^31': () => a.place({ weight: { ...dp, N: 2 ** 16, K: 2 ** 15 }, values: f32(4) }),
  'toDense: out too short': () => a.toDense({ weight: dense, out: f32(N * K - 1) }),
  'toDense: placement of another shape': () => a.toDense({ weight: { ...dense, N: N + 40 }, out: f32((N + 40) * K) }),
  'sparse24Encode: K not a multiple of 4': () => a.sparse24Encode({ weight: { ...spp, K: 6 }, data: f32(N * 6), values: f32(N * 3), meta: new Uint8Array(N), mode: 'prune' }),
  'sparse24Encode: data too long': () => a.sparse24Encode({ weight: spp, data: f32(N * K + 1), values: f32(N * K / 2), meta: new Uint8Array(N), mode: 'compress' }),
  'canonical: values too short': () => a.canonical({ weight: sp, values: f32(N * K / 2 - 1), meta: new Uint8Array(N) }),
  'canonical: meta too short': () => a.canonical({ weight: sp, values: f32(N * K / 2), meta: new Uint8Array(N - 1) }),
  'toDense: 2:4 placement of another shape': () => a.toDense({ weight: { ...sp, N: 100, K: 64 }, out: f32(6400) }),
  'convert: lengths differ': () => a.convert({ src: f32(10), srcDtype: 'float32', dst: u16(9), dstDtype: 'float16' }),
  'lowRankUpdate: alpha beyond float32': () => a.lowRankUpdate({ weight: dense, r: 1, alpha: 1e39, a: f32(K), b: f32(N), abDtype: 'float32', tileK: 8, threads: 1, isa: 'scalar', reprune: false }),
  'lowRankUpdate: rank past 65536': () => a.lowRankUpdate({ weight: dense, r: 70000, alpha: 1, a: f32(K), b: f32(N), abDtype: 'float32', tileK: 8, threads: 1, isa: 'scalar', reprune: false }),
};
// Not buffer sizes: wrong kinds of values (these need not carry ERR_NATIVE, only not crash).
const loose = {
  'linear: no argument': () => a.linear(),
  'linear: format 7': () => a.linear(base({ weight: { ...dense, format: 7 } })),
  'linear: isa avx9000': () => a.linear(base({ isa: 'avx9000' })),
  'linear: dtype float8': () => a.linear(base({ outDtype: 'float8' })),
  'linear: x is a number': () => a.linear(base({ x: 5 })),
  'linear: threads 0': () => a.linear(base({ threads: 0 })),
  'place: N is a string': () => a.place({ weight: { ...dp, N: '5' }, values: f32(N * K) }),
  'linear: out is x (one buffer)': () => { const b = f32(M * K); return a.linear(base({ weight: { ...dense, N: K, data: a.place({ weight: { ...dp, N: K }, values: f32(K * K) }) }, x: b, out: b })); },
};
const results = [];
async function run(table, strict) {
  for (const [name, fn] of Object.entries(table)) {
    const r = { name, strict, threw: false };
    try { await fn(); } catch (e) { r.threw = true; r.errName = e && e.name; r.code = e && e.code; r.message = String(e && e.message); }
    results.push(r);
  }
}
await run(cases, true);
await run(loose, false);
// Still working afterwards:
a.linear(base({}));
out(results);
`;

test('bad calls straight to the addon throw (buffer-size checks with ERR_NATIVE) and never crash', () => {
  const r = runChild(SCRIPT, {}, { entry: 'none' });
  if (r.status !== 0 || r.error) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  const results = r.value as Array<Outcome & { strict: boolean }>;
  const problems: string[] = [];
  for (const o of results) {
    if (!o.threw) problems.push(`${o.name}: did not throw`);
    else if (!['TypeError', 'RangeError', 'Error'].includes(o.errName ?? '')) problems.push(`${o.name}: threw ${o.errName}`);
    else if (o.strict && o.code !== 'ERR_NATIVE') problems.push(`${o.name}: code ${o.code} (${o.errName}: ${o.message}), expected ERR_NATIVE`);
  }
  expect(problems).toEqual([]);
  expect(results.length).toBe(33);
});
