/**
 * The PTX wrappers' simulated faces (native/cuda/ptx/) against the ISA and CuTe
 * (test/helpers/ptx-reference.ts), through the probe kernels (native/cuda/probes/) that dump each
 * lane's raw registers on the simulated device (runProbe of compressed_gemm_cuda_sim.node).
 *
 * Inputs are identity-coded where a layout is checked (a 16-bit value names the element it came
 * from), and small integers where arithmetic is checked (every partial sum of the mma is exact in
 * float32, so the result is exact whatever the summation order: the ISA leaves it unspecified).
 */
import * as path from 'path';
import {
  LDMATRIX_FORMS,
  LdmatrixForm,
  ORDERED_NIBBLES,
  SparseIdx,
  cute,
  decompress24,
  isa,
  ldmatrixNum,
  lop3Ref,
  lutOf,
  matmulRef,
  packC,
  packFragment,
  packMeta,
  prmtRef,
  fma16Ref,
  shflRef,
} from '../helpers/ptx-reference';
import { bf16ToNumber, f16ToNumber, mulberry32, numberToBf16, numberToF16, seedFor, seedNote } from '../helpers/reference';

const ROOT = path.resolve(__dirname, '..', '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');

interface ProbeResult {
  ok: boolean;
  error: string | null;
  regs: number[];
}
interface SimAddon {
  simulated: boolean;
  runProbe(args: Record<string, unknown> & { kind: string }): ProbeResult;
}

const sim: SimAddon = require(ADDON);

function run(args: Record<string, unknown> & { kind: string }): number[] {
  const r = sim.runProbe(args);
  if (!r.ok) throw new Error(`probe ${args.kind} refused: ${r.error}`);
  return r.regs;
}

const hex = (x: number) => '0x' + (x >>> 0).toString(16).padStart(8, '0');
const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];

/** Fails with every lane/register that differs (the first few), not just the first. */
function expectRegs(got: number[], want: number[], what: string, perLane: number): void {
  expect(got.length).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    if (got[i] >>> 0 !== want[i] >>> 0) bad.push(`lane ${Math.floor(i / perLane)} reg ${i % perLane}: got ${hex(got[i])}, want ${hex(want[i])}`);
  }
  if (bad.length) throw new Error(`${what}: ${bad.length} registers differ\n  ${bad.slice(0, 8).join('\n  ')}`);
}

// ---- the two sources ----------------------------------------------------------------------------

test('the ISA formulas and CuTe layouts agree on every lane of mma m16n8k16 and of all six ldmatrix forms', () => {
  const aSeen = new Set<string>(), bSeen = new Set<string>(), cSeen = new Set<string>();
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < 4; r++) {
      for (let h = 0; h < 2; h++) {
        expect(cute.mmaA(lane, r, h)).toEqual(isa.mmaA(lane, r, h));
        const e = isa.mmaA(lane, r, h);
        aSeen.add(`${e.row},${e.col}`);
      }
    }
    for (let r = 0; r < 2; r++) {
      for (let h = 0; h < 2; h++) {
        expect(cute.mmaB(lane, r, h)).toEqual(isa.mmaB(lane, r, h));
        const e = isa.mmaB(lane, r, h);
        bSeen.add(`${e.row},${e.col}`);
      }
    }
    for (let i = 0; i < 4; i++) {
      expect(cute.mmaC(lane, i)).toEqual(isa.mmaC(lane, i));
      const e = isa.mmaC(lane, i);
      cSeen.add(`${e.row},${e.col}`);
    }
  }
  // Each fragment covers its matrix exactly once.
  expect([aSeen.size, bSeen.size, cSeen.size]).toEqual([256, 128, 128]);

  for (const form of LDMATRIX_FORMS) {
    const num = ldmatrixNum(form), trans = form.endsWith('trans');
    for (let m = 0; m < num; m++) for (let row = 0; row < 8; row++) expect(cute.ldmatrixRowLane(form, 8 * m + row)).toBe(isa.ldmatrixRowLane(m, row));
    for (let lane = 0; lane < 32; lane++) {
      for (let r = 0; r < num; r++) for (let h = 0; h < 2; h++) expect(cute.ldmatrix(form, lane, r, h)).toEqual(isa.ldmatrix(lane, r, h, trans));
    }
  }
});

