/**
 * Type tests of the public API as a user's TypeScript sees it (README "API"), against the
 * package's published declarations (dist/index.d.ts, or dist/index.d.mts where the import
 * condition applies). Only type-checked (test/types/types.test.ts), never run. Each
 * `// @ts-expect-error` line is a call that must NOT compile; tsc fails if it does.
 */
import * as cg from 'compressed-gemm';
import type { BackendInfo, ErrorCode, FloatArray, FloatDType, LinearOptions, LowRankUpdateResult, RouteInfo } from 'compressed-gemm';
import { expectType } from './expect';

declare const f32: Float32Array;
declare const u16: Uint16Array;
declare const i32: Int32Array;
declare const u8: Uint8Array;
const shape: [number, number] = [32, 64];

// ---- weights: factories, their options and what they return ---------------------------------

const dense = cg.DenseWeight.from(f32, shape);
expectType<cg.DenseWeight>()(dense);
expectType<cg.DenseWeight>()(cg.DenseWeight.from(u16, shape, { dtype: 'bfloat16' }));
expectType<'dense'>()(dense.format);
expectType<readonly [number, number]>()(dense.shape);
expectType<FloatDType>()(dense.dtype);
expectType<number>()(dense.byteLength);
expectType<FloatArray>()(dense.toDense());
// @ts-expect-error float64 is not a weight dtype
cg.DenseWeight.from(f32, shape, { dtype: 'float64' });
// @ts-expect-error a shape is [N, K]
cg.DenseWeight.from(f32, [32, 64, 1]);
// @ts-expect-error data is a Float32Array or a Uint16Array, not a plain array
cg.DenseWeight.from([1, 2, 3, 4], [2, 2]);
// @ts-expect-error weights are immutable
dense.shape = [1, 1];

const sparse = cg.Sparse24Weight.prune(f32, shape, { dtype: 'float16' });
expectType<cg.Sparse24Weight>()(sparse);
expectType<cg.Sparse24Weight>()(cg.Sparse24Weight.compress(u16, shape, { dtype: 'float16' }));
expectType<'2:4'>()(sparse.format);
expectType<{ values: FloatArray; meta: Uint8Array }>()(sparse.canonical());

const int4 = cg.Int4Weight.quantize(f32, shape, { groupSize: 64, symmetric: false, scaleDtype: 'float32' });
expectType<cg.Int4Weight>()(int4);
expectType<'int4'>()(int4.format);
expectType<number>()(int4.groupSize);
expectType<cg.ScaleDType>()(int4.scaleDtype);
expectType<Float32Array>()(int4.toDense());
expectType<cg.Int4Weight>()(cg.Int4Weight.fromGPTQ({ qweight: i32, qzeros: i32, scales: u16, gIdx: i32 }, shape));
expectType<cg.Int4Weight>()(cg.Int4Weight.fromAWQ({ qweight: i32, qzeros: i32, scales: f32 }, shape));
const parts: cg.Int4Parts = { qweight: u8, scales: u16, zeros: null };
expectType<cg.Int4Weight>()(cg.Int4Weight.fromCanonical(parts, shape));
const int4Options: cg.Int4QuantizeOptions = { groupSize: -1 };
cg.Int4Weight.quantize(f32, shape, int4Options);
// @ts-expect-error group sizes are 32, 64, 128 or -1
cg.Int4Weight.quantize(f32, shape, { groupSize: 48 });
// @ts-expect-error scales are rounded to float16 or float32
cg.Int4Weight.quantize(f32, shape, { scaleDtype: 'bfloat16' });
// @ts-expect-error GPTQ's qweight is int32-packed
cg.Int4Weight.fromGPTQ({ qweight: u8, qzeros: i32, scales: u16 }, shape);
// @ts-expect-error AWQ has no g_idx
cg.Int4Weight.fromAWQ({ qweight: i32, qzeros: i32, scales: f32, gIdx: i32 }, shape);

