/** compressed-gemm: kernels of compressed neural-network layers, on CUDA or any CPU. */
export { backend, setThreads, setCpuIsa, cudaStatus } from './backend';
export type { BackendInfo, BackendKind, CpuIsa } from './backend';
export { DenseWeight, Sparse24Weight, Weight } from './weights';
export { Int4Weight, Fp8Weight, fp8 } from './quant';
export type { Fp8Format, Fp8Scaling, Fp8Options, Int4QuantizeOptions, Int4Parts, ScaleDType } from './quant';
export * as safetensors from './safetensors';
export type { WeightFormat } from './weights';
export { linear, linearAsync, linearMultiLora, linearMultiLoraAsync } from './linear';
export { LoraAdapter, lowRankUpdate, lowRankUpdateAsync } from './lora';
export type { LoraFactors, LowRankUpdateOptions, LowRankUpdateResult } from './lora';
export type { LinearOptions } from './linear';
export { ErrorCodes, CgTypeError, CgRangeError, CgError } from './errors';
export type { ErrorCode } from './errors';
export type { FloatDType, FloatArray } from './dtype';
