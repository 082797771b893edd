/**
 * Why a GPU cannot be used, for the machines this one is not: cg.cudaStatus() and cg.backend()
 * over a stand-in CUDA addon (lib/native/load.ts mocked) whose probe answers as the real one does
 * with no driver, a driver older than the runtime, no device, a GPU older than every target, a
 * newer GPU that only the PTX can serve, and so on. Each case: the problem code, the one message
 * (what was found, why, what to do), and the backend chosen (CUDA only when usable).
 * The real addon's answers on this machine are checked in test/backend.test.ts.
 */
import type { AddonOrigin, LoadResult } from '../../lib/native/load';
import type { BackendInfo, CudaStatus } from '../../lib/backends/select';
import type { CudaAddon, CudaProbe } from '../../lib/native/cuda';

interface Fake {
  probe?: Partial<CudaProbe>;
  sass?: string[];
  ptx?: string[] | null;
  origin?: AddonOrigin;
  /** No addon at all: the attempts the loader reports instead. */
  attempts?: Array<{ path: string; error: string }>;
}

const ADDON_PATH = '/pkg/prebuilds/linux-x64/compressed_gemm_cuda.napi.node';

function device(sm: number, kernelsSupported: boolean) {
  return { index: 0, name: `GPU sm_${sm}`, computeCapability: `${Math.floor(sm / 10)}.${sm % 10}`, sm, totalMemory: 80e9, multiProcessorCount: 100, kernelsSupported };
}

/** cudaStatus() and backend() (COMPRESSED_GEMM_BACKEND=auto) with the stand-in addon, in a fresh module registry. */
function diagnose(fake: Fake): { status: CudaStatus; backend: BackendInfo } {
  const sass = fake.sass ?? ['sm_80', 'sm_89', 'sm_90a'];
  const addon = fake.attempts ? null : {
    probe: () => ({ ok: true, deviceCount: 1, runtimeVersion: 13000, driverVersion: 13000, devices: [device(90, true)], ...fake.probe }),
    compiledTargets: () => sass,
    compiledArchitectures: () => sass.map((t) => Number(/\d+/.exec(t)?.[0])),
  } as unknown as CudaAddon;
  const load: LoadResult<CudaAddon> = addon
    ? { addon, attempts: [], path: ADDON_PATH, origin: fake.origin ?? 'prebuilt' }
    : { addon: null, attempts: fake.attempts ?? [], path: null, origin: null };
  let result: { status: CudaStatus; backend: BackendInfo } | undefined;
  const saved = process.env.COMPRESSED_GEMM_BACKEND;
  process.env.COMPRESSED_GEMM_BACKEND = 'auto';
  try {
    jest.isolateModules(() => {
      jest.doMock('../../lib/native/load', () => ({
        ...jest.requireActual('../../lib/native/load'),
        loadCudaAddon: () => load,
        cudaPtxTargets: () => (fake.ptx === undefined ? ['compute_80'] : fake.ptx),
      }));
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const select = require('../../lib/backends/select') as typeof import('../../lib/backends/select');
      result = { status: select.cudaStatus(), backend: select.backend() };
    });
  } finally {
    jest.dontMock('../../lib/native/load');
    if (saved === undefined) delete process.env.COMPRESSED_GEMM_BACKEND;
    else process.env.COMPRESSED_GEMM_BACKEND = saved;
  }
  return result as { status: CudaStatus; backend: BackendInfo };
}

/** The GPU is not used: the CPU runs, and backend().gpu says what cudaStatus() says. */
function expectNoGpu(r: { status: CudaStatus; backend: BackendInfo }, problem: string): string {
  expect(r.status.usable).toBe(false);
  expect(r.status.problem).toBe(problem);
  expect(r.backend.kind).toBe('cpu');
  expect(r.backend.gpu).toEqual({ usable: false, problem, message: r.status.message });
  expect(r.status.message).toMatch(/^No GPU: /);
  expect(r.status.message).toMatch(/CPU kernels run/);
  return r.status.message;
}

