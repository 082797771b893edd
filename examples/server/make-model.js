#!/usr/bin/env node
// Writes the example's checkpoint: one MLP block of an LLM (gate_proj, up_proj, down_proj) and a
// few LoRA adapters, in a safetensors file laid out the way real checkpoints hold them:
//
//   model.layers.0.mlp.{gate,up}_proj.{qweight,qzeros,scales,g_idx}   GPTQ, 4 bits, AutoGPTQ v1
//       packing: qweight int32 [K/8, N] (column 8r+i of row n at bits 4i of word (r, n)),
//       qzeros int32 [G, N/8] (zero - 1 of row 8c+i at bits 4i of word (g, c)), scales float16
//       [G, N], g_idx int32 [K] (the group of each input column; gate_proj is act-order, i.e.
//       desc_act = true, up_proj is not and its g_idx is floor(k / group_size) as AutoGPTQ writes)
//   model.layers.0.mlp.down_proj.weight   float16 [H, I], already 2:4 sparse (two zeros in every
//       four consecutive inputs), as SparseGPT / NVIDIA ASP checkpoints keep it: dense with zeros
//   lora.<name>.mlp.<proj>.lora_{A,B}.weight   float32 A [r, K], B [N, r] (PEFT's names)
//   __metadata__: sizes, the quantization config and each adapter's r and lora_alpha
//
// The weights are random (seeded); INT4 codes come from round-to-nearest with a zero point per
// group (a real GPTQ run rounds differently, the format is the same).
//
//   node examples/server/make-model.js [--out FILE] [--hidden 1024] [--intermediate 2816]
//                                      [--group-size 128] [--seed 1]
'use strict';
const fs = require('fs');
const path = require('path');

const DEFAULT_OUT = path.join(__dirname, 'model.safetensors');
const PREFIX = 'model.layers.0.mlp';
const ADAPTERS = [
  { name: 'support-bot', r: 8, loraAlpha: 16 },
  { name: 'sql-writer', r: 16, loraAlpha: 16 },
  { name: 'poet', r: 4, loraAlpha: 16 },
];

/** mulberry32: a small seeded PRNG, floats in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in (-scale, scale). */
function uniform(rand, n, scale) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rand() - 1) * scale;
  return a;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 -> float16 bits, round to nearest even (what torch's .half() does). */
function toF16(v) {
  F32[0] = v;
  const x = U32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000; // the implicit bit, then shift into float16's subnormal range
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h; // a carry into bit 10 is the smallest normal, correctly
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // a carry may round up to Inf: right
  return sign | h;
}

/** float16 bits -> value. */
function fromF16(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** 8 codes -> one int32 word, code i at bits 4i (as AutoGPTQ's pack writes them). */
function packWord(codes) {
  let u = 0;
  for (let i = 0; i < 8; i++) u |= (codes[i] & 15) << (4 * i);
  return u | 0;
}

/**
 * Round-to-nearest INT4 with a zero point per group, packed as GPTQ (AutoGPTQ v1) stores it.
 * w is [N, K] float32; gIdx [K] gives each column's group. The zero point is kept in 1..15:
 * v1 checkpoints store zero - 1 in four bits, so a zero of 0 could not be written.
 */
function quantizeGPTQ(w, N, K, group, gIdx) {
  const G = K / group;
  const members = Array.from({ length: G }, () => []);
  for (let k = 0; k < K; k++) members[gIdx[k]].push(k);
  const q = new Uint8Array(N * K);
  const zeros = new Uint8Array(N * G);
  const scales = new Uint16Array(G * N);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      let lo = 0;
      let hi = 0;
      for (const k of members[g]) {
        lo = Math.min(lo, w[n * K + k]);
        hi = Math.max(hi, w[n * K + k]);
      }
      const bits = toF16((hi - lo) / 15 || 1);
      const s = fromF16(bits);
      const z = Math.min(15, Math.max(1, Math.round(-lo / s)));
      scales[g * N + n] = bits;
      zeros[n * G + g] = z;
      for (const k of members[g]) q[n * K + k] = Math.min(15, Math.max(0, Math.round(w[n * K + k] / s) + z));
    }
  }
  const qweight = new Int32Array((K / 8) * N);
  for (let r = 0; r < K / 8; r++) {
    for (let n = 0; n < N; n++) qweight[r * N + n] = packWord(q.subarray(n * K + 8 * r, n * K + 8 * r + 8));
  }
  const qzeros = new Int32Array(G * (N / 8));
  for (let g = 0; g < G; g++) {
    for (let c = 0; c < N / 8; c++) {
      const codes = [];
      for (let i = 0; i < 8; i++) codes.push(zeros[(8 * c + i) * G + g] - 1);
      qzeros[g * (N / 8) + c] = packWord(codes);
    }
  }
  return { qweight, qzeros, scales };
}

/** float16 bits of w [N, K] with the two smallest magnitudes of every 4 columns set to zero. */
function prune24F16(w, N, K) {
  const out = new Uint16Array(N * K);
  for (let i = 0; i < N * K; i += 4) {
    const order = [0, 1, 2, 3].sort((a, b) => Math.abs(w[i + b]) - Math.abs(w[i + a]));
    for (const j of order.slice(0, 2)) out[i + j] = toF16(w[i + j]);
  }
  return out;
}

const DTYPE = { Int32Array: 'I32', Float32Array: 'F32', Uint16Array: 'F16' };

/**
 * The safetensors container: 8-byte little-endian header length, the JSON header (padded with
 * spaces to a multiple of 8, as the reference writer does), then the tensors back to back. The
 * 4-byte tensors go first so that every tensor starts aligned for its type and readers can view
 * the file's memory instead of copying it.
 */
function writeSafetensors(file, tensors, metadata) {
  const names = Object.keys(tensors).sort((a, b) => tensors[b].data.BYTES_PER_ELEMENT - tensors[a].data.BYTES_PER_ELEMENT);
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const { data, shape } = tensors[name];
    header[name] = { dtype: DTYPE[data.constructor.name], shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const parts = [head, Buffer.from(json)];
  for (const name of names) {
    const d = tensors[name].data;
    parts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength)); // little-endian on every host Node runs on
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat(parts));
}