// ---- ldmatrix -------------------------------------------------------------------------------------

// The probe's shared memory: the row that lane L addresses holds L * 256 + c in column c.
const ldmCode = (rowLane: number, col: number) => rowLane * 256 + col;

function ldmatrixWant(form: LdmatrixForm, source: 'isa' | 'cute'): number[] {
  const num = ldmatrixNum(form), trans = form.endsWith('trans');
  const want: number[] = [];
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < num; r++) {
      const half = (h: number) => {
        if (source === 'isa') {
          const e = isa.ldmatrix(lane, r, h, trans);
          return ldmCode(isa.ldmatrixRowLane(e.matrix, e.row), e.col);
        }
        const e = cute.ldmatrix(form, lane, r, h);
        return ldmCode(cute.ldmatrixRowLane(form, 8 * e.matrix + e.row), e.col);
      };
      want.push((half(0) | (half(1) << 16)) >>> 0);
    }
  }
  return want;
}

describe('ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{,.trans}.shared.b16', () => {
  test.each(LDMATRIX_FORMS)('%s: every lane register as the ISA and CuTe say', (form) => {
    const regs = run({ kind: `ldmatrix_${form}` });
    expectRegs(regs, ldmatrixWant(form, 'isa'), `ldmatrix ${form} vs ISA`, ldmatrixNum(form));
    expectRegs(regs, ldmatrixWant(form, 'cute'), `ldmatrix ${form} vs CuTe`, ldmatrixNum(form));
  });

  test.each([
    ['x1', 8],
    ['x1_trans', 31],
    ['x2', 16],
    ['x2_trans', 20],
  ] as [LdmatrixForm, number][])('%s ignores the address of lane %d, which it does not use', (form, lane) => {
    for (const fault of ['outside', 'misaligned']) {
      const regs = run({ kind: `ldmatrix_${form}`, faultLane: lane, fault });
      expectRegs(regs, ldmatrixWant(form, 'isa'), `ldmatrix ${form} with lane ${lane} ${fault}`, ldmatrixNum(form));
    }
  });

  test.each([
    ['x4', 5, 'misaligned', /not 16-byte aligned/],
    ['x4_trans', 31, 'outside', /not inside the block's shared memory/],
    ['x2', 13, 'outside', /not inside the block's shared memory/],
    ['x1', 7, 'misaligned', /not 16-byte aligned/],
  ] as [LdmatrixForm, number, string, RegExp][])('%s refuses lane %d\'s %s row address, naming the lane', (form, lane, fault, why) => {
    const r = sim.runProbe({ kind: `ldmatrix_${form}`, faultLane: lane, fault });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(new RegExp(`kernel probe_ldmatrix, block \\(0,0,0\\), thread \\(${lane},0,0\\)`));
    expect(r.error).toMatch(new RegExp(`lane ${lane}'s address`));
    expect(r.error).toMatch(why);
    expect(r.error).toContain(`ldmatrix.sync.aligned.m8n8.${form.replace('_', '.')}.shared.b16`);
  });
});

// ---- mma ------------------------------------------------------------------------------------------

type Dt = 'f16' | 'bf16';
const toBits = (dt: Dt, v: number) => (dt === 'f16' ? numberToF16(v) : numberToBf16(v));
const fromBits = (dt: Dt, h: number) => (dt === 'f16' ? f16ToNumber(h) : bf16ToNumber(h));

function matrix<T = number>(rows: number, cols: number, f: (r: number, c: number) => T): T[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => f(r, c)));
}

/** Encodes a matrix of exactly representable values; throws if one is not. */
function encode(dt: Dt, m: number[][]): number[][] {
  return m.map((row) =>
    row.map((v) => {
      const h = toBits(dt, v);
      if (fromBits(dt, h) !== v) throw new Error(`${v} is not exact in ${dt}`);
      return h;
    }),
  );
}

