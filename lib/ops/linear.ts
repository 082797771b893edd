/**
 * cg.linear: Y = X · Wᵀ (+ bias) (+ low-rank terms), dispatched by the routing table.
 *
 * Every call has two phases. First each argument is read exactly once, into plain values: that
 * is the only time user code (getters, Proxies) can run. Then those values are checked and the
 * call acts on them alone, so nothing a getter does can change what was checked: no getter runs
 * after the busy check or between a check and the native call.
 */
import { route } from '../backends/routing';
import { selectBackend } from '../backends/select';
import { FloatArray, FloatDType, allocFloatUnfilled, isFloatDType } from '../dtype';
import { CgRangeError, CgTypeError, fromNative, notSupported, show, thrownReason } from '../errors';
import { WeightParams, valueDtype } from '../native/descriptor';
import { checkFloatArray, checkProduct, checkShape2, checkThreads, checkTypedArray, readOptions, typedArrayKind } from '../validate';
import { Weight, checkReadable, deviceOf, paramsOf, placementOn, useDuring } from '../weights/weight';
import type { Backend, LinearPlan } from '../backends/backend';
import { checkDeviceDtype, checkDeviceK, deviceAddon, runOnDevice, upload, uploadAsync } from '../backends/cuda';
import type { DeviceHandle } from '../native/cuda';
import { Tensor, handleOf, isTensor } from '../tensor';
import { LoraAdapter, LoraFactors, MAX_ADAPTERS, adapterFor, asFloat32, loraArgs } from './lora';

export interface LinearOptions {
  /** dtype of x: needed when x is a Uint16Array ('float16' or 'bfloat16'). */
  dtype?: FloatDType;
  /** [N] bias: a Float32Array, or a Uint16Array in x's dtype. */
  bias?: FloatArray;
  /** dtype of the result; defaults to x's dtype (as torch.nn.functional.linear does). */
  outDtype?: FloatDType;
  /** Write the result here ([M, N], the TypedArray of outDtype) instead of a new array. */
  out?: FloatArray;
  /** CPU threads for this call (default: cg.setThreads / COMPRESSED_GEMM_THREADS / all cores). */
  threads?: number;
  /**
   * 'native' (default): activations as given. With an INT4 or FP8 weight, 'fp8' quantizes them to
   * e4m3 per row (per row and K block when the FP8 weight has block scales) and 'int8' (INT4
   * weights) to int8 per row, before the product (README "Quantized activations").
   */
  activations?: 'native' | 'fp8' | 'int8';
  /** Fused LoRA term alpha (X Aᵀ) Bᵀ: a LoraAdapter, or { A [r, K], B [N, r], alpha } (checked and packed per call). */
  lora?: LoraAdapter | LoraFactors;
}

/** The options of a call on a device tensor x: `out`, when given, is a device tensor [M, N] on x's device. */
export interface DeviceLinearOptions extends Omit<LinearOptions, 'out'> {
  /** Write the result into this device tensor ([M, N], outDtype's dtype, on x's device) instead of a new one. */
  out?: Tensor;
}

const OPTION_KEYS = ['dtype', 'bias', 'outDtype', 'out', 'threads', 'activations', 'lora'] as const;

interface Prepared {
  backend: Backend;
  weight: Weight;
  params: WeightParams;
  plan: Omit<LinearPlan, 'out' | 'outPrivate'>;
  /** The caller's `out`, checked, or null: the result is a new array. */
  out: FloatArray | null;
  /** What the call returns with the caller's `out`: the object it passed. */
  callerOut: FloatArray | null;
  N: number;
}

