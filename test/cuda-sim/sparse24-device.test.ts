/**
 * 2:4 weights on the CUDA backend (native/cuda/gemm_sparse24.cuh: mma.sp::ordered_metadata
 * m16n8k32 on the simulated device, through the public API in a child process with
 * COMPRESSED_GEMM_BACKEND=cuda-sim), and the device layout's metadata gather
 * (lib/backends/cuda-sparse24.ts) on its own.
 *
 * Inputs: seeded random values in [1/8, 2) of either sign, encoded as float16/bfloat16; the weight
 * pruned by the library (prune) or handed over already 2:4 (compress, with groups holding fewer
 * than two non-zeros, whose canonical metadata pads positions), and the test's own pruning
 * (pruneColumns: the two largest magnitudes, the lower column on ties) checked against it bit
 * for bit first. The float64 reference multiplies the exact decoded x by the exact pruned W.
 *
 * THE ERROR BOUND (as gemm-dense.test.ts, c = 1): products of two 16-bit values are exact in
 * float32 and the mma.sp accumulates in float32, so |y - ref| <= (K + 1) 2^-24 sum_k |x_k w_k| (+
 * |bias|), plus half an ulp of a 16-bit output. The simulator refuses any metadata nibble outside
 * the ordered set and never reads the lanes the selector does not name: the kernel passes 0 (an
 * invalid nibble) in those, so a read of them would fail every case here.
 */
import * as path from 'path';
import { ROOT, describeChild, runChild } from '../helpers/child';
import { DType, checkLinear, decode, encode, keepColumnsBits, linearRef, mulberry32, poisoned, pruneColumns, randNonZero, seedFor, seedNote } from '../helpers/reference';
import { metaFromDevice, metaToDevice } from '../../lib/backends/cuda-sparse24';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim' };

