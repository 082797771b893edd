/**
 * LoRA on the CUDA backend (lib/backends/cuda-lora.ts, native/cuda/lora_epilogue.h), on the
 * simulated device: the fused term alpha (X Aᵀ) Bᵀ in the dense and 2:4 kernels' epilogues, for
 * the shapes other libraries refuse ("unsupported hidden size"): rank 1 and rank 256, N and K
 * off every tile (K = 29 for a dense weight), one adapter and one per row with -1 rows, sync and
 * async; and the binding's checks of the row table (test-only direct calls).
 *
 * Reference and bound: test/helpers/lowrank-reference.ts (loraLinearRef, checkLoraLinear: float32
 * accumulation of the main product over K and of t over K, then of t·b over r, each within its
 * gamma bound; the main product takes x in the weight's dtype on this backend, the LoRA branch
 * x as given). The suites test/ops/lora.test.ts and multi-lora.test.ts run on this backend too
 * (`npm test`'s second jest run).
 */
import * as path from 'path';
import { describeChild, runChild } from '../helpers/child';
import { codeOf } from '../helpers/expect-error';
import { Adapter64, checkLoraLinear, loraLinearRef, shrinkViolations } from '../helpers/lowrank-reference';
import { decode, encode, mulberry32, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim' };
const ADDON = path.resolve(__dirname, '..', '..', 'build', 'Release', 'compressed_gemm_cuda_sim.node');

function child(body: string, env: Record<string, string> = {}): Record<string, unknown> {
  const r = runChild(body, { ...ENV, ...env }, { timeoutMs: 110_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}

test.each([
  { format: 'dense', dtype: 'float16', N: 37, K: 29, M: 5, ranks: [1], rows: null },
  { format: 'dense', dtype: 'bfloat16', N: 70, K: 48, M: 9, ranks: [256], rows: null },
  { format: '2:4', dtype: 'float16', N: 33, K: 72, M: 6, ranks: [3, 16, 1], rows: [2, -1, 0, 1, 1, -1] },
  // K = 1024 in one (N, M) tile: the kernels split K (split_k.cuh) and the LoRA term is added by the reduce kernel.
  { format: '2:4', dtype: 'bfloat16', N: 24, K: 1024, M: 3, ranks: [4, 2], rows: [1, -1, 0] },
  { format: 'dense', dtype: 'float16', N: 24, K: 1024, M: 3, ranks: [3], rows: null },
  { format: 'dense', dtype: 'float32', N: 20, K: 12, M: 4, ranks: [5, 2], rows: [1, 0, -1, 1] },
] as const)('$format $dtype N=$N K=$K M=$M ranks $ranks rows $rows: within the bound, sync and async', (c) => {
  const label = `lora device ${c.format} ${c.dtype} ${c.N}x${c.K} ${c.ranks.join(',')}`;
  const seed = seedFor(label);
  // The inputs are made in the child (rank 256 factors are too large for its command line) by
  // the same generator (mulberry32, test/helpers/reference.ts), and sent back for the reference.
  const v = child(`
const c = ${JSON.stringify(c)};
${mulberry32.toString()}
const rng = mulberry32(${seed});
const rand = (n) => Float32Array.from({ length: n }, () => (rng() < 0.5 ? -1 : 1) * (0.125 + rng() * 1.875) * 0.5);
const x = rand(c.M * c.K), wv = rand(c.N * c.K);
const factors = c.ranks.map((r) => ({ A: rand(r * c.K), B: rand(c.N * r), alpha: 0.5 + rng() }));
const w = c.format === 'dense' ? cg.DenseWeight.from(wv, [c.N, c.K], { dtype: c.dtype }) : cg.Sparse24Weight.prune(wv, [c.N, c.K], { dtype: c.dtype });
const route = cg.backend().routes.find((r) => r.op === 'linear+lora' && r.format === c.format && r.activations === 'native' && (r.dtypes || []).includes(c.dtype));
const wDense = Array.from(w.toDense());
let ySync, yAsync;
if (c.rows) {
  const adapters = factors.map((f) => new cg.LoraAdapter(f, [c.N, c.K]));
  ySync = Array.from(cg.linearMultiLora(x, [c.M, c.K], w, adapters, c.rows, { out: new Float32Array(c.M * c.N).fill(NaN) }));
  yAsync = Array.from(await cg.linearMultiLoraAsync(x, [c.M, c.K], w, adapters, c.rows));
} else {
  ySync = Array.from(cg.linear(x, [c.M, c.K], w, { lora: factors[0], out: new Float32Array(c.M * c.N).fill(NaN) }));
  yAsync = Array.from(await cg.linearAsync(x, [c.M, c.K], w, { lora: new cg.LoraAdapter(factors[0], [c.N, c.K]) }));
}
out({ route, wDense, ySync, yAsync, x: Array.from(x), factors: factors.map((f) => ({ A: Array.from(f.A), B: Array.from(f.B), alpha: f.alpha })) });
`);
  const x = Float32Array.from(v.x as number[]);
  const factors = (v.factors as Array<{ A: number[]; B: number[]; alpha: number }>).map((f) => ({ A: Float32Array.from(f.A), B: Float32Array.from(f.B), alpha: f.alpha }));
  expect((v.route as { runsOn: string }).runsOn).toBe('cuda');
  const wd = c.dtype === 'float32' ? Float64Array.from(v.wDense as number[]) : decode(Uint16Array.from(v.wDense as number[]), c.dtype);
  const x64 = Float64Array.from(x);
  const xMain = c.dtype === 'float32' ? x64 : decode(encode(x64, c.dtype), c.dtype); // the kernel's x (README)
  const adapters: Adapter64[] = factors.map((f, i) => ({ A64: Float64Array.from(f.A), B64: Float64Array.from(f.B), r: c.ranks[i], alpha: f.alpha }));
  const ref = loraLinearRef(xMain, x64, c.M, c.N, c.K, wd, wd.map(Math.abs), null, adapters, c.rows);
  for (const [mode, y] of [['sync', v.ySync], ['async', v.yAsync]] as const) {
    const msg = checkLoraLinear(Float32Array.from(y as number[]), 'float32', ref, c.M, c.N, c.K, 1, `${label} ${mode}; ${seedNote(seed)}`);
    if (msg) throw new Error(msg);
  }
});

test("the binding checks the LoRA row table before anything runs (ERR_NATIVE), and a good one gives alpha · t·Bt", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sim = require(ADDON);
  const M = 2, N = 8, K = 8, rsum = 2;
  const h = (src: ArrayBufferView) => {
    const a = sim.deviceAlloc({ bytes: src.byteLength });
    sim.copyToDevice({ handle: a, src });
    return a;
  };
  const x = h(new Uint16Array(M * K)); // zeros: y is the LoRA term alone
  const w = h(new Uint16Array(N * K));
  const out = sim.deviceAlloc({ bytes: M * N * 4 });
  const tld = 2;
  const t = h(Float32Array.from([1, 2, 3, 4])); // T [M, tld]: row m's own x·Aᵀ from column 0
  const bt = h(Float32Array.from({ length: rsum * N }, (_, i) => i)); // Bt [rsum, N]
  const rows = sim.deviceAlloc({ bytes: 12 * M });
  const table = (offs: number[], rs: number[], alphas: number[]) => {
    const tb = new Int32Array(3 * M);
    tb.set(offs, 0);
    tb.set(rs, M);
    new Float32Array(tb.buffer, 8 * M, M).set(alphas);
    return tb;
  };
  const args = (lora: object) => ({ x, w, bias: null, out, M, N, K, dtype: 'float16', outDtype: 'float32', lora });
  const code = codeOf;
  try {
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, tld, table: table([1, 0], [2, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE'); // off + r > rsum
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, tld, table: table([-1, 0], [1, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE');
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, tld: 1, table: table([0, 0], [2, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE'); // r > tld
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, tld, table: new Float32Array(3 * M) })))).toBe('TypeError ERR_NATIVE');
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, tld: 3, table: table([0, 0], [1, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE'); // t too small
    // Row 0: adapter rows 0..1, alpha 2; row 1: row 1 only, alpha 0.5 (its t is T[1][0] = 3).
    sim.linearDense(args({ t, bt, rows, rsum, tld, table: table([0, 1], [2, 1], [2, 0.5]) }));
    const y = sim.copyToHost({ handle: out, dst: new Float32Array(M * N) }) as Float32Array;
    const want: number[] = [];
    for (let n = 0; n < N; n++) want.push(2 * (1 * n + 2 * (N + n)));
    for (let n = 0; n < N; n++) want.push(0.5 * (3 * (N + n)));
    expect(Array.from(y)).toEqual(want);
  } finally {
    for (const a of [x, w, out, t, bt, rows]) sim.deviceFree(a);
  }
});

/**
 * The shrink kernel alone (native/cuda/lora_shrink.cuh through the binding's loraShrink): T
 * poisoned with NaN first; every (m, j < r) of a tiled row equals the float64 x[m]·A[off + j]
 * within float32 accumulation over K (|err| <= (K + 1) 2^-24 Σ|x A|: a product passes through at
 * most K + 1 roundings, lora_shrink.cuh's count, c = 1), and nothing else of T is written (rows in
 * no tile and columns past their rank stay NaN). x in each dtype (16-bit widened exactly), K = 150
 * (each lane's columns in 2 passes of 128, the second partial; A's padding columns past K hold NaN),
 * ranks 3 and 40 (5 blocks of 8 ranks, the warps past rank 3 idle), 19 rows in segments of 9 and 7 (tiles of 8: partial tiles) and 3 rows
 * without an adapter. Then the table checks (ERR_NATIVE) and the work it saves: the tiles hold
 * each row once, with its own adapter only (lib/backends/cuda-lora.ts shrinkTiles).
 */
test.each(['float32', 'float16', 'bfloat16'] as const)('the shrink kernel: each row against its own adapter, %s x; T poisoned, unwritten entries stay NaN; table checks', (xDtype) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sim = require(ADDON);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { shrinkTiles } = require('../../lib/backends/cuda-lora') as typeof import('../../lib/backends/cuda-lora');
  const seed = seedFor(`lora shrink ${xDtype}`);
  const rng = mulberry32(seed);
  const M = 19, K = 150, lda = 152, ranks = [3, 40], offsets = [0, 3], rsum = 43, tld = 40;
  const rowAdapter = Int32Array.from({ length: M }, (_, m) => (m % 6 === 5 ? -1 : m % 2 === 0 && m < 18 ? 0 : 1));
  const rnd = () => (rng() < 0.5 ? -1 : 1) * (0.125 + 1.875 * rng());
  const x32 = Float32Array.from({ length: M * K }, rnd);
  const xBits = encode(x32, xDtype);
  const x64 = decode(xBits as Float32Array | Uint16Array, xDtype);
  const A = new Float32Array(rsum * lda); // padding columns K..lda hold NaN: the kernel must not read them
  for (let j = 0; j < rsum; j++) for (let k = 0; k < lda; k++) A[j * lda + k] = k < K ? Math.fround(rnd()) : NaN;
  const { tiles, rmax } = shrinkTiles(rowAdapter, M, offsets, ranks);
  expect(rmax).toBe(40);
  // Each row with an adapter is in exactly one tile, with its adapter's (off, r); -1 rows in none.
  const placed = new Map<number, [number, number]>();
  for (let i = 0; i < tiles.length; i += 10) for (let q = 0; q < 8; q++) if (tiles[i + 2 + q] >= 0) placed.set(tiles[i + 2 + q], [tiles[i], tiles[i + 1]]);
  for (let m = 0; m < M; m++) expect(placed.get(m)).toEqual(rowAdapter[m] < 0 ? undefined : [offsets[rowAdapter[m]], ranks[rowAdapter[m]]]);
  const h = (src: ArrayBufferView) => {
    const a = sim.deviceAlloc({ bytes: src.byteLength });
    sim.copyToDevice({ handle: a, src });
    return a;
  };
  const x = h(xBits), a = h(A), t = h(new Float32Array(M * tld).fill(NaN)), tilesDev = sim.deviceAlloc({ bytes: tiles.byteLength });
  const args = (o: object) => ({ x, xDtype, M, K, a, lda, rsum, tiles, tilesDev, t, tld, ...o });
  const code = codeOf;
  try {
    const tile = (off: number, r: number, rows: number[]) => Int32Array.from([off, r, ...rows, ...new Array(8 - rows.length).fill(-1)]);
    expect(code(() => sim.loraShrink(args({ tiles: tile(3, 41, [0]) })))).toBe('RangeError ERR_NATIVE'); // off + r > rsum
    expect(code(() => sim.loraShrink(args({ tiles: tile(0, 41, [0]), rsum: 43 })))).toBe('RangeError ERR_NATIVE'); // r > tld
    expect(code(() => sim.loraShrink(args({ tiles: tile(0, 0, [0]) })))).toBe('RangeError ERR_NATIVE'); // r = 0
    expect(code(() => sim.loraShrink(args({ tiles: tile(0, 3, [M]) })))).toBe('RangeError ERR_NATIVE'); // row out of range
    expect(code(() => sim.loraShrink(args({ tiles: Int32Array.from([...tile(0, 3, [1]), ...tile(3, 2, [1])]) })))).toBe('RangeError ERR_NATIVE'); // a row twice
    expect(code(() => sim.loraShrink(args({ tiles: tiles.subarray(0, 9) })))).toBe('RangeError ERR_NATIVE'); // not whole tiles
    const small = sim.deviceAlloc({ bytes: M * tld * 4 - 4 });
    expect(code(() => sim.loraShrink(args({ t: small })))).toBe('RangeError ERR_NATIVE'); // t too small for [M, tld]
    expect(code(() => sim.loraShrink(args({ t: x })))).toBe('RangeError ERR_OVERLAP'); // t over x
    sim.deviceFree(small);
    sim.loraShrink(args({}));
    const T = sim.copyToHost({ handle: t, dst: new Float32Array(M * tld) }) as Float32Array;
    const bad = shrinkViolations(T, { M, K, tld, lda, rowAdapter, ranks, offsets, x64, A }, '');
    expect(`${bad.slice(0, 5).join('\n')}${bad.length ? `\n(${bad.length} in all); ${seedNote(seed)}` : ''}`).toBe('');
  } finally {
    for (const d of [x, a, t, tilesDev]) sim.deviceFree(d);
  }
});

/**
 * `lora` with a device tensor x (dense float16, 2:4 bfloat16, INT4 with float16 x): t is computed
 * on the device from the tensor, so the result equals the host-array call's bit for bit (the host
 * path uploads the same x values and runs the same kernels, and is held to the float64 reference
 * above and by ops/lora on cuda-sim); sync and async; the temporaries are freed (the device
 * memory after equals before, but for the out tensor and the adapter's kept copies); and
 * with a device x, a host array as `out` is ERR_INVALID_ARG (out must be a device tensor there).
 */
test('lora and linearMultiLora with device tensors: the host-array result bit for bit, sync and async, temporaries freed', () => {
  const seed = seedFor('lora device tensor');
  const rng = mulberry32(seed);
  const M = 9, N = 40, K = 64, r = 6;
  const rnd = (n: number) => Array.from({ length: n }, () => (rng() < 0.5 ? -1 : 1) * (0.125 + 1.875 * rng()));
  const v = child(`
const M = ${M}, N = ${N}, K = ${K}, r = ${r};
const wv = Float32Array.from(${JSON.stringify(rnd(N * K))});
const xv = Float32Array.from(${JSON.stringify(rnd(M * K))});
const lora = new cg.LoraAdapter({ A: Float32Array.from(${JSON.stringify(rnd(r * K))}), B: Float32Array.from(${JSON.stringify(rnd(N * r))}), alpha: 0.75 }, [N, K]);
const bits = (a) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
const bytes = () => (cg.cuda.memory().find((d) => d.device === 0) || { bytes: 0 }).bytes;
const results = [];
for (const [name, w, dtype] of [
  ['dense float16', cg.DenseWeight.from(wv, [N, K], { dtype: 'float16' }), 'float16'],
  ['2:4 bfloat16', cg.Sparse24Weight.prune(wv, [N, K], { dtype: 'bfloat16' }), 'bfloat16'],
  ['int4 g32', cg.Int4Weight.quantize(wv, [N, K], { groupSize: 32 }), 'float16'],
]) {
  const x16 = cg.DenseWeight.from(xv, [M, K], { dtype }).toDense();
  const host = cg.linear(x16, [M, K], w, { dtype, lora, outDtype: 'float32' });
  const t = cg.Tensor.fromHost(x16, [M, K], { dtype });
  const before = bytes();
  const ySync = cg.linear(t, [M, K], w, { lora, outDtype: 'float32' });
  const mid = bytes();
  const yAsync = await cg.linearAsync(t, [M, K], w, { lora, outDtype: 'float32' });
  const after = bytes();
  results.push({ name, host: bits(host), sync: bits(ySync.toHostSync()), async: bits(await yAsync.toHost()), grew: [mid - before, after - mid], outBytes: M * N * 4 });
  ySync.dispose(); yAsync.dispose(); t.dispose();
}
let withOut = null;
try { cg.linear(cg.Tensor.fromHost(new Uint16Array(M * K), [M, K], { dtype: 'float16' }), [M, K], cg.DenseWeight.from(wv, [N, K], { dtype: 'float16' }), { lora, out: new Float32Array(M * N) }); } catch (e) { withOut = { code: e.code }; }
// linearMultiLora on a tensor: two adapters of ranks 6 and 3, rows without one.
const other = new cg.LoraAdapter({ A: Float32Array.from(xv.subarray(0, 3 * K)), B: Float32Array.from(wv.subarray(0, N * 3)), alpha: -1.25 }, [N, K]);
const rows = [0, 1, -1, 1, 0, 0, -1, 1, 1];
const wm = cg.DenseWeight.from(wv, [N, K], { dtype: 'bfloat16' });
const xm = cg.DenseWeight.from(xv, [M, K], { dtype: 'bfloat16' }).toDense();
const tm = cg.Tensor.fromHost(xm, [M, K], { dtype: 'bfloat16' });
const multiHost = bits(cg.linearMultiLora(xm, [M, K], wm, [lora, other], rows, { dtype: 'bfloat16', outDtype: 'float32' }));
const multiSync = bits(cg.linearMultiLora(tm, [M, K], wm, [lora, other], rows, { outDtype: 'float32' }).toHostSync());
const multiAsync = bits(await (await cg.linearMultiLoraAsync(tm, [M, K], wm, [lora, other], rows, { outDtype: 'float32' })).toHost());
const plain = bits(cg.linear(xm, [M, K], wm, { dtype: 'bfloat16', outDtype: 'float32' }));
out({ results, withOut, multi: { host: multiHost, sync: multiSync, async: multiAsync, plain } });
`) as { results: Array<{ name: string; host: number[]; sync: number[]; async: number[]; grew: number[]; outBytes: number }>; withOut: unknown; multi: Record<string, number[]> };
  for (const res of v.results) {
    expect({ name: res.name, same: res.sync.every((b, i) => b === res.host[i]) && res.async.every((b, i) => b === res.host[i]) }).toEqual({ name: res.name, same: true });
    expect(res.host.length).toBe(M * N);
    // The first call on a tensor places the weight on the device (the host call already did) and
    // keeps the adapter's copies (made by the host call too): only the out tensor remains.
    expect({ name: res.name, grew: res.grew }).toEqual({ name: res.name, grew: [res.outBytes, res.outBytes] });
  }
  expect(v.withOut).toEqual({ code: 'ERR_INVALID_ARG' }); // a host out with a device x
  const mh = v.multi.host;
  expect(v.multi.sync).toEqual(mh);
  expect(v.multi.async).toEqual(mh);
  // Not vacuous: rows with an adapter differ from the plain product, rows without (-1) equal it.
  const rows = [0, 1, -1, 1, 0, 0, -1, 1, 1];
  rows.forEach((a, m) => {
    const same = mh.slice(m * N, (m + 1) * N).every((b, n) => b === v.multi.plain[m * N + n]);
    expect({ m, same }).toEqual({ m, same: a < 0 });
  });
});

test("LoraAdapter.dispose() frees the adapter's device copies on every device (at once, or when a call in flight that uses them is done); that call gives the same bits", () => {
  const v = child(`
const M = 4, N = 24, K = 32, r = 5, K4 = 32;
const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
const w0 = cg.DenseWeight.from(rnd(N * K, 1), [N, K], { dtype: 'float16' });
const w1 = cg.DenseWeight.from(rnd(N * K, 1), [N, K], { dtype: 'float16' }).toDevice({ device: 1 });
const lora = new cg.LoraAdapter({ A: rnd(r * K, 2), B: rnd(N * r, 3), alpha: 0.5 }, [N, K]);
const x = rnd(M * K, 4);
const bytes = (d) => (cg.cuda.memory().find((m) => m.device === d) || { bytes: 0 }).bytes;
const first = Array.from(cg.linear(x, [M, K], w0, { lora }));
const t1 = cg.Tensor.fromHost(cg.DenseWeight.from(x, [M, K], { dtype: 'float16' }).toDense(), [M, K], { dtype: 'float16', device: 1 });
const y1 = cg.linear(t1, [M, K], w1, { lora }); // copies on device 1 too
const held = [bytes(0), bytes(1)];
const inFlight = cg.linearAsync(x, [M, K], w0, { lora }); // its temporaries are freed when it is done
lora.dispose();
const at1 = bytes(1); // device 1: nothing in flight, freed at once
const late = Array.from(await inFlight);
const after = [bytes(0), at1]; // device 0: the call in flight held the copies until it finished
let e = null;
try { cg.linear(t1, [M, K], w1, { lora }); } catch (x) { e = x.code; }
out({ first, late, held, after, perDevice: r * K4 * 4 + r * N * 4, e });
`, { COMPRESSED_GEMM_SIM_DEVICES: '2' });
  expect(v.late).toEqual(v.first);
  const held = v.held as number[], after = v.after as number[];
  expect([held[0] - after[0], held[1] - after[1]]).toEqual([v.perDevice, v.perDevice]);
  expect(v.e).toBe('ERR_DISPOSED');
});

test('an async call whose kernel fails to start after its LoRA term was queued: rejects with that error, frees its temporaries once T is done, no unhandled rejection', () => {
  // The kernel's start is made to throw (the dense format's run replaced in the child): the
  // LoRA shrink (T) is already queued then, so its buffers must outlive it and still be freed.
  const dense = JSON.stringify(path.resolve(__dirname, '..', '..', 'lib', 'backends', 'cuda-dense'));
  const v = child(`
const fmt = require(${dense}).denseFormat;
const M = 5, N = 24, K = 32, r = 4;
const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.41 + s));
const w = cg.DenseWeight.from(rnd(N * K, 1), [N, K], { dtype: 'float16' });
const lora = new cg.LoraAdapter({ A: rnd(r * K, 2), B: rnd(N * r, 3), alpha: 0.5 }, [N, K]);
const x = rnd(M * K, 4);
const t = cg.Tensor.fromHost(cg.DenseWeight.from(x, [M, K], { dtype: 'float16' }).toDense(), [M, K], { dtype: 'float16' });
const bytes = () => (cg.cuda.memory().find((m) => m.device === 0) || { bytes: 0 }).bytes;
const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(String(e)));
const good = Array.from(await cg.linearAsync(x, [M, K], w, { lora })); // the adapter's device copies made
const results = {};
for (const [name, call] of [
  ['host arrays', () => cg.linearAsync(x, [M, K], w, { lora })],
  ['device tensor', () => cg.linearAsync(t, [M, K], w, { lora, outDtype: 'float32' })],
]) {
  const before = bytes();
  const run = fmt.run;
  fmt.run = () => { throw new Error('injected: the kernel did not start'); };
  let message = null;
  try { await call(); } catch (e) { message = e.message; } finally { fmt.run = run; }
  let left = bytes() - before;
  for (let i = 0; i < 200 && left > 0; ++i) { await new Promise((res) => setTimeout(res, 10)); left = bytes() - before; }
  results[name] = { message, left };
}
const again = Array.from(await cg.linearAsync(x, [M, K], w, { lora }));
await new Promise((res) => setTimeout(res, 20));
out({ results, unhandled, same: JSON.stringify(again) === JSON.stringify(good) });
`);
  for (const name of ['host arrays', 'device tensor']) {
    const r = (v.results as Record<string, { message: string | null; left: number }>)[name];
    expect({ name, ...r }).toEqual({ name, message: 'injected: the kernel did not start', left: 0 });
  }
  expect(v.unhandled).toEqual([]);
  expect(v.same).toBe(true);
});