/** Runs the mma probe on A (16x16), B (16x8), C (16x8); returns D (16x8) read back through the ISA's C layout. */
function mma(dt: Dt, a: number[][], b: number[][], c: number[][]): { d: number[][]; regs: number[] } {
  const regs = run({
    kind: `mma_${dt}`,
    a: packFragment(encode(dt, a), 4, isa.mmaA),
    b: packFragment(encode(dt, b), 2, isa.mmaB),
    c: packC(c),
  });
  const d = matrix(16, 8, () => NaN);
  for (let lane = 0; lane < 32; lane++) {
    for (let i = 0; i < 4; i++) {
      const e = isa.mmaC(lane, i);
      d[e.row][e.col] = f32(regs[lane * 4 + i]);
    }
  }
  return { d, regs };
}

function expectMatrix(got: number[][], want: number[][], what: string): void {
  const bad: string[] = [];
  for (let r = 0; r < want.length; r++) {
    for (let c = 0; c < want[0].length; c++) if (!Object.is(got[r][c], want[r][c])) bad.push(`(${r},${c}): got ${got[r][c]}, want ${want[r][c]}`);
  }
  if (bad.length) throw new Error(`${what}: ${bad.length} elements differ\n  ${bad.slice(0, 8).join('\n  ')}`);
}

const zeros = (r: number, c: number) => matrix(r, c, () => 0);

describe.each(['f16', 'bf16'] as Dt[])('mma.sync.aligned.m16n8k16.row.col.f32.%s', (dt) => {
  test('A = I: D is B, each D register where the ISA and CuTe put (row, col)', () => {
    const a = matrix(16, 16, (r, c) => (r === c ? 1 : 0));
    const b = matrix(16, 8, (k, n) => k * 8 + n + 1); // 1..128, exact in bf16 too
    const { regs } = mma(dt, a, b, zeros(16, 8));
    for (let lane = 0; lane < 32; lane++) {
      for (let i = 0; i < 4; i++) {
        const e = isa.mmaC(lane, i), ec = cute.mmaC(lane, i);
        expect(f32(regs[lane * 4 + i])).toBe(b[e.row][e.col]);
        expect(f32(regs[lane * 4 + i])).toBe(b[ec.row][ec.col]);
      }
    }
  });

  test('B = the unit columns k = n and k = n + 8: D is A\'s left and right halves', () => {
    const a = matrix(16, 16, (r, k) => r * 16 + k); // 0..255, exact in bf16 too
    for (const shift of [0, 8]) {
      const b = matrix(16, 8, (k, n) => (k === n + shift ? 1 : 0));
      const { d } = mma(dt, a, b, zeros(16, 8));
      expectMatrix(d, matrix(16, 8, (r, n) => a[r][n + shift]), `B picks columns ${shift}..${shift + 7}`);
    }
  });

  test('A = B = 0: D is C, read and written in place (d aliases c)', () => {
    const c = matrix(16, 8, (r, n) => r * 8 + n + 0.5);
    expectMatrix(mma(dt, zeros(16, 16), zeros(16, 8), c).d, c, 'D = C');
  });

  test('random small integers: D equals the float64 A·B + C exactly', () => {
    const seed = seedFor(`mma ${dt} random`);
    const rng = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
    for (let rep = 0; rep < 4; rep++) {
      const a = matrix(16, 16, () => int(-8, 8));
      const b = matrix(16, 8, () => int(-8, 8));
      const c = matrix(16, 8, () => int(-64, 64) / 4);
      expectMatrix(mma(dt, a, b, c).d, matmulRef(a, b, c), `rep ${rep}, ${seedNote(seed)}`);
    }
  });

  test('from shared memory: cp.async 16 + ldmatrix.x4 (A) + ldmatrix.x2.trans (B) over K = 32 equal the float64 product', () => {
    const seed = seedFor(`mma ${dt} tile`);
    const rng = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
    const a = matrix(16, 32, () => int(-6, 6));
    const b = matrix(32, 8, () => int(-6, 6));
    const regs = run({
      kind: `mma_${dt}_tile`,
      a: Uint16Array.from(encode(dt, a).flat()),
      b: Uint16Array.from(encode(dt, b).flat()),
    });
    const d = matrix(16, 8, () => NaN);
    for (let lane = 0; lane < 32; lane++) {
      for (let i = 0; i < 4; i++) {
        const e = isa.mmaC(lane, i);
        d[e.row][e.col] = f32(regs[lane * 4 + i]);
      }
    }
    expectMatrix(d, matmulRef(a, b, null), `tile, ${seedNote(seed)}`);
  });
});

