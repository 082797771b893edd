// The probe cases of test/cuda-sim/ptx.test.ts, as data: for each, runProbe's arguments and the
// registers the ISA's formulas (and CuTe's layouts, where the test uses both) say it must return.
// Plain Node (the GPU machine has no TypeScript and no node_modules); scripts/gpu-check/run-probes.js
// runs them on an addon (the real CUDA addon on a GPU, or the simulated device here).
//
//   const { buildCases } = require('./probe-cases.js');
//   buildCases({ baseSeed }) -> [{ name, group, args, wants: { isa?, cute?, formula? }, perLane,
//                                  isolate?, note? }]
//   wants: arrays of uint32, one per register of regs, lane-major; null where the register is
//   not compared (recorded only: the ISA leaves it open, e.g. a cp.async group not yet waited for).
//   isolate: the probe does what the ISA leaves undefined (the simulator refuses it; a GPU may
//   fault, which ends its CUDA context): run it in a child process and record what happens.
//
// The inputs are those of ptx.test.ts, derived from the same labels by the same seeding (FNV-1a of
// the label mixed with the base seed, mulberry32), with a fixed base seed by default so that a
// GPU's dumps are reproducible fixtures.
'use strict';
const F = require('./ptx-formulas.js');

const DEFAULT_BASE_SEED = 20260101;

// ---- seeds and numbers (test/helpers/reference.ts) -------------------------------------------------

function seedFor(baseSeed, label) {
  let h = (0x811c9dc5 ^ baseSeed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function f16ToNumber(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m !== 0 ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

function bf16ToNumber(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m !== 0 ? NaN : s * Infinity;
  return s * (128 + m) * 2 ** (e - 134);
}

// Exact encodings only (the probes use small integers and quarters): throws otherwise.
function exactBits16(dt, v) {
  if (!Number.isFinite(v)) throw new Error(`${v} is not finite`);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  let bits;
  if (a === 0) {
    bits = sign;
  } else {
    const mant = dt === 'f16' ? 10 : 7, bias = dt === 'f16' ? 15 : 127;
    let e = Math.floor(Math.log2(a));
    while (2 ** e > a) e--;
    while (2 ** (e + 1) <= a) e++;
    const m = a / 2 ** e - 1; // in [0, 1)
    const q = m * 2 ** mant;
    if (e + bias <= 0 || e + bias >= (dt === 'f16' ? 31 : 255) || !Number.isInteger(q)) {
      throw new Error(`${v} is not exact in ${dt} (as a normal number)`);
    }
    bits = sign | ((e + bias) << mant) | q;
  }
  const back = dt === 'f16' ? f16ToNumber(bits) : bf16ToNumber(bits);
  if (!Object.is(back, v)) throw new Error(`${v} is not exact in ${dt}`);
  return bits;
}

const f32Bits = (v) => new Uint32Array(new Float32Array([v]).buffer)[0];
const bitsF32 = (b) => new Float32Array(new Uint32Array([b >>> 0]).buffer)[0];

function matrix(rows, cols, f) {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => f(r, c)));
}
const encode = (dt, m) => m.map((row) => row.map((v) => exactBits16(dt, v)));
const zeros = (r, c) => matrix(r, c, () => 0);

// D (16x8 numbers) as the 32 x 4 registers of the D fragment, placed by `layoutC` (isa or cute).
function dRegs(d, layoutC) {
  const out = [];
  for (let lane = 0; lane < 32; lane++) {
    for (let i = 0; i < 4; i++) {
      const e = layoutC(lane, i);
      const v = d[e.row][e.col];
      if (Math.fround(v) !== v) throw new Error(`D value ${v} is not exact in float32`);
      out.push(f32Bits(v));
    }
  }
  return out;
}

// ---- the cases ---------------------------------------------------------------------------------

const ldmCode = (rowLane, col) => rowLane * 256 + col;

function ldmatrixWant(form, source) {
  const num = F.ldmatrixNum(form), trans = form.endsWith('trans');
  const want = [];
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < num; r++) {
      const half = (h) => {
        if (source === 'isa') {
          const e = F.isa.ldmatrix(lane, r, h, trans);
          return ldmCode(F.isa.ldmatrixRowLane(e.matrix, e.row), e.col);
        }
        const e = F.cute.ldmatrix(form, lane, r, h);
        return ldmCode(F.cute.ldmatrixRowLane(form, 8 * e.matrix + e.row), e.col);
      };
      want.push((half(0) | (half(1) << 16)) >>> 0);
    }
  }
  return want;
}

