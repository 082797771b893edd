/**
 * cg.linear: Y = X · Wᵀ (+ bias), dispatched on the weight's format and the backend.
 * Everything is checked here; the native call only sees arguments that are known to be right.
 */
import { NativeLinearArgs } from './binding';
import { selectBackend } from './backend';
import { FLOAT_DTYPES, FloatArray, FloatDType, allocFloat, isFloatDType } from './dtype';
import { CgRangeError, CgTypeError, fromNative, notSupported } from './errors';
import { checkFloatArray, checkOptions, checkProduct, checkShape2, checkThreads, overlaps } from './validate';
import { DenseWeight, Sparse24Weight, Weight, isWeight, packedOf } from './weights';
import { Fp8Weight, Int4Weight, fp8StateOf, int4StateOf } from './quant';
import { LoraAdapter, LoraFactors, adapterArgs, adapterFor, checkReadable, readDuring } from './lora';

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

interface Prepared {
  args: NativeLinearArgs;
  out: FloatArray;
  weight: Weight;
}

/** Adapters for the native call: one for every row (fused LoRA) or one per row (multi-LoRA). */
type LoraArgs = { adapters: Array<ReturnType<typeof adapterArgs>>; rowAdapter: Int32Array | null } | null;

function prepare(x: unknown, xShape: unknown, w: unknown, options: unknown, multi?: { adapters: unknown; index: unknown }): Prepared {
  const [M, K] = checkShape2(xShape, ['M', 'K']);
  const o = checkOptions(options, 'options') as LinearOptions & Record<string, unknown>;
  const xa = checkFloatArray(x, o.dtype, M * K, 'x');
  if (!isWeight(w)) throw new CgTypeError('ERR_WEIGHT', 'w must be a weight made by compressed-gemm (DenseWeight, Sparse24Weight, ...)');
  const weight = w as Weight;
  const [N, Kw] = weight.shape;
  if (Kw !== K) throw new CgRangeError('ERR_SHAPE_MISMATCH', `x has K = ${K} columns but the weight has K = ${Kw}`);
  checkProduct(M, N, 'M*N');
  const activations = o.activations === undefined ? 'native' : o.activations;
  if (activations !== 'native' && activations !== 'fp8' && activations !== 'int8') {
    throw new CgRangeError('ERR_INVALID_ARG', `activations must be 'native', 'fp8' or 'int8', got ${String(o.activations)}`);
  }
  if (activations !== 'native' && !(weight instanceof Int4Weight || weight instanceof Fp8Weight)) {
    notSupported(`activations: '${activations}' with a ${weight.format} weight (quantized activations go with INT4 and FP8 weights)`);
  }
  if (activations === 'int8' && weight instanceof Fp8Weight) {
    notSupported("activations: 'int8' with an FP8 weight (use 'fp8' or 'native')");
  }
  let lora: LoraArgs = null;
  if (multi) {
    if (o.lora !== undefined && o.lora !== null) throw new CgTypeError('ERR_INVALID_ARG', 'linearMultiLora takes its adapters as arguments, not the lora option');
    lora = multiLoraArgs(multi.adapters, multi.index, M, N, K);
  } else if (o.lora !== undefined && o.lora !== null) {
    lora = { adapters: [adapterArgs(adapterFor(o.lora, N, K, 'lora'))], rowAdapter: null };
  }
  checkReadable(weight);

  const outDtype = o.outDtype ?? xa.dtype;
  if (!isFloatDType(outDtype)) throw new CgTypeError('ERR_DTYPE', `unknown outDtype ${String(outDtype)} (float32, float16, bfloat16)`);
  const out = o.out === undefined ? allocFloat(outDtype, M * N) : checkFloatArray(o.out, outDtype, M * N, 'out').array;

  let bias: Float32Array | null = null;
  if (o.bias !== undefined && o.bias !== null) {
    if (o.bias instanceof Float32Array) {
      bias = checkFloatArray(o.bias, 'float32', N, 'bias').array as Float32Array;
    } else if (o.bias instanceof Uint16Array && xa.dtype !== 'float32') {
      const src = checkFloatArray(o.bias, xa.dtype, N, 'bias').array;
      bias = new Float32Array(N);
      selectBackend().cpuAddon.convert({ src, srcDtype: FLOAT_DTYPES[xa.dtype].code, dst: bias, dstDtype: 0 });
    } else {
      throw new CgTypeError('ERR_DTYPE', "bias must be a Float32Array, or a Uint16Array in x's 16-bit dtype");
    }
  }
  if (o.out !== undefined) {
    // The kernels read x (and the bias) while they write y; shared memory would give wrong results.
    if (overlaps(out, xa.array)) throw new CgRangeError('ERR_OVERLAP', 'out shares memory with x; pass a separate array');
    if (o.bias instanceof Float32Array && overlaps(out, o.bias)) throw new CgRangeError('ERR_OVERLAP', 'out shares memory with bias');
  }
  const threads = o.threads === undefined ? selectBackend().threads : checkThreads(o.threads, 'threads');

  const s = selectBackend();
  const common = {
    M, N, K,
    x: xa.array, xDtype: FLOAT_DTYPES[xa.dtype].code,
    wDtype: FLOAT_DTYPES[weight.dtype].code,
    bias, out, outDtype: FLOAT_DTYPES[outDtype].code,
    threads, isa: s.isaCode,
    act: activations === 'fp8' ? 1 : activations === 'int8' ? 2 : 0,
    actBlock: 0,
    lora,
  };
  let args: NativeLinearArgs;
  if (weight instanceof DenseWeight) {
    args = { ...common, kind: 0, w: packedOf(weight) };
  } else if (weight instanceof Sparse24Weight) {
    args = { ...common, kind: 1, w: packedOf(weight) };
  } else if (weight instanceof Int4Weight) {
    const st = int4StateOf(weight);
    args = { ...common, kind: 2, w: st.packed, group: st.group, perm: st.perm };
  } else if (weight instanceof Fp8Weight) {
    const st = fp8StateOf(weight);
    // fp8 activations get one scale per row, or per K block where the weight has block scales.
    const actBlock = activations === 'fp8' && typeof weight.scaling === 'object' ? st.bk : 0;
    args = { ...common, kind: 3, w: st.packed, fp8Format: weight.fp8Format === 'e4m3' ? 0 : 1, bn: st.bn, bk: st.bk, actBlock };
  } else {
    return notSupported(`linear with a ${weight.format} weight`);
  }
  return { args, out, weight };
}

