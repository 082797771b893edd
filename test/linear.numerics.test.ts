/**
 * cg.linear / cg.linearAsync against a float64 reference (test/helpers/reference.ts), on every
 * row of the (backend x ISA) matrix (test/helpers/matrix.ts).
 *
 * Covering design: every weight format {dense, 2:4} x activation dtype x weight dtype gets its
 * own inputs (fresh, seeded, never zero) for 7 ragged shapes, and each row x {sync, async} runs
 * all 7 shapes on them. Across the shapes the other options rotate (no bias / float32 bias /
 * 16-bit bias; outDtype default / float32 / float16 / bfloat16; a caller-owned `out` poisoned
 * with NaN or a fresh result; default / 1 / 3 threads; for 16-bit weights a Float32Array rounded
 * by the library or raw bits; for 2:4 prune or compress), so each row x format x x-dtype x
 * w-dtype x mode sees every value of every option.
 *
 * Shapes: N odd (33, 45: tails of every 16/32-column tile), K a multiple of 4 but not of 16
 * (36, 100, 140, 260) plus K = 1028 (past the dense kernels' 1024-column K block, several
 * 2:4 superblocks and L1 slices), M from 1 to 130 (the 2:4 kernels switch to the M-vectorised
 * kernel at M >= 128, with a 2-row tail; the dense kernel K-blocks from M > 28).
 */
import * as cg from '../lib';
import { bitsOf, checkLinear, decode, DType, DTYPES, encode, keepColumnsBits, linearRef, mulberry32, poisoned, pruneColumns, randomFloat32, seedFor, seedNote } from './helpers/reference';
import { Target, cpuTargets, restore, targets, xAsComputed } from './helpers/matrix';

const INFO = cg.backend();
const DEFAULT_ISA = INFO.cpu.isa;
const ROWS = targets();

// On the simulated device (the cuda-sim project) the two K = 1028 shapes are left out: the
// simulator runs a K-step in about a millisecond, and the kernel's K loop (pipeline wrap-around,
// zero-filled tails) is already exercised by K = 100..260 here and by test/cuda-sim/gemm-dense.test.ts.
const SHAPES = [
  { M: 1, N: 33, K: 36 },
  { M: 3, N: 45, K: 100 },
  { M: 17, N: 33, K: 140 },
  { M: 40, N: 45, K: 260 },
  { M: 130, N: 45, K: 260 },
  { M: 40, N: 33, K: 1028 },
  { M: 3, N: 33, K: 1028 },
].filter((s) => !(INFO.cuda?.simulated && s.K > 260));

type Format = 'dense' | '2:4';
type BiasKind = 'none' | 'float32' | 'x-dtype';

interface Case {
  M: number;
  N: number;
  K: number;
  seed: number;
  x: Float32Array | Uint16Array;
  w: cg.Weight;
  wHow: string;
  ref: Float64Array;
  absSum: Float64Array;
  bias32: Float32Array;
  bias32d: Float64Array;
  bias16: Uint16Array | null;
  bias16d: Float64Array | null;
}

