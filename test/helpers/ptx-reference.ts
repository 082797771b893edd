/**
 * What the PTX wrappers (native/cuda/ptx/) must compute, from two sources written down here
 * independently of native/:
 *   - the PTX ISA (9.0; sections named at each function, summarised in ../shared/PTX.md), in the
 *     ISA's own phrasing where it has one (e.g. mma's "row = groupID for a0, a1, a4, a5");
 *   - CUTLASS/CuTe's thread-value layouts (include/cute/atom/mma_traits_sm80.hpp,
 *     include/cute/atom/copy_traits_sm75.hpp), copied as shape:stride data and evaluated by the
 *     small layout evaluator below.
 * The tests check that the two agree, then that the simulator agrees with them.
 */
import { exponentOf } from './quant-reference';
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from './reference';

// ---- CuTe layouts -------------------------------------------------------------------------------

/** A CuTe shape or stride: an integer or a tuple of them, nested. */
export type Nested = number | Nested[];

function flatten(x: Nested): number[] {
  return typeof x === 'number' ? [x] : x.flatMap(flatten);
}

/**
 * A CuTe layout shape:stride as a function of a 1-D coordinate: the coordinate is split
 * colexicographically over the (flattened) shape, first mode fastest, and dotted with the strides.
 */
export function layout(shape: Nested, stride: Nested): (i: number) => number {
  const s = flatten(shape);
  const d = flatten(stride);
  if (s.length !== d.length) throw new Error('layout: shape and stride differ in rank');
  const size = s.reduce((a, b) => a * b, 1);
  return (i: number) => {
    if (!(i >= 0 && i < size)) throw new Error(`layout: coordinate ${i} outside size ${size}`);
    let off = 0;
    for (let m = 0; m < s.length; m++) {
      off += (i % s[m]) * d[m];
      i = Math.floor(i / s[m]);
    }
    return off;
  };
}

/** A thread-value layout ((thread shape, value shape) : (thread stride, value stride)). */
export function tvLayout(thrShape: Nested, thrStride: Nested, valShape: Nested, valStride: Nested): (thr: number, val: number) => number {
  const t = layout(thrShape, thrStride);
  const v = layout(valShape, valStride);
  return (thr, val) => t(thr) + v(val);
}

/** Row/column of a matrix element (for B of mma: row = k, col = n). */
export interface Elem {
  row: number;
  col: number;
}

/** An element of matrix `matrix` of an ldmatrix (its rows given by lanes 8*matrix .. 8*matrix+7). */
export interface LdmElem {
  matrix: number;
  row: number;
  col: number;
}

// ---- the ISA's formulas -----------------------------------------------------------------------

