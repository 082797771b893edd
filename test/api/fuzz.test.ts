/**
 * A seeded, bounded fuzz of the whole public API with hostile callers: every public function and
 * method (the table in fuzz-child.ts) is called with each argument, option and field replaced,
 * one at a time, by values a hostile caller would pass: objects that pass `instanceof` but are no
 * typed arrays, Proxies, detached buffers, spoofed `length`/`buffer`/`constructor`, swapped
 * prototypes, getters that throw, flip, detach other arguments after they were checked or start
 * lowRankUpdateAsync on the same weight, `out` arrays sharing memory with x through a second
 * SharedArrayBuffer object, numbers past float32 or 2^31 or 65,536, NaN/Infinity/-0/fractions,
 * BigInts, Symbols, forged weights, adapters and `this`, zero points of 255, malformed
 * safetensors files. Then random combinations of one or two of them, drawn from the seed.
 *
 * The contract checked (fuzz-child.ts says it in full): no crash, no hang; a refusal is an Error
 * whose `code` is one of ErrorCodes and not ERR_NATIVE (which would mean lib/ let the input reach
 * the addon's last-line checks); plus, for some values, a given code (ERR_OVERLAP, ERR_DETACHED,
 * ERR_WEIGHT, ERR_BUSY), a refusal, the valid call's result, the treatment of the same typed array
 * undisguised, or, in a race with lowRankUpdateAsync, ERR_BUSY or the result of the weight wholly
 * before or after the update.
 *
 * The cases run in a child process (test/helpers/child.ts, loading lib/ from its TypeScript
 * sources), which logs each case before it runs it: when the child dies or hangs, the case is
 * reported as such and the child starts again after it. Every problem is reported with the
 * function, the argument, the hostile value, what happened and the valid call it was made from;
 * the seed is printed (CG_TEST_SEED reproduces the run).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildResult, describeChild, runChild } from '../helpers/child';
import { BASE_SEED, seedFor } from '../helpers/reference';
import type { Config, Failure } from './fuzz-child';

/** Random cases after the sweep (at most), ... */
const RANDOM_CASES = 2000;
/** ... run while the fuzz is younger than this (the sweep always runs whole). */
const RANDOM_PHASE_MS = 25000;
/** A hard bound on the whole fuzz, restarts included. */
const BUDGET_MS = 100000;
/** Restarts after a case that killed the child, before giving up. */
const MAX_RESTARTS = 40;

/** fuzz-child.ts transpiled (with the project's own typescript) to a file the child can require. */
function engineFile(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const src = path.join(__dirname, 'fuzz-child.ts');
  const js = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
    fileName: src,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true },
  }).outputText;
  const file = path.join(os.tmpdir(), `compressed-gemm-fuzz-${crypto.createHash('sha256').update(js).digest('hex').slice(0, 16)}.js`);
  if (!fs.existsSync(file)) {
    fs.writeFileSync(`${file}.${process.pid}.tmp`, js);
    fs.renameSync(`${file}.${process.pid}.tmp`, file);
  }
  return file;
}

interface RunLog {
  total?: number;
  sweep?: number;
  started: Array<{ i: number; target: string; slot: string; hostile: string }>;
  failures: Failure[];
  hang?: number;
  ended: boolean;
}

function readLog(file: string): RunLog {
  const log: RunLog = { started: [], failures: [], ended: false };
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (line.startsWith('T ')) {
      const [, total, sweep] = line.split(' ');
      log.total = Number(total);
      log.sweep = Number(sweep);
    } else if (line.startsWith('S ')) {
      const sp = line.indexOf(' ', 2);
      log.started.push({ i: Number(line.slice(2, sp)), ...JSON.parse(line.slice(sp + 1)) });
    } else if (line.startsWith('F ')) {
      log.failures.push(JSON.parse(line.slice(2)));
    } else if (line.startsWith('H ')) {
      log.hang = Number(line.slice(2));
    } else if (line === 'E') {
      log.ended = true;
    }
  }
  return log;
}

interface FuzzRun {
  seed: number;
  total: number;
  sweep: number;
  ran: number;
  failures: Failure[];
  ms: number;
}

