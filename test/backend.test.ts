/**
 * Backend selection and its environment variables (read once per process, so those tests run
 * in child processes: test/helpers/child.ts), the CPU instruction-set report, and the CUDA
 * addon's status.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as cg from '../lib';
import { ChildResult, ROOT, describeChild, runChild } from './helpers/child';

const ISA_ORDER = ['scalar', 'avx2', 'avx512', 'amx'];

/** Runs `body` in a child and returns what it passed to out(); fails with the child's output otherwise. */
function childValue(body: string, env: Record<string, string> = {}, entry: 'lib' | 'dist' = 'lib'): unknown {
  const r = runChild(body, env, { entry });
  if (r.status !== 0 || r.error || !('value' in r)) {
    throw new Error(`child (env ${JSON.stringify(env)}) failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  }
  return r.value;
}

/** Runs `body` in a child and returns the error that escaped it; fails if none did. */
function childError(body: string, env: Record<string, string>): NonNullable<ChildResult['error']> {
  const r = runChild(body, env);
  if (!r.error) throw new Error(`expected the child (env ${JSON.stringify(env)}) to throw\n${describeChild(r)}`);
  return r.error;
}

/** The x86 flags the kernel reports, where /proc/cpuinfo exists (Linux). */
function cpuinfoFlags(): Set<string> | null {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const line = text.split('\n').find((l) => /^flags\s*:/.test(l));
    return line ? new Set(line.split(':')[1].trim().split(/\s+/)) : null;
  } catch {
    return null;
  }
}

function nvccOnPath(): string | null {
  const exe = process.platform === 'win32' ? 'nvcc.exe' : 'nvcc';
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

const STATUS = cg.cudaStatus();
const CUDA_USABLE = STATUS.usable;

describe('backend() in this process', () => {
  const info = cg.backend();

  test('has the documented shape', () => {
    expect(['cpu', 'cuda']).toContain(info.kind);
    expect(typeof info.device).toBe('string');
    expect(info.device.length).toBeGreaterThan(0);
    expect(Array.isArray(info.features)).toBe(true);
    for (const f of info.features) expect(typeof f).toBe('string');
    expect(Array.isArray(info.notes)).toBe(true);
    expect(info.cpu.isas[0]).toBe('scalar');
    expect(info.cpu.isas).toEqual(ISA_ORDER.filter((i) => info.cpu.isas.includes(i as cg.CpuIsa)));
    expect(info.cpu.isas).toContain(info.cpu.isa);
    expect(Number.isInteger(info.cpu.hardwareThreads) && info.cpu.hardwareThreads >= 1).toBe(true);
    expect(Number.isInteger(info.cpu.threads) && info.cpu.threads >= 1).toBe(true);
  });

  test('addons says where the CPU addon came from: built here, in this checkout (or the override directory)', () => {
    const override = process.env.COMPRESSED_GEMM_ADDON_DIR;
    expect(info.addons.cpu).toEqual(override
      ? { origin: 'COMPRESSED_GEMM_ADDON_DIR', path: path.resolve(ROOT, override, 'compressed_gemm_cpu.node') }
      : { origin: 'built here', path: path.join(ROOT, 'build', 'Release', 'compressed_gemm_cpu.node') });
    expect(fs.existsSync(info.addons.cpu.path)).toBe(true);
    expect(info.addons.cudaSim).toBeNull(); // loaded only for COMPRESSED_GEMM_BACKEND=cuda-sim
  });

  test('gpu explains, in one message, whether a GPU can be used (unless COMPRESSED_GEMM_BACKEND=cpu skipped the probe)', () => {
    const forced = (process.env.COMPRESSED_GEMM_BACKEND ?? '').trim().toLowerCase();
    if (forced === 'cpu' || forced === 'cuda-sim') {
      expect(info.gpu).toBeNull();
      expect(info.addons.cuda).toBeNull();
      return;
    }
    expect(info.gpu).toEqual({ usable: STATUS.usable, problem: STATUS.problem, message: STATUS.message });
    expect(info.addons.cuda).toEqual(STATUS.addon);
    expect(info.gpu?.message).toMatch(STATUS.usable ? /^GPU: / : /^No GPU: /);
  });

  test(`kind is ${CUDA_USABLE ? "'cuda' (a usable CUDA device)" : "'cpu' (no usable CUDA device here)"}`, () => {
    // COMPRESSED_GEMM_BACKEND set by whoever runs the tests decides otherwise.
    const forced = (process.env.COMPRESSED_GEMM_BACKEND ?? '').trim().toLowerCase();
    if (forced === 'cpu') expect(info.kind).toBe('cpu');
    else expect(info.kind).toBe(CUDA_USABLE ? 'cuda' : 'cpu');
    if (info.kind === 'cpu') expect(info.cuda).toBeNull();
  });

  test('returns a copy: changing it changes nothing', () => {
    const a = cg.backend();
    a.cpu.isas.push('avx9000' as cg.CpuIsa);
    a.features.push('nonsense');
    a.cpu.threads = 999;
    const b = cg.backend();
    expect(b.cpu.isas).not.toContain('avx9000');
    expect(b.features).not.toContain('nonsense');
    expect(b.cpu.threads).not.toBe(999);
  });

  test('setThreads(n) and setCpuIsa(isa) change what backend() reports', () => {
    const before = cg.backend().cpu;
    try {
      cg.setThreads(1);
      expect(cg.backend().cpu.threads).toBe(1);
      cg.setThreads(3);
      expect(cg.backend().cpu.threads).toBe(3);
      for (const isa of before.isas) {
        cg.setCpuIsa(isa);
        expect(cg.backend().cpu.isa).toBe(isa);
        expect(cg.linear(new Float32Array([1, 2, 3, 4]), [1, 4], cg.DenseWeight.from(new Float32Array([1, 1, 1, 1]), [1, 4]))[0]).toBe(10);
      }
    } finally {
      cg.setThreads(before.threads);
      cg.setCpuIsa(before.isa);
    }
    expect(cg.backend().cpu).toEqual(before);
  });

  test('an ISA this CPU lacks is refused with ERR_BACKEND_UNAVAILABLE', () => {
    const missing = ISA_ORDER.filter((i) => !info.cpu.isas.includes(i as cg.CpuIsa));
    // (Where the CPU runs every ISA there is nothing to refuse.)
    for (const isa of missing) {
      let err: unknown;
      try {
        cg.setCpuIsa(isa as cg.CpuIsa);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('ERR_BACKEND_UNAVAILABLE');
    }
  });
});

describe('environment variables (child processes)', () => {
  const SHOW = `
const b = cg.backend();
const y = cg.linear(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), [2, 4], cg.Sparse24Weight.prune(new Float32Array([0, 1, 0, 1, 1, 0, 0, 2, 1, 1, 1, 1]), [3, 4]));
out({ kind: b.kind, features: b.features, cpu: b.cpu, cuda: b.cuda, y: Array.from(y) });`;
  // x = [[1,2,3,4],[5,6,7,8]]; pruned w = [[0,1,0,1],[1,0,0,2],[1,1,0,0]] -> y:
  const Y = [6, 9, 3, 14, 21, 11];

  test('defaults (COMPRESSED_GEMM_BACKEND=cpu): the best ISA, features naming it, all hardware threads', () => {
    const v = childValue(SHOW, { COMPRESSED_GEMM_BACKEND: 'cpu' }) as {
      kind: string; features: string[]; cuda: unknown; y: number[];
      cpu: { isa: string; isas: string[]; threads: number; hardwareThreads: number };
    };
    expect(v.kind).toBe('cpu');
    expect(v.cuda).toBeNull();
    expect(v.cpu.threads).toBe(v.cpu.hardwareThreads);
    expect(v.cpu.isa).toBe(v.cpu.isas[v.cpu.isas.length - 1]);
    if (v.cpu.isas.includes('avx2')) expect(v.features).toEqual(expect.arrayContaining(['avx2', 'fma', 'f16c']));
    if (v.cpu.isas.includes('avx512')) expect(v.features).toEqual(expect.arrayContaining(['avx512f', 'avx512bw', 'avx512dq', 'avx512vl']));
    expect(v.y).toEqual(Y);
    // Independently of the library: the kernel's CPU flags (Linux, x86) say which ISAs exist.
    const flags = cpuinfoFlags();
    if (flags && (process.arch === 'x64' || process.arch === 'ia32')) {
      const want = ['scalar'];
      if (['avx2', 'fma', 'f16c'].every((f) => flags.has(f))) want.push('avx2');
      if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl', 'fma', 'f16c'].every((f) => flags.has(f))) want.push('avx512');
      // AMX also needs Linux to grant the process its tile registers (arch_prctl), which a kernel
      // that lists amx_tile does, unless a thread's signal stack is too small for them.
      if (want.includes('avx512') && ['avx512_bf16', 'avx512vbmi', 'amx_tile', 'amx_bf16'].every((f) => flags.has(f))) want.push('amx');
      expect(v.cpu.isas).toEqual(want);
      for (const f of ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']) {
        expect(`${f}: ${v.features.includes(f)}`).toBe(`${f}: ${flags.has(f)}`);
      }
    }
  });

  test('the default (auto) picks the CPU where CUDA is not usable', () => {
    const v = childValue(SHOW) as { kind: string; y: number[] };
    expect(v.kind).toBe(CUDA_USABLE ? 'cuda' : 'cpu');
    expect(v.y).toEqual(Y);
  });

  test('COMPRESSED_GEMM_THREADS=1 is honoured (and setThreads changes it later)', () => {
    const v = childValue(
      `${SHOW.replace('out(', 'const first = (')}
cg.setThreads(2);
out({ first: first.cpu.threads, y: first.y, later: cg.backend().cpu.threads });`,
      { COMPRESSED_GEMM_THREADS: '1', COMPRESSED_GEMM_BACKEND: 'cpu' },
    ) as { first: number; later: number; y: number[] };
    expect(v).toEqual({ first: 1, later: 2, y: Y });
  });

  test('COMPRESSED_GEMM_THREADS=3 (more than the cores) is honoured', () => {
    const v = childValue(SHOW, { COMPRESSED_GEMM_THREADS: '3', COMPRESSED_GEMM_BACKEND: 'cpu' }) as { cpu: { threads: number }; y: number[] };
    expect(v.cpu.threads).toBe(3);
    expect(v.y).toEqual(Y);
  });

  test.each(['scalar', 'avx2', 'avx512', 'amx'])('COMPRESSED_GEMM_CPU_ISA=%s is honoured where the CPU has it', (isa) => {
    if (!cg.backend().cpu.isas.includes(isa as cg.CpuIsa)) {
      const e = childError(SHOW, { COMPRESSED_GEMM_CPU_ISA: isa, COMPRESSED_GEMM_BACKEND: 'cpu' });
      expect(e.code).toBe('ERR_BACKEND_UNAVAILABLE');
      expect(e.message).toContain(isa);
      return;
    }
    const v = childValue(SHOW, { COMPRESSED_GEMM_CPU_ISA: isa, COMPRESSED_GEMM_BACKEND: 'cpu' }) as { cpu: { isa: string; isas: string[] }; y: number[] };
    expect(v.cpu.isa).toBe(isa);
    expect(v.cpu.isas).toEqual(cg.backend().cpu.isas); // still reports every ISA the CPU has
    expect(v.y).toEqual(Y);
  });

  test.each([
    ['COMPRESSED_GEMM_BACKEND', 'gpu'],
    ['COMPRESSED_GEMM_BACKEND', 'cuda,cpu'],
    ['COMPRESSED_GEMM_THREADS', '0'],
    ['COMPRESSED_GEMM_THREADS', '-2'],
    ['COMPRESSED_GEMM_THREADS', '1.5'],
    ['COMPRESSED_GEMM_THREADS', 'many'],
    ['COMPRESSED_GEMM_THREADS', '5000'],
    ['COMPRESSED_GEMM_CPU_ISA', 'avx9000'],
    ['COMPRESSED_GEMM_CPU_ISA', 'neon'],
  ])('%s=%s: loading works, the first use throws ERR_ENV naming the variable', (name, value) => {
    const r = runChild(
      `
let first, second;
try { cg.DenseWeight.from(new Float32Array(4), [1, 4]); } catch (e) { first = { code: e.code, message: e.message, range: e instanceof RangeError }; }
try { cg.backend(); } catch (e) { second = { code: e.code }; }
out({ first, second });`,
      { [name]: value, COMPRESSED_GEMM_BACKEND: name === 'COMPRESSED_GEMM_BACKEND' ? value : 'cpu' },
    );
    if (r.status !== 0 || r.error) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
    const v = r.value as { first?: { code: string; message: string; range: boolean }; second?: { code: string } };
    expect(v.first?.code).toBe('ERR_ENV');
    expect(v.first?.range).toBe(true);
    expect(v.first?.message).toContain(name);
    expect(v.first?.message).toContain(value.toLowerCase());
    expect(v.second?.code).toBe('ERR_ENV');
  });

  test('empty values mean "unset"', () => {
    const v = childValue(SHOW, { COMPRESSED_GEMM_BACKEND: 'cpu', COMPRESSED_GEMM_THREADS: '', COMPRESSED_GEMM_CPU_ISA: ' ' }) as {
      cpu: { isa: string; isas: string[]; threads: number; hardwareThreads: number };
    };
    expect(v.cpu.threads).toBe(v.cpu.hardwareThreads);
    expect(v.cpu.isa).toBe(v.cpu.isas[v.cpu.isas.length - 1]);
  });
});

describe('CUDA', () => {
  const nvcc = nvccOnPath();

  test('cudaStatus() has the documented shape', () => {
    expect(typeof STATUS.built).toBe('boolean');
    expect(typeof STATUS.message).toBe('string');
    expect(STATUS.problem === null).toBe(STATUS.usable);
    if (STATUS.addon) {
      // Where it came from, its runtime (a static CUDA runtime: reported without a driver), its GPU code.
      expect(['built here', 'prebuilt', 'COMPRESSED_GEMM_ADDON_DIR']).toContain(STATUS.addon.origin);
      expect(fs.existsSync(STATUS.addon.path)).toBe(true);
      expect(STATUS.addon.runtime).toMatch(/^\d+\.\d$/);
      expect(STATUS.addon.sass.map((t) => Number(/^sm_(\d+)a?$/.exec(t)?.[1]))).toEqual(STATUS.compiledArchitectures);
      expect(STATUS.message).toContain(STATUS.addon.path);
    } else {
      expect(STATUS.built).toBe(false);
      expect(STATUS.problem).toMatch(/^addon-(missing|failed)$/);
    }
    expect(typeof STATUS.usable).toBe('boolean');
    expect(Array.isArray(STATUS.reasons)).toBe(true);
    expect(Array.isArray(STATUS.compiledArchitectures)).toBe(true);
    if (STATUS.usable) expect(STATUS.reasons).toEqual([]);
    else expect(STATUS.reasons.length).toBeGreaterThan(0);
    if (!STATUS.built) expect(STATUS.usable).toBe(false);
  });

  (nvcc ? test : test.skip)(
    `the CUDA addon is compiled for sm_80, sm_89 and sm_90${nvcc ? ` (nvcc at ${nvcc})` : ' — SKIPPED: nvcc is not on the PATH, so no CUDA addon is built here'}`,
    () => {
      expect(fs.existsSync(path.join(ROOT, 'build-cuda', 'Release', 'compressed_gemm_cuda.node'))).toBe(true);
      expect(STATUS.built).toBe(true);
      expect(STATUS.compiledArchitectures).toEqual(expect.arrayContaining([80, 89, 90]));
      // The addon loads and answers its probe on any machine (the runtime is linked statically).
      expect(STATUS.probe).not.toBeNull();
      expect(typeof STATUS.probe?.ok).toBe('boolean');
      expect(typeof STATUS.probe?.deviceCount).toBe('number');
    },
  );

  if (!CUDA_USABLE) {
    test('without a usable device the reasons say why (not built / no driver / no device), and the message what to do', () => {
      for (const r of STATUS.reasons) expect(r).toMatch(/not built|no prebuilt binary|driver|device/i);
      for (const r of STATUS.reasons) expect(STATUS.message).toContain(r);
      if (STATUS.problem === 'no-driver' || STATUS.problem === 'driver-too-old') expect(STATUS.message).toMatch(/NVIDIA driver for CUDA \d+\.0 or newer/);
      if (STATUS.problem === 'addon-missing') expect(STATUS.message).toMatch(/nvcc/);
      if (STATUS.built && STATUS.probe) {
        expect(STATUS.probe.ok && STATUS.probe.deviceCount > 0).toBe(false);
        expect(STATUS.probe.devices).toEqual([]);
      }
    });

    test('COMPRESSED_GEMM_BACKEND=cuda: the first use throws ERR_BACKEND_UNAVAILABLE saying what was tried, why, and what to do', () => {
      const e = childError('cg.backend(); out({ unexpected: true });', { COMPRESSED_GEMM_BACKEND: 'cuda' });
      expect(e.code).toBe('ERR_BACKEND_UNAVAILABLE');
      expect(e.isError).toBe(true);
      expect(e.isTypeError || e.isRangeError).toBe(false);
      expect(e.message).toContain('COMPRESSED_GEMM_BACKEND=cuda');
      expect(e.message).toContain(`(${STATUS.problem})`);
      expect(e.message).toContain(STATUS.message); // what was tried or found, why, and what to do
      for (const reason of STATUS.reasons) expect(e.message).toContain(reason);
      expect(e.message).toMatch(/driver|device|not built/i);
      expect(e.message).toContain('COMPRESSED_GEMM_BACKEND=cpu'); // what to do instead
    });

    test('COMPRESSED_GEMM_BACKEND=cuda: creating a weight (a first use) refuses too, every time', () => {
      const v = childValue(
        `
const r = {};
try { cg.DenseWeight.from(new Float32Array(4), [1, 4]); } catch (e) { r.from = e.code; }
try { cg.Sparse24Weight.prune(new Float32Array(4), [1, 4]); } catch (e) { r.prune = e.code; }
try { cg.cudaStatus(); r.cudaStatus = 'ok'; } catch (e) { r.cudaStatus = e.code; }
out(r);`,
        { COMPRESSED_GEMM_BACKEND: 'cuda' },
      );
      // cudaStatus() reports; it does not select a backend, so it works even then.
      expect(v).toEqual({ from: 'ERR_BACKEND_UNAVAILABLE', prune: 'ERR_BACKEND_UNAVAILABLE', cudaStatus: 'ok' });
    });
  } else {
    test('COMPRESSED_GEMM_BACKEND=cuda on this CUDA machine: kind cuda, the device and its architecture', () => {
      const v = childValue('const b = cg.backend(); out({ kind: b.kind, features: b.features, cuda: b.cuda, notes: b.notes });', {
        COMPRESSED_GEMM_BACKEND: 'cuda',
      }) as { kind: string; features: string[]; cuda: { sm: number; compiledArchitectures: number[] }; notes: string[] };
      expect(v.kind).toBe('cuda');
      expect(v.features).toEqual([`sm_${v.cuda.sm}`]);
      expect(v.cuda.compiledArchitectures).toEqual(STATUS.compiledArchitectures);
    });
  }
});

describe('cuda-sim: the CUDA backend on the simulated device', () => {
  test('COMPRESSED_GEMM_BACKEND=cuda-sim: kind cuda, a device that says it is simulated; dense, 16-bit 2:4 and INT4 linear on CUDA, every other op on the CPU kernels and listed in notes', () => {
    const v = childValue(
      `const b = cg.backend();
const w = cg.DenseWeight.from(Float32Array.from({ length: 32 }, (_, i) => i - 16), [4, 8]);
const y = cg.linear(Float32Array.from({ length: 8 }, (_, i) => i), [1, 8], w);
out({ kind: b.kind, device: b.device, features: b.features, cuda: b.cuda, notes: b.notes, routes: b.routes, y: Array.from(y), addons: b.addons, gpu: b.gpu });`,
      { COMPRESSED_GEMM_BACKEND: 'cuda-sim' },
    ) as {
      kind: string; device: string; features: string[]; cuda: { simulated: boolean; sm: number }; notes: string[];
      routes: Array<{ runsOn: string | null; op: string; format: string; activations: string; dtypes?: string[] }>; y: number[];
      addons: { cudaSim: { origin: string; path: string } | null; cuda: unknown }; gpu: unknown;
    };
    expect(v.kind).toBe('cuda');
    if (!process.env.COMPRESSED_GEMM_ADDON_DIR) {
      expect(v.addons.cudaSim).toEqual({ origin: 'built here', path: path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node') });
    }
    expect(v.addons.cuda).toBeNull(); // the real CUDA addon is not probed on the simulated device
    expect(v.gpu).toBeNull();
    expect(v.cuda.simulated).toBe(true);
    expect(v.device).toMatch(/simulated/);
    expect(v.features).toContain('simulated');
    // Only the dense linear (tensor cores for 16-bit weights, CUDA cores for float32), the 16-bit
    // 2:4 linear (sparse tensor cores) and the INT4 linear with native activations (W4A16) have
    // CUDA kernels yet, each with its fused LoRA epilogue, and lowRankUpdate of dense and 16-bit
    // 2:4 weights; every other op that runs runs on the CPU kernels, and a note says so.
    const onCuda = v.routes.filter((r) => r.runsOn === 'cuda');
    expect(onCuda.map((r) => `${r.op} ${r.format} ${r.activations} ${(r.dtypes ?? []).join('/')}`)).toEqual([
      'linear dense native float16/bfloat16',
      'linear dense native float32',
      'linear 2:4 native float16/bfloat16',
      'linear int4 native ',
      'linear+lora dense native float16/bfloat16',
      'linear+lora dense native float32',
      'linear+lora 2:4 native float16/bfloat16',
      'linear+lora int4 native ',
      'lowRankUpdate dense native ',
      'lowRankUpdate 2:4 native float16/bfloat16',
    ]);
    const onCpu = v.routes.filter((r) => r.runsOn === 'cpu');
    expect(onCpu.length).toBeGreaterThan(0);
    expect(v.notes.length).toBe(onCpu.length);
    for (const n of v.notes) expect(n).toMatch(/CUDA backend has no kernel for it yet/);
    // y = W x for W[n][k] = 8n + k - 16, x[k] = k, computed here in float64.
    const want = [0, 1, 2, 3].map((n) => [0, 1, 2, 3, 4, 5, 6, 7].reduce((s, k) => s + (8 * n + k - 16) * k, 0));
    expect(v.y).toEqual(want);
  });
});

describe('the package entry point dist/index.js', () => {
  const dist = path.join(ROOT, 'dist', 'index.js');
  (fs.existsSync(dist) ? test : test.skip)('loads in a fresh process and exports what lib/index.ts exports', () => {
    const v = childValue('out({ keys: Object.keys(cg).sort(), kind: cg.backend().kind });', { COMPRESSED_GEMM_BACKEND: 'cpu' }, 'dist') as {
      keys: string[];
      kind: string;
    };
    expect(v.kind).toBe('cpu');
    // A difference here means dist/ is stale: `npm run build` (npm install / npm ci run it).
    expect({ distExports: v.keys }).toEqual({ distExports: Object.keys(cg).sort() });
  });
});