/** Reads an array-like argument once: its length, then each element, as plain values. */
function readList(v: unknown, name: string, max: number): unknown[] {
  let len: unknown;
  try {
    len = (v as { length: unknown }).length;
  } catch (e) {
    throw new CgTypeError('ERR_INVALID_ARG', `${name} could not be read: ${thrownReason(e)}`);
  }
  if (!Number.isSafeInteger(len) || (len as number) < 0) throw new CgTypeError('ERR_INVALID_ARG', `${name} has no valid length`);
  if ((len as number) > max) throw new CgRangeError('ERR_INVALID_ARG', `${name} has ${len} entries; at most ${max}`);
  const out = new Array<unknown>(len as number);
  try {
    for (let i = 0; i < out.length; ++i) out[i] = (v as Record<number, unknown>)[i];
  } catch (e) {
    throw new CgTypeError('ERR_INVALID_ARG', `${name} could not be read: ${thrownReason(e)}`);
  }
  return out;
}

/**
 * The adapters of a call, read once (phase 1): linearMultiLora's list and per-row indices (none
 * when no row has one), or the `lora` option's one adapter for every row.
 */
function readAdapters(
  o: { lora?: unknown }, multi: { adapters: unknown; index: unknown } | undefined, M: number, N: number, K: number,
): { adapters: LoraAdapter[]; rowAdapter: Int32Array | null } {
  if (!multi) return { adapters: o.lora !== undefined && o.lora !== null ? [adapterFor(o.lora, N, K, 'lora')] : [], rowAdapter: null };
  if (o.lora !== undefined && o.lora !== null) throw new CgTypeError('ERR_INVALID_ARG', 'linearMultiLora takes its adapters as arguments, not the lora option');
  if (!Array.isArray(multi.adapters)) throw new CgTypeError('ERR_INVALID_ARG', 'adapters must be an array of LoraAdapter or { A, B, alpha }');
  const specs = readList(multi.adapters, 'adapters', MAX_ADAPTERS);
  const kind = typedArrayKind(multi.index);
  if (kind !== 'Int32Array' && !Array.isArray(multi.index)) throw new CgTypeError('ERR_INVALID_ARG', 'adapterIndexPerRow must be an Int32Array or an array of integers');
  const idx = kind === 'Int32Array' ? Array.from(checkTypedArray<Int32Array>(multi.index, 'Int32Array', 'adapterIndexPerRow')) : readList(multi.index, 'adapterIndexPerRow', M + 1);
  if (idx.length !== M) throw new CgRangeError('ERR_SHAPE_MISMATCH', `adapterIndexPerRow has ${idx.length} entries; x has M = ${M} rows`);
  const adapters = specs.map((a, i) => adapterFor(a, N, K, `adapters[${i}]`));
  const rowAdapter = new Int32Array(M);
  let used = false;
  for (let m = 0; m < M; ++m) {
    const a = idx[m];
    if (typeof a !== 'number' || !Number.isInteger(a)) throw new CgRangeError('ERR_INVALID_ARG', `adapterIndexPerRow[${m}] = ${show(a)} is not an integer`);
    if (a < -1 || a >= adapters.length) throw new CgRangeError('ERR_INVALID_ARG', `adapterIndexPerRow[${m}] = ${a} is not -1 or an adapter index (0..${adapters.length - 1})`);
    rowAdapter[m] = a;
    used = used || a >= 0;
  }
  return used ? { adapters, rowAdapter } : { adapters: [], rowAdapter };
}

