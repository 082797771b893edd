/**
 * Backend selection, once, at first use: CUDA when the CUDA addon is built and a device answers,
 * else the CPU. COMPRESSED_GEMM_BACKEND=cpu|cuda|auto forces it (cuda-sim: the CUDA backend on
 * the simulated device); COMPRESSED_GEMM_CPU_ISA picks a
 * lower CPU instruction set (so tests can cover every path); COMPRESSED_GEMM_THREADS sizes the
 * CPU kernels' thread count.
 */
import * as os from 'os';
import type { CpuAddon } from '../native/cpu';
import type { CudaAddon, CudaProbe, DeviceAddon } from '../native/cuda';
import { loadCpuAddon, loadCudaAddon, loadCudaSimAddon } from '../native/load';
import { CgError, CgRangeError, show } from '../errors';
import { checkThreads } from '../validate';
import { RouteInfo, routes } from './routing';

export type BackendKind = 'cuda' | 'cpu';
export type CpuIsa = 'scalar' | 'avx2' | 'avx512';
const ISA_ORDER: CpuIsa[] = ['scalar', 'avx2', 'avx512'];

export interface BackendInfo {
  kind: BackendKind;
  /** GPU name for CUDA, the CPU model for the CPU. */
  device: string;
  /** CPU: instruction sets detected at run time; CUDA: `sm_XX` of the device. */
  features: string[];
  /** CPU kernels in use: the instruction set and the thread count. */
  cpu: { isa: CpuIsa; isas: CpuIsa[]; threads: number; hardwareThreads: number };
  /**
   * CUDA device and what the addon holds; null on the CPU backend. `simulated`: the simulated
   * device (COMPRESSED_GEMM_BACKEND=cuda-sim), the CUDA backend's own kernel sources run on the CPU.
   */
  cuda: { device: number; name: string; sm: number; compiledArchitectures: number[]; simulated: boolean } | null;
  /** Operations whose CUDA kernels do not exist yet run on the CPU kernels (see README). */
  notes: string[];
  /** The routing table as it applies here: each (op, format, activations), where it runs and why. */
  routes: RouteInfo[];
}

interface State {
  info: BackendInfo;
  cpuAddon: CpuAddon;
  cudaAddon: CudaAddon | null;
  /** The device runtime's exports: the CUDA addon's, or the simulated device's (cuda-sim). */
  deviceAddon: DeviceAddon | null;
  threads: number;
}

let state: State | undefined;

function envValue(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim().toLowerCase();
}

function cpuAddonOrThrow(): CpuAddon {
  const { addon, attempts } = loadCpuAddon();
  if (addon) return addon;
  const lines = attempts.map((a) => `  - ${a.path}: ${a.error}`).join('\n');
  throw new CgError(
    'ERR_BACKEND_UNAVAILABLE',
    `compressed-gemm: the CPU addon could not be loaded. Tried:\n${lines}\n` +
      'Build it with `npm rebuild compressed-gemm` (needs python3, make and a C++17 compiler; ' +
      'on Debian/Ubuntu: apt-get install build-essential python3).',
  );
}

/** Why CUDA cannot be used here, or null if it can (with the probe). */
function probeCuda(): { reasons: string[]; addon: CudaAddon | null; probe: CudaProbe | null } {
  const { addon, attempts } = loadCudaAddon();
  if (!addon) {
    return {
      reasons: attempts.map((a) => `CUDA addon ${a.path}: ${a.error}`),
      addon: null,
      probe: null,
    };
  }
  let probe: CudaProbe;
  try {
    probe = addon.probe();
  } catch (e) {
    return { reasons: [`CUDA addon loaded but its probe failed: ${(e as Error).message}`], addon, probe: null };
  }
  if (!probe.ok) {
    const what = probe.errorName === 'cudaErrorInsufficientDriver' ? 'no usable NVIDIA driver' : 'no CUDA device';
    return { reasons: [`CUDA addon loaded, ${what}: ${probe.errorName ?? ''} ${probe.error ?? ''}`.trim()], addon, probe };
  }
  if (probe.deviceCount < 1) return { reasons: ['CUDA addon loaded, driver present, no device found'], addon, probe };
  return { reasons: [], addon, probe };
}

function selectIsa(available: CpuIsa[]): CpuIsa {
  const forced = envValue('COMPRESSED_GEMM_CPU_ISA');
  const best = available[available.length - 1];
  if (forced === undefined) return best;
  if (!(ISA_ORDER as string[]).includes(forced)) {
    throw new CgRangeError('ERR_ENV', `COMPRESSED_GEMM_CPU_ISA=${forced} is not one of scalar, avx2, avx512`);
  }
  if (!(available as string[]).includes(forced)) {
    throw new CgError(
      'ERR_BACKEND_UNAVAILABLE',
      `COMPRESSED_GEMM_CPU_ISA=${forced}, but this CPU only runs ${available.join(', ')}; unset it or pick one of those`,
    );
  }
  return forced as CpuIsa;
}

function selectThreads(hardware: number): number {
  const v = envValue('COMPRESSED_GEMM_THREADS');
  if (v === undefined) return hardware;
  const n = Number(v);
  try {
    return checkThreads(n, 'COMPRESSED_GEMM_THREADS');
  } catch {
    throw new CgRangeError('ERR_ENV', `COMPRESSED_GEMM_THREADS=${v} must be an integer from 1 to 1024`);
  }
}