function child(body: string): Record<string, unknown> {
  const r = runChild(body, ENV, { timeoutMs: 110_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}

type D16 = 'float16' | 'bfloat16';

interface Case {
  M: number;
  N: number;
  K: number;
  dtype: D16;
  outDtype: DType;
  bias: boolean;
  how: 'prune' | 'compress';
  tensor: boolean;
}

// Ragged against the 64 x 64 block and the 64-wide K-step (and the 16 x 32 mma.sp tile): K = 12
// (padded to 64), 40, 136 (3 K-steps, the last mostly padding), N below, at and across 64. M up to
// 16 runs the decode tile (16 rows of X), above it the 64-row tile.
const CASES: Case[] = [
  { M: 1, N: 8, K: 40, dtype: 'float16', outDtype: 'float32', bias: false, how: 'prune', tensor: false },
  { M: 5, N: 33, K: 12, dtype: 'bfloat16', outDtype: 'float32', bias: true, how: 'compress', tensor: false },
  { M: 17, N: 70, K: 136, dtype: 'float16', outDtype: 'float16', bias: true, how: 'prune', tensor: true },
  { M: 70, N: 130, K: 72, dtype: 'bfloat16', outDtype: 'bfloat16', bias: false, how: 'prune', tensor: true },
  { M: 3, N: 64, K: 64, dtype: 'bfloat16', outDtype: 'float32', bias: true, how: 'compress', tensor: true },
  { M: 65, N: 17, K: 20, dtype: 'float16', outDtype: 'float32', bias: false, how: 'compress', tensor: false },
  // M = 9: the decode tile's second n8 tile holds one row (M <= 8 skips it).
  { M: 9, N: 40, K: 48, dtype: 'float16', outDtype: 'float32', bias: true, how: 'prune', tensor: false },
  // K = 1024 in one (N, M) tile: the kernel splits K automatically (split_k.cuh), then adds the bias.
  { M: 2, N: 8, K: 1024, dtype: 'float16', outDtype: 'float16', bias: true, how: 'prune', tensor: true },
];

function makeCase(c: Case) {
  const label = `2:4 ${c.M}x${c.N}x${c.K} ${c.dtype} ${c.how} ${c.tensor ? 'tensor' : 'host'}`;
  const seed = seedFor(label);
  const rng = mulberry32(seed);
  const x = encode(Float32Array.from({ length: c.M * c.K }, () => randNonZero(rng)), c.dtype) as Uint16Array;
  const wAll = encode(Float32Array.from({ length: c.N * c.K }, () => randNonZero(rng)), c.dtype) as Uint16Array;
  const cols = pruneColumns(decode(wAll, c.dtype), c.N, c.K);
  let pruned = keepColumnsBits(wAll, cols, c.N, c.K) as Uint16Array;
  if (c.how === 'compress') {
    // Some groups keep one value or none: their metadata names padded positions holding zeros.
    pruned = Uint16Array.from(pruned);
    for (let i = 0; i < pruned.length; i += 4) if (rng() < 0.3) pruned[i + Math.floor(rng() * 4)] = 0;
  }
  const bias = c.bias ? Float32Array.from({ length: c.N }, () => randNonZero(rng)) : null;
  return { label, seed, x, wAll, pruned, bias };
}

describe('2:4 weights on the simulated device through the public API: within the float32-accumulation bound', () => {
  test.each(CASES)('M=$M N=$N K=$K $dtype -> $outDtype, $how, tensor $tensor, bias $bias', (c) => {
    const k = makeCase(c);
    const wSource = c.how === 'prune' ? k.wAll : k.pruned;
    const v = child(`
const c = ${JSON.stringify(c)};
const x = Uint16Array.from(${JSON.stringify(Array.from(k.x))});
const w = Uint16Array.from(${JSON.stringify(Array.from(wSource))});
const bias = ${k.bias ? `Float32Array.from(${JSON.stringify(Array.from(k.bias))})` : 'undefined'};
const sw = c.how === 'prune' ? cg.Sparse24Weight.prune(w, [c.N, c.K], { dtype: c.dtype }) : cg.Sparse24Weight.compress(w, [c.N, c.K], { dtype: c.dtype });
const route = cg.backend().routes.find((r) => r.op === 'linear' && r.format === '2:4' && r.activations === 'native' && (r.dtypes || []).includes(c.dtype));
const canonHost = sw.canonical();
const dense = Array.from(sw.toDense());
const poison = c.outDtype === 'float32' ? new Float32Array(c.M * c.N).fill(NaN) : new Uint16Array(c.M * c.N).fill(0x7fff);
let ySync, yAsync;
if (c.tensor) {
  const t = cg.Tensor.fromHost(x, [c.M, c.K], { dtype: c.dtype });
  ySync = Array.from(cg.linear(t, [c.M, c.K], sw, { bias, outDtype: c.outDtype }).toHostSync());
  yAsync = Array.from(await (await cg.linearAsync(t, [c.M, c.K], sw, { bias, outDtype: c.outDtype })).toHost());
} else {
  ySync = Array.from(cg.linear(x, [c.M, c.K], sw, { dtype: c.dtype, bias, outDtype: c.outDtype, out: poison }));
  yAsync = Array.from(await cg.linearAsync(x, [c.M, c.K], sw, { dtype: c.dtype, bias, outDtype: c.outDtype }));
}
sw.toDevice(); // device-only: canonical() and toDense() read back through the device layout
const canonDevice = sw.canonical();
out({ route, dense, ySync, yAsync, device: sw.device,
  sameValues: Array.from(canonDevice.values).every((v, i) => v === canonHost.values[i]) && canonDevice.values.length === canonHost.values.length,
  sameMeta: Array.from(canonDevice.meta).every((v, i) => v === canonHost.meta[i]) && canonDevice.meta.length === canonHost.meta.length,
  denseAgain: Array.from(sw.toDense()).every((v, i) => v === dense[i]) });
`);
    expect((v.route as { runsOn: string }).runsOn).toBe('cuda');
    // The library's pruning is the test's (bit for bit), so the reference multiplies what the kernel holds.
    expect(v.dense).toEqual(Array.from(k.pruned));
    expect({ sameValues: v.sameValues, sameMeta: v.sameMeta, denseAgain: v.denseAgain, device: v.device }).toEqual({ sameValues: true, sameMeta: true, denseAgain: true, device: 0 });
    const { ref, absSum } = linearRef(decode(k.x, c.dtype), decode(k.pruned, c.dtype), k.bias ? Float64Array.from(k.bias) : null, c.M, c.N, c.K);
    for (const [mode, y] of [['sync', v.ySync], ['async', v.yAsync]] as const) {
      const arr = c.outDtype === 'float32' ? Float32Array.from(y as number[]) : Uint16Array.from(y as number[]);
      const msg = checkLinear(arr, c.outDtype, ref, absSum, c.M, c.N, c.K, `${k.label} ${mode}, ${seedNote(k.seed)}`, 1);
      if (msg) throw new Error(msg);
    }
  });
});

test('errors: float32 2:4 stays on the CPU kernels (routes say so) and refuses device tensors; a device tensor K off the 16-byte rule is ERR_K_ALIGNMENT', () => {
  const v = child(`
const err = (f) => { try { f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
const w32 = cg.Sparse24Weight.prune(new Float32Array(8 * 16).fill(1), [8, 16]);
const route32 = cg.backend().routes.find((r) => r.op === 'linear' && r.format === '2:4' && r.activations === 'native' && (r.dtypes || []).includes('float32'));
const y32 = Array.from(cg.linear(new Float32Array(2 * 16).fill(1), [2, 16], w32));
const w12 = cg.Sparse24Weight.prune(new Float32Array(8 * 12).fill(1), [8, 12], { dtype: 'float16' });
const x12 = cg.DenseWeight.from(new Float32Array(2 * 12).fill(1), [2, 12], { dtype: 'float16' }).toDense();
out({
  route32, y32,
  f32Tensor: err(() => cg.linear(cg.Tensor.fromHost(new Float32Array(2 * 16).fill(1), [2, 16]), [2, 16], w32)),
  f32ToDevice: err(() => w32.toDevice()),
  k12Tensor: err(() => cg.linear(cg.Tensor.fromHost(x12, [2, 12], { dtype: 'float16' }), [2, 12], w12)),
  k12Host: Array.from(cg.linear(x12, [2, 12], w12, { dtype: 'float16', outDtype: 'float32' })),
  dtypeMismatch: err(() => cg.linear(cg.Tensor.fromHost(new Float32Array(2 * 16).fill(1), [2, 16]), [2, 16], cg.Sparse24Weight.prune(new Float32Array(8 * 16).fill(1), [8, 16], { dtype: 'bfloat16' }))),
});
`);
  expect((v.route32 as { runsOn: string; note: string }).runsOn).toBe('cpu');
  expect(v.y32).toEqual(new Array(16).fill(8)); // each row keeps 2 of every 4 ones: 8 of 16
  expect(v.f32Tensor).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });
  expect(v.f32ToDevice).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });
  expect(v.k12Tensor).toMatchObject({ name: 'RangeError', code: 'ERR_K_ALIGNMENT' });
  expect(v.k12Host).toEqual(new Array(16).fill(6)); // host arrays are padded: 6 kept ones of 12
  expect(v.dtypeMismatch).toMatchObject({ name: 'TypeError', code: 'ERR_DTYPE' });
});