function prepare(x: unknown, xShape: unknown, w: unknown, options: unknown, multi?: { adapters: unknown; index: unknown }): Prepared {
  // ---- phase 1: read every argument once (user code can run only here) ----
  const [M, K] = checkShape2(xShape, ['M', 'K']);
  const params = paramsOf(w);
  const weight = w as Weight;
  const N = params.N;
  if (params.K !== K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `x has K = ${K} columns but the weight has K = ${params.K}`);
  checkProduct(M, N, 'M*N');
  const o = readOptions(options, 'options', OPTION_KEYS);
  const { adapters, rowAdapter } = readAdapters(o, multi, M, N, K);

  // ---- phase 2: check the values read; no user code runs from here on ----
  const activations = o.activations === undefined ? 'native' : o.activations;
  if (activations !== 'native' && activations !== 'fp8' && activations !== 'int8') {
    throw new CgRangeError('ERR_INVALID_ARG', `activations must be 'native', 'fp8' or 'int8', got ${show(o.activations)}`);
  }
  const op = adapters.length > 0 ? 'linear+lora' : 'linear';
  const backend = route(op, params.format, activations, selectBackend().info.kind, valueDtype(params)); // ERR_NOT_SUPPORTED says why
  const xa = checkFloatArray(x, o.dtype, M * K, 'x');
  const outDtype = o.outDtype ?? xa.dtype;
  if (!isFloatDType(outDtype)) throw new CgTypeError('ERR_DTYPE', `unknown outDtype ${show(outDtype)} (float32, float16, bfloat16)`);
  const out = o.out === undefined ? null : checkFloatArray(o.out, outDtype, M * N, 'out').array;
  let bias: Float32Array | null = null;
  if (o.bias !== undefined && o.bias !== null) {
    const kind = typedArrayKind(o.bias);
    if (kind === 'Float32Array') {
      bias = checkFloatArray(o.bias, 'float32', N, 'bias').array as Float32Array;
    } else if (kind === 'Uint16Array' && xa.dtype !== 'float32') {
      bias = asFloat32(checkFloatArray(o.bias, xa.dtype, N, 'bias').array, xa.dtype);
    } else {
      throw new CgTypeError('ERR_DTYPE', "bias must be a Float32Array, or a Uint16Array in x's 16-bit dtype");
    }
  }
  const threads = o.threads === undefined ? selectBackend().threads : checkThreads(o.threads, 'threads');
  checkReadable(weight);
  // fp8 activations get one scale per row, or per K block where the FP8 weight has block scales.
  const actBlock = activations === 'fp8' && params.format === 'fp8' && params.bk < K ? params.bk : 0;
  const plan: Omit<LinearPlan, 'out' | 'outPrivate'> = {
    M, x: xa.array, xDtype: xa.dtype, bias, outDtype, threads, activations, actBlock,
    lora: adapters.length > 0 ? loraArgs(adapters, rowAdapter) : null,
  };
  return { backend, weight, params, plan, out, callerOut: out && (o.out as FloatArray), N };
}

/**
 * The plan with its `out`: the caller's, or a new unfilled array that no other code can reach
 * until the call is done, so an async call may write into it in place (NativeLinearArgs.outPrivate):
 * the event loop then neither fills nor copies a result (README "Async calls under load").
 */
function withOut(p: Prepared): LinearPlan {
  if (p.out !== null) return { ...p.plan, out: p.out, outPrivate: false };
  return { ...p.plan, out: allocFloatUnfilled(p.plan.outDtype, p.plan.M * p.N), outPrivate: true };
}

function run(p: Prepared): FloatArray {
  const plan = withOut(p);
  p.backend.linear(p.params, placementOn(p.weight, p.backend, deviceOf(p.weight)), plan);
  return p.callerOut ?? (plan.out as FloatArray);
}

async function runAsync(p: Prepared): Promise<FloatArray> {
  const placement = placementOn(p.weight, p.backend, deviceOf(p.weight));
  const plan = withOut(p);
  await useDuring(p.weight, 'read', () => p.backend.linearAsync(p.params, placement, plan));
  return p.callerOut ?? (plan.out as FloatArray);
}

/**
 * Y = X · Wᵀ (+ bias) for x [M, K] and a weight [N, K]; returns Y [M, N] (or fills `out`). With
 * a device tensor x (cg.Tensor, CUDA backend) Y is a new device tensor.
 */
