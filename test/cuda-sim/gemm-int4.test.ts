/**
 * The INT4 (W4A16) GEMM (native/cuda/gemm_int4.cuh), Y = X·dequant(W)ᵀ (+ bias), on the simulated
 * device through the exports of compressed_gemm_cuda_sim.node (native/binding/gemm_int4_exports.h):
 * the canonical arrays re-laid out by int4ToDeviceLayout, uploaded, multiplied by linearInt4 /
 * linearInt4Async, downloaded.
 *
 * Every case: fresh seeded random inputs (the seed is printed on failure; CG_TEST_SEED reproduces
 * it): x non-zero 16-bit values (magnitudes in [1/8, 2)), random codes 0..15, scales of both signs
 * (float16 bits or float32), zero points 0..16 (16 is what GPTQ checkpoints can give) or none,
 * and for act-order a random gIdx. The float64 reference dequantizes by the format's published
 * rule (README "INT4", native/formats/int4.h), in this file: w[n][k] = fround((q - z) s) with k's
 * group gIdx[k] or floor(k / group). The output is poisoned on the device beforehand, and poisoned
 * guard elements after it must stay poisoned.
 *
 * THE ERROR BOUND. The kernel dequantizes q - z exactly (a small integer, exact in float16 and
 * bfloat16: the magic-number subtraction has nothing to round), multiplies x by it in the mma
 * (every product exact in float32), and scales each k16 tile's float32 partial sum into the
 * accumulator with one fma (gemm_int4.cuh, "Dequantization in registers"). So every term
 * x_k (q_k - z) s passes through at most D roundings to nearest in float32:
 *   16 additions inside the mma + ceil(Kp / 64) fmas (one per k16 tile of its warp) + 3 additions
 *   across the 4 warps + (splits - 1) across split-K slices (added in slice order) + 1 of the bias,
 * and the reference's own weights are fround((q - z) s), off by at most 2^-24 |w| each: one more.
 * Recursive summation (Higham 3.1) then gives |y32 - ref| <= gamma_(D+1) S <= (D + 2) 2^-24 S with
 * S = sum_k |x_k w_k| + |bias|, i.e. checkLinear's (Keff + 1) 2^-24 S with Keff = D + 1 and c = 1;
 * a 16-bit output adds its one rounding (half an ulp). For K = 392, Kp/64 = 7: Keff = 28, a bound
 * near 2^-19 S, far below one product (>= 2^-3 |s|), so a wrong, missing or doubled term fails.
 * (That is the simulator's round-to-nearest mma; a GPU's tensor cores may round differently inside
 * the mma, which the project's BOUND_C = 2 leaves room for when this runs on the cuda backend.)
 *
 * Shapes: M in {1, 5, 16, 17, 33, 70} (the decode tile of 16 rows up to M = 16, the wide tile of
 * 64 rows above, each also asked for where the other is the default; one and several row blocks), N from 9 to 130 (inside one
 * 64-column block, and ragged over two or three), K from 40 to 392 (K % 16 = 8: the last k16 tile
 * half zero-filled; several 64-wide K-steps, so the 4-stage pipeline wraps; fewer k16 tiles than
 * warps), groups 32, 64, 128 and per channel, symmetric and zero points, float16 and bfloat16 x,
 * float16 and float32 scales, every output dtype, bias and none, act-order with both x dtypes.
 */