function makeCase(format: Format, xd: DType, wd: DType, s: number): Case {
  const { M, N, K } = SHAPES[s];
  const seed = seedFor(`linear ${format} x=${xd} w=${wd} shape ${s}`);
  const rng = mulberry32(seed);
  const x = encode(randomFloat32(rng, M * K), xd);
  const xd64 = decode(x, xd);
  const wRaw = randomFloat32(rng, N * K);
  const wEnc = encode(wRaw, wd); // the weight as the library will hold it (RNE for 16-bit)
  let wd64 = decode(wEnc, wd);
  // For 16-bit weights, half the shapes hand the library a Float32Array to round, half raw bits.
  const giveFloat32 = wd !== 'float32' && s % 2 === 0;
  let w: cg.Weight;
  let wHow: string;
  if (format === 'dense') {
    w = giveFloat32 ? cg.DenseWeight.from(wRaw, [N, K], { dtype: wd }) : cg.DenseWeight.from(wEnc, [N, K], { dtype: wd });
    wHow = giveFloat32 ? 'from(Float32Array)' : 'from(bits)';
  } else {
    const cols = pruneColumns(wd64, N, K);
    const prunedBits = keepColumnsBits(bitsOf(wEnc), cols, N, K);
    const pruned: Float32Array | Uint16Array =
      prunedBits instanceof Uint32Array ? new Float32Array(prunedBits.buffer) : prunedBits;
    wd64 = decode(pruned, wd);
    if (s % 3 === 2) {
      w = cg.Sparse24Weight.compress(pruned, [N, K], { dtype: wd });
      wHow = 'compress(pruned)';
    } else {
      w = giveFloat32 ? cg.Sparse24Weight.prune(wRaw, [N, K], { dtype: wd }) : cg.Sparse24Weight.prune(wEnc, [N, K], { dtype: wd });
      wHow = giveFloat32 ? 'prune(Float32Array)' : 'prune(bits)';
    }
  }
  const { ref, absSum } = linearRef(xAsComputed(xd64, xd, format, wd), wd64, null, M, N, K);
  const bias32 = randomFloat32(rng, N);
  const bias16 = xd === 'float32' ? null : (encode(randomFloat32(rng, N), xd) as Uint16Array);
  return {
    M, N, K, seed, x, w, wHow, ref, absSum,
    bias32, bias32d: decode(bias32, 'float32'),
    bias16, bias16d: bias16 ? decode(bias16, xd) : null,
  };
}

const OUT_CHOICES: Array<DType | undefined> = [undefined, 'float32', 'float16', 'bfloat16'];
const BIAS_CHOICES: BiasKind[] = ['none', 'float32', 'x-dtype'];
const THREAD_CHOICES: Array<number | undefined> = [undefined, 1, 3];

async function runCase(c: Case, xd: DType, rowIdx: number, mode: 'sync' | 'async', s: number, label: string): Promise<void> {
  const j = mode === 'sync' ? 0 : 1;
  const outChoice = OUT_CHOICES[(s + 2 * rowIdx + 3 * j) % 4];
  const outDtype: DType = outChoice ?? xd;
  let biasKind = BIAS_CHOICES[(s + rowIdx + j) % 3];
  if (biasKind === 'x-dtype' && xd === 'float32') biasKind = 'float32';
  const useOut = (s + rowIdx + j) % 2 === 0;
  const threads = THREAD_CHOICES[(s + j + 2 * rowIdx) % 3];
  const { M, N, K } = c;

  const options: cg.LinearOptions = {};
  if (xd !== 'float32') options.dtype = xd;
  if (outChoice !== undefined) options.outDtype = outChoice;
  if (threads !== undefined) options.threads = threads;
  let ref = c.ref;
  let absSum = c.absSum;
  if (biasKind !== 'none') {
    const b = biasKind === 'float32' ? c.bias32 : (c.bias16 as Uint16Array);
    const bd = biasKind === 'float32' ? c.bias32d : (c.bias16d as Float64Array);
    options.bias = b;
    ref = new Float64Array(M * N);
    absSum = new Float64Array(M * N);
    for (let i = 0; i < M * N; i++) {
      ref[i] = c.ref[i] + bd[i % N];
      absSum[i] = c.absSum[i] + Math.abs(bd[i % N]);
    }
  }
  const out = useOut ? poisoned(outDtype, M * N) : undefined;
  if (out) options.out = out;

  const y = mode === 'sync' ? cg.linear(c.x, [M, K], c.w, options) : await cg.linearAsync(c.x, [M, K], c.w, options);

  const what =
    `${label} shape ${s} [M=${M} N=${N} K=${K}] w ${c.wHow}, bias ${biasKind}, outDtype ${outChoice ?? `(default ${xd})`}, ` +
    `${useOut ? 'poisoned out buffer' : 'fresh result'}, threads ${threads ?? 'default'}; ${seedNote(c.seed)}`;
  if (out) expect(y).toBe(out);
  else expect(y).toBeInstanceOf(outDtype === 'float32' ? Float32Array : Uint16Array);
  expect(checkLinear(y, outDtype, ref, absSum, M, N, K, what)).toBeNull();
}

afterAll(restore);

