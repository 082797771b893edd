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
import { AddonOrigin, LoadResult, cudaPtxTargets, loadCpuAddon, loadCudaAddon, loadCudaSimAddon } from '../native/load';
import { CgError, CgRangeError, show } from '../errors';
import { checkThreads } from '../validate';
import { RouteInfo, routes } from './routing';

export type BackendKind = 'cuda' | 'cpu';
/** 'amx': the AVX-512 kernels, plus AMX-BF16 tiles for INT4 / FP8 weights with float activations (README, Backend). */
export type CpuIsa = 'scalar' | 'avx2' | 'avx512' | 'amx';
const ISA_ORDER: CpuIsa[] = ['scalar', 'avx2', 'avx512', 'amx'];

/** Where a loaded addon came from (see README, Install). */
export interface AddonInfo {
  /** 'prebuilt': shipped in the package (prebuilds/<platform>-<arch>); 'built here': compiled on this machine; or the override directory. */
  origin: AddonOrigin;
  path: string;
}

export interface CudaAddonInfo extends AddonInfo {
  /** The CUDA runtime linked (statically) into the addon: '13.0'. */
  runtime: string;
  /** The CUDA version the installed NVIDIA driver supports ('13.0'); null where there is no driver. */
  driver: string | null;
  /** GPU code compiled in: SASS (['sm_80', 'sm_89', 'sm_90a']) and PTX the driver can JIT for newer GPUs (['compute_80']; null: unknown). */
  sass: string[];
  ptx: string[] | null;
}

/** Why no GPU can be used, when none can. */
export type GpuProblem = 'addon-missing' | 'addon-failed' | 'no-driver' | 'driver-too-old' | 'no-device' | 'architecture-not-compiled';

export interface GpuStatus {
  usable: boolean;
  problem: GpuProblem | null;
  /** One explanation: what was found, why the GPU cannot be used, and what to do (or, when usable, what runs). */
  message: string;
}

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
  /** Where each addon in use came from; cuda: null when it was not loaded (none found, or COMPRESSED_GEMM_BACKEND=cpu/cuda-sim). */
  addons: { cpu: AddonInfo; cudaSim: AddonInfo | null; cuda: CudaAddonInfo | null };
  /** Whether a GPU can be used and, if not, why and what to do; null when COMPRESSED_GEMM_BACKEND=cpu/cuda-sim skipped the probe (cg.cudaStatus() probes anyway). */
  gpu: GpuStatus | null;
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

function addonInfo(r: LoadResult<unknown>): AddonInfo | null {
  return r.addon && r.path && r.origin ? { origin: r.origin, path: r.path } : null;
}

function cpuAddonOrThrow(): LoadResult<CpuAddon> & { addon: CpuAddon } {
  const r = loadCpuAddon();
  if (r.addon) return r as LoadResult<CpuAddon> & { addon: CpuAddon };
  const lines = r.attempts.map((a) => `  - ${a.path}: ${a.error}`).join('\n');
  throw new CgError(
    'ERR_BACKEND_UNAVAILABLE',
    `compressed-gemm: the CPU addon could not be loaded. Tried:\n${lines}\n` +
      'Build it with `COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 npm rebuild compressed-gemm` (needs python3, make and a C++17 compiler; ' +
      'on Debian/Ubuntu: apt-get install build-essential python3; and node-addon-api and node-gyp: README, Install).',
  );
}

/** "13.0" from the runtime's 13000. */
function cudaVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** The oldest Linux driver of each CUDA major version (CUDA release notes, table 3). */
const MIN_LINUX_DRIVER: Record<number, string> = { 12: '525.60.13', 13: '580.65.06' };

function driverNeeded(runtime: number): string {
  const major = Math.floor(runtime / 1000);
  const linux = MIN_LINUX_DRIVER[major];
  return `an NVIDIA driver for CUDA ${major}.0 or newer${linux ? ` (on Linux >= ${linux})` : ''}`;
}

const BUILD_CUDA_ADVICE =
  'build the CUDA addon here: with nvcc (the CUDA toolkit) and cmake on the PATH, ' +
  'COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 npm rebuild compressed-gemm (COMPRESSED_GEMM_REQUIRE_CUDA=1 makes a failed CUDA build an error)';

interface CudaDiagnosis extends GpuStatus {
  /** Short reasons, one a line (what each attempt found). */
  reasons: string[];
  addon: CudaAddon | null;
  info: CudaAddonInfo | null;
  probe: CudaProbe | null;
}

