/**
 * The dense GEMM over device memory, linearDense / linearDenseAsync (native/binding/gemm_exports.h,
 * the same exports in both addons), on the simulated device: Y = X·Wᵀ (+ bias) from device
 * handles (deviceAlloc) on the device's stream, against a float64 reference.
 *
 * Every case: seeded random non-zero 16-bit inputs (test/helpers/reference.ts; the seed is printed
 * on failure, CG_TEST_SEED reproduces it) copied in with copyToDevice; `out` an allocation larger
 * than M*N elements, poisoned all over first (float32 NaN bits 0xFFFFFFFF, or 0xFFFF: a NaN in
 * both 16-bit formats), so an element never written fails the bound and the tail past M*N must
 * keep its poison. The bound is gemm-dense.test.ts's (checkLinear with c = 1: float32
 * accumulation of exact products, then one rounding into the output dtype).
 *
 * Errors: each argument check with its code (ERR_NATIVE, ERR_DISPOSED, ERR_OVERLAP,
 * ERR_NOT_SUPPORTED), thrown by the async form too, and nothing written; a faulted stream
 * (faultStream, sim only) as ERR_CUDA in a child process (the fault is sticky for the process).
 * The CUDA addon, when built, has the same exports and fails with coded errors where no device
 * is usable (or computes the same product where one is).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, describeChild, runChild } from '../helpers/child';
import {
  DType,
  checkLinear,
  decode,
  linearRef,
  mulberry32,
  numberToBf16,
  numberToF16,
  randNonZero,
  seedFor,
  seedNote,
} from '../helpers/reference';

const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');
const CUDA_ADDON = path.join(ROOT, 'build-cuda', 'Release', 'compressed_gemm_cuda.node');

type Handle = object;
type InDType = 'float16' | 'bfloat16';
interface LinearDenseArgs {
  x: Handle;
  w: Handle;
  bias?: Handle | null;
  out: Handle;
  M: number;
  N: number;
  K: number;
  dtype: InDType;
  outDtype: DType;
  splits?: number;
  blockM?: number;
}
interface DeviceAddon {
  deviceAlloc(args: { device?: number; bytes: number }): Handle;
  deviceFree(h: Handle): void;
  copyToDevice(args: { handle: Handle; offset?: number; src: ArrayBufferView }): void;
  copyToDeviceAsync(args: { handle: Handle; offset?: number; src: ArrayBufferView }): Promise<void>;
  copyToHost<T extends ArrayBufferView>(args: { handle: Handle; offset?: number; dst: T }): T;
  copyToHostAsync<T extends ArrayBufferView>(args: { handle: Handle; offset?: number; dst: T }): Promise<T>;
  memory(): { devices: Array<{ device: number; bytes: number; peakBytes: number }> };
  linearDense(args: LinearDenseArgs): undefined;
  linearDenseAsync(args: LinearDenseArgs): Promise<undefined>;
  takeLaunchLog(): Array<{ kernel: string; grid: number[]; block: number[]; smem: number }>;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const sim = require(ADDON) as DeviceAddon;

const held = (): number => sim.memory().devices.find((d) => d.device === 0)?.bytes ?? 0;

// The addon's errors come from Node's own realm, not jest's sandbox: compared by name and code.
type ErrorName = 'TypeError' | 'RangeError' | 'Error';
function checkCoded(e: unknown, name: ErrorName, code: string): Error & Record<string, unknown> {
  const err = e as Error & Record<string, unknown>;
  expect(`${err?.name}/${err?.code}`).toBe(`${name}/${code}`);
  expect(typeof err.message).toBe('string');
  return err;
}
function throwsCoded(fn: () => unknown, name: ErrorName, code: string, what = ''): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    const err = e as Error & Record<string, unknown>;
    expect({ what, error: `${err?.name}/${err?.code}` }).toEqual({ what, error: `${name}/${code}` });
    return err;
  }
  throw new Error(`${what}: expected a ${name} with code ${code}; nothing was thrown`);
}

const POISON32 = 0xffffffff;
const POISON16 = 0xffff;
/** Elements past M*N in every `out` allocation, which must keep their poison. */
const tailOf = (N: number) => 64 * (N + 1);
const elemBytes = (t: DType) => (t === 'float32' ? 4 : 2);

function randomBits(rng: () => number, n: number, dtype: InDType): Uint16Array {
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = dtype === 'float16' ? numberToF16(randNonZero(rng)) : numberToBf16(randNonZero(rng));
  return a;
}