// ---- mma.sp ---------------------------------------------------------------------------------------

// Metadata for the lanes a selector does not name: every nibble unordered (idx0 = idx1), which the
// simulator refuses wherever it reads it. So a test passes only if these lanes are never read.
const SP_POISON = [0x00000000, 0x55555555, 0xaaaaaaaa, 0xffffffff];
const spPoison = (lane: number) => SP_POISON[(lane >> 2) % 4];

/** Kept positions for a 16x32 A: an ordered pair per row and chunk, drawn from the six the ISA allows. */
function randomIdx(rng: () => number): SparseIdx {
  return matrix(16, 8, () => {
    const n = ORDERED_NIBBLES[Math.floor(rng() * ORDERED_NIBBLES.length)];
    return [n & 3, n >> 2] as [number, number];
  });
}

/**
 * Runs the mma.sp probe: compressed A values (16x16) at positions idx, B (32x8), C (16x8) under
 * `selector`; returns D (16x8) read back through the ISA's C layout.
 */
function mmaSp(dt: Dt, selector: number, values: number[][], idx: SparseIdx, b: number[][], c: number[][]): number[][] {
  const regs = run({
    kind: `mma_sp_${dt}`,
    selector,
    a: packFragment(encode(dt, values), 4, isa.mmaSpA),
    b: packFragment(encode(dt, b), 4, isa.mmaSpB),
    c: packC(c),
    e: packMeta(idx, selector, spPoison),
  });
  const d = matrix(16, 8, () => NaN);
  for (let lane = 0; lane < 32; lane++) {
    for (let i = 0; i < 4; i++) {
      const e = isa.mmaC(lane, i);
      d[e.row][e.col] = f32(regs[lane * 4 + i]);
    }
  }
  return d;
}

test('mma.sp m16n8k32 fragments: A, B and each selector\'s metadata cover their matrices exactly once', () => {
  const aSeen = new Set<string>(), bSeen = new Set<string>();
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < 4; r++) {
      for (let h = 0; h < 2; h++) {
        const a = isa.mmaSpA(lane, r, h), b = isa.mmaSpB(lane, r, h);
        aSeen.add(`${a.row},${a.col}`);
        bSeen.add(`${b.row},${b.col}`);
      }
    }
  }
  expect([aSeen.size, bSeen.size]).toEqual([256, 256]);
  for (const sel of [0, 1]) {
    const slots = new Set<string>(), lanes = new Set<number>();
    for (let r = 0; r < 16; r++) {
      for (let c = 0; c < 8; c++) {
        const { lane, shift } = isa.mmaSpMeta(sel, r, c);
        slots.add(`${lane},${shift}`);
        lanes.add(lane);
        expect(lane % 4 >> 1).toBe(sel); // T0, T1 (selector 0) or T2, T3 (selector 1) of each group
      }
    }
    expect(slots.size).toBe(128); // 16 lanes x 8 nibbles, none shared
    expect(lanes.size).toBe(16);
  }
  // The ordered set is exactly the nibbles with idx0 < idx1.
  expect(ORDERED_NIBBLES).toEqual(Array.from({ length: 16 }, (_, n) => n).filter((n) => (n & 3) < n >> 2));
});

