/**
 * The LoRA shrink with K split over S = 1, 2, 4 and 8 warps per rank (native/cuda/lora_shrink.cuh,
 * kSplit; a launch without kSplit picks S from K: 1 below K = 1024, 2 from 1024, 8 from 4096),
 * through the addon's loraShrink, against float64 with the bound of lora_shrink.cuh's count
 * (|err| <= (K + 1) 2^-24 Σ|x A|), T poisoned with NaN (entries of rows without an adapter and
 * columns past a rank must stay NaN). Ranks 3 and 5 with S = 8 put one rank per block and leave
 * the warps past a rank idle at the barrier. The sums differ between the S (other additions), but
 * each is within the bound. A kSplit of 3 is refused, 16 is out of range.
 *
 * On the simulated device (CI; its threads are OS threads) K = 1100: with S = 8 each warp's first
 * pass covers its own 128 columns and warp 0 also the 76 past 1024. With
 * COMPRESSED_GEMM_BACKEND=cuda (jest.cuda.config.js: scripts/gpu-check.sh step 4 on a real GPU)
 * the same test runs on the CUDA addon at K = 11008, the LLM shape the timings use.
 */
import * as path from 'path';
import { shrinkTiles } from '../../lib/backends/cuda-lora';
import { codeOf } from '../helpers/expect-error';
import { shrinkViolations } from '../helpers/lowrank-reference';
import { decode, encode, mulberry32, seedFor, seedNote } from '../helpers/reference';

const GPU = process.env.COMPRESSED_GEMM_BACKEND === 'cuda';
const ADDON = GPU
  ? path.resolve(__dirname, '..', '..', 'build-cuda', 'Release', 'compressed_gemm_cuda.node')
  : path.resolve(__dirname, '..', '..', 'build', 'Release', 'compressed_gemm_cuda_sim.node');
const K = GPU ? 11008 : 1100;

test.each(['float32', 'bfloat16'] as const)(`the shrink kernel with K split over 1, 2, 4 and 8 warps, %s x, K = ${K}`, (xDtype) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const sim = require(ADDON);
  const seed = seedFor(`lora shrink split ${xDtype}`);
  const rng = mulberry32(seed);
  const M = 9, lda = K + 4, ranks = [3, 5], offsets = [0, 3], rsum = 8, tld = 5;
  const rowAdapter = Int32Array.from({ length: M }, (_, m) => (m === 4 ? -1 : m % 2));
  const rnd = () => (rng() < 0.5 ? -1 : 1) * (0.125 + 1.875 * rng());
  const xBits = encode(Float32Array.from({ length: M * K }, rnd), xDtype);
  const x64 = decode(xBits as Float32Array | Uint16Array, xDtype);
  const A = new Float32Array(rsum * lda);
  for (let j = 0; j < rsum; j++) for (let k = 0; k < lda; k++) A[j * lda + k] = k < K ? Math.fround(rnd()) : NaN;
  const { tiles } = shrinkTiles(rowAdapter, M, offsets, ranks);
  const h = (src: ArrayBufferView) => {
    const a = sim.deviceAlloc({ bytes: src.byteLength });
    sim.copyToDevice({ handle: a, src });
    return a;
  };
  const x = h(xBits), a = h(A), t = sim.deviceAlloc({ bytes: M * tld * 4 }), tilesDev = sim.deviceAlloc({ bytes: tiles.byteLength });
  const args = (o: object) => ({ x, xDtype, M, K, a, lda, rsum, tiles, tilesDev, t, tld, ...o });
  try {
    expect(codeOf(() => sim.loraShrink(args({ kSplit: 3 })))).toBe('RangeError ERR_NOT_SUPPORTED');
    expect(codeOf(() => sim.loraShrink(args({ kSplit: 16 })))).toBe('RangeError ERR_NATIVE');
    const bad: string[] = [];
    for (const kSplit of [1, 2, 4, 8, undefined]) {
      sim.copyToDevice({ handle: t, src: new Float32Array(M * tld).fill(NaN) });
      sim.loraShrink(args(kSplit === undefined ? {} : { kSplit }));
      const T = sim.copyToHost({ handle: t, dst: new Float32Array(M * tld) }) as Float32Array;
      bad.push(...shrinkViolations(T, { M, K, tld, lda, rowAdapter, ranks, offsets, x64, A }, `kSplit ${kSplit}: `));
    }
    expect(`${bad.slice(0, 5).join('\n')}${bad.length ? `\n(${bad.length} in all); ${seedNote(seed)}` : ''}`).toBe('');
  } finally {
    for (const d of [x, a, t, tilesDev]) sim.deviceFree(d);
  }
});