export function selectBackend(): State {
  if (state) return state;
  const wanted = envValue('COMPRESSED_GEMM_BACKEND') ?? 'auto';
  if (!['auto', 'cpu', 'cuda', 'cuda-sim'].includes(wanted)) {
    throw new CgRangeError('ERR_ENV', `COMPRESSED_GEMM_BACKEND=${wanted} is not one of auto, cpu, cuda, cuda-sim`);
  }
  const cpuAddon = cpuAddonOrThrow();
  const ci = cpuAddon.cpuInfo();
  const notes: string[] = [];
  const isas = ci.isas.filter((i): i is CpuIsa => (ISA_ORDER as string[]).includes(i));
  const isa = selectIsa(isas);
  const threads = selectThreads(ci.hardwareThreads);
  const cpuInfo = { isa, isas, threads, hardwareThreads: ci.hardwareThreads };

  let kind: BackendKind = 'cpu';
  let cudaAddon: CudaAddon | null = null;
  let deviceAddon: DeviceAddon | null = null;
  let cudaInfo: BackendInfo['cuda'] = null;
  let device = os.cpus()[0]?.model?.trim() || 'cpu';
  let features = ci.features;
  if (wanted === 'cuda-sim') {
    const sim = loadCudaSimAddon();
    if (!sim.addon) {
      throw new CgError(
        'ERR_BACKEND_UNAVAILABLE',
        'compressed-gemm: COMPRESSED_GEMM_BACKEND=cuda-sim, but the simulated device\'s addon could not be loaded. Tried:\n' +
          sim.attempts.map((a) => `  - ${a.path}: ${a.error}`).join('\n') +
          '\nIt is built with the CPU addon by `npm install` (node-gyp, binding.gyp); rebuild with `npm rebuild compressed-gemm`.',
      );
    }
    kind = 'cuda';
    deviceAddon = sim.addon;
    // The simulated device stands for the oldest architecture the kernels target (sm_80).
    cudaInfo = { device: 0, name: 'cuda-sim', sm: 80, compiledArchitectures: [80], simulated: true };
    device = 'simulated CUDA device (cuda-sim: the CUDA kernels\' source, run on the CPU)';
    features = ['simulated', 'sm_80'];
  } else if (wanted !== 'cpu') {
    const { reasons, addon, probe } = probeCuda();
    if (reasons.length === 0 && addon && probe) {
      const d = probe.devices[0];
      kind = 'cuda';
      cudaAddon = addon;
      deviceAddon = addon;
      cudaInfo = { device: 0, name: d.name, sm: d.sm, compiledArchitectures: addon.compiledArchitectures(), simulated: false };
      device = d.name;
      features = [`sm_${d.sm}`];
    } else if (wanted === 'cuda') {
      throw new CgError(
        'ERR_BACKEND_UNAVAILABLE',
        'compressed-gemm: COMPRESSED_GEMM_BACKEND=cuda, but CUDA cannot be used here. Tried:\n' +
          reasons.map((r) => `  - ${r}`).join('\n') +
          '\nTo fix: on a machine with an NVIDIA GPU and driver, install with nvcc on the PATH so ' +
          '`npm install` builds the CUDA addon (COMPRESSED_GEMM_REQUIRE_CUDA=1 makes a failed build an error); ' +
          'or set COMPRESSED_GEMM_BACKEND=cpu (or auto) to use the CPU kernels.',
      );
    }
  }
  const table = routes(kind);
  for (const r of table) if (r.runsOn !== null && r.runsOn !== kind) notes.push(`${r.op} (${r.format}, ${r.activations}): ${r.note}`);
  state = {
    info: { kind, device, features, cpu: cpuInfo, cuda: cudaInfo, notes, routes: table },
    cpuAddon,
    cudaAddon,
    deviceAddon,
    threads,
  };
  return state;
}

/** Which backend runs the operations, and what it can do. */
export function backend(): BackendInfo {
  const info = selectBackend().info;
  return {
    ...info, features: [...info.features], cpu: { ...info.cpu, isas: [...info.cpu.isas] }, notes: [...info.notes],
    routes: info.routes.map((r) => ({ ...r })),
  };
}

/** Sets how many threads the CPU kernels use from now on (default: COMPRESSED_GEMM_THREADS or all cores). */
export function setThreads(n: number): void {
  const s = selectBackend();
  s.threads = checkThreads(n, 'threads');
  s.info.cpu.threads = s.threads;
}

/**
 * Runs the CPU kernels on instruction set `isa` from now on (one this CPU has: see
 * backend().cpu.isas). COMPRESSED_GEMM_CPU_ISA does the same at load time.
 */
export function setCpuIsa(isa: CpuIsa): void {
  const s = selectBackend();
  if (typeof isa !== 'string' || !(ISA_ORDER as string[]).includes(isa)) {
    throw new CgRangeError('ERR_INVALID_ARG', `isa must be one of ${ISA_ORDER.join(', ')}, got ${show(isa)}`);
  }
  if (!s.info.cpu.isas.includes(isa)) {
    throw new CgError('ERR_BACKEND_UNAVAILABLE', `this CPU runs ${s.info.cpu.isas.join(', ')}, not ${isa}`);
  }
  s.info.cpu.isa = isa;
}

/** What the CUDA addon reports about this machine, whatever backend was chosen. */
export function cudaStatus(): { built: boolean; usable: boolean; reasons: string[]; compiledArchitectures: number[]; probe: CudaProbe | null } {
  const { reasons, addon, probe } = probeCuda();
  return {
    built: addon !== null,
    usable: reasons.length === 0,
    reasons,
    compiledArchitectures: addon ? addon.compiledArchitectures() : [],
    probe,
  };
}