const fp8 = cg.Fp8Weight.quantize(f32, shape, { format: 'e5m2', scaling: { block: [16, 32] } });
expectType<cg.Fp8Weight>()(fp8);
expectType<'fp8'>()(fp8.format);
expectType<cg.Fp8Format>()(fp8.fp8Format);
expectType<cg.Fp8Scaling>()(fp8.scaling);
expectType<cg.Fp8Weight>()(cg.Fp8Weight.fromCodes({ codes: u8, scales: 0.5 }, shape, { scaling: 'tensor' }));
expectType<{ codes: Uint8Array; scales: Float32Array }>()(fp8.canonical());
const fp8Options: cg.Fp8Options = { format: 'e4m3', scaling: 'channel' };
cg.Fp8Weight.quantize(f32, shape, fp8Options);
// @ts-expect-error no such FP8 format
cg.Fp8Weight.quantize(f32, shape, { format: 'e3m4' });
// @ts-expect-error a block is [bn, bk]
cg.Fp8Weight.quantize(f32, shape, { scaling: { block: 16 } });

// Every weight is a Weight, and its format names which one.
const weights: cg.Weight[] = [dense, sparse, int4, fp8];
expectType<cg.WeightFormat>()(weights[0].format);
// @ts-expect-error weights come from the factories
new cg.DenseWeight();
// @ts-expect-error a weight is made by the library, not written as an object
cg.linear(f32, [4, 64], { shape: [32, 64], dtype: 'float32', format: 'dense' });

expectType<Uint8Array>()(cg.fp8.encode(f32, 'e4m3'));
expectType<Float32Array>()(cg.fp8.decode(u8, 'e5m2'));
expectType<cg.safetensors.SafetensorsFile>()(cg.safetensors.read(u8));
expectType<cg.safetensors.SafetensorsDType>()(cg.safetensors.read(u8).tensors.w.dtype);

// ---- linear / linearAsync: host arrays in, host arrays out; device tensors in, tensors out ----

const options: LinearOptions = { bias: f32, dtype: 'float32', outDtype: 'bfloat16', out: u16, threads: 2, activations: 'fp8' };
expectType<FloatArray>()(cg.linear(f32, [4, 64], dense));
expectType<FloatArray>()(cg.linear(u16, [4, 64], sparse, options));
expectType<Promise<FloatArray>>()(cg.linearAsync(f32, [4, 64], int4, { activations: 'int8' }));
// @ts-expect-error activations are 'native', 'fp8' or 'int8'
cg.linear(f32, [4, 64], int4, { activations: 'int4' });
// @ts-expect-error no float64 output
cg.linear(f32, [4, 64], dense, { outDtype: 'float64' });
// @ts-expect-error x is a typed array
cg.linear([1, 2], [1, 2], dense);
// @ts-expect-error x's shape is [M, K]
cg.linear(f32, [4], dense);
// @ts-expect-error the weight comes third
cg.linear(dense, [4, 64], f32);

const t = cg.Tensor.fromHost(u16, [4, 64], { dtype: 'float16' });
expectType<cg.Tensor>()(cg.linear(t, [4, 64], dense, { bias: u16, outDtype: 'float16' }));
expectType<Promise<cg.Tensor>>()(cg.linearAsync(t, [4, 64], dense));
expectType<cg.Tensor>()(cg.linear(t, [4, 64], dense, { out: t }));
// @ts-expect-error with a device tensor x, out is a device tensor
cg.linear(t, [4, 64], dense, { out: f32 });
expectType<() => void>()(t[Symbol.dispose]); // `using t = ...` type-checks
expectType<typeof dense>()(dense.toDevice({ device: 1 })); // returns the weight itself
expectType<number | null>()(dense.device);
expectType<() => void>()(dense[Symbol.dispose]);
dense.dispose();
// @ts-expect-error device is a number
dense.toDevice({ device: '1' });
expectType<Array<{ device: number; name: string; sm: number; totalMemory: number; multiprocessors: number; simulated: boolean }>>()(cg.cuda.devices());
declare const either: Float32Array | cg.Tensor;
// @ts-expect-error the overloads say which comes back; a value that may be either picks none
cg.linear(either, [4, 64], dense);

// ---- LoRA, multi-LoRA, blockwise low-rank updates ---------------------------------------------

const adapter = new cg.LoraAdapter({ A: f32, B: f32, alpha: 0.5 }, shape);
expectType<number>()(adapter.rank);
expectType<number>()(adapter.alpha);
expectType<readonly [number, number]>()(adapter.shape);
const factors: cg.LoraFactors = { A: u16, B: u16, alpha: 2, dtype: 'bfloat16' };
expectType<FloatArray>()(cg.linear(f32, [4, 64], dense, { lora: adapter }));
expectType<FloatArray>()(cg.linear(f32, [4, 64], dense, { lora: factors }));
// @ts-expect-error LoRA factors are A and B
cg.linear(f32, [4, 64], dense, { lora: { A: f32, alpha: 1 } });
// @ts-expect-error an adapter's fields are fixed
adapter.alpha = 1;

