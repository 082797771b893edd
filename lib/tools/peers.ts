/**
 * The bench's optional peer: onnxruntime-node's CPU provider, which a Node user would pick
 * instead of this library. Not a dependency: `npm install --ignore-scripts onnxruntime-node`
 * (its postinstall only fetches GPU parts) and `npx compressed-gemm bench --peers`.
 *
 * Each peer op is a one-node ONNX model built here, with the weight as an initializer:
 *   ort-matmul-f32  MatMul, float32 weight [K, N]
 *   ort-nbits-l0    com.microsoft MatMulNBits, 4 bits, block 128, accuracy_level 0 (float32 math)
 *   ort-nbits-l4    the same with accuracy_level 4 (int8 activations)
 * The INT4 peers get the same quantized weight as int4-g128 (symmetric, zero point 8, float32
 * scales): MatMulNBits' B is [N, K/128, 64] bytes, low nibble first, which is exactly the
 * canonical qweight of an Int4Weight.
 */
import * as path from 'path';
import { Int4Weight } from '../weights/int4';

// ---- a minimal protobuf writer for the ONNX messages used ------------------------------------

class Proto {
  private parts: number[] = [];

  private varint(v: number | bigint): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.parts.push(b);
    } while (x > 0n);
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    for (const b of data) this.parts.push(b);
    return this;
  }

  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  msg(field: number, m: Proto): this {
    return this.bytes(field, m.done());
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    for (const x of b) this.parts.push(x);
    return this;
  }

  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const ONNX_FLOAT = 1;
const ONNX_UINT8 = 2;

function tensor(name: string, dims: number[], type: number, raw: Uint8Array): Proto {
  const t = new Proto();
  for (const d of dims) t.int(1, d);
  t.int(2, type).str(8, name).bytes(9, raw);
  return t;
}

function valueInfo(name: string, dims: Array<number | string>): Proto {
  const shape = new Proto();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().str(2, d));
  const tt = new Proto().int(1, ONNX_FLOAT).msg(2, shape);
  return new Proto().str(1, name).msg(2, new Proto().msg(1, tt));
}

function attrInt(name: string, v: number): Proto {
  return new Proto().str(1, name).int(20, 2).int(3, v);
}

function model(nodeOp: string, domain: string, inputs: string[], attrs: Proto[], initializers: Proto[], K: number, N: number): Uint8Array {
  const node = new Proto();
  for (const i of inputs) node.str(1, i);
  node.str(2, 'Y').str(3, 'node').str(4, nodeOp);
  for (const a of attrs) node.msg(5, a);
  if (domain) node.str(7, domain);
  const graph = new Proto().msg(1, node).str(2, 'g');
  for (const t of initializers) graph.msg(5, t);
  graph.msg(11, valueInfo('A', ['M', K])).msg(12, valueInfo('Y', ['M', N]));
  const m = new Proto().int(1, 8).str(2, 'compressed-gemm bench').msg(7, graph);
  m.msg(8, new Proto().str(1, '').int(2, 17));
  if (domain) m.msg(8, new Proto().str(1, domain).int(2, 1));
  return m.done();
}

function u8(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// ---- onnxruntime-node ------------------------------------------------------------------------

interface OrtTensor {
  data: Float32Array;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
}
interface Ort {
  InferenceSession: { create(m: Uint8Array, o: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
  env: { versions?: { node?: string } };
}

/** onnxruntime-node when it is installed (in this package or the current project), else null. */
export function loadOrt(): { ort: Ort; version: string } | null {
  for (const from of [process.cwd(), path.resolve(__dirname, '..')]) {
    try {
      const p = require.resolve('onnxruntime-node', { paths: [from] });
      const ort = require(p) as Ort;
      return { ort, version: ort.env?.versions?.node ?? 'unknown' };
    } catch {
      // try the next place
    }
  }
  return null;
}

export type PeerKind = 'ort-matmul-f32' | 'ort-nbits-l0' | 'ort-nbits-l4';
export const PEER_KINDS: PeerKind[] = ['ort-matmul-f32', 'ort-nbits-l0', 'ort-nbits-l4'];

/** A session for one weight shape; run(x, M) resolves with the [M, N] result. */
export async function makePeer(ort: Ort, kind: PeerKind, wdata: Float32Array, N: number, K: number, threads: number):
  Promise<{ weightBytes: number; run(x: Float32Array, M: number, out: Float32Array): Promise<void> }> {
  let bytes: Uint8Array;
  let weightBytes: number;
  if (kind === 'ort-matmul-f32') {
    const wt = new Float32Array(K * N);  // MatMul's B is [K, N]
    for (let n = 0; n < N; ++n) for (let k = 0; k < K; ++k) wt[k * N + n] = wdata[n * K + k];
    bytes = model('MatMul', '', ['A', 'B'], [], [tensor('B', [K, N], ONNX_FLOAT, u8(wt))], K, N);
    weightBytes = wt.byteLength;
  } else {
    const q = Int4Weight.quantize(wdata, [N, K], { groupSize: 128, symmetric: true, scaleDtype: 'float32' }).canonical();
    const attrs = [attrInt('K', K), attrInt('N', N), attrInt('bits', 4), attrInt('block_size', 128), attrInt('accuracy_level', kind === 'ort-nbits-l4' ? 4 : 0)];
    const inits = [tensor('B', [N, K / 128, 64], ONNX_UINT8, q.qweight), tensor('scales', [N * (K / 128)], ONNX_FLOAT, u8(q.scales))];
    bytes = model('MatMulNBits', 'com.microsoft', ['A', 'B', 'scales'], attrs, inits, K, N);
    weightBytes = q.qweight.byteLength + q.scales.byteLength;
  }
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    // No spinning after a run: the bench runs ops round-robin, and spinning threads would steal
    // the cores from whichever op runs next.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  return {
    weightBytes,
    async run(x, M, out) {
      const r = await session.run({ A: new ort.Tensor('float32', x, [M, K]) });
      out.set(r.Y.data);
    },
  };
}
