/**
 * The bench on the CUDA backend (lib/tools/bench.ts), on the simulated device, at a toy shape: an
 * op the routing table runs on CUDA is timed on device tensors and labelled `cuda/<device>` (its
 * weight GB/s from the device placement, no CPU FMA-peak share); an op that runs on the CPU kernels
 * there keeps its `cpu/<isa>` label; the CLI says that simulated rows are not GPU figures. Only the
 * plumbing and the labels are checked: a time measured here says nothing (shared machines; the
 * simulator).
 */
import * as path from 'path';
import { describeChild, runChild } from '../helpers/child';

const BENCH = path.resolve(__dirname, '..', '..', 'lib', 'tools', 'bench.ts');

test('on cuda-sim: device ops are timed on device tensors and labelled cuda/cuda-sim; CPU-routed ops keep their cpu label', () => {
  const r = runChild(
    `
const b = require(${JSON.stringify(BENCH)});
const ops = ['dense-f32', 'dense-f16', '2:4-f16', 'int4-g128', 'fp8-e4m3', 'int4-g128-a8', 'dense-f32+lora16', 'dense-f32+8x16'];
const results = await b.runBench({ quick: false, peers: false, ops, ms: [3], shapes: [[64, 128]], threads: null, repeats: 1, json: null, chart: null, seed: 1, concurrency: null, reuseOut: false }, null);
out({ rows: results.map((x) => ({ op: x.op, backend: x.backend, ofPeak: x.ofPeak, weightBytes: x.weightBytes, finite: Number.isFinite(x.medianMs) && x.medianMs > 0 })) });
`,
    { COMPRESSED_GEMM_BACKEND: 'cuda-sim' },
    { timeoutMs: 300_000 },
  );
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  const rows = (r.value as { rows: Array<{ op: string; backend: string; ofPeak: number | null; weightBytes: number; finite: boolean }> }).rows;
  const by = new Map(rows.map((x) => [x.op, x]));
  for (const op of ['dense-f32', 'dense-f16', '2:4-f16', 'int4-g128', 'dense-f32+lora16', 'dense-f32+8x16']) {
    expect({ op, backend: by.get(op)?.backend, ofPeak: by.get(op)?.ofPeak }).toEqual({ op, backend: 'cuda/cuda-sim', ofPeak: null });
  }
  for (const op of ['fp8-e4m3', 'int4-g128-a8']) expect({ op, backend: by.get(op)?.backend }).toEqual({ op, backend: expect.stringMatching(/^cpu\//) });
  for (const x of rows) expect({ op: x.op, finite: x.finite }).toEqual({ op: x.op, finite: true });
  // Device rows count the device placement alone: dense float16 [64, 128] is 64 x 128 x 2 bytes.
  expect(by.get('dense-f16')?.weightBytes).toBe(64 * 128 * 2);
});
