#!/usr/bin/env node
// `npm install` runs this: it builds what this machine can build.
//   1. the TypeScript API (lib/ -> dist/), when lib/ and the TypeScript compiler are present
//      (a published package ships dist/ already);
//   2. the CPU addon with node-gyp (binding.gyp) — required, every machine can build it;
//   3. the CUDA addon with cmake-js (CMakeLists.txt) when nvcc is on the PATH. A failure warns
//      and leaves the CPU addon working, unless COMPRESSED_GEMM_REQUIRE_CUDA=1 makes it fatal.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const log = (msg) => process.stderr.write(`compressed-gemm: ${msg}\n`);

function run(cmd, args, what) {
  log(`${what}: ${[path.basename(cmd), ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
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

function buildCpuAddon() {
  const gyp = process.env.npm_config_node_gyp || require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  const jobs = String(Math.max(1, require('os').cpus().length));
  run(process.execPath, [gyp, 'rebuild', `--jobs=${jobs}`, ...nodedirArgs()], 'CPU addon (node-gyp)');
}

function buildCudaAddon() {
  const required = process.env.COMPRESSED_GEMM_REQUIRE_CUDA === '1';
  const { buildCuda } = require('./build-cuda.js');
  const r = buildCuda({ required });
  if (r.built) log(`CUDA addon built: ${path.relative(root, r.path)}`);
  else log(`CUDA addon not built (${r.reason}); the CPU backend will be used`);
}

try {
  buildTypeScript();
  buildCpuAddon();
  buildCudaAddon();
} catch (e) {
  log(`build failed: ${e.message}`);
  process.exit(1);
}