test('the machine offers at least the scalar ISA, and the default is the best one', () => {
  // About the CPU instruction sets as such: the matrix's CPU rows.
  const ISAS = cpuTargets().map((t) => t.isa);
  expect(ISAS).toContain('scalar');
  // (COMPRESSED_GEMM_CPU_ISA set by whoever runs the tests picks another default.)
  if (!(process.env.COMPRESSED_GEMM_CPU_ISA ?? '').trim()) expect(DEFAULT_ISA).toBe(ISAS[ISAS.length - 1]);
});

for (const format of ['dense', '2:4'] as Format[]) {
  for (const xd of DTYPES) {
    for (const wd of DTYPES) {
      describe(`${format} weight (${wd}), x ${xd}`, () => {
        let cases: Case[] = [];
        beforeAll(() => {
          cases = SHAPES.map((_, s) => makeCase(format, xd, wd, s));
        });
        ROWS.forEach((t, rowIdx) => {
          for (const mode of ['sync', 'async'] as const) {
            test(`${t.label} ${mode}: every output within the float32-accumulation bound`, async () => {
              t.use();
              if (t.isa !== null) expect(cg.backend().cpu.isa).toBe(t.isa);
              for (let s = 0; s < SHAPES.length; s++) {
                await runCase(cases[s], xd, rowIdx, mode, s, `${format} w=${wd} x=${xd} ${t.label} ${mode}`);
              }
            });
          }
        });
      });
    }
  }
}

describe('ISA paths agree with each other', () => {
  // Same inputs through every row: each result is checked against the reference (above) and,
  // here, the paths may differ only by float32 summation order, never by more than the bound.
  test.each(['dense', '2:4'] as Format[])('%s: M=130 N=45 K=260, float32', (format) => {
    const c = makeCase(format, 'float32', 'float32', 4);
    for (const t of ROWS) {
      t.use();
      const y = cg.linear(c.x, [c.M, c.K], c.w) as Float32Array;
      expect(checkLinear(y, 'float32', c.ref, c.absSum, c.M, c.N, c.K, `${format} ${t.label}; ${seedNote(c.seed)}`)).toBeNull();
    }
    restore();
  });
});

describe('bias is added exactly once, to the right column', () => {
  // w chosen so that x.w^T is tiny next to the bias: a bias added twice (say once per K block),
  // to a neighbouring column, or not at all shows up at once. Shapes: one K block; K = 1028 at
  // M = 40 (the dense kernels split K into blocks there); M = 130 (the M-vectorised 2:4 kernel).
  const SHAPES_B: Array<[number, number, number]> = [
    [5, 37, 20],
    [40, 33, 1028],
    [130, 45, 68],
  ];
  const cases = ROWS.flatMap((t) => (['dense', '2:4'] as Format[]).map((f): [string, Format, Target] => [t.label, f, t]));
  test.each(cases)('%s %s, sync and async', async (_label, format, t) => {
    t.use();
    for (const [M, N, K] of SHAPES_B) {
      // (Seeded by the ISA name on a CPU row, as before the matrix: the same inputs.)
      const seed = seedFor(`bias ${t.isa ?? t.label} ${format} ${M}`);
      const rng = mulberry32(seed);
      const x = randomFloat32(rng, M * K);
      const w = new Float32Array(N * K);
      for (let i = 0; i < N * K; i++) w[i] = (i % 4 === 1 ? 1 : 0) * 2 ** -20 * (1 + (i % 7)); // 2:4-compatible
      const bias = new Float32Array(N);
      for (let n = 0; n < N; n++) bias[n] = 1000 * (n + 1);
      const weight = format === 'dense' ? cg.DenseWeight.from(w, [N, K]) : cg.Sparse24Weight.compress(w, [N, K]);
      const { ref, absSum } = linearRef(decode(x, 'float32'), decode(w, 'float32'), decode(bias, 'float32'), M, N, K);
      const y1 = cg.linear(x, [M, K], weight, { bias }) as Float32Array;
      expect(checkLinear(y1, 'float32', ref, absSum, M, N, K, `${t.label} ${format} bias sync; ${seedNote(seed)}`)).toBeNull();
      const y2 = (await cg.linearAsync(x, [M, K], weight, { bias, outDtype: 'float32' })) as Float32Array;
      expect(checkLinear(y2, 'float32', ref, absSum, M, N, K, `${t.label} ${format} bias async; ${seedNote(seed)}`)).toBeNull();
    }
    restore();
  });
});
