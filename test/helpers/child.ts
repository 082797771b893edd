/**
 * Runs a snippet in a fresh Node process with a chosen environment: the backend and its
 * environment variables are read once per process, so env tests need their own process.
 *
 * The child loads the library from the TypeScript sources in lib/ (transpiled with the
 * project's own `typescript`), i.e. the same code the in-process tests exercise, and not dist/,
 * which could be stale (entry 'dist' loads dist/index.js, the package's entry point; 'none'
 * loads nothing). The snippet sees `cg` (the library) and `out(value)` to report a
 * JSON-serialisable result; an exception escaping the snippet is reported with its class, code
 * and message.
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface ChildError {
  name: string;
  code: unknown;
  message: string;
  isTypeError: boolean;
  isRangeError: boolean;
  isError: boolean;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** What the snippet passed to out(), when it finished. */
  value?: unknown;
  /** The exception that escaped the snippet, if any. */
  error?: ChildError;
}

const MARK = '@@cg-child-result@@';

let libCache: string | undefined;

/**
 * Every .ts file under lib/ transpiled once per test process (with the project's own `typescript`) into a JSON
 * file { path: js } that the children's require hook reads: a child then starts in ~0.1 s
 * instead of loading the TypeScript compiler itself.
 */
function transpiledLib(): string {
  if (libCache !== undefined && fs.existsSync(libCache)) return libCache;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const libDir = path.join(ROOT, 'lib');
  const files: Record<string, string> = {};
  for (const f of fs.readdirSync(libDir, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
    const file = path.join(libDir, f);
    files[file] = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020, esModuleInterop: true },
    }).outputText;
  }
  // One file per content (no cleanup needed); written under a temporary name, then renamed,
  // so that test processes running side by side never read a partial file.
  const json = JSON.stringify(files);
  const hash = crypto.createHash('sha256').update(json).digest('hex').slice(0, 16);
  libCache = path.join(os.tmpdir(), `compressed-gemm-test-lib-${hash}.json`);
  if (!fs.existsSync(libCache)) {
    const tmp = `${libCache}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, json);
    fs.renameSync(tmp, libCache);
  }
  return libCache;
}

function prelude(entry: 'lib' | 'dist' | 'none'): string {
  const lib = JSON.stringify(path.join(ROOT, 'lib', 'index.ts'));
  const dist = JSON.stringify(path.join(ROOT, 'dist', 'index.js'));
  const load =
    entry === 'none'
      ? ''
      : entry === 'dist'
      ? `const cg = require(${dist});`
      : `
const compiled = JSON.parse(require('fs').readFileSync(${JSON.stringify(transpiledLib())}, 'utf8'));
require.extensions['.ts'] = function (m, filename) {
  if (!(filename in compiled)) throw new Error('not transpiled for the test child: ' + filename);
  m._compile(compiled[filename], filename);
};
const cg = require(${lib});`;
  return `
'use strict';
${load}
const MARK = ${JSON.stringify(MARK)};
function out(value) { process.stdout.write('\\n' + MARK + JSON.stringify({ value }) + '\\n'); }
function fail(e) {
  const error = {
    name: e && e.name, code: e && e.code, message: String(e && e.message),
    isTypeError: e instanceof TypeError, isRangeError: e instanceof RangeError, isError: e instanceof Error,
  };
  process.stdout.write('\\n' + MARK + JSON.stringify({ error }) + '\\n');
}
`;
}

/**
 * Runs `body` (JavaScript; may use await) with `env` on top of this process's environment, from
 * which every COMPRESSED_GEMM_* variable was removed first (so the runner's settings do not leak).
 */
export function runChild(
  body: string,
  env: Record<string, string> = {},
  opts: { entry?: 'lib' | 'dist' | 'none'; nodeArgs?: string[]; timeoutMs?: number } = {},
): ChildResult {
  const script = `${prelude(opts.entry ?? 'lib')}
(async () => {
${body}
})().catch(fail);
`;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('COMPRESSED_GEMM_')) childEnv[k] = v;
  }
  Object.assign(childEnv, env);
  const r = spawnSync(process.execPath, [...(opts.nodeArgs ?? []), '-e', script], {
    cwd: ROOT,
    env: childEnv,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 90000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const res: ChildResult = { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  const line = res.stdout.split('\n').find((l) => l.startsWith(MARK));
  if (line) Object.assign(res, JSON.parse(line.slice(MARK.length)));
  return res;
}

/** A one-line description of a child run, for failure messages. */
export function describeChild(r: ChildResult): string {
  return `status ${r.status} signal ${r.signal}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`;
}