expectType<FloatArray>()(cg.linearMultiLora(f32, [4, 64], int4, [adapter, factors], i32));
expectType<FloatArray>()(cg.linearMultiLora(f32, [4, 64], int4, [adapter], [0, -1, 0, 0], { outDtype: 'float32' }));
expectType<Promise<FloatArray>>()(cg.linearMultiLoraAsync(f32, [4, 64], sparse, [adapter], i32));
// @ts-expect-error the adapter of each row is an index
cg.linearMultiLora(f32, [4, 64], dense, [adapter], ['a', 'b']);
// multi-LoRA on a device tensor gives a device tensor
expectType<cg.Tensor>()(cg.linearMultiLora(t, [4, 64], dense, [adapter], i32));
expectType<Promise<cg.Tensor>>()(cg.linearMultiLoraAsync(t, [4, 64], dense, [adapter], i32));

const update = cg.lowRankUpdate(sparse, f32, f32, { alpha: -1, blockSize: [16, 256], reprune: true, threads: 1 });
expectType<LowRankUpdateResult>()(update);
expectType<number>()(update.peakScratchBytes);
expectType<Promise<LowRankUpdateResult>>()(cg.lowRankUpdateAsync(dense, u16, u16, { dtype: 'float16', blockSize: 128 }));
// @ts-expect-error blockSize is a number or [rows, columns]
cg.lowRankUpdate(dense, f32, f32, { blockSize: '256' });
// @ts-expect-error no such option
cg.lowRankUpdate(dense, f32, f32, { scale: 2 });

// ---- backend, errors, device tensors -------------------------------------------------------

const info = cg.backend();
expectType<BackendInfo>()(info);
expectType<'cuda' | 'cpu'>()(info.kind);
expectType<cg.CpuIsa>()(info.cpu.isa);
expectType<string[]>()(info.features);
expectType<RouteInfo[]>()(info.routes);
expectType<number[] | undefined>()(info.cuda?.compiledArchitectures);
// @ts-expect-error cuda is null on the CPU backend
info.cuda.name;
cg.setThreads(4);
cg.setCpuIsa('avx2');
// @ts-expect-error the CPU instruction sets are scalar, avx2 and avx512
cg.setCpuIsa('sse4');
expectType<{ built: boolean; usable: boolean; reasons: string[] }>()(
  (({ built, usable, reasons }) => ({ built, usable, reasons }))(cg.cudaStatus()),
);

declare const caught: unknown;
if (caught instanceof cg.CgTypeError || caught instanceof cg.CgRangeError || caught instanceof cg.CgError) {
  expectType<ErrorCode>()(caught.code);
}
if (caught instanceof cg.CgRangeError) {
  const asRange: RangeError = caught;
  void asRange;
}
expectType<'ERR_SHAPE'>()(cg.ErrorCodes.ERR_SHAPE);
const code: ErrorCode = 'ERR_NOT_SUPPORTED';
expectType<cg.CgError>()(new cg.CgError(code, 'message'));
// @ts-expect-error only the documented codes
new cg.CgTypeError('ERR_NOPE', 'message');

expectType<readonly [number, number]>()(t.shape);
expectType<FloatDType>()(t.dtype);
expectType<number>()(t.device);
expectType<boolean>()(t.disposed);
expectType<Promise<FloatArray>>()(t.toHost());
expectType<FloatArray>()(t.toHostSync());
expectType<void>()(t.dispose());
// @ts-expect-error tensors come from Tensor.fromHost or an operation
new cg.Tensor([4, 64], 'float16', 0, null);
// @ts-expect-error internal: device memory whose contents nobody wrote
cg.Tensor.alloc([4, 64], 'float16', 0);
// @ts-expect-error devices are numbered
cg.Tensor.fromHost(f32, [4, 64], { device: 'cuda:0' });
expectType<Array<{ device: number; bytes: number; peakBytes: number; cachedBytes: number; reservedBytes: number }>>()(cg.cuda.memory());
expectType<number>()(cg.cuda.emptyCache());
expectType<number>()(cg.cuda.emptyCache({ device: 0 }));
