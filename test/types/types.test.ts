/**
 * The package as a user gets it. lib/ is built the way `npm run build:ts` builds it (tsc, then
 * scripts/esm-entry.js) into a temporary package folder beside links to this checkout's addons,
 * and installed by name into a temporary consumer (node_modules/compressed-gemm, a symlink, as
 * `npm link` makes). Then:
 *  - every file package.json names (exports, main, types, bin) exists in that build and is in
 *    what `npm pack` ships;
 *  - require('compressed-gemm'), `import cg from` and `import { linear } from` each load it in a
 *    fresh Node process and compute (checked against a float64 reference), and are one library;
 *  - the type tests in check/ type-check under each module resolution a consumer may use, each
 *    against the declarations that resolution must pick, and check/broken.test-d.ts fails with
 *    exactly the errors marked in it.
 */
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { checkLinear, linearRef, mulberry32, randomFloat32, seedFor, seedNote } from '../helpers/reference';

const ROOT = path.resolve(__dirname, '..', '..');
const TSC = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
const PKG_JSON = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
/** The built addons the package loads, relative to its root (lib/native/load.ts). */
const ADDON_DIRS = ['build', 'build-cuda'];

let tmp: string;
let pkg: string;
let consumer: string;

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, COMPRESSED_GEMM_BACKEND: 'cpu' } });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cg-types-')));
  pkg = path.join(tmp, 'compressed-gemm');
  fs.mkdirSync(pkg);
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
  ok(run(process.execPath, [TSC, '-p', path.join(ROOT, 'tsconfig.json'), '--outDir', path.join(pkg, 'dist')], ROOT), 'tsc');
  ok(run(process.execPath, [path.join(ROOT, 'scripts', 'esm-entry.js'), path.join(pkg, 'dist')], ROOT), 'scripts/esm-entry.js');
  for (const d of ADDON_DIRS) {
    if (fs.existsSync(path.join(ROOT, d))) fs.symlinkSync(path.join(ROOT, d), path.join(pkg, d), 'dir');
  }

  consumer = path.join(tmp, 'consumer');
  fs.mkdirSync(path.join(consumer, 'node_modules'), { recursive: true });
  fs.symlinkSync(pkg, path.join(consumer, 'node_modules', 'compressed-gemm'), 'dir');
  // No "type": .js and .ts files are CommonJS here, .mjs and .mts ES modules.
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  for (const dir of ['check', 'runtime']) {
    for (const f of fs.readdirSync(path.join(__dirname, dir))) fs.copyFileSync(path.join(__dirname, dir, f), path.join(consumer, f));
  }
}, 120000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Every path in a package.json "exports" value (conditions nested to any depth). */
function exportTargets(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (v && typeof v === 'object') return Object.values(v).flatMap(exportTargets);
  return [];
}

describe('the build', () => {
  const named = (): string[] => [
    ...exportTargets(PKG_JSON.exports),
    PKG_JSON.main,
    PKG_JSON.types,
    ...Object.values(PKG_JSON.bin as Record<string, string>),
  ].map((p) => path.posix.normalize(p));

  test('exports both formats with their types, and keeps main, types and package.json', () => {
    const root = PKG_JSON.exports['.'];
    expect(root.import).toEqual({ types: './dist/index.d.mts', default: './dist/index.mjs' });
    expect(root.require).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(path.posix.normalize(PKG_JSON.main)).toBe('dist/index.js');
    expect(path.posix.normalize(PKG_JSON.types)).toBe('dist/index.d.ts');
    expect(PKG_JSON.exports['./package.json']).toBe('./package.json');
  });

  test('makes every file package.json names', () => {
    const missing = named().filter((p) => !fs.existsSync(path.join(pkg, p)));
    expect(missing).toEqual([]);
  });

  test('npm pack ships every file package.json names', () => {
    // In the built package folder: what its package.json "files" lets through is what ships.
    const out = ok(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], pkg), 'npm pack --dry-run');
    const shipped = new Set((JSON.parse(out)[0].files as Array<{ path: string }>).map((f) => f.path));
    expect(shipped.size).toBeGreaterThan(named().length);
    expect(named().filter((p) => !shipped.has(p))).toEqual([]);
  });

  test('the bin runs from the built package', () => {
    const bin = Object.values(PKG_JSON.bin as Record<string, string>)[0];
    const info = JSON.parse(ok(run(process.execPath, [path.join(pkg, bin), 'info', '--json'], consumer), 'compressed-gemm info'));
    expect(info.backend.kind).toBe('cpu');
  });
});

