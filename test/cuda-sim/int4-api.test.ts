/**
 * INT4 weights on the CUDA backend through the public API, on the simulated device
 * (COMPRESSED_GEMM_BACKEND=cuda-sim, in a child process): Int4Weight.quantize / fromGPTQ (with
 * act-order) / fromAWQ weights run the W4A16 kernel (native/cuda/gemm_int4.cuh) for host arrays
 * (float16, bfloat16 and float32 x) and device tensors, sync and async, before and after
 * toDevice(); canonical() and toDense() read back from the device placement are bit-identical to
 * the host's; the routes say where each INT4 op runs; and the typed errors.
 *
 * Reference: float64, from the canonical arrays by the format's published rule (README "INT4"),
 * computed here: w[n][k] = fround((q - z) s) with k's group (gIdx[k] for act-order). For GPTQ
 * and AWQ the canonical codes, zeros and scales are the ones this file packed into the checkpoint
 * (test/helpers/quant-reference.ts packGPTQ / packAWQ), so the reference does not go through the
 * importers. A float32 host x is rounded to float16 by the library first (documented), so its
 * reference uses x rounded to float16 here.
 * Bound: gemm-int4.test.ts's, derived from the kernel: checkLinear with K = int4CudaBoundK(K)
 * and c = 1, plus the 16-bit output's rounding.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeChild, runChild } from '../helpers/child';
import { int4CudaBoundK, packAWQ, packGPTQ, packNibbles } from '../helpers/quant-reference';
import { DType, checkLinear, decode, encode, linearRef, mulberry32, randNonZero, seedFor, seedNote } from '../helpers/reference';

const ENV = { COMPRESSED_GEMM_BACKEND: 'cuda-sim' };

function child(body: string): Record<string, unknown> {
  const r = runChild(body, ENV, { timeoutMs: 60_000 });
  if (r.status !== 0 || r.error || !('value' in r)) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}`);
  return r.value as Record<string, unknown>;
}

const seed = seedFor('cuda-sim int4 api');
const rng = mulberry32(seed);

interface Canon {
  q: number[]; // [N, K] codes
  scales: number[]; // [N, G] values
  zeros: number[] | null; // [N, G]
  gIdx: number[] | null;
}

/** The reference weight [N, K] by the published rule. */
function dequant(c: Canon, N: number, K: number): Float64Array {
  const G = c.scales.length / N;
  const group = K / G;
  const w = new Float64Array(N * K);
  for (let n = 0; n < N; ++n) {
    for (let k = 0; k < K; ++k) {
      const g = c.gIdx ? c.gIdx[k] : Math.floor(k / group);
      const z = c.zeros ? c.zeros[n * G + g] : 8;
      w[n * K + k] = Math.fround((c.q[n * K + k] - z) * c.scales[n * G + g]);
    }
  }
  return w;
}

function check(what: string, y: number[] | Uint16Array, outDtype: DType, x: Float64Array, w: Float64Array, bias: number[] | null, M: number, N: number, K: number): void {
  const { ref, absSum } = linearRef(x, w, bias ? Float64Array.from(bias) : null, M, N, K);
  const arr = outDtype === 'float32' ? Float32Array.from(y as number[]) : Uint16Array.from(y as ArrayLike<number>);
  expect(checkLinear(arr, outDtype, ref, absSum, M, N, int4CudaBoundK(K), `${what}; ${seedNote(seed)}`, 1)).toBeNull();
}

const randCodes = (n: number) => Array.from({ length: n }, () => Math.floor(rng() * 16));
const randX = (n: number) => Array.from({ length: n }, () => randNonZero(rng));

// A: quantize, group 32, symmetric, float16 scales. B: GPTQ with act-order (zeros 1..16, float16
// scales). C: AWQ (zeros 0..15, float32 scales). D: quantize per channel with zero points.
const A = { M: 5, N: 72, K: 256 };
const B = { M: 17, N: 40, K: 128, group: 32 };
const C = { M: 1, N: 48, K: 192, group: 64 };
const D = { M: 3, N: 24, K: 104 };
const wA = randX(A.N * A.K);
const wD = randX(D.N * D.K);
const xA = randX(A.M * A.K), xB = randX(B.M * B.K), xC = randX(C.M * C.K), xD = randX(D.M * D.K);
const biasA = randX(A.N);

