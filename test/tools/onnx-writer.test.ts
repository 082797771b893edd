/**
 * The bench's ONNX model writer (lib/tools/onnx.ts, used by `bench --peers`), checked without
 * onnxruntime: the models are parsed back by the small protobuf decoder below, written here from
 * the protobuf wire format and the field numbers of onnx/onnx.proto, independently of the writer.
 * The large case is the one that crashed the old writer (V8 "invalid size" on an 11008 x 4096
 * float32 weight: 180 MB of raw_data).
 */
import * as path from 'path';
import { PeerKind, peerModel } from '../../lib/tools/peers';
import { Proto } from '../../lib/tools/onnx';
import { ROOT, describeChild, runChild } from '../helpers/child';
import { mulberry32, randomFloat32, seedFor, seedNote } from '../helpers/reference';

interface Field {
  field: number;
  wire: number;
  value?: number;
  data?: Uint8Array;
}

/** One message's fields, in order (wire types 0 and 2 only: the writer emits no others). */
function decode(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (at >= buf.length) throw new Error('truncated varint');
      const b = buf[at++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      fields.push({ field, wire, value: varint() });
    } else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new Error(`field ${field}: ${len} bytes past the end`);
      fields.push({ field, wire, data: buf.subarray(at, at + len) });
      at += len;
    } else {
      throw new Error(`field ${field}: unexpected wire type ${wire}`);
    }
  }
  return fields;
}

const all = (fs: Field[], n: number) => fs.filter((f) => f.field === n);
function one(fs: Field[], n: number): Field {
  const found = all(fs, n);
  if (found.length !== 1) throw new Error(`field ${n} appears ${found.length} times`);
  return found[0];
}
const bytesOf = (fs: Field[], n: number) => one(fs, n).data!;
const intOf = (fs: Field[], n: number) => one(fs, n).value!;
const strOf = (fs: Field[], n: number) => Buffer.from(bytesOf(fs, n)).toString('utf8');
const strs = (fs: Field[], n: number) => all(fs, n).map((f) => Buffer.from(f.data!).toString('utf8'));