function ldmatrixCases() {
  const cases = [];
  for (const form of F.LDMATRIX_FORMS) {
    cases.push({
      name: `ldmatrix_${form}`,
      group: 'ldmatrix',
      args: { kind: `ldmatrix_${form}` },
      wants: { isa: ldmatrixWant(form, 'isa'), cute: ldmatrixWant(form, 'cute') },
      perLane: F.ldmatrixNum(form),
    });
  }
  // A lane whose address the form does not use: ignored (ISA: x1 uses lanes 0-7, x2 lanes 0-15).
  for (const [form, lane] of [['x1', 8], ['x1_trans', 31], ['x2', 16], ['x2_trans', 20]]) {
    for (const fault of ['outside', 'misaligned']) {
      cases.push({
        name: `ldmatrix_${form}_unused_lane${lane}_${fault}`,
        group: 'ldmatrix',
        args: { kind: `ldmatrix_${form}`, faultLane: lane, fault },
        wants: { isa: ldmatrixWant(form, 'isa') },
        perLane: F.ldmatrixNum(form),
      });
    }
  }
  // A used lane's bad address: undefined by the ISA; the simulator refuses it. On a GPU: recorded.
  for (const [form, lane, fault] of [['x4', 5, 'misaligned'], ['x4_trans', 31, 'outside'], ['x2', 13, 'outside'], ['x1', 7, 'misaligned']]) {
    cases.push({
      name: `ldmatrix_${form}_lane${lane}_${fault}`,
      group: 'ldmatrix-undefined',
      args: { kind: `ldmatrix_${form}`, faultLane: lane, fault },
      wants: {},
      perLane: F.ldmatrixNum(form),
      isolate: true,
      note: `lane ${lane}'s ${fault} row address: undefined by the ISA (the simulator refuses it); what the hardware does is recorded`,
    });
  }
  return cases;
}

function mmaCases(baseSeed) {
  const cases = [];
  for (const dt of ['f16', 'bf16']) {
    const mk = (name, a, b, c, sources = ['isa']) => {
      const d = F.matmulRef(a, b, c);
      const wants = {};
      for (const s of sources) wants[s] = dRegs(d, F[s].mmaC);
      cases.push({
        name: `mma_${dt}_${name}`,
        group: 'mma',
        args: {
          kind: `mma_${dt}`,
          a: F.packFragment(encode(dt, a), 4, F.isa.mmaA),
          b: F.packFragment(encode(dt, b), 2, F.isa.mmaB),
          c: F.packC(c),
        },
        wants,
        perLane: 4,
      });
    };
    mk('identity', matrix(16, 16, (r, c) => (r === c ? 1 : 0)), matrix(16, 8, (k, n) => k * 8 + n + 1), zeros(16, 8), ['isa', 'cute']);
    const a = matrix(16, 16, (r, k) => r * 16 + k);
    for (const shift of [0, 8]) mk(`unit_columns_${shift}`, a, matrix(16, 8, (k, n) => (k === n + shift ? 1 : 0)), zeros(16, 8));
    mk('d_is_c', zeros(16, 16), zeros(16, 8), matrix(16, 8, (r, n) => r * 8 + n + 0.5));
    {
      const rng = mulberry32(seedFor(baseSeed, `mma ${dt} random`));
      const int = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
      for (let rep = 0; rep < 4; rep++) {
        const ra = matrix(16, 16, () => int(-8, 8));
        const rb = matrix(16, 8, () => int(-8, 8));
        const rc = matrix(16, 8, () => int(-64, 64) / 4);
        mk(`random_${rep}`, ra, rb, rc);
      }
    }
    {
      const rng = mulberry32(seedFor(baseSeed, `mma ${dt} tile`));
      const int = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
      const ta = matrix(16, 32, () => int(-6, 6));
      const tb = matrix(32, 8, () => int(-6, 6));
      cases.push({
        name: `mma_${dt}_tile`,
        group: 'mma-tile',
        args: { kind: `mma_${dt}_tile`, a: Uint16Array.from(encode(dt, ta).flat()), b: Uint16Array.from(encode(dt, tb).flat()) },
        wants: { isa: dRegs(F.matmulRef(ta, tb, null), F.isa.mmaC), cute: dRegs(F.matmulRef(ta, tb, null), F.cute.mmaC) },
        perLane: 4,
      });
    }
  }
  return cases;
}