describe.each(['f16', 'bf16'] as Dt[])('mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.%s', (dt) => {
  test.each([0, 1])('selector %i: the logical 16x32 A it multiplies holds each kept value where the metadata says (random per row and chunk), zeros elsewhere', (sel) => {
    const seed = seedFor(`mma.sp ${dt} ${sel} layout`);
    const idx = randomIdx(mulberry32(seed));
    expect(new Set(idx.flat().map(([i0, i1]) => i0 | (i1 << 2))).size).toBe(6); // non-uniform: all six pairs occur
    const values = matrix(16, 16, (r, j) => r * 16 + j + 1); // 1..256, each names its slot; exact in bf16 too
    const want = decompress24(values, idx);
    for (let shift = 0; shift < 4; shift++) {
      // B's column n picks logical column n + 8 * shift: D shows A's columns 8 * shift .. + 7.
      const b = matrix(32, 8, (k, n) => (k === n + 8 * shift ? 1 : 0));
      expectMatrix(mmaSp(dt, sel, values, idx, b, zeros(16, 8)), matrix(16, 8, (r, n) => want[r][n + 8 * shift]), `columns ${8 * shift}.., ${seedNote(seed)}`);
    }
  });

  test.each([0, 1])('selector %i: random small integers and metadata, C accumulated in place: D equals the float64 decompressed A·B + C exactly', (sel) => {
    const seed = seedFor(`mma.sp ${dt} ${sel} random`);
    const rng = mulberry32(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
    for (let rep = 0; rep < 4; rep++) {
      const idx = randomIdx(rng);
      const values = matrix(16, 16, () => (rng() < 0.5 ? -1 : 1) * int(1, 8)); // never 0: every kept value counts
      const b = matrix(32, 8, () => int(-8, 8));
      const c = matrix(16, 8, () => int(-64, 64) / 4);
      // Every partial sum is an integer or quarter below 2^11: exact in float32, so the order the ISA leaves open does not matter.
      expectMatrix(mmaSp(dt, sel, values, idx, b, c), matmulRef(decompress24(values, idx), b, c), `rep ${rep}, ${seedNote(seed)}`);
    }
  });
});

test.each([0, 1])("mma.sp f16, selector %i: LLVM's sm_80 hardware answer (mlir/test/Integration/Dialect/SparseTensor/GPU/CUDA/sparse-mma-2-4-f16.mlir)", (sel) => {
  // Compressed A[i][j] = i + j + 1, kept at chunk positions 0 and 2 (metadata 0x8888 in every
  // 16-bit half), B[k][n] = n - k, C = 0. The published D (f16 accumulators on an A100; every
  // value a multiple of 8 below 2^13, so exact in f16 and float32 alike), row by row: row i,
  // column n is D0[i] + n * step[i] with the rows' D0 and step as printed there.
  const published = [
    [-2720, -2584], [-2960, -2808], [-3200, -3032], [-3440, -3256], [-3680, -3480], [-3920, -3704], [-4160, -3928], [-4400, -4152],
    [-4640, -4376], [-4880, -4600], [-5120, -4824], [-5360, -5048], [-5600, -5272], [-5840, -5496], [-6080, -5720], [-6320, -5944],
  ].map(([d0, d1]) => Array.from({ length: 8 }, (_, n) => d0 + n * (d1 - d0)));
  expect(published[15][7]).toBe(-3688); // the table's last entry
  const idx: SparseIdx = matrix(16, 8, () => [0, 2] as [number, number]);
  expect(packMeta(idx, sel, () => 0).filter((e) => e !== 0)).toEqual(new Uint32Array(16).fill(0x88888888));
  const d = mmaSp('f16', sel, matrix(16, 16, (i, j) => i + j + 1), idx, matrix(32, 8, (k, n) => n - k), zeros(16, 8));
  expectMatrix(d, published, `LLVM's published D, selector ${sel}`);
});

test('mma.sp probe arguments: a selector other than 0 or 1, or a metadata array of the wrong length, is a coded RangeError', () => {
  const args = (o: Record<string, unknown>) => ({
    kind: 'mma_sp_f16', selector: 0, a: new Uint32Array(128), b: new Uint32Array(128), c: new Float32Array(128), e: new Uint32Array(32), ...o,
  });
  for (const bad of [args({ selector: 2 }), args({ selector: -1 }), args({ e: new Uint32Array(31) }), args({ b: new Uint32Array(64) })]) {
    let err: (Error & { code?: string }) | undefined;
    try {
      sim.runProbe(bad);
    } catch (e) {
      err = e as Error & { code?: string };
    }
    // The addon's RangeError comes from another realm than jest's: compared by name.
    expect({ name: err?.name, code: err?.code }).toEqual({ name: 'RangeError', code: 'ERR_NATIVE' });
  }
});

// ---- cp.async -------------------------------------------------------------------------------------

describe('cp.async.{ca,cg}.shared.global with zero-fill', () => {
  test.each([4, 8, 16])('cp-size %d: src-size bytes copied, the rest zeros; wait_group 1 completes only the older group', (bytes) => {
    const seed = seedFor(`cp.async ${bytes}`);
    const rng = mulberry32(seed);
    const src = new Uint8Array(64 * bytes);
    for (let i = 0; i < src.length; i++) src[i] = 1 + ((i * 37 + 11) % 254); // never 0 nor 0xFF
    const srcBytes = new Int32Array(64);
    for (let i = 0; i < 64; i++) srcBytes[i] = i < bytes + 1 ? i : Math.floor(rng() * (bytes + 1)); // every size 0..bytes, then random
    const regs = run({ kind: 'cp_async', bytes, srcBytes, src });
    const words = bytes / 4;
    const landed = (slot: number) => {
      const out = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) out[i] = i < srcBytes[slot] ? src[slot * bytes + i] : 0;
      return Array.from(new Uint32Array(out.buffer));
    };
    const want: number[] = [];
    const poisoned = new Array(words).fill(0xffffffff);
    for (let lane = 0; lane < 32; lane++) {
      // after wait_group 1: group 1 landed, group 2 still pending (the simulator keeps it poisoned)
      want.push(...landed(lane), ...poisoned);
      // after wait_group 0: both landed
      want.push(...landed(lane), ...landed(32 + lane));
    }
    expectRegs(regs, want, `cp.async ${bytes}, ${seedNote(seed)}`, 4 * words);
  });
});

