#!/usr/bin/env node
// `npm run prebuild`: the binaries `npm pack` ships, so that `npm install` compiles nothing.
//
//   node scripts/prebuild.js [--cuda=build|reuse|skip]
//
// Copies the CPU addon and the simulated device's addon (build/Release, node-gyp; rebuilt first
// when a source is newer) and the CUDA addon (build-cuda/Release, cmake-js) into
// prebuilds/<platform>-<arch>/<name>.napi.node — prebuildify's layout, which node-gyp-build and
// lib/native/load.ts look up — with a manifest.json saying what each file is, when and from which
// commit it was built, the glibc it needs, and for the CUDA addon its runtime version and the SASS
// and PTX targets in it (read from the binary). Node-API 8 (binding.gyp, CMakeLists.txt), so one
// binary serves every Node >= 18.
//
// --cuda=build (default): builds the CUDA addon where nvcc is on the PATH, with SASS for sm_80,
//   sm_89, sm_90a and compute_80 PTX (newer GPUs JIT it), or COMPRESSED_GEMM_CUDA_ARCHS; cmake-js
//   compiles only what changed. COMPRESSED_GEMM_REQUIRE_CUDA=1 makes a missing CUDA addon an error.
// --cuda=reuse: takes build-cuda/'s addon when it is newer than its sources, compiles no CUDA
//   (test/package/install.test.ts: a CUDA build takes minutes).
// --cuda=skip: no CUDA addon.
// Prints the manifest on stdout; progress goes to stderr.
'use strict';
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { root, log, buildCpuAddon, PREBUILD_DIR, REQUIRED_ADDONS, CUDA_ADDON } = require('./build.js');

const PREBUILD_CUDA_ARCHS = '80-real;89-real;90a-real;80-virtual';
const CPU_OUTPUTS = REQUIRED_ADDONS.map((n) => path.join(root, 'build', 'Release', `${n}.node`));

function newestMtime(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return fs.readdirSync(p).reduce((m, e) => Math.max(m, newestMtime(path.join(p, e))), st.mtimeMs);
}

/** Every output exists and is newer than every input (files or directories). */
function upToDate(outputs, inputs) {
  if (!outputs.every((o) => fs.existsSync(o))) return false;
  const oldest = Math.min(...outputs.map((o) => fs.statSync(o).mtimeMs));
  return inputs.every((i) => newestMtime(path.join(root, i)) <= oldest);
}

/** The newest GLIBC_x.y symbol version an ELF file references (its .gnu.version_r), or null. */
function glibcNeeded(file) {
  const text = fs.readFileSync(file).toString('latin1');
  let best = null;
  for (const m of text.matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)) {
    const v = [Number(m[1]), Number(m[2]), Number(m[3] || 0)];
    if (!best || v[0] > best[0] || (v[0] === best[0] && (v[1] > best[1] || (v[1] === best[1] && v[2] > best[2])))) best = v;
  }
  return best ? (best[2] ? best.join('.') : `${best[0]}.${best[1]}`) : null;
}

/**
 * The CUDA code embedded in a binary: its fat binaries (magic 0xBA55ED50, then entries of kind
 * 1 = PTX, 2 = ELF/SASS, each with its sm version at byte 28 of the entry header). cuobjdump
 * --list-ptx/--list-elf says the same where the toolkit has it; this needs no toolkit.
 */
function fatbinTargets(file) {
  const buf = fs.readFileSync(file);
  const magic = Buffer.from([0x50, 0xed, 0x55, 0xba]);
  const ptx = new Set();
  const sass = new Set();
  for (let off = buf.indexOf(magic); off >= 0 && off + 16 <= buf.length; off = buf.indexOf(magic, off + 4)) {
    const end = off + buf.readUInt16LE(off + 6) + Number(buf.readBigUInt64LE(off + 8));
    for (let p = off + buf.readUInt16LE(off + 6); p + 32 <= Math.min(end, buf.length);) {
      const kind = buf.readUInt16LE(p);
      const sm = buf.readUInt32LE(p + 28);
      if (kind === 1) ptx.add(sm);
      else if (kind === 2) sass.add(sm);
      p += buf.readUInt32LE(p + 4) + buf.readUInt32LE(p + 8);
    }
  }
  const sorted = (s) => [...s].sort((a, b) => a - b);
  return { ptx: sorted(ptx).map((s) => `compute_${s}`), sass: sorted(sass) };
}

