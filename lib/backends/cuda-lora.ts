/**
 * LoRA on the CUDA backend (linear with `lora`, linearMultiLora): the term alpha (X Aᵀ) Bᵀ fused
 * into the GEMM's epilogue (native/cuda/lora_epilogue.h), for every format with a CUDA kernel.
 *
 *   1. T [M, rmax] = each row's x·Aᵀ against its own adapter only (Punica's SGMV shrink:
 *      native/cuda/lora_shrink.cuh), in float32 from x as given (float32, or 16-bit widened
 *      exactly; a host array or a device tensor), one FMA chain over k per value, as on the CPU
 *      (the main product takes x in the weight's dtype). The rows are grouped by adapter into
 *      tiles of 8 (shrinkTiles), so a batch of many adapters costs M · r · K multiply-adds, not
 *      M · Σr · K; rows without an adapter (-1) cost nothing;
 *   2. the main kernel adds alpha[m] Σ_j T[m][j] Bt[off[m] + j][n] to each output, from the
 *      adapters' B transposed and stacked [rsum, N] (off[m]: row m's adapter's first row; r = 0
 *      for -1): one adapter for every row, or one per row, adapters of any rank (1 to 65,536)
 *      and any N and K.
 * Each adapter's A (padded to K4 = K rounded up to 4) and Bᵀ are uploaded once per device and
 * kept with the adapter (freed with it by the garbage collector); a call with several adapters
 * stacks them on the device (device-to-device copies).
 */