// mma.sp: as test/cuda-sim/ptx.test.ts. The lanes a selector does not name hold metadata whose
// every nibble is unordered: defined (never read) on a GPU, refused by the simulator if it read it.
const SP_POISON = [0x00000000, 0x55555555, 0xaaaaaaaa, 0xffffffff];
const spPoison = (lane) => SP_POISON[(lane >> 2) % 4];

function randomIdx(rng) {
  return matrix(16, 8, () => {
    const n = F.ORDERED_NIBBLES[Math.floor(rng() * F.ORDERED_NIBBLES.length)];
    return [n & 3, n >> 2];
  });
}

function mmaSpCases(baseSeed) {
  const cases = [];
  for (const dt of ['f16', 'bf16']) {
    for (const sel of [0, 1]) {
      const mk = (name, values, idx, b, c) => {
        cases.push({
          name: `mma_sp_${dt}_sel${sel}_${name}`,
          group: 'mma-sp',
          args: {
            kind: `mma_sp_${dt}`,
            selector: sel,
            a: F.packFragment(encode(dt, values), 4, F.isa.mmaSpA),
            b: F.packFragment(encode(dt, b), 4, F.isa.mmaSpB),
            c: F.packC(c),
            e: F.packMeta(idx, sel, spPoison),
          },
          wants: { isa: dRegs(F.matmulRef(F.decompress24(values, idx), b, c), F.isa.mmaC) },
          perLane: 4,
        });
      };
      {
        // Identity-coded kept values, metadata random per row and chunk; B's column n picks
        // logical column n + 8 * shift, so D shows the logical A the instruction multiplied.
        const idx = randomIdx(mulberry32(seedFor(baseSeed, `mma.sp ${dt} ${sel} layout`)));
        const values = matrix(16, 16, (r, j) => r * 16 + j + 1);
        for (let shift = 0; shift < 4; shift++) mk(`columns_${8 * shift}`, values, idx, matrix(32, 8, (k, n) => (k === n + 8 * shift ? 1 : 0)), zeros(16, 8));
      }
      {
        const rng = mulberry32(seedFor(baseSeed, `mma.sp ${dt} ${sel} random`));
        const int = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
        for (let rep = 0; rep < 4; rep++) {
          const idx = randomIdx(rng);
          const values = matrix(16, 16, () => (rng() < 0.5 ? -1 : 1) * int(1, 8));
          const b = matrix(32, 8, () => int(-8, 8));
          const c = matrix(16, 8, () => int(-64, 64) / 4);
          mk(`random_${rep}`, values, idx, b, c);
        }
      }
      if (dt === 'f16') {
        // LLVM's sm_80 integration test (sparse-mma-2-4-f16.mlir): positions 0 and 2 everywhere.
        mk('llvm_0x8888', matrix(16, 16, (i, j) => i + j + 1), matrix(16, 8, () => [0, 2]), matrix(32, 8, (k, n) => n - k), zeros(16, 8));
      }
    }
  }
  return cases;
}

