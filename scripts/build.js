#!/usr/bin/env node
// `npm install` runs this (the package's `install` script): it compiles nothing when the package
// ships a prebuilt binary for this platform that loads here, and otherwise builds what this
// machine can build:
//   1. the TypeScript API (lib/ -> dist/), when lib/ and the TypeScript compiler are present
//      (a published package ships dist/ already);
//   2. the prebuilt binaries in prebuilds/<platform>-<arch>/ (scripts/prebuild.js made them) when
//      they match and load: nothing is compiled. Nothing is ever downloaded;
//   3. otherwise, or when asked (COMPRESSED_GEMM_BUILD_FROM_SOURCE=1, `npm install
//      --build-from-source`, `--build-from-source` here), from source: the CPU addon with node-gyp
//      (binding.gyp) — required, every machine with a C++17 compiler can build it — and the CUDA
//      addon with cmake-js (CMakeLists.txt) when nvcc is on the PATH. A failed CUDA build warns
//      and leaves the CPU addon working, unless COMPRESSED_GEMM_REQUIRE_CUDA=1 makes it fatal.
// In a checkout there are no prebuilds (prebuilds/ is git-ignored), so `npm ci` builds from
// source; `npm run build` always does.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const PREBUILD_DIR = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
// The addons every install needs; the CUDA addon is optional (the CPU backend works without it).
const REQUIRED_ADDONS = ['compressed_gemm_cpu', 'compressed_gemm_cuda_sim'];
const CUDA_ADDON = 'compressed_gemm_cuda';
const log = (msg) => process.stderr.write(`compressed-gemm: ${msg}\n`);

function run(cmd, args, what) {
  log(`${what}: ${[path.basename(cmd), ...args].join(' ')}`);
  // The tools' output goes to stderr: stdout is kept for what a caller parses (prebuild.js prints its manifest there).
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 2, 'inherit'], env: process.env });
  if (r.error) throw new Error(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status})`);
}

function buildTypeScript() {
  if (!fs.existsSync(path.join(root, 'lib', 'index.ts'))) return;
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    if (fs.existsSync(path.join(root, 'dist', 'index.js'))) return;
    throw new Error('dist/ is missing and the TypeScript compiler is not installed (run npm install without --omit=dev)');
  }
  run(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], 'TypeScript');
  require('./esm-entry.js').writeEsmEntry(path.join(root, 'dist'));
  fs.chmodSync(path.join(root, 'dist', 'tools', 'cli.js'), 0o755);
}

// node-gyp must not download headers (the build machines reach no such server): point it at
// the running Node's own headers when npm did not already say where they are.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [`--nodedir=${process.env.npm_config_nodedir}`];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

// The build tools are development dependencies (an install that uses the prebuilt binaries needs
// nothing from the registry): where they are missing, say exactly what to install.
function buildDependency(name) {
  try {
    return require.resolve(name, { paths: [root] });
  } catch {
    const version = require(path.join(root, 'package.json')).devDependencies[name];
    throw new Error(
      `building from source needs ${name}, which this package lists as a development dependency: ` +
        `add it to your project (npm install --save-dev ${name}@${version}), then npm rebuild compressed-gemm`,
    );
  }
}

/** node-gyp build (incremental, when build/ is configured) or rebuild of the CPU and cuda-sim addons. */
function buildCpuAddon({ incremental = false } = {}) {
  buildDependency('node-addon-api'); // binding.gyp asks it for its headers
  const gyp = process.env.npm_config_node_gyp || buildDependency('node-gyp/bin/node-gyp.js');
  const jobs = String(Math.max(1, require('os').cpus().length));
  const command = incremental && fs.existsSync(path.join(root, 'build', 'Makefile')) ? 'build' : 'rebuild';
  run(process.execPath, [gyp, command, `--jobs=${jobs}`, ...(command === 'rebuild' ? nodedirArgs() : [])], `CPU addon (node-gyp ${command})`);
}

function buildCudaAddon() {
  const required = process.env.COMPRESSED_GEMM_REQUIRE_CUDA === '1';
  const { buildCuda } = require('./build-cuda.js');
  const r = buildCuda({ required });
  if (r.built) log(`CUDA addon built: ${path.relative(root, r.path)}`);
  else log(`CUDA addon not built (${r.reason}); the CPU backend will be used`);
  return r;
}

/** Why a build from source was asked for, or null. */
function buildFromSourceRequested(argv = process.argv.slice(2), env = process.env) {
  if (argv.includes('--build-from-source')) return '--build-from-source';
  const v = (env.COMPRESSED_GEMM_BUILD_FROM_SOURCE || '').trim().toLowerCase();
  if (v !== '' && v !== '0' && v !== 'false') return `COMPRESSED_GEMM_BUILD_FROM_SOURCE=${v}`;
  // npm passes `--build-from-source` on to lifecycle scripts as npm_config_build_from_source
  // ('true', or a package name as node-gyp-build and node-pre-gyp accept it).
  const npm = (env.npm_config_build_from_source || '').trim();
  if (npm === 'true' || npm === 'compressed-gemm') return 'npm --build-from-source';
  return null;
}

/**
 * Loads the prebuilt addons `names` in a child process (a bad binary must not take the installer
 * down), after the loader's own check of the manifest (platform, Node-API, glibc). -> null or the error.
 */
function loadError(names) {
  const loader = path.join(root, 'dist', 'native', 'load.js');
  const code = `const loader = require('fs').existsSync(${JSON.stringify(loader)}) ? require(${JSON.stringify(loader)}) : null;