/** Checks linearMultiLora's adapters and per-row indices (integers in -1 .. adapters.length - 1). */
function multiLoraArgs(adapters: unknown, index: unknown, M: number, N: number, K: number): LoraArgs {
  if (!Array.isArray(adapters)) throw new CgTypeError('ERR_INVALID_ARG', 'adapters must be an array of LoraAdapter or { A, B, alpha }');
  const idx = index instanceof Int32Array ? index : Array.isArray(index) ? index : null;
  if (!idx) throw new CgTypeError('ERR_INVALID_ARG', 'adapterIndexPerRow must be an Int32Array or an array of integers');
  if (idx.length !== M) throw new CgRangeError('ERR_SHAPE_MISMATCH', `adapterIndexPerRow has ${idx.length} entries; x has M = ${M} rows`);
  const rowAdapter = new Int32Array(M);
  let used = false;
  for (let m = 0; m < M; ++m) {
    const a = idx[m] as unknown;
    if (typeof a !== 'number' || !Number.isInteger(a)) throw new CgRangeError('ERR_INVALID_ARG', `adapterIndexPerRow[${m}] = ${String(a)} is not an integer`);
    if (a < -1 || a >= adapters.length) throw new CgRangeError('ERR_INVALID_ARG', `adapterIndexPerRow[${m}] = ${a} is not -1 or an adapter index (0..${adapters.length - 1})`);
    rowAdapter[m] = a;
    used = used || a >= 0;
  }
  const list = adapters.map((a, i) => adapterArgs(adapterFor(a, N, K, `adapters[${i}]`)));
  return used ? { adapters: list, rowAdapter } : null;
}

/** Y = X · Wᵀ (+ bias) for x [M, K] and a weight [N, K]; returns Y [M, N] (or fills `out`). */
export function linear(x: FloatArray, xShape: [number, number], w: Weight, options?: LinearOptions): FloatArray {
  const { args, out } = prepare(x, xShape, w, options);
  try {
    selectBackend().cpuAddon.linear(args);
  } catch (e) {
    throw fromNative(e);
  }
  return out;
}

/**
 * Same as linear, computed off the event loop (the libuv thread pool on the CPU backend). x and
 * the bias are copied when the call is made, so they may be reused at once; the result is
 * written into `out` (or a new array) when the promise resolves.
 */
export async function linearAsync(x: FloatArray, xShape: [number, number], w: Weight, options?: LinearOptions): Promise<FloatArray> {
  const { args, out, weight } = prepare(x, xShape, w, options);
  try {
    await readDuring(weight, selectBackend().cpuAddon.linearAsync(args));
  } catch (e) {
    throw fromNative(e);
  }
  return out;
}

/**
 * Many LoRA adapters in one batch (S-LoRA / Punica): row m of x gets adapter
 * adapters[adapterIndexPerRow[m]], or none for -1. Y = X Wᵀ + alpha_a (X_a A_aᵀ) B_aᵀ row by
 * row; the rows of each adapter are gathered and multiplied together (a segment), and the terms
 * are added in the kernel's epilogue. Adapters may have different ranks.
 */
export function linearMultiLora(
  x: FloatArray, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions,
): FloatArray {
  const { args, out } = prepare(x, xShape, w, options, { adapters, index: adapterIndexPerRow });
  try {
    selectBackend().cpuAddon.linear(args);
  } catch (e) {
    throw fromNative(e);
  }
  return out;
}

/** linearMultiLora off the event loop. */
export async function linearMultiLoraAsync(
  x: FloatArray, xShape: [number, number], w: Weight, adapters: Array<LoraAdapter | LoraFactors>,
  adapterIndexPerRow: Int32Array | number[], options?: LinearOptions,
): Promise<FloatArray> {
  const { args, out, weight } = prepare(x, xShape, w, options, { adapters, index: adapterIndexPerRow });
  try {
    await readDuring(weight, selectBackend().cpuAddon.linearAsync(args));
  } catch (e) {
    throw fromNative(e);
  }
  return out;
}
