/** compressed-gemm: kernels of compressed neural-network layers, on CUDA or any CPU. */
export { backend, setThreads, setCpuIsa, cudaStatus } from './backend';
export type { BackendInfo, BackendKind, CpuIsa } from './backend';
export { DenseWeight, Sparse24Weight, Int4Weight, Fp8Weight, Weight } from './weights';
export type { WeightFormat } from './weights';
export { linear, linearAsync, lowRankUpdate, linearMultiLora } from './linear';
export type { LinearOptions } from './linear';
export { ErrorCodes, CgTypeError, CgRangeError, CgError } from './errors';
export type { ErrorCode } from './errors';
export type { FloatDType, FloatArray } from './dtype';