function cpAsyncCases(baseSeed) {
  const cases = [];
  for (const bytes of [4, 8, 16]) {
    const rng = mulberry32(seedFor(baseSeed, `cp.async ${bytes}`));
    const src = new Uint8Array(64 * bytes);
    for (let i = 0; i < src.length; i++) src[i] = 1 + ((i * 37 + 11) % 254);
    const srcBytes = new Int32Array(64);
    for (let i = 0; i < 64; i++) srcBytes[i] = i < bytes + 1 ? i : Math.floor(rng() * (bytes + 1));
    const words = bytes / 4;
    const landed = (slot) => {
      const out = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) out[i] = i < srcBytes[slot] ? src[slot * bytes + i] : 0;
      return Array.from(new Uint32Array(out.buffer));
    };
    const want = [];
    for (let lane = 0; lane < 32; lane++) {
      // after wait_group 1: group 1 landed; group 2 may or may not have (the ISA leaves it open;
      // the simulator keeps it poisoned): not compared, recorded
      want.push(...landed(lane), ...new Array(words).fill(null));
      // after wait_group 0: both landed
      want.push(...landed(lane), ...landed(32 + lane));
    }
    cases.push({
      name: `cp_async_${bytes}`,
      group: 'cp.async',
      args: { kind: 'cp_async', bytes, srcBytes, src },
      wants: { isa: want },
      perLane: 4 * words,
      note: 'group 2 after wait_group 1 is recorded, not compared',
    });
    // The same copies with the L2 evict-first policy (ptx/cp_async.h cp_async16_hinted, the INT4
    // kernel's weight stream): a cache hint, so the same bytes land.
    if (bytes === 16) {
      cases.push({
        name: 'cp_async_16_hinted',
        group: 'cp.async',
        args: { kind: 'cp_async', bytes, hinted: true, srcBytes, src },
        wants: { isa: want },
        perLane: 4 * words,
        note: 'cp.async.cg ... .L2::cache_hint with createpolicy evict_first; group 2 after wait_group 1 is recorded, not compared',
      });
    }
  }
  return cases;
}

function shflCases(baseSeed) {
  const cases = [];
  const values = Uint32Array.from({ length: 32 }, (_, l) => (0xa5000000 | (l * 0x010101)) >>> 0);
  const add = (mode, i, operand) =>
    cases.push({
      name: `shfl_${mode}_${i}`,
      group: 'shfl',
      args: { kind: 'shfl', mode, values, operand },
      wants: { isa: F.shflRef(mode, values, operand) },
      perLane: 1,
    });
  {
    const rng = mulberry32(seedFor(baseSeed, 'shfl idx'));
    [
      new Uint32Array(32).fill(0),
      new Uint32Array(32).fill(17),
      Uint32Array.from({ length: 32 }, (_, l) => 31 - l),
      Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)),
      Uint32Array.from({ length: 32 }, () => 32 + Math.floor(rng() * 200)),
    ].forEach((op, i) => add('idx', i, op));
  }
  {
    const rng = mulberry32(seedFor(baseSeed, 'shfl bfly'));
    const ops = [16, 8, 4, 2, 1, 0].map((m) => new Uint32Array(32).fill(m));
    ops.push(Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)));
    ops.forEach((op, i) => add('bfly', i, op));
  }
  {
    const rng = mulberry32(seedFor(baseSeed, 'shfl down'));
    const ops = [0, 1, 5, 16, 31].map((d) => new Uint32Array(32).fill(d));
    ops.push(Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 32)));
    ops.forEach((op, i) => add('down', i, op));
  }
  return cases;
}

function randomWords(rng) {
  return Uint32Array.from({ length: 32 }, () => Math.floor(rng() * 0x100000000) >>> 0);
}