/** Loads and probes the CUDA addon: whether device 0 can run its kernels and, if not, why and what to do. */
function probeCuda(): CudaDiagnosis {
  const load = loadCudaAddon();
  const { addon } = load;
  if (!addon) {
    const missing = load.attempts.every((a) => a.error === 'not built' || a.error.startsWith('no prebuilt binary'));
    const reasons = load.attempts.map((a) => `CUDA addon ${a.path}: ${a.error}`);
    return {
      usable: false,
      problem: missing ? 'addon-missing' : 'addon-failed',
      message: `No GPU: the CUDA addon ${missing ? 'is not installed' : 'does not load'}. Tried:\n${reasons.map((r) => `  - ${r}`).join('\n')}\n` +
        `To use an NVIDIA GPU, ${BUILD_CUDA_ADVICE}. The CPU kernels run meanwhile.`,
      reasons,
      addon: null,
      info: null,
      probe: null,
    };
  }
  const origin = `${load.origin}, ${load.path}`;
  let probe: CudaProbe;
  let sass: string[];
  try {
    probe = addon.probe();
    sass = addon.compiledTargets();
  } catch (e) {
    const reason = `CUDA addon ${load.path} loaded but its probe failed: ${(e as Error).message}`;
    return { usable: false, problem: 'addon-failed', message: `No GPU: ${reason}. Reinstall the package, or ${BUILD_CUDA_ADVICE}. The CPU kernels run meanwhile.`, reasons: [reason], addon, info: null, probe: null };
  }
  const ptx = cudaPtxTargets();
  const info: CudaAddonInfo = {
    origin: load.origin as AddonOrigin,
    path: load.path as string,
    runtime: cudaVersion(probe.runtimeVersion),
    driver: probe.driverVersion > 0 ? cudaVersion(probe.driverVersion) : null,
    sass,
    ptx,
  };
  const targets = `SASS ${sass.join(', ')}; PTX ${ptx === null ? 'unknown' : ptx.join(', ') || 'none'}`;
  const fail = (problem: GpuProblem, reason: string, advice: string): CudaDiagnosis =>
    ({ usable: false, problem, message: `No GPU: ${reason}. ${advice}`, reasons: [reason], addon, info, probe });
  const err = `${probe.errorName ?? ''}: ${probe.error ?? ''}`;
  if (!probe.ok && probe.driverVersion === 0) {
    return fail('no-driver', `the CUDA addon (${origin}, CUDA runtime ${info.runtime}) finds no NVIDIA driver (${err})`,
      `On a machine with an NVIDIA GPU, install ${driverNeeded(probe.runtimeVersion)}; the CPU kernels run meanwhile.`);
  }
  const runtimeMajor = Math.floor(probe.runtimeVersion / 1000);
  if ((!probe.ok && probe.errorName === 'cudaErrorInsufficientDriver') || Math.floor(probe.driverVersion / 1000) < runtimeMajor) {
    return fail('driver-too-old',
      `the NVIDIA driver here supports CUDA ${info.driver}, older than the CUDA addon's runtime ${info.runtime} (${origin}${probe.ok ? '' : `; ${err}`})`,
      `Update the driver to ${driverNeeded(probe.runtimeVersion)}; or ${BUILD_CUDA_ADVICE.replace('the CUDA toolkit', `a CUDA toolkit no newer than ${info.driver}`)}. The CPU kernels run meanwhile.`);
  }
  if (!probe.ok || probe.deviceCount < 1) {
    const visible = process.env.CUDA_VISIBLE_DEVICES;
    return fail('no-device', `the NVIDIA driver (CUDA ${info.driver}) is there, but no CUDA device answers (${probe.ok ? 'no device found' : err})`,
      `Check that nvidia-smi lists a GPU${visible !== undefined ? ` and CUDA_VISIBLE_DEVICES (now "${visible}")` : ''}; the CPU kernels run meanwhile.`);
  }
  const d = probe.devices[0];
  // SASS runs on its own major version (arch-specific sm_90a only on 9.0: the addon's
  // kernelsSupported); PTX is JIT-compiled by the driver for any GPU at least as new.
  const jit = !d.kernelsSupported && (ptx ?? []).some((t) => Number(t.replace('compute_', '')) <= d.sm);
  if (!d.kernelsSupported && !jit) {
    const oldest = Math.min(...sass.map((t) => Number(/\d+/.exec(t)?.[0])));
    return fail('architecture-not-compiled',
      `device 0, ${d.name} (sm_${d.sm}), is not among the architectures compiled into the CUDA addon (${targets}; ${origin})`,
      d.sm < oldest
        ? `The kernels need sm_${oldest} or newer, so this GPU cannot run them; the CPU kernels run instead.`
        : `Build the CUDA addon for it: COMPRESSED_GEMM_CUDA_ARCHS=${d.sm}-real COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 npm rebuild compressed-gemm (nvcc and cmake on the PATH). The CPU kernels run meanwhile.`);
  }
  return {
    usable: true,
    problem: null,
    message: `GPU: device 0, ${d.name} (sm_${d.sm}), driver CUDA ${info.driver}, with the CUDA addon ${origin}: runtime ${info.runtime}, ${targets}` +
      (jit ? `. No SASS for sm_${d.sm}: the driver JIT-compiles the PTX at first use (slow once)` : ''),
    reasons: [],
    addon,
    info,
    probe,
  };
}