export const isa = {
  /**
   * mma.m16n8k16 A fragment, f16/bf16 (ISA §9.7.14.5.8, "Matrix Fragments for mma.m16n8k16 with
   * floating point type"): a thread holds a0..a7, two per register (a_{2r} in bits [15:0] of
   * register r); groupID = laneid >> 2, threadID_in_group = laneid % 4;
   *   row = groupID for a0, a1, a4, a5; groupID + 8 for a2, a3, a6, a7
   *   col = threadID_in_group * 2 + (i & 0x1) for a_i, i < 4; + 8 for i >= 4.
   */
  mmaA(lane: number, reg: number, half: number): Elem {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 || (i >= 4 && i < 6) ? groupID : groupID + 8;
    const col = i < 4 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return { row, col };
  },
  /** B fragment (16x8, row = k): b0..b3; row = tig * 2 + (i & 1) for i < 2, + 8 for i >= 2; col = groupID. */
  mmaB(lane: number, reg: number, half: number): Elem {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return { row, col: groupID };
  },
  /** C/D fragment (16x8 float32): c0..c3; row = groupID for c0, c1, groupID + 8 for c2, c3; col = tig * 2 + (i & 1). */
  mmaC(lane: number, i: number): Elem {
    const groupID = lane >> 2, tig = lane % 4;
    return { row: i < 2 ? groupID : groupID + 8, col: tig * 2 + (i & 1) };
  },
  /**
   * mma.sp m16n8k32 A fragment, f16/bf16 (ISA §9.7.14.6.2.2): a0..a7, two per register, each "two
   * non-zero elements out of 4 consecutive elements"; row = groupID for a_i, i < 2 or 4 <= i < 6,
   * groupID + 8 otherwise; the chunk is [firstcol .. firstcol + 3], firstcol = threadID_in_group * 4
   * for i < 4, + 16 for i >= 4. Returned as a position of the compressed 16x16 matrix: its column
   * 2 * (firstcol / 4) + (i & 1) is the (i & 1)-th kept value of that chunk (the lower column first).
   */
  mmaSpA(lane: number, reg: number, half: number): Elem {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 || (i >= 4 && i < 6) ? groupID : groupID + 8;
    const firstcol = i < 4 ? tig * 4 : tig * 4 + 16;
    return { row, col: 2 * (firstcol / 4) + (i & 1) };
  },
  /** mma.sp m16n8k32 B fragment (32x8, row = k; ISA Figure 121): b0..b7; row = tig * 2 + (i & 1) + 8 * (i >> 1), col = groupID. */
  mmaSpB(lane: number, reg: number, half: number): Elem {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    return { row: tig * 2 + (i & 1) + 8 * (i >> 1), col: groupID };
  },
  /**
   * Where the metadata of row `row` (0..15), 4-wide chunk `chunk` (0..7) of A lives (ISA
   * §9.7.14.6.1 and Figure 122): "a thread-pair within a group of four consecutive threads
   * contributes the sparsity metadata ... 0 (threads T0, T1) or 1 (threads T2, T3)"; in the figure
   * the first thread of the pair holds columns 0..15 and the second 16..31, rows 0..7 in bits
   * [15:0] and rows 8..15 in bits [31:16], chunk by chunk from bit 0.
   */
  mmaSpMeta(selector: number, row: number, chunk: number): { lane: number; shift: number } {
    const pair = [4 * (row % 8) + 2 * selector, 4 * (row % 8) + 2 * selector + 1];
    const lane = chunk < 4 ? pair[0] : pair[1];
    const shift = (row < 8 ? 0 : 16) + 4 * (chunk % 4);
    return { lane, shift };
  },
  /** The lane whose address gives row `row` of matrix `matrix` (ISA §9.7.14.5.15: addr0..addr7 are matrix 0's rows, ...). */
  ldmatrixRowLane(matrix: number, row: number): number {
    return 8 * matrix + row;
  },
  /**
   * ldmatrix .m8n8 .b16 (ISA §9.7.14.5.15): each register of a thread holds a fragment of one
   * matrix (register j: matrix j); a group of four threads holds one row: thread L gets row L / 4,
   * elements 2(L % 4) and 2(L % 4) + 1 (the lower in bits [15:0]). With .trans the matrix is read
   * column-major: the same positions of the transpose, i.e. [row 2(L % 4) + half][col L / 4].
   */
  ldmatrix(lane: number, reg: number, half: number, trans: boolean): LdmElem {
    const r = Math.floor(lane / 4), c = 2 * (lane % 4) + half;
    return trans ? { matrix: reg, row: c, col: r } : { matrix: reg, row: r, col: c };
  },
};

// ---- CuTe's layouts -----------------------------------------------------------------------------

// mma_traits_sm80.hpp, SM80_16x8x16_F16F16F16F16_TN (which the F32F16F16F32 and F32BF16BF16F32
// traits inherit): ALayout ((4,8),(2,2,2)):((32,1),(16,8,128)) into (M16,K16); BLayout
// ((4,8),(2,2)):((16,1),(8,64)) into (N8,K16); CLayout SM80_16x8_Row ((4,8),(2,2)):((32,1),(16,8))
// into (M16,N8). Coordinates are column-major (m + 16k, n + 8k, m + 16n). Value v of a 16-bit
// operand is half v % 2 of register v / 2.
const cuteA = tvLayout([4, 8], [32, 1], [2, 2, 2], [16, 8, 128]);
const cuteB = tvLayout([4, 8], [16, 1], [2, 2], [8, 64]);
const cuteC = tvLayout([4, 8], [32, 1], [2, 2], [16, 8]);

