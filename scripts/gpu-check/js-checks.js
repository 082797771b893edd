#!/usr/bin/env node
// The checks of test/cuda-sim/ptx.test.ts that need no addon, in plain Node (the GPU machine has
// no jest): the ISA's formulas and CuTe's layouts (ptx-formulas.js) agree on every lane of mma
// m16n8k16 and of all six ldmatrix forms, each fragment covers its matrix exactly once (mma.sp's
// too, and its metadata slots under both selectors), and the named lop3 LUTs are what their
// functions give. So the expectations that step 3 of
// scripts/gpu-check.sh holds the GPU to are themselves checked where they are used.
//
//   node scripts/gpu-check/js-checks.js      -> one line per check; exit 0 when all pass
'use strict';
const F = require('./ptx-formulas.js');

let failures = 0;
function check(name, fn) {
  try {
    const extra = fn();
    console.log(`PASS ${name}${extra ? ` (${extra})` : ''}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
function expectSame(a, b, what) {
  if (!same(a, b)) throw new Error(`${what}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

check('mma m16n8k16 A, B, C fragments: ISA = CuTe on every lane, each covering its matrix once', () => {
  const seen = { a: new Set(), b: new Set(), c: new Set() };
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < 4; r++) {
      for (let h = 0; h < 2; h++) {
        expectSame(F.cute.mmaA(lane, r, h), F.isa.mmaA(lane, r, h), `A lane ${lane} reg ${r} half ${h}`);
        const e = F.isa.mmaA(lane, r, h);
        seen.a.add(`${e.row},${e.col}`);
      }
    }
    for (let r = 0; r < 2; r++) {
      for (let h = 0; h < 2; h++) {
        expectSame(F.cute.mmaB(lane, r, h), F.isa.mmaB(lane, r, h), `B lane ${lane} reg ${r} half ${h}`);
        const e = F.isa.mmaB(lane, r, h);
        seen.b.add(`${e.row},${e.col}`);
      }
    }
    for (let i = 0; i < 4; i++) {
      expectSame(F.cute.mmaC(lane, i), F.isa.mmaC(lane, i), `C lane ${lane} reg ${i}`);
      const e = F.isa.mmaC(lane, i);
      seen.c.add(`${e.row},${e.col}`);
    }
  }
  expectSame([seen.a.size, seen.b.size, seen.c.size], [256, 128, 128], 'coverage');
  return '256 + 128 + 128 elements';
});

check('mma.sp m16n8k32: compressed A, B and each selector\'s metadata cover their matrices once; the ordered nibbles are idx0 < idx1', () => {
  const a = new Set(), b = new Set();
  for (let lane = 0; lane < 32; lane++) {
    for (let r = 0; r < 4; r++) {
      for (let h = 0; h < 2; h++) {
        const ea = F.isa.mmaSpA(lane, r, h), eb = F.isa.mmaSpB(lane, r, h);
        a.add(`${ea.row},${ea.col}`);
        b.add(`${eb.row},${eb.col}`);
      }
    }
  }
  expectSame([a.size, b.size], [256, 256], 'coverage');
  for (const sel of [0, 1]) {
    const slots = new Set();
    for (let row = 0; row < 16; row++) {
      for (let c = 0; c < 8; c++) {
        const { lane, shift } = F.isa.mmaSpMeta(sel, row, c);
        if ((lane % 4) >> 1 !== sel) throw new Error(`selector ${sel}: lane ${lane} supplies metadata`);
        slots.add(`${lane},${shift}`);
      }
    }
    expectSame(slots.size, 128, `selector ${sel}: metadata slots`);
  }
  expectSame(F.ORDERED_NIBBLES, Array.from({ length: 16 }, (_, n) => n).filter((n) => (n & 3) < n >> 2), 'ordered nibbles');
  return '256 + 256 elements, 2 x 128 nibbles';
});

check('ldmatrix x1, x2, x4 and .trans: ISA = CuTe on every lane (row addresses and registers)', () => {
  for (const form of F.LDMATRIX_FORMS) {
    const num = F.ldmatrixNum(form), trans = form.endsWith('trans');
    for (let m = 0; m < num; m++) {
      for (let row = 0; row < 8; row++) {
        if (F.cute.ldmatrixRowLane(form, 8 * m + row) !== F.isa.ldmatrixRowLane(m, row)) throw new Error(`${form}: row lane of matrix ${m} row ${row}`);
      }
    }
    for (let lane = 0; lane < 32; lane++) {
      for (let r = 0; r < num; r++) {
        for (let h = 0; h < 2; h++) expectSame(F.cute.ldmatrix(form, lane, r, h), F.isa.ldmatrix(lane, r, h, trans), `${form} lane ${lane} reg ${r} half ${h}`);
      }
    }
  }
  return F.LDMATRIX_FORMS.join(', ');
});

check('lop3: F(0xF0, 0xCC, 0xAA) reproduces each LUT, and the named LUTs are their functions', () => {
  for (let l = 0; l < 256; l++) {
    if (F.lop3Ref(l, 0xf0f0f0f0, 0xcccccccc, 0xaaaaaaaa) !== (l * 0x01010101) >>> 0) throw new Error(`LUT ${l}`);
  }
  const named = [[0xea, (a, b, c) => (a & b) | c], [0x6a, (a, b, c) => (a & b) ^ c], [0x96, (a, b, c) => a ^ b ^ c], [0xe8, (a, b, c) => (a & b) | (a & c) | (b & c)]];
  for (const [lut, f] of named) if (F.lutOf(f) !== lut) throw new Error(`lutOf 0x${lut.toString(16)}`);
  return '256 LUTs';
});

check('prmt: 0x3210 is a, 0x7654 is b, sign replication', () => {
  const a = 0x80ff7f01, b = 0x00817e80;
  if (F.prmtRef(a, b, 0x3210) !== a >>> 0) throw new Error('0x3210');
  if (F.prmtRef(a, b, 0x7654) !== b >>> 0) throw new Error('0x7654');
  if (F.prmtRef(a, b, 0x8888) !== 0) throw new Error('0x8888: byte 0 of a is 0x01, sign 0');
  if (F.prmtRef(a, b, 0xbbbb) !== 0xffffffff) throw new Error('0xbbbb: byte 3 of a is 0x80, sign 1');
  return null;
});

console.log(failures ? `# ${failures} checks failed` : '# all checks passed');
process.exitCode = failures ? 1 : 0;