// ---- shfl.sync ------------------------------------------------------------------------------------

describe('shfl.sync.{idx,bfly,down}.b32 over the full warp', () => {
  const values = Uint32Array.from({ length: 32 }, (_, l) => (0xa5000000 | (l * 0x010101)) >>> 0);

  test('idx: uniform and per-lane source lanes (b taken mod 32)', () => {
    const rng = mulberry32(seedFor('shfl idx'));
    const cases = [
      new Uint32Array(32).fill(0),
      new Uint32Array(32).fill(17),
      Uint32Array.from({ length: 32 }, (_, l) => 31 - l),
      Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)),
      Uint32Array.from({ length: 32 }, () => 32 + Math.floor(rng() * 200)), // beyond 31: b[4:0]
    ];
    for (const operand of cases) expectRegs(run({ kind: 'shfl', mode: 'idx', values, operand }), shflRef('idx', values, operand), 'shfl idx', 1);
  });

  test('bfly: the reduction masks 16, 8, 4, 2, 1, 0 and per-lane masks', () => {
    const rng = mulberry32(seedFor('shfl bfly'));
    const cases = [16, 8, 4, 2, 1, 0].map((m) => new Uint32Array(32).fill(m));
    cases.push(Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)));
    for (const operand of cases) expectRegs(run({ kind: 'shfl', mode: 'bfly', values, operand }), shflRef('bfly', values, operand), 'shfl bfly', 1);
  });

  test('down: deltas 0, 1, 5, 16, 31 (lanes past 31 keep their own value) and per-lane deltas', () => {
    const rng = mulberry32(seedFor('shfl down'));
    const cases = [0, 1, 5, 16, 31].map((d) => new Uint32Array(32).fill(d));
    cases.push(Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)));
    for (const operand of cases) expectRegs(run({ kind: 'shfl', mode: 'down', values, operand }), shflRef('down', values, operand), 'shfl down', 1);
    // a spot check of the formula itself: delta 1 shifts down, lane 31 keeps its own
    const one = shflRef('down', values, new Uint32Array(32).fill(1));
    expect(one[0]).toBe(values[1]);
    expect(one[31]).toBe(values[31]);
  });
});

// ---- lop3, prmt -----------------------------------------------------------------------------------

