/**
 * Loads the native addons; nothing else in lib/ touches a `.node` file. Their surfaces are
 * declared in cpu.ts and cuda.ts. Loading follows sharp's habit: every candidate tried is
 * recorded, so a failure can say what was tried and why each attempt failed.
 */
import * as path from 'path';
import type { CpuAddon } from './cpu';
import type { CudaAddon, CudaSimAddon } from './cuda';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

export interface LoadAttempt {
  path: string;
  error: string;
}

export interface LoadResult<T> {
  addon: T | null;
  attempts: LoadAttempt[];
}

function loadFirst<T>(candidates: string[]): LoadResult<T> {
  const attempts: LoadAttempt[] = [];
  for (const file of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      return { addon: require(file) as T, attempts };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      attempts.push({ path: file, error: err.code === 'MODULE_NOT_FOUND' ? 'not built' : err.message });
    }
  }
  return { addon: null, attempts };
}

function candidates(dirs: string[], file: string): string[] {
  const override = process.env.COMPRESSED_GEMM_ADDON_DIR;
  const roots = override ? [override, ...dirs] : dirs;
  return roots.map((d) => path.join(path.isAbsolute(d) ? d : path.join(PACKAGE_ROOT, d), file));
}

let cpu: LoadResult<CpuAddon> | undefined;
let cuda: LoadResult<CudaAddon> | undefined;

export function loadCpuAddon(): LoadResult<CpuAddon> {
  if (!cpu) cpu = loadFirst<CpuAddon>(candidates(['build/Release', 'build/Debug'], 'compressed_gemm_cpu.node'));
  return cpu;
}

let cudaSim: LoadResult<CudaSimAddon> | undefined;

/** The simulated CUDA device (built by binding.gyp on every machine, beside the CPU addon). */
export function loadCudaSimAddon(): LoadResult<CudaSimAddon> {
  if (!cudaSim) cudaSim = loadFirst<CudaSimAddon>(candidates(['build/Release', 'build/Debug'], 'compressed_gemm_cuda_sim.node'));
  return cudaSim;
}

export function loadCudaAddon(): LoadResult<CudaAddon> {
  if (!cuda) cuda = loadFirst<CudaAddon>(candidates(['build-cuda/Release', 'build-cuda/Debug', 'build-cuda'], 'compressed_gemm_cuda.node'));
  return cuda;
}