// copy_traits_sm75.hpp. SrcLayout: (thread, value) -> bit of the reference, which is the rows of
// all matrices one after another, 128 bits each; evaluated at value 0 it gives the row a thread
// addresses. x1 ((8,4),128):((128,0),1), x2 ((16,2),128):((128,0),1), x4 (32,128):(128,1): the
// stride-0 mode makes the upper lanes repeat the lower ones' rows. DstLayout: (thread, value) ->
// bit of the reference. _N (SM75_U32x{1,2,4}_LDSM_N): value = bit + 32 * register. _T
// (SM75_U16x{2,4,8}_LDSM_T): value = bit + 16 * half + 32 * register.
interface LdsmTraits {
  src: (thr: number) => number;
  dst: (thr: number, val: number) => number;
}
const SRC_X1 = layout([8, 4], [128, 0]);
const SRC_X2 = layout([16, 2], [128, 0]);
const SRC_X4 = layout(32, 128);
const LDSM: Record<LdmatrixForm, LdsmTraits> = {
  x1: { src: SRC_X1, dst: tvLayout(32, 32, 32, 1) },
  x2: { src: SRC_X2, dst: tvLayout(32, 32, [32, 2], [1, 1024]) },
  x4: { src: SRC_X4, dst: tvLayout(32, 32, [32, 4], [1, 1024]) },
  x1_trans: { src: SRC_X1, dst: tvLayout([4, 8], [256, 16], [16, 2], [1, 128]) },
  x2_trans: { src: SRC_X2, dst: tvLayout([4, 8], [256, 16], [16, 2, 2], [1, 128, 1024]) },
  x4_trans: { src: SRC_X4, dst: tvLayout([4, 8], [256, 16], [16, 2, 4], [1, 128, 1024]) },
};

export const cute = {
  mmaA(lane: number, reg: number, half: number): Elem {
    const off = cuteA(lane, 2 * reg + half);
    return { row: off % 16, col: Math.floor(off / 16) };
  },
  mmaB(lane: number, reg: number, half: number): Elem {
    const off = cuteB(lane, 2 * reg + half);
    return { row: Math.floor(off / 8), col: off % 8 }; // (n, k) column-major: n = off % 8, k = off / 8
  },
  mmaC(lane: number, i: number): Elem {
    const off = cuteC(lane, i);
    return { row: off % 16, col: Math.floor(off / 16) };
  },
  /** The lowest lane whose SrcLayout row is reference row `refRow` (lanes mapped by stride 0 repeat lower ones). */
  ldmatrixRowLane(form: LdmatrixForm, refRow: number): number {
    const src = LDSM[form].src;
    for (let t = 0; t < 32; t++) if (src(t) === 128 * refRow) return t;
    throw new Error(`no lane addresses row ${refRow} in ${form}`);
  },
  /** ldmatrix element of register `reg`, half `half` of `lane`, as (matrix, row, col) of the reference rows. */
  ldmatrix(form: LdmatrixForm, lane: number, reg: number, half: number): LdmElem {
    const t = LDSM[form];
    // _N: value = bit + 32 * reg, the half's first bit is 16 * half; _T: value = bit + 16 * half + 32 * reg.
    const bit = t.dst(lane, 32 * reg + 16 * half);
    const refRow = Math.floor(bit / 128), col = (bit % 128) / 16;
    if (!Number.isInteger(col)) throw new Error('ldmatrix: a 16-bit value not on a 16-bit boundary');
    return { matrix: Math.floor(refRow / 8), row: refRow % 8, col };
  },
};

export type LdmatrixForm = 'x1' | 'x2' | 'x4' | 'x1_trans' | 'x2_trans' | 'x4_trans';
export const LDMATRIX_FORMS: LdmatrixForm[] = ['x1', 'x2', 'x4', 'x1_trans', 'x2_trans', 'x4_trans'];
export function ldmatrixNum(form: LdmatrixForm): number {
  return Number(form[1]);
}

// ---- bit operations ------------------------------------------------------------------------------

