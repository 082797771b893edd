/**
 * The routing table: for each (operation, weight format, activation mode), which backend runs
 * it when the process runs on the CPU backend or on the CUDA backend, or that none does, each
 * entry with its reason. lib/ops/ asks `route()` before every call; `cg.backend()` lists the
 * table as it applies to this process. Adding a kernel is editing one row here.
 */
import { CgError } from '../errors';
import type { WeightFormat } from '../native/descriptor';
import type { Backend, BackendName } from './backend';
import { cpuBackend } from './cpu';
import { cudaBackend } from './cuda';
import type { FloatDType } from '../dtype';

export type Op = 'linear' | 'linear+lora' | 'lowRankUpdate';
export type Activations = 'native' | 'fp8' | 'int8';

/** Where an op runs on a backend: that backend, another one (a fallback), or nowhere (why). */
type Target = BackendName | { none: string };

interface Route {
  op: Op;
  format: WeightFormat;
  activations: Activations;
  /** Dense and 2:4: the weight dtypes the row is for (absent: every dtype). */
  dtypes?: FloatDType[];
  /** On the CPU backend. */
  cpu: Target;
  /** On the CUDA backend: where it has no kernel yet, the CPU kernels (a fallback `notes` lists). */
  cuda: Target;
  why: string;
}

const NOT_QUANTIZED = { none: 'quantized activations go with INT4 and FP8 weights' };
const INT8_FP8 = { none: "int8 activations go with INT4 weights (use 'fp8' or 'native' with an FP8 weight)" };

const ROUTES: Route[] = [
  {
    op: 'linear', format: 'dense', activations: 'native', dtypes: ['float16', 'bfloat16'], cpu: 'cpu', cuda: 'cuda',
    why: 'CPU: packed panel GEMM per ISA; CUDA: tensor-core GEMM (mma.sync m16n8k16, native/cuda/gemm_dense.cuh)',
  },
  {
    op: 'linear', format: 'dense', activations: 'native', dtypes: ['float32'], cpu: 'cpu', cuda: 'cuda',
    why: 'CPU: packed panel GEMM per ISA; CUDA: float32 FFMA GEMM on the CUDA cores (float32 arithmetic, not TF32: native/cuda/gemm_dense_f32.cuh)',
  },
  {
    op: 'linear', format: '2:4', activations: 'native', dtypes: ['float16', 'bfloat16'], cpu: 'cpu', cuda: 'cuda',
    why: 'CPU: 2:4 panel kernel (M-vectorised from M = 128); CUDA: sparse tensor cores (mma.sp::ordered_metadata m16n8k32, native/cuda/gemm_sparse24.cuh)',
  },
  {
    op: 'linear', format: '2:4', activations: 'native', dtypes: ['float32'], cpu: 'cpu', cuda: 'cpu',
    why: '2:4 panel kernel (M-vectorised from M = 128); sparse tensor cores take 16-bit operands (TF32 would lose float32 precision), so float32 2:4 stays on the CPU kernels',
  },
  {
    op: 'linear', format: 'int4', activations: 'native', cpu: 'cpu', cuda: 'cuda',
    why: 'CPU: direct decode at small M, dequantized tiles at large M; CUDA: W4A16 tensor-core GEMM, INT4 dequantized in registers (native/cuda/gemm_int4.cuh; float32 x rounded to float16)',
  },
  { op: 'linear', format: 'int4', activations: 'fp8', cpu: 'cpu', cuda: 'cpu', why: 'x quantized to e4m3 per row, then the INT4 kernels' },
  { op: 'linear', format: 'int4', activations: 'int8', cpu: 'cpu', cuda: 'cpu', why: 'AVX512-VNNI u8 x s8 kernel where the CPU has it' },
  { op: 'linear', format: 'fp8', activations: 'native', cpu: 'cpu', cuda: 'cpu', why: 'FP8 weight decoded in registers' },
  { op: 'linear', format: 'fp8', activations: 'fp8', cpu: 'cpu', cuda: 'cpu', why: 'x quantized to e4m3 per row or K block' },
  { op: 'linear', format: 'fp8', activations: 'int8', cpu: INT8_FP8, cuda: INT8_FP8, why: 'no such kernel' },
  { op: 'linear', format: 'dense', activations: 'fp8', cpu: NOT_QUANTIZED, cuda: NOT_QUANTIZED, why: 'no such kernel' },
  { op: 'linear', format: 'dense', activations: 'int8', cpu: NOT_QUANTIZED, cuda: NOT_QUANTIZED, why: 'no such kernel' },
  { op: 'linear', format: '2:4', activations: 'fp8', cpu: NOT_QUANTIZED, cuda: NOT_QUANTIZED, why: 'no such kernel' },
  { op: 'linear', format: '2:4', activations: 'int8', cpu: NOT_QUANTIZED, cuda: NOT_QUANTIZED, why: 'no such kernel' },
];

