/**
 * The CUDA backend through the public API, on the simulated device (COMPRESSED_GEMM_BACKEND=
 * cuda-sim, in a child process: the backend is chosen once per process). What the routing table
 * sends to CUDA (dense linear: float16/bfloat16 on native/cuda/gemm_dense.cuh's tensor-core
 * kernel, float32 on gemm_dense_f32.cuh's CUDA-core kernel) runs the real kernel source; the rest
 * runs on the CPU kernels, and both give the float64 reference's answer within the bound.
 *
 * Bound (the kernel's, as in gemm-dense.test.ts): the inputs are exact 16-bit values, products are
 * exact in float32, and float32 accumulation over K terms gives |y - ref| <= (K + 1) 2^-24
 * (sum_k |x_k w_k| + |bias|), plus half an ulp of the output dtype when it is 16-bit. A float32 x
 * with a 16-bit weight is rounded to the weight's dtype first (documented), so the reference uses
 * the rounded x.
 *
 * Also: device tensors (fromHost, toHost, toHostSync, dispose, use after dispose, Symbol.dispose),
 * a chain of two layers that stays on the device, cg.cuda.memory() accounting and the memory cache
 * (cg.cuda.emptyCache), concurrent async calls, and the typed errors.
 */
import { describeChild, runChild } from '../helpers/child';
import { DType, decode, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim' };

function child(body: string): unknown {
  const r = runChild(body, ENV, { timeoutMs: 60_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value;
}

const seed = seedFor('cuda-sim backend api');
const rng = mulberry32(seed);
const M = 5;
const K = 40;
const N = 24;
const N2 = 16;
const xs = Array.from({ length: M * K }, () => randNonZero(rng));
const ws = Array.from({ length: N * K }, () => randNonZero(rng));
const w2s = Array.from({ length: N2 * N }, () => randNonZero(rng));
const bias = Array.from({ length: N }, () => randNonZero(rng));

/** float64 x Wᵀ + bias over the exact (decoded) inputs, and the bound's magnitude per output. */
function reference(x: Float64Array, w: Float64Array, b: number[] | null, m: number, n: number, k: number) {
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; ++i) {
    for (let j = 0; j < n; ++j) {
      let s = b ? b[j] : 0;
      let a = b ? Math.abs(b[j]) : 0;
      for (let q = 0; q < k; ++q) {
        s += x[i * k + q] * w[j * k + q];
        a += Math.abs(x[i * k + q] * w[j * k + q]);
      }
      y[i * n + j] = s;
      mag[i * n + j] = a;
    }
  }
  return { y, mag };
}

function ulpHalf(v: number, dtype: DType): number {
  if (dtype === 'float32') return 0;
  const bits = dtype === 'float16' ? 10 : 7;
  const e = Math.floor(Math.log2(Math.max(Math.abs(v), dtype === 'float16' ? 2 ** -14 : 2 ** -126)));
  return 2 ** (e - bits - 1);
}

function check(label: string, got: number[], ref: { y: Float64Array; mag: Float64Array }, k: number, outDtype: DType): void {
  expect(got.length).toBe(ref.y.length);
  for (let i = 0; i < got.length; ++i) {
    const bound = (k + 1) * 2 ** -24 * ref.mag[i] + ulpHalf(ref.y[i], outDtype) * 1.0001;
    if (!(Math.abs(got[i] - ref.y[i]) <= bound)) {
      throw new Error(`${label}: y[${i}] = ${got[i]}, reference ${ref.y[i]}, bound ${bound}; ${seedNote(seed)}`);
    }
  }
}

const SNIPPET_INPUTS = `
const xs = ${JSON.stringify(xs)}, ws = ${JSON.stringify(ws)}, w2s = ${JSON.stringify(w2s)}, bias = ${JSON.stringify(bias)};
const M = ${M}, K = ${K}, N = ${N}, N2 = ${N2};
const toArr = (a) => Array.from(a);
`;

describe.each(['float16', 'bfloat16'] as DType[])('%s weights on the simulated device', (dtype) => {
  test('host arrays, tensors, a two-layer chain on the device, async, memory accounting', () => {
    const v = child(`${SNIPPET_INPUTS}
const b = cg.backend();
const route = b.routes.find((r) => r.op === 'linear' && r.format === 'dense' && r.activations === 'native' && (r.dtypes || []).includes('${dtype}'));
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: '${dtype}' });
const w2 = cg.DenseWeight.from(Float32Array.from(w2s), [N2, N], { dtype: '${dtype}' });
const wBits = toArr(w.toDense()), w2Bits = toArr(w2.toDense());
const x16 = cg.DenseWeight.from(Float32Array.from(xs), [M, K], { dtype: '${dtype}' }).toDense(); // x rounded the same way
const mem0 = cg.cuda.memory();
const host = toArr(cg.linear(x16, [M, K], w, { dtype: '${dtype}', bias: Float32Array.from(bias), outDtype: 'float32' }));
const hostF32x = toArr(cg.linear(Float32Array.from(xs), [M, K], w, { outDtype: 'float32' }));
const hostOut16 = toArr(cg.linear(x16, [M, K], w, { dtype: '${dtype}' }));
const t = cg.Tensor.fromHost(x16, [M, K], { dtype: '${dtype}' });
const y = cg.linear(t, [M, K], w, { bias: Float32Array.from(bias), outDtype: 'float32' });
const yHost = toArr(y.toHostSync());
const h1 = cg.linear(t, [M, K], w);                       // out in ${dtype}, stays on the device
const h2 = cg.linear(h1, [M, N], w2, { outDtype: 'float32' });
const chain = { h1: toArr(h1.toHostSync()), h2: toArr(await h2.toHost()) };
const ya = await cg.linearAsync(t, [M, K], w, { outDtype: 'float32' });
const asyncTensor = toArr(ya.toHostSync());
const many = await Promise.all(Array.from({ length: 8 }, () => cg.linearAsync(x16, [M, K], w, { dtype: '${dtype}', outDtype: 'float32' })));
const manySame = many.every((a) => toArr(a).every((v, i) => Object.is(v, toArr(many[0])[i])));
const memHeld = cg.cuda.memory();
for (const z of [t, y, h1, h2, ya]) z.dispose();
t.dispose(); // idempotent
let afterDispose = null;
try { t.toHostSync(); } catch (e) { afterDispose = { name: e.name, code: e.code }; }
let linearDisposed = null;
try { cg.linear(t, [M, K], w); } catch (e) { linearDisposed = { name: e.name, code: e.code }; }
const memAfter = cg.cuda.memory();
out({ kind: b.kind, route, wBits, w2Bits, x16: toArr(x16), host, hostF32x, hostOut16, yHost, chain, asyncTensor, many0: toArr(many[0]), manySame,
  mem0, memHeld, memAfter, disposed: t.disposed, afterDispose, linearDisposed, weightBytes: w.byteLength });
`) as Record<string, unknown>;
    expect(v.kind).toBe('cuda');
    expect((v.route as { runsOn: string }).runsOn).toBe('cuda');
    const wd = decode(Uint16Array.from(v.wBits as number[]), dtype);
    const w2d = decode(Uint16Array.from(v.w2Bits as number[]), dtype);
    const xd = decode(Uint16Array.from(v.x16 as number[]), dtype);
    const withBias = reference(xd, wd, bias, M, N, K);
    const noBias = reference(xd, wd, null, M, N, K);
    check('host arrays, bias, float32 out', v.host as number[], withBias, K, 'float32');
    check('host float32 x (rounded to the weight dtype)', v.hostF32x as number[], noBias, K, 'float32');
    check(`host, ${dtype} out`, Array.from(decode(Uint16Array.from(v.hostOut16 as number[]), dtype)), noBias, K, dtype);
    check('tensor in, tensor out', v.yHost as number[], withBias, K, 'float32');
    check('async tensor', v.asyncTensor as number[], noBias, K, 'float32');
    check('8 concurrent linearAsync', v.many0 as number[], noBias, K, 'float32');
    expect(v.manySame).toBe(true);
    // The chain: h1 in the weight dtype on the device, then h2 = h1 W2ᵀ.
    const h1 = decode(Uint16Array.from((v.chain as { h1: number[] }).h1), dtype);
    check('chain layer 1', Array.from(h1), noBias, K, dtype);
    check('chain layer 2', (v.chain as { h2: number[] }).h2, reference(h1, w2d, null, M, N2, N), N, 'float32');
    // Memory: the weight's device placement and the tensors were held; after dispose only the weights' placements remain.
    const bytes = (m: unknown) => ((m as Array<{ bytes: number }>)[0]?.bytes ?? 0);
    expect(bytes(v.memHeld)).toBeGreaterThan(bytes(v.mem0));
    expect(bytes(v.memAfter)).toBe((N * K + N2 * N) * 2);
    expect(v.disposed).toBe(true);
    expect(v.afterDispose).toEqual({ name: 'Error', code: 'ERR_DISPOSED' });
    expect(v.linearDisposed).toEqual({ name: 'Error', code: 'ERR_DISPOSED' });
    // byteLength counts the CPU and the device placement.
    expect(v.weightBytes as number).toBeGreaterThanOrEqual(N * K * 2 * 2);
  });
});

test('float32 weights run the CUDA-core kernel (host arrays and tensors, float32 arithmetic); what the CUDA backend does not run gets a typed error with device tensors', () => {
  const v = child(`${SNIPPET_INPUTS}
const w32 = cg.DenseWeight.from(Float32Array.from(ws), [N, K]);
const int4 = cg.Int4Weight.quantize(Float32Array.from(ws), [N, K], { groupSize: -1 });
const route32 = cg.backend().routes.find((r) => r.op === 'linear' && r.format === 'dense' && r.activations === 'native' && (r.dtypes || []).includes('float32'));
const y32 = toArr(cg.linear(Float32Array.from(xs), [M, K], w32, { bias: Float32Array.from(bias) }));
const t = cg.Tensor.fromHost(Float32Array.from(xs), [M, K]);
const yt = toArr(cg.linear(t, [M, K], w32).toHostSync());
const ya = toArr(await cg.linearAsync(Float32Array.from(xs), [M, K], w32));
const tb = cg.Tensor.fromHost(cg.DenseWeight.from(Float32Array.from(xs), [M, K], { dtype: 'bfloat16' }).toDense(), [M, K], { dtype: 'bfloat16' });
const wf16 = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const err = (f) => { try { f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
// K off the kernels' 16-byte rule: host arrays are padded on upload; device tensors are refused.
const w12 = cg.DenseWeight.from(Float32Array.from(ws.slice(0, N * 12)), [N, 12], { dtype: 'float16' });
const x12 = cg.DenseWeight.from(Float32Array.from(xs.slice(0, M * 12)), [M, 12], { dtype: 'float16' }).toDense();
const w6 = cg.DenseWeight.from(Float32Array.from(ws.slice(0, N * 6)), [N, 6]);
const x6 = Float32Array.from(xs.slice(0, M * 6));
out({
  route32,
  y32, yt, ya,
  int4Tensor: err(() => cg.linear(t, [M, K], int4)),
  mismatch: err(() => cg.linear(tb, [M, K], wf16)),
  withOut: err(() => cg.linear(tb, [M, K], wf16, { out: new Float32Array(M * N) })),
  // out as a device tensor: written in place (poisoned first), returned; checked before any launch.
  outTensor: await (async () => {
    const o = cg.Tensor.fromHost(new Float32Array(M * N).fill(NaN), [M, N]);
    const same = cg.linear(t, [M, K], w32, { out: o }) === o;
    const sync = toArr(o.toHostSync());
    const o2 = cg.Tensor.fromHost(new Float32Array(M * N).fill(NaN), [M, N]);
    const sameAsync = (await cg.linearAsync(t, [M, K], w32, { out: o2 })) === o2;
    const asyncY = toArr(await o2.toHost());
    const o16 = cg.Tensor.fromHost(new Uint16Array(M * N).fill(0x7fff), [M, N], { dtype: 'float16' });
    const sq = cg.DenseWeight.from(Float32Array.from({ length: K * K }, (_, i) => ws[i % ws.length]), [K, K]);
    const tsq = cg.Tensor.fromHost(Float32Array.from(xs), [M, K]);
    const gone = cg.Tensor.fromHost(new Float32Array(M * N), [M, N]);
    gone.dispose();
    const errs = {
      shape: err(() => cg.linear(t, [M, K], w32, { out: cg.Tensor.fromHost(new Float32Array(M * N), [N, M]) })),
      dtypeAsked: err(() => cg.linear(t, [M, K], w32, { out: o, outDtype: 'float16' })),
      self: err(() => cg.linear(tsq, [M, K], sq, { out: tsq })),
      disposed: err(() => cg.linear(t, [M, K], w32, { out: gone })),
    };
    // Without outDtype the result takes out's dtype (as without out it takes x's).
    const same16 = cg.linear(t, [M, K], w32, { out: o16 }) === o16;
    return { same, sameAsync, sync, asyncY, errs, same16, o16: toArr(o16.toHostSync()) };
  })(),
  wrongShape: err(() => cg.linear(tb, [M + 1, K], wf16)),
  badDevice: err(() => cg.Tensor.fromHost(new Float32Array(4), [2, 2], { device: 3 })),
  k12: { w: toArr(w12.toDense()), x: toArr(x12), y: toArr(cg.linear(x12, [M, 12], w12, { dtype: 'float16', outDtype: 'float32' })) },
  k6: toArr(cg.linear(x6, [M, 6], w6)),
  k12Tensor: err(() => cg.linear(cg.Tensor.fromHost(x12, [M, 12], { dtype: 'float16' }), [M, 12], w12)),
  k6Tensor: err(() => cg.linear(cg.Tensor.fromHost(x6, [M, 6]), [M, 6], w6)),
});
`) as Record<string, { name: string; code: string; message: string } | unknown>;
  expect((v.route32 as { runsOn: string }).runsOn).toBe('cuda');
  // Bound: every step of the kernel is one FMA (one rounding), so float32 accumulation's
  // (K + 1) 2^-24 sum |x w| bound holds with float32 (not 16-bit) inputs: see gemm_dense_f32.cuh.
  const x32 = Float64Array.from(Float32Array.from(xs)), w32 = Float64Array.from(Float32Array.from(ws));
  check('float32 weight, host arrays, bias', v.y32 as number[], reference(x32, w32, bias, M, N, K), K, 'float32');
  check('float32 weight, tensor', v.yt as number[], reference(x32, w32, null, M, N, K), K, 'float32');
  check('float32 weight, linearAsync', v.ya as number[], reference(x32, w32, null, M, N, K), K, 'float32');
  expect(v.int4Tensor).toMatchObject({ name: 'TypeError', code: 'ERR_DTYPE' }); // a float32 tensor: the INT4 kernel is W4A16
  expect(v.mismatch).toMatchObject({ name: 'TypeError', code: 'ERR_DTYPE' });
  expect(v.withOut).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG' }); // a host out with a device x
  const ot = v.outTensor as { same: boolean; sameAsync: boolean; same16: boolean; sync: number[]; asyncY: number[]; o16: number[]; errs: Record<string, unknown> };
  expect([ot.same, ot.sameAsync, ot.same16]).toEqual([true, true, true]);
  check('float32 weight, tensor, into a float16 out', Array.from(decode(Uint16Array.from(ot.o16), 'float16')), reference(x32, w32, null, M, N, K), K, 'float16');
  check('float32 weight, tensor, into out', ot.sync, reference(x32, w32, null, M, N, K), K, 'float32');
  expect(ot.asyncY).toEqual(ot.sync);
  expect(ot.errs.shape).toMatchObject({ name: 'RangeError', code: 'ERR_SHAPE_MISMATCH' });
  expect(ot.errs.dtypeAsked).toMatchObject({ name: 'TypeError', code: 'ERR_DTYPE' });
  expect(ot.errs.self).toMatchObject({ name: 'RangeError', code: 'ERR_OVERLAP' });
  expect(ot.errs.disposed).toMatchObject({ code: 'ERR_DISPOSED' });
  expect(v.wrongShape).toMatchObject({ name: 'RangeError', code: 'ERR_SHAPE_MISMATCH' });
  expect(v.badDevice).toMatchObject({ name: 'RangeError', code: 'ERR_DEVICE' });
  const k12 = v.k12 as { w: number[]; x: number[]; y: number[] };
  check('K = 12 float16, host arrays (padded to 16 on the device)', k12.y,
    reference(decode(Uint16Array.from(k12.x), 'float16'), decode(Uint16Array.from(k12.w), 'float16'), null, M, N, 12), 12, 'float32');
  check('K = 6 float32, host arrays (padded to 8 on the device)', v.k6 as number[],
    reference(Float64Array.from(Float32Array.from(xs.slice(0, M * 6))), Float64Array.from(Float32Array.from(ws.slice(0, N * 6))), null, M, N, 6), 6, 'float32');
  expect(v.k12Tensor).toMatchObject({ name: 'RangeError', code: 'ERR_K_ALIGNMENT' });
  expect((v.k12Tensor as { message: string }).message).toMatch(/multiple of 8/);
  expect(v.k6Tensor).toMatchObject({ name: 'RangeError', code: 'ERR_K_ALIGNMENT' });
  expect((v.k6Tensor as { message: string }).message).toMatch(/multiple of 4/);
});

test('host-array calls reuse the cached device memory: after the first call the same call reserves nothing; emptyCache gives it back', () => {
  const v = child(`${SNIPPET_INPUTS}
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const x = Float32Array.from(xs);
const mem = () => cg.cuda.memory()[0];
const first = cg.linear(x, [M, K], w, { bias: Float32Array.from(bias) }); // x, bias and out: new blocks, then cached
const afterFirst = mem();
const reserved = [];
for (let i = 0; i < 5; ++i) { cg.linear(x, [M, K], w, { bias: Float32Array.from(bias) }); reserved.push(mem().reservedBytes); }
for (let i = 0; i < 3; ++i) { await Promise.all([0, 1, 2, 3].map(() => cg.linearAsync(x, [M, K], w))); reserved.push(mem().reservedBytes); }
const beforeEmpty = mem();
const released = cg.cuda.emptyCache();
const afterEmpty = mem();
const again = cg.linear(x, [M, K], w, { bias: Float32Array.from(bias) });
const errs = [() => cg.cuda.emptyCache({ device: 1 }), () => cg.cuda.emptyCache({ device: 0.5 }), () => cg.cuda.emptyCache(3)].map((f) => {
  try { f(); return null; } catch (e) { return { name: e.name, code: e.code }; }
});
out({ afterFirst, reserved, beforeEmpty, released, afterEmpty, same: Array.from(first).every((y, i) => Object.is(y, again[i])), errs, device0: cg.cuda.emptyCache({ device: 0 }) });
`) as Record<string, any>;
  expect(v.afterFirst.cachedBytes).toBeGreaterThan(0);
  expect(v.afterFirst.bytes).toBeGreaterThan(0); // the weight's placement stays in use; nothing of the calls does
  expect(v.beforeEmpty.bytes).toBe(v.afterFirst.bytes);
  // After the first call of each kind, no call reserves more: its blocks come from the cache.
  // (The 4 concurrent async calls need 4 sets; the first round makes them, the later rounds reuse them.)
  expect(v.reserved.slice(0, 5).every((r: number) => r === v.afterFirst.reservedBytes)).toBe(true);
  expect(v.reserved[6]).toBe(v.reserved[5]);
  expect(v.reserved[7]).toBe(v.reserved[5]);
  expect(v.released).toBe(v.beforeEmpty.cachedBytes);
  expect(v.afterEmpty).toMatchObject({ bytes: v.beforeEmpty.bytes, cachedBytes: 0, reservedBytes: v.beforeEmpty.reservedBytes - v.released });
  expect(v.same).toBe(true);
  expect(v.errs).toEqual([{ name: 'RangeError', code: 'ERR_DEVICE' }, { name: 'TypeError', code: 'ERR_INVALID_ARG' }, { name: 'TypeError', code: 'ERR_INVALID_ARG' }]);
  expect(v.device0).toBeGreaterThan(0); // the blocks of the last call
});

// CUDA makes the caller of a copy with pageable host memory wait (device -> host until the copy is
// done, so after all the work queued before it; host -> device while the driver stages it). The
// simulated device waits the same way and counts such copies (hostWaits, a sim-only export), so
// this checks that no async call makes the JS thread wait for the device: their copies go
// through page-locked staging. The sync calls at the end show that the count is not stuck.
test('async calls never make the JS thread wait for the device: no copy with pageable host memory', () => {
  const v = child(`${SNIPPET_INPUTS}
const sim = require(${JSON.stringify(require('path').join(__dirname, '..', '..', 'build', 'Release', 'compressed_gemm_cuda_sim.node'))});
const x16 = cg.DenseWeight.from(Float32Array.from(xs), [M, K], { dtype: 'float16' }).toDense();
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const i4 = cg.Int4Weight.quantize(Float32Array.from(ws), [N, K], { groupSize: -1 });
const a1 = new cg.LoraAdapter({ A: Float32Array.from(xs.slice(0, 3 * K)), B: Float32Array.from(ws.slice(0, N * 3)), alpha: 0.5 }, [N, K]);
const a2 = new cg.LoraAdapter({ A: Float32Array.from(xs.slice(0, 2 * K)), B: Float32Array.from(ws.slice(0, N * 2)), alpha: -2 }, [N, K]);
const rows = [0, -1, 1, 1, 0];
const b = Float32Array.from(bias);
// Setup, sync: the weights placed, the adapters uploaded, a tensor made, the reference results.
const ref = {
  plain: Array.from(cg.linear(x16, [M, K], w, { dtype: 'float16', bias: b, outDtype: 'float32' })),
  lora: Array.from(cg.linear(x16, [M, K], w, { dtype: 'float16', lora: a1, outDtype: 'float32' })),
  multi: Array.from(cg.linearMultiLora(x16, [M, K], w, [a1, a2], rows, { dtype: 'float16', outDtype: 'float32' })),
  int4: Array.from(cg.linear(x16, [M, K], i4, { dtype: 'float16', bias: b, outDtype: 'float32' })),
};
const t = cg.Tensor.fromHost(x16, [M, K], { dtype: 'float16' });
const wu = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float32' }).toDevice();
const before = sim.hostWaits();
const got = {
  plain: Array.from(await cg.linearAsync(x16, [M, K], w, { dtype: 'float16', bias: b, outDtype: 'float32' })),
  lora: Array.from(await cg.linearAsync(x16, [M, K], w, { dtype: 'float16', lora: a1, outDtype: 'float32' })),
  multi: Array.from(await cg.linearMultiLoraAsync(x16, [M, K], w, [a1, a2], rows, { dtype: 'float16', outDtype: 'float32' })),
  int4: Array.from(await cg.linearAsync(x16, [M, K], i4, { dtype: 'float16', bias: b, outDtype: 'float32' })),
  tensorBias: Array.from(await (await cg.linearAsync(t, [M, K], w, { bias: b, outDtype: 'float32' })).toHost()),
  tensorMulti: Array.from(await (await cg.linearMultiLoraAsync(t, [M, K], w, [a1, a2], rows, { outDtype: 'float32' })).toHost()),
};
await cg.lowRankUpdateAsync(wu, Float32Array.from(ws.slice(0, N * 2)), Float32Array.from(xs.slice(0, 2 * K)), { alpha: 0.25 });
const duringAsync = sim.hostWaits() - before;
cg.linear(x16, [M, K], w, { dtype: 'float16' });
const afterSync = sim.hostWaits() - before;
out({ ref, got, duringAsync, afterSync });
`) as { ref: Record<string, number[]>; got: Record<string, number[]>; duringAsync: number; afterSync: number };
  expect(v.duringAsync).toBe(0);
  expect(v.afterSync).toBeGreaterThan(0); // a sync call's copies are pageable, and counted
  // The async results are the sync ones, bit for bit (the same kernels on the same inputs).
  expect(v.got.plain).toEqual(v.ref.plain);
  expect(v.got.lora).toEqual(v.ref.lora);
  expect(v.got.multi).toEqual(v.ref.multi);
  expect(v.got.int4).toEqual(v.ref.int4);
  expect(v.got.tensorBias).toEqual(v.ref.plain);
  expect(v.got.tensorMulti).toEqual(v.ref.multi);
});

// A host-array call with a LoRA term uploads x once when the shrink can read the uploaded x (x
// passed in the weight's dtype, K needing no padding): the shrink and the GEMM share it. A float32
// x with a 16-bit weight is uploaded twice: converted for the GEMM, as passed for the shrink (T is
// x·Aᵀ from x as the caller gave it, as on the CPU). Sync copies from pageable memory are counted
// by the simulated device (hostWaits), so the two calls differ by exactly that one upload; the
// results are checked against the device-tensor path (x uploaded once by the caller). Before the
// shrink shared x, the call with the LoRA term made one counted copy more than the call without.
test('a host-array LoRA call uploads x once when the shrink can share it', () => {
  const v = child(`${SNIPPET_INPUTS}
const sim = require(${JSON.stringify(require('path').join(__dirname, '..', '..', 'build', 'Release', 'compressed_gemm_cuda_sim.node'))});
const x32 = Float32Array.from(xs);
const x16 = cg.DenseWeight.from(x32, [M, K], { dtype: 'float16' }).toDense();
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const a1 = new cg.LoraAdapter({ A: Float32Array.from(xs.slice(0, 3 * K)), B: Float32Array.from(ws.slice(0, N * 3)), alpha: 0.5 }, [N, K]);
const opts = { lora: a1, outDtype: 'float32' };
cg.linear(x16, [M, K], w, { dtype: 'float16', ...opts }); // places the weight, uploads the adapter
const waits = (f) => { const w0 = sim.hostWaits(); const y = f(); return { n: sim.hostWaits() - w0, y: Array.from(y) }; };
const plain = waits(() => cg.linear(x16, [M, K], w, { dtype: 'float16', outDtype: 'float32' }));
const same = waits(() => cg.linear(x16, [M, K], w, { dtype: 'float16', ...opts }));
const conv = waits(() => cg.linear(x32, [M, K], w, { dtype: 'float32', ...opts }));
const t = cg.Tensor.fromHost(x16, [M, K], { dtype: 'float16' });
const viaTensor = Array.from(cg.linear(t, [M, K], w, opts).toHostSync());
out({ plain: plain.n, same: same.n, conv: conv.n, ySame: same.y, yConv: conv.y, viaTensor });
`) as { plain: number; same: number; conv: number; ySame: number[]; yConv: number[]; viaTensor: number[] };
  expect(v.plain).toBeGreaterThanOrEqual(2); // x up, y down
  expect(v.same).toBe(v.plain); // the LoRA term's tables go up through page-locked staging: not counted
  expect(v.conv).toBe(v.same + 1); // the caller's float32 x, for the shrink
  expect(v.ySame).toEqual(v.viaTensor);
  // x16 is x32 rounded: the shrink of the converted call sees other inputs, the GEMM the same ones.
  expect(v.yConv.every((y, i) => Math.abs(y - v.ySame[i]) <= 1e-2 * (1 + Math.abs(y)))).toBe(true);
});

test('on the CPU backend device tensors are not supported (a typed error), and cuda.memory() is empty', () => {
  const r = runChild(
    `const e = (() => { try { cg.Tensor.fromHost(new Float32Array(4), [2, 2]); return null; } catch (e) { return { name: e.name, code: e.code }; } })();
out({ e, mem: cg.cuda.memory(), empty: cg.cuda.emptyCache() });`,
    { COMPRESSED_GEMM_BACKEND: 'cpu' },
  );
  expect(r.error).toBeUndefined();
  expect(r.value).toEqual({ e: { name: 'Error', code: 'ERR_NOT_SUPPORTED' }, mem: [], empty: 0 });
});