function gptqCase() {
  const { N, K, group } = B;
  const G = K / group;
  const q = randCodes(N * K);
  const zeros = Array.from({ length: N * G }, () => 1 + Math.floor(rng() * 16)); // GPTQ stores zero - 1: 1..16
  const scales16 = encode(Array.from({ length: N * G }, () => Math.abs(randNonZero(rng)) / 16), 'float16') as Uint16Array;
  const order = Array.from({ length: K }, (_, k) => k).sort(() => rng() - 0.5);
  const gIdx = new Array<number>(K);
  order.forEach((k, i) => (gIdx[k] = Math.floor(i / group)));
  const packed = packGPTQ(Uint8Array.from(q), Uint8Array.from(zeros), N, K, G);
  const scalesGN = new Uint16Array(G * N);
  for (let n = 0; n < N; ++n) for (let g = 0; g < G; ++g) scalesGN[g * N + n] = scales16[n * G + g];
  return {
    canon: { q, scales: Array.from(decode(scales16, 'float16')), zeros, gIdx } as Canon,
    parts: { qweight: Array.from(packed.qweight), qzeros: Array.from(packed.qzeros), scales: Array.from(scalesGN), gIdx },
  };
}

function awqCase() {
  const { N, K, group } = C;
  const G = K / group;
  const q = randCodes(N * K);
  const zeros = Array.from({ length: N * G }, () => Math.floor(rng() * 16));
  const scales = Array.from(Float32Array.from({ length: N * G }, () => Math.abs(randNonZero(rng)) / 16));
  const packed = packAWQ(Uint8Array.from(q), Uint8Array.from(zeros), N, K, G);
  const scalesGN = new Array<number>(G * N);
  for (let n = 0; n < N; ++n) for (let g = 0; g < G; ++g) scalesGN[g * N + n] = scales[n * G + g];
  return { canon: { q, scales, zeros, gIdx: null } as Canon, parts: { qweight: Array.from(packed.qweight), qzeros: Array.from(packed.qzeros), scales: scalesGN } };
}

const gptq = gptqCase();
const awq = awqCase();

// The inputs travel in a file: a snippet is one command-line argument, at most 128 KiB.
const inputsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cg-int4-api-')), 'inputs.json');
fs.writeFileSync(inputsFile, JSON.stringify({ A, B, C, D, wA, wD, biasA, xA, xB, xC, xD, gptq: gptq.parts, awq: awq.parts }));
afterAll(() => fs.rmSync(path.dirname(inputsFile), { recursive: true, force: true }));

const INPUTS = `
const { A, B, C, D, wA, wD, biasA, xA, xB, xC, xD, gptq, awq } = JSON.parse(require('fs').readFileSync(${JSON.stringify(inputsFile)}, 'utf8'));
const arr = (a) => Array.from(a);
const bits = (v, dtype, shape) => cg.DenseWeight.from(Float32Array.from(v), shape, { dtype }).toDense(); // x rounded to nearest even
const err = (f) => { try { f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
const canon = (w) => { const c = w.canonical(); return { q: arr(c.qweight), scales: arr(c.scales), zeros: c.zeros && arr(c.zeros), gIdx: c.gIdx && arr(c.gIdx) }; };
`;

/** Canonical arrays as the child reports them (qweight packed, scales float16 bits or values) -> Canon. */
function canonOf(c: { q: number[]; scales: number[]; zeros: number[] | null; gIdx: number[] | null }, N: number, K: number, f16: boolean): Canon {
  const q: number[] = [];
  for (let n = 0; n < N; ++n) for (let k = 0; k < K; ++k) q.push(k & 1 ? c.q[n * (K / 2) + (k >> 1)] >> 4 : c.q[n * (K / 2) + (k >> 1)] & 15);
  return { q, scales: f16 ? Array.from(decode(Uint16Array.from(c.scales), 'float16')) : c.scales, zeros: c.zeros, gIdx: c.gIdx };
}

