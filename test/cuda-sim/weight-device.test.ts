/**
 * Weights on the device through the public API, on the simulated device with two devices
 * (COMPRESSED_GEMM_SIM_DEVICES=2, in a child process: the backend is chosen once per process):
 * w.toDevice({ device }) (device-only: the host copy is dropped), moving between devices,
 * w.dispose() (idempotent, ERR_DISPOSED after, Symbol.dispose), the `device` option of tensors,
 * which device a call runs on, and the typed errors: ERR_DEVICE for a weight on another device or
 * a device that does not exist, ERR_NOT_SUPPORTED for what a device-only weight cannot do (its
 * host copy is never made again behind the user's back), ERR_BUSY, ERR_WEIGHT.
 *
 * Numbers: x and W are float16 values (exact), so every product is exact in float32 and the
 * kernel's float32 accumulation is within (K + 1) 2^-24 sum |x w| of the float64 reference
 * (gemm-dense.test.ts); a result read from device 1 is the same bits as from device 0.
 */
import { describeChild, runChild } from '../helpers/child';
import { decode, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim', COMPRESSED_GEMM_SIM_DEVICES: '2' };

function child(body: string): Record<string, unknown> {
  const r = runChild(body, ENV, { timeoutMs: 60_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}

const seed = seedFor('cuda-sim weight on device');
const rng = mulberry32(seed);
const M = 3, K = 24, N = 10;
const xs = Array.from({ length: M * K }, () => randNonZero(rng));
const ws = Array.from({ length: N * K }, () => randNonZero(rng));

function checkProduct(label: string, got: number[], x: Float64Array, w: Float64Array): void {
  expect(got.length).toBe(M * N);
  for (let m = 0; m < M; ++m) {
    for (let n = 0; n < N; ++n) {
      let s = 0, a = 0;
      for (let k = 0; k < K; ++k) {
        s += x[m * K + k] * w[n * K + k];
        a += Math.abs(x[m * K + k] * w[n * K + k]);
      }
      const bound = (K + 1) * 2 ** -24 * a;
      const y = got[m * N + n];
      if (!(Math.abs(y - s) <= bound)) throw new Error(`${label}: y[${m}, ${n}] = ${y}, reference ${s}, bound ${bound}; ${seedNote(seed)}`);
    }
  }
}

const PRELUDE = `
const xs = ${JSON.stringify(xs)}, ws = ${JSON.stringify(ws)};
const M = ${M}, K = ${K}, N = ${N};
const toArr = (a) => Array.from(a);
const err = (f) => { try { f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
const aerr = async (f) => { try { await f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
const bytesOn = (d) => (cg.cuda.memory().find((m) => m.device === d) || { bytes: 0 }).bytes;
const x16 = cg.DenseWeight.from(Float32Array.from(xs), [M, K], { dtype: 'float16' }).toDense();
const opts = { dtype: 'float16', outDtype: 'float32' };
`;

test('toDevice: device-only weights, moving between devices, tensors on device 1, ERR_DEVICE', () => {
  const v = child(`${PRELUDE}
const devices = cg.cuda.devices();
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const wBits = toArr(w.toDense());
const hostBytes = w.byteLength;
const before = w.device;
const y0 = toArr(cg.linear(x16, [M, K], w, opts));         // placed on device 0 on first use
const afterFirstUse = { device: w.device, bytes: w.byteLength, dev0: bytesOn(0) };
const same = w.toDevice({ device: 0 });                      // returns the weight; drops the host copy
const deviceOnly = { same: same === w, device: w.device, bytes: w.byteLength, dense: toArr(w.toDense()) };
const yDev0 = toArr(cg.linear(x16, [M, K], w, opts));
const t1 = cg.Tensor.fromHost(x16, [M, K], { dtype: 'float16', device: 1 });
const wrongDevice = err(() => cg.linear(t1, [M, K], w));
w.toDevice({ device: 1 });                                   // moves: device 0 freed, device 1 holds it
const moved = { device: w.device, dev0: bytesOn(0), dev1: bytesOn(1), dense: toArr(w.toDense()) };
const y1 = cg.linear(t1, [M, K], w, { outDtype: 'float32' });
const onDevice1 = { device: y1.device, y: toArr(y1.toHostSync()) };
const yHostOn1 = toArr(await cg.linearAsync(x16, [M, K], w, opts)); // host arrays run where the weight is
const t0 = cg.Tensor.fromHost(x16, [M, K], { dtype: 'float16' });
const wrongDevice0 = err(() => cg.linear(t0, [M, K], w));
// A fresh weight meets a tensor on device 1 first: it is placed there.
const wb = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const yb = toArr(cg.linear(t1, [M, K], wb, { outDtype: 'float32' }).toHostSync());
const wbDevice = wb.device;
out({ x16: toArr(x16), devices, wBits, hostBytes, before, y0, afterFirstUse, deviceOnly, yDev0, wrongDevice, moved, onDevice1, yHostOn1, wrongDevice0, yb, wbDevice,
  noDevice: err(() => w.toDevice({ device: 2 })), negative: err(() => w.toDevice({ device: -1 })),
  fractional: err(() => w.toDevice({ device: 0.5 })), notNumber: err(() => w.toDevice({ device: '1' }))});
`);
  expect((v.devices as Array<{ device: number; simulated: boolean }>).map((d) => [d.device, d.simulated])).toEqual([[0, true], [1, true]]);
  const wd = decode(Uint16Array.from(v.wBits as number[]), 'float16');
  const xd = decode(Uint16Array.from(v.x16 as number[]), 'float16');
  checkProduct('first use (device 0)', v.y0 as number[], xd, wd);
  checkProduct('device-only on device 0', v.yDev0 as number[], xd, wd);
  checkProduct('tensor on device 1', (v.onDevice1 as { y: number[] }).y, xd, wd);
  checkProduct('host arrays with the weight on device 1', v.yHostOn1 as number[], xd, wd);
  checkProduct('fresh weight placed on device 1 by its tensor', v.yb as number[], xd, wd);
  expect(v.before).toBeNull();
  // The CPU placement (its packed layout, padded) plus, after first use, the device's N*K float16 values.
  expect(v.hostBytes as number).toBeGreaterThanOrEqual(N * K * 2);
  expect(v.afterFirstUse).toEqual({ device: 0, bytes: (v.hostBytes as number) + N * K * 2, dev0: N * K * 2 });
  const d = v.deviceOnly as { same: boolean; device: number; bytes: number; dense: number[] };
  expect({ same: d.same, device: d.device, bytes: d.bytes }).toEqual({ same: true, device: 0, bytes: N * K * 2 });
  expect(d.dense).toEqual(v.wBits); // read back from the device, bit for bit
  expect(v.wrongDevice).toMatchObject({ name: 'Error', code: 'ERR_DEVICE' });
  expect((v.wrongDevice as { message: string }).message).toMatch(/device 0.*device 1.*toDevice\(\{ device: 1 \}\)/);
  const mv = v.moved as { device: number; dev0: number; dev1: number; dense: number[] };
  expect({ device: mv.device, dev0: mv.dev0 }).toEqual({ device: 1, dev0: 0 });
  expect(mv.dev1).toBeGreaterThanOrEqual(N * K * 2); // the weight (and tensor t1)
  expect(mv.dense).toEqual(v.wBits);
  expect((v.onDevice1 as { device: number }).device).toBe(1);
  expect(v.wrongDevice0).toMatchObject({ name: 'Error', code: 'ERR_DEVICE' });
  expect(v.wbDevice).toBe(1);
  for (const e of ['noDevice', 'negative']) expect(v[e]).toMatchObject({ name: 'RangeError', code: 'ERR_DEVICE' });
  for (const e of ['fractional', 'notNumber']) expect(v[e]).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG' });
});

test('toDevice results match the reference on both devices, bit-identical between them', () => {
  const v = child(`${PRELUDE}
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const wBits = toArr(w.toDense());
const a = toArr(cg.linear(x16, [M, K], w.toDevice({ device: 0 }), opts));
const b = toArr(cg.linear(x16, [M, K], w.toDevice({ device: 1 }), opts));
out({ x16: toArr(x16), wBits, a, b });
`);
  const x = decode(Uint16Array.from(v.x16 as number[]), 'float16');
  const w = decode(Uint16Array.from(v.wBits as number[]), 'float16');
  checkProduct('device 0', v.a as number[], x, w);
  checkProduct('device 1', v.b as number[], x, w);
  expect((v.b as number[]).map((y) => Object.is(y, -0) ? 0 : y)).toEqual((v.a as number[]).map((y) => Object.is(y, -0) ? 0 : y));
});

test('dispose(): frees every placement at once, idempotent, ERR_DISPOSED after, Symbol.dispose; in-flight calls finish', async () => {
  const v = child(`${PRELUDE}
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' });
const ref = toArr(cg.linear(x16, [M, K], w, opts));
const held = bytesOn(0);
// Calls in flight, then dispose at once: they finish with the right answer (they hold the memory).
const inflight = Array.from({ length: 4 }, () => cg.linearAsync(x16, [M, K], w, opts));
w.dispose();
const settled = await Promise.allSettled(inflight);
const results = settled.map((r) => r.status === 'fulfilled' ? toArr(r.value) : r.reason.message);
w.dispose(); // idempotent
const after = {
  disposed: w.disposed, bytes: w.byteLength, device: w.device, held, now: bytesOn(0),
  linear: err(() => cg.linear(x16, [M, K], w, opts)),
  linearAsync: await aerr(() => cg.linearAsync(x16, [M, K], w, opts)),
  toDense: err(() => w.toDense()),
  toDevice: err(() => w.toDevice()),
  lowRank: err(() => cg.lowRankUpdate(w, new Float32Array(N).fill(0.5), new Float32Array(K).fill(0.5), { alpha: 1 })),
  shape: w.shape, format: w.format,
};
let usingFreed = null;
const sym = typeof Symbol.dispose === 'symbol';
if (sym) {
  const w2 = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' }).toDevice();
  const b2 = bytesOn(0);
  w2[Symbol.dispose]();
  usingFreed = { before: b2, after: bytesOn(0), disposed: w2.disposed };
}
// A CPU-only weight (never used on the device) disposes too.
const w3 = cg.Int4Weight.quantize(Float32Array.from(ws), [N, K], { groupSize: -1 });
w3.dispose();
out({ ref, results, after, sym, usingFreed, int4: { disposed: w3.disposed, linear: err(() => cg.linear(new Float32Array(M * K), [M, K], w3)) } });
`);
  for (const r of v.results as unknown[]) expect(r).toEqual(v.ref);
  const a = v.after as Record<string, unknown>;
  expect({ disposed: a.disposed, bytes: a.bytes, device: a.device, now: a.now }).toEqual({ disposed: true, bytes: 0, device: null, now: 0 });
  expect(a.held).toBe(N * K * 2);
  for (const k of ['linear', 'linearAsync', 'toDense', 'toDevice', 'lowRank']) expect({ k, e: a[k] }).toMatchObject({ k, e: { code: 'ERR_DISPOSED' } });
  expect(a.shape).toEqual([N, K]);
  if (v.sym) expect(v.usingFreed).toEqual({ before: N * K * 2, after: 0, disposed: true });
  expect(v.int4).toMatchObject({ disposed: true, linear: { code: 'ERR_DISPOSED' } });
});

test('device-only weights: what runs on the CPU kernels (lowRankUpdate of an INT4 weight) is refused (no host copy is made again); toDevice of a format without a CUDA kernel leaves the weight as it was', () => {
  const v = child(`${PRELUDE}
const w = cg.DenseWeight.from(Float32Array.from(ws), [N, K], { dtype: 'float16' }).toDevice();
const lora = new cg.LoraAdapter({ A: new Float32Array(2 * K).fill(0.25), B: new Float32Array(N * 2).fill(0.5), alpha: 1 }, [N, K]);
const fp8 = cg.Fp8Weight.quantize(Float32Array.from(ws), [N, K]);
const q = cg.Int4Weight.quantize(Float32Array.from(ws), [N, K], { groupSize: -1 }).toDevice();
const fp8Dense = toArr(fp8.toDense());
const fp8Bytes = fp8.byteLength;
const s24 = cg.Sparse24Weight.prune(Float32Array.from(ws), [N, K]); // float32 2:4: CPU kernels only
out({
  withLora: toArr(cg.linear(x16, [M, K], w, { ...opts, lora })).length, // the LoRA epilogue runs on the device too
  lowRank: err(() => cg.lowRankUpdate(q, new Float32Array(N).fill(0.5), new Float32Array(K).fill(0.5), { alpha: 1 })),
  lowRankDense: cg.lowRankUpdate(w, new Float32Array(N).fill(0.5), new Float32Array(K).fill(0.5), { alpha: 1 }).peakScratchBytes, // on the device
  fp8ToDevice: err(() => fp8.toDevice()),
  fp8After: { device: fp8.device, bytes: fp8.byteLength, same: toArr(fp8.toDense()).every((x, i) => Object.is(x, fp8Dense[i])), linear: cg.linear(new Float32Array(M * K).fill(1), [M, K], fp8).length },
  fp8Bytes,
  s24ToDevice: err(() => s24.toDevice()),
  forged: err(() => cg.Weight.prototype.toDevice.call({ format: 'dense' })),
  still: toArr(cg.linear(x16, [M, K], w, opts)).length,
});
`);
  expect(v.withLora).toBe(M * N);
  expect(v.lowRank).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });
  expect((v.lowRank as { message: string }).message).toMatch(/device-only/);
  expect(v.lowRankDense).toBe((K + N) * 4); // a dense device-only weight is updated on the device (lowrank-device.test.ts)
  expect(v.fp8ToDevice).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });
  expect(v.fp8After).toEqual({ device: null, bytes: v.fp8Bytes, same: true, linear: M * N });
  expect(v.s24ToDevice).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });
  expect(v.forged).toMatchObject({ name: 'TypeError', code: 'ERR_WEIGHT' });
  expect(v.still).toBe(M * N);
});

test('on the CPU backend toDevice is ERR_NOT_SUPPORTED and dispose() works', () => {
  const r = runChild(
    `const w = cg.DenseWeight.from(new Float32Array(16).fill(1), [4, 4]);
const e = (() => { try { w.toDevice(); return null; } catch (e) { return { name: e.name, code: e.code }; } })();
const y = Array.from(cg.linear(new Float32Array(8).fill(1), [2, 4], w));
w.dispose();
const after = (() => { try { cg.linear(new Float32Array(8), [2, 4], w); return null; } catch (e) { return e.code; } })();
out({ e, y, after, devices: cg.cuda.devices() });`,
    { COMPRESSED_GEMM_BACKEND: 'cpu' },
  );
  expect(r.error).toBeUndefined();
  expect(r.value).toEqual({ e: { name: 'Error', code: 'ERR_NOT_SUPPORTED' }, y: [4, 4, 4, 4, 4, 4, 4, 4], after: 'ERR_DISPOSED', devices: [] });
});
