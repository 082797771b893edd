/**
 * 2:4 weights (float16, bfloat16) on the CUDA backend: native/cuda/gemm_sparse24.cuh on sparse
 * tensor cores (mma.sp::ordered_metadata m16n8k32). The device layout, made here on upload from
 * the canonical format (README "Formats"), is the kernel file's:
 *   values [np, kp/2]: the canonical kept values, rows padded to np = N rounded up to 64 and
 *          columns to kp/2 with kp = K rounded up to 64 (padding: zeros);
 *   meta   uint32 [np/16][kp/32][16]: for each 16-row x 32-column tile, word 2g + p is what lane
 *          4g + p passes as mma.sp's metadata under selector 0: bits 4j..4j+3 the nibble of row
 *          16b + g's group 8kt + 4p + j, bits 16 + 4j.. that of row 16b + g + 8 (a padded group's
 *          nibble is 0x4, "positions 0 and 1", holding zeros: a valid ordered nibble).
 * canonical() and toDense() invert it. lowRankUpdate updates values (and, reprune, the words) in
 * place (native/cuda/lowrank_update.cuh). Float32 2:4 weights stay on the CPU kernels (the routing
 * table says so): sparse tensor cores take 16-bit (or TF32, at TF32's precision) operands.
 */
import { CgRangeError, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle } from '../native/cuda';
import { DeviceFactors, DeviceFormat, DevicePlacement, KernelCall, deviceAddon, downloadColumns, padColumns, uploadAll } from './cuda-common';

interface Sparse24Placement extends DevicePlacement {
  readonly values: DeviceHandle;
  readonly meta: DeviceHandle;
  readonly np: number;
  readonly kp: number;
}

const TILE = 64; // the kernel's block tile along N and K (gemm_sparse24.cuh, Sparse24Tile)
const PAD_NIBBLE = 0x4;

function dims(params: WeightParams): { N: number; K: number; dtype: 'float16' | 'bfloat16' } {
  if (params.format !== '2:4' || params.dtype === 'float32') throw new Error(`cuda-sparse24: a ${params.format} weight`);
  return { N: params.N, K: params.K, dtype: params.dtype as 'float16' | 'bfloat16' };
}

const padded = (v: number) => Math.ceil(v / TILE) * TILE;

/** The canonical meta [N, ceil(K/8)] as the lanes' words [np/16][kp/32][16]. */
export function metaToDevice(meta: Uint8Array, N: number, K: number, np: number, kp: number): Uint32Array {
  const mrow = Math.ceil(K / 8), groups = K / 4;
  const nibble = (n: number, grp: number) => (n < N && grp < groups ? (meta[n * mrow + (grp >> 1)] >> ((grp & 1) * 4)) & 0xf : PAD_NIBBLE);
  const half = (n: number, grp0: number) => nibble(n, grp0) | (nibble(n, grp0 + 1) << 4) | (nibble(n, grp0 + 2) << 8) | (nibble(n, grp0 + 3) << 12);
  const tilesK = kp / 32;
  const words = new Uint32Array((np / 16) * tilesK * 16);
  for (let b = 0; b < np / 16; ++b) {
    for (let kt = 0; kt < tilesK; ++kt) {
      const base = (b * tilesK + kt) * 16;
      for (let g = 0; g < 8; ++g) {
        for (let p = 0; p < 2; ++p) {
          const grp0 = kt * 8 + 4 * p;
          words[base + 2 * g + p] = (half(16 * b + g, grp0) | (half(16 * b + g + 8, grp0) << 16)) >>> 0;
        }
      }
    }
  }
  return words;
}

/** The lanes' words back as the canonical meta [N, ceil(K/8)] (an odd K/4's last high nibble 0). */
export function metaFromDevice(words: Uint32Array, N: number, K: number, kp: number, out: Uint8Array): void {
  const mrow = Math.ceil(K / 8), groups = K / 4, tilesK = kp / 32;
  out.fill(0, 0, N * mrow);
  for (let n = 0; n < N; ++n) {
    const b = n >> 4, r = n & 15, g = r & 7, hi = r >> 3;
    for (let grp = 0; grp < groups; ++grp) {
      const kt = grp >> 3, p = (grp >> 2) & 1, j = grp & 3;
      const word = words[(b * tilesK + kt) * 16 + 2 * g + p];
      const nib = (word >>> (16 * hi + 4 * j)) & 0xf;
      out[n * mrow + (grp >> 1)] |= nib << ((grp & 1) * 4);
    }
  }
}