function randomWords(rng: () => number): Uint32Array {
  return Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 0x100000000) >>> 0);
}

describe('lop3.b32 and prmt.b32', () => {
  test('lop3: all 256 LUTs on random inputs, bit by bit as the ISA defines', () => {
    const seed = seedFor('lop3');
    const rng = mulberry32(seed);
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng);
    a[0] = 0; b[0] = 0; c[0] = 0; // and the corners: every (a, b, c) bit combination in lane 1
    a[1] = 0xf0f0f0f0; b[1] = 0xcccccccc; c[1] = 0xaaaaaaaa;
    const luts = Uint32Array.from({ length: 256 }, (_, i) => i);
    const regs = run({ kind: 'lop3', a, b, c, luts });
    const want: number[] = [];
    for (let lane = 0; lane < 32; lane++) for (let l = 0; l < 256; l++) want.push(lop3Ref(l, a[lane], b[lane], c[lane]));
    expectRegs(regs, want, `lop3, ${seedNote(seed)}`, 256);
    // On (0xF0.., 0xCC.., 0xAA..) every LUT reproduces itself in each byte.
    for (let l = 0; l < 256; l++) expect(regs[1 * 256 + l] >>> 0).toBe((l * 0x01010101) >>> 0);
  });

  test('lop3: the LUTs the dequantizers use compute the functions their names say (F(0xF0, 0xCC, 0xAA))', () => {
    const named: [number, (a: number, b: number, c: number) => number][] = [
      [0xea, (a, b, c) => (a & b) | c],
      [0x6a, (a, b, c) => (a & b) ^ c],
      [0x96, (a, b, c) => a ^ b ^ c],
      [0xf0, (a) => a],
      [0xcc, (_a, b) => b],
      [0xaa, (_a, _b, c) => c],
      [0xe8, (a, b, c) => (a & b) | (a & c) | (b & c)],
      [0xca, (a, b, c) => (a & b) | (~a & c)],
      [0x80, (a, b, c) => a & b & c],
      [0xfe, (a, b, c) => a | b | c],
    ];
    const rng = mulberry32(seedFor('lop3 named'));
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng);
    const regs = run({ kind: 'lop3', a, b, c, luts: Uint32Array.from(named.map(([l]) => l)) });
    named.forEach(([lut, f], i) => {
      expect(lutOf(f)).toBe(lut);
      for (let lane = 0; lane < 32; lane++) expect(regs[lane * named.length + i] >>> 0).toBe(f(a[lane], b[lane], c[lane]) >>> 0);
    });
  });

  test('prmt (default mode): random selectors with and without sign replication, and the usual ones', () => {
    const seed = seedFor('prmt');
    const rng = mulberry32(seed);
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng); // c's upper 16 bits are ignored
    const usual = [0x3210, 0x7654, 0x0123, 0x5410, 0x7632, 0x4140, 0x8888, 0xfedc, 0x9b8a, 0x1f2f3f4f];
    usual.forEach((sel, i) => (c[i] = sel));
    a[0] = 0x80ff7f01; b[0] = 0x00817e80; // bytes on both sides of the sign bit
    const regs = run({ kind: 'prmt', a, b, c });
    expectRegs(regs, Array.from(a, (_, l) => prmtRef(a[l], b[l], c[l])), `prmt, ${seedNote(seed)}`, 1);
    expect(regs[0] >>> 0).toBe(a[0]); // 0x3210: a itself
    expect(regs[1] >>> 0).toBe(b[1]); // 0x7654: b itself
  });
});

// ---- fma.rn.{f16,bf16}x2 ---------------------------------------------------------------------------

