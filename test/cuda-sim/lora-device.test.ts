/**
 * LoRA on the CUDA backend (lib/backends/cuda-lora.ts, native/cuda/lora_epilogue.h), on the
 * simulated device: the fused term alpha (X Aᵀ) Bᵀ in the dense and 2:4 kernels' epilogues, for
 * the shapes other libraries refuse ("unsupported hidden size"): rank 1 and rank 256, N and K
 * off every tile (K = 29 for a dense weight), one adapter and one per row with -1 rows, sync and
 * async; and the binding's checks of the row table (test-only direct calls).
 *
 * Reference and bound: test/helpers/lowrank-reference.ts (loraLinearRef, checkLoraLinear: float32
 * accumulation of the main product over K and of t over K, then of t·b over r, each within its
 * gamma bound; the main product takes x in the weight's dtype on this backend, the LoRA branch
 * x as given). The suites test/ops/lora.test.ts and multi-lora.test.ts run on this backend too
 * (`npm test`'s second jest run).
 */
import * as path from 'path';
import { describeChild, runChild } from '../helpers/child';
import { Adapter64, checkLoraLinear, loraLinearRef } from '../helpers/lowrank-reference';
import { decode, encode, mulberry32, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim' };
const ADDON = path.resolve(__dirname, '..', '..', 'build', 'Release', 'compressed_gemm_cuda_sim.node');

function child(body: string): Record<string, unknown> {
  const r = runChild(body, ENV, { timeoutMs: 110_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}


test.each([
  { format: 'dense', dtype: 'float16', N: 37, K: 29, M: 5, ranks: [1], rows: null },
  { format: 'dense', dtype: 'bfloat16', N: 70, K: 48, M: 9, ranks: [256], rows: null },
  { format: '2:4', dtype: 'float16', N: 33, K: 72, M: 6, ranks: [3, 16, 1], rows: [2, -1, 0, 1, 1, -1] },
  { format: 'dense', dtype: 'float32', N: 20, K: 12, M: 4, ranks: [5, 2], rows: [1, 0, -1, 1] },
] as const)('$format $dtype N=$N K=$K M=$M ranks $ranks rows $rows: within the bound, sync and async', (c) => {
  const label = `lora device ${c.format} ${c.dtype} ${c.N}x${c.K} ${c.ranks.join(',')}`;
  const seed = seedFor(label);
  // The inputs are made in the child (rank 256 factors are too large for its command line) by
  // the same generator (mulberry32, test/helpers/reference.ts), and sent back for the reference.
  const v = child(`
const c = ${JSON.stringify(c)};
${mulberry32.toString()}
const rng = mulberry32(${seed});
const rand = (n) => Float32Array.from({ length: n }, () => (rng() < 0.5 ? -1 : 1) * (0.125 + rng() * 1.875) * 0.5);
const x = rand(c.M * c.K), wv = rand(c.N * c.K);
const factors = c.ranks.map((r) => ({ A: rand(r * c.K), B: rand(c.N * r), alpha: 0.5 + rng() }));
const w = c.format === 'dense' ? cg.DenseWeight.from(wv, [c.N, c.K], { dtype: c.dtype }) : cg.Sparse24Weight.prune(wv, [c.N, c.K], { dtype: c.dtype });
const route = cg.backend().routes.find((r) => r.op === 'linear+lora' && r.format === c.format && r.activations === 'native' && (r.dtypes || []).includes(c.dtype));
const wDense = Array.from(w.toDense());
let ySync, yAsync;
if (c.rows) {
  const adapters = factors.map((f) => new cg.LoraAdapter(f, [c.N, c.K]));
  ySync = Array.from(cg.linearMultiLora(x, [c.M, c.K], w, adapters, c.rows, { out: new Float32Array(c.M * c.N).fill(NaN) }));
  yAsync = Array.from(await cg.linearMultiLoraAsync(x, [c.M, c.K], w, adapters, c.rows));
} else {
  ySync = Array.from(cg.linear(x, [c.M, c.K], w, { lora: factors[0], out: new Float32Array(c.M * c.N).fill(NaN) }));
  yAsync = Array.from(await cg.linearAsync(x, [c.M, c.K], w, { lora: new cg.LoraAdapter(factors[0], [c.N, c.K]) }));
}
out({ route, wDense, ySync, yAsync, x: Array.from(x), factors: factors.map((f) => ({ A: Array.from(f.A), B: Array.from(f.B), alpha: f.alpha })) });
`);
  const x = Float32Array.from(v.x as number[]);
  const factors = (v.factors as Array<{ A: number[]; B: number[]; alpha: number }>).map((f) => ({ A: Float32Array.from(f.A), B: Float32Array.from(f.B), alpha: f.alpha }));
  expect((v.route as { runsOn: string }).runsOn).toBe('cuda');
  const wd = c.dtype === 'float32' ? Float64Array.from(v.wDense as number[]) : decode(Uint16Array.from(v.wDense as number[]), c.dtype);
  const x64 = Float64Array.from(x);
  const xMain = c.dtype === 'float32' ? x64 : decode(encode(x64, c.dtype), c.dtype); // the kernel's x (README)
  const adapters: Adapter64[] = factors.map((f, i) => ({ A64: Float64Array.from(f.A), B64: Float64Array.from(f.B), r: c.ranks[i], alpha: f.alpha }));
  const ref = loraLinearRef(xMain, x64, c.M, c.N, c.K, wd, wd.map(Math.abs), null, adapters, c.rows);
  for (const [mode, y] of [['sync', v.ySync], ['async', v.yAsync]] as const) {
    const msg = checkLoraLinear(Float32Array.from(y as number[]), 'float32', ref, c.M, c.N, c.K, 1, `${label} ${mode}; ${seedNote(seed)}`);
    if (msg) throw new Error(msg);
  }
});

test("the binding checks the LoRA row table before anything runs (ERR_NATIVE), and a good one gives alpha · t·Bt", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sim = require(ADDON);
  const M = 2, N = 8, K = 8, rsum = 2;
  const h = (src: ArrayBufferView) => {
    const a = sim.deviceAlloc({ bytes: src.byteLength });
    sim.copyToDevice({ handle: a, src });
    return a;
  };
  const x = h(new Uint16Array(M * K)); // zeros: y is the LoRA term alone
  const w = h(new Uint16Array(N * K));
  const out = sim.deviceAlloc({ bytes: M * N * 4 });
  const t = h(Float32Array.from([1, 2, 3, 4])); // T [M, rsum]
  const bt = h(Float32Array.from({ length: rsum * N }, (_, i) => i)); // Bt [rsum, N]
  const rows = sim.deviceAlloc({ bytes: 12 * M });
  const table = (offs: number[], rs: number[], alphas: number[]) => {
    const tb = new Int32Array(3 * M);
    tb.set(offs, 0);
    tb.set(rs, M);
    new Float32Array(tb.buffer, 8 * M, M).set(alphas);
    return tb;
  };
  const args = (lora: object) => ({ x, w, bias: null, out, M, N, K, dtype: 'float16', outDtype: 'float32', lora });
  const code = (f: () => unknown) => {
    try {
      f();
      return null;
    } catch (e) {
      return `${(e as Error).name} ${(e as { code?: string }).code}`;
    }
  };
  try {
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, table: table([1, 0], [2, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE'); // off + r > rsum
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, table: table([-1, 0], [1, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE');
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum, table: new Float32Array(3 * M) })))).toBe('TypeError ERR_NATIVE');
    expect(code(() => sim.linearDense(args({ t, bt, rows, rsum: 3, table: table([0, 0], [1, 1], [1, 1]) })))).toBe('RangeError ERR_NATIVE'); // t too small
    // Row 0: adapter rows 0..1, alpha 2; row 1: rows 1..1, alpha 0.5.
    sim.linearDense(args({ t, bt, rows, rsum, table: table([0, 1], [2, 1], [2, 0.5]) }));
    const y = sim.copyToHost({ handle: out, dst: new Float32Array(M * N) }) as Float32Array;
    const want: number[] = [];
    for (let n = 0; n < N; n++) want.push(2 * (1 * n + 2 * (N + n)));
    for (let n = 0; n < N; n++) want.push(0.5 * (4 * (N + n)));
    expect(Array.from(y)).toEqual(want);
  } finally {
    for (const a of [x, w, out, t, bt, rows]) sim.deviceFree(a);
  }
});
