/**
 * What a backend does with a weight and with the operations the routing table sends it. Each
 * backend (cpu.ts; cuda.ts, on a GPU or the simulated device) implements this one interface; lib/ops/ and
 * lib/weights/ call backends only through it.
 */
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { NativeLinearArgs, NativeUpdateArgs } from '../native/cpu';

export type BackendName = 'cpu' | 'cuda';

/** A backend's copy of a weight, in its own layout (each backend adds where it lives). */
export interface Placement {
  readonly backend: BackendName;
  readonly byteLength: number;
}

/** A linear call, everything checked and read once: the weight's placement is filled in by the backend. */
export type LinearPlan = Omit<NativeLinearArgs, 'weight' | 'isa'>;
export type UpdatePlan = Omit<NativeUpdateArgs, 'weight' | 'isa'>;

export interface Backend {
  readonly name: BackendName;
  /** Makes this backend's placement of a weight from its canonical arrays (on `device`: CUDA; the CPU has one). */
  place(params: WeightParams, canonical: CanonicalArrays, device?: number): Placement;
  /** Frees what the placement holds now (device memory); the CPU's is garbage-collected. Idempotent. */
  release(p: Placement): void;
  /** Writes the canonical arrays, read back from this backend's placement. */
  canonical(params: WeightParams, p: Placement, out: CanonicalArrays): void;
  /** The dense matrix (dense, 2:4: the weight's dtype; int4, fp8: float32) from the placement. */
  toDense(params: WeightParams, p: Placement, out: ArrayBufferView): void;
  linear(params: WeightParams, p: Placement, plan: LinearPlan): void;
  linearAsync(params: WeightParams, p: Placement, plan: LinearPlan): Promise<void>;
  /** Updates the placement in place; returns the scratch bytes used. */
  lowRankUpdate(params: WeightParams, p: Placement, plan: UpdatePlan): number;
  lowRankUpdateAsync(params: WeightParams, p: Placement, plan: UpdatePlan): Promise<number>;
}