describe('the one explanation when no GPU can be used', () => {
  test('no CUDA addon: what was tried, and how to build one (nvcc, build from source)', () => {
    const attempts = [
      { path: '/pkg/build-cuda/Release/compressed_gemm_cuda.node', error: 'not built' },
      { path: ADDON_PATH, error: 'no prebuilt binary (not built where the prebuilds were made: nvcc is not on the PATH)' },
    ];
    const r = diagnose({ attempts });
    const m = expectNoGpu(r, 'addon-missing');
    for (const a of attempts) expect(m).toContain(`${a.path}: ${a.error}`);
    expect(m).toMatch(/nvcc/);
    expect(m).toContain('COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 npm rebuild compressed-gemm');
    expect(r.status.addon).toBeNull();
    expect(r.backend.addons.cuda).toBeNull();
  });

  test('a CUDA addon that does not load: its error', () => {
    const m = expectNoGpu(diagnose({ attempts: [{ path: ADDON_PATH, error: 'libfoo.so: cannot open shared object file' }] }), 'addon-failed');
    expect(m).toContain('does not load');
    expect(m).toContain('libfoo.so: cannot open shared object file');
  });

  test('no driver: install one new enough for the runtime (CUDA 13.0: >= 580.65.06 on Linux)', () => {
    const r = diagnose({ probe: { ok: false, deviceCount: 0, driverVersion: 0, errorName: 'cudaErrorInsufficientDriver', error: 'CUDA driver version is insufficient', devices: [] } });
    const m = expectNoGpu(r, 'no-driver');
    expect(m).toContain('finds no NVIDIA driver');
    expect(m).toContain('an NVIDIA driver for CUDA 13.0 or newer (on Linux >= 580.65.06)');
    expect(m).toContain(`prebuilt, ${ADDON_PATH}`);
    // The addon still reports itself: origin, runtime, GPU code.
    expect(r.status.addon).toEqual({ origin: 'prebuilt', path: ADDON_PATH, runtime: '13.0', driver: null, sass: ['sm_80', 'sm_89', 'sm_90a'], ptx: ['compute_80'] });
    expect(r.backend.addons.cuda).toEqual(r.status.addon);
  });

  test('a driver older than the runtime: which versions, update the driver or build with an older toolkit', () => {
    const r = diagnose({ probe: { ok: false, deviceCount: 0, driverVersion: 12040, errorName: 'cudaErrorInsufficientDriver', error: 'CUDA driver version is insufficient', devices: [] } });
    const m = expectNoGpu(r, 'driver-too-old');
    expect(m).toContain('supports CUDA 12.4, older than the CUDA addon\'s runtime 13.0');
    expect(m).toContain('Update the driver to an NVIDIA driver for CUDA 13.0 or newer');
    expect(m).toContain('a CUDA toolkit no newer than 12.4');
    expect(r.status.addon?.driver).toBe('12.4');
  });

  test('a driver but no device: nvidia-smi and CUDA_VISIBLE_DEVICES', () => {
    const saved = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = '';
    try {
      const m = expectNoGpu(diagnose({ probe: { ok: false, deviceCount: 0, driverVersion: 13000, errorName: 'cudaErrorNoDevice', error: 'no CUDA-capable device is detected', devices: [] } }), 'no-device');
      expect(m).toContain('cudaErrorNoDevice');
      expect(m).toContain('CUDA_VISIBLE_DEVICES (now "")');
    } finally {
      if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = saved;
    }
  });

  test('a GPU older than every target (sm_75): it cannot run the kernels', () => {
    const m = expectNoGpu(diagnose({ probe: { devices: [device(75, false)] } }), 'architecture-not-compiled');
    expect(m).toContain('GPU sm_75 (sm_75), is not among the architectures compiled into the CUDA addon (SASS sm_80, sm_89, sm_90a; PTX compute_80');
    expect(m).toContain('The kernels need sm_80 or newer');
  });

  test('a newer GPU with neither SASS nor PTX for it: build for its architecture', () => {
    const m = expectNoGpu(diagnose({ probe: { devices: [device(120, false)] }, ptx: [] }), 'architecture-not-compiled');
    expect(m).toContain('PTX none');
    expect(m).toContain('COMPRESSED_GEMM_CUDA_ARCHS=120-real COMPRESSED_GEMM_BUILD_FROM_SOURCE=1 npm rebuild compressed-gemm');
  });
});

describe('a usable GPU', () => {
  test('with SASS for it: CUDA is chosen, the message says what runs', () => {
    const r = diagnose({ probe: { devices: [device(90, true)] } });
    expect(r.status).toEqual(expect.objectContaining({ usable: true, problem: null, reasons: [] }));
    expect(r.backend.kind).toBe('cuda');
    expect(r.backend.gpu?.usable).toBe(true);
    expect(r.status.message).toBe(`GPU: device 0, GPU sm_90 (sm_90), driver CUDA 13.0, with the CUDA addon prebuilt, ${ADDON_PATH}: runtime 13.0, SASS sm_80, sm_89, sm_90a; PTX compute_80`);
  });

  test('a newer GPU served by the PTX alone (sm_100): usable, and the message says the driver JIT-compiles it', () => {
    const r = diagnose({ probe: { devices: [device(100, false)] } });
    expect(r.status.usable).toBe(true);
    expect(r.backend.kind).toBe('cuda');
    expect(r.status.message).toContain('No SASS for sm_100: the driver JIT-compiles the PTX at first use');
  });

  test('unknown PTX (an addon from COMPRESSED_GEMM_ADDON_DIR) counts as none', () => {
    const r = diagnose({ probe: { devices: [device(100, false)] }, ptx: null, origin: 'COMPRESSED_GEMM_ADDON_DIR' });
    expect(r.status.problem).toBe('architecture-not-compiled');
    expect(r.status.message).toContain('PTX unknown');
  });
});
