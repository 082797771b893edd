/**
 * The CPU addon's whole surface, declared once (native/binding/cpu/entry_points.h lists the
 * same, one file per concern). lib/backends/cpu.ts and the canonical-format code in
 * lib/weights/ are its only callers; every argument is checked before it gets here.
 */
import type { FloatDType } from '../dtype';
import type { CanonicalArrays, Fp8Format, ScaleDType, WeightDescriptor, WeightParams } from './descriptor';

export type NativeIsa = 'scalar' | 'avx2' | 'avx512' | 'amx';

export interface NativeLoraArgs {
  adapters: Array<{ a: ArrayBuffer; b: ArrayBuffer; r: number; alpha: number }>;
  /** Each row's adapter (-1: none); null: adapter 0 for every row. */
  rowAdapter: Int32Array | null;
}

export interface NativeLinearArgs {
  weight: WeightDescriptor;
  M: number;
  x: ArrayBufferView;
  xDtype: FloatDType;
  bias: Float32Array | null;
  out: ArrayBufferView;
  /**
   * `out` is the library's own new array, unreachable by any other code until the call returns or
   * resolves (so nothing can transfer or resize it meanwhile): an async call writes into it in
   * place instead of into a buffer of its own that is then copied on the event loop.
   */
  outPrivate: boolean;
  outDtype: FloatDType;
  threads: number;
  isa: NativeIsa;
  activations: 'native' | 'fp8' | 'int8';
  /** fp8 activations: K columns per scale (0: one scale per row). */
  actBlock: number;
  lora: NativeLoraArgs | null;
}

export interface NativeUpdateArgs {
  weight: WeightDescriptor;
  r: number;
  alpha: number;
  a: ArrayBufferView;
  b: ArrayBufferView;
  abDtype: FloatDType;
  tileK: number;
  threads: number;
  isa: NativeIsa;
  reprune: boolean;
}

export interface PackedInt4Args {
  N: number;
  K: number;
  G: number;
  qweight: Int32Array;
  qzeros: Int32Array;
  scales: Float32Array | Uint16Array;
  scaleDtype: ScaleDType;
  outQ: Uint8Array;
  outZeros: Uint8Array;
  outScales: Float32Array | Uint16Array;
}

export interface CpuAddon {
  // info.cc
  cpuInfo(): { features: string[]; isas: string[]; hardwareThreads: number };
  /** GFLOP/s of a register-only FMA loop on `threads` threads at once. */
  fmaPeak(a: { isa: 'avx2' | 'avx512'; threads: number; iterations: number }): number;
  // formats.cc: the canonical formats
  convert(a: { src: ArrayBufferView; srcDtype: FloatDType; dst: ArrayBufferView; dstDtype: FloatDType }): void;
  fp8Encode(a: { src: Float32Array; dst: Uint8Array; format: Fp8Format }): void;
  fp8Decode(a: { src: Uint8Array; dst: Float32Array; format: Fp8Format }): void;
  /** -1, or (compress) the flat index row*(K/4)+group of the first group that is not 2:4. */
  sparse24Encode(a: { weight: WeightParams; mode: 'prune' | 'compress'; data: ArrayBufferView; values: ArrayBufferView; meta: Uint8Array }): number;
  /** bad: -1, or the flat index of the first offending weight; reason 1 = not finite, 2 = scale past float16. */
  int4Quantize(a: { weight: WeightParams; data: Float32Array } & CanonicalArrays): { bad: number; reason: number };
  /** -1, or the flat index of the first non-finite weight. */
  fp8Quantize(a: { weight: WeightParams; data: Float32Array } & CanonicalArrays): number;
  gptqToCanonical(a: PackedInt4Args): void;
  awqToCanonical(a: PackedInt4Args): void;
  // placement.cc: a weight's CPU placement
  place(a: { weight: WeightParams } & CanonicalArrays): ArrayBuffer;
  canonical(a: { weight: WeightDescriptor } & CanonicalArrays): void;
  toDense(a: { weight: WeightDescriptor; out: ArrayBufferView }): void;
  /** The largest power of two (up to 4096) dividing the buffer's address; 0 for no bytes. */
  alignment(buffer: ArrayBuffer | ArrayBufferView): number;
  // linear.cc, lowrank.cc
  linear(a: NativeLinearArgs): void;
  linearAsync(a: NativeLinearArgs): Promise<void>;
  /** The async calls' recycled staging buffers (native/binding/staging.h): idle now, taken and reused so far. */
  stagingStats(): { idleBuffers: number; idleBytes: number; taken: number; reused: number };
  /** Returns the scratch bytes used. */
  lowRankUpdate(a: NativeUpdateArgs): number;
  lowRankUpdateAsync(a: NativeUpdateArgs): Promise<number>;
}