interface Case {
  M: number;
  N: number;
  K: number;
  dtype: InDType;
  outDtype: DType;
  bias: boolean;
}

/** One GEMM's device buffers, filled, with its host inputs and the reference. */
class Problem {
  readonly x: Handle;
  readonly w: Handle;
  readonly bias: Handle | null;
  readonly out: Handle;
  readonly outElems: number;
  readonly ref: Float64Array;
  readonly absSum: Float64Array;
  readonly label: string;
  private freed = new Set<Handle>();

  constructor(readonly addon: DeviceAddon, readonly c: Case, tag = '') {
    const { M, N, K, dtype, outDtype } = c;
    this.label = `linear-dense-device ${M}x${N}x${K} ${dtype} ${outDtype} bias ${c.bias}${tag}`;
    const seed = seedFor(this.label);
    const rng = mulberry32(seed);
    this.label += `, ${seedNote(seed)}`;
    const x = randomBits(rng, M * K, dtype);
    const w = randomBits(rng, N * K, dtype);
    const b = c.bias ? Float32Array.from({ length: N }, () => randNonZero(rng)) : null;
    ({ ref: this.ref, absSum: this.absSum } = linearRef(decode(x, dtype), decode(w, dtype), b ? Float64Array.from(b) : null, M, N, K));
    this.outElems = M * N + tailOf(N);
    this.x = addon.deviceAlloc({ bytes: x.byteLength });
    this.w = addon.deviceAlloc({ bytes: w.byteLength });
    this.bias = b ? addon.deviceAlloc({ bytes: b.byteLength }) : null;
    this.out = addon.deviceAlloc({ bytes: this.outElems * elemBytes(outDtype) });
    addon.copyToDevice({ handle: this.x, src: x });
    addon.copyToDevice({ handle: this.w, src: w });
    if (this.bias && b) addon.copyToDevice({ handle: this.bias, src: b });
    this.poison();
  }

  args(): LinearDenseArgs {
    const { M, N, K, dtype, outDtype } = this.c;
    return { x: this.x, w: this.w, bias: this.bias, out: this.out, M, N, K, dtype, outDtype };
  }

  poison(): void {
    const p = this.c.outDtype === 'float32' ? new Uint32Array(this.outElems).fill(POISON32) : new Uint16Array(this.outElems).fill(POISON16);
    this.addon.copyToDevice({ handle: this.out, src: p });
  }

  /** out's whole allocation as bits. */
  outBits(): Uint32Array | Uint16Array {
    const dst = this.c.outDtype === 'float32' ? new Uint32Array(this.outElems) : new Uint16Array(this.outElems);
    return this.addon.copyToHost({ handle: this.out, dst });
  }

  /** null when out holds the product within the bound and its tail its poison, else why not. */
  verify(): string | null {
    const { M, N, K, outDtype } = this.c;
    const bits = this.outBits();
    const y = outDtype === 'float32' ? new Float32Array(bits.buffer, 0, M * N) : (bits as Uint16Array).subarray(0, M * N);
    const msg = checkLinear(y, outDtype, this.ref, this.absSum, M, N, K, this.label, 1);
    if (msg) return msg;
    const poison = outDtype === 'float32' ? POISON32 : POISON16;
    for (let i = M * N; i < bits.length; i++) {
      if (bits[i] !== poison) return `${this.label}: out[${i}] past M*N = ${M * N} was written (0x${bits[i].toString(16)})`;
    }
    return null;
  }

  /** Whether out still holds nothing but poison. */
  untouched(): boolean {
    const poison = this.c.outDtype === 'float32' ? POISON32 : POISON16;
    return this.outBits().every((v) => v === poison);
  }

  free(...which: Array<'x' | 'w' | 'bias' | 'out'>): void {
    for (const k of which.length ? which : (['x', 'w', 'bias', 'out'] as const)) {
      const h = this[k];
      if (h && !this.freed.has(h)) {
        this.addon.deviceFree(h);
        this.freed.add(h);
      }
    }
  }
}

