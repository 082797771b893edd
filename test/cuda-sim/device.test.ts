/**
 * The device runtime on the simulated device (native/cuda/runtime/runtime_sim.cc) through the
 * exports shared by both addons (native/binding/device_exports.h): device memory, copies sync
 * and async, memory() accounting, out-of-memory, handles freed or forgotten, and environments
 * torn down with copies in flight. The CUDA addon's same exports are checked for a clean coded
 * error where no device is usable (or a round trip where one is).
 *
 * Tests that change the process (a memory limit, --expose-gc, a worker terminated or
 * process.exit() with copies in flight) run in child processes.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, describeChild, runChild } from '../helpers/child';

const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');
const CUDA_ADDON = path.join(ROOT, 'build-cuda', 'Release', 'compressed_gemm_cuda.node');

type Handle = object;
type View = ArrayBufferView & { length: number };
interface DeviceAddon {
  devices(): Array<{ device: number; name: string; sm: number; totalMemory: number; multiprocessors: number; simulated: boolean }>;
  deviceAlloc(args: { device?: number; bytes: number }): Handle;
  deviceFree(h: Handle): void;
  copyToDevice(args: { handle: Handle; offset?: number; src: ArrayBufferView }): void;
  copyToDeviceAsync(args: { handle: Handle; offset?: number; src: ArrayBufferView }): Promise<void>;
  copyToHost<T extends ArrayBufferView>(args: { handle: Handle; offset?: number; dst: T }): T;
  copyToHostAsync<T extends ArrayBufferView>(args: { handle: Handle; offset?: number; dst: T }): Promise<T>;
  copyDeviceToDevice(args: { dst: Handle; dstOffset?: number; src: Handle; srcOffset?: number; bytes: number }): void;
  memory(): { devices: Array<{ device: number; bytes: number; peakBytes: number; cachedBytes: number; reservedBytes: number }> };
  releaseCache(args: { device?: number }): number;
  copyDeviceToDeviceAsync(args: { dst: Handle; dstOffset?: number; src: Handle; srcOffset?: number; bytes: number }): Promise<void>;
}
interface SimAddon extends DeviceAddon {
  streamSelfTest(): Record<string, unknown>;
  hostWaits(): number;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const sim = require(ADDON) as SimAddon;

const held = (): number => sim.memory().devices.find((d) => d.device === 0)?.bytes ?? 0;
const dev0 = () => sim.memory().devices.find((d) => d.device === 0)!;
const bytesOf = (v: ArrayBufferView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

// The addon's errors come from Node's own realm, not jest's sandbox: compared by name and code
// (instanceof TypeError would compare against the sandbox's class).
type ErrorName = 'TypeError' | 'RangeError' | 'Error';
function checkCoded(e: unknown, name: ErrorName, code: string): Error & Record<string, unknown> {
  const err = e as Error & Record<string, unknown>;
  expect(`${err?.name}/${err?.code}`).toBe(`${name}/${code}`);
  expect(typeof err.message).toBe('string');
  return err;
}
function throwsCoded(fn: () => unknown, name: ErrorName, code: string): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return checkCoded(e, name, code);
  }
  throw new Error(`expected a ${name} with code ${code}; nothing was thrown`);
}
async function rejectsCoded(p: Promise<unknown>, name: ErrorName, code: string): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return checkCoded(e, name, code);
  }
  throw new Error(`expected a rejection with ${name} ${code}; the promise resolved`);
}

const KINDS = [
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
] as const;

/** A view of `n` random elements that starts `lead` elements into its buffer (random bits: NaNs too). */
function randomView(Kind: (typeof KINDS)[number], n: number, lead: number): View {
  const buf = new ArrayBuffer((n + lead + 3) * Kind.BYTES_PER_ELEMENT);
  crypto.randomFillSync(new Uint8Array(buf));
  return new Kind(buf, lead * Kind.BYTES_PER_ELEMENT, n) as unknown as View;
}

function emptyLike(v: View): View {
  const Kind = v.constructor as new (n: number) => View;
  return new Kind(v.length);
}