describe('the device metadata layout (lib/backends/cuda-sparse24.ts)', () => {
  test('every canonical nibble lands in the lane word and position mma.sp selector 0 reads it from, and comes back', () => {
    const seed = seedFor('sparse24 meta layout');
    const rng = mulberry32(seed);
    const ORDERED = [0x4, 0x8, 0x9, 0xc, 0xd, 0xe];
    for (const [N, K] of [[1, 4], [17, 12], [16, 32], [40, 100], [64, 64], [70, 136]]) {
      const mrow = Math.ceil(K / 8), groups = K / 4;
      const meta = new Uint8Array(N * mrow);
      const nib = (n: number, g: number) => (meta[n * mrow + (g >> 1)] >> ((g & 1) * 4)) & 0xf;
      for (let n = 0; n < N; n++) for (let g = 0; g < groups; g++) meta[n * mrow + (g >> 1)] |= ORDERED[Math.floor(rng() * 6)] << ((g & 1) * 4);
      const np = Math.ceil(N / 64) * 64, kp = Math.ceil(K / 64) * 64;
      const words = metaToDevice(meta, N, K, np, kp);
      expect(words.length).toBe((np / 16) * (kp / 32) * 16);
      // PTX.md: lane 4g + p (selector 0) holds in nibble j of bits [15:0] row g's group 4p + j of
      // the tile's 8, in bits [31:16] row g + 8's; the word of (band b, k32 tile kt) is at
      // ((b * kp/32) + kt) * 16 + 2g + p. Padding: 0x4.
      for (let n = 0; n < np; n++) {
        for (let g = 0; g < kp / 4; g++) {
          const b = n >> 4, r = n & 15, kt = g >> 3, p = (g >> 2) & 1, j = g & 3;
          const word = words[(b * (kp / 32) + kt) * 16 + 2 * (r & 7) + p];
          const got = (word >>> (16 * (r >> 3) + 4 * j)) & 0xf;
          const want = n < N && g < groups ? nib(n, g) : 0x4;
          if (got !== want) throw new Error(`N=${N} K=${K}: row ${n} group ${g}: nibble ${got}, want ${want}; ${seedNote(seed)}`);
        }
      }
      const back = new Uint8Array(N * mrow).fill(0xff);
      metaFromDevice(words, N, K, kp, back);
      expect(Array.from(back)).toEqual(Array.from(meta));
    }
  });

});

