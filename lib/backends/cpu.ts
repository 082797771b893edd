/**
 * The CPU backend: placements in the CPU layouts (native/cpu/layout/), kernels chosen by the
 * CPU addon's dispatch table (native/cpu/dispatch.cc) for the instruction set selected at load
 * time or by setCpuIsa.
 */
import type { CanonicalArrays, WeightDescriptor, WeightParams } from '../native/descriptor';
import type { CpuAddon } from '../native/cpu';
import { withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { Backend, LinearPlan, Placement, UpdatePlan } from './backend';
import { selectBackend } from './select';

function addon(): CpuAddon {
  return selectBackend().cpuAddon;
}

function isa() {
  return selectBackend().info.cpu.isa;
}

/** The CPU placement: the weight's CPU layout in host memory. */
export interface CpuPlacement extends Placement {
  readonly backend: 'cpu';
  readonly data: ArrayBuffer;
}

/** Each placement's descriptor, made once (a call passes the same object every time). */
const DESCRIPTORS = new WeakMap<Placement, WeightDescriptor>();

function descriptor(params: WeightParams, p: Placement): WeightDescriptor {
  let d = DESCRIPTORS.get(p);
  if (!d) {
    d = Object.freeze({ ...params, data: (p as CpuPlacement).data }) as WeightDescriptor;
    DESCRIPTORS.set(p, d);
  }
  return d;
}

export interface CpuBackend extends Backend {
  place(params: WeightParams, canonical: CanonicalArrays): CpuPlacement;
}

export const cpuBackend: CpuBackend = {
  name: 'cpu',
  place(params: WeightParams, canonical: CanonicalArrays): CpuPlacement {
    const data = withNativeErrors(() => addon().place({ weight: params, ...canonical }));
    return Object.freeze({ backend: 'cpu' as const, data, byteLength: data.byteLength });
  },
  release() {
    // Host memory: freed by the garbage collector once no call in flight holds it.
  },
  canonical(params, p, out) {
    withNativeErrors(() => addon().canonical({ weight: descriptor(params, p), ...out }));
  },
  toDense(params, p, out) {
    withNativeErrors(() => addon().toDense({ weight: descriptor(params, p), out }));
  },
  linear(params, p, plan: LinearPlan) {
    withNativeErrors(() => addon().linear({ ...plan, weight: descriptor(params, p), isa: isa() }));
  },
  linearAsync(params, p, plan: LinearPlan) {
    return withNativeErrorsAsync(() => addon().linearAsync({ ...plan, weight: descriptor(params, p), isa: isa() }));
  },
  lowRankUpdate(params, p, plan: UpdatePlan) {
    return withNativeErrors(() => addon().lowRankUpdate({ ...plan, weight: descriptor(params, p), isa: isa() }));
  },
  lowRankUpdateAsync(params, p, plan: UpdatePlan) {
    return withNativeErrorsAsync(() => addon().lowRankUpdateAsync({ ...plan, weight: descriptor(params, p), isa: isa() }));
  },
};