test('INT4 weights run on the simulated device: quantize, GPTQ act-order, AWQ, per channel; host arrays and tensors, sync and async, toDevice; canonical and toDense read back', () => {
  const v = child(`${INPUTS}
const routes = cg.backend().routes.filter((r) => r.format === 'int4' && r.op === 'linear').map((r) => [r.activations, r.runsOn]);
// A: quantize (group 32, symmetric), float16 x, bias, float32 out; the same through linearAsync.
const a = cg.Int4Weight.quantize(Float32Array.from(wA), [A.N, A.K], { groupSize: 32 });
const xA16 = bits(xA, 'float16', [A.M, A.K]);
const yA = arr(cg.linear(xA16, [A.M, A.K], a, { dtype: 'float16', bias: Float32Array.from(biasA), outDtype: 'float32' }));
const yAasync = arr(await cg.linearAsync(xA16, [A.M, A.K], a, { dtype: 'float16', bias: Float32Array.from(biasA), outDtype: 'float32' }));
const yAf32x = arr(cg.linear(Float32Array.from(xA), [A.M, A.K], a, { outDtype: 'float32' }));
// B: GPTQ with act-order, bfloat16 x, bfloat16 out; host arrays and a tensor (x permuted on the device).
const b = cg.Int4Weight.fromGPTQ({ qweight: Int32Array.from(gptq.qweight), qzeros: Int32Array.from(gptq.qzeros), scales: Uint16Array.from(gptq.scales), gIdx: Int32Array.from(gptq.gIdx) }, [B.N, B.K]);
const xB16 = bits(xB, 'bfloat16', [B.M, B.K]);
const yB = arr(cg.linear(xB16, [B.M, B.K], b, { dtype: 'bfloat16' }));
const tB = cg.Tensor.fromHost(xB16, [B.M, B.K], { dtype: 'bfloat16' });
const yBt = arr(await (await cg.linearAsync(tB, [B.M, B.K], b, { outDtype: 'float32' })).toHost());
// C: AWQ, float16 x as a tensor; then toDevice (device-only) and the same again; canonical/toDense before and after.
const c = cg.Int4Weight.fromAWQ({ qweight: Int32Array.from(awq.qweight), qzeros: Int32Array.from(awq.qzeros), scales: Float32Array.from(awq.scales) }, [C.N, C.K]);
const cBefore = canon(c), denseBefore = arr(c.toDense());
const xC16 = bits(xC, 'float16', [C.M, C.K]);
const tC = cg.Tensor.fromHost(xC16, [C.M, C.K], { dtype: 'float16' });
const yCt = arr(cg.linear(tC, [C.M, C.K], c, { outDtype: 'float16' }).toHostSync());
c.toDevice();
const cAfter = canon(c), denseAfter = arr(c.toDense());
const yCdev = arr(cg.linear(xC16, [C.M, C.K], c, { dtype: 'float16', outDtype: 'float32' }));
const cInt8 = err(() => cg.linear(xC16, [C.M, C.K], c, { dtype: 'float16', activations: 'int8' })); // a CPU op, device-only weight
// D: quantize per channel with zero points, bfloat16 tensor x.
const d = cg.Int4Weight.quantize(Float32Array.from(wD), [D.N, D.K], { groupSize: -1, symmetric: false, scaleDtype: 'float32' });
const xD16 = bits(xD, 'bfloat16', [D.M, D.K]);
const yDt = arr(cg.linear(cg.Tensor.fromHost(xD16, [D.M, D.K], { dtype: 'bfloat16' }), [D.M, D.K], d, { outDtype: 'float32' }).toHostSync());
const yDint8 = arr(cg.linear(Float32Array.from(xD), [D.M, D.K], d, { activations: 'int8' })); // still the CPU kernel
out({
  routes,
  canonA: canon(a), xA16: arr(xA16), yA, yAasync, yAf32x,
  xB16: arr(xB16), yB, yBt, canonB: canon(b),
  cBefore, cAfter, denseSame: denseBefore.every((x, i) => Object.is(x, denseAfter[i])), xC16: arr(xC16), yCt, yCdev, cInt8, deviceC: c.device,
  canonD: canon(d), xD16: arr(xD16), yDt, yDint8Len: yDint8.length,
  f32Tensor: err(() => cg.linear(cg.Tensor.fromHost(Float32Array.from(xD), [D.M, D.K]), [D.M, D.K], d)),
  tooBig: err(() => cg.linear(Float32Array.from(xD.map((v, i) => (i === 7 ? 1e6 : v))), [D.M, D.K], d)),
});
`);
  expect(v.routes).toEqual([['native', 'cuda'], ['fp8', 'cpu'], ['int8', 'cpu']]);

  const wa = dequant(canonOf(v.canonA as never, A.N, A.K, true), A.N, A.K);
  const xa = decode(Uint16Array.from(v.xA16 as number[]), 'float16');
  check('A quantize g32, float16 x, bias', v.yA as number[], 'float32', xa, wa, biasA, A.M, A.N, A.K);
  check('A linearAsync', v.yAasync as number[], 'float32', xa, wa, biasA, A.M, A.N, A.K);
  // The child passes Float32Array.from(xA): the float32 values are what the library rounds to
  // float16 (rounding xA's float64 values straight to float16 would differ where float32's rounding
  // lands on a float16 tie: double rounding, about one value in 2^13).
  check('A float32 x (rounded to float16)', v.yAf32x as number[], 'float32', decode(encode(Float32Array.from(xA), 'float16') as Uint16Array, 'float16'), wa, null, A.M, A.N, A.K);

  // B: the reference from the codes packed into the checkpoint here; the weight's canonical()
  // keeps the same codes and gIdx (the import is bit-exact).
  const wb = dequant(gptq.canon, B.N, B.K);
  const xb = decode(Uint16Array.from(v.xB16 as number[]), 'bfloat16');
  check('B GPTQ act-order, bfloat16 x and out', Uint16Array.from(v.yB as number[]), 'bfloat16', xb, wb, null, B.M, B.N, B.K);
  check('B GPTQ act-order, tensor, linearAsync', v.yBt as number[], 'float32', xb, wb, null, B.M, B.N, B.K);
  expect((v.canonB as { gIdx: number[] }).gIdx).toEqual(gptq.canon.gIdx);

  const wc = dequant(awq.canon, C.N, C.K);
  const xc = decode(Uint16Array.from(v.xC16 as number[]), 'float16');
  check('C AWQ, float16 tensor, float16 out', Uint16Array.from(v.yCt as number[]), 'float16', xc, wc, null, C.M, C.N, C.K);
  check('C AWQ after toDevice', v.yCdev as number[], 'float32', xc, wc, null, C.M, C.N, C.K);
  expect(v.cAfter).toEqual(v.cBefore);
  expect(v.denseSame).toBe(true);
  expect(v.deviceC).toBe(0);
  expect(v.cInt8).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED' });

  const wd = dequant(canonOf(v.canonD as never, D.N, D.K, false), D.N, D.K);
  check('D per channel, zero points, bfloat16 tensor', v.yDt as number[], 'float32', decode(Uint16Array.from(v.xD16 as number[]), 'bfloat16'), wd, null, D.M, D.N, D.K);
  expect(v.yDint8Len).toBe(D.M * D.N);
  expect(v.f32Tensor).toMatchObject({ name: 'TypeError', code: 'ERR_DTYPE' });
  expect(v.tooBig).toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_ARG', message: expect.stringMatching(/float16's range/) });
});

test('a group the kernel cannot take (not a multiple of 16) is ERR_NOT_SUPPORTED on the CUDA backend, before anything is uploaded', () => {
  const N = 8, K = 48, G = 2; // groups of 24
  const q = Uint8Array.from({ length: N * K }, () => Math.floor(rng() * 16));
  const v = child(`
const w = cg.Int4Weight.fromCanonical({ qweight: Uint8Array.from(${JSON.stringify(Array.from(packNibbles(q, N, K)))}), scales: new Float32Array(${N * G}).fill(0.5) }, [${N}, ${K}]);
const mem0 = cg.cuda.memory();
let e = null;
try { cg.linear(new Float32Array(${K}), [1, ${K}], w); } catch (x) { e = { name: x.name, code: x.code, message: x.message }; }
out({ e, same: JSON.stringify(mem0) === JSON.stringify(cg.cuda.memory()) });
`);
  expect(v.e).toMatchObject({ name: 'Error', code: 'ERR_NOT_SUPPORTED', message: expect.stringMatching(/multiple of 16/) });
  expect(v.same).toBe(true);
});
