/**
 * The package as a user gets it: `npm run prebuilds` (scripts/prebuild.js, reusing the binaries
 * already built here: --cuda=reuse compiles no CUDA), `npm pack`, then `npm install --offline
 * <tarball>` into an empty project on a PATH that holds only node, npm and sh — no C++ compiler,
 * no make, no nvcc, no python. The install must compile nothing (the install script says it used
 * the prebuilt binaries and no build/ appears), and the installed package must load its prebuilt
 * addons and compute: a float32 dense linear on the CPU kernels and a float16 one on the simulated
 * CUDA device, each against a float64 reference computed here.
 *
 * Bounds: float32 (CPU): products rounded (or fused) and K + 1 float32 additions (the bias
 * included): |y - ref| <= (K + 2) 2^-24 (sum_k |x_k w_k| + |b|). float16 (cuda-sim): the inputs are
 * exact float16 values (x rounded like the weight, as documented), products exact in float32, so
 * (K + 1) 2^-24 sum_k |x_k w_k| with float32 output.
 *
 * Skipped, with the reason, only where npm itself cannot be found to run `npm pack`.
 */
import { SpawnSyncReturns, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decode, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ROOT = path.resolve(__dirname, '..', '..');
const PLATFORM_DIR = `${process.platform}-${process.arch}`;

/** npm's own CLI script (the one running this test, or the one installed beside node). */
function findNpmCli(): string | null {
  const candidates = [
    process.env.npm_execpath,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ];
  return candidates.find((c): c is string => !!c && c.endsWith('npm-cli.js') && fs.existsSync(c)) ?? null;
}

const NPM = findNpmCli();

/** The environment without npm's per-script variables and this package's settings (a user's shell has neither). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|COMPRESSED_GEMM_|CUDA)/i.test(k) && k !== 'PATH' && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

function show(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}${r.error ? ` ${r.error.message}` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeout: number }): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Newest mtime under a directory. */
function newest(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return fs.readdirSync(p).reduce((m, e) => Math.max(m, newest(path.join(p, e))), st.mtimeMs);
}

(NPM ? describe : describe.skip)(`the packed package installs without a compiler${NPM ? '' : ' — SKIPPED: npm (npm-cli.js) was not found, so npm pack cannot run'}`, () => {
  const npm = NPM as string;
  let tmp = '';
  let bin = '';
  let project = '';
  let tarball = '';
  let manifest: { addons: Record<string, { cudaRuntime?: string; sass?: string[]; ptx?: string[] }>; missing: Record<string, string> };

  beforeAll(() => {
    // The tarball ships dist/ as it is: built from older lib/ sources it would test old code.
    const dist = path.join(ROOT, 'dist', 'index.js');
    if (!fs.existsSync(dist) || newest(path.join(ROOT, 'lib')) > fs.statSync(dist).mtimeMs) {
      throw new Error('dist/ is missing or older than lib/: run `npm run build:ts` first (npm ci does)');
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-install-'));
    // A PATH with node, npm and a shell (npm runs the install script with sh) and nothing else.
    bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(npm, path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));

    // Packaging, not the CUDA build: the CUDA addon goes in when it is there and up to date
    // (COMPRESSED_GEMM_REQUIRE_CUDA, which CI sets where nvcc exists, is about the build).
    const preEnv = { ...process.env };
    delete preEnv.COMPRESSED_GEMM_REQUIRE_CUDA;
    const pre = run(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.js'), '--cuda=reuse'], { cwd: ROOT, env: preEnv, timeout: 600_000 });
    if (pre.status !== 0) throw new Error(`prebuild failed: ${show(pre)}`);
    manifest = JSON.parse(pre.stdout);

    const pack = run(process.execPath, [npm, 'pack', '--json', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv({ PATH: process.env.PATH ?? '' }), timeout: 120_000 });
    if (pack.status !== 0) throw new Error(`npm pack failed: ${show(pack)}`);
    const packed = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(tmp, packed[0].filename);
    fs.writeFileSync(path.join(tmp, 'files.json'), JSON.stringify(packed[0].files.map((f) => f.path)));
  }, 600_000); // prebuild compiles the CPU addon first when build/Release is older than its sources

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('npm pack ships the prebuilds, their manifest, and what a build from source needs; not the tests or lib/', () => {
    const files = JSON.parse(fs.readFileSync(path.join(tmp, 'files.json'), 'utf8')) as string[];
    for (const name of Object.keys(manifest.addons)) expect(files).toContain(`prebuilds/${PLATFORM_DIR}/${name}.napi.node`);
    expect(Object.keys(manifest.addons)).toEqual(expect.arrayContaining(['compressed_gemm_cpu', 'compressed_gemm_cuda_sim']));
    expect(files).toEqual(expect.arrayContaining([
      `prebuilds/${PLATFORM_DIR}/manifest.json`, 'scripts/build.js', 'scripts/build-cuda.js', 'binding.gyp', 'CMakeLists.txt',
      'native/cuda/gemm_dense.cu', 'dist/index.js', 'dist/index.d.ts', 'package.json',
    ]));
    expect(files.filter((f) => /^(test|lib|build|build-cuda|node_modules)\//.test(f))).toEqual([]);
  });

  test('on a PATH without a compiler, make or nvcc, `npm install --offline <tarball>` compiles nothing and succeeds', () => {
    for (const tool of ['g++', 'gcc', 'c++', 'cc', 'make', 'nvcc', 'cmake', 'python3']) expect(fs.existsSync(path.join(bin, tool))).toBe(false);
    expect(fs.readdirSync(bin).sort()).toEqual(['node', 'npm', 'sh']);
    const r = run(process.execPath, [npm, 'install', '--offline', '--ignore-scripts=false', '--foreground-scripts', '--no-audit', '--no-fund', tarball], {
      cwd: project, env: cleanEnv({ PATH: bin }), timeout: 120_000,
    });
    if (r.status !== 0) throw new Error(`npm install failed: ${show(r)}`);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(new RegExp(`using the prebuilt binaries in prebuilds/${PLATFORM_DIR}.*compiling nothing`));
    const installed = path.join(project, 'node_modules', 'compressed-gemm');
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    expect(fs.existsSync(path.join(installed, 'build-cuda'))).toBe(false);
    // Nothing else was installed: the build tools are development dependencies.
    expect(fs.readdirSync(path.join(project, 'node_modules')).filter((d) => !d.startsWith('.'))).toEqual(['compressed-gemm']);
  });

  test('the installed package loads its prebuilt addons, says so in backend(), and computes', () => {
    const seed = seedFor('installed package linear');
    const rng = mulberry32(seed);
    const [M, K, N] = [3, 48, 7];
    const xs = Float32Array.from({ length: M * K }, () => randNonZero(rng));
    const ws = Float32Array.from({ length: N * K }, () => randNonZero(rng));
    const bs = Float32Array.from({ length: N }, () => randNonZero(rng));
    const script = `
const cg = require('compressed-gemm');
const [M, K, N] = [${M}, ${K}, ${N}];
const x = Float32Array.from(${JSON.stringify(Array.from(xs))});
const w = Float32Array.from(${JSON.stringify(Array.from(ws))});
const b = Float32Array.from(${JSON.stringify(Array.from(bs))});
const out = { backend: cg.backend(), status: cg.cudaStatus() };
if (out.backend.kind === 'cpu') {
  const y = cg.linear(x, [M, K], cg.DenseWeight.from(w, [N, K]), { bias: b });
  out.y = Array.from(y);
} else {
  const w16 = cg.DenseWeight.from(w, [N, K], { dtype: 'float16' });
  const x16 = cg.DenseWeight.from(x, [M, K], { dtype: 'float16' }).toDense();
  out.w16 = Array.from(w16.toDense());
  out.x16 = Array.from(x16);
  out.y = Array.from(cg.linear(x16, [M, K], w16, { dtype: 'float16', outDtype: 'float32' }));
}
process.stdout.write(JSON.stringify(out));`;
    const installed = fs.realpathSync(path.join(project, 'node_modules', 'compressed-gemm'));
    for (const backend of ['auto', 'cuda-sim']) {
      const r = run(process.execPath, ['-e', script], { cwd: project, env: cleanEnv({ PATH: bin, COMPRESSED_GEMM_BACKEND: backend }), timeout: 60_000 });
      if (r.status !== 0) throw new Error(`COMPRESSED_GEMM_BACKEND=${backend}: ${show(r)}`);
      const v = JSON.parse(r.stdout) as {
        backend: { kind: string; addons: { cpu: { origin: string; path: string }; cudaSim: { origin: string; path: string } | null }; gpu: { usable: boolean; message: string } | null };
        status: { usable: boolean; message: string; addon: { origin: string; runtime: string; sass: string[]; ptx: string[] | null } | null };
        y: number[]; w16?: number[]; x16?: number[];
      };
      expect(v.backend.addons.cpu).toEqual({ origin: 'prebuilt', path: path.join(installed, 'prebuilds', PLATFORM_DIR, 'compressed_gemm_cpu.napi.node') });
      // The CUDA addon: prebuilt when the prebuilds have one (its runtime and targets as the manifest says), else the reason.
      const cudaPrebuilt = manifest.addons.compressed_gemm_cuda;
      if (cudaPrebuilt) {
        expect(v.status.addon).toEqual(expect.objectContaining({ origin: 'prebuilt', runtime: cudaPrebuilt.cudaRuntime, sass: cudaPrebuilt.sass, ptx: cudaPrebuilt.ptx }));
      } else {
        expect(v.status.addon).toBeNull();
        expect(v.status.message).toContain(manifest.missing.compressed_gemm_cuda);
      }
      expect(v.status.message.length).toBeGreaterThan(20);
      let ref: number[];
      let bound: number[];
      if (backend === 'auto' && v.backend.kind === 'cpu') {
        expect(v.backend.gpu?.message).toBe(v.status.message);
        ref = [];
        bound = [];
        for (let m = 0; m < M; ++m) {
          for (let n = 0; n < N; ++n) {
            let s = bs[n];
            let mag = Math.abs(bs[n]);
            for (let k = 0; k < K; ++k) {
              s += xs[m * K + k] * ws[n * K + k];
              mag += Math.abs(xs[m * K + k] * ws[n * K + k]);
            }
            ref.push(s);
            bound.push((K + 2) * 2 ** -24 * mag);
          }
        }
      } else {
        // cuda-sim (or a real GPU under auto): the float16 path, on its prebuilt addon.
        if (backend === 'cuda-sim') {
          expect(v.backend.addons.cudaSim).toEqual({ origin: 'prebuilt', path: path.join(installed, 'prebuilds', PLATFORM_DIR, 'compressed_gemm_cuda_sim.napi.node') });
        }
        const xd = decode(Uint16Array.from(v.x16 as number[]), 'float16');
        const wd = decode(Uint16Array.from(v.w16 as number[]), 'float16');
        ref = [];
        bound = [];
        for (let m = 0; m < M; ++m) {
          for (let n = 0; n < N; ++n) {
            let s = 0;
            let mag = 0;
            for (let k = 0; k < K; ++k) {
              s += xd[m * K + k] * wd[n * K + k];
              mag += Math.abs(xd[m * K + k] * wd[n * K + k]);
            }
            ref.push(s);
            bound.push((K + 1) * 2 ** -24 * mag);
          }
        }
      }
      expect(v.y.length).toBe(M * N);
      for (let i = 0; i < ref.length; ++i) {
        if (!(Math.abs(v.y[i] - ref[i]) <= bound[i])) {
          throw new Error(`COMPRESSED_GEMM_BACKEND=${backend}: y[${i}] = ${v.y[i]}, reference ${ref[i]}, bound ${bound[i]}; ${seedNote(seed)}`);
        }
      }
    }
  });

  test('with install scripts disabled (npm install --ignore-scripts) the package still loads its prebuilt addon: the install step only checks', () => {
    const other = path.join(tmp, 'no-scripts');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'package.json'), JSON.stringify({ name: 'consumer2', version: '1.0.0', private: true }));
    const i = run(process.execPath, [npm, 'install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], { cwd: other, env: cleanEnv({ PATH: bin }), timeout: 120_000 });
    if (i.status !== 0) throw new Error(`npm install --ignore-scripts failed: ${show(i)}`);
    const r = run(process.execPath, ['-e', "const cg = require('compressed-gemm'); const y = cg.linear(new Float32Array([1, 2, 3, 4]), [1, 4], cg.DenseWeight.from(new Float32Array([4, 3, 2, 1]), [1, 4])); process.stdout.write(JSON.stringify({ origin: cg.backend().addons.cpu.origin, y: Array.from(y) }));"], {
      cwd: other, env: cleanEnv({ PATH: bin, COMPRESSED_GEMM_BACKEND: 'cpu' }), timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`require failed: ${show(r)}`);
    expect(JSON.parse(r.stdout)).toEqual({ origin: 'prebuilt', y: [20] }); // 1*4 + 2*3 + 3*2 + 4*1, exact in float32
  });

  test('a prebuild whose manifest does not match this system (it needs glibc 99.0) is not used: the loader says why, and install builds from source', () => {
    const installed = path.join(project, 'node_modules', 'compressed-gemm');
    const file = path.join(installed, 'prebuilds', PLATFORM_DIR, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    m.addons.compressed_gemm_cpu.glibc = '99.0';
    fs.writeFileSync(file, JSON.stringify(m));
    const r = run(process.execPath, ['-e', "try { require('compressed-gemm').backend(); } catch (e) { process.stdout.write(JSON.stringify({ code: e.code, message: e.message })); }"], {
      cwd: project, env: cleanEnv({ PATH: bin }), timeout: 60_000,
    });
    const v = JSON.parse(r.stdout) as { code: string; message: string };
    expect(v.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(v.message).toMatch(new RegExp(`compressed_gemm_cpu\\.napi\\.node: prebuilt for glibc >= 99\\.0, this system has glibc \\d+\\.\\d+`));
    const i = run(process.execPath, [npm, 'rebuild', '--offline', '--foreground-scripts', 'compressed-gemm'], { cwd: project, env: cleanEnv({ PATH: bin }), timeout: 120_000 });
    expect(i.status).not.toBe(0); // no compiler here
    expect(`${i.stdout}\n${i.stderr}`).toMatch(/building from source: the prebuilt binaries do not load here: .*prebuilt for glibc >= 99\.0/);
  });

  test('COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 forces a build from source, which here fails saying what it needs (and downloads nothing)', () => {
    const r = run(process.execPath, [npm, 'rebuild', '--offline', '--foreground-scripts', 'compressed-gemm'], {
      cwd: project, env: cleanEnv({ PATH: bin, COMPRESSED_GEMM_BUILD_FROM_SOURCE: '1' }), timeout: 120_000,
    });
    expect(r.status).not.toBe(0);
    const text = `${r.stdout}\n${r.stderr}`;
    expect(text).toContain('building from source (COMPRESSED_GEMM_BUILD_FROM_SOURCE=1)');
    expect(text).toMatch(/needs node-addon-api.*npm install --save-dev node-addon-api@\d+\.\d+\.\d+/);
    expect(text).not.toContain('using the prebuilt binaries');
  });
});