export function linear(x: Tensor, xShape: [number, number], w: Weight, options?: DeviceLinearOptions): Tensor;
export function linear(x: FloatArray, xShape: [number, number], w: Weight, options?: LinearOptions): FloatArray;
export function linear(x: FloatArray | Tensor, xShape: [number, number], w: Weight, options?: LinearOptions | DeviceLinearOptions): FloatArray | Tensor {
  if (isTensor(x)) return linearOnDevice(x, xShape, w, options, false) as Tensor;
  return run(prepare(x, xShape, w, options));
}

/**
 * Same as linear, computed off the event loop (the libuv thread pool on the CPU backend; the
 * device's stream on the CUDA backend). x and the bias are copied when the call is made, so they
 * may be reused at once; the result is written into `out` (or a new array) when the promise
 * resolves.
 */
export async function linearAsync(x: Tensor, xShape: [number, number], w: Weight, options?: DeviceLinearOptions): Promise<Tensor>;
export async function linearAsync(x: FloatArray, xShape: [number, number], w: Weight, options?: LinearOptions): Promise<FloatArray>;
export async function linearAsync(x: FloatArray | Tensor, xShape: [number, number], w: Weight, options?: LinearOptions | DeviceLinearOptions): Promise<FloatArray | Tensor> {
  if (isTensor(x)) return linearOnDevice(x, xShape, w, options, true);
  return runAsync(prepare(x, xShape, w, options));
}

/**
 * linear on a device tensor: the weight's device placement (made on first use), the kernel on the
 * device's stream (with the fused LoRA term when `lora` is given: its t from the device x), a new
 * device tensor out. Only what the routing table sends to the CUDA backend
 * runs here; a weight whose kernel is CPU-only is ERR_NOT_SUPPORTED with device tensors (pass host
 * arrays instead). x must be in the weight's dtype (the kernel's A and B share one type; INT4:
 * float16 or bfloat16).
 */