function bitCases(baseSeed) {
  const cases = [];
  {
    const rng = mulberry32(seedFor(baseSeed, 'lop3'));
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng);
    a[0] = 0; b[0] = 0; c[0] = 0;
    a[1] = 0xf0f0f0f0; b[1] = 0xcccccccc; c[1] = 0xaaaaaaaa;
    const luts = Uint32Array.from({ length: 256 }, (_, i) => i);
    const want = [];
    for (let lane = 0; lane < 32; lane++) for (let l = 0; l < 256; l++) want.push(F.lop3Ref(l, a[lane], b[lane], c[lane]));
    cases.push({ name: 'lop3_all_luts', group: 'lop3', args: { kind: 'lop3', a, b, c, luts }, wants: { isa: want }, perLane: 256 });
  }
  {
    const named = [
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
    for (const [lut, f] of named) if (F.lutOf(f) !== lut) throw new Error(`lutOf disagrees for 0x${lut.toString(16)}`);
    const rng = mulberry32(seedFor(baseSeed, 'lop3 named'));
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng);
    const want = [];
    for (let lane = 0; lane < 32; lane++) for (const [, f] of named) want.push(f(a[lane], b[lane], c[lane]) >>> 0);
    cases.push({
      name: 'lop3_named',
      group: 'lop3',
      args: { kind: 'lop3', a, b, c, luts: Uint32Array.from(named.map(([l]) => l)) },
      wants: { formula: want },
      perLane: named.length,
    });
  }
  {
    const rng = mulberry32(seedFor(baseSeed, 'prmt'));
    const a = randomWords(rng), b = randomWords(rng), c = randomWords(rng);
    const usual = [0x3210, 0x7654, 0x0123, 0x5410, 0x7632, 0x4140, 0x8888, 0xfedc, 0x9b8a, 0x1f2f3f4f];
    usual.forEach((sel, i) => (c[i] = sel));
    a[0] = 0x80ff7f01; b[0] = 0x00817e80;
    cases.push({
      name: 'prmt',
      group: 'prmt',
      args: { kind: 'prmt', a, b, c },
      wants: { isa: Array.from(a, (_, l) => F.prmtRef(a[l], b[l], c[l])) },
      perLane: 1,
    });
  }
  return cases;
}

function buildCases({ baseSeed = DEFAULT_BASE_SEED } = {}) {
  const seed = baseSeed >>> 0;
  return [...ldmatrixCases(), ...mmaCases(seed), ...mmaSpCases(seed), ...cpAsyncCases(seed), ...shflCases(seed), ...bitCases(seed)];
}

// ---- comparing ---------------------------------------------------------------------------------

const hex = (x) => '0x' + (x >>> 0).toString(16).padStart(8, '0');

/**
 * regs against want (null entries skipped): { compared, mismatches: count, first: [up to 8 lines] }.
 * For D registers (perLane 4 of an mma) the lines also give the float values.
 */
function compareRegs(regs, want, perLane, floats = false) {
  const out = { compared: 0, mismatches: 0, first: [] };
  if (!regs || regs.length !== want.length) {
    out.mismatches = want.length;
    out.first.push(`expected ${want.length} registers, got ${regs ? regs.length : 'none'}`);
    return out;
  }
  for (let i = 0; i < want.length; i++) {
    if (want[i] === null) continue;
    out.compared++;
    if (regs[i] >>> 0 === want[i] >>> 0) continue;
    out.mismatches++;
    if (out.first.length < 8) {
      const v = floats ? ` (${bitsF32(regs[i])} vs ${bitsF32(want[i])})` : '';
      out.first.push(`lane ${Math.floor(i / perLane)} reg ${i % perLane}: got ${hex(regs[i])}, want ${hex(want[i])}${v}`);
    }
  }
  return out;
}

// ---- JSON for typed arrays -----------------------------------------------------------------------

const TYPED = { Uint8Array, Uint16Array, Uint32Array, Int32Array, Float32Array };

/** runProbe args as JSON: typed arrays become { type, data: [numbers] }. */
function argsToJson(args) {
  const o = {};
  for (const [k, v] of Object.entries(args)) {
    o[k] = ArrayBuffer.isView(v) ? { type: v.constructor.name, data: Array.from(v) } : v;
  }
  return o;
}

function argsFromJson(o) {
  const args = {};
  for (const [k, v] of Object.entries(o)) {
    if (v && typeof v === 'object' && typeof v.type === 'string' && Array.isArray(v.data)) {
      const T = TYPED[v.type];
      if (!T) throw new Error(`unknown typed array ${v.type}`);
      args[k] = T.from(v.data);
    } else {
      args[k] = v;
    }
  }
  return args;
}

module.exports = {
  DEFAULT_BASE_SEED,
  buildCases,
  compareRegs,
  argsToJson,
  argsFromJson,
  seedFor,
  mulberry32,
  exactBits16,
  f16ToNumber,
  bf16ToNumber,
  bitsF32,
  hex,
};