// onnx.proto field numbers
const MODEL = { irVersion: 1, producer: 2, graph: 7, opset: 8 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const ATTR = { name: 1, i: 3, type: 20 };
const TENSOR = { dims: 1, dataType: 2, name: 8, raw: 9 };
const DT_FLOAT = 1;
const DT_UINT8 = 2;
const ATTR_INT = 2;

interface Parsed {
  model: Field[];
  node: Field[];
  initializers: Map<string, { dims: number[]; type: number; raw: Uint8Array }>;
  /** graph input / output: name and dims (a number, or a symbolic name) */
  io: Array<{ name: string; dims: Array<number | string> }>;
}

function parse(bytes: Uint8Array): Parsed {
  const model = decode(bytes);
  const graph = decode(bytesOf(model, MODEL.graph));
  const nodes = all(graph, GRAPH.node);
  if (nodes.length !== 1) throw new Error(`${nodes.length} nodes`);
  const initializers = new Map<string, { dims: number[]; type: number; raw: Uint8Array }>();
  for (const t of all(graph, GRAPH.initializer)) {
    const f = decode(t.data!);
    initializers.set(strOf(f, TENSOR.name), { dims: all(f, TENSOR.dims).map((d) => d.value!), type: intOf(f, TENSOR.dataType), raw: bytesOf(f, TENSOR.raw) });
  }
  // ValueInfoProto { name 1, type 2 { tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1 | dim_param 2 } } } } }
  const io = [...all(graph, GRAPH.input), ...all(graph, GRAPH.output)].map((v) => {
    const vi = decode(v.data!);
    const tt = decode(bytesOf(decode(bytesOf(vi, 2)), 1));
    if (intOf(tt, 1) !== DT_FLOAT) throw new Error(`graph input/output of elem_type ${intOf(tt, 1)}`);
    const dims = all(decode(bytesOf(tt, 2)), 1).map((d) => {
      const df = decode(d.data!);
      return df[0].field === 1 ? df[0].value! : Buffer.from(df[0].data!).toString('utf8');
    });
    return { name: strOf(vi, 1), dims };
  });
  return { model, node: decode(nodes[0].data!), initializers, io };
}

function opsets(model: Field[]): Record<string, number> {
  const r: Record<string, number> = {};
  for (const o of all(model, MODEL.opset)) {
    const f = decode(o.data!);
    r[all(f, 1).length ? strOf(f, 1) : ''] = intOf(f, 2);
  }
  return r;
}

/** The raw bytes as float32 (copied: raw_data sits at any offset of the model). */
const asFloat32 = (raw: Uint8Array) => new Float32Array(new Uint8Array(raw).buffer);

// The decoder's source, for the child process below.
const DECODER = [
  `const MODEL = ${JSON.stringify(MODEL)}, GRAPH = ${JSON.stringify(GRAPH)}, NODE = ${JSON.stringify(NODE)}, TENSOR = ${JSON.stringify(TENSOR)}, DT_FLOAT = ${DT_FLOAT};`,
  decode, one, parse, opsets,
  `const all = ${all}, bytesOf = ${bytesOf}, intOf = ${intOf}, strOf = ${strOf}, strs = ${strs};`,
].map(String).join('\n');

// In a child process: typed-array loops over 45M elements ran 15x slower inside jest's module
// sandbox than in plain Node, and this case makes, transposes and compares three of them.
test('MatMul on an 11008 x 4096 float32 weight (180 MB): dims, data type and every byte of B = Wᵀ', () => {
  const N = 11008;
  const K = 4096;
  const seed = seedFor('onnx writer matmul');
  const script = `
${DECODER}
const { peerModel } = require(${JSON.stringify(path.join(ROOT, 'lib', 'tools', 'peers.ts'))});
const N = ${N}, K = ${K};
// 45M fresh random values (uniform in [-0.5, 0.5)), mulberry32 as in test/helpers/reference.ts.
let a = ${seed} >>> 0;
const rng = () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const w = new Float32Array(N * K);
for (let i = 0; i < w.length; ++i) w[i] = rng() - 0.5;
const { bytes, weightBytes } = peerModel('ort-matmul-f32', w, N, K);
const p = parse(bytes);
const B = p.initializers.get('B');
// Compared as bits, B[k, n] = W[n, k] for every element.
const b = new Uint32Array(new Uint8Array(B.raw).buffer), wb = new Uint32Array(w.buffer);
let bad = -1;
for (let n0 = 0; n0 < N && bad < 0; n0 += 64)
  for (let k = 0; k < K && bad < 0; ++k)
    for (let n = n0; n < n0 + 64; ++n) if (b[k * N + n] !== wb[n * K + k]) { bad = n * K + k; break; }
out({
  weightBytes, irVersion: intOf(p.model, MODEL.irVersion), producer: strOf(p.model, MODEL.producer), opsets: opsets(p.model),
  inputs: strs(p.node, NODE.input), outputs: strs(p.node, NODE.output), opType: strOf(p.node, NODE.opType),
  domains: all(p.node, NODE.domain).length, io: p.io, initializers: [...p.initializers.keys()],
  dims: B.dims, type: B.type, rawBytes: B.raw.length, firstMismatch: bad,
});
`;
  const r = runChild(script, {}, { timeoutMs: 180_000 });
  if (r.status !== 0 || r.error) throw new Error(`child failed: ${JSON.stringify(r.error)}\n${describeChild(r)}; ${seedNote(seed)}`);
  expect(r.value).toEqual({
    weightBytes: N * K * 4, irVersion: 8, producer: 'compressed-gemm bench', opsets: { '': 17 },
    inputs: ['A', 'B'], outputs: ['Y'], opType: 'MatMul', domains: 0,
    io: [{ name: 'A', dims: ['M', K] }, { name: 'Y', dims: ['M', N] }], initializers: ['B'],
    dims: [K, N], type: DT_FLOAT, rawBytes: K * N * 4, firstMismatch: -1,
  });
});

test.each(['ort-nbits-l0', 'ort-nbits-l4'] as PeerKind[])('%s: attributes, and B and scales dequantize to W within half a step', (kind) => {
  const N = 96;
  const K = 384;
  const seed = seedFor(`onnx writer ${kind}`);
  const w = randomFloat32(mulberry32(seed), N * K);
  const p = parse(peerModel(kind, w, N, K).bytes);
  expect(opsets(p.model)).toEqual({ '': 17, 'com.microsoft': 1 });
  expect(strOf(p.node, NODE.opType)).toBe('MatMulNBits');
  expect(strOf(p.node, NODE.domain)).toBe('com.microsoft');
  expect(strs(p.node, NODE.input)).toEqual(['A', 'B', 'scales']);
  const attrs: Record<string, number> = {};
  for (const a of all(p.node, NODE.attribute)) {
    const f = decode(a.data!);
    expect(intOf(f, ATTR.type)).toBe(ATTR_INT);
    attrs[strOf(f, ATTR.name)] = intOf(f, ATTR.i);
  }
  expect(attrs).toEqual({ K, N, bits: 4, block_size: 128, accuracy_level: kind === 'ort-nbits-l4' ? 4 : 0 });
  const B = p.initializers.get('B')!;
  const S = p.initializers.get('scales')!;
  expect([B.dims, B.type, B.raw.length]).toEqual([[N, K / 128, 64], DT_UINT8, (N * K) / 2]);
  expect([S.dims, S.type, S.raw.length]).toEqual([[(N * K) / 128], DT_FLOAT, ((N * K) / 128) * 4]);
  // MatMulNBits, 4 bits, no zero points given: value = (nibble - 8) * scale, low nibble first.
  // Symmetric round-to-nearest INT4 is within half a step (scale / 2) of W; 1e-6 relative slack
  // for the float32 scale itself.
  const scales = asFloat32(S.raw);
  for (let n = 0; n < N; ++n) {
    for (let k = 0; k < K; ++k) {
      const byte = B.raw[n * (K / 2) + (k >> 1)];
      const q = k % 2 === 0 ? byte & 15 : byte >> 4;
      const s = scales[n * (K / 128) + Math.floor(k / 128)];
      const err = Math.abs((q - 8) * s - w[n * K + k]);
      if (!(err <= (s / 2) * (1 + 1e-6))) throw new Error(`W[${n}, ${k}] = ${w[n * K + k]} decodes to ${(q - 8) * s} (scale ${s}); ${seedNote(seed)}`);
    }
  }
});

test('varints: boundaries round-trip, negative or fractional values are refused', () => {
  const values = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
  const m = new Proto();
  values.forEach((v, i) => m.int(i + 1, v));
  m.bytes(300, new Uint8Array(200).fill(7)); // a field number and a length of two varint bytes each
  const bytes = m.encode();
  expect(bytes.length).toBe(m.size());
  const f = decode(bytes);
  expect(f.slice(0, values.length).map((x) => [x.field, x.value])).toEqual(values.map((v, i) => [i + 1, v]));
  expect(f[values.length].field).toBe(300);
  expect([...f[values.length].data!]).toEqual(new Array(200).fill(7));
  expect(() => new Proto().int(1, -1)).toThrow(RangeError);
  expect(() => new Proto().int(1, 1.5)).toThrow(RangeError);
});