import * as path from 'path';
import { int4CudaBoundK } from '../helpers/quant-reference';
import { DType, checkLinear, decode, linearRef, mulberry32, numberToBf16, numberToF16, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ROOT = path.resolve(__dirname, '..', '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');

type Handle = object;
type InDType = 'float16' | 'bfloat16';
interface Int4Args {
  x: Handle; w: Handle; scratch?: Handle | null; bias?: Handle | null; out: Handle;
  M: number; N: number; K: number; group: number; zeros: boolean; actOrder: boolean; dtype: string; outDtype: string; splits?: number; blockM?: number;
}
interface SimAddon {
  deviceAlloc(a: { device: number; bytes: number }): Handle;
  deviceFree(h: Handle): void;
  copyToDevice(a: { handle: Handle; src: ArrayBufferView }): void;
  copyToHost(a: { handle: Handle; dst: ArrayBufferView }): ArrayBufferView;
  int4DeviceLayout(a: { N: number; K: number; group: number; zeros: boolean; actOrder: boolean }): { bytes: number; Np: number; Kp: number };
  int4ToDeviceLayout(a: { N: number; K: number; group: number; qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null; perm: Int32Array | null; out: Uint8Array }): void;
  int4FromDeviceLayout(a: { N: number; K: number; group: number; actOrder: boolean; blob: Uint8Array; qweight: Uint8Array; scales: Float32Array | Uint16Array; zeros: Uint8Array | null }): void;
  linearInt4(a: Int4Args): void;
  linearInt4Async(a: Int4Args): Promise<void>;
  memory(): { devices: Array<{ device: number; bytes: number }> };
  takeLaunchLog(): Array<{ kernel: string; grid: number[]; block: number[]; smem: number }>;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const sim: SimAddon = require(ADDON);

const GUARD = 70; // poisoned elements after out (more than a block tile's 64 columns)

interface Case {
  M: number; N: number; K: number;
  /** Columns per group; K for per channel. */
  group: number;
  zeros: boolean;
  actOrder: boolean;
  dtype: InDType;
  scales: 'float16' | 'float32';
  outDtype: DType;
  bias: boolean;
  /** Split-K slices asked of linearInt4 (absent: the kernel's automatic choice). */
  splits?: number;
  /** The tile's rows of X asked of linearInt4, 16 or 64 (absent: 16 up to M = 16, else 64). */
  blockM?: number;
}

const CASES: Case[] = [
  { M: 1, N: 130, K: 256, group: 32, zeros: false, actOrder: false, dtype: 'float16', scales: 'float16', outDtype: 'float32', bias: true },
  { M: 5, N: 72, K: 392, group: 392, zeros: true, actOrder: false, dtype: 'bfloat16', scales: 'float16', outDtype: 'bfloat16', bias: false },
  { M: 16, N: 64, K: 192, group: 64, zeros: true, actOrder: false, dtype: 'float16', scales: 'float32', outDtype: 'float16', bias: true },
  { M: 33, N: 100, K: 136, group: 136, zeros: false, actOrder: false, dtype: 'bfloat16', scales: 'float32', outDtype: 'float32', bias: true },
  { M: 5, N: 9, K: 384, group: 128, zeros: true, actOrder: false, dtype: 'float16', scales: 'float16', outDtype: 'float32', bias: false },
  { M: 17, N: 40, K: 40, group: 40, zeros: true, actOrder: false, dtype: 'float16', scales: 'float16', outDtype: 'bfloat16', bias: true },
  { M: 5, N: 70, K: 256, group: 64, zeros: true, actOrder: true, dtype: 'float16', scales: 'float32', outDtype: 'float32', bias: true },
  { M: 16, N: 33, K: 128, group: 32, zeros: false, actOrder: true, dtype: 'bfloat16', scales: 'float16', outDtype: 'float16', bias: false },
  // Split-K: 3 slices of 9 k16 tiles (the last 7), partial tiles and a 64-wide K-step cut by a
  // slice; 8 slices of an act-order weight; 8 asked of 3 k16 tiles (3 slices of 1); and the
  // automatic choice on a narrow N and long K (2 column blocks on 132 SMs: 8 slices of 16 tiles).
  { M: 5, N: 70, K: 392, group: 392, zeros: true, actOrder: false, dtype: 'float16', scales: 'float32', outDtype: 'float32', bias: true, splits: 3 },
  { M: 17, N: 40, K: 256, group: 32, zeros: true, actOrder: true, dtype: 'bfloat16', scales: 'float16', outDtype: 'bfloat16', bias: true, splits: 8 },
  { M: 1, N: 9, K: 40, group: 40, zeros: false, actOrder: false, dtype: 'float16', scales: 'float16', outDtype: 'float16', bias: false, splits: 8 },
  { M: 3, N: 100, K: 2048, group: 128, zeros: true, actOrder: false, dtype: 'bfloat16', scales: 'float16', outDtype: 'float32', bias: true },
  // The tiles: M above 16 runs the wide tile (64 rows, 4 m16 tiles per warp; M = 17 and 33 above
  // leave 3 and 2 of them past M, skipped) unless asked otherwise. M = 70: two row blocks, the
  // second with 6 rows; the decode tile asked for at M = 33 (3 row blocks) and the wide one at
  // M = 5, with split-K and act-order.
  { M: 70, N: 72, K: 136, group: 136, zeros: true, actOrder: false, dtype: 'float16', scales: 'float32', outDtype: 'float16', bias: true },
  { M: 33, N: 100, K: 136, group: 136, zeros: false, actOrder: false, dtype: 'bfloat16', scales: 'float32', outDtype: 'float32', bias: true, blockM: 16 },
  { M: 5, N: 70, K: 256, group: 64, zeros: true, actOrder: true, dtype: 'float16', scales: 'float32', outDtype: 'float32', bias: true, blockM: 64, splits: 2 },
];

function name(c: Case): string {
  const g = c.group === c.K ? 'per-channel' : `group ${c.group}`;
  return `M=${c.M} N=${c.N} K=${c.K} ${g} ${c.zeros ? 'zero points' : 'symmetric'}${c.actOrder ? ' act-order' : ''}, x ${c.dtype}, scales ${c.scales}, out ${c.outDtype}${c.bias ? ', bias' : ''}, ${c.splits ? `splits ${c.splits}` : 'automatic splits'}${c.blockM ? `, blockM ${c.blockM}` : ''}`;
}

const f16 = (v: number) => numberToF16(v);
const encode16 = (v: number, dtype: InDType) => (dtype === 'float16' ? numberToF16(v) : numberToBf16(v));

/** A random weight in the canonical format, with its float64 dequantization by the published rule. */
function randomWeight(rng: () => number, c: Case) {
  const { N, K, group } = c;
  const G = K / group;
  const q = new Uint8Array(N * K);
  for (let i = 0; i < q.length; ++i) q[i] = Math.floor(rng() * 16);
  const qweight = new Uint8Array(N * (K / 2));
  for (let n = 0; n < N; ++n) for (let j = 0; j < K / 2; ++j) qweight[n * (K / 2) + j] = q[n * K + 2 * j] | (q[n * K + 2 * j + 1] << 4);
  const sv = new Float64Array(N * G);
  const scales = c.scales === 'float16' ? new Uint16Array(N * G) : new Float32Array(N * G);
  for (let i = 0; i < N * G; ++i) {
    const v = randNonZero(rng) / 16;
    if (scales instanceof Uint16Array) {
      scales[i] = f16(v);
      sv[i] = decode(scales.subarray(i, i + 1), 'float16')[0];
    } else {
      scales[i] = v;
      sv[i] = scales[i];
    }
  }
  const zeros = c.zeros ? Uint8Array.from({ length: N * G }, () => Math.floor(rng() * 17)) : null;
  // Act-order: each group gets `group` columns, scattered over K at random.
  let gIdx: Int32Array | null = null;
  let perm: Int32Array | null = null;
  if (c.actOrder) {
    const order = Array.from({ length: K }, (_, k) => k);
    for (let i = K - 1; i > 0; --i) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    gIdx = new Int32Array(K);
    order.forEach((k, i) => (gIdx![k] = Math.floor(i / group)));
    // The placement's column order (lib/weights/int4.ts permFromGIdx): by group, then by k.
    perm = Int32Array.from(Array.from({ length: K }, (_, k) => k).sort((a, b) => gIdx![a] - gIdx![b] || a - b));
  }
  const w = new Float64Array(N * K);
  for (let n = 0; n < N; ++n) {
    for (let k = 0; k < K; ++k) {
      const g = gIdx ? gIdx[k] : Math.floor(k / group);
      const z = zeros ? zeros[n * G + g] : 8;
      w[n * K + k] = Math.fround((q[n * K + k] - z) * sv[n * G + g]);
    }
  }
  return { qweight, scales, zeros, perm, w };
}

function upload(src: ArrayBufferView): Handle {
  const h = sim.deviceAlloc({ device: 0, bytes: src.byteLength });
  sim.copyToDevice({ handle: h, src });
  return h;
}

function poisonedOut(outDtype: DType, n: number): Float32Array | Uint16Array {
  if (outDtype === 'float32') {
    const a = new Float32Array(n);
    new Uint32Array(a.buffer).fill(0xffffffff);
    return a;
  }
  return new Uint16Array(n).fill(0xffff);
}

async function runCase(c: Case, mode: 'sync' | 'async'): Promise<void> {
  const seed = seedFor(`gemm-int4 ${name(c)} ${mode}`);
  const rng = mulberry32(seed);
  const { M, N, K, group } = c;
  const wt = randomWeight(rng, c);
  const x = Uint16Array.from({ length: M * K }, () => encode16(randNonZero(rng), c.dtype));
  const xd = decode(x, c.dtype);
  const bias = c.bias ? Float32Array.from({ length: N }, () => randNonZero(rng)) : null;

  const layout = sim.int4DeviceLayout({ N, K, group, zeros: c.zeros, actOrder: c.actOrder });
  const blob = new Uint8Array(layout.bytes);
  sim.int4ToDeviceLayout({ N, K, group, qweight: wt.qweight, scales: wt.scales, zeros: wt.zeros, perm: wt.perm, out: blob });

  // The layout inverts exactly (canonical() and toDense() of a device-only weight rely on it).
  const back = {
    qweight: new Uint8Array(wt.qweight.length),
    scales: new (wt.scales.constructor as { new (n: number): Float32Array | Uint16Array })(wt.scales.length),
    zeros: wt.zeros ? new Uint8Array(wt.zeros.length) : null,
  };
  sim.int4FromDeviceLayout({ N, K, group, actOrder: c.actOrder, blob, ...back });
  expect(Buffer.from(back.qweight.buffer).equals(Buffer.from(wt.qweight.buffer))).toBe(true);
  expect(Buffer.from(back.scales.buffer).equals(Buffer.from(wt.scales.buffer))).toBe(true);
  if (wt.zeros) expect(Buffer.from(back.zeros!.buffer).equals(Buffer.from(wt.zeros.buffer))).toBe(true);

  const outElems = M * N + GUARD;
  const poison = poisonedOut(c.outDtype, outElems);
  const handles: Handle[] = [];
  try {
    const hx = upload(x);
    const hw = upload(blob);
    const hout = upload(poison);
    handles.push(hx, hw, hout);
    const hbias = bias ? upload(bias) : null;
    if (hbias) handles.push(hbias);
    const hscratch = c.actOrder ? upload(new Uint16Array(M * K).fill(0xffff)) : null;
    if (hscratch) handles.push(hscratch);
    const args: Int4Args = { x: hx, w: hw, scratch: hscratch, bias: hbias, out: hout, M, N, K, group, zeros: c.zeros, actOrder: c.actOrder, dtype: c.dtype, outDtype: c.outDtype, ...(c.splits ? { splits: c.splits } : {}), ...(c.blockM ? { blockM: c.blockM } : {}) };
    if (mode === 'sync') sim.linearInt4(args);
    else await sim.linearInt4Async(args);
    const got = poisonedOut(c.outDtype, outElems);
    sim.copyToHost({ handle: hout, dst: got });

    // The guard keeps its poison.
    const bits = got instanceof Float32Array ? new Uint32Array(got.buffer) : got;
    const poisonBits = got instanceof Float32Array ? 0xffffffff : 0xffff;
    const damaged: number[] = [];
    for (let i = M * N; i < outElems; ++i) if (bits[i] !== poisonBits) damaged.push(i - M * N);
    expect(`guard elements written: ${damaged.join(', ')}`).toBe('guard elements written: ');

    // The float64 reference and S.
    const { ref, absSum } = linearRef(xd, wt.w, bias ? Float64Array.from(bias) : null, M, N, K);
    // Split-K's workspace is the device's, kept for reuse: the same call again allocates nothing
    // and gives the same bits (the slices are added in a fixed order).
    const mem1 = sim.memory().devices.find((d) => d.device === 0)?.bytes ?? 0;
    sim.linearInt4(args);
    const again = poisonedOut(c.outDtype, outElems);
    sim.copyToHost({ handle: hout, dst: again });
    expect(sim.memory().devices.find((d) => d.device === 0)?.bytes ?? 0).toBe(mem1);
    expect(Buffer.from(again.buffer).equals(Buffer.from(got.buffer))).toBe(true);
    const keff = c.splits ? int4CudaBoundK(K, Math.min(c.splits, Math.ceil(K / 16))) : int4CudaBoundK(K); // D + 1 (the header)
    const y = got.subarray(0, M * N) as Float32Array | Uint16Array;
    const msg = checkLinear(y, c.outDtype, ref, absSum, M, N, keff, `${name(c)} (${mode}); ${seedNote(seed)}`, 1);
    expect(msg).toBeNull();
  } finally {
    for (const h of handles) sim.deviceFree(h);
  }
}

describe('INT4 GEMM on the simulated device: against the float64 reference, within the derived bound', () => {
  test.each(CASES.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    await runCase(c, 'sync');
  });
  test('linearInt4Async gives the same bound (act-order, zero points)', async () => {
    await runCase(CASES[6], 'async');
  });
});

describe('INT4 GEMM: refused configurations and bad arguments are typed errors, nothing launched', () => {
  const base = () => {
    const N = 16, K = 64, M = 2;
    const layout = sim.int4DeviceLayout({ N, K, group: 32, zeros: false, actOrder: false });
    const x = sim.deviceAlloc({ device: 0, bytes: M * K * 2 });
    const w = sim.deviceAlloc({ device: 0, bytes: layout.bytes });
    const out = sim.deviceAlloc({ device: 0, bytes: M * N * 4 });
    return { x, w, out, M, N, K, group: 32, zeros: false, actOrder: false, dtype: 'float16', outDtype: 'float32', handles: [x, w, out] };
  };
  const attempt = (f: () => void) => {
    try {
      f();
      return null;
    } catch (e) {
      return { name: (e as Error).name, code: (e as { code?: string }).code, message: (e as Error).message };
    }
  };
  test('the automatic tile (launch log): the 16-row tile up to M = 16 and the 64-row one above, each what blockM names; 17 rows are two 16-row tiles or one 64-row tile', () => {
    const N = 16, K = 64, Mmax = 40;
    const layout = sim.int4DeviceLayout({ N, K, group: 32, zeros: false, actOrder: false });
    const x = sim.deviceAlloc({ device: 0, bytes: Mmax * K * 2 }), w = sim.deviceAlloc({ device: 0, bytes: layout.bytes });
    const out = sim.deviceAlloc({ device: 0, bytes: Mmax * N * 4 });
    try {
      sim.copyToDevice({ handle: x, src: new Uint16Array(Mmax * K).fill(0x3c00) });
      sim.copyToDevice({ handle: w, src: new Uint8Array(layout.bytes) });
      const launchOf = (M: number, blockM?: number) => {
        sim.takeLaunchLog();
        sim.linearInt4({ x, w, out, M, N, K, group: 32, zeros: false, actOrder: false, dtype: 'float16', outDtype: 'float32', splits: 1, ...(blockM ? { blockM } : {}) });
        const l = sim.takeLaunchLog();
        expect(l).toHaveLength(1); // splits 1: no reduction kernel
        return { threads: l[0].block[0], smem: l[0].smem, rowTiles: l[0].grid[1] };
      };
      const small = launchOf(16, 16), wide = launchOf(40, 64);
      expect(small).not.toEqual({ ...wide, rowTiles: small.rowTiles }); // two different configurations
      for (const M of [1, 16]) expect(launchOf(M)).toEqual({ ...small, rowTiles: 1 });
      for (const M of [17, 40]) expect(launchOf(M)).toEqual({ ...wide, rowTiles: 1 });
      expect(launchOf(17, 16)).toEqual({ ...small, rowTiles: 2 });
      expect(launchOf(3, 64)).toEqual({ ...wide, rowTiles: 1 });
    } finally {
      for (const h of [x, w, out]) sim.deviceFree(h);
    }
  });

  test('group not a multiple of 16 (with several groups), float32 x, a short weight, act-order without scratch, a freed handle', () => {
    const b = base();
    try {
      const { handles, ...args } = b;
      // group 8 divides K = 64 but a k16 tile would straddle two groups.
      const w8 = sim.deviceAlloc({ device: 0, bytes: sim.int4DeviceLayout({ N: 16, K: 64, group: 8, zeros: false, actOrder: false }).bytes });
      handles.push(w8);
      expect(attempt(() => sim.linearInt4({ ...args, w: w8, group: 8 }))).toMatchObject({ name: 'RangeError', code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/multiple of 16/) });
      expect(attempt(() => sim.linearInt4({ ...args, dtype: 'float32' }))).toMatchObject({ name: 'RangeError', code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/float16 or bfloat16/) });
      expect(attempt(() => sim.linearInt4({ ...args, zeros: true, N: 200 }))).toMatchObject({ name: 'RangeError', code: 'ERR_NATIVE', message: expect.stringMatching(/w holds/) });
      expect(attempt(() => sim.linearInt4({ ...args, actOrder: true }))).toMatchObject({ name: 'TypeError', code: 'ERR_NATIVE', message: expect.stringMatching(/scratch/) });
      expect(attempt(() => sim.linearInt4({ ...args, K: 60, group: 60 }))).toMatchObject({ name: 'RangeError', code: 'ERR_NATIVE', message: expect.stringMatching(/multiple of 8/) });
      expect(attempt(() => sim.linearInt4({ ...args, out: args.x }))).toMatchObject({ name: 'RangeError', code: 'ERR_OVERLAP' });
      for (const splits of [0, 9, 1.5]) expect(attempt(() => sim.linearInt4({ ...args, splits }))).toMatchObject({ name: 'RangeError', code: 'ERR_NATIVE', message: expect.stringMatching(/splits/) });
      for (const blockM of [0, 8, 32, 256, 16.5]) expect(attempt(() => sim.linearInt4({ ...args, blockM }))).toMatchObject({ name: 'RangeError', code: 'ERR_NATIVE', message: expect.stringMatching(/blockM/) });
      // 128 rows is the dense kernel's wide tile only.
      expect(attempt(() => sim.linearInt4({ ...args, blockM: 128 }))).toMatchObject({ name: 'RangeError', code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/blockM/) });
      sim.deviceFree(args.out);
      expect(attempt(() => sim.linearInt4(args))).toMatchObject({ name: 'TypeError', code: 'ERR_DISPOSED' });
      expect(attempt(() => sim.int4ToDeviceLayout({ N: 2, K: 16, group: 16, qweight: new Uint8Array(16), scales: new Uint16Array(2), zeros: null, perm: Int32Array.from({ length: 16 }, (_, k) => (k === 3 ? 16 : k)), out: new Uint8Array(sim.int4DeviceLayout({ N: 2, K: 16, group: 16, zeros: false, actOrder: true }).bytes) })))
        .toMatchObject({ name: 'RangeError', code: 'ERR_NATIVE', message: expect.stringMatching(/perm\[3\]/) });
    } finally {
      for (const h of b.handles) sim.deviceFree(h);
    }
  });
});
