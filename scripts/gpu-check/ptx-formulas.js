// What the PTX wrappers must compute: a plain-JS port of test/helpers/ptx-reference.ts (the PTX
// ISA's formulas and CuTe's thread-value layouts), for the GPU machine, which runs a bare Node
// binary with no TypeScript and no node_modules. test/gpu-check.test.ts checks that this port
// agrees with ptx-reference.ts on every lane of every form; change both together.
//
// Notation as there: lane 0..31, groupID = lane >> 2, threadID_in_group = lane % 4; a 32-bit
// register holding two 16-bit values keeps the lower-indexed one in bits [15:0].
'use strict';

// ---- CuTe layouts -------------------------------------------------------------------------------

function flatten(x) {
  return typeof x === 'number' ? [x] : x.flatMap(flatten);
}

/** A CuTe layout shape:stride as a function of a 1-D coordinate (first mode fastest). */
function layout(shape, stride) {
  const s = flatten(shape);
  const d = flatten(stride);
  if (s.length !== d.length) throw new Error('layout: shape and stride differ in rank');
  const size = s.reduce((a, b) => a * b, 1);
  return (i) => {
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
function tvLayout(thrShape, thrStride, valShape, valStride) {
  const t = layout(thrShape, thrStride);
  const v = layout(valShape, valStride);
  return (thr, val) => t(thr) + v(val);
}

// ---- the ISA's formulas -----------------------------------------------------------------------

const isa = {
  /** mma.m16n8k16 A fragment, f16/bf16 (ISA §9.7.14.5.8): register reg, half half of lane -> (row, col). */
  mmaA(lane, reg, half) {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 || (i >= 4 && i < 6) ? groupID : groupID + 8;
    const col = i < 4 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return { row, col };
  },
  /** B fragment (16x8, row = k). */
  mmaB(lane, reg, half) {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return { row, col: groupID };
  },
  /** C/D fragment (16x8 float32): c0..c3. */
  mmaC(lane, i) {
    const groupID = lane >> 2, tig = lane % 4;
    return { row: i < 2 ? groupID : groupID + 8, col: tig * 2 + (i & 1) };
  },
  /**
   * mma.sp m16n8k32 A fragment, f16/bf16 (ISA §9.7.14.6.2.2), as a position of the compressed
   * 16x16 matrix: column 2 * (firstcol / 4) + (i & 1) is the (i & 1)-th kept value of the chunk.
   */
  mmaSpA(lane, reg, half) {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    const row = i < 2 || (i >= 4 && i < 6) ? groupID : groupID + 8;
    const firstcol = i < 4 ? tig * 4 : tig * 4 + 16;
    return { row, col: 2 * (firstcol / 4) + (i & 1) };
  },
  /** mma.sp m16n8k32 B fragment (32x8, row = k; ISA Figure 121). */
  mmaSpB(lane, reg, half) {
    const i = 2 * reg + half;
    const groupID = lane >> 2, tig = lane % 4;
    return { row: tig * 2 + (i & 1) + 8 * (i >> 1), col: groupID };
  },
  /** Lane and bit offset of the metadata of row `row`, chunk `chunk` (ISA §9.7.14.6.1, Figure 122). */
  mmaSpMeta(selector, row, chunk) {
    const pair = [4 * (row % 8) + 2 * selector, 4 * (row % 8) + 2 * selector + 1];
    const lane = chunk < 4 ? pair[0] : pair[1];
    const shift = (row < 8 ? 0 : 16) + 4 * (chunk % 4);
    return { lane, shift };
  },
  /** The lane whose address gives row `row` of matrix `matrix` (ISA §9.7.14.5.15). */
  ldmatrixRowLane(matrix, row) {
    return 8 * matrix + row;
  },
  /** ldmatrix .m8n8 .b16 (ISA §9.7.14.5.15): register reg = matrix reg; .trans reads the transpose. */
  ldmatrix(lane, reg, half, trans) {
    const r = Math.floor(lane / 4), c = 2 * (lane % 4) + half;
    return trans ? { matrix: reg, row: c, col: r } : { matrix: reg, row: r, col: c };
  },
};

// ---- CuTe's layouts -----------------------------------------------------------------------------
// mma_traits_sm80.hpp SM80_16x8x16 (ALayout, BLayout, CLayout SM80_16x8_Row) and
// copy_traits_sm75.hpp (SM75_U32x{1,2,4}_LDSM_N, SM75_U16x{2,4,8}_LDSM_T): see ptx-reference.ts.

const cuteA = tvLayout([4, 8], [32, 1], [2, 2, 2], [16, 8, 128]);
const cuteB = tvLayout([4, 8], [16, 1], [2, 2], [8, 64]);
const cuteC = tvLayout([4, 8], [32, 1], [2, 2], [16, 8]);

const SRC_X1 = layout([8, 4], [128, 0]);
const SRC_X2 = layout([16, 2], [128, 0]);
const SRC_X4 = layout(32, 128);
const LDSM = {
  x1: { src: SRC_X1, dst: tvLayout(32, 32, 32, 1) },
  x2: { src: SRC_X2, dst: tvLayout(32, 32, [32, 2], [1, 1024]) },
  x4: { src: SRC_X4, dst: tvLayout(32, 32, [32, 4], [1, 1024]) },
  x1_trans: { src: SRC_X1, dst: tvLayout([4, 8], [256, 16], [16, 2], [1, 128]) },
  x2_trans: { src: SRC_X2, dst: tvLayout([4, 8], [256, 16], [16, 2, 2], [1, 128, 1024]) },
  x4_trans: { src: SRC_X4, dst: tvLayout([4, 8], [256, 16], [16, 2, 4], [1, 128, 1024]) },
};

const cute = {
  mmaA(lane, reg, half) {
    const off = cuteA(lane, 2 * reg + half);
    return { row: off % 16, col: Math.floor(off / 16) };
  },
  mmaB(lane, reg, half) {
    const off = cuteB(lane, 2 * reg + half);
    return { row: Math.floor(off / 8), col: off % 8 };
  },
  mmaC(lane, i) {
    const off = cuteC(lane, i);
    return { row: off % 16, col: Math.floor(off / 16) };
  },
  /** The lowest lane whose SrcLayout row is reference row `refRow`. */
  ldmatrixRowLane(form, refRow) {
    const src = LDSM[form].src;
    for (let t = 0; t < 32; t++) if (src(t) === 128 * refRow) return t;
    throw new Error(`no lane addresses row ${refRow} in ${form}`);
  },
  /** ldmatrix element of register `reg`, half `half` of `lane`, as (matrix, row, col). */
  ldmatrix(form, lane, reg, half) {
    const t = LDSM[form];
    const bit = t.dst(lane, 32 * reg + 16 * half);
    const refRow = Math.floor(bit / 128), col = (bit % 128) / 16;
    if (!Number.isInteger(col)) throw new Error('ldmatrix: a 16-bit value not on a 16-bit boundary');
    return { matrix: Math.floor(refRow / 8), row: refRow % 8, col };
  },
};

const LDMATRIX_FORMS = ['x1', 'x2', 'x4', 'x1_trans', 'x2_trans', 'x4_trans'];
function ldmatrixNum(form) {
  return Number(form[1]);
}

// ---- bit operations ------------------------------------------------------------------------------

/** lop3.b32 (ISA §9.7.8.6): bit i of d is bit ((a_i << 2) | (b_i << 1) | c_i) of immLut. */
function lop3Ref(immLut, a, b, c) {
  let d = 0;
  for (let i = 0; i < 32; i++) {
    const idx = (((a >>> i) & 1) << 2) | (((b >>> i) & 1) << 1) | ((c >>> i) & 1);
    d |= ((immLut >>> idx) & 1) << i;
  }
  return d >>> 0;
}

/** The immLut of a bitwise function F: F(0xF0, 0xCC, 0xAA). */
function lutOf(f) {
  return f(0xf0, 0xcc, 0xaa) & 0xff;
}

/** prmt.b32, default mode (ISA §9.7.9.7). */
function prmtRef(a, b, c) {
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

/** shfl.sync.{idx,bfly,down}.b32 d, a, b, c, 0xffffffff (ISA §9.7.9.6): each lane's d. */
function shflRef(mode, a, b, c = 0x1f) {
  const out = [];
  for (let lane = 0; lane < 32; lane++) {
    const bval = b[lane] & 0x1f, cval = c & 0x1f, mask = (c >>> 8) & 0x1f;
    const maxLane = (lane & mask) | (cval & ~mask);
    const minLane = lane & mask;
    let j;
    let pval;
    switch (mode) {
      case 'down': j = lane + bval; pval = j <= maxLane; break;
      case 'bfly': j = lane ^ bval; pval = j <= maxLane; break;
      case 'idx': j = minLane | (bval & ~mask); pval = j <= maxLane; break;
      default: throw new Error(`shflRef: unknown mode ${mode}`);
    }
    if (!pval) j = lane;
    out.push(a[j] >>> 0);
  }
  return out;
}

// ---- mma operands as fragments --------------------------------------------------------------------

/** Packs a matrix of 16-bit codes (bits[row][col]) into 32 lanes x `regs` registers by `where`. */
function packFragment(bits, regs, where) {
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
function packC(c) {
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
function matmulRef(a, b, c) {
  const m = a.length, k = b.length, n = b[0].length;
  const d = [];
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

/** The nibbles mma.sp::ordered_metadata gives a meaning to (ISA §9.7.14.6.1): idx0 | idx1 << 2, idx0 < idx1. */
const ORDERED_NIBBLES = [0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110];

/** The logical 16x32 A of compressed values (16x16) at positions idx[row][chunk] = [idx0, idx1]; 0 elsewhere. */
function decompress24(values, idx) {
  return values.map((row, r) => {
    const dense = new Array(32).fill(0);
    for (let c = 0; c < 8; c++) for (let h = 0; h < 2; h++) dense[4 * c + idx[r][c][h]] = row[2 * c + h];
    return dense;
  });
}

/** The 32 lanes' metadata registers for positions idx under selector; unnamed lanes hold poison(lane). */
function packMeta(idx, selector, poison) {
  const e = new Uint32Array(32);
  const named = new Set();
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

module.exports = {
  layout,
  tvLayout,
  isa,
  cute,
  LDMATRIX_FORMS,
  ldmatrixNum,
  lop3Ref,
  lutOf,
  prmtRef,
  shflRef,
  packFragment,
  packC,
  matmulRef,
  ORDERED_NIBBLES,
  decompress24,
  packMeta,
};
