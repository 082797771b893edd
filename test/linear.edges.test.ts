/**
 * Edges of the kernels' tiling, on every row of the (backend x ISA) matrix (test/helpers/matrix.ts)
 * and both formats: tiny and boundary shapes (N
 * around the 16-row panels and 32-row pairs, M around the register tiles and the 2:4 kernel
 * switch at M = 128, K of one group or around the 32-column superblocks), TypedArray views at
 * an offset inside a larger buffer (results land exactly in the view: guard elements on both
 * sides stay untouched), and thread counts from 1 to 1024.
 */
import * as cg from '../lib';
import {
  DType,
  bitsOf,
  checkLinear,
  decode,
  encode,
  keepColumnsBits,
  linearRef,
  mulberry32,
  pruneColumns,
  randomFloat32,
  seedFor,
  seedNote,
} from './helpers/reference';
import { Target, restore, targets, xAsComputed } from './helpers/matrix';

const ROWS = targets();
const FORMATS = ['dense', '2:4'] as const;
type Format = (typeof FORMATS)[number];
afterAll(restore);

interface Problem {
  x: Float32Array | Uint16Array;
  w: cg.Weight;
  ref: Float64Array;
  absSum: Float64Array;
  seed: number;
}

function problem(format: 'dense' | '2:4', M: number, N: number, K: number, xd: DType, wd: DType, label: string): Problem {
  const seed = seedFor(label);
  const rng = mulberry32(seed);
  const x = encode(randomFloat32(rng, M * K), xd);
  const wEnc = encode(randomFloat32(rng, N * K), wd);
  let wd64 = decode(wEnc, wd);
  let w: cg.Weight;
  if (format === 'dense') {
    w = cg.DenseWeight.from(wEnc, [N, K], { dtype: wd });
  } else {
    w = cg.Sparse24Weight.prune(wEnc, [N, K], { dtype: wd });
    const pb = keepColumnsBits(bitsOf(wEnc), pruneColumns(wd64, N, K), N, K);
    wd64 = decode(pb instanceof Uint32Array ? new Float32Array(pb.buffer) : pb, wd);
  }
  const { ref, absSum } = linearRef(xAsComputed(decode(x, xd), xd, format, wd), wd64, null, M, N, K);
  return { x, w, ref, absSum, seed };
}

// [M, N, K]
const BOUNDARY_SHAPES: Array<[number, number, number]> = [
  [1, 1, 4],
  [2, 1, 8],
  [1, 2, 4],
  [1, 15, 32],
  [1, 16, 32],
  [1, 17, 28],
  [4, 31, 36],
  [5, 32, 64],
  [3, 48, 68],
  [7, 63, 12],
  [10, 64, 96],
  [11, 65, 4],
  [13, 16, 128],
  [14, 8, 20],
  [15, 40, 4],
  [29, 9, 24],
  [127, 17, 36],
  [128, 17, 36],
  [129, 33, 40],
  [160, 3, 64],
];

describe('boundary shapes', () => {
  const cases = ROWS.flatMap((t) => FORMATS.map((f): [string, Format, Target] => [t.label, f, t]));
  test.each(cases)('%s %s', (_label, format, t) => {
    t.use();
    const failures: string[] = [];
    BOUNDARY_SHAPES.forEach(([M, N, K], i) => {
      const xd: DType = (['float32', 'float16', 'bfloat16'] as const)[i % 3];
      const wd: DType = (['float32', 'bfloat16', 'float16'] as const)[(i >> 1) % 3];
      const p = problem(format, M, N, K, xd, wd, `edge ${format} ${M} ${N} ${K}`);
      const y = cg.linear(p.x, [M, K], p.w, { dtype: xd === 'float32' ? undefined : xd, outDtype: 'float32' });
      const msg = checkLinear(y, 'float32', p.ref, p.absSum, M, N, K, `${t.label} ${format} M=${M} N=${N} K=${K} x ${xd} w ${wd}; ${seedNote(p.seed)}`);
      if (msg) failures.push(msg);
    });
    expect(failures).toEqual([]);
  });
});

describe('views at an offset inside a larger buffer', () => {
  const G = 7; // guard elements on each side
  const cases = ROWS.flatMap((t) => FORMATS.flatMap((f) => (['float32', 'float16', 'bfloat16'] as const).map((d): [string, Format, typeof d, Target] => [t.label, f, d, t])));
  test.each(cases)('%s %s, x and out %s: reads x and bias at their offsets, writes only inside out', async (_label, format, dt, t) => {
    t.use();
    for (const [M, N, K] of [
      [3, 33, 36],
      [130, 45, 68],
    ] as Array<[number, number, number]>) {
      const p = problem(format, M, N, K, dt, 'float32', `views ${format} ${dt} ${M}`);
      const rng = mulberry32(p.seed ^ 0x5a5a);
      const bias = randomFloat32(rng, N);
      const ref = p.ref.map((v, i) => v + bias[i % N]);
      const absSum = p.absSum.map((v, i) => v + Math.abs(bias[i % N]));
      // x, bias and out as subarrays of bigger buffers filled with junk / sentinels.
      const xBig = dt === 'float32' ? new Float32Array(M * K + 2 * G).fill(1e30) : new Uint16Array(M * K + 2 * G).fill(0x7c00);
      xBig.set(p.x, G);
      const biasBig = new Float32Array(N + 2 * G).fill(1e30);
      biasBig.set(bias, G);
      const SENT = dt === 'float32' ? -12345.5 : 0x1234;
      const outBig = dt === 'float32' ? new Float32Array(M * N + 2 * G).fill(NaN) : new Uint16Array(M * N + 2 * G).fill(0x7fff);
      outBig.fill(SENT, 0, G);
      outBig.fill(SENT, G + M * N);
      const out = outBig.subarray(G, G + M * N);
      const opts: cg.LinearOptions = { dtype: dt === 'float32' ? undefined : dt, bias: biasBig.subarray(G, G + N), out };
      const y = await cg.linearAsync(xBig.subarray(G, G + M * K), [M, K], p.w, opts);
      expect(y).toBe(out);
      expect(checkLinear(out, dt, ref, absSum, M, N, K, `${t.label} ${format} ${dt} M=${M}; ${seedNote(p.seed)}`)).toBeNull();
      const guards = [...Array.from(outBig.subarray(0, G)), ...Array.from(outBig.subarray(G + M * N))];
      expect(guards).toEqual(new Array(2 * G).fill(SENT));
    }
  });
});

describe('thread counts', () => {
  test.each(FORMATS)('%s: threads 1, 2, 3, 7, 64 and 1024 give results within the bound, sync and async', async (format) => {
    const M = 37;
    const N = 45;
    const K = 100;
    const p = problem(format, M, N, K, 'float32', 'float32', `threads ${format}`);
    for (const t of ROWS) {
      t.use();
      for (const threads of [1, 2, 3, 7, 64, 1024]) {
        const a = cg.linear(p.x, [M, K], p.w, { threads });
        const b = await cg.linearAsync(p.x, [M, K], p.w, { threads });
        for (const [y, how] of [[a, 'sync'], [b, 'async']] as const) {
          expect(checkLinear(y, 'float32', p.ref, p.absSum, M, N, K, `${format} ${t.label} threads ${threads} ${how}; ${seedNote(p.seed)}`)).toBeNull();
        }
      }
    }
  });
});
