/**
 * The CPU addon's own checks, for callers that bypass lib/ (binding_cpu.cc: "a caller that
 * bypasses lib/ gets an exception, never a crash"). Run in a child process, so that a crash
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
const dense = a.densePack({ data: f32(N * K), N, K, dtype: 0 });
const sp = a.sparse24Encode({ data: f32(N * K), N, K, dtype: 0, mode: 'prune' }).packed;
const base = (over) => Object.assign({ kind: 0, M, N, K, x: f32(M * K), xDtype: 0, w: dense, wDtype: 0, bias: null, out: f32(M * N), outDtype: 0, threads: 1, isa: 0 }, over);
const cases = {
  'linear: x too short': () => a.linear(base({ x: f32(M * K - 1) })),
  'linear: x of the wrong dtype size': () => a.linear(base({ x: u16(M * K) })),
  'linear: out too short': () => a.linear(base({ out: f32(M * N - 1) })),
  'linear: out too long': () => a.linear(base({ out: f32(M * N + 1) })),
  'linear: packed dense weight too short': () => a.linear(base({ w: dense.slice(4) })),
  'linear: 2:4 weight passed as dense': () => a.linear(base({ w: sp })),
  'linear: dense weight passed as 2:4': () => a.linear(base({ kind: 1 })),
  'linear: 2:4 with K not a multiple of 4': () => a.linear(base({ kind: 1, w: sp, K: 6, x: f32(M * 6) })),
  'linear: bias too short': () => a.linear(base({ bias: f32(N - 1) })),
  'linear: weight dtype size wrong': () => a.linear(base({ wDtype: 1 })),
  'linear: dimensions too large': () => a.linear(base({ M: 2 ** 30, N: 4 })),
  'linearAsync: out too short': () => a.linearAsync(base({ out: f32(1) })),
  'densePack: data too short': () => a.densePack({ data: f32(N * K - 1), N, K, dtype: 0 }),
  'densePack: N*K >= 2^31': () => a.densePack({ data: f32(4), N: 2 ** 16, K: 2 ** 15, dtype: 0 }),
  'denseUnpack: out too short': () => a.denseUnpack({ packed: dense, N, K, dtype: 0, out: f32(N * K - 1) }),
  'denseUnpack: packed for another shape': () => a.denseUnpack({ packed: dense, N: N + 40, K, dtype: 0, out: f32((N + 40) * K) }),
  'sparse24Encode: K not a multiple of 4': () => a.sparse24Encode({ data: f32(N * 6), N, K: 6, dtype: 0, mode: 'prune' }),
  'sparse24Encode: data too long': () => a.sparse24Encode({ data: f32(N * K + 1), N, K, dtype: 0, mode: 'compress' }),
  'sparse24Unpack: values too short': () => a.sparse24Unpack({ packed: sp, N, K, dtype: 0, values: f32(N * K / 2 - 1), meta: new Uint8Array(N) }),
  'sparse24Unpack: meta too short': () => a.sparse24Unpack({ packed: sp, N, K, dtype: 0, values: f32(N * K / 2), meta: new Uint8Array(N - 1) }),
  'sparse24ToDense: packed for another shape': () => a.sparse24ToDense({ packed: sp, N: 100, K: 64, dtype: 0, out: f32(6400) }),
  'convert: lengths differ': () => a.convert({ src: f32(10), srcDtype: 0, dst: u16(9), dstDtype: 1 }),
};
// Not buffer sizes: wrong kinds of values (these need not carry ERR_NATIVE, only not crash).
const loose = {
  'linear: no argument': () => a.linear(),
  'linear: kind 7': () => a.linear(base({ kind: 7 })),
  'linear: isa 9': () => a.linear(base({ isa: 9 })),
  'linear: dtype 3': () => a.linear(base({ outDtype: 3 })),
  'linear: x is a number': () => a.linear(base({ x: 5 })),
  'linear: threads 0': () => a.linear(base({ threads: 0 })),
  'densePack: N is a string': () => a.densePack({ data: f32(N * K), N: '5', K, dtype: 0 }),
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
  expect(results.length).toBe(29);
});
