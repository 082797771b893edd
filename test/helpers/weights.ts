/**
 * Case builders that use the library: a TestWeight (test/helpers/lowrank-reference.ts, which
 * itself imports nothing from lib/) made into a weight by the factory its recipe names. The
 * ops tests share this so that each weight format is built one way everywhere.
 */
import * as cg from '../../lib';
import type { TestWeight } from './lowrank-reference';

export function buildWeight(tw: TestWeight): cg.Weight {
  const r = tw.recipe;
  const shape: [number, number] = [tw.N, tw.K];
  switch (r.make) {
    case 'dense': return cg.DenseWeight.from(r.data, shape, { dtype: r.dtype });
    case 'prune': return cg.Sparse24Weight.prune(r.data, shape, { dtype: r.dtype });
    case 'int4.quantize': return cg.Int4Weight.quantize(r.data, shape, { groupSize: r.groupSize, symmetric: r.symmetric, scaleDtype: r.scaleDtype });
    case 'int4.fromCanonical': return cg.Int4Weight.fromCanonical({ qweight: r.qweight, scales: r.scales, zeros: r.zeros, gIdx: r.gIdx }, shape);
    default: return cg.Fp8Weight.quantize(r.data, shape, { format: r.format, scaling: r.scaling });
  }
}