/** lop3.b32 (ISA §9.7.8.6), bit by bit: bit i of d is bit ((a_i << 2) | (b_i << 1) | c_i) of immLut. */
export function lop3Ref(immLut: number, a: number, b: number, c: number): number {
  let d = 0;
  for (let i = 0; i < 32; i++) {
    const idx = (((a >>> i) & 1) << 2) | (((b >>> i) & 1) << 1) | ((c >>> i) & 1);
    d |= ((immLut >>> idx) & 1) << i;
  }
  return d >>> 0;
}

/** The immLut of a bitwise function F (ISA §9.7.8.6): F(0xF0, 0xCC, 0xAA). */
export function lutOf(f: (a: number, b: number, c: number) => number): number {
  return f(0xf0, 0xcc, 0xaa) & 0xff;
}

/**
 * prmt.b32, default mode (ISA §9.7.9.7): tmp64 = (b << 32) | a; for result byte k, ctl[k] =
 * c[4k+3:4k]; ReadByte copies byte ctl & 7 of tmp64, or, when ctl & 8, replicates that byte's
 * sign (its msb) over all 8 bits.
 */
export function prmtRef(a: number, b: number, c: number): number {
  const bytes = [a, a >>> 8, a >>> 16, a >>> 24, b, b >>> 8, b >>> 16, b >>> 24].map((x) => x & 0xff);
  let d = 0;
  for (let k = 0; k < 4; k++) {
    const ctl = (c >>> (4 * k)) & 0xf;
    let byte = bytes[ctl & 7];
    if (ctl & 8) byte = byte & 0x80 ? 0xff : 0x00;
    d |= byte << (8 * k);
  }
  return d >>> 0;
}

export type ShflMode = 'idx' | 'bfly' | 'down';

/**
 * shfl.sync.{idx,bfly,down}.b32 d, a, b, c, 0xffffffff (ISA §9.7.9.6), the ISA's pseudo-code:
 * bval = b[4:0], cval = c[4:0], mask = c[12:8]; maxLane = (lane & mask) | (cval & ~mask); minLane
 * = lane & mask; j per mode; if !pval, j = lane; d = a of lane j. Returns each lane's d.
 */
export function shflRef(mode: ShflMode, a: ArrayLike<number>, b: ArrayLike<number>, c = 0x1f): number[] {
  const out: number[] = [];
  for (let lane = 0; lane < 32; lane++) {
    const bval = b[lane] & 0x1f, cval = c & 0x1f, mask = (c >>> 8) & 0x1f;
    const maxLane = (lane & mask) | (cval & ~mask);
    const minLane = lane & mask;
    let j: number;
    let pval: boolean;
    switch (mode) {
      case 'down': j = lane + bval; pval = j <= maxLane; break;
      case 'bfly': j = lane ^ bval; pval = j <= maxLane; break;
      case 'idx': j = minLane | (bval & ~mask); pval = j <= maxLane; break;
    }
    if (!pval) j = lane;
    out.push(a[j] >>> 0);
  }
  return out;
}

// ---- mma operands as fragments --------------------------------------------------------------------

type Layout16 = (lane: number, reg: number, half: number) => Elem;

/** Packs a matrix of 16-bit codes (bits[row][col]) into 32 lanes x `regs` registers by `where`. */
export function packFragment(bits: number[][], regs: number, where: Layout16): Uint32Array {
  const out = new Uint32Array(32 * regs);
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < regs; r++) {
      const lo = where(lane, r, 0), hi = where(lane, r, 1);
      out[lane * regs + r] = (bits[lo.row][lo.col] | (bits[hi.row][hi.col] << 16)) >>> 0;
    }
  }
  return out;
}

/** C (16x8 numbers) as the 32 x 4 float32 accumulator fragment. */
export function packC(c: number[][]): Float32Array {
  const out = new Float32Array(32 * 4);
  for (let lane = 0; lane < 32; lane++) {
    for (let i = 0; i < 4; i++) {
      const e = isa.mmaC(lane, i);
      out[lane * 4 + i] = c[e.row][e.col];
    }
  }
  return out;
}