// Each (dtype, outDtype, bias) pairing at least once; ragged on the 64 x 64 tile and the 32-wide
// K-step, multi-block along M, along N and both.
const CASES: Case[] = [
  { M: 1, N: 8, K: 8, dtype: 'float16', outDtype: 'float32', bias: false },
  { M: 3, N: 9, K: 24, dtype: 'float16', outDtype: 'float16', bias: true },
  { M: 5, N: 130, K: 16, dtype: 'float16', outDtype: 'bfloat16', bias: true },
  { M: 17, N: 33, K: 136, dtype: 'bfloat16', outDtype: 'bfloat16', bias: true },
  { M: 65, N: 9, K: 32, dtype: 'bfloat16', outDtype: 'float16', bias: false },
  { M: 70, N: 70, K: 40, dtype: 'bfloat16', outDtype: 'float32', bias: true },
];

describe('linearDense / linearDenseAsync on the simulated device: Y = X·Wᵀ (+ bias) from device memory', () => {
  // What another suite of this worker process left held (a device's split-K workspace is
  // kept for reuse: native/binding/gemm_int4_exports.h) is not this suite's.
  let before = 0;
  beforeEach(() => {
    before = held();
  });
  afterEach(() => {
    expect(held()).toBe(before); // every test frees what it allocated
  });

  test.each(CASES)('M=$M N=$N K=$K $dtype -> $outDtype, bias $bias: sync, then async', async (c) => {
    const p = new Problem(sim, c);
    try {
      expect(sim.linearDense(p.args())).toBeUndefined();
      const sync = p.verify();
      if (sync) throw new Error(`sync: ${sync}`);
      p.poison();
      await expect(sim.linearDenseAsync(p.args())).resolves.toBeUndefined();
      const later = p.verify();
      if (later) throw new Error(`async: ${later}`);
    } finally {
      p.free();
    }
  });

  test('bias: null and undefined both mean none', () => {
    const c: Case = { M: 3, N: 9, K: 16, dtype: 'float16', outDtype: 'float32', bias: false };
    const p = new Problem(sim, c);
    try {
      sim.linearDense({ ...p.args(), bias: null });
      expect(p.verify()).toBeNull();
      p.poison();
      const a: Partial<LinearDenseArgs> = p.args();
      delete a.bias;
      sim.linearDense(a as LinearDenseArgs);
      expect(p.verify()).toBeNull();
    } finally {
      p.free();
    }
  });

  test('ordered on the stream with the async copies: inputs copied in, product, out copied back, none awaited in between', async () => {
    const c: Case = { M: 19, N: 40, K: 48, dtype: 'float16', outDtype: 'float16', bias: true };
    const p = new Problem(sim, c, ' ordered');
    try {
      // Overwrite x with zeros (async), then with its real contents again only through the
      // stream: the product must see the last copy before it.
      const xBits = new Uint16Array(c.M * c.K);
      sim.copyToHost({ handle: p.x, dst: xBits });
      const copies = [sim.copyToDeviceAsync({ handle: p.x, src: new Uint16Array(c.M * c.K) }), sim.copyToDeviceAsync({ handle: p.x, src: xBits })];
      const run = sim.linearDenseAsync(p.args());
      const back = sim.copyToHostAsync({ handle: p.out, dst: new Uint16Array(c.M * c.N) });
      await Promise.all([...copies, run]);
      const y = await back;
      expect(checkLinear(y, c.outDtype, p.ref, p.absSum, c.M, c.N, c.K, p.label, 1)).toBeNull();
    } finally {
      p.free();
    }
  });

  test('20 concurrent async calls on separate buffers all compute their own product', async () => {
    const dtypes: InDType[] = ['float16', 'bfloat16'];
    const outs: DType[] = ['float32', 'float16', 'bfloat16'];
    const problems = Array.from({ length: 20 }, (_, i) =>
      new Problem(sim, { M: 1 + ((i * 7) % 23), N: 8 + ((i * 13) % 37), K: 8 * (1 + (i % 4)), dtype: dtypes[i % 2], outDtype: outs[i % 3], bias: i % 2 === 0 }, ` concurrent ${i}`));
    try {
      const results = await Promise.all(problems.map((p) => sim.linearDenseAsync(p.args())));
      expect(results).toEqual(new Array(20).fill(undefined));
      const bad = problems.map((p) => p.verify()).filter((m) => m !== null);
      if (bad.length) throw new Error(`${bad.length} of 20 wrong:\n${bad.slice(0, 3).join('\n')}`);
    } finally {
      problems.forEach((p) => p.free());
    }
  });

  test('handles freed while linearDenseAsync is in flight keep their memory until the kernel is done', async () => {
    const runs = Array.from({ length: 6 }, (_, i) => new Problem(sim, { M: 33, N: 40, K: 64, dtype: 'bfloat16', outDtype: 'float32', bias: true }, ` keep ${i}`));
    try {
      const pending = runs.map((p) => sim.linearDenseAsync(p.args()));
      // The inputs go at once (the later kernels have not run yet: the stream runs one at a time).
      for (const p of runs) p.free('x', 'w', 'bias');
      const outputs = before + runs.reduce((s, p) => s + p.outElems * 4, 0);
      // The kernels still queued hold their inputs (the last one's at least: ~6 x 60 ms of work).
      expect(held()).toBeGreaterThan(outputs);
      await Promise.all(pending);
      const bad = runs.map((p) => p.verify()).filter((m) => m !== null);
      expect(bad).toEqual([]);
      // Every input's memory went back once its kernel was done: only the outputs are held (and
      // what the suite started with).
      expect(held()).toBe(outputs);
      // Everything freed at once, out included: the promise still resolves and nothing leaks.
      const last = new Problem(sim, { M: 33, N: 40, K: 64, dtype: 'float16', outDtype: 'float16', bias: false }, ' keep all');
      const done = sim.linearDenseAsync(last.args());
      last.free();
      await expect(done).resolves.toBeUndefined();
    } finally {
      runs.forEach((p) => p.free());
    }
  });
});