export const sparse24Format: DeviceFormat = {
  place(params: WeightParams, canonical: CanonicalArrays, device: number): Sparse24Placement {
    const { N, K } = dims(params);
    const np = padded(N), kp = padded(K);
    const rows = new Uint8Array(np * kp); // [np, kp/2] 16-bit values = np * kp bytes, zero rows past N
    const v = padColumns(canonical.values!, 2, N, K / 2, kp / 2);
    rows.set(new Uint8Array(v.buffer, v.byteOffset, N * kp), 0);
    const words = metaToDevice(canonical.meta!, N, K, np, kp);
    const [values, meta] = uploadAll(deviceAddon(), device, [rows, words]);
    return Object.freeze({ backend: 'cuda' as const, device, handles: [values, meta], values, meta, np, kp, byteLength: rows.byteLength + words.byteLength });
  },
  canonical(params, p, out) {
    const { N, K } = dims(params);
    const sp = p as Sparse24Placement;
    downloadColumns(sp.values, 2, N, K / 2, sp.kp / 2, out.values!);
    const words = new Uint32Array((sp.np / 16) * (sp.kp / 32) * 16);
    withNativeErrors(() => deviceAddon().copyToHost({ handle: sp.meta, dst: words }));
    metaFromDevice(words, N, K, sp.kp, out.meta!);
  },
  toDense(params, p, out) {
    const { N, K } = dims(params);
    const values = new Uint16Array(N * (K / 2)), meta = new Uint8Array(N * Math.ceil(K / 8));
    sparse24Format.canonical(params, p, { values, meta });
    const w = new Uint16Array(out.buffer, out.byteOffset, N * K);
    w.fill(0);
    for (let n = 0; n < N; ++n) {
      for (let grp = 0; grp < K / 4; ++grp) {
        const nib = (meta[n * Math.ceil(K / 8) + (grp >> 1)] >> ((grp & 1) * 4)) & 0xf;
        w[n * K + 4 * grp + (nib & 3)] = values[n * (K / 2) + 2 * grp];
        w[n * K + 4 * grp + (nib >> 2)] = values[n * (K / 2) + 2 * grp + 1];
      }
    }
  },
  hostK(_params, p) {
    return (p as Sparse24Placement).kp;
  },
  checkTensorK(params) {
    const { K, dtype } = dims(params);
    if (K % 8 !== 0) {
      throw new CgRangeError('ERR_K_ALIGNMENT', `a device tensor x with a 2:4 ${dtype} weight needs K to be a multiple of 8 (the kernel copies rows as 16-byte chunks), got K = ${K}: pad K, or pass host arrays (padded for you)`);
    }
  },
  run(d: DeviceAddon, params: WeightParams, p: DevicePlacement, c: KernelCall, async: boolean) {
    const { N, dtype } = dims(params);
    const sp = p as Sparse24Placement;
    const args = { x: c.x, values: sp.values, meta: sp.meta, bias: c.bias, out: c.out, M: c.M, N, K: c.xK, np: sp.np, kp: sp.kp, dtype, outDtype: c.outDtype, lora: c.lora };
    return async ? withNativeErrorsAsync(() => d.linearSparse24Async(args)) : withNativeErrors(() => d.linearSparse24(args));
  },
  update(d: DeviceAddon, params: WeightParams, p: DevicePlacement, f: DeviceFactors, async: boolean) {
    const { N, K, dtype } = dims(params);
    const sp = p as Sparse24Placement;
    const args = { values: sp.values, meta: sp.meta, np: sp.np, kp: sp.kp, a: f.a, b: f.b, N, K, r: f.r, alpha: f.alpha, dtype, reprune: f.reprune };
    return async ? withNativeErrorsAsync(() => d.lowRankUpdateSparse24Async(args)) : withNativeErrors(() => d.lowRankUpdateSparse24(args));
  },
};
