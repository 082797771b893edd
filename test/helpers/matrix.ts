/**
 * The (backend x ISA) matrix: every place this process can run a kernel, as rows that a test
 * iterates. A numerics test writes its cases once and runs them on `targets()`; a new backend
 * (the simulated CUDA device, a real GPU) is a new row here, not an edit of every test file.
 *
 * The backend is chosen once per process (COMPRESSED_GEMM_BACKEND), so the rows are the chosen
 * backend's: on the CPU backend, one row per instruction set this CPU runs (scalar, avx2,
 * avx512); on the CUDA backend (a GPU, or cuda-sim: the second jest run of `npm test` runs the numerics
 * suites with COMPRESSED_GEMM_BACKEND=cuda-sim, jest.cuda-sim.config.js) one row, 'cuda-sim' or 'cuda',
 * whose ops the routing table sends to the CUDA kernels or to the CPU kernels at the default ISA.
 * `use()` makes a row current; `restore()` puts back what was current before.
 */
import * as cg from '../../lib';
import { DType, decode, encode } from './reference';

export interface Target {
  /** e.g. 'cpu/avx512': printed in test names, so a failure says where it ran. */
  readonly label: string;
  readonly backend: cg.BackendKind;
  /** The CPU instruction set of a CPU row. */
  readonly isa: cg.CpuIsa | null;
  /** Makes this row the one the next calls run on. */
  use(): void;
}

const INFO = cg.backend();

function cpuRow(isa: cg.CpuIsa): Target {
  return { label: `cpu/${isa}`, backend: 'cpu', isa, use: () => cg.setCpuIsa(isa) };
}

function cudaRow(): Target {
  const label = INFO.cuda?.simulated ? 'cuda-sim' : 'cuda';
  return { label, backend: 'cuda', isa: null, use: () => cg.setCpuIsa(INFO.cpu.isa) };
}

/** Every row this process can run, cheapest first (scalar before the vector ISAs). */
export function targets(): Target[] {
  return INFO.kind === 'cuda' ? [cudaRow()] : INFO.cpu.isas.map(cpuRow);
}

/**
 * x as the kernel multiplies it, for a float64 reference: on the CUDA backend the kernels of
 * dense and 16-bit 2:4 weights take x in the weight's dtype, so an x in another dtype is
 * converted first (rounded to nearest even into a 16-bit weight's dtype; widened exactly for a
 * float32 weight), and the INT4 kernel (W4A16) takes float16 or bfloat16 x, so a float32 x is
 * rounded to float16 (README, "The CUDA backend"). The CPU kernels and every other route keep
 * x as it is. (Native activations only: quantized ones run on the CPU kernels.)
 */
export function xAsComputed(x: Float64Array, xd: DType, format: cg.WeightFormat, wd: DType): Float64Array {
  if (INFO.kind !== 'cuda') return x;
  if (format === 'int4') return xd === 'float32' ? decode(encode(x, 'float16'), 'float16') : x;
  const onCudaKernel = format === 'dense' || (format === '2:4' && wd !== 'float32');
  if (!onCudaKernel || wd === 'float32' || xd === wd) return x;
  return decode(encode(x, wd), wd);
}

/** Puts back the instruction set that was current when this module loaded (call in afterAll). */
export function restore(): void {
  cg.setCpuIsa(INFO.cpu.isa);
}

/** For test.each / describe.each: [label, target] pairs. */
export function targetTable(): Array<[string, Target]> {
  return targets().map((t) => [t.label, t]);
}

/** A CPU row: its instruction set is never null. */
export interface CpuTarget extends Target {
  readonly backend: 'cpu';
  readonly isa: cg.CpuIsa;
}

/**
 * The rows that are CPU instruction sets, for the tests that are about the ISAs as such (which
 * ISAs this machine offers, ISAs mixed across concurrent calls by cg.setCpuIsa): `t.isa` is the
 * instruction set, `t.label` names it in messages.
 */
export function cpuTargets(): CpuTarget[] {
  // On every backend: the CUDA backend's CPU fallbacks run on these too.
  return INFO.cpu.isas.map(cpuRow) as CpuTarget[];
}
