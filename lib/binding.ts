/**
 * The whole native surface, declared once. Nothing else in lib/ touches a `.node` file.
 * Loading follows sharp's habit: every candidate tried is recorded, so a failure can say what
 * was tried and why each attempt failed.
 */
import * as path from 'path';

export interface NativeLinearArgs {
  kind: 0 | 1 | 2 | 3; // 0 dense (CPU panel layout), 1 2:4 (CPU 2:4 layout), 2 INT4, 3 FP8 (quant_format.h)
  M: number;
  N: number;
  K: number;
  x: ArrayBufferView;
  xDtype: number;
  w: ArrayBufferView | ArrayBuffer;
  wDtype: number;
  bias: Float32Array | null;
  out: ArrayBufferView;
  outDtype: number;
  threads: number;
  isa: number;
  /** 0 native, 1 fp8 (e4m3), 2 int8 activations */
  act: number;
  /** fp8 activations: K columns per scale (0: one scale per row) */
  actBlock: number;
  /** INT4: columns per group, and the act-order permutation (or null) */
  group?: number;
  perm?: Int32Array | null;
  /** FP8: 0 e4m3, 1 e5m2, and the scale unit */
  fp8Format?: number;
  bn?: number;
  bk?: number;
  /** Low-rank terms: packed adapters, and each row's adapter (null: adapter 0 for all rows) */
  lora?: { adapters: Array<{ a: ArrayBuffer; b: ArrayBuffer; r: number; alpha: number }>; rowAdapter: Int32Array | null } | null;
}

export interface CpuAddon {
  cpuInfo(): { features: string[]; isas: string[]; hardwareThreads: number };
  densePack(a: { data: ArrayBufferView; N: number; K: number; dtype: number }): ArrayBuffer;
  denseUnpack(a: { packed: ArrayBuffer; N: number; K: number; dtype: number; out: ArrayBufferView }): void;
  /** bad = -1 and the CPU 2:4 layout, or (compress) the flat index row*(K/4)+group of the first non-2:4 group. */
  sparse24Encode(a: { data: ArrayBufferView; N: number; K: number; dtype: number; mode: 'prune' | 'compress' }): { bad: number; packed?: ArrayBuffer };
  sparse24Unpack(a: { packed: ArrayBuffer; N: number; K: number; dtype: number; values: ArrayBufferView; meta: ArrayBufferView }): void;
  sparse24ToDense(a: { packed: ArrayBuffer; N: number; K: number; dtype: number; out: ArrayBufferView }): void;
  /** GFLOP/s of a register-only FMA loop on `threads` threads at once (isa 1 = avx2, 2 = avx512). */
  fmaPeak(a: { isa: number; threads: number; iterations: number }): number;
  convert(a: { src: ArrayBufferView; srcDtype: number; dst: ArrayBufferView; dstDtype: number }): void;
  /** format: 0 = e4m3, 1 = e5m2 */
  fp8Encode(a: { src: Float32Array; dst: Uint8Array; format: number }): void;
  fp8Decode(a: { src: Uint8Array; dst: Float32Array; format: number }): void;
  /** -1, or the flat index of the first non-finite weight */
  fp8Quantize(a: { data: Float32Array; N: number; K: number; bn: number; bk: number; format: number; codes: Uint8Array; scales: Float32Array }): number;
  fp8Pack(a: { codes: Uint8Array; scales: Float32Array; N: number; K: number; bn: number; bk: number }): ArrayBuffer;
  fp8Unpack(a: { packed: ArrayBuffer; N: number; K: number; bn: number; bk: number; codes: Uint8Array; scales: Float32Array }): void;
  fp8Dequant(a: { packed: ArrayBuffer; N: number; K: number; bn: number; bk: number; format: number; out: Float32Array }): void;
  /** bad: -1, or the flat index of the first offending weight; reason 1 = not finite, 2 = scale past float16 */
  int4Quantize(a: Int4Canonical & { data: Float32Array; symmetric: boolean }): { bad: number; reason: number };
  int4Pack(a: Int4Canonical & { perm: Int32Array | null }): ArrayBuffer;
  int4Unpack(a: Int4Canonical & { packed: ArrayBuffer; perm: Int32Array | null }): void;
  int4Dequant(a: { packed: ArrayBuffer; N: number; K: number; group: number; perm: Int32Array | null; out: Float32Array }): void;
  gptqToCanonical(a: PackedInt4Args): void;
  awqToCanonical(a: PackedInt4Args): void;
  linear(a: NativeLinearArgs): void;
  linearAsync(a: NativeLinearArgs): Promise<void>;
  /** Returns the scratch bytes used. */
  lowRankUpdate(a: Record<string, unknown>): number;
  lowRankUpdateAsync(a: Record<string, unknown>): Promise<number>;
}

/** The canonical INT4 format's arrays (native/common/quant_format.h); scaleDtype 0 = float32, 1 = float16. */
export interface Int4Canonical {
  N: number;
  K: number;
  group: number;
  qweight: Uint8Array;
  scales: Float32Array | Uint16Array;
  scaleDtype: number;
  zeros: Uint8Array | null;
}

export interface PackedInt4Args {
  N: number;
  K: number;
  G: number;
  qweight: Int32Array;
  qzeros: Int32Array;
  scales: Float32Array | Uint16Array;
  scaleDtype: number;
  outQ: Uint8Array;
  outZeros: Uint8Array;
  outScales: Float32Array | Uint16Array;
}

export interface CudaProbe {
  ok: boolean;
  deviceCount: number;
  error?: string;
  errorName?: string;
  runtimeVersion: number;
  driverVersion: number;
  devices: Array<{ index: number; name: string; computeCapability: string; sm: number; totalMemory: number; multiProcessorCount: number }>;
}

export interface CudaAddon {
  probe(): CudaProbe;
  compiledArchitectures(): number[];
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..');

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

export function loadCudaAddon(): LoadResult<CudaAddon> {
  if (!cuda) cuda = loadFirst<CudaAddon>(candidates(['build-cuda/Release', 'build-cuda/Debug', 'build-cuda'], 'compressed_gemm_cuda.node'));
  return cuda;
}