/** Loads the CUDA addon in a child: its runtime version and SASS targets. */
function cudaAddonReport(file) {
  const code = `const a = require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify({ runtime: a.probe().runtimeVersion, targets: a.compiledTargets() }));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`the CUDA addon ${file} does not load: ${(r.stderr || r.error || '').toString().trim().split('\n').slice(-2).join(' | ')}`);
  return JSON.parse(r.stdout);
}

/** -> { file } or { missing: reason } */
function cudaAddon(mode) {
  const { buildCuda, ADDON_PATH } = require('./build-cuda.js');
  const inputs = ['native', 'CMakeLists.txt'];
  if (mode === 'skip') return { missing: 'left out (prebuild --cuda=skip)' };
  if (mode === 'reuse') {
    if (upToDate([ADDON_PATH], inputs)) return { file: ADDON_PATH };
    return { missing: `not rebuilt (prebuild --cuda=reuse) and ${fs.existsSync(ADDON_PATH) ? 'older than its sources' : 'not built'} where the prebuilds were made` };
  }
  if (!process.env.COMPRESSED_GEMM_CUDA_ARCHS) process.env.COMPRESSED_GEMM_CUDA_ARCHS = PREBUILD_CUDA_ARCHS;
  const r = buildCuda({ required: process.env.COMPRESSED_GEMM_REQUIRE_CUDA === '1' });
  return r.built ? { file: r.path } : { missing: `not built where the prebuilds were made: ${r.reason}` };
}

function gitCommit() {
  const r = spawnSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return r.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() ? '+dirty' : '');
}

/** Copies `src` to `dst` by rename, so that a process that has the old file loaded keeps its mapping. */
function install(src, dst) {
  const tmp = `${dst}.tmp-${process.pid}`;
  fs.copyFileSync(src, tmp);
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dst);
}

function describe(file, dst) {
  const bytes = fs.readFileSync(dst);
  return {
    file: path.basename(dst),
    bytes: bytes.length,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    glibc: process.platform === 'linux' ? glibcNeeded(dst) : null,
    builtFrom: path.relative(root, file),
  };
}

function main() {
  const arg = process.argv.slice(2).find((a) => a.startsWith('--cuda='));
  const mode = arg ? arg.slice('--cuda='.length) : 'build';
  if (!['build', 'reuse', 'skip'].includes(mode)) throw new Error(`--cuda takes build, reuse or skip, got ${mode}`);
  const extra = process.argv.slice(2).filter((a) => a !== arg);
  if (extra.length) throw new Error(`unknown arguments: ${extra.join(' ')}`);

  if (upToDate(CPU_OUTPUTS, ['native', 'binding.gyp'])) log('CPU and cuda-sim addons: build/Release is up to date, reusing it');
  else buildCpuAddon({ incremental: true });
  const cuda = cudaAddon(mode);
  if (cuda.missing && process.env.COMPRESSED_GEMM_REQUIRE_CUDA === '1') throw new Error(`the CUDA addon is required: ${cuda.missing}`);

  fs.mkdirSync(PREBUILD_DIR, { recursive: true });
  for (const f of fs.readdirSync(PREBUILD_DIR)) fs.rmSync(path.join(PREBUILD_DIR, f), { force: true });
  const addons = {};
  const sources = Object.fromEntries(REQUIRED_ADDONS.map((n, i) => [n, CPU_OUTPUTS[i]]));
  if (cuda.file) sources[CUDA_ADDON] = cuda.file;
  for (const [name, file] of Object.entries(sources)) {
    const dst = path.join(PREBUILD_DIR, `${name}.napi.node`);
    install(file, dst);
    addons[name] = describe(file, dst);
  }
  if (cuda.file) {
    const dst = path.join(PREBUILD_DIR, `${CUDA_ADDON}.napi.node`);
    const report = cudaAddonReport(dst);
    const fat = fatbinTargets(dst);
    const numbers = report.targets.map((t) => Number(/^sm_(\d+)/.exec(t)[1])).sort((a, b) => a - b);
    if (JSON.stringify(numbers) !== JSON.stringify(fat.sass)) {
      throw new Error(`the CUDA addon says it holds ${report.targets.join(', ')} but its fat binaries hold SASS for ${fat.sass.join(', ')}`);
    }
    Object.assign(addons[CUDA_ADDON], {
      cudaRuntime: `${Math.floor(report.runtime / 1000)}.${Math.floor((report.runtime % 1000) / 10)}`,
      sass: report.targets,
      ptx: fat.ptx,
    });
  }
  const glibcs = Object.values(addons).map((a) => a.glibc).filter(Boolean);
  const pkg = require(path.join(root, 'package.json'));
  const manifest = {
    package: pkg.name,
    version: pkg.version,
    platform: process.platform,
    arch: process.arch,
    libc: process.platform === 'linux' ? 'glibc' : null,
    glibc: glibcs.length ? glibcs.reduce((a, b) => (b.localeCompare(a, undefined, { numeric: true }) > 0 ? b : a)) : null,
    napi: pkg.binary.napi_versions[0],
    builtAt: new Date().toISOString(),
    builtWith: { node: process.version },
    commit: gitCommit(),
    addons,
    missing: cuda.missing ? { [CUDA_ADDON]: cuda.missing } : {},
  };
  fs.writeFileSync(path.join(PREBUILD_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`prebuilds: ${path.relative(root, PREBUILD_DIR)}/ holds ${Object.keys(addons).join(', ')}` +
    (cuda.missing ? ` (no CUDA addon: ${cuda.missing})` : ''));
  process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
}

try {
  main();
} catch (e) {
  log(`prebuild failed: ${e.message}`);
  process.exit(1);
}