function makeModel({ out = DEFAULT_OUT, hidden = 1024, intermediate = 2816, groupSize = 128, seed = 1 } = {}) {
  const H = hidden;
  const I = intermediate;
  if (H % groupSize !== 0 || H % 8 !== 0 || I % 8 !== 0 || I % 4 !== 0) {
    throw new RangeError(`hidden (${H}) must be a multiple of group-size (${groupSize}) and of 8; intermediate (${I}) a multiple of 8`);
  }
  const rand = rng(seed);
  const tensors = {};
  // gate_proj: act-order (desc_act): columns grouped by a permutation, as GPTQ does when it
  // quantizes the columns in decreasing Hessian order.
  const perm = Array.from({ length: H }, (_, k) => k);
  for (let k = H - 1; k > 0; k--) {
    const j = Math.floor(rand() * (k + 1));
    [perm[k], perm[j]] = [perm[j], perm[k]];
  }
  const gIdxGate = new Int32Array(H);
  perm.forEach((k, j) => { gIdxGate[k] = Math.floor(j / groupSize); });
  const gIdxUp = Int32Array.from({ length: H }, (_, k) => Math.floor(k / groupSize));
  const G = H / groupSize;
  for (const [proj, gIdx] of [['gate_proj', gIdxGate], ['up_proj', gIdxUp]]) {
    const { qweight, qzeros, scales } = quantizeGPTQ(uniform(rand, I * H, 1 / Math.sqrt(H)), I, H, groupSize, gIdx);
    tensors[`${PREFIX}.${proj}.qweight`] = { data: qweight, shape: [H / 8, I] };
    tensors[`${PREFIX}.${proj}.qzeros`] = { data: qzeros, shape: [G, I / 8] };
    tensors[`${PREFIX}.${proj}.scales`] = { data: scales, shape: [G, I] };
    tensors[`${PREFIX}.${proj}.g_idx`] = { data: gIdx, shape: [H] };
  }
  tensors[`${PREFIX}.down_proj.weight`] = { data: prune24F16(uniform(rand, H * I, 2 / Math.sqrt(I)), H, I), shape: [H, I] };
  for (const { name, r } of ADAPTERS) {
    for (const [proj, N, K] of [['gate_proj', I, H], ['up_proj', I, H], ['down_proj', H, I]]) {
      tensors[`lora.${name}.mlp.${proj}.lora_A.weight`] = { data: uniform(rand, r * K, 1 / Math.sqrt(K)), shape: [r, K] };
      tensors[`lora.${name}.mlp.${proj}.lora_B.weight`] = { data: uniform(rand, N * r, 1 / Math.sqrt(r) / 4), shape: [N, r] };
    }
  }
  const metadata = {
    format: 'pt',
    hidden_size: String(H),
    intermediate_size: String(I),
    quantization_config: JSON.stringify({ quant_method: 'gptq', bits: 4, group_size: groupSize, desc_act: { gate_proj: true, up_proj: false }, checkpoint_format: 'gptq' }),
    sparsity_config: JSON.stringify({ down_proj: '2:4' }),
    adapters: JSON.stringify(Object.fromEntries(ADAPTERS.map((a) => [a.name, { r: a.r, lora_alpha: a.loraAlpha }]))),
  };
  writeSafetensors(out, tensors, metadata);
  return out;
}

function parseArgs(argv) {
  const opts = {};
  const names = { '--out': 'out', '--hidden': 'hidden', '--intermediate': 'intermediate', '--group-size': 'groupSize', '--seed': 'seed' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new RangeError(`unknown or incomplete option ${argv[i]} (known: ${Object.keys(names).join(', ')})`);
    opts[key] = key === 'out' ? path.resolve(argv[i + 1]) : Number(argv[i + 1]);
    if (key !== 'out' && !Number.isSafeInteger(opts[key])) throw new RangeError(`${argv[i]} takes an integer, got ${argv[i + 1]}`);
  }
  return opts;
}

if (require.main === module) {
  try {
    const file = makeModel(parseArgs(process.argv.slice(2)));
    console.log(`wrote ${path.relative(process.cwd(), file) || file} (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB)`);
  } catch (e) {
    console.error(`make-model: ${e.message}`);
    process.exitCode = 1;
  }
}

module.exports = { makeModel, DEFAULT_OUT };
