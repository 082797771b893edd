/**
 * The GPU check (scripts/gpu-check.sh and scripts/gpu-check/), as far as a machine without a GPU
 * can check it:
 *   - the scripts parse, and the check stops at once, cleanly, when there is no GPU or driver;
 *   - the plain-JS port of the PTX formulas (scripts/gpu-check/ptx-formulas.js), which the GPU's
 *     registers are compared with there, agrees with test/helpers/ptx-reference.ts on every lane
 *     of every form, and probe-cases.js's seeds and float codecs with test/helpers/reference.ts;
 *   - the probe harness (run-probes.js) passes every case on the simulated device, and replays
 *     its own dumps (as it will replay a GPU's dumps against the simulator);
 *   - the real CUDA addon's runProbe throws a coded ERR_CUDA error here (no driver), and the same
 *     ERR_NATIVE argument errors as the simulated device's runProbe (binding/probe_args.h).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { codeOf } from './helpers/expect-error';
import * as ref from './helpers/ptx-reference';
import { BASE_SEED, f16ToNumber, mulberry32 as refMulberry32, numberToBf16, numberToF16, seedFor as refSeedFor } from './helpers/reference';

const ROOT = path.resolve(__dirname, '..');
const SCRIPT = path.join(ROOT, 'scripts', 'gpu-check.sh');
const DIR = path.join(ROOT, 'scripts', 'gpu-check');
const CUDA_ADDON = path.join(ROOT, 'build-cuda', 'Release', 'compressed_gemm_cuda.node');
const SIM_ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');

// eslint-disable-next-line @typescript-eslint/no-var-requires
const F = require(path.join(DIR, 'ptx-formulas.js'));
// eslint-disable-next-line @typescript-eslint/no-var-requires
const C = require(path.join(DIR, 'probe-cases.js'));

function hasGpu(): boolean {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 20000 });
  return r.status === 0 && /^GPU /m.test(r.stdout || '');
}

function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// ---- the scripts ----------------------------------------------------------------------------------

describe('scripts/gpu-check.sh', () => {
  test.each(['scripts/gpu-check.sh', 'scripts/gpu-check/pack.sh', 'scripts/gpu-check/diagnose.sh'])('bash -n %s', (file) => {
    const r = spawnSync('bash', ['-n', path.join(ROOT, file)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('the helper scripts parse (node --check; python3 ast.parse)', () => {
    for (const f of ['ptx-formulas.js', 'probe-cases.js', 'run-probes.js', 'js-checks.js', 'bench-ours.js', 'isolate.js']) {
      const r = spawnSync(process.execPath, ['--check', path.join(DIR, f)], { encoding: 'utf8' });
      expect({ f, status: r.status, stderr: r.stderr }).toEqual({ f, status: 0, stderr: '' });
    }
    const py = spawnSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', path.join(DIR, 'torch_baseline.py')], { encoding: 'utf8' });
    if (py.error) return; // no python3 here
    expect(py.stderr).toBe('');
    expect(py.status).toBe(0);
  });

  const noGpu = !hasGpu();
  (noGpu ? test : test.skip)('without a GPU it stops after the environment report: exit 2, summary and env.txt written', () => {
    const out = tmpDir('cg-gpu-check-');
    try {
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.CG_GPU_CHECK_ALLOW_NO_GPU;
      delete env.CG_GPU_CHECK_STEPS;
      // The script runs system tools only (nvidia-smi, nvcc, python3): under the sanitizer pass
      // (scripts/sanitize.sh) they must not inherit its preloaded runtimes, which slow them down.
      for (const k of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'NODE_OPTIONS']) delete env[k];
      const r = spawnSync('bash', [SCRIPT, path.join(out, 'o')], { encoding: 'utf8', env, timeout: 120000 });
      expect(r.signal).toBeNull(); // it stops on its own (no hang), with exit 2
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/no GPU\/driver present/);
      const summary = fs.readFileSync(path.join(out, 'o', 'summary.txt'), 'utf8');
      expect(summary).toMatch(/^step 1 env: FAIL .* - no GPU\/driver present/m);
      expect(summary).toMatch(/^result: STOPPED: no GPU\/driver present/m);
      expect(summary).not.toMatch(/^step 2/m); // nothing after it ran
      expect(fs.readFileSync(path.join(out, 'o', 'env.txt'), 'utf8')).toMatch(/## nvidia-smi/);
      // At most 8 files come back from a device run: this one left 2.
      expect(fs.readdirSync(path.join(out, 'o')).sort()).toEqual(['env.txt', 'probes', 'summary.txt']);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  test('without an OUT_DIR it says how to call it (exit 2)', () => {
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: bash scripts\/gpu-check.sh OUT_DIR/);
  });

  test('bench-ours.js: never a number without a GPU; on the simulated device it runs the dense, 2:4 and INT4 kernels (plain and with a LoRA term) and the LoRA shrink through timeGemm and keeps no figure', () => {
    if (fs.existsSync(CUDA_ADDON)) {
      const r = spawnSync(process.execPath, [path.join(DIR, 'bench-ours.js'), '--addon', CUDA_ADDON], { encoding: 'utf8', timeout: 600_000 });
      expect(r.status).toBe(0);
      const o = JSON.parse(r.stdout);
      if (o.status !== 'measured') {
        // This machine has no driver: the CUDA addon loads and says there is no device.
        expect(o.status).toBe('no device');
        expect(o.results).toEqual([]);
      }
    }
    const s = spawnSync(process.execPath, [path.join(DIR, 'bench-ours.js'), '--addon', SIM_ADDON, '--smoke'], { encoding: 'utf8', timeout: 120_000 });
    expect(s.status).toBe(0);
    const o = JSON.parse(s.stdout);
    expect(o.status).toMatch(/^simulated: plumbing checked, nothing timed as a GPU figure/);
    expect(o.results.map((r: { kernel: string; dtype: string; splits?: number; blockM?: number; loraRank?: number }) => `${r.kernel} ${r.dtype}${r.splits ? ` splits ${r.splits}` : ''}${r.blockM ? ` blockM ${r.blockM}` : ''}${r.loraRank ? ` lora ${r.loraRank}` : ''}`)).toEqual([
      'dense fp16', 'dense bf16', 'sparse24 fp16', 'int4 fp16', 'int4 fp16 splits 4', 'sparse24 fp16 splits 4', 'sparse24 fp16 blockM 64', 'dense fp16 blockM 64', 'int4 fp16 blockM 16',
      'dense fp16 blockM 128', 'dense fp16 lora 16', 'sparse24 fp16 lora 16', 'int4 fp16 lora 16', 'loraShrink fp16 lora 16',
    ]);
    // The LoRA cases' names say what ran; the overhead ratios need GPU times, so none here.
    expect(o.results.filter((r: { loraRank?: number }) => r.loraRank).map((r: { name: string }) => r.name)).toEqual([
      'dense+lora16 smoke', '2:4+lora16 smoke', 'int4-g128+lora16 smoke', 'lora-shrink r16 smoke',
    ]);
    expect(o.lora_overhead).toBeUndefined();
    for (const r of o.results) {
      expect(r.error).toBeUndefined();
      expect(r.median_ms).toBeUndefined();
      expect(r.samples).toBeGreaterThan(0);
    }
    // The async-return check ran its GEMMs and copy without error, and keeps no time either.
    expect(o.async).toEqual({ kernels: 2, M: 64, N: 64, K: 64 });
    expect(o.skipped_for_time).toBeUndefined();
    // Past its deadline it starts no case and says how many it left out (gpu-check.sh's timings
    // step gives it half of its time, so that cuBLAS's baseline still runs).
    const late = spawnSync(process.execPath, [path.join(DIR, 'bench-ours.js'), '--addon', SIM_ADDON, '--smoke', '--deadline', '1'], { encoding: 'utf8', timeout: 120_000 });
    expect(late.status).toBe(0);
    const ol = JSON.parse(late.stdout);
    expect(ol.results).toEqual([]);
    expect(ol.skipped_for_time).toBe(o.results.length);
  });

  test("timeGemm's arguments are checked like the kernels' exports (coded errors, nothing launched)", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const sim = require(SIM_ADDON);
    const x = sim.deviceAlloc({ bytes: 8 * 16 * 2 }), w = sim.deviceAlloc({ bytes: 8 * 16 * 2 }), out = sim.deviceAlloc({ bytes: 8 * 8 * 4 });
    const args = { x, w, bias: null, out, M: 8, N: 8, K: 16, dtype: 'float16', outDtype: 'float32' };
    try {
      const code = codeOf;
      expect(code(() => sim.timeGemm({ kernel: 'gemv', args }))).toBe('RangeError ERR_NATIVE');
      expect(code(() => sim.timeGemm({ kernel: 'dense', args, reps: 0 }))).toBe('RangeError ERR_NATIVE');
      expect(code(() => sim.timeGemm({ kernel: 'dense', args: { ...args, K: 12 } }))).toBe('RangeError ERR_NOT_SUPPORTED');
      expect(code(() => sim.timeGemm({ kernel: 'sparse24', args }))).toMatch(/^TypeError ERR_NATIVE/);
      const r = sim.timeGemm({ kernel: 'dense', args, warmup: 0, reps: 2 });
      expect(r.ms).toHaveLength(2);
      for (const v of r.ms) expect(v).toBeGreaterThanOrEqual(0);
    } finally {
      for (const h of [x, w, out]) sim.deviceFree(h);
    }
  });

  test("timeGemm's loraShrink uploads the tile table and runs the shrink: T = x·Aᵀ within the float32 (K + 1)-rounding bound; a bad table is ERR_NATIVE", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const sim = require(SIM_ADDON);
    const rng = refMulberry32(refSeedFor('timeGemm loraShrink'));
    const M = 11, K = 200, r = 5, tld = 6; // two tiles of 8 rows, the second with 3 empty slots
    const xBits = new Uint16Array(M * K).map(() => numberToF16(rng() * 2 - 1));
    const A = new Float32Array(r * K).map(() => rng() * 2 - 1);
    const tiles = new Int32Array(20).fill(-1);
    tiles.set([0, r, 0, 1, 2, 3, 4, 5, 6, 7], 0);
    tiles.set([0, r, 8, 9, 10], 10);
    const x = sim.deviceAlloc({ bytes: xBits.byteLength }), a = sim.deviceAlloc({ bytes: A.byteLength });
    const tilesDev = sim.deviceAlloc({ bytes: tiles.byteLength }), t = sim.deviceAlloc({ bytes: M * tld * 4 });
    try {
      sim.copyToDevice({ handle: x, src: xBits });
      sim.copyToDevice({ handle: a, src: A });
      sim.copyToDevice({ handle: t, src: new Float32Array(M * tld).fill(NaN) }); // poison: unwritten entries stay NaN
      const args = { x, xDtype: 'float16', M, K, a, lda: K, rsum: r, tiles, tilesDev, t, tld };
      const bad = new Int32Array(tiles);
      bad[12] = M; // a row index past M
      expect(codeOf(() => sim.timeGemm({ kernel: 'loraShrink', args: { ...args, tiles: bad } }))).toBe('RangeError ERR_NATIVE');
      const res = sim.timeGemm({ kernel: 'loraShrink', args, warmup: 0, reps: 1 });
      expect(res.ms).toHaveLength(1);
      const T = new Float32Array(M * tld);
      sim.copyToHost({ handle: t, dst: T });
      const u = 2 ** -24;
      for (let m = 0; m < M; m++) {
        for (let j = 0; j < r; j++) {
          let s = 0, sa = 0;
          for (let k = 0; k < K; k++) {
            const p = f16ToNumber(xBits[m * K + k]) * A[j * K + k];
            s += p;
            sa += Math.abs(p);
          }
          // Each product passes through at most K + 1 float32 roundings (lora_shrink.cuh).
          expect(Math.abs(T[m * tld + j] - s)).toBeLessThanOrEqual((K + 1) * u * sa + 1e-30);
        }
        expect(Number.isNaN(T[m * tld + r])).toBe(true); // column r of tld is never written
      }
    } finally {
      for (const h of [x, a, tilesDev, t]) sim.deviceFree(h);
    }
  });

  test("torch_baseline.py's Timer on a stub torch: graph_ms is one graph replay's event time over its calls, a graph that cannot be captured gives graph_error and keeps the per-call figures, and the table shows the column", () => {
    // The stub's events tick by one per record() and elapsed_time is 0.01 ms per tick: a call
    // timed alone takes 0.01 ms, and a replay of the captured calls 0.01 ms in all. 3 input sets:
    // 33 calls captured (whole rotations, at least 32).
    const script = `
import contextlib, importlib.util, json, sys, types
spec = importlib.util.spec_from_file_location('tb', sys.argv[1]); tb = importlib.util.module_from_spec(spec); spec.loader.exec_module(tb)
class Ev:
    t = 0
    def __init__(self, enable_timing=False): pass
    def record(self): Ev.t += 1; self.v = Ev.t
    def elapsed_time(self, o): return (o.v - self.v) * 0.01
def stub(graph_ok):
    def graph(g):
        if not graph_ok: raise RuntimeError('capture refused')
        return contextlib.nullcontext()
    s = types.SimpleNamespace(wait_stream=lambda other: None)
    cuda = types.SimpleNamespace(Event=Ev, synchronize=lambda: None, Stream=lambda: s, current_stream=lambda: s,
        stream=lambda st: contextlib.nullcontext(), CUDAGraph=lambda: types.SimpleNamespace(replay=lambda: None), graph=graph)
    return types.SimpleNamespace(cuda=cuda)
out = {}
for ok in (True, False):
    r = tb.Timer(stub(ok), 50 * 2**20, True).time(lambda i: (lambda: None), 3)
    out['ok' if ok else 'refused'] = tb.finish(r, 'case', 'op', 'fp16', 1, 2, 3, 100)
out['table'] = tb.table([out['ok']], None)
print(json.dumps(out))
`;
    const r = spawnSync('python3', ['-c', script, path.join(DIR, 'torch_baseline.py')], { encoding: 'utf8', timeout: 60_000 });
    if (r.error) return; // no python3 here
    expect(r.stderr).toBe('');
    const o = JSON.parse(r.stdout);
    expect(o.ok.median_ms).toBeCloseTo(0.01, 12);
    expect(o.ok.graph_calls).toBe(33);
    expect(o.ok.graph_ms).toBeCloseTo(0.01 / 33, 12);
    expect(o.ok.graph_error).toBeUndefined();
    expect(o.refused.graph_ms).toBeUndefined();
    expect(o.refused.graph_error).toBe('RuntimeError: capture refused');
    expect(o.refused.median_ms).toBeCloseTo(0.01, 12);
    const [head, row] = o.table.split('\n');
    expect(head).toMatch(/graph ms$/);
    expect(row).toMatch(/ 0\.0003$/);
  });

  test('isolate.js: a case in a child process prints ok on the simulated device (dense, 2:4, INT4, the LoRA shrink), and an error line, not a crash, when its kernel cannot run', () => {
    // Its small cases (the parent runs all of them, 4096-wide ones too, on a GPU): 0 dense, 16 2:4,
    // 32 INT4, 54 the shrink (scripts/gpu-check/isolate.js's CASES).
    for (const i of [0, 16, 32, 54]) {
      const r = spawnSync(process.execPath, [path.join(DIR, 'isolate.js'), '--addon', SIM_ADDON, '--child', String(i)], { encoding: 'utf8', timeout: 120_000 });
      expect({ i, out: r.stdout.trim(), status: r.status }).toEqual({ i, out: 'ok', status: 0 });
    }
    // The real CUDA addon here has no driver: the case fails with a coded error line, exit 1.
    if (fs.existsSync(CUDA_ADDON) && !hasGpu()) {
      const r = spawnSync(process.execPath, [path.join(DIR, 'isolate.js'), '--addon', CUDA_ADDON, '--child', '0'], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status).toBe(1);
      expect(r.stdout.trim()).toMatch(/^ERR_CUDA: /);
    }
  });

  test('bench-ours.js: after a kernel fault (a sticky CUDA error) the remaining cases run in a fresh process, and every case has its row', () => {
    // A wrapper of the simulated device's addon whose INT4 launches fault in the first process
    // only (the continuing process gets --from): as the H200's INT4 decode tile did.
    const dir = tmpDir('cg-bench-fault-');
    const wrapper = path.join(dir, 'faulting-addon.js');
    fs.writeFileSync(wrapper, `const sim = require(${JSON.stringify(SIM_ADDON)});
module.exports = Object.assign({}, sim, { timeGemm(o) {
  if (o.kernel === 'int4' && !process.argv.includes('--from')) throw new Error('compressed-gemm: cudaErrorIllegalInstruction: an illegal instruction was encountered (injected)');
  return sim.timeGemm(o);
} });
`);
    const all = spawnSync(process.execPath, [path.join(DIR, 'bench-ours.js'), '--addon', SIM_ADDON, '--smoke'], { encoding: 'utf8', timeout: 300_000 });
    const faulted = spawnSync(process.execPath, [path.join(DIR, 'bench-ours.js'), '--addon', wrapper, '--smoke'], { encoding: 'utf8', timeout: 300_000 });
    const a = JSON.parse(all.stdout), f = JSON.parse(faulted.stdout);
    const names = (o: { results: Array<{ name: string }> }) => o.results.map((r) => r.name);
    expect(names(f)).toEqual(names(a).map((n: string) => (n.startsWith('int4-g128 smoke') ? 'int4 smoke' : n)));
    const errors = f.results.filter((r: { error?: string }) => r.error);
    expect(errors.map((r: { name: string; error: string }) => [r.name, r.error.includes('cudaErrorIllegalInstruction')])).toEqual([['int4 smoke', true]]);
    expect(f.continued_after_fault).toEqual([expect.stringMatching(/^int4 smoke \(case \d+\)$/)]);
    expect(f.async).toEqual(a.async);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("bench-ours.js's lora_overhead: (shrink + fused GEMM) / the plain GEMM of the same shape, dtype and M; cases without both partners are left out", () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { loraOverhead } = require(path.join(DIR, 'bench-ours.js'));
    const row = (kernel: string, M: number, median: number, extra: Record<string, number> = {}) =>
      ({ name: `${kernel} ${M}`, kernel, dtype: 'fp16', M, N: 64, K: 128, median_ms: median, ...extra });
    const results = [
      row('dense', 16, 2.0), row('dense', 16, 1.5, { splits: 1 }), row('dense', 16, 9.0, { blockM: 64 }), row('int4', 16, 1.0),
      row('dense', 16, 2.1, { loraRank: 16 }), row('int4', 16, 1.2, { loraRank: 16 }), row('loraShrink', 16, 0.1, { loraRank: 16 }),
      row('sparse24', 16, 3.0, { loraRank: 16 }), // no plain 2:4 row: left out
      row('dense', 128, 5.0, { loraRank: 16 }), row('dense', 128, 4.0), // no shrink at M = 128: left out
    ];
    const o = loraOverhead(results);
    expect(o.map((r: { name: string }) => r.name)).toEqual(['dense 16', 'int4 16']);
    expect(o[0]).toMatchObject({ base_ms: 2.0, fused_ms: 2.1, shrink_ms: 0.1, rank: 16 });
    expect(o[0].ratio).toBeCloseTo(1.1, 12);
    expect(o[1].ratio).toBeCloseTo(1.3, 12);
  });
});

// ---- the formulas -----------------------------------------------------------------------------------

describe('scripts/gpu-check/ptx-formulas.js is test/helpers/ptx-reference.ts', () => {
  test('mma m16n8k16 A, B, C and ldmatrix (all six forms): isa and cute, every lane, register and half', () => {
    for (const src of ['isa', 'cute'] as const) {
      for (let lane = 0; lane < 32; lane++) {
        for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) expect(F[src].mmaA(lane, r, h)).toEqual(ref[src].mmaA(lane, r, h));
        for (let r = 0; r < 2; r++) for (let h = 0; h < 2; h++) expect(F[src].mmaB(lane, r, h)).toEqual(ref[src].mmaB(lane, r, h));
        for (let i = 0; i < 4; i++) expect(F[src].mmaC(lane, i)).toEqual(ref[src].mmaC(lane, i));
      }
    }
    expect(F.LDMATRIX_FORMS).toEqual(ref.LDMATRIX_FORMS);
    for (const form of ref.LDMATRIX_FORMS) {
      const num = ref.ldmatrixNum(form), trans = form.endsWith('trans');
      expect(F.ldmatrixNum(form)).toBe(num);
      for (let m = 0; m < 4; m++) {
        for (let row = 0; row < 8; row++) {
          expect(F.isa.ldmatrixRowLane(m, row)).toBe(ref.isa.ldmatrixRowLane(m, row));
          if (m < num) expect(F.cute.ldmatrixRowLane(form, 8 * m + row)).toBe(ref.cute.ldmatrixRowLane(form, 8 * m + row));
        }
      }
      for (let lane = 0; lane < 32; lane++) {
        for (let r = 0; r < num; r++) {
          for (let h = 0; h < 2; h++) {
            expect(F.isa.ldmatrix(lane, r, h, trans)).toEqual(ref.isa.ldmatrix(lane, r, h, trans));
            expect(F.cute.ldmatrix(form, lane, r, h)).toEqual(ref.cute.ldmatrix(form, lane, r, h));
          }
        }
      }
    }
  });

  test('mma.sp m16n8k32 A, B, metadata placement (both selectors), the ordered nibbles, decompress24 and packMeta', () => {
    for (let lane = 0; lane < 32; lane++) {
      for (let r = 0; r < 4; r++) {
        for (let h = 0; h < 2; h++) {
          expect(F.isa.mmaSpA(lane, r, h)).toEqual(ref.isa.mmaSpA(lane, r, h));
          expect(F.isa.mmaSpB(lane, r, h)).toEqual(ref.isa.mmaSpB(lane, r, h));
        }
      }
    }
    for (const sel of [0, 1]) for (let row = 0; row < 16; row++) for (let c = 0; c < 8; c++) expect(F.isa.mmaSpMeta(sel, row, c)).toEqual(ref.isa.mmaSpMeta(sel, row, c));
    expect(F.ORDERED_NIBBLES).toEqual(ref.ORDERED_NIBBLES);
    const rng = refMulberry32(4242);
    const idx = Array.from({ length: 16 }, () => Array.from({ length: 8 }, () => {
      const n = ref.ORDERED_NIBBLES[Math.floor(rng() * 6)];
      return [n & 3, n >> 2] as [number, number];
    }));
    const values = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => Math.floor(rng() * 100) - 50));
    expect(F.decompress24(values, idx)).toEqual(ref.decompress24(values, idx));
    for (const sel of [0, 1]) expect(Array.from(F.packMeta(idx, sel, (l: number) => l * 0x01010101))).toEqual(Array.from(ref.packMeta(idx, sel, (l) => l * 0x01010101)));
  });

  test('layout and tvLayout on nested shapes', () => {
    const shapes: [ref.Nested, ref.Nested][] = [[[4, 8], [32, 1]], [[2, [2, 2]], [16, [8, 128]]], [32, 128], [[8, 4], [128, 0]]];
    for (const [s, d] of shapes) {
      const a = F.layout(s, d), b = ref.layout(s, d);
      const dims = (x: ref.Nested): number[] => (typeof x === 'number' ? [x] : x.flatMap(dims));
      const size = dims(s).reduce((x, y) => x * y, 1);
      for (let i = 0; i < size; i++) expect(a(i)).toBe(b(i));
    }
    const t1 = F.tvLayout([4, 8], [256, 16], [16, 2, 4], [1, 128, 1024]), t2 = ref.tvLayout([4, 8], [256, 16], [16, 2, 4], [1, 128, 1024]);
    for (let t = 0; t < 32; t++) for (let v = 0; v < 128; v++) expect(t1(t, v)).toBe(t2(t, v));
  });

  test('lop3 (all 256 LUTs), prmt, shfl (every mode, with clamps and segment masks), lutOf: random words', () => {
    const rng = refMulberry32(12345);
    const word = () => Math.floor(rng() * 0x100000000) >>> 0;
    for (let i = 0; i < 64; i++) {
      const a = word(), b = word(), c = word();
      for (let l = 0; l < 256; l++) expect(F.lop3Ref(l, a, b, c)).toBe(ref.lop3Ref(l, a, b, c));
      expect(F.prmtRef(a, b, c)).toBe(ref.prmtRef(a, b, c));
    }
    const fns: ((a: number, b: number, c: number) => number)[] = [(a, b, c) => (a & b) | c, (a, b, c) => a ^ b ^ c, (a, _b, c) => ~a & c];
    for (const f of fns) expect(F.lutOf(f)).toBe(ref.lutOf(f));
    const values = Uint32Array.from({ length: 32 }, word);
    for (const mode of ['idx', 'bfly', 'down'] as const) {
      for (const c of [0x1f, 0x0, 0x0f, 0x181f, 0x1c1f]) {
        for (let k = 0; k < 8; k++) {
          const operand = Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 64));
          expect(F.shflRef(mode, values, operand, c)).toEqual(ref.shflRef(mode, values, operand, c));
        }
      }
    }
  });

  test('packFragment, packC and matmulRef', () => {
    const rng = refMulberry32(777);
    const m = (r: number, c: number) => Array.from({ length: r }, () => Array.from({ length: c }, () => Math.floor(rng() * 0x10000)));
    const a = m(16, 16), b = m(16, 8);
    expect(Array.from(F.packFragment(a, 4, F.isa.mmaA))).toEqual(Array.from(ref.packFragment(a, 4, ref.isa.mmaA)));
    expect(Array.from(F.packFragment(b, 2, F.cute.mmaB))).toEqual(Array.from(ref.packFragment(b, 2, ref.cute.mmaB)));
    const c = m(16, 8).map((row) => row.map((x) => x / 4 - 8000));
    expect(Array.from(F.packC(c))).toEqual(Array.from(ref.packC(c)));
    const sa = m(16, 32).map((row) => row.map((x) => (x % 13) - 6)), sb = m(32, 8).map((row) => row.map((x) => (x % 13) - 6));
    expect(F.matmulRef(sa, sb, null)).toEqual(ref.matmulRef(sa, sb, null));
    expect(F.matmulRef(sa.map((r) => r.slice(0, 16)), sb.slice(0, 16), c)).toEqual(ref.matmulRef(sa.map((r) => r.slice(0, 16)), sb.slice(0, 16), c));
  });

  test("probe-cases.js: the tests' seeding and exact f16/bf16 encodings", () => {
    for (const label of ['mma f16 random', 'mma.sp bf16 1 random', 'cp.async 16', 'lop3', 'prmt']) {
      expect(C.seedFor(BASE_SEED, label)).toBe(refSeedFor(label));
      const r1 = C.mulberry32(refSeedFor(label)), r2 = refMulberry32(refSeedFor(label));
      for (let i = 0; i < 16; i++) expect(r1()).toBe(r2());
    }
    for (let v = -300; v <= 300; v += 0.25) {
      if (v === 0) continue;
      expect(C.exactBits16('f16', v)).toBe(numberToF16(v));
      if (Number.isInteger(v) && Math.abs(v) <= 256) expect(C.exactBits16('bf16', v)).toBe(numberToBf16(v));
    }
    expect(C.exactBits16('f16', 0)).toBe(0);
    expect(C.exactBits16('f16', -0)).toBe(0x8000);
    expect(() => C.exactBits16('bf16', 257)).toThrow(/not exact/);
    expect(() => C.exactBits16('f16', 0.1)).toThrow(/not exact/);
  });

  test('every probe kind of the simulated device has cases, and each case\'s expectations are complete', () => {
    const cases = C.buildCases();
    const kinds = new Set(cases.map((c: { args: { kind: string } }) => c.args.kind));
    for (const k of ['ldmatrix_x1', 'ldmatrix_x2', 'ldmatrix_x4', 'ldmatrix_x1_trans', 'ldmatrix_x2_trans', 'ldmatrix_x4_trans', 'mma_f16', 'mma_bf16',
      'mma_sp_f16', 'mma_sp_bf16', 'mma_f16_tile', 'mma_bf16_tile', 'cp_async', 'shfl', 'lop3', 'prmt']) expect(kinds).toContain(k);
    // mma.sp under both selectors, each with metadata that differs across rows and chunks.
    const sp = cases.filter((c: { args: { kind: string } }) => c.args.kind.startsWith('mma_sp_'));
    expect(new Set(sp.map((c: { args: { selector: number } }) => c.args.selector))).toEqual(new Set([0, 1]));
    for (const c of sp.filter((x: { name: string }) => /random|columns/.test(x.name))) expect(new Set(c.args.e).size).toBeGreaterThan(8);
    const names = new Set<string>();
    for (const c of cases) {
      expect(names.has(c.name)).toBe(false);
      names.add(c.name);
      if (c.isolate) continue;
      for (const want of Object.values(c.wants) as (number | null)[][]) {
        expect(want.length % c.perLane).toBe(0);
        expect(want.length / c.perLane).toBe(32);
      }
    }
  });
});

// ---- the harness on the simulated device ----------------------------------------------------------

describe('scripts/gpu-check/run-probes.js', () => {
  const haveSim = fs.existsSync(SIM_ADDON);
  (haveSim ? test : test.skip)('passes every case on the simulated device, records the undefined ones, and replays its own dumps', () => {
    const out = tmpDir('cg-run-probes-');
    try {
      const r = spawnSync(process.execPath, [path.join(DIR, 'run-probes.js'), '--addon', SIM_ADDON, '--out', out], { encoding: 'utf8', timeout: 60000 });
      expect(r.stdout).not.toMatch(/^FAIL/m);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^# 91 passed, 0 failed, 4 undefined-behaviour cases recorded/m);
      // the simulator refuses what the ISA leaves undefined; the child process reports it
      expect(r.stdout).toMatch(/^INFO ldmatrix_x4_lane5_misaligned: refused: .*not 16-byte aligned/m);
      const dumps = JSON.parse(fs.readFileSync(path.join(out, 'probes', 'dumps.json'), 'utf8'));
      expect(dumps.addon.simulated).toBe(true);
      expect(dumps.cases).toHaveLength(95);
      const cp = dumps.cases.find((c: { name: string }) => c.name === 'cp_async_16');
      expect(cp.notCompared).toHaveLength(128);
      expect(cp.pendingGroup).toEqual({ words: 128, equalToLanded: 0, all0xFF: 128 });
      const replay = spawnSync(process.execPath, [path.join(DIR, 'run-probes.js'), '--addon', SIM_ADDON, '--replay', path.join(out, 'probes', 'dumps.json')], { encoding: 'utf8', timeout: 60000 });
      expect(replay.status).toBe(0);
      expect(replay.stdout).toMatch(/^# 91 passed, 0 failed/m);

      // A recorded register that differs is reported with its lane and register.
      const lop = dumps.cases.find((c: { name: string }) => c.name === 'prmt');
      lop.result.regs[5] = (lop.result.regs[5] ^ 1) >>> 0;
      fs.writeFileSync(path.join(out, 'bad.json'), JSON.stringify(dumps));
      const bad = spawnSync(process.execPath, [path.join(DIR, 'run-probes.js'), '--addon', SIM_ADDON, '--replay', path.join(out, 'bad.json'), '--only', '^prmt$'], { encoding: 'utf8', timeout: 60000 });
      expect(bad.status).toBe(1);
      expect(bad.stdout).toMatch(/FAIL prmt:\n {2}vs recorded: 1 of 32 registers differ\n {4}lane 5 reg 0: got 0x[0-9a-f]{8}, want 0x[0-9a-f]{8}/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  test('js-checks.js: the formulas agree with themselves where the GPU machine runs them', () => {
    const r = spawnSync(process.execPath, [path.join(DIR, 'js-checks.js')], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/# all checks passed/);
    expect(r.status).toBe(0);
  });
});

// ---- the real addon's runProbe --------------------------------------------------------------------

describe("the CUDA addon's runProbe (native/cuda/binding_probes.cc)", () => {
  const haveCuda = fs.existsSync(CUDA_ADDON);

  // Run in a child process: a crash would show as a signal, not take the test runner down.
  function outcomes(addon: string, calls: string): Record<string, unknown>[] {
    const code = `
      const a = require(${JSON.stringify(addon)});
      const u32 = (n) => new Uint32Array(n);
      const calls = ${calls};
      const out = calls.map((args) => {
        try {
          const r = a.runProbe(args);
          return { returned: { ok: r.ok, error: r.error, n: r.regs.length } };
        } catch (e) {
          return { threw: { name: e.constructor.name, code: e.code, cudaError: e.cudaError, cudaErrorCode: e.cudaErrorCode, message: e.message } };
        }
      });
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    return JSON.parse(r.stdout);
  }

  const GOOD = `[
    { kind: 'prmt', a: u32(32), b: u32(32), c: u32(32) },
    { kind: 'ldmatrix_x4_trans' },
    { kind: 'mma_bf16', a: u32(128), b: u32(64), c: new Float32Array(128) },
    { kind: 'mma_sp_f16', selector: 1, a: u32(128), b: u32(128), c: new Float32Array(128), e: new Uint32Array(32).fill(0x44444444) },
    { kind: 'lop3', a: u32(32), b: u32(32), c: u32(32), luts: Uint32Array.of(0xea, 0x6a) },
  ]`;
  const BAD = `[
    { kind: 'nope' },
    { kind: 'prmt', a: u32(32), b: u32(31), c: u32(32) },
    { kind: 'lop3', a: u32(32), b: u32(32), c: u32(32), luts: Uint32Array.of(256) },
    { kind: 'cp_async', bytes: 12, srcBytes: new Int32Array(64), src: new Uint8Array(768) },
    { kind: 'shfl', mode: 'up', values: u32(32), operand: u32(32) },
    { kind: 'ldmatrix_x1', faultLane: 32 },
    { kind: 'mma_f16', a: 'no', b: u32(64), c: u32(128) },
    { kind: 'mma_sp_bf16', selector: 2, a: u32(128), b: u32(128), c: u32(128), e: u32(32) },
    { kind: 'mma_sp_f16', selector: 0, a: u32(128), b: u32(128), c: u32(128), e: u32(16) },
  ]`;

  (haveCuda ? test : test.skip)('has runProbe; without a driver each probe throws a coded ERR_CUDA error (with a GPU, it runs)', () => {
    const got = outcomes(CUDA_ADDON, GOOD);
    if (hasGpu()) {
      for (const o of got) expect(o).toEqual({ returned: { ok: true, error: null, n: expect.any(Number) } });
      return;
    }
    for (const o of got) {
      expect(o.threw).toEqual({
        name: 'Error',
        code: 'ERR_CUDA',
        cudaError: expect.stringMatching(/^cudaError/),
        cudaErrorCode: expect.any(Number),
        message: expect.stringMatching(/^cudaError\w+: .*\(cudaSetDevice\(0\) at .*binding_probes\.cc:\d+\)$/),
      });
    }
  });

  (haveCuda ? test : test.skip)('bad arguments throw ERR_NATIVE before any CUDA call, as on the simulated device (binding/probe_args.h)', () => {
    const real = outcomes(CUDA_ADDON, BAD);
    for (const o of real) expect((o.threw as { code: string }).code).toBe('ERR_NATIVE');
    if (fs.existsSync(SIM_ADDON)) expect(outcomes(SIM_ADDON, BAD)).toEqual(real);
  });

  (haveCuda ? test : test.skip)('the probe kernels it launches are defined inside the addon (no undefined cg::probes symbol)', () => {
    const r = spawnSync('nm', ['-D', '--undefined-only', '-C', CUDA_ADDON], { encoding: 'utf8' });
    if (r.error) return; // no binutils here
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/cg::probes::/);
  });
});