describe('the simulated device', () => {
  // What another suite of this worker process left held (a device's split-K workspace is
  // kept for reuse: native/binding/gemm_int4_exports.h) is not this suite's.
  let before = 0;
  beforeEach(() => {
    before = held();
  });
  afterEach(() => {
    expect(held()).toBe(before); // every test frees what it allocated
  });

  test('one device, cuda-sim, sm 80, 4 GiB by default', () => {
    expect(sim.devices()).toEqual([{ device: 0, name: 'cuda-sim', sm: 80, totalMemory: 4 * 2 ** 30, multiprocessors: 132, simulated: true }]);
  });

  test.each(['sync', 'async'])('round trips of every TypedArray kind, odd sizes and offsets (%s)', async (mode) => {
    for (const Kind of KINDS) {
      for (const [n, offsetElems, lead] of [[1, 0, 0], [7, 3, 1], [33, 5, 2], [1001, 17, 3]]) {
        const E = Kind.BYTES_PER_ELEMENT;
        const total = (n + offsetElems + 2) * E + 3; // an odd-sized allocation around the data
        const h = sim.deviceAlloc({ bytes: total });
        try {
          // A known background, then the data at an odd byte offset.
          const background = crypto.randomBytes(total);
          sim.copyToDevice({ handle: h, src: background });
          const src = randomView(Kind, n, lead);
          const offset = offsetElems * E + 1;
          const dst = emptyLike(src);
          if (mode === 'sync') {
            sim.copyToDevice({ handle: h, offset, src });
            expect(sim.copyToHost({ handle: h, offset, dst })).toBe(dst);
          } else {
            await sim.copyToDeviceAsync({ handle: h, offset, src });
            expect(await sim.copyToHostAsync({ handle: h, offset, dst })).toBe(dst);
          }
          expect(bytesOf(dst).equals(bytesOf(src))).toBe(true);
          // Nothing outside [offset, offset + n*E) was touched.
          const whole = Buffer.alloc(total);
          sim.copyToHost({ handle: h, dst: whole });
          const want = Buffer.from(background);
          bytesOf(src).copy(want, offset);
          expect(whole.equals(want)).toBe(true);
        } finally {
          sim.deviceFree(h);
        }
      }
    }
  });

  test('device to device copies', () => {
    const a = sim.deviceAlloc({ bytes: 1000 });
    const b = sim.deviceAlloc({ bytes: 600 });
    try {
      const data = crypto.randomBytes(1000);
      sim.copyToDevice({ handle: a, src: data });
      sim.copyToDevice({ handle: b, src: new Uint8Array(600) });
      sim.copyDeviceToDevice({ dst: b, dstOffset: 99, src: a, srcOffset: 301, bytes: 500 });
      const out = sim.copyToHost({ handle: b, dst: new Uint8Array(600) });
      const want = Buffer.alloc(600);
      data.copy(want, 99, 301, 801);
      expect(Buffer.from(out).equals(want)).toBe(true);
      throwsCoded(() => sim.copyDeviceToDevice({ dst: b, src: a, bytes: 601 }), 'RangeError', 'ERR_NATIVE');
    } finally {
      sim.deviceFree(a);
      sim.deviceFree(b);
    }
  });

  test('100 concurrent async round trips, each with its own data; src reusable at once', async () => {
    const jobs = Array.from({ length: 100 }, (_, i) => {
      const n = 1 + ((i * 7919) % 5000);
      const src = new Float32Array(n);
      for (let j = 0; j < n; ++j) src[j] = i * 100000 + j;
      const h = sim.deviceAlloc({ bytes: n * 4 });
      const up = sim.copyToDeviceAsync({ handle: h, src });
      src.fill(-1); // staged at call time: reusing src does not change what lands on the device
      const down = sim.copyToHostAsync({ handle: h, dst: new Float32Array(n) });
      return { i, n, h, up, down };
    });
    const results = await Promise.all(jobs.map(async (j) => [await j.up, await j.down] as const));
    for (const j of jobs) {
      const got = results[j.i][1];
      expect(got.length).toBe(j.n);
      let ok = true;
      for (let k = 0; k < j.n; ++k) ok = ok && got[k] === j.i * 100000 + k;
      expect(ok).toBe(true);
      sim.deviceFree(j.h);
    }
  });

  test('memory() counts bytes held and the peak', () => {
    const base = held();
    const a = sim.deviceAlloc({ bytes: 1000 });
    const b = sim.deviceAlloc({ bytes: 3001 });
    const m = sim.memory().devices;
    expect(m).toHaveLength(1);
    expect(m[0].device).toBe(0);
    expect(m[0].bytes).toBe(base + 4001);
    expect(m[0].peakBytes).toBeGreaterThanOrEqual(base + 4001);
    sim.deviceFree(a);
    expect(held()).toBe(base + 3001);
    sim.deviceFree(b);
    expect(held()).toBe(base);
    expect(sim.memory().devices[0].peakBytes).toBeGreaterThanOrEqual(base + 4001);
    // Zero bytes: a handle that holds nothing.
    const z = sim.deviceAlloc({ bytes: 0 });
    expect(held()).toBe(base);
    sim.copyToDevice({ handle: z, src: new Uint8Array(0) });
    sim.deviceFree(z);
  });

  // The memory cache (native/cuda/runtime/block_cache.h). Size classes: 100000 and 110000 bytes
  // are both in the class 114688 (8 steps per power of two: 98304 < 100000 <= 114688), 120000 is
  // in 131072. The default cache limit here is 4 GiB / 8.
  test('the memory cache: a freed block is kept, the next allocation of its size class takes it, releaseCache frees it', () => {
    sim.releaseCache({});
    const m0 = dev0();
    expect(m0.cachedBytes).toBe(0);
    const a = sim.deviceAlloc({ bytes: 100000 });
    const m1 = dev0();
    expect(m1.bytes).toBe(m0.bytes + 100000);
    expect(m1.reservedBytes).toBe(m0.reservedBytes + 114688);
    sim.deviceFree(a);
    const m2 = dev0();
    expect(m2).toMatchObject({ bytes: m0.bytes, cachedBytes: 114688, reservedBytes: m1.reservedBytes });
    const b = sim.deviceAlloc({ bytes: 110000 }); // the cached block: nothing new reserved
    expect(dev0()).toMatchObject({ bytes: m0.bytes + 110000, cachedBytes: 0, reservedBytes: m1.reservedBytes });
    const c = sim.deviceAlloc({ bytes: 120000 }); // another class: a new block
    expect(dev0()).toMatchObject({ cachedBytes: 0, reservedBytes: m1.reservedBytes + 131072 });
    sim.deviceFree(b);
    sim.deviceFree(c);
    expect(dev0()).toMatchObject({ bytes: m0.bytes, cachedBytes: 114688 + 131072, reservedBytes: m1.reservedBytes + 131072 });
    expect(sim.releaseCache({ device: 0 })).toBe(114688 + 131072);
    expect(dev0()).toMatchObject({ bytes: m0.bytes, cachedBytes: 0, reservedBytes: m0.reservedBytes });
    expect(sim.releaseCache({})).toBe(0);
    throwsCoded(() => sim.releaseCache({ device: 3 }), 'Error', 'ERR_CUDA'); // the sim has one device here
  });

  test('every block handed out reads 0xFF until written (NaN in every float dtype), a reused one too', () => {
    sim.releaseCache({});
    const n = 5000;
    const a = sim.deviceAlloc({ bytes: n });
    const fresh = sim.copyToHost({ handle: a, dst: new Uint8Array(n) });
    expect(fresh.every((v) => v === 0xff)).toBe(true);
    sim.copyToDevice({ handle: a, src: crypto.randomBytes(n) });
    const reserved = dev0().reservedBytes;
    sim.deviceFree(a);
    const b = sim.deviceAlloc({ bytes: n });
    expect(dev0().reservedBytes).toBe(reserved); // the same block, from the cache
    const reused = sim.copyToHost({ handle: b, dst: new Uint8Array(n) });
    expect(reused.every((v) => v === 0xff)).toBe(true);
    expect(Number.isNaN(sim.copyToHost({ handle: b, dst: new Float32Array(1) })[0])).toBe(true);
    sim.deviceFree(b);
    sim.releaseCache({});
  });

  // CUDA makes the caller of a copy with pageable host memory wait for it; the sim does the same
  // and counts those copies (hostWaits). The async copies stage through page-locked memory.
  test('async copies never make the caller wait (page-locked staging); sync ones do; copyDeviceToDeviceAsync', async () => {
    const w0 = sim.hostWaits();
    const a = sim.deviceAlloc({ bytes: 4096 });
    const b = sim.deviceAlloc({ bytes: 4096 });
    const src = new Uint8Array(crypto.randomBytes(4096));
    await sim.copyToDeviceAsync({ handle: a, src });
    await sim.copyDeviceToDeviceAsync({ dst: b, dstOffset: 16, src: a, srcOffset: 8, bytes: 4000 });
    const got = await sim.copyToHostAsync({ handle: b, offset: 16, dst: new Uint8Array(4000) });
    expect(bytesOf(got).equals(bytesOf(src.subarray(8, 4008)))).toBe(true);
    expect(sim.hostWaits() - w0).toBe(0);
    sim.copyToHost({ handle: b, dst: new Uint8Array(16) });
    expect(sim.hostWaits() - w0).toBe(1);
    throwsCoded(() => sim.copyDeviceToDeviceAsync({ dst: b, dstOffset: 100, src: a, bytes: 4000 }), 'RangeError', 'ERR_NATIVE');
    await sim.copyDeviceToDeviceAsync({ dst: b, src: a, bytes: 0 }); // nothing to copy
    sim.deviceFree(a);
    sim.deviceFree(b);
    throwsCoded(() => sim.copyDeviceToDeviceAsync({ dst: b, src: a, bytes: 4 }), 'TypeError', 'ERR_DISPOSED');
  });

  test('a freed handle is ERR_DISPOSED; a second free is harmless; a copy in flight outlives the free', async () => {
    const h = sim.deviceAlloc({ bytes: 64 });
    sim.copyToDevice({ handle: h, src: new Uint32Array(16).fill(0xabcdef) });
    const pending = sim.copyToHostAsync({ handle: h, dst: new Uint32Array(16) });
    sim.deviceFree(h);
    sim.deviceFree(h);
    expect(Array.from(await pending)).toEqual(new Array(16).fill(0xabcdef));
    throwsCoded(() => sim.copyToDevice({ handle: h, src: new Uint8Array(1) }), 'TypeError', 'ERR_DISPOSED');
    throwsCoded(() => sim.copyToHost({ handle: h, dst: new Uint8Array(1) }), 'TypeError', 'ERR_DISPOSED');
    throwsCoded(() => sim.copyToDeviceAsync({ handle: h, src: new Uint8Array(1) }), 'TypeError', 'ERR_DISPOSED');
    throwsCoded(() => sim.copyToHostAsync({ handle: h, dst: new Uint8Array(1) }), 'TypeError', 'ERR_DISPOSED');
    const other = sim.deviceAlloc({ bytes: 8 });
    throwsCoded(() => sim.copyDeviceToDevice({ dst: other, src: h, bytes: 1 }), 'TypeError', 'ERR_DISPOSED');
    sim.deviceFree(other);
  });

  test('bad arguments are ERR_NATIVE; copies out of range are refused', async () => {
    throwsCoded(() => sim.deviceAlloc({ bytes: -1 }), 'RangeError', 'ERR_NATIVE');
    throwsCoded(() => sim.deviceAlloc({ bytes: 1.5 }), 'RangeError', 'ERR_NATIVE');
    throwsCoded(() => sim.deviceAlloc({ bytes: '8' as unknown as number }), 'TypeError', 'ERR_NATIVE');
    throwsCoded(() => (sim.deviceAlloc as unknown as () => void)(), 'TypeError', 'ERR_NATIVE');
    const e = throwsCoded(() => sim.deviceAlloc({ device: 1, bytes: 8 }), 'Error', 'ERR_CUDA');
    expect(e.cudaError).toBe('cudaErrorInvalidDevice');
    throwsCoded(() => sim.deviceFree({}), 'TypeError', 'ERR_NATIVE');
    throwsCoded(() => sim.copyToHost({ handle: {}, dst: new Uint8Array(1) }), 'TypeError', 'ERR_NATIVE');

    const h = sim.deviceAlloc({ bytes: 100 });
    try {
      throwsCoded(() => sim.copyToDevice({ handle: h, src: new Uint8Array(101) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToDevice({ handle: h, offset: 1, src: new Uint8Array(100) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToHost({ handle: h, offset: 97, dst: new Uint32Array(1) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToHost({ handle: h, offset: -1, dst: new Uint8Array(1) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToHost({ handle: h, offset: 2 ** 60, dst: new Uint8Array(1) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToDeviceAsync({ handle: h, offset: 99, src: new Uint16Array(1) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToHostAsync({ handle: h, offset: 100, dst: new Uint8Array(1) }), 'RangeError', 'ERR_NATIVE');
      throwsCoded(() => sim.copyToDevice({ handle: h, src: [1, 2] as unknown as Uint8Array }), 'TypeError', 'ERR_NATIVE');
      // The edge itself is fine.
      sim.copyToDevice({ handle: h, offset: 99, src: new Uint8Array([5]) });
      expect(sim.copyToHost({ handle: h, offset: 99, dst: new Uint8Array(1) })[0]).toBe(5);
      // A dst detached while its copy is in flight: the promise rejects, nothing is written.
      const dst = new Uint8Array(100);
      const p = sim.copyToHostAsync({ handle: h, dst });
      structuredClone(dst.buffer, { transfer: [dst.buffer] });
      await rejectsCoded(p, 'TypeError', 'ERR_DETACHED');
      // A detached src is refused at once.
      const src = new Uint8Array(4);
      structuredClone(src.buffer, { transfer: [src.buffer] });
      throwsCoded(() => sim.copyToDevice({ handle: h, src }), 'TypeError', 'ERR_DETACHED');
    } finally {
      sim.deviceFree(h);
    }
  });

  test('streams: kernels on the worker, events, host callbacks, a refused launch is sticky, destruction drains', () => {
    const r = sim.streamSelfTest();
    expect(r).toMatchObject({ filled: true, eventsDone: true, callbackOk: true, callbackSawError: true, skippedAfterError: true, drained: true });
    expect(r.stickyName).toBe('cudaErrorLaunchFailure');
    expect(r.stickyMessage).toMatch(/kernel selftest_bad_barrier, block \(0,0,0\), thread \(0,0,0\)/);
    expect(r.elapsedMs as number).toBeGreaterThanOrEqual(0);
  });
});

describe('the simulated device in child processes', () => {
  const load = `const sim = require(${JSON.stringify(ADDON)});`;

  test('out of memory under COMPRESSED_GEMM_SIM_MEMORY: ERR_CUDA_OOM, sync and later allocations work', () => {
    const r = runChild(
      `${load}
const limit = sim.devices()[0].totalMemory;
const a = sim.deviceAlloc({ bytes: 600000 });
let err = null;
try { sim.deviceAlloc({ bytes: 600000 }); } catch (e) { err = { code: e.code, cudaError: e.cudaError, isError: e instanceof Error, device: e.device, bytes: e.bytes, message: e.message }; }
const afterFail = sim.memory().devices[0].bytes;
sim.deviceFree(a);
const b = sim.deviceAlloc({ bytes: 1 << 20 });
sim.copyToDevice({ handle: b, offset: (1 << 20) - 4, src: new Uint32Array([42]) });
const back = sim.copyToHost({ handle: b, offset: (1 << 20) - 4, dst: new Uint32Array(1) })[0];
let big = null;
try { sim.deviceAlloc({ bytes: (1 << 20) + 1 }); } catch (e) { big = e.code; }
sim.deviceFree(b);
out({ limit, err, afterFail, back, big, end: sim.memory().devices[0] });`,
      { COMPRESSED_GEMM_SIM_MEMORY: String(1 << 20) },
      { entry: 'none' },
    );
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    const v = r.value as Record<string, any>;
    expect(v.limit).toBe(1 << 20);
    expect(v.err).toMatchObject({ code: 'ERR_CUDA_OOM', cudaError: 'cudaErrorMemoryAllocation', isError: true, device: 0, bytes: 600000 });
    expect(v.err.message).toMatch(/out of device memory/);
    expect(v.afterFail).toBe(600000);
    expect(v.back).toBe(42);
    expect(v.big).toBe('ERR_CUDA_OOM');
    // 600000 bytes (size class 655360) and 1 MiB are larger than the cache's limit (1 MiB / 8): freed, not cached.
    expect(v.end).toEqual({ device: 0, bytes: 0, peakBytes: 1 << 20, cachedBytes: 0, reservedBytes: 0 });
  });

  test('the cache keeps at most COMPRESSED_GEMM_CUDA_CACHE_BYTES, evicting the least recently freed; 0 caches nothing', () => {
    // Classes: 100000 -> 114688, 200000 -> 229376.
    const body = `${load}
const m = () => sim.memory().devices[0];
const a = [0, 1, 2].map(() => sim.deviceAlloc({ bytes: 100000 }));
for (const h of a) sim.deviceFree(h);
const afterThree = m();
const big = sim.deviceAlloc({ bytes: 200000 });
sim.deviceFree(big);
const afterBig = m();
const again = sim.deviceAlloc({ bytes: 200000 }); // the cached one
const afterAgain = m();
sim.deviceFree(again);
out({ afterThree, afterBig, afterAgain });`;
    const r = runChild(body, { COMPRESSED_GEMM_CUDA_CACHE_BYTES: '250000' }, { entry: 'none' });
    if (r.value === undefined) throw new Error(describeChild(r));
    const v = r.value as Record<string, Record<string, number>>;
    expect(v.afterThree).toMatchObject({ bytes: 0, cachedBytes: 2 * 114688, reservedBytes: 2 * 114688 }); // the third did not fit
    expect(v.afterBig).toMatchObject({ bytes: 0, cachedBytes: 229376, reservedBytes: 229376 }); // both older blocks evicted
    expect(v.afterAgain).toMatchObject({ bytes: 200000, cachedBytes: 0, reservedBytes: 229376 });
    const off = runChild(body, { COMPRESSED_GEMM_CUDA_CACHE_BYTES: '0' }, { entry: 'none' });
    if (off.value === undefined) throw new Error(describeChild(off));
    const o = off.value as Record<string, Record<string, number>>;
    expect(o.afterThree).toMatchObject({ bytes: 0, cachedBytes: 0, reservedBytes: 0 });
    expect(o.afterAgain).toMatchObject({ bytes: 200000, cachedBytes: 0, reservedBytes: 229376 });
  });

  test('an allocation that does not fit empties the cache and is tried again', () => {
    const r = runChild(
      `${load}
const a = sim.deviceAlloc({ bytes: 100000 });
sim.deviceFree(a); // cached: 114688 bytes (the limit is 1 MiB / 8)
const cached = sim.memory().devices[0].cachedBytes;
const b = sim.deviceAlloc({ bytes: 1 << 20 }); // all of the device: fits only without the cached block
const during = sim.memory().devices[0];
sim.deviceFree(b);
out({ cached, during });`,
      { COMPRESSED_GEMM_SIM_MEMORY: String(1 << 20) },
      { entry: 'none' },
    );
    if (r.value === undefined) throw new Error(describeChild(r));
    const v = r.value as { cached: number; during: Record<string, number> };
    expect(v.cached).toBe(114688);
    expect(v.during).toMatchObject({ bytes: 1 << 20, cachedBytes: 0, reservedBytes: 1 << 20 });
  });

  test('the finalizer frees handles the JS side forgot', () => {
    const r = runChild(
      `${load}
(function () { for (let i = 0; i < 64; i++) { const h = sim.deviceAlloc({ bytes: 1 << 20 }); sim.copyToDevice({ handle: h, src: new Uint8Array(16) }); } })();
const before = sim.memory().devices[0].bytes;
let after = before;
for (let i = 0; i < 100 && after > 0; i++) {
  global.gc();
  await new Promise((r) => setImmediate(r));
  after = sim.memory().devices[0].bytes;
}
out({ before, after });`,
      {},
      { entry: 'none', nodeArgs: ['--expose-gc'] },
    );
    expect(r.error).toBeUndefined();
    expect(r.value).toEqual({ before: 64 << 20, after: 0 });
  });

  // A worker keeps many large async copies in flight (each one that settles is replaced); the
  // parent terminates it after a varying delay, or the worker exits from a completion after a
  // varying number of them; then the parent checks that its own copies still work.
  const WORKER = `
const { parentPort, workerData } = require('worker_threads');
const sim = require(workerData.addon);
const n = 1 << 20;
const handles = Array.from({ length: 8 }, () => sim.deviceAlloc({ bytes: n * 4 }));
const src = new Float32Array(n).fill(1);
let k = 0;
let settled = 0;
function done() {
  // 'exit': the worker exits itself from a completion, with the others still in flight.
  if (workerData.mode === 'exit' && settled++ === workerData.delay) process.exit(0);
  more();
}
function more() {
  const h = handles[k++ % handles.length];
  sim.copyToDeviceAsync({ handle: h, src }).then(() => sim.copyToHostAsync({ handle: h, dst: new Float32Array(n) })).then(done, done);
}
for (let i = 0; i < 16; i++) more();
parentPort.postMessage('running');
`;

  test('a worker terminated (or exiting) with copies in flight does not crash the process', () => {
    const r = runChild(
      `${load}
const { Worker } = require('worker_threads');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const exits = [];
for (let i = 0; i < 8; i++) {
  const mode = i % 2 ? 'exit' : 'terminate';
  const w = new Worker(${JSON.stringify(WORKER)}, { eval: true, workerData: { addon: ${JSON.stringify(ADDON)}, mode, delay: i * 3 } });
  const exited = new Promise((r) => w.on('exit', r));
  w.on('error', (e) => exits.push('error: ' + e.message));
  await new Promise((r) => w.once('message', r));
  if (mode === 'terminate') { await sleep(i * 3); await w.terminate(); }
  exits.push(await exited);
}
const h = sim.deviceAlloc({ bytes: 4096 });
const src = Float64Array.from({ length: 512 }, (_, i) => i * 0.5);
await sim.copyToDeviceAsync({ handle: h, src });
const back = await sim.copyToHostAsync({ handle: h, dst: new Float64Array(512) });
sim.deviceFree(h);
out({ exits, ok: back.every((x, i) => x === i * 0.5) });`,
      {},
      { entry: 'none', timeoutMs: 60000 },
    );
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toMatch(/terminate called|FATAL|Abort|Segmentation/);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    if (r.value === undefined) throw new Error(describeChild(r));
    const v = r.value as { exits: unknown[]; ok: boolean };
    expect(v.ok).toBe(true);
    expect(v.exits).toHaveLength(8);
    for (const e of v.exits) expect(typeof e).toBe('number');
  });

  test('process.exit() with copies in flight exits with its status', () => {
    const r = runChild(
      `${load}
const n = 1 << 18;
const h = sim.deviceAlloc({ bytes: n * 4 });
for (let i = 0; i < 32; i++) { sim.copyToDeviceAsync({ handle: h, src: new Float32Array(n) }); sim.copyToHostAsync({ handle: h, dst: new Float32Array(n) }); }
setTimeout(() => process.exit(7), 2);`,
      {},
      { entry: 'none' },
    );
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toMatch(/terminate called|FATAL|Abort|Segmentation/);
    expect(r.status).toBe(7);
  });
});

const cudaBuilt = fs.existsSync(CUDA_ADDON);
(cudaBuilt ? describe : describe.skip)('the CUDA addon: the same exports', () => {
  test('deviceAlloc throws a coded error where no device is usable, or round-trips where one is', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cuda = require(CUDA_ADDON) as DeviceAddon & { probe(): { ok: boolean; deviceCount: number } };
    for (const name of ['devices', 'deviceAlloc', 'deviceFree', 'copyToDevice', 'copyToDeviceAsync', 'copyToHost', 'copyToHostAsync', 'copyDeviceToDevice', 'memory']) {
      expect(typeof (cuda as unknown as Record<string, unknown>)[name]).toBe('function');
    }
    expect(Array.isArray(cuda.memory().devices)).toBe(true);
    throwsCoded(() => cuda.deviceAlloc({ bytes: -1 }), 'RangeError', 'ERR_NATIVE');
    const probe = cuda.probe();
    if (!probe.ok || probe.deviceCount === 0) {
      const e = throwsCoded(() => cuda.deviceAlloc({ bytes: 1024 }), 'Error', 'ERR_CUDA');
      expect(e.cudaError).toMatch(/^cudaError/);
      throwsCoded(() => cuda.devices(), 'Error', 'ERR_CUDA');
      return;
    }
    const h = cuda.deviceAlloc({ bytes: 4096 });
    const src = crypto.randomBytes(4000);
    cuda.copyToDevice({ handle: h, offset: 3, src });
    expect(Buffer.from(cuda.copyToHost({ handle: h, offset: 3, dst: new Uint8Array(4000) })).equals(src)).toBe(true);
    await cuda.copyToDeviceAsync({ handle: h, src: src.subarray(0, 1000) });
    const back = await cuda.copyToHostAsync({ handle: h, dst: new Uint8Array(1000) });
    expect(Buffer.from(back).equals(src.subarray(0, 1000))).toBe(true);
    cuda.deviceFree(h);
    const oom = throwsCoded(() => cuda.deviceAlloc({ bytes: 2 ** 52 }), 'Error', 'ERR_CUDA_OOM');
    expect(oom.cudaError).toBe('cudaErrorMemoryAllocation');
  });
});
