/**
 * LoRA on the CUDA backend (linear with `lora`, linearMultiLora): the term alpha (X Aᵀ) Bᵀ fused
 * into the GEMM's epilogue (native/cuda/lora_epilogue.h), for every format with a CUDA kernel.
 *
 *   1. T = X·A_allᵀ [M, rsum] in float32, by the float32 GEMM (gemm_dense_f32.cuh), from x as
 *      given (float32, or 16-bit widened exactly) and the adapters' A stacked [rsum, K] in float32:
 *      t is x Aᵀ in float32, as on the CPU (the main product takes x in the weight's dtype);
 *   2. the main kernel adds alpha[m] Σ_j T[m][off[m] + j] Bt[off[m] + j][n] to each output, from
 *      the adapters' B transposed and stacked [rsum, N], row m using its adapter's rows (off[m],
 *      r[m]; r = 0 for -1): one adapter for every row, or one per row (S-LoRA / Punica's grouping
 *      by adapter, here by row table), adapters of any rank (1 to 65,536) and any N and K.
 * Each adapter's A (padded to K4 = K rounded up to 4) and Bᵀ are uploaded once per device and
 * kept with the adapter (freed with it by the garbage collector); a call with several adapters
 * stacks them on the device (device-to-device copies). Every computed row of T costs M x rsum x K
 * FMAs: rows multiply every adapter of the call, not only their own (the simple form of SGMV; a
 * segmented T is the later optimisation when many adapters share a batch).
 */
import { FLOAT_DTYPES, FloatDType } from '../dtype';
import { withNativeErrors } from '../errors';
import type { DeviceAddon, DeviceHandle } from '../native/cuda';
import type { NativeLoraArgs } from '../native/cpu';
import { cpuBackend } from './cpu';
import { asWeightDtype, padColumns, upload } from './cuda-common';

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

/** The `lora` argument of a kernel call, with the temporaries to free after it. */
export interface DeviceLora {
  arg: { t: DeviceHandle; bt: DeviceHandle; rows: DeviceHandle; table: Int32Array; rsum: number };
  temporaries: DeviceHandle[];
  /** The T GEMM's completion, when enqueued asynchronously. */
  done: Promise<void> | null;
}

/**
 * Computes T on the device (enqueued before the main kernel on the same stream) and builds the
 * row table; x is the host x as given (dtype xDtype, [M, K]).
 */
export function prepareLora(
  d: DeviceAddon, device: number, lora: NativeLoraArgs, x: ArrayBufferView, xDtype: FloatDType, M: number, N: number, K: number, async: boolean,
): DeviceLora {
  const temporaries: DeviceHandle[] = [];
  const temp = (h: DeviceHandle) => (temporaries.push(h), h);
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
      copies.forEach((c, i) => {
        const r = lora.adapters[i].r;
        withNativeErrors(() => d.copyDeviceToDevice({ dst: aAll, dstOffset: offsets[i] * K4 * 4, src: c.a, bytes: r * K4 * 4 }));
        withNativeErrors(() => d.copyDeviceToDevice({ dst: btAll, dstOffset: offsets[i] * N * 4, src: c.bt, bytes: r * N * 4 }));
      });
    }
    const x32 = temp(upload(d, device, padColumns(asWeightDtype(x, xDtype, 'float32'), FLOAT_DTYPES.float32.bytes, M, K, K4)));
    const t = temp(withNativeErrors(() => d.deviceAlloc({ device, bytes: M * rsum * 4 })));
    const gemm = { x: x32, w: aAll, bias: null, out: t, M, N: rsum, K: K4, dtype: 'float32' as const, outDtype: 'float32' as const };
    let done: Promise<void> | null = null;
    if (async) done = d.linearDenseAsync(gemm);
    else withNativeErrors(() => d.linearDense(gemm));

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
    return { arg: { t, bt: btAll, rows, table, rsum }, temporaries, done };
  } catch (e) {
    for (const h of temporaries) d.deviceFree(h);
    throw e;
  }
}