/**
 * Split-K (native/cuda/split_k.cuh) on the 2:4 kernel, through the binding on the simulated device
 * in this process: block z multiplies its slice of K's 64-column steps into a float32 partial
 * buffer, and a second kernel adds the slices in order, the bias, and rounds once. The weight's
 * device layout is built here from the test's own pruning (values in increasing column order,
 * the canonical nibbles idx0 | idx1 << 2 gathered by metaToDevice). The bound is the one above:
 * each slice sums at most its steps' products in float32 and the slices are then added, so the
 * rounding errors still number at most K + 1 (c = 1); the output is poisoned first.
 */
describe('split-K and the two tiles of the 2:4 kernel (the binding, explicit and automatic choices)', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sim = require(path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node'));
  const SPLIT_CASES = [
    // kp = 1088: 17 K-steps; one (N, M) tile, so the automatic choice splits (4 slices of 5, 5, 5, 2).
    { M: 3, N: 40, K: 1032, dtype: 'float16' as D16, outDtype: 'float32' as DType, bias: true },
    // kp = 576: 9 K-steps; 2 x 2 tiles, ragged in M and N.
    { M: 70, N: 70, K: 520, dtype: 'bfloat16' as D16, outDtype: 'bfloat16' as DType, bias: false },
  ];
  test.each(SPLIT_CASES)('M=$M N=$N K=$K $dtype -> $outDtype: splits 1, 2, 3, 8 and automatic, blockM 16 and 64, sync and async, within the bound', async (c) => {
    const label = `2:4 split-K ${c.M}x${c.N}x${c.K}`;
    const seed = seedFor(label);
    const rng = mulberry32(seed);
    const { M, N, K } = c;
    const x = encode(Float32Array.from({ length: M * K }, () => randNonZero(rng)), c.dtype) as Uint16Array;
    const wAll = encode(Float32Array.from({ length: N * K }, () => randNonZero(rng)), c.dtype) as Uint16Array;
    const cols = pruneColumns(decode(wAll, c.dtype), N, K);
    const pruned = keepColumnsBits(wAll, cols, N, K) as Uint16Array;
    const bias = c.bias ? Float32Array.from({ length: N }, () => randNonZero(rng)) : null;
    // Device layout: values [np, kp/2] (zero rows and columns past N and K/2), meta words.
    const np = Math.ceil(N / 64) * 64, kp = Math.ceil(K / 64) * 64, G = K / 4;
    const rows = new Uint16Array(np * (kp / 2));
    const meta = new Uint8Array(N * Math.ceil(K / 8));
    for (let n = 0; n < N; ++n) {
      for (let g = 0; g < G; ++g) {
        const a = cols[(n * G + g) * 2], b = cols[(n * G + g) * 2 + 1];
        rows[n * (kp / 2) + 2 * g] = wAll[n * K + 4 * g + a];
        rows[n * (kp / 2) + 2 * g + 1] = wAll[n * K + 4 * g + b];
        meta[n * Math.ceil(K / 8) + (g >> 1)] |= (a | (b << 2)) << ((g & 1) * 4);
      }
    }
    const words = metaToDevice(meta, N, K, np, kp);
    const up = (src: ArrayBufferView) => {
      const h = sim.deviceAlloc({ bytes: src.byteLength });
      sim.copyToDevice({ handle: h, src });
      return h;
    };
    const held = (): number => sim.memory().devices.find((d: { device: number }) => d.device === 0)?.bytes ?? 0;
    const before = held();
    const hx = up(x), hv = up(rows), hm = up(words), hb = bias ? up(bias) : null;
    const outBytes = M * N * (c.outDtype === 'float32' ? 4 : 2);
    const hout = sim.deviceAlloc({ bytes: outBytes });
    const base = { x: hx, values: hv, meta: hm, bias: hb, out: hout, M, N, K, np, kp, dtype: c.dtype, outDtype: c.outDtype };
    const { ref, absSum } = linearRef(decode(x, c.dtype), decode(pruned, c.dtype), bias ? Float64Array.from(bias) : null, M, N, K);
    const run = async (splits: number | undefined, async: boolean, blockM?: number) => {
      sim.copyToDevice({ handle: hout, src: poisoned(c.outDtype, M * N) });
      const args = { ...base, ...(splits === undefined ? {} : { splits }), ...(blockM === undefined ? {} : { blockM }) };
      if (async) await sim.linearSparse24Async(args);
      else sim.linearSparse24(args);
      const y = sim.copyToHost({ handle: hout, dst: poisoned(c.outDtype, M * N) });
      const msg = checkLinear(y, c.outDtype, ref, absSum, M, N, K, `${label} splits ${splits ?? 'auto'} blockM ${blockM ?? 'auto'}${async ? ' async' : ''}, ${seedNote(seed)}`, 1);
      if (msg) throw new Error(msg);
      return Array.from(y as ArrayLike<number>);
    };
    try {
      const one = await run(1, false);
      const results = [];
      for (const splits of [undefined, 2, 3, 8]) results.push(await run(splits, false));
      results.push(await run(3, true));
      // Both tiles on both shapes: the decode tile (16 rows of X; 5 row tiles at M = 70) and the
      // general one (64 rows; M = 3 in one tile), with and without split-K.
      for (const blockM of [16, 64]) {
        results.push(await run(undefined, false, blockM));
        results.push(await run(2, false, blockM));
        results.push(await run(3, true, blockM));
      }
      // The automatic tile is the one blockM names for this M (decode up to M = 16, general above),
      // and the two are different configurations (the simulator's launch log).
      const launchOf = (blockM?: number) => {
        sim.takeLaunchLog();
        sim.linearSparse24({ ...base, splits: 1, ...(blockM === undefined ? {} : { blockM }) });
        const l = sim.takeLaunchLog();
        expect(l).toHaveLength(1);
        return { threads: l[0].block[0], smem: l[0].smem, rowTiles: l[0].grid[1] };
      };
      const chosen = launchOf(), decode = launchOf(16), general = launchOf(64);
      expect(chosen).toEqual(M <= 16 ? decode : general);
      expect(decode.smem).not.toBe(general.smem);
      expect([decode.rowTiles, general.rowTiles]).toEqual([Math.ceil(M / 16), Math.ceil(M / 64)]);
      // Not vacuous: with a float32 Y, some split changes the summation order somewhere (bits
      // differ from one slice's); a 16-bit Y's rounding may hide it.
      if (c.outDtype === 'float32') expect(results.some((r) => r.some((v, i) => v !== one[i]))).toBe(true);
      const code = (f: () => unknown) => {
        try {
          f();
          return 'none';
        } catch (e) {
          return `${(e as Error).name} ${(e as { code?: string }).code}`;
        }
      };
      for (const splits of [0, 9, 1.5]) expect(code(() => sim.linearSparse24({ ...base, splits }))).toBe('RangeError ERR_NATIVE');
      for (const blockM of [0, 8, 32, 256, 16.5]) expect(code(() => sim.linearSparse24({ ...base, blockM }))).toBe('RangeError ERR_NATIVE');
      expect(code(() => sim.linearSparse24({ ...base, blockM: 128 }))).toBe('RangeError ERR_NOT_SUPPORTED'); // the dense kernel's wide tile only
    } finally {
      for (const h of [hx, hv, hm, hb, hout]) if (h) sim.deviceFree(h);
    }
    expect(held()).toBe(before); // every call's partial buffer was given back
  });
});
