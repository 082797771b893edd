#!/usr/bin/env node
// Builds the CUDA addon (CMakeLists.txt) with cmake-js into build-cuda/:
//   build-cuda/Release/compressed_gemm_cuda.node
//
//   const { buildCuda } = require('./build-cuda.js');
//   buildCuda({ required })  -> { built: true, path } | { built: false, reason }
//                               (required: true throws instead of returning built: false)
//   node scripts/build-cuda.js [--required]      (or COMPRESSED_GEMM_REQUIRE_CUDA=1)
//
// The CUDA compiler is $CUDACXX when set (as CMake itself honours it), else `nvcc` on the PATH.
// COMPRESSED_GEMM_CUDA_ARCHS="90a-real" (a CMake CUDA_ARCHITECTURES list) narrows the SASS targets
// for a faster local build; the default is 80-real;89-real;90a-real. Plain Node, no dependencies
// besides cmake-js itself; all build output goes to stderr.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const OUT_DIR = path.join(ROOT, 'build-cuda');
const ADDON_PATH = path.join(OUT_DIR, 'Release', 'compressed_gemm_cuda.node');
const STAMP = path.join(OUT_DIR, 'compressed-gemm-configure.json');

const log = (msg) => process.stderr.write(`compressed-gemm: ${msg}\n`);

function isExecutableFile(p) {
  try {
    if (!fs.statSync(p).isFile()) return false;
    if (process.platform !== 'win32') fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// `which`: the first executable called `name` on the PATH (with PATHEXT on Windows).
function findOnPath(name) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32'
    ? ['', ...(process.env.PATHEXT || '.EXE;.CMD;.BAT').split(';').filter(Boolean)]
    : [''];
  for (const dir of dirs) {
    for (const ext of exts) {
      const p = path.join(dir, name + ext);
      if (isExecutableFile(p)) return p;
    }
  }
  return null;
}

// -> { nvcc } or { reason }
function findCudaCompiler() {
  const env = process.env.CUDACXX;
  if (env) {
    const p = env.includes('/') || env.includes('\\') ? path.resolve(env) : findOnPath(env);
    if (p && isExecutableFile(p)) return { nvcc: p };
    return { reason: `CUDACXX=${env} is not an executable` };
  }
  const nvcc = findOnPath('nvcc');
  if (nvcc) return { nvcc };
  const hint = ['/usr/local/cuda/bin/nvcc', '/opt/cuda/bin/nvcc'].find(isExecutableFile);
  return {
    reason: 'nvcc is not on the PATH' +
      (hint ? ` (there is one at ${hint}: add ${path.dirname(hint)} to the PATH or set CUDACXX)` : ''),
  };
}

function findCmakeJs() {
  const pkgPath = require.resolve('cmake-js/package.json', { paths: [ROOT, __dirname] });
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin['cmake-js'];
  return path.join(path.dirname(pkgPath), bin);
}

function readStamp() {
  try {
    return fs.readFileSync(STAMP, 'utf8');
  } catch {
    return null;
  }
}

// Loads the built addon in a child process (so that nothing can take this one down) and asks it
// for its compiled architectures. -> null when fine, else the reason.
function smokeTest(addon) {
  const code = `const a = require(${JSON.stringify(addon)}); const r = a.probe(); ` +
    `process.stdout.write(JSON.stringify({ archs: a.compiledArchitectures(), ok: r.ok, ` +
    `devices: r.devices.map((d) => d.name + ' (sm_' + d.sm + ')'), error: r.errorName }));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  if (r.error) return { reason: `could not start node to load the addon: ${r.error.message}` };
  if (r.status !== 0) {
    const err = (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
    return { reason: `the built addon does not load (exit ${r.status}${r.signal ? ', ' + r.signal : ''}): ${err}` };
  }
  try {
    return { info: JSON.parse(r.stdout) };
  } catch {
    return { reason: `the built addon printed an unexpected answer: ${r.stdout}` };
  }
}

function attempt() {
  const cc = findCudaCompiler();
  if (!cc.nvcc) return { built: false, reason: cc.reason };
  if (!findOnPath('cmake')) return { built: false, reason: 'cmake is not on the PATH (nvcc is; install CMake >= 3.18)' };

  let cmakeJs;
  try {
    cmakeJs = findCmakeJs();
  } catch (e) {
    return { built: false, reason: `cmake-js is not installed (${e.message.split('\n')[0]})` };
  }

  const archs = process.env.COMPRESSED_GEMM_CUDA_ARCHS || '';
  const jobs = String(Math.max(1, (os.availableParallelism ? os.availableParallelism() : os.cpus().length)));
  // cmake-js configures only when build-cuda/ has no CMakeCache.txt: when the compiler or the
  // architectures changed since the last configure, start from a clean build directory.
  const stamp = JSON.stringify({ nvcc: cc.nvcc, archs, node: process.execPath });
  const command = fs.existsSync(path.join(OUT_DIR, 'CMakeCache.txt')) && readStamp() !== stamp ? 'rebuild' : 'compile';
  const args = [
    cmakeJs, command,
    '--directory', ROOT,
    '--out', OUT_DIR,
    '--config', 'Release',
    '--parallel', jobs,
    `--CDCMAKE_CUDA_COMPILER=${cc.nvcc}`, // cmake-js takes custom defines as one argument, --CDNAME=VALUE
  ];
  if (archs) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${archs}`);

  log(`CUDA addon (cmake-js ${command}, nvcc ${cc.nvcc}${archs ? ', archs ' + archs : ''})`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    // cmake-js and CMake print to stdout: send everything to stderr, so that a caller's stdout
    // (e.g. JSON) stays clean.
    stdio: ['ignore', 2, 2],
    env: process.env,
  });
  if (r.error) return { built: false, reason: `cmake-js could not start: ${r.error.message}` };
  if (r.status !== 0) {
    return { built: false, reason: `cmake-js ${command} failed (exit ${r.status === null ? r.signal : r.status}; the output above says why)` };
  }
  if (!fs.existsSync(ADDON_PATH)) return { built: false, reason: `cmake-js succeeded but ${ADDON_PATH} is missing` };
  try {
    fs.writeFileSync(STAMP, stamp);
  } catch {
    // only an optimisation for the next build
  }

  const smoke = smokeTest(ADDON_PATH);
  if (smoke.reason) return { built: false, reason: smoke.reason };
  const { info } = smoke;
  log(`CUDA addon built in ${((Date.now() - started) / 1000).toFixed(1)} s: SASS for sm ${info.archs.join(', ')}; ` +
    (info.ok ? `devices: ${info.devices.join(', ')}` : `no usable device here (${info.error})`));
  return { built: true, path: ADDON_PATH };
}

function buildCuda({ required = false } = {}) {
  let result;
  try {
    result = attempt();
  } catch (e) {
    result = { built: false, reason: `unexpected error: ${e && e.message ? e.message : e}` };
  }
  if (!result.built && required) {
    throw new Error(`the CUDA addon is required but was not built: ${result.reason}`);
  }
  return result;
}

module.exports = { buildCuda, ADDON_PATH, OUT_DIR };

if (require.main === module) {
  const required = process.argv.includes('--required') || process.env.COMPRESSED_GEMM_REQUIRE_CUDA === '1';
  try {
    const r = buildCuda({ required });
    if (r.built) log(`CUDA addon: ${path.relative(process.cwd(), r.path) || r.path}`);
    else log(`CUDA addon not built: ${r.reason}`);
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}
