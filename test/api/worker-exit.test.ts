/**
 * worker_threads that go away while the library's async calls are in flight: a worker that is
 * `terminate()`d by its parent, a worker that calls `process.exit()` itself, and the main thread
 * calling `process.exit()` with calls in flight (its own and its workers'). However the thread
 * or process ends, the process must not die of it: no `terminate called after throwing ...`,
 * no SIGABRT, and the process exits with the status its code asked for.
 *
 * Everything runs in child processes (test/helpers/child.ts), so that an abort shows up here as
 * a signal instead of killing the test runner. The workers load the library from the same
 * TypeScript sources as the child: the child's prelude holds lib/ transpiled once per test run
 * (`compiled`, a map { path: js }), which is handed to each worker in workerData and installed
 * there as the same require hook.
 *
 * Every call is big enough to be in flight when the worker goes away: linearAsync and
 * linearMultiLoraAsync on a DenseWeight 512 x 1024 with M = 64, and a lowRankUpdateAsync on
 * another weight of that size. Each call that settles is replaced by a new one, so calls are in
 * flight whenever the worker goes away; the parent (or the worker's timer) waits a varying few
 * milliseconds after the calls are queued, so the exit meets calls running, calls waiting in the
 * queue and calls just finishing.
 */
import * as path from 'path';
import { ChildResult, ROOT, describeChild, runChild } from '../helpers/child';

const LIB = path.join(ROOT, 'lib', 'index.ts');

/** The worker's code (plain JavaScript, run with `eval: true`). */
const WORKER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('worker_threads');
const sources = workerData.sources;
require.extensions['.ts'] = function (m, filename) {
  if (!(filename in sources)) throw new Error('not transpiled for the worker: ' + filename);
  m._compile(sources[filename], filename);
};
const cg = require(workerData.lib);
const N = 512, K = 1024, M = 64;
let seed = workerData.seed >>> 0;
function fill(n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; a[i] = seed / 4294967296 - 0.5; }
  return a;
}
const w = cg.DenseWeight.from(fill(N * K), [N, K]);
const wu = cg.DenseWeight.from(fill(N * K), [N, K]);
const x = fill(M * K);
const adapters = [new cg.LoraAdapter({ A: fill(8 * K), B: fill(N * 8), alpha: 0.5 }, [N, K]), { A: fill(4 * K), B: fill(N * 4), alpha: 2 }];
const idx = Int32Array.from({ length: M }, (_, m) => (m % 3) - 1);
const pending = [];
for (let i = 0; i < workerData.calls; i++) {
  pending.push(cg.linearAsync(x, [M, K], w, { threads: 1 + (i % 2) }));
  pending.push(cg.linearMultiLoraAsync(x, [M, K], w, adapters, idx, { out: new Float32Array(M * N) }));
}
pending.push(cg.lowRankUpdateAsync(wu, fill(N * 16), fill(16 * K), { alpha: 0.125 }));
let settled = 0;
const mode = workerData.mode;
// Every call that settles is replaced by a new one (up to 400), so calls stay in flight until
// the worker goes away.
let more = 400;
function track(p) {
  p.then(() => { settled++; }, () => { settled++; }).then(() => { if (more-- > 0) track(cg.linearAsync(x, [M, K], w)); });
}
pending.forEach(track);
if (mode === 'exit-now') process.exit(0);
if (mode === 'exit-after-first') pending[0].then(() => process.exit(0), () => process.exit(0));
if (mode === 'exit-timer') setTimeout(() => process.exit(0), workerData.delay);
parentPort.postMessage({ queued: pending.length, settled });
`;

/** The child's part shared by every test: start a worker and wait until its calls are queued. */
const CHILD_HELPERS = `
const { Worker } = require('worker_threads');
if (typeof compiled !== 'object' || compiled === null) {
  throw new Error('test/helpers/child.ts no longer exposes the transpiled lib/ map (compiled) to the child');
}
const WORKER_SOURCE = ${JSON.stringify(WORKER_SOURCE)};
const LIB = ${JSON.stringify(LIB)};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function startWorker(mode, seed, delay, calls) {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sources: compiled, lib: LIB, mode, seed, delay, calls } });
  const events = { queued: null, error: null, exitCode: null };
  const queued = new Promise((resolve) => {
    worker.once('message', (m) => { events.queued = m; resolve(); });
    worker.once('exit', (code) => { events.exitCode = code; resolve(); });
  });
  const exited = new Promise((resolve) => worker.once('exit', (code) => { events.exitCode = code; resolve(code); }));
  worker.on('error', (e) => { events.error = String(e && e.stack || e); });
  return { worker, events, queued, exited };
}
// After the workers: the library still works on this thread (sync and async, checked against a
// plain JavaScript product).
async function selfCheck() {
  const M = 3, N = 5, K = 8;
  const x = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
  const wd = Float32Array.from({ length: N * K }, (_, i) => ((i * 5) % 9) - 4);
  const w = cg.DenseWeight.from(wd, [N, K]);
  const ref = new Float32Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) { let s = 0; for (let k = 0; k < K; k++) s += x[m * K + k] * wd[n * K + k]; ref[m * N + n] = s; }
  const a = cg.linear(x, [M, K], w);
  const b = await cg.linearAsync(x, [M, K], w);
  return ref.every((v, i) => a[i] === v && b[i] === v);
}
`;

const ROUNDS = 6;
const DELAYS_MS = [0, 1, 3, 8, 20, 50];

function problems(r: ChildResult, expectStatus: number): string[] {
  const p: string[] = [];
  if (r.signal !== null) p.push(`the child died of signal ${r.signal}`);
  if (r.status !== expectStatus) p.push(`the child exited with status ${r.status}, expected ${expectStatus}`);
  if (/terminate called/.test(r.stderr)) p.push("stderr has 'terminate called' (a C++ exception escaped the addon)");
  if (/Abort|core dumped|Segmentation|FATAL ERROR/i.test(r.stderr)) p.push('stderr reports a crash');
  if (r.error) p.push(`the child's script threw: ${JSON.stringify(r.error)}`);
  return p;
}

