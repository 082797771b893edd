/**
 * Where a weight's CPU placement lives: its buffer starts on a 64-byte boundary (placement.cc,
 * placement_buffer), so every panel of the layout does and a kernel's 64-byte load of weights
 * touches one cache line. V8's own large ArrayBuffers start 16 bytes past a page; the INT4 GEMV
 * ran 0.6x on those. What it reads stays the same: the round trip to the canonical arrays and
 * linear's results are tested in formats.test.ts and the linear.* suites.
 */
import * as cg from '../lib';
import { cpuBackend } from '../lib/backends/cpu';
import { loadCpuAddon } from '../lib/native/load';
import type { CanonicalArrays, WeightParams } from '../lib/native/descriptor';

const addon = loadCpuAddon().addon!;

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1);
}

// [what, params, canonical arrays]: every format, tiny and large (a large buffer is the one a
// malloc'd ArrayBuffer would misalign), K tails included.
function cases(): Array<[string, WeightParams, CanonicalArrays]> {
  const out: Array<[string, WeightParams, CanonicalArrays]> = [];
  for (const [N, K] of [[1, 32], [5, 96], [7, 1000], [300, 1024], [1024, 4096]]) {
    const data = rand(N * K, N + K);
    out.push([`dense float32 ${N}x${K}`, { format: 'dense', N, K, dtype: 'float32' }, { values: data }]);
    out.push([`dense bfloat16 ${N}x${K}`, { format: 'dense', N, K, dtype: 'bfloat16' }, { values: new Uint16Array(N * K).fill(0x3f80) }]);
    const sp = cg.Sparse24Weight.prune(data, [N, K]).canonical();
    out.push([`2:4 float32 ${N}x${K}`, { format: '2:4', N, K, dtype: 'float32' }, sp]);
    if (K % 32 === 0) {
      for (const symmetric of [true, false]) {
        const c = cg.Int4Weight.quantize(data, [N, K], { groupSize: 32, symmetric, scaleDtype: 'float32' }).canonical();
        out.push([`int4 g32 symmetric=${symmetric} ${N}x${K}`,
          { format: 'int4', N, K, group: 32, symmetric, scaleDtype: 'float32', perm: null },
          { qweight: c.qweight, scales: c.scales, zeros: c.zeros }]);
      }
    }
    for (const [bn, bk] of [[1, K], [N, K], [16, 64]]) {
      const c = cg.Fp8Weight.quantize(data, [N, K], { scaling: { block: [bn, bk] } }).canonical();
      out.push([`fp8 ${bn}x${bk} blocks ${N}x${K}`, { format: 'fp8', N, K, fp8Format: 'e4m3', bn, bk }, c]);
    }
  }
  return out;
}

describe('CPU placements start on a 64-byte boundary', () => {
  test('alignment() reports the address, not a constant', () => {
    const buf = new ArrayBuffer(1 << 20);
    const a = addon.alignment(buf);
    expect(a).toBeGreaterThanOrEqual(8);
    expect(a & (a - 1)).toBe(0);
    expect(addon.alignment(new Uint8Array(buf, 1))).toBe(1);
    expect(addon.alignment(new Uint8Array(buf, 2))).toBe(2);
    expect(addon.alignment(new ArrayBuffer(0))).toBe(0);
  });

  test.each(cases())('%s', (_what, params, canonical) => {
    const data = addon.place({ weight: params, ...canonical });
    expect(addon.alignment(data)).toBeGreaterThanOrEqual(64);
    // and through the CPU backend, as the weight classes place theirs
    expect(addon.alignment(cpuBackend.place(params, canonical).data)).toBeGreaterThanOrEqual(64);
  });
});