import type { FloatDType } from '../dtype';
import { withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { DeviceAddon, DeviceHandle, DeviceLoraArg } from '../native/cuda';
import type { NativeLoraArgs } from '../native/cpu';
import { cpuBackend } from './cpu';
import { abandonCall, deviceAddon, padColumns, upload, uploaderFor } from './cuda-common';

/** The device copies of one adapter: A [r, K4] and Bᵀ [r, N], float32. */
interface DeviceAdapter {
  a: DeviceHandle;
  bt: DeviceHandle;
}

/** Per adapter (its packed A buffer, the same object for every call with it), per device. */
const DEVICE_COPIES = new WeakMap<ArrayBuffer, Map<number, DeviceAdapter>>();

function deviceCopies(d: DeviceAddon, device: number, ad: NativeLoraArgs['adapters'][number], N: number, K: number): DeviceAdapter {
  let perDevice = DEVICE_COPIES.get(ad.a);
  if (!perDevice) DEVICE_COPIES.set(ad.a, (perDevice = new Map()));
  let c = perDevice.get(device);
  if (c) return c;
  const r = ad.r, K4 = Math.ceil(K / 4) * 4;
  const A = new Float32Array(r * K), B = new Float32Array(N * r);
  cpuBackend.toDense({ format: 'dense', N: r, K, dtype: 'float32' }, { backend: 'cpu', data: ad.a, byteLength: ad.a.byteLength } as never, A);
  cpuBackend.toDense({ format: 'dense', N, K: r, dtype: 'float32' }, { backend: 'cpu', data: ad.b, byteLength: ad.b.byteLength } as never, B);
  const Bt = new Float32Array(r * N);
  for (let n = 0; n < N; ++n) for (let j = 0; j < r; ++j) Bt[j * N + n] = B[n * r + j];
  const a = upload(d, device, padColumns(A, 4, r, K, K4));
  let bt: DeviceHandle;
  try {
    bt = upload(d, device, Bt);
  } catch (e) {
    d.deviceFree(a);
    throw e;
  }
  c = { a, bt };
  perDevice.set(device, c);
  return c;
}

/**
 * Frees an adapter's device copies now, on every device (LoraAdapter.dispose): calls in flight
 * keep theirs until they finish (the native handles hold the memory).
 */
export function releaseDeviceCopies(a: ArrayBuffer): void {
  const perDevice = DEVICE_COPIES.get(a);
  if (!perDevice) return;
  DEVICE_COPIES.delete(a);
  const d = deviceAddon();
  for (const c of perDevice.values()) {
    d.deviceFree(c.a);
    d.deviceFree(c.bt);
  }
}

/** The `lora` argument of a kernel call, with the temporaries to free after it. */
export interface DeviceLora {
  arg: DeviceLoraArg;
  temporaries: DeviceHandle[];
  /**
   * When enqueued asynchronously: settles once the term's uploads, copies and shrink kernel have
   * run (null: sync, or nothing queued).
   */
  done: Promise<void> | null;
}

/** Rows per tile of the shrink kernel (native/cuda/lora_shrink.cuh, kShrinkRows), and words per tile. */
const SHRINK_ROWS = 8;
const TILE_WORDS = 2 + SHRINK_ROWS;

/**
 * The shrink kernel's tile table: the rows of each adapter (a segment), in tiles of up to 8 rows
 * that share one adapter (off, r, then the row indices, -1 for an empty slot); rows without an
 * adapter are in no tile. Also the largest rank among the adapters that have rows (0: none).
 */
export function shrinkTiles(rowAdapter: Int32Array | null, M: number, offsets: number[], ranks: number[]): { tiles: Int32Array; rmax: number } {
  const rowsOf: number[][] = ranks.map(() => []);
  for (let m = 0; m < M; ++m) {
    const a = rowAdapter ? rowAdapter[m] : 0;
    if (a >= 0) rowsOf[a].push(m);
  }
  const words: number[] = [];
  let rmax = 0;
  rowsOf.forEach((rows, a) => {
    if (rows.length > 0) rmax = Math.max(rmax, ranks[a]);
    for (let i = 0; i < rows.length; i += SHRINK_ROWS) {
      words.push(offsets[a], ranks[a]);
      for (let q = 0; q < SHRINK_ROWS; ++q) words.push(i + q < rows.length ? rows[i + q] : -1);
    }
  });
  return { tiles: Int32Array.from(words), rmax };
}

/**
 * Enqueues T (the shrink kernel: each row's x·Aᵀ against its own adapter only, before the main
 * kernel on the same stream) and builds the row table. x is the host x as given (`host`, dtype
 * xDtype, [M, K]: uploaded as it is) or a device tensor's memory (`device`, [M, K] of xDtype).
 */
export function prepareLora(
  d: DeviceAddon, device: number, lora: NativeLoraArgs, x: { host: ArrayBufferView } | { device: DeviceHandle }, xDtype: FloatDType, M: number, N: number, K: number,
  async: boolean,
): DeviceLora {
  const temporaries: DeviceHandle[] = [];
  const temp = (h: DeviceHandle) => (temporaries.push(h), h);
  // Async: what is queued before the shrink, so that the JS thread never waits for the stream.
  const queued: Array<Promise<unknown>> = [];
  const put = uploaderFor(d, device, async, temporaries, queued);
  try {
    const copies = lora.adapters.map((a) => deviceCopies(d, device, a, N, K));
    const offsets: number[] = [];
    let rsum = 0;
    for (const a of lora.adapters) {
      offsets.push(rsum);
      rsum += a.r;
    }
    const K4 = Math.ceil(K / 4) * 4;
    let aAll = copies[0].a, btAll = copies[0].bt;
    if (copies.length > 1) {
      aAll = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: rsum * K4 * 4 })));
      btAll = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: rsum * N * 4 })));
      const d2d = (a: { dst: DeviceHandle; dstOffset: number; src: DeviceHandle; bytes: number }) => {
        if (async) queued.push(withNativeErrorsAsync(() => d.copyDeviceToDeviceAsync(a)));
        else withNativeErrors(() => d.copyDeviceToDevice(a));
      };
      copies.forEach((c, i) => {
        const r = lora.adapters[i].r;
        d2d({ dst: aAll, dstOffset: offsets[i] * K4 * 4, src: c.a, bytes: r * K4 * 4 });
        d2d({ dst: btAll, dstOffset: offsets[i] * N * 4, src: c.bt, bytes: r * N * 4 });
      });
    }
    const { tiles, rmax } = shrinkTiles(lora.rowAdapter, M, offsets, lora.adapters.map((a) => a.r));
    const tld = Math.max(rmax, 1);
    const t = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: M * tld * 4 })));
    if (tiles.length > 0) {
      const xh = 'device' in x ? x.device : put(x.host);
      const tilesDev = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: tiles.byteLength })));
      const shrink = { x: xh, xDtype, M, K, a: aAll, lda: K4, rsum, tiles, tilesDev, t, tld };
      if (async) queued.push(d.loraShrinkAsync(shrink));
      else withNativeErrors(() => d.loraShrink(shrink));
    }
    const done = queued.length > 0 ? Promise.all(queued).then(() => undefined) : null;

    const table = new Int32Array(3 * M);
    const alphas = new Float32Array(table.buffer, 8 * M, M);
    for (let m = 0; m < M; ++m) {
      const a = lora.rowAdapter ? lora.rowAdapter[m] : 0;
      if (a < 0) continue; // r = 0: no LoRA term
      table[m] = offsets[a];
      table[M + m] = lora.adapters[a].r;
      alphas[m] = lora.adapters[a].alpha;
    }
    const rows = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: 12 * M })));
    return { arg: { t, bt: btAll, rows, table, rsum, tld }, temporaries, done };
  } catch (e) {
    abandonCall(d, temporaries, queued);
    throw e;
  }
}