// Split-K (native/cuda/split_k.cuh) on the tensor-core kernel: block z multiplies its slice of
// the 32-column K-steps into a float32 partial buffer of the call's own, a second kernel adds the
// slices in order with the bias and rounds once. The bound is the same (c = 1): each slice sums
// its products in float32, then the slices are added, at most K + 1 roundings in all, and
// K (K + 1) u < 1 holds for K = 1000. K = 1000: 32 K-steps (the last a quarter full), one (N, M)
// tile in the first case, so the automatic choice splits too (4 slices of 8 steps).
describe('linearDense split-K and the two tiles: explicit and automatic choices within the bound, sync and async', () => {
  test.each([
    { M: 3, N: 40, K: 1000, dtype: 'float16', outDtype: 'float32', bias: true },
    { M: 70, N: 70, K: 1000, dtype: 'bfloat16', outDtype: 'bfloat16', bias: false },
  ] as Case[])('M=$M N=$N K=$K $dtype -> $outDtype', async (c) => {
    const before = held();
    const p = new Problem(sim, c, ' split-K');
    try {
      const bitsOf = () => Array.from(p.outBits().subarray(0, c.M * c.N));
      sim.linearDense({ ...p.args(), splits: 1 });
      expect(p.verify()).toBeNull();
      const one = bitsOf();
      const others: number[][] = [];
      for (const splits of [undefined, 2, 3, 8]) {
        p.poison();
        sim.linearDense(splits === undefined ? p.args() : { ...p.args(), splits });
        expect(p.verify()).toBeNull();
        others.push(bitsOf());
      }
      p.poison();
      await sim.linearDenseAsync({ ...p.args(), splits: 5 });
      expect(p.verify()).toBeNull();
      // The other tile than the automatic one (which ran above): the general one (64 rows; M = 3
      // in one tile) and the decode tile (16 rows of X; 5 row tiles at M = 70, the last with 6
      // rows), with and without split-K.
      const blockM = c.M <= 16 ? 64 : 16;
      for (const splits of [undefined, 3]) {
        p.poison();
        sim.linearDense({ ...p.args(), blockM, ...(splits === undefined ? {} : { splits }) });
        expect(p.verify()).toBeNull();
        others.push(bitsOf());
      }
      p.poison();
      await sim.linearDenseAsync({ ...p.args(), blockM, splits: 2 });
      expect(p.verify()).toBeNull();
      for (const bad of [0, 8, 32, 256, 16.5]) throwsCoded(() => sim.linearDense({ ...p.args(), blockM: bad }), 'RangeError', 'ERR_NATIVE', `blockM ${bad}`);
      // Not vacuous: with a float32 Y some slicing changes the summation order somewhere.
      if (c.outDtype === 'float32') expect(others.some((o) => o.some((v, i) => v !== one[i]))).toBe(true);
      for (const splits of [0, 9, 2.5]) throwsCoded(() => sim.linearDense({ ...p.args(), splits }), 'RangeError', 'ERR_NATIVE', `splits ${splits}`);
    } finally {
      p.free();
    }
    expect(held()).toBe(before); // the partial buffers were given back
  });

  // The wide tile (DenseWideTile: 128 rows of X, 8 warps), asked for (the automatic choice from
  // M = 512, below): M = 130 is two
  // row tiles, the second with 2 rows (126 of its rows past M, zero-filled and never stored), and
  // N = 70 two column tiles; K = 200 gives split-K 7 K-steps to slice. Same bound. The simulator's
  // launch log says which tile ran: 256 threads and 3 stages of (128 + 64) x 80 bytes.
  test.each([
    { M: 130, N: 70, K: 200, dtype: 'float16', outDtype: 'float16', bias: true },
    { M: 40, N: 64, K: 96, dtype: 'bfloat16', outDtype: 'float32', bias: false },
  ] as Case[])('the wide tile (blockM 128) M=$M N=$N K=$K $dtype -> $outDtype: splits 1, 3 and automatic, sync and async, within the bound', async (c) => {
    const before = held();
    const p = new Problem(sim, c, ' wide tile');
    try {
      for (const splits of [undefined, 1, 3]) {
        p.poison();
        sim.takeLaunchLog();
        sim.linearDense({ ...p.args(), blockM: 128, ...(splits === undefined ? {} : { splits }) });
        expect(p.verify()).toBeNull();
        const gemm = sim.takeLaunchLog().filter((l) => l.kernel === 'dense_gemm');
        expect(gemm).toHaveLength(1);
        expect(gemm[0]).toMatchObject({ block: [256, 1, 1], smem: 3 * (128 + 64) * 80 });
        expect(gemm[0].grid.slice(0, 2)).toEqual([Math.ceil(c.N / 64), Math.ceil(c.M / 128)]);
      }
      p.poison();
      await sim.linearDenseAsync({ ...p.args(), blockM: 128, splits: 2 });
      expect(p.verify()).toBeNull();
    } finally {
      p.free();
    }
    expect(held()).toBe(before);
  });

  test('the automatic tile: the decode tile (16 rows, 6 stages) up to M = 16, the general one (64 rows, 3 stages) above, the wide one (128 rows) from M = 512; explicit choices run what they name', () => {
    const x = sim.deviceAlloc({ bytes: 600 * 64 * 2 }), w = sim.deviceAlloc({ bytes: 64 * 64 * 2 }), out = sim.deviceAlloc({ bytes: 600 * 64 * 4 });
    try {
      sim.copyToDevice({ handle: x, src: new Uint16Array(600 * 64).fill(0x3c00) });
      sim.copyToDevice({ handle: w, src: new Uint16Array(64 * 64).fill(0x3c00) });
      const base = { x, w, bias: null, out, N: 64, K: 64, dtype: 'float16' as InDType, outDtype: 'float32' as DType };
      const tileOf = (args: Record<string, unknown>) => {
        sim.takeLaunchLog();
        sim.linearDense({ ...base, ...args } as unknown as LinearDenseArgs);
        const gemm = sim.takeLaunchLog().filter((l) => l.kernel === 'dense_gemm');
        expect(gemm).toHaveLength(1);
        return { threads: gemm[0].block[0], smem: gemm[0].smem, rowTiles: gemm[0].grid[1] };
      };
      const decode = { threads: 128, smem: 6 * (16 + 64) * 80 }, general = { threads: 128, smem: 3 * (64 + 64) * 80 };
      const wide = { threads: 256, smem: 3 * (128 + 64) * 80 };
      for (const M of [1, 16]) expect(tileOf({ M })).toEqual({ ...decode, rowTiles: 1 });
      for (const M of [17, 200, 511]) expect(tileOf({ M })).toEqual({ ...general, rowTiles: Math.ceil(M / 64) });
      for (const M of [512, 600]) expect(tileOf({ M })).toEqual({ ...wide, rowTiles: Math.ceil(M / 128) });
      expect(tileOf({ M: 600, blockM: 64 })).toEqual({ ...general, rowTiles: 10 });
      expect(tileOf({ M: 200, blockM: 16 })).toEqual({ ...decode, rowTiles: 13 });
      expect(tileOf({ M: 5, blockM: 64 })).toEqual({ ...general, rowTiles: 1 });
      expect(tileOf({ M: 200, blockM: 128 })).toEqual({ ...wide, rowTiles: 2 });
    } finally {
      for (const h of [x, w, out]) sim.deviceFree(h);
    }
  });

  test('float32 inputs (the CUDA-core kernel) do not split and have one tile: splits 1 and blockM 64 run, splits above 1 and blockM 16 or 128 are ERR_NOT_SUPPORTED', () => {
    const x = sim.deviceAlloc({ bytes: 2 * 1024 * 4 }), w = sim.deviceAlloc({ bytes: 4 * 1024 * 4 }), out = sim.deviceAlloc({ bytes: 2 * 4 * 4 });
    try {
      sim.copyToDevice({ handle: x, src: new Float32Array(2 * 1024).fill(0.5) });
      sim.copyToDevice({ handle: w, src: new Float32Array(4 * 1024).fill(0.25) });
      const args = { x, w, bias: null, out, M: 2, N: 4, K: 1024, dtype: 'float32' as unknown as InDType, outDtype: 'float32' as DType };
      sim.linearDense({ ...args, splits: 1 });
      expect(Array.from(sim.copyToHost({ handle: out, dst: new Float32Array(8) }))).toEqual(new Array(8).fill(128));
      sim.linearDense(args); // automatic: one slice
      throwsCoded(() => sim.linearDense({ ...args, splits: 2 }), 'RangeError', 'ERR_NOT_SUPPORTED');
      // One tile too: 64 rows runs, the decode tile (16) is the tensor-core kernel's only.
      sim.linearDense({ ...args, blockM: 64 });
      const e = throwsCoded(() => sim.linearDense({ ...args, blockM: 16 }), 'RangeError', 'ERR_NOT_SUPPORTED');
      expect(e.message).toMatch(/64 for float32 inputs/);
      throwsCoded(() => sim.linearDense({ ...args, blockM: 128 }), 'RangeError', 'ERR_NOT_SUPPORTED');
    } finally {
      for (const h of [x, w, out]) sim.deviceFree(h);
    }
  });
});