function selectIsa(available: CpuIsa[]): CpuIsa {
  const forced = envValue('COMPRESSED_GEMM_CPU_ISA');
  const best = available[available.length - 1];
  if (forced === undefined) return best;
  if (!(ISA_ORDER as string[]).includes(forced)) {
    throw new CgRangeError('ERR_ENV', `COMPRESSED_GEMM_CPU_ISA=${forced} is not one of ${ISA_ORDER.join(', ')}`);
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
  const cpuLoad = cpuAddonOrThrow();
  const cpuAddon = cpuLoad.addon;
  const addons: BackendInfo['addons'] = { cpu: addonInfo(cpuLoad) as AddonInfo, cudaSim: null, cuda: null };
  let gpu: GpuStatus | null = null;
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
    addons.cudaSim = addonInfo(sim);
    // The simulated device stands for the oldest architecture the kernels target (sm_80).
    cudaInfo = { device: 0, name: 'cuda-sim', sm: 80, compiledArchitectures: [80], simulated: true };
    device = 'simulated CUDA device (cuda-sim: the CUDA kernels\' source, run on the CPU)';
    features = ['simulated', 'sm_80'];
  } else if (wanted !== 'cpu') {
    const diagnosis = probeCuda();
    const { addon, probe } = diagnosis;
    gpu = { usable: diagnosis.usable, problem: diagnosis.problem, message: diagnosis.message };
    addons.cuda = diagnosis.info;
    if (diagnosis.usable && addon && probe) {
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
        `compressed-gemm: COMPRESSED_GEMM_BACKEND=cuda, but CUDA cannot be used here (${diagnosis.problem}).\n${diagnosis.message}\n` +
          'Or set COMPRESSED_GEMM_BACKEND=cpu (or auto) to use the CPU kernels.',
      );
    }
  }
  const table = routes(kind);
  for (const r of table) if (r.runsOn !== null && r.runsOn !== kind) notes.push(`${r.op} (${r.format}, ${r.activations}): ${r.note}`);
  state = {
    info: { kind, device, features, cpu: cpuInfo, cuda: cudaInfo, addons, gpu, notes, routes: table },
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
    addons: {
      cpu: { ...info.addons.cpu },
      cudaSim: info.addons.cudaSim && { ...info.addons.cudaSim },
      cuda: info.addons.cuda && { ...info.addons.cuda, sass: [...info.addons.cuda.sass], ptx: info.addons.cuda.ptx && [...info.addons.cuda.ptx] },
    },
    gpu: info.gpu && { ...info.gpu },
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

export interface CudaStatus extends GpuStatus {
  built: boolean;
  /** One line each: why the GPU cannot be used (empty when it can). */
  reasons: string[];
  compiledArchitectures: number[];
  /** Where the CUDA addon came from, its runtime and the GPU code in it; null when none loaded. */
  addon: CudaAddonInfo | null;
  probe: CudaProbe | null;
}

/** What the CUDA addon reports about this machine, whatever backend was chosen. */
export function cudaStatus(): CudaStatus {
  const d = probeCuda();
  return {
    built: d.addon !== null,
    usable: d.usable,
    problem: d.problem,
    message: d.message,
    reasons: d.reasons,
    compiledArchitectures: d.addon ? d.addon.compiledArchitectures() : [],
    addon: d.info,
    probe: d.probe,
  };
}