// The fused LoRA epilogue exists wherever a linear kernel does (same activations rule): t = x Aᵀ
// first (the CUDA backend: each row against its own adapter, lora_shrink.cuh), t Bᵀ scaled by alpha added in the epilogue
// (native/cuda/lora_epilogue.h on the CUDA backend), one adapter or one per row.
for (const r of ROUTES.slice()) {
  ROUTES.push({ ...r, op: 'linear+lora', why: `${r.why}; t = x Aᵀ first, alpha t Bᵀ added in the epilogue` });
}
// W <- W + alpha B A in place, on the placement of the backend that runs the weight's linear.
const ON_DEVICE = 'CPU: tile by tile on the CPU placement; CUDA: in place on the device placement, each element once, bit for bit the CPU\'s arithmetic (native/cuda/lowrank_update.cuh)';
ROUTES.push(
  { op: 'lowRankUpdate', format: 'dense', activations: 'native', cpu: 'cpu', cuda: 'cuda', why: ON_DEVICE },
  { op: 'lowRankUpdate', format: '2:4', activations: 'native', dtypes: ['float16', 'bfloat16'], cpu: 'cpu', cuda: 'cuda', why: ON_DEVICE },
  { op: 'lowRankUpdate', format: '2:4', activations: 'native', dtypes: ['float32'], cpu: 'cpu', cuda: 'cpu', why: 'tile by tile on the CPU placement (float32 2:4 weights stay on the CPU kernels)' },
  { op: 'lowRankUpdate', format: 'int4', activations: 'native', cpu: 'cpu', cuda: 'cpu', why: 'tile by tile on the CPU placement: every group dequantized, updated and quantized again' },
  { op: 'lowRankUpdate', format: 'fp8', activations: 'native', cpu: 'cpu', cuda: 'cpu', why: 'tile by tile on the CPU placement: every scale unit requantized' },
);

const BACKENDS: Record<BackendName, Backend> = { cpu: cpuBackend, cuda: cudaBackend };

function find(op: Op, format: WeightFormat, activations: Activations, dtype: FloatDType): Route | undefined {
  return ROUTES.find((r) => r.op === op && r.format === format && r.activations === activations && (!r.dtypes || r.dtypes.includes(dtype)));
}

function describe(op: Op, format: WeightFormat, activations: Activations): string {
  return `${op} with a ${format} weight${activations === 'native' ? '' : ` and activations: '${activations}'`}`;
}

/**
 * The backend that runs (op, format, activations) in a process whose backend is `on`, or an
 * ERR_NOT_SUPPORTED error that says why none does.
 */
export function route(op: Op, format: WeightFormat, activations: Activations, on: BackendName, dtype: FloatDType): Backend {
  const r = find(op, format, activations, dtype);
  const t = r ? r[on] : { none: 'no route' };
  if (typeof t === 'object') throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: ${describe(op, format, activations)} is not supported yet (${t.none})`);
  return BACKENDS[t];
}

/** One row of the table as cg.backend() reports it. */
export interface RouteInfo {
  op: Op;
  format: WeightFormat;
  activations: Activations;
  /** Dense and 2:4: the weight dtypes the row is for (absent: every dtype). */
  dtypes?: FloatDType[];
  /** The backend that runs it in this process, or null when nothing does. */
  runsOn: BackendName | null;
  /** Why: the kernel, the fallback, or why not. */
  note: string;
}

/** The table as it applies to a process on backend `on`. */
export function routes(on: BackendName): RouteInfo[] {
  return ROUTES.map((r) => {
    const t = r[on];
    const key = { op: r.op, format: r.format, activations: r.activations, ...(r.dtypes ? { dtypes: [...r.dtypes] } : {}) };
    if (typeof t === 'object') return { ...key, runsOn: null, note: t.none };
    const fallback = t !== on ? ` (the ${on.toUpperCase()} backend has no kernel for it yet: it runs on the ${t.toUpperCase()} kernels)` : '';
    return { ...key, runsOn: t, note: r.why + fallback };
  });
}
