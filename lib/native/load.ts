/**
 * Loads the native addons; nothing else in lib/ touches a `.node` file. Their surfaces are
 * declared in cpu.ts and cuda.ts. Loading follows sharp's habit: every candidate tried is
 * recorded, so a failure can say what was tried and why each attempt failed.
 *
 * Where an addon is looked for, in order (node-gyp-build's lookup, written out here so that the
 * package has no runtime dependency):
 *   1. $COMPRESSED_GEMM_ADDON_DIR, when set;
 *   2. what was compiled on this machine: build/Release (node-gyp) or build-cuda/Release (cmake-js);
 *   3. the prebuilt binary shipped in the package, prebuilds/<platform>-<arch>/<name>.napi.node,
 *      when its manifest matches this process (platform, arch, Node-API version, C library).
 * A build from source comes before the prebuilt binary on purpose: it only exists when someone
 * asked for it (`npm install --build-from-source`, or a checkout being developed), and then it is
 * the one wanted; in a package installed from a tarball with prebuilds there is no build/.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { CpuAddon } from './cpu';
import type { CudaAddon, CudaSimAddon } from './cuda';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** prebuilds/<platform>-<arch>, relative to the package root (prebuildify's layout). */
export const PREBUILD_DIR = path.join('prebuilds', `${process.platform}-${process.arch}`);

/** Where a loaded addon came from: shipped prebuilt, compiled on this machine, or the override directory. */
export type AddonOrigin = 'prebuilt' | 'built here' | 'COMPRESSED_GEMM_ADDON_DIR';

export interface LoadAttempt {
  path: string;
  error: string;
}

export interface LoadResult<T> {
  addon: T | null;
  attempts: LoadAttempt[];
  /** The file loaded and where it came from; null when nothing loaded. */
  path: string | null;
  origin: AddonOrigin | null;
}

/** One addon's entry in prebuilds/<platform>-<arch>/manifest.json (written by scripts/prebuild.js). */
export interface PrebuiltAddon {
  file: string;
  bytes: number;
  sha256: string;
  /** The newest glibc symbol version the binary needs ("2.34"); null off glibc. */
  glibc: string | null;
  /** What it was copied from, relative to the package root where it was built. */
  builtFrom: string;
  /** CUDA addon only: the statically linked runtime ("13.0"), the SASS and PTX targets compiled in. */
  cudaRuntime?: string;
  sass?: string[];
  ptx?: string[];
}

export interface PrebuildManifest {
  package: string;
  version: string;
  platform: string;
  arch: string;
  libc: 'glibc' | 'musl' | null;
  /** The newest glibc any of the binaries needs. */
  glibc: string | null;
  napi: number;
  builtAt: string;
  builtWith: { node: string };
  /** The commit the binaries were built from ('+dirty': with uncommitted changes). */
  commit: string | null;
  addons: Record<string, PrebuiltAddon>;
  /** Addons not in this set, and why (e.g. the CUDA addon where the build machine had no nvcc). */
  missing: Record<string, string>;
}

let manifestCache: { manifest: PrebuildManifest | null; error: string | null } | undefined;

/** The manifest of this platform's prebuilds, if the package ships one. */
export function prebuildManifest(): { manifest: PrebuildManifest | null; error: string | null } {
  if (manifestCache) return manifestCache;
  const file = path.join(PACKAGE_ROOT, PREBUILD_DIR, 'manifest.json');
  try {
    manifestCache = { manifest: JSON.parse(fs.readFileSync(file, 'utf8')) as PrebuildManifest, error: null };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    manifestCache = {
      manifest: null,
      error: err.code === 'ENOENT' ? `this package has no prebuilds for ${process.platform}-${process.arch}` : `${file}: ${err.message}`,
    };
  }
  return manifestCache;
}

function versionAtLeast(have: string, need: string): boolean {
  const a = have.split('.').map(Number);
  const b = need.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); ++i) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** The running C library's glibc version, or null where it is not glibc (musl) or not Linux. */