/** D = A·B + C in float64 (A m x k, B k x n, C m x n or null). */
export function matmulRef(a: number[][], b: number[][], c: number[][] | null): number[][] {
  const m = a.length, k = b.length, n = b[0].length;
  const d: number[][] = [];
  for (let i = 0; i < m; i++) {
    d.push([]);
    for (let j = 0; j < n; j++) {
      let s = c ? c[i][j] : 0;
      for (let p = 0; p < k; p++) s += a[i][p] * b[p][j];
      d[i].push(s);
    }
  }
  return d;
}

// ---- 2:4 sparse A for mma.sp ----------------------------------------------------------------------

/**
 * The metadata nibbles mma.sp::ordered_metadata gives a meaning to (ISA §9.7.14.6.1: "0b0100,
 * 0b1000, 0b1001, 0b1100, 0b1101, 0b1110 are the meaningful values of indices"); a nibble is idx0
 * | idx1 << 2, the chunk positions of the low and the high kept value.
 */
export const ORDERED_NIBBLES = [0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110];

/** Kept positions: idx[row][chunk] = [idx0, idx1], for a 16x32 2:4 A (8 chunks per row). */
export type SparseIdx = [number, number][][];

/** The logical 16x32 A of compressed values (16x16: chunk c's kept values in columns 2c, 2c + 1) and their positions; 0 elsewhere. */
export function decompress24(values: number[][], idx: SparseIdx): number[][] {
  return values.map((row, r) => {
    const dense = new Array(32).fill(0);
    for (let c = 0; c < 8; c++) for (let h = 0; h < 2; h++) dense[4 * c + idx[r][c][h]] = row[2 * c + h];
    return dense;
  });
}

/**
 * The 32 lanes' metadata registers for positions `idx` under `selector`, placed by the ISA
 * (isa.mmaSpMeta); the lanes the selector does not name hold poison(lane) (never read).
 */
export function packMeta(idx: SparseIdx, selector: number, poison: (lane: number) => number): Uint32Array {
  const e = new Uint32Array(32);
  const named = new Set<number>();
  for (let r = 0; r < 16; r++) {
    for (let c = 0; c < 8; c++) {
      const [i0, i1] = idx[r][c];
      const { lane, shift } = isa.mmaSpMeta(selector, r, c);
      named.add(lane);
      e[lane] = (e[lane] | ((i0 | (i1 << 2)) << shift)) >>> 0;
    }
  }
  for (let lane = 0; lane < 32; lane++) if (!named.has(lane)) e[lane] = poison(lane) >>> 0;
  return e;
}

/**
 * fma.rn.f16 / fma.rn.bf16 on one 16-bit half (PTX ISA §9.7.4.1): a*b + c rounded once to nearest
 * even, from the exact sum. The product of two 16-bit values is exact in float64; the sum s is
 * rounded to float64, and TwoSum gives its exact error; when that error is not zero, s differs
 * from the exact sum by less than half a float64 ulp, so the 16-bit rounding of s is the exact
 * one except where s is itself a 16-bit tie, which the error's sign then breaks. Returns the
 * result's bits, or -1 for NaN (any NaN).
 */
export function fma16Ref(a: number, b: number, c: number, bf16: boolean): number {
  const dec = bf16 ? bf16ToNumber : f16ToNumber;
  const enc = bf16 ? numberToBf16 : numberToF16;
  const p = dec(a) * dec(b);
  const z = dec(c);
  const s = p + z;
  if (Number.isNaN(s)) return -1;
  if (!Number.isFinite(s)) return enc(s);
  const bb = s - p;
  const err = p - (s - bb) + (z - bb);
  if (err === 0 || s === 0) return enc(s);
  const ulp = 2 ** (Math.max(exponentOf(Math.abs(s)), bf16 ? -126 : -14) - (bf16 ? 7 : 10));
  const q = s / ulp; // exact: a power-of-two scaling
  if (q - Math.floor(q) !== 0.5) return enc(s);
  return enc((err > 0 ? Math.ceil(q) : Math.floor(q)) * ulp);
}