function linearOnDevice(x: Tensor, xShape: unknown, w: unknown, options: unknown, async: boolean, multi?: { adapters: unknown; index: unknown }): Tensor | Promise<Tensor> {
  const [M, K] = checkShape2(xShape, ['M', 'K']);
  const params = paramsOf(w);
  const weight = w as Weight;
  const o = readOptions(options, 'options', OPTION_KEYS);
  const handle = handleOf(x);
  if (x.shape[0] !== M || x.shape[1] !== K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `x is a [${x.shape.join(', ')}] tensor, not [${M}, ${K}]`);
  if (params.K !== K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `x has K = ${K} columns but the weight has K = ${params.K}`);
  const N = params.N;
  checkProduct(M, N, 'M*N');
  if (o.activations !== undefined && o.activations !== 'native') notSupported('linear on a device tensor with quantized activations');
  const outOption: unknown = o.out;
  if (outOption !== undefined && outOption !== null && !isTensor(outOption)) throw new CgTypeError('ERR_INVALID_ARG', 'with a device tensor x, out must be a device tensor (cg.Tensor) or omitted');
  const given: Tensor | null = isTensor(outOption) ? outOption : null;
  const { adapters, rowAdapter } = readAdapters(o, multi, M, N, K);
  const backend = route(adapters.length > 0 ? 'linear+lora' : 'linear', params.format, 'native', selectBackend().info.kind, valueDtype(params));
  if (backend.name !== 'cuda') {
    return notSupported(`linear on a device tensor with a ${params.format} ${valueDtype(params)} weight (its kernel runs on the CPU: pass host arrays)`);
  }
  checkDeviceDtype(params, x.dtype);
  checkDeviceK(params);
  const outDtype = o.outDtype ?? (given ? given.dtype : x.dtype);
  if (!isFloatDType(outDtype)) throw new CgTypeError('ERR_DTYPE', `unknown outDtype ${show(outDtype)} (float32, float16, bfloat16)`);
  if (given) {
    handleOf(given); // ERR_DISPOSED
    if (given.shape[0] !== M || given.shape[1] !== N) throw new CgRangeError('ERR_SHAPE_MISMATCH', `out is a [${given.shape.join(', ')}] tensor, not [${M}, ${N}]`);
    if (given.dtype !== outDtype) throw new CgTypeError('ERR_DTYPE', `out is a ${given.dtype} tensor but the result is ${outDtype}`);
    if (given.device !== x.device) throw new CgRangeError('ERR_DEVICE', `out is on CUDA device ${given.device} and x on device ${x.device}`);
    if (given === x) throw new CgRangeError('ERR_OVERLAP', 'out is x: the kernel reads x while it writes out');
  }
  let bias: Float32Array | null = null;
  if (o.bias !== undefined && o.bias !== null) bias = checkFloatArray(o.bias, 'float32', N, 'bias').array as Float32Array;
  checkReadable(weight);
  const d = deviceAddon();
  const placement = placementOn(weight, backend, x.device);
  const lora = adapters.length > 0 ? loraArgs(adapters, rowAdapter) : null;
  const out = given ?? Tensor.alloc([M, N], outDtype, x.device);
  // A result tensor made here is disposed if the call fails; the caller's `out` never is.
  const drop = () => {
    if (!given) out.dispose();
  };
  let biasHandle: DeviceHandle | null = null;
  try {
    if (!async) {
      biasHandle = bias ? upload(d, x.device, bias) : null;
      runOnDevice(params, placement, handle, biasHandle, handleOf(out), M, outDtype, false, x.dtype, lora);
      return out;
    }
    // Async: the bias goes up through page-locked staging, so the JS thread never waits for the device.
    const up = bias ? uploadAsync(d, x.device, bias) : null;
    biasHandle = up ? up.handle : null;
    up?.done.catch(() => undefined); // awaited below
    const kernel = runOnDevice(params, placement, handle, biasHandle, handleOf(out), M, outDtype, true, x.dtype, lora) as Promise<void>;
    const done: Promise<void> = up ? Promise.all([up.done, kernel]).then(() => undefined) : kernel;
    const b = biasHandle;
    biasHandle = null; // freed when the kernel is done
    return useDuring(weight, 'read', () => done).then(
      () => out,
      (e) => {
        drop();
        throw fromNative(e);
      },
    ).finally(() => {
      if (b) d.deviceFree(b);
    });
  } catch (e) {
    drop();
    throw fromNative(e);
  } finally {
    if (biasHandle) d.deviceFree(biasHandle);
  }
}

/**
 * Many LoRA adapters in one batch (S-LoRA / Punica): row m of x gets adapter
 * adapters[adapterIndexPerRow[m]], or none for -1. Y = X Wᵀ + alpha_a (X_a A_aᵀ) B_aᵀ row by
 * row; the rows of each adapter are gathered and multiplied together (a segment), and the terms
 * are added in the kernel's epilogue. Adapters may have different ranks.
 */
export function linearMultiLora(
  x: Tensor, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: DeviceLinearOptions,
): Tensor;
export function linearMultiLora(
  x: FloatArray, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions,
): FloatArray;
export function linearMultiLora(
  x: FloatArray | Tensor, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions | DeviceLinearOptions,
): FloatArray | Tensor {
  const multi = { adapters, index: adapterIndexPerRow };
  if (isTensor(x)) return linearOnDevice(x, xShape, w, options, false, multi) as Tensor;
  return run(prepare(x, xShape, w, options, multi));
}

/** linearMultiLora off the event loop. */
export async function linearMultiLoraAsync(
  x: Tensor, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: DeviceLinearOptions,
): Promise<Tensor>;
export async function linearMultiLoraAsync(
  x: FloatArray, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions,
): Promise<FloatArray>;
export async function linearMultiLoraAsync(
  x: FloatArray | Tensor, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions | DeviceLinearOptions,
): Promise<FloatArray | Tensor> {
  const multi = { adapters, index: adapterIndexPerRow };
  if (isTensor(x)) return linearOnDevice(x, xShape, w, options, true, multi);
  return runAsync(prepare(x, xShape, w, options, multi));
}
