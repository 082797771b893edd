/**
 * A minimal protobuf writer for the one-node ONNX models of the bench's peers (peers.ts).
 *
 * A message is built as a list of fields that refer to their data (a weight's bytes are not
 * copied while the model is assembled); encode() computes every size first and then writes the
 * whole model into one preallocated buffer. Collecting bytes in a JS number array, as this file
 * once did, fails for a 180 MB weight (11008 x 4096 float32): V8 refuses arrays that large.
 *
 * Field numbers: onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
 */

type Field =
  | { field: number; kind: 'varint'; value: number }
  | { field: number; kind: 'bytes'; data: Uint8Array }
  | { field: number; kind: 'msg'; msg: Proto };

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

/** Bytes of the varint of a non-negative safe integer. */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    ++n;
  }
  return n;
}

function writeVarint(buf: Uint8Array, at: number, v: number): number {
  while (v >= 128) {
    buf[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

const wireOf = (f: Field) => (f.kind === 'varint' ? WIRE_VARINT : WIRE_BYTES);

export class Proto {
  private fields: Field[] = [];
  private cachedSize = -1;

  /** An int64/int32/enum field; non-negative only (the models here need no negative numbers). */
  int(field: number, v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`protobuf varint ${v}: only non-negative safe integers are written`);
    return this.add({ field, kind: 'varint', value: v });
  }

  /** A bytes field; `data` is referenced, not copied, until encode(). */
  bytes(field: number, data: Uint8Array): this {
    return this.add({ field, kind: 'bytes', data });
  }

  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  msg(field: number, m: Proto): this {
    return this.add({ field, kind: 'msg', msg: m });
  }

  /** The encoded size in bytes. */
  size(): number {
    if (this.cachedSize < 0) {
      let n = 0;
      for (const f of this.fields) {
        n += varintSize(f.field * 8);
        if (f.kind === 'varint') n += varintSize(f.value);
        else {
          const len = f.kind === 'bytes' ? f.data.length : f.msg.size();
          n += varintSize(len) + len;
        }
      }
      this.cachedSize = n;
    }
    return this.cachedSize;
  }

  /** The message, written into one buffer of exactly size() bytes. */
  encode(): Uint8Array {
    const buf = Buffer.allocUnsafe(this.size());
    const end = this.writeTo(buf, 0);
    if (end !== buf.length) throw new Error(`protobuf writer: wrote ${end} of ${buf.length} bytes`);
    return buf;
  }

  private add(f: Field): this {
    this.fields.push(f);
    this.cachedSize = -1;
    return this;
  }

  private writeTo(buf: Uint8Array, at: number): number {
    for (const f of this.fields) {
      at = writeVarint(buf, at, f.field * 8 + wireOf(f));
      if (f.kind === 'varint') {
        at = writeVarint(buf, at, f.value);
      } else if (f.kind === 'bytes') {
        at = writeVarint(buf, at, f.data.length);
        buf.set(f.data, at);
        at += f.data.length;
      } else {
        at = writeVarint(buf, at, f.msg.size());
        at = f.msg.writeTo(buf, at);
      }
    }
    return at;
  }
}

export const ONNX_FLOAT = 1;
export const ONNX_UINT8 = 2;

/** TensorProto: dims (1), data_type (2), name (8), raw_data (9, little-endian bytes). */
export function tensor(name: string, dims: number[], type: number, raw: Uint8Array): Proto {
  const t = new Proto();
  for (const d of dims) t.int(1, d);
  return t.int(2, type).str(8, name).bytes(9, raw);
}

/** ValueInfoProto of a float tensor: name (1), type (2) = TypeProto.tensor_type (1) = { elem_type (1), shape (2) }. */
function valueInfo(name: string, dims: Array<number | string>): Proto {
  const shape = new Proto();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Proto().int(1, d) : new Proto().str(2, d));
  const tt = new Proto().int(1, ONNX_FLOAT).msg(2, shape);
  return new Proto().str(1, name).msg(2, new Proto().msg(1, tt));
}

/** AttributeProto of type INT (2): name (1), i (3), type (20). */
export function attrInt(name: string, v: number): Proto {
  return new Proto().str(1, name).int(20, 2).int(3, v);
}

/**
 * A ModelProto with one node `nodeOp` (domain '' = the ONNX domain, opset 17) reading the graph
 * input A [M, K] and the initializers, writing Y [M, N]; IR version 8.
 */
export function model(nodeOp: string, domain: string, inputs: string[], attrs: Proto[], initializers: Proto[], K: number, N: number): Uint8Array {
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
  return m.encode();
}