function check(r: ChildResult, expectStatus: number, expectValue?: unknown): void {
  const p = problems(r, expectStatus);
  if (expectValue !== undefined && p.length === 0 && JSON.stringify(r.value) !== JSON.stringify(expectValue)) {
    p.push(`the child reported ${JSON.stringify(r.value)}, expected ${JSON.stringify(expectValue)}`);
  }
  if (p.length > 0) throw new Error(`${p.join('\n')}\n${describeChild(r)}`);
}

/** Rounds of two workers each: the workers queue their calls, then go away by `mode`. */
function roundsBody(mode: 'terminate' | 'exit-now' | 'exit-timer' | 'exit-after-first'): string {
  return `${CHILD_HELPERS}
const DELAYS = ${JSON.stringify(DELAYS_MS)};
const log = [];
for (let round = 0; round < ${ROUNDS}; round++) {
  const delay = DELAYS[round % DELAYS.length];
  const ws = [startWorker(${JSON.stringify(mode)}, 1000 + 2 * round, delay, 3), startWorker(${JSON.stringify(mode)}, 1001 + 2 * round, delay, 2)];
  await Promise.all(ws.map((w) => w.queued));
  if (${JSON.stringify(mode)} === 'terminate') {
    await sleep(delay);
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
  await Promise.all(ws.map((w) => w.exited));
  for (const w of ws) {
    if (w.events.error) log.push('round ' + round + ': worker error ' + w.events.error);
    if (${JSON.stringify(mode)} !== 'terminate' && w.events.exitCode !== 0) log.push('round ' + round + ': worker exit code ' + w.events.exitCode);
  }
}
out({ rounds: ${ROUNDS}, log, selfCheck: await selfCheck() });
`;
}

const EXPECT_ROUNDS = { rounds: ROUNDS, log: [], selfCheck: true };
const CHILD_TIMEOUT_MS = 20000;