describe('linearDense / linearDenseAsync: coded errors, thrown before anything runs', () => {
  // What another suite of this worker process left held (a device's split-K workspace is
  // kept for reuse: native/binding/gemm_int4_exports.h) is not this suite's.
  let before = 0;
  beforeEach(() => {
    before = held();
  });
  afterEach(() => {
    expect(held()).toBe(before);
  });

  const c: Case = { M: 3, N: 9, K: 16, dtype: 'float16', outDtype: 'float32', bias: true };

  /** fn(args) throws the coded error from both exports, synchronously, and out stays poisoned. */
  function bothThrow(p: Problem, args: LinearDenseArgs, name: ErrorName, code: string, what: string): Error & Record<string, unknown> {
    const e = throwsCoded(() => sim.linearDense(args), name, code, `${what} (sync)`);
    const ea = throwsCoded(() => sim.linearDenseAsync(args), name, code, `${what} (async)`);
    expect(ea.message).toBe(e.message);
    expect({ what, untouched: p.untouched() }).toEqual({ what, untouched: true });
    return e;
  }

  test('malformed arguments: ERR_NATIVE', () => {
    const p = new Problem(sim, c);
    const small = sim.deviceAlloc({ bytes: 8 });
    try {
      for (const bad of [undefined, null, 42, 'x']) {
        throwsCoded(() => (sim.linearDense as (a: unknown) => unknown)(bad), 'TypeError', 'ERR_NATIVE', `argument ${String(bad)}`);
        throwsCoded(() => (sim.linearDenseAsync as (a: unknown) => unknown)(bad), 'TypeError', 'ERR_NATIVE', `argument ${String(bad)} (async)`);
      }
      const cases: Array<[string, Partial<Record<keyof LinearDenseArgs, unknown>>, ErrorName]> = [
        ['x missing', { x: undefined }, 'TypeError'],
        ['x not a handle', { x: {} }, 'TypeError'],
        ['w a typed array', { w: new Uint16Array(9 * 16) }, 'TypeError'],
        ['out a number', { out: 1 }, 'TypeError'],
        ['bias not a handle', { bias: new Float32Array(9) }, 'TypeError'],
        ['M = 0', { M: 0 }, 'RangeError'],
        ['N = -1', { N: -1 }, 'RangeError'],
        ['K = 2.5', { K: 2.5 }, 'RangeError'],
        ['M = 2^31', { M: 2 ** 31 }, 'RangeError'],
        ['M a string', { M: '3' }, 'TypeError'],
        ['N NaN', { N: NaN }, 'RangeError'],
        ['dtype unknown', { dtype: 'float8' }, 'RangeError'],
        ['dtype missing', { dtype: undefined }, 'TypeError'],
        ['outDtype unknown', { outDtype: 'int8' }, 'RangeError'],
        ['x too small', { x: small }, 'RangeError'],
        ['w too small', { w: small }, 'RangeError'],
        ['bias too small', { bias: small }, 'RangeError'],
        ['out too small', { out: small }, 'RangeError'],
        ['x too small for M + 1', { M: 4 }, 'RangeError'],
        ['w too small for N + 1', { N: 10 }, 'RangeError'],
        ['x too small for K + 8', { K: 24 }, 'RangeError'],
      ];
      for (const [what, change, name] of cases) bothThrow(p, { ...p.args(), ...change } as LinearDenseArgs, name, 'ERR_NATIVE', what);
      // The arguments themselves are fine: the same call with nothing spoilt runs.
      expect(sim.linearDense(p.args())).toBeUndefined();
      expect(p.verify()).toBeNull();
    } finally {
      sim.deviceFree(small);
      p.free();
    }
  });

  test('a freed handle in any position: TypeError ERR_DISPOSED', () => {
    for (const k of ['x', 'w', 'bias', 'out'] as const) {
      const p = new Problem(sim, c, ` disposed ${k}`);
      try {
        const args = p.args();
        p.free(k);
        const e = throwsCoded(() => sim.linearDense(args), 'TypeError', 'ERR_DISPOSED', `${k} freed (sync)`);
        expect(e.message).toMatch(new RegExp(`\\b${k}\\b`));
        throwsCoded(() => sim.linearDenseAsync(args), 'TypeError', 'ERR_DISPOSED', `${k} freed (async)`);
        if (k !== 'out') expect(p.untouched()).toBe(true);
      } finally {
        p.free();
      }
    }
  });

  test('out overlapping x, w or bias: RangeError ERR_OVERLAP', () => {
    // Inputs big enough to pass as out too, so that the overlap is the only fault.
    const p = new Problem(sim, { M: 8, N: 8, K: 16, dtype: 'float16', outDtype: 'float16', bias: true });
    try {
      for (const k of ['x', 'w', 'bias'] as const) {
        const args = { ...p.args(), out: p[k] as Handle };
        if (k === 'bias') args.M = 1; // bias holds N floats = 2N bytes: one row of float16 out
        const e = bothThrow(p, args, 'RangeError', 'ERR_OVERLAP', `out = ${k}`);
        expect(e.message).toMatch(new RegExp(`overlaps ${k}\\b`));
      }
      // x and w may be the same memory (both are only read).
      const xw = { ...p.args(), w: p.x };
      expect(sim.linearDense(xw)).toBeUndefined();
    } finally {
      p.free();
    }
  });

  test('configurations the kernel refuses: RangeError ERR_NOT_SUPPORTED with the launcher\'s reason', () => {
    const p = new Problem(sim, { M: 3, N: 9, K: 40, dtype: 'float16', outDtype: 'float32', bias: false });
    try {
      for (const K of [1, 12, 20, 36]) {
        const e = bothThrow(p, { ...p.args(), K }, 'RangeError', 'ERR_NOT_SUPPORTED', `K = ${K}`);
        expect(e.message).toMatch(/K must be a multiple of 8/);
      }
      // float32 inputs are read as 4-byte elements (sized so: K = 18 fits the buffers of K = 40
      // 16-bit values), then refused by the launcher for K % 4 != 0.
      const e = bothThrow(p, { ...p.args(), K: 18, dtype: 'float32' as InDType }, 'RangeError', 'ERR_NOT_SUPPORTED', 'float32 K = 18');
      expect(e.message).toMatch(/K must be a multiple of 4 for float32/);
    } finally {
      p.free();
    }
    // M beyond the grid's reach: 65535 blocks of 64 rows (the general tile, asked for), and of
    // 128 rows (the wide tile, the automatic choice at this M). Refused before the launch: an M
    // within reach would run a GEMM of millions of rows on the simulator.
    for (const [M, blockM] of [[65535 * 64 + 1, 64], [65535 * 128 + 1, undefined]] as const) {
      const N = 8, K = 8;
      const x = sim.deviceAlloc({ bytes: M * K * 2 });
      const w = sim.deviceAlloc({ bytes: N * K * 2 });
      const out = sim.deviceAlloc({ bytes: M * N * 2 });
      try {
        const args = { x, w, out, M, N, K, dtype: 'bfloat16' as InDType, outDtype: 'bfloat16' as DType, ...(blockM ? { blockM } : {}) };
        const e = throwsCoded(() => sim.linearDense(args), 'RangeError', 'ERR_NOT_SUPPORTED', `M too large, blockM ${blockM}`);
        expect(e.message).toMatch(/grid's reach/);
      } finally {
        [x, w, out].forEach((h) => sim.deviceFree(h));
      }
    }
  });
});

describe('linearDense on a faulted stream (child process)', () => {
  test('the stream\'s sticky error: linearDense throws, linearDenseAsync rejects, Error ERR_CUDA', () => {
    const r = runChild(
      `const sim = require(${JSON.stringify(ADDON)});
const M = 3, N = 9, K = 16;
const x = sim.deviceAlloc({ bytes: M * K * 2 }), w = sim.deviceAlloc({ bytes: N * K * 2 }), o = sim.deviceAlloc({ bytes: M * N * 4 });
const args = { x, w, out: o, M, N, K, dtype: 'float16', outDtype: 'float32' };
sim.linearDense(args); // fine before the fault
const pick = (e) => ({ name: e.name, code: e.code, cudaError: e.cudaError, isError: e instanceof Error, message: e.message });
sim.faultStream();
let sync = null, asyncErr = null;
try { sim.linearDense(args); } catch (e) { sync = pick(e); }
try { await sim.linearDenseAsync(args); } catch (e) { asyncErr = pick(e); }
[x, w, o].forEach((h) => sim.deviceFree(h));
out({ sync, async: asyncErr, held: sim.memory().devices[0].bytes });`,
      {},
      { entry: 'none' },
    );
    if (r.value === undefined) throw new Error(describeChild(r));
    const v = r.value as Record<string, any>;
    for (const e of [v.sync, v.async]) {
      expect(e).toMatchObject({ name: 'Error', code: 'ERR_CUDA', cudaError: 'cudaErrorLaunchFailure', isError: true });
      expect(e.message).toMatch(/fault_stream_kernel/);
    }
    expect(v.held).toBe(0);
  });
});

const cudaBuilt = fs.existsSync(CUDA_ADDON);
(cudaBuilt ? describe : describe.skip)('the CUDA addon: the same exports', () => {
  test('coded errors, never a crash, where no device is usable (the same product where one is)', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cuda = require(CUDA_ADDON) as DeviceAddon & { probe(): { ok: boolean; deviceCount: number } };
    expect(typeof cuda.linearDense).toBe('function');
    expect(typeof cuda.linearDenseAsync).toBe('function');
    throwsCoded(() => (cuda.linearDense as (a: unknown) => unknown)(undefined), 'TypeError', 'ERR_NATIVE', 'no argument');
    throwsCoded(() => cuda.linearDenseAsync({} as LinearDenseArgs), 'TypeError', 'ERR_NATIVE', 'no handles');
    // The simulated device's handles are not this addon's.
    const p = new Problem(sim, { M: 3, N: 9, K: 16, dtype: 'float16', outDtype: 'float32', bias: true });
    try {
      throwsCoded(() => cuda.linearDense(p.args()), 'TypeError', 'ERR_NATIVE', 'a sim handle');
    } finally {
      p.free();
    }
    const probe = cuda.probe();
    if (!probe.ok || probe.deviceCount === 0) {
      const e = throwsCoded(() => cuda.deviceAlloc({ bytes: 1024 }), 'Error', 'ERR_CUDA', 'deviceAlloc without a device');
      expect(e.cudaError).toMatch(/^cudaError/);
      return;
    }
    // A GPU: the product within the project's bound (BOUND_C = 2: tensor cores may truncate inside the mma).
    for (const c of [CASES[2], CASES[5]]) {
      const q = new Problem(cuda, c, ' cuda');
      try {
        cuda.linearDense(q.args());
        const bits = q.outBits();
        const y = c.outDtype === 'float32' ? new Float32Array(bits.buffer, 0, c.M * c.N) : (bits as Uint16Array).subarray(0, c.M * c.N);
        expect(checkLinear(y, c.outDtype, q.ref, q.absSum, c.M, c.N, c.K, q.label)).toBeNull();
        q.poison();
        await cuda.linearDenseAsync(q.args());
        const y2 = q.outBits();
        expect(Buffer.from(y2.buffer).equals(Buffer.from(bits.buffer))).toBe(true);
      } finally {
        q.free();
      }
    }
  });
});