function fuzz(): FuzzRun {
  const seed = seedFor('api fuzz');
  const engine = engineFile();
  const t0 = Date.now();
  const failures: Failure[] = [];
  let from = 0;
  let total = -1;
  let sweep = -1;
  let ran = 0;
  for (let run = 0; ; run++) {
    const logFile = path.join(os.tmpdir(), `compressed-gemm-fuzz-${process.pid}-${seed}-${run}.log`);
    fs.rmSync(logFile, { force: true });
    const cfg: Config = { seed, from, randomCases: RANDOM_CASES, randomDeadline: t0 + RANDOM_PHASE_MS, logFile, caseTimeoutMs: 3000, watchdogMs: 8000 };
    const remaining = BUDGET_MS - (Date.now() - t0);
    const r: ChildResult = runChild(`const fz = require(${JSON.stringify(engine)});\nout(await fz.main(cg, ${JSON.stringify(cfg)}));`, {}, { timeoutMs: Math.max(remaining, 1000) });
    const log = readLog(logFile);
    fs.rmSync(logFile, { force: true });
    if (log.total !== undefined) {
      total = log.total;
      sweep = log.sweep ?? -1;
    }
    ran += log.started.length;
    failures.push(...log.failures);
    if (log.ended && r.status === 0 && !r.error) break;
    const last = log.started[log.started.length - 1];
    const at = last ?? { i: from, target: '?', slot: '?', hostile: '?' };
    const overBudget = Date.now() - t0 >= BUDGET_MS;
    let problem: string;
    let kind: string;
    if (log.ended) {
      failures.push({ ...at, problem: `every case ran, then the process ended badly: ${describeChild(r).slice(0, 1500)}`, kind: 'process died at exit', base: '' });
      break;
    }
    if (log.hang !== undefined) {
      problem = 'blocked the event loop (a synchronous hang); the watchdog killed the process';
      kind = 'hang (synchronous)';
    } else if (r.error) {
      problem = `the fuzz engine itself threw (a fuzzer bug, or the library broke it): ${JSON.stringify(r.error)}`;
      kind = 'fuzzer error';
    } else if (overBudget) {
      problem = `the time budget (${BUDGET_MS} ms) ran out during this case`;
      kind = 'time budget exhausted';
    } else {
      problem = `the process died during this case: ${describeChild(r).slice(0, 1500)}`;
      kind = `process died (${r.signal ?? `status ${r.status}`})`;
    }
    failures.push({ ...at, problem, kind, base: '' });
    if (overBudget || !last || total < 0 || at.i + 1 >= total || (at.i >= sweep && Date.now() > t0 + RANDOM_PHASE_MS)) break;
    if (run + 1 > MAX_RESTARTS) {
      failures.push({ ...at, problem: `gave up after ${MAX_RESTARTS} restarts`, kind: 'too many crashes', base: '' });
      break;
    }
    from = at.i + 1;
  }
  return { seed, total, sweep, ran, failures, ms: Date.now() - t0 };
}

/**
 * The report: the sweep's problems grouped by what went wrong, then by hostile value, with one
 * reproduction each; then the random combinations' problems, grouped by what went wrong and
 * where.
 */
function report(run: FuzzRun): string {
  const group = <T>(items: T[], key: (t: T) => string) => {
    const m = new Map<string, T[]>();
    for (const t of items) m.set(key(t), [...(m.get(key(t)) ?? []), t]);
    return [...m.entries()].sort((a, b) => b[1].length - a[1].length);
  };
  const inSweep = run.failures.filter((f) => f.i < run.sweep);
  const random = run.failures.filter((f) => f.i >= run.sweep);
  const lines: string[] = [
    `API fuzz: ${run.failures.length} problems in ${run.ran} cases (${run.sweep} in the sweep, ${Math.max(0, run.ran - run.sweep)} random; ${run.ms} ms); ` +
      `seed ${run.seed} (rerun: CG_TEST_SEED=${BASE_SEED} npx jest test/api/fuzz.test.ts)`,
    '',
    `The sweep (every function x argument x hostile value): ${inSweep.length} problems`,
  ];
  for (const [kind, fs_] of group(inSweep, (f) => f.kind)) {
    lines.push(`[${kind}] x${fs_.length}`);
    for (const [hostile, hs] of group(fs_, (f) => f.hostile)) {
      const where = [...new Set(hs.map((f) => `${f.target} ${f.slot}`))];
      const ex = hs[0];
      lines.push(`  ${hostile}  (x${hs.length})`);
      lines.push(`    in: ${where.slice(0, 6).join('; ')}${where.length > 6 ? `; ... ${where.length - 6} more` : ''}`);
      lines.push(`    e.g. case ${ex.i}: ${ex.target}, ${ex.slot} = ${ex.hostile}: ${ex.problem.slice(0, 400)}`);
      if (ex.base) lines.push(`    valid call it was made from: ${ex.base.slice(0, 300)}`);
    }
  }
  lines.push('', `Random combinations (seeded): ${random.length} problems`);
  for (const [key, fs_] of group(random, (f) => `${f.kind} | ${f.target}`).slice(0, 25)) {
    const ex = fs_[0];
    lines.push(`  [${key}] x${fs_.length}, e.g. case ${ex.i}: ${ex.slot} = ${ex.hostile}: ${ex.problem.slice(0, 200)}`);
  }
  return lines.join('\n');
}

test('hostile arguments to every public function and method: typed errors, no crash, no hang, no wrong result', () => {
  const run = fuzz();
  if (run.failures.length > 0) {
    const text = report(run);
    const file = path.join(os.tmpdir(), `compressed-gemm-fuzz-report-${run.seed}.txt`);
    fs.writeFileSync(file, `${text}\n\nAll problems (JSON lines):\n${run.failures.map((f) => JSON.stringify(f)).join('\n')}\n`);
    throw new Error(`${text}\n(every problem, as JSON lines: ${file})`);
  }
  expect(run.sweep).toBeGreaterThan(0);
  expect(run.ran).toBeGreaterThanOrEqual(run.sweep);
});