describe('a worker that goes away with calls in flight does not take the process down', () => {
  test(`worker.terminate() from the parent, ${ROUNDS} rounds of 2 workers, 0-50 ms after the calls are queued`, () => {
    check(runChild(roundsBody('terminate'), {}, { timeoutMs: CHILD_TIMEOUT_MS }), 0, EXPECT_ROUNDS);
  });

  test(`process.exit() inside the worker right after queuing its calls, ${ROUNDS} rounds`, () => {
    check(runChild(roundsBody('exit-now'), {}, { timeoutMs: CHILD_TIMEOUT_MS }), 0, EXPECT_ROUNDS);
  });

  test(`process.exit() inside the worker from a timer (0-50 ms) while its calls run, ${ROUNDS} rounds`, () => {
    check(runChild(roundsBody('exit-timer'), {}, { timeoutMs: CHILD_TIMEOUT_MS }), 0, EXPECT_ROUNDS);
  });

  test(`process.exit() inside the worker when its first call resolves (the others in flight), ${ROUNDS} rounds`, () => {
    check(runChild(roundsBody('exit-after-first'), {}, { timeoutMs: CHILD_TIMEOUT_MS }), 0, EXPECT_ROUNDS);
  });
});

describe('the main thread calling process.exit() with calls in flight', () => {
  // A fresh process per round (the exit ends it): the main thread queues its own calls (all
  // three async entry points), optionally starts a worker that keeps calls in flight, then exits
  // after a varying delay with status 7. A marker written synchronously just before the exit
  // shows the script got there.
  const MAIN_DELAYS_MS = [0, 1, 3, 10, 30];
  function mainExitBody(withWorker: boolean, delay: number): string {
    return `${CHILD_HELPERS}
const fs = require('fs');
const N = 512, K = 1024, M = 64;
const f = (n) => Float32Array.from({ length: n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
const w = cg.DenseWeight.from(f(N * K), [N, K]);
const wu = cg.DenseWeight.from(f(N * K), [N, K]);
const x = f(M * K);
const ad = [new cg.LoraAdapter({ A: f(8 * K), B: f(N * 8), alpha: 1 }, [N, K])];
const idx = Int32Array.from({ length: M }, (_, m) => (m % 2) - 1);
const ws = ${withWorker} ? [startWorker('none', 7, 0, 2)] : [];
for (let i = 0; i < 3; i++) {
  cg.linearAsync(x, [M, K], w).catch(() => {});
  cg.linearMultiLoraAsync(x, [M, K], w, ad, idx).catch(() => {});
}
cg.lowRankUpdateAsync(wu, f(N * 16), f(16 * K), { alpha: 0.25 }).catch(() => {});
await Promise.all(ws.map((w) => w.queued));
await sleep(${delay});
fs.writeSync(1, '\\n@@exiting@@\\n');
process.exit(7);
`;
  }
  function rounds(withWorker: boolean): void {
    const failed: string[] = [];
    for (const delay of MAIN_DELAYS_MS) {
      const r = runChild(mainExitBody(withWorker, delay), {}, { timeoutMs: CHILD_TIMEOUT_MS });
      const p = problems(r, 7);
      if (!r.stdout.includes('@@exiting@@')) p.push('the child did not reach its process.exit() call');
      if (p.length > 0) failed.push(`exit ${delay} ms after queuing:\n  ${p.join('\n  ')}\n  ${describeChild(r).replace(/\n/g, '\n  ')}`);
    }
    if (failed.length > 0) throw new Error(`${failed.length} of ${MAIN_DELAYS_MS.length} rounds failed:\n${failed.join('\n')}`);
  }

  test(`its own calls in flight, exit 0-30 ms after queuing (${MAIN_DELAYS_MS.length} processes)`, () => rounds(false));
  test(`its own calls and a worker's calls in flight, exit 0-30 ms after queuing (${MAIN_DELAYS_MS.length} processes)`, () => rounds(true));
});