describe('fma.rn.f16x2 and fma.rn.bf16x2 (the INT4 dequantization subtracts with them)', () => {
  const halves = (w: number) => [w & 0xffff, w >>> 16];
  const pack = (lo: number, hi: number) => (lo | (hi << 16)) >>> 0;
  /** One probe of 32 lanes x 2 halves against fma16Ref; NaN only has to stay a NaN. */
  const check = (bf16: boolean, a: Uint32Array, b: Uint32Array, c: Uint32Array, what: string) => {
    const regs = run({ kind: bf16 ? 'fma_bf16x2' : 'fma_f16x2', a, b, c });
    const bad: string[] = [];
    const isNaN16 = (h: number) => (bf16 ? (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0 : (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
    for (let lane = 0; lane < 32; lane++) {
      const got = halves(regs[lane]), ah = halves(a[lane]), bh = halves(b[lane]), ch = halves(c[lane]);
      for (let h = 0; h < 2; h++) {
        const want = fma16Ref(ah[h], bh[h], ch[h], bf16);
        const ok = want === -1 ? isNaN16(got[h]) : got[h] === want;
        if (!ok) bad.push(`lane ${lane} half ${h}: fma(${ah[h].toString(16)}, ${bh[h].toString(16)}, ${ch[h].toString(16)}) = ${got[h].toString(16)}, want ${want === -1 ? 'NaN' : want.toString(16)}`);
      }
    }
    expect(`${what}: ${bad.slice(0, 6).join('; ')}`).toBe(`${what}: `);
  };

  test.each([false, true])('bf16 %s: random bit patterns (normals, subnormals, infinities, NaN), 8 x 64 cases', (bf16) => {
    const seed = seedFor(`fma16x2 ${bf16}`);
    const rng = mulberry32(seed);
    for (let i = 0; i < 8; ++i) {
      // Random exponents near each other in half the words (sums that cancel or round), anywhere in the others.
      const word = () => (i % 2 ? randomWords(rng) : Uint32Array.from({ length: 32 }, () => {
        const v = () => { const x = (rng() * 8 - 4) * (rng() < 0.5 ? -1 : 1); return bf16 ? numberToBf16(x) : numberToF16(x); };
        return pack(v(), v());
      }));
      check(bf16, word(), word(), word(), `random ${i}, ${seedNote(seed)}`);
    }
  });

  test.each([false, true])('bf16 %s: the dequantization (magic + q) * 1 - (magic + z) = q - z exactly, and a product on a tie nudged by a tiny c', (bf16) => {
    const magic = bf16 ? 0x4300 : 0x6400, one = bf16 ? 0x3f80 : 0x3c00;
    const a: number[] = [], b: number[] = [], c: number[] = [];
    for (let q = 0; q < 16; ++q) for (let z = 0; z <= 16; ++z) { a.push(magic | q); b.push(one); c.push(0x8000 | magic | z); }
    const want = a.map((_, i) => (bf16 ? numberToBf16 : numberToF16)((a[i] & 15) - (c[i] & 31)));
    // 1.5 x (1 + 1 ulp) lies exactly half-way between two 16-bit values: c = +0, +tiny, -tiny picks even, up, down.
    const tie = bf16 ? [0x3fc0, 0x3f81] : [0x3e00, 0x3c01];
    for (const t of [0, numberToBf16(2 ** -100), 0x8000 | numberToBf16(2 ** -100)]) {
      a.push(tie[0]); b.push(tie[1]); c.push(bf16 ? t : t & 0x8000 ? 0x8001 : t ? 0x0001 : 0);
    }
    while (a.length % 64) { a.push(0); b.push(0); c.push(0); }
    for (let i = 0; i < a.length; i += 64) {
      const w = (v: number[]) => Uint32Array.from({ length: 32 }, (_, l) => pack(v[i + 2 * l], v[i + 2 * l + 1]));
      check(bf16, w(a), w(b), w(c), `dequantization cases ${i}..${i + 63}`);
    }
    for (let i = 0; i < want.length; ++i) expect(fma16Ref(a[i], b[i], c[i], bf16)).toBe(want[i]); // q - z, exact
    const n = want.length;
    expect([fma16Ref(a[n], b[n], c[n], bf16), fma16Ref(a[n + 1], b[n + 1], c[n + 1], bf16), fma16Ref(a[n + 2], b[n + 2], c[n + 2], bf16)])
      .toEqual(bf16 ? [0x3fc2, 0x3fc2, 0x3fc1] : [0x3e02, 0x3e02, 0x3e01]);
  });
});

test('the addon is the simulated device', () => {
  expect(sim.simulated).toBe(true);
});
