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
import { ONNX_FLOAT, ONNX_UINT8, attrInt, model, tensor } from './onnx';

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

/**
 * The ONNX model of a peer op for one weight (MatMul's B is [K, N]: the weight transposed;
 * MatMulNBits' B is [N, K/128, 64] bytes and its scales [N * K/128] float32), and the bytes of
 * weight a call reads.
 */
export function peerModel(kind: PeerKind, wdata: Float32Array, N: number, K: number): { bytes: Uint8Array; weightBytes: number } {
  if (kind === 'ort-matmul-f32') {
    const wt = new Float32Array(K * N);
    const T = 64; // transposed tile by tile: both sides stay in cache
    for (let n0 = 0; n0 < N; n0 += T) {
      for (let k0 = 0; k0 < K; k0 += T) {
        for (let n = n0; n < Math.min(n0 + T, N); ++n) for (let k = k0; k < Math.min(k0 + T, K); ++k) wt[k * N + n] = wdata[n * K + k];
      }
    }
    return { bytes: model('MatMul', '', ['A', 'B'], [], [tensor('B', [K, N], ONNX_FLOAT, u8(wt))], K, N), weightBytes: wt.byteLength };
  }
  const q = Int4Weight.quantize(wdata, [N, K], { groupSize: 128, symmetric: true, scaleDtype: 'float32' }).canonical();
  const attrs = [attrInt('K', K), attrInt('N', N), attrInt('bits', 4), attrInt('block_size', 128), attrInt('accuracy_level', kind === 'ort-nbits-l4' ? 4 : 0)];
  const inits = [tensor('B', [N, K / 128, 64], ONNX_UINT8, q.qweight), tensor('scales', [N * (K / 128)], ONNX_FLOAT, u8(q.scales))];
  return { bytes: model('MatMulNBits', 'com.microsoft', ['A', 'B', 'scales'], attrs, inits, K, N), weightBytes: q.qweight.byteLength + q.scales.byteLength };
}

/** A session for one weight shape; run(x, M) resolves with the [M, N] result. */
export async function makePeer(ort: Ort, kind: PeerKind, wdata: Float32Array, N: number, K: number, threads: number):
  Promise<{ weightBytes: number; run(x: Float32Array, M: number, out: Float32Array): Promise<void> }> {
  const { bytes, weightBytes } = peerModel(kind, wdata, N, K);
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