describe('loaded by name, each module format computes', () => {
  const [M, N, K] = [3, 5, 64];

  function child(script: string): Record<string, unknown> & { check: string | null } {
    const seed = seedFor(`types ${script}`);
    const rng = mulberry32(seed);
    const x = randomFloat32(rng, M * K);
    const w = randomFloat32(rng, N * K);
    const bias = randomFloat32(rng, N);
    const input = path.join(tmp, `${script}.json`);
    fs.writeFileSync(input, JSON.stringify({ M, N, K, x: Array.from(x), w: Array.from(w), bias: Array.from(bias) }));
    const r = JSON.parse(ok(run(process.execPath, [script, input], consumer), script));
    const { ref, absSum } = linearRef(Float64Array.from(x), Float64Array.from(w), Float64Array.from(bias), M, N, K);
    // Float32 inputs, float32 accumulation and output: the bound of test/helpers/reference.ts.
    const f32 = (b64: string): Float32Array => {
      const b = Buffer.from(b64, 'base64');
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    const check =
      checkLinear(f32(r.y), 'float32', ref, absSum, M, N, K, `${script} linear, ${seedNote(seed)}`) ??
      checkLinear(f32(r.yAsync), 'float32', ref, absSum, M, N, K, `${script} linearAsync, ${seedNote(seed)}`);
    return { ...r, check };
  }

  test("require('compressed-gemm') gets the CommonJS build", () => {
    const r = child('require.cjs');
    expect(r.check).toBeNull();
    expect(r.wroteOut).toBe(true);
    expect(r.resolved).toBe(path.join(pkg, 'dist', 'index.js'));
    expect(r.version).toBe(PKG_JSON.version);
    // The exports map closes the package's inside: only what lib/index.ts exports is public.
    expect(r.deepImport).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  test("import cg from 'compressed-gemm' gets the ES module entry, the same library object", () => {
    const r = child('import-default.mjs');
    expect(r.check).toBeNull();
    expect(r.wroteOut).toBe(true);
    expect(r.resolved).toBe(pathToFileURL(path.join(pkg, 'dist', 'index.mjs')).href);
    expect(r.sameAsRequire).toBe(true);
  });

  test("import { linear } from 'compressed-gemm' gets every export by name, each the CommonJS one", () => {
    const r = child('import-named.mjs');
    expect(r.check).toBeNull();
    expect(r.wroteOut).toBe(true);
    expect(r.named).toEqual(r.required);
    expect(r.named).toEqual(expect.arrayContaining(['linear', 'linearAsync', 'DenseWeight', 'Tensor', 'cuda', 'safetensors', 'CgError']));
    expect(r.mismatched).toEqual([]);
  });
});

describe('type tests', () => {
  /** tsc over `files` in the consumer, as a project extending test/types/tsconfig.json. */
  function tsc(name: string, compilerOptions: Record<string, string>, files: string[]): { status: number | null; out: string; files: string[] } {
    const config = path.join(consumer, `tsconfig.${name}.json`);
    fs.writeFileSync(config, JSON.stringify({ extends: path.join(__dirname, 'tsconfig.json'), compilerOptions, files }));
    const r = run(process.execPath, [TSC, '-p', config, '--pretty', 'false', '--listFiles'], consumer);
    const lines = r.stdout.split('\n').map((l) => l.trim());
    return { status: r.status, out: lines.filter((l) => / error TS\d+/.test(l)).join('\n'), files: lines.filter((l) => path.isAbsolute(l)) };
  }

  const CJS = path.join('dist', 'index.d.ts');
  const ESM = path.join('dist', 'index.d.mts');
  test.each([
    // [name, module, moduleResolution, files, the entry's declarations that must be used]
    ['node16-cjs', 'node16', 'node16', ['api.test-d.ts'], CJS],
    ['node16-esm', 'node16', 'node16', ['esm.test-d.mts'], ESM],
    ['nodenext-esm', 'nodenext', 'nodenext', ['esm.test-d.mts'], ESM],
    ['bundler', 'esnext', 'bundler', ['api.test-d.ts', 'esm.test-d.mts'], ESM],
    ['node10', 'commonjs', 'node10', ['api.test-d.ts'], CJS],
  ])('%s (module %s, moduleResolution %s) type-checks %j against %s', (name, module, moduleResolution, files, entry) => {
    const r = tsc(name, { module, moduleResolution }, files);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
    expect(r.files).toContain(path.join(pkg, entry));
    // CommonJS consumers never see the ES module entry.
    if (entry === CJS) expect(r.files).not.toContain(path.join(pkg, ESM));
  });

  test('a broken type test fails, with exactly the errors marked in it', () => {
    const file = 'broken.test-d.ts';
    const marked = fs
      .readFileSync(path.join(__dirname, 'check', file), 'utf8')
      .split('\n')
      .flatMap((line, i) => [...line.matchAll(/fails (TS\d+)/g)].map((m) => `${i + 1} ${m[1]}`));
    expect(marked.length).toBeGreaterThanOrEqual(5);
    const r = tsc('broken', { module: 'node16', moduleResolution: 'node16' }, [file]);
    expect(r.status).not.toBe(0);
    const reported = [...r.out.matchAll(/broken\.test-d\.ts\((\d+),\d+\): error (TS\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(reported.sort()).toEqual(marked.sort());
  });
});