for (const name of ${JSON.stringify(names)}) {
  const why = loader && loader.prebuildMismatch(name);
  if (why) { process.stderr.write('Error: ' + why + '\\n'); process.exit(1); }
  require(require('path').join(${JSON.stringify(PREBUILD_DIR)}, name + '.napi.node'));
}`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  if (r.error) return `could not start node: ${r.error.message}`;
  if (r.status === 0) return null;
  return (r.stderr || '').trim().split('\n').filter((l) => /Error|error/.test(l)).slice(0, 2).join(' | ') || `exit ${r.status}`;
}

/**
 * This platform's prebuilds, when they match and load: { manifest, cuda: null | reason the CUDA
 * one is unusable }; else { reason }.
 */
function usablePrebuilds() {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(PREBUILD_DIR, 'manifest.json'), 'utf8'));
  } catch (e) {
    return { reason: e.code === 'ENOENT' ? `this package has no prebuilds for ${process.platform}-${process.arch}` : `bad manifest: ${e.message}` };
  }
  const file = (name) => path.join(PREBUILD_DIR, `${name}.napi.node`);
  const absent = REQUIRED_ADDONS.filter((n) => !fs.existsSync(file(n)));
  if (absent.length) return { reason: `prebuilds/${path.basename(PREBUILD_DIR)} lacks ${absent.join(', ')}` };
  const err = loadError(REQUIRED_ADDONS);
  if (err) return { reason: `the prebuilt binaries do not load here: ${err}` };
  // The CUDA addon links the CUDA runtime statically, so it loads without a driver; if it does not
  // load at all, the CPU backend still works, and cg.backend() will say why.
  const cuda = fs.existsSync(file(CUDA_ADDON)) ? loadError([CUDA_ADDON]) : manifest.missing?.[CUDA_ADDON] || 'not in this package';
  return { manifest, cuda };
}

function install() {
  buildTypeScript();
  const forced = buildFromSourceRequested();
  if (!forced) {
    const p = usablePrebuilds();
    if (p.manifest) {
      const where = path.relative(root, PREBUILD_DIR);
      log(`using the prebuilt binaries in ${where} (built ${p.manifest.builtAt}${p.manifest.commit ? ` from ${p.manifest.commit.slice(0, 12)}` : ''}); compiling nothing`);
      if (p.cuda) log(`no prebuilt CUDA addon to use (${p.cuda}); the CPU backend will be used (npx compressed-gemm info says more)`);
      return;
    }
    log(`building from source: ${p.reason}`);
  } else {
    log(`building from source (${forced})`);
  }
  buildCpuAddon();
  buildCudaAddon();
}

module.exports = { root, log, run, buildTypeScript, buildCpuAddon, buildCudaAddon, buildFromSourceRequested, PREBUILD_DIR, REQUIRED_ADDONS, CUDA_ADDON };

if (require.main === module) {
  try {
    install();
  } catch (e) {
    log(`build failed: ${e.message}`);
    process.exit(1);
  }
}