function runtimeGlibc(): string | null {
  if (process.platform !== 'linux' || !process.report) return null;
  // The report's header says it (detect-libc reads it the same way); leaving the network
  // interfaces out keeps getReport() from waiting on name lookups.
  const report = process.report as typeof process.report & { excludeNetwork?: boolean };
  const before = report.excludeNetwork;
  report.excludeNetwork = true;
  try {
    return (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime ?? null;
  } finally {
    report.excludeNetwork = before;
  }
}

/**
 * Why this platform's prebuilt `name` cannot serve this process, or null when it matches
 * (scripts/build.js asks the same at install time).
 */
export function prebuildMismatch(name: string): string | null {
  const { manifest, error } = prebuildManifest();
  if (!manifest) return error;
  if (manifest.platform !== process.platform || manifest.arch !== process.arch) {
    return `the prebuilds are for ${manifest.platform}-${manifest.arch}, this is ${process.platform}-${process.arch}`;
  }
  if (!manifest.addons[name]) return `no prebuilt binary (${manifest.missing?.[name] ?? 'not in this package'})`;
  const napi = Number(process.versions.napi);
  if (napi < manifest.napi) return `prebuilt for Node-API ${manifest.napi}, this Node has ${napi} (Node >= 18 has 8)`;
  const need = manifest.addons[name].glibc;
  if (process.platform === 'linux' && need) {
    const have = runtimeGlibc();
    if (have === null) return `prebuilt for glibc ${need}, this system's C library is not glibc (musl?)`;
    if (!versionAtLeast(have, need)) return `prebuilt for glibc >= ${need}, this system has glibc ${have}`;
  }
  return null;
}

/** Why this platform's prebuilds have no `name` (the manifest says why, e.g. no nvcc where they were built). */
function prebuildAbsence(name: string): string {
  const { manifest, error } = prebuildManifest();
  if (!manifest) return `no prebuilt binary (${error})`;
  return `no prebuilt binary (${manifest.missing?.[name] ?? 'not in this package'})`;
}

interface Candidate {
  file: string;
  origin: AddonOrigin;
  /** Why not to try it at all (a prebuilt binary for another system). */
  skip?: string | null;
}

function loadFirst<T>(candidates: Candidate[]): LoadResult<T> {
  const attempts: LoadAttempt[] = [];
  for (const c of candidates) {
    if (c.skip) {
      attempts.push({ path: c.file, error: c.skip });
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      return { addon: require(c.file) as T, attempts, path: c.file, origin: c.origin };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      attempts.push({ path: c.file, error: err.code === 'MODULE_NOT_FOUND' ? 'not built' : err.message });
    }
  }
  return { addon: null, attempts, path: null, origin: null };
}

/** `name`'s candidates: the override, the build directories `dirs`, then the prebuilt binary. */
function candidates(dirs: string[], name: string): Candidate[] {
  const override = process.env.COMPRESSED_GEMM_ADDON_DIR;
  const file = `${name}.node`;
  const list: Candidate[] = [];
  if (override) list.push({ file: path.resolve(PACKAGE_ROOT, override, file), origin: 'COMPRESSED_GEMM_ADDON_DIR' });
  for (const d of dirs) list.push({ file: path.join(PACKAGE_ROOT, d, file), origin: 'built here' });
  const prebuilt = path.join(PACKAGE_ROOT, PREBUILD_DIR, `${name}.napi.node`);
  list.push({ file: prebuilt, origin: 'prebuilt', skip: fs.existsSync(prebuilt) ? prebuildMismatch(name) : prebuildAbsence(name) });
  return list;
}

let cpu: LoadResult<CpuAddon> | undefined;
let cuda: LoadResult<CudaAddon> | undefined;

export function loadCpuAddon(): LoadResult<CpuAddon> {
  if (!cpu) cpu = loadFirst<CpuAddon>(candidates(['build/Release', 'build/Debug'], 'compressed_gemm_cpu'));
  return cpu;
}

let cudaSim: LoadResult<CudaSimAddon> | undefined;

/** The simulated CUDA device (built by binding.gyp on every machine, beside the CPU addon). */
export function loadCudaSimAddon(): LoadResult<CudaSimAddon> {
  if (!cudaSim) cudaSim = loadFirst<CudaSimAddon>(candidates(['build/Release', 'build/Debug'], 'compressed_gemm_cuda_sim'));
  return cudaSim;
}

export function loadCudaAddon(): LoadResult<CudaAddon> {
  if (!cuda) cuda = loadFirst<CudaAddon>(candidates(['build-cuda/Release', 'build-cuda/Debug', 'build-cuda'], 'compressed_gemm_cuda'));
  return cuda;
}

/**
 * The PTX targets in the loaded CUDA addon ("compute_80"), which the addon itself cannot report:
 * the prebuild manifest's list for a prebuilt addon; for one built here, the architectures
 * scripts/build-cuda.js configured (its stamp in build-cuda/; none given means CMakeLists.txt's
 * default, SASS only). null when unknown (COMPRESSED_GEMM_ADDON_DIR).
 */
export function cudaPtxTargets(): string[] | null {
  const r = loadCudaAddon();
  if (r.origin === 'prebuilt') return prebuildManifest().manifest?.addons.compressed_gemm_cuda?.ptx ?? null;
  if (r.origin !== 'built here') return null;
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'build-cuda', 'compressed-gemm-configure.json'), 'utf8')) as { archs?: string };
    return (stamp.archs ?? '').split(';').filter((a) => a.endsWith('-virtual')).map((a) => `compute_${a.replace(/-virtual$/, '')}`);
  } catch {
    return null;
  }
}
