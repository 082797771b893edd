/**
 * INT4 weights on the CUDA backend: the W4A16 tensor-core kernel of native/cuda/gemm_int4.cuh,
 * over the device layout of native/cuda/gemm_int4_layout.h (one allocation: codes in Marlin's
 * order, scales as float32, zero points, the act-order permutation), made from the canonical
 * arrays on upload (int4ToDeviceLayout, native) and inverted on the host for canonical() and
 * toDense() (int4FromDeviceLayout).
 *
 * Activations: float16 and bfloat16 x go to the kernel as they are. A float32 host x is rounded
 * to float16 first (the kernel's A operand is 16-bit; documented, as the dense kernel rounds x to
 * its weight's dtype); a value beyond float16's range is refused (pass bfloat16 bits instead)
 * rather than turned into an infinity. A float32 device tensor is ERR_DTYPE. Act-order: x is
 * permuted on the device (a small kernel, into a scratch buffer made per call) before the GEMM.
 */
import type { FloatDType } from '../dtype';
import { CgError, CgRangeError, CgTypeError, withNativeErrors, withNativeErrorsAsync } from '../errors';
import type { CanonicalArrays, WeightParams } from '../native/descriptor';
import type { DeviceAddon, DeviceHandle, Int4DeviceArgs } from '../native/cuda';
import { cpuBackend } from './cpu';
import { DeviceFormat, DevicePlacement, KernelCall, deviceAddon, upload } from './cuda-common';
import { selectBackend } from './select';

type Int4Params = Extract<WeightParams, { format: 'int4' }>;

interface Int4Placement extends DevicePlacement {
  /** The layout (gemm_int4_layout.h): one allocation. */
  readonly w: DeviceHandle;
  readonly bytes: number;
  readonly zeros: boolean;
  readonly actOrder: boolean;
}

function int4Params(params: WeightParams): Int4Params {
  if (params.format !== 'int4') throw new Error(`cuda-int4: a ${params.format} weight`);
  return params;
}

/**
 * The kernel takes one scale per k16 tile: groups of a multiple of 16 columns (quantize's 32, 64,
 * 128), or one group per row. Other groups (fromCanonical allows any multiple of 8) are refused
 * before anything is uploaded.
 */
function checkGroup(params: Int4Params): void {
  if (params.group % 16 !== 0 && params.group !== params.K) {
    throw new CgError('ERR_NOT_SUPPORTED', `compressed-gemm: the CUDA INT4 kernel needs groups of a multiple of 16 columns (32, 64, 128) or per-channel scales; this weight has groups of ${params.group} (it runs on the CPU backend: COMPRESSED_GEMM_BACKEND=cpu)`);
  }
}

/** float32 x rounded to float16 bits; RangeError for a finite value that float16 cannot hold. */
function toFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  selectBackend().cpuAddon.convert({ src, srcDtype: 'float32', dst: out, dstDtype: 'float16' });
  for (let i = 0; i < out.length; ++i) {
    if ((out[i] & 0x7c00) === 0x7c00 && Number.isFinite(src[i])) {
      throw new CgRangeError('ERR_INVALID_ARG', `x[${i}] = ${src[i]} is beyond float16's range: the CUDA INT4 kernel rounds float32 x to float16 (W4A16); pass x as bfloat16 bits ({ dtype: 'bfloat16' })`);
    }
  }
  return out;
}

export const int4Format: DeviceFormat = {
  place(params: WeightParams, canonical: CanonicalArrays, device: number): Int4Placement {
    const ip = int4Params(params);
    checkGroup(ip);
    const d = deviceAddon();
    const { N, K, group, perm } = ip;
    const zeros = !ip.symmetric;
    const actOrder = perm !== null;
    const { bytes } = withNativeErrors(() => d.int4DeviceLayout({ N, K, group, zeros, actOrder }));
    const blob = new Uint8Array(bytes);
    withNativeErrors(() =>
      d.int4ToDeviceLayout({ N, K, group, qweight: canonical.qweight!, scales: canonical.scales!, zeros: zeros ? canonical.zeros! : null, perm, out: blob }),
    );
    const w = upload(d, device, blob);
    return Object.freeze({ backend: 'cuda' as const, device, handles: [w], w, bytes, zeros, actOrder, byteLength: bytes });
  },
  canonical(params, p, out) {
    const { N, K, group } = int4Params(params);
    const ip = p as Int4Placement;
    const d = deviceAddon();
    const blob = new Uint8Array(ip.bytes);
    withNativeErrors(() => d.copyToHost({ handle: ip.w, dst: blob }));
    withNativeErrors(() =>
      d.int4FromDeviceLayout({ N, K, group, actOrder: ip.actOrder, blob, qweight: out.qweight!, scales: out.scales!, zeros: ip.zeros ? out.zeros! : null }),
    );
  },
  /** The canonical arrays read back, dequantized by the CPU backend's code (the format's rule, in float32). */
  toDense(params, p, out) {
    const ip = int4Params(params);
    const G = ip.K / ip.group;
    const canonical: CanonicalArrays = {
      qweight: new Uint8Array(ip.N * (ip.K / 2)),
      scales: ip.scaleDtype === 'float16' ? new Uint16Array(ip.N * G) : new Float32Array(ip.N * G),
      zeros: ip.symmetric ? null : new Uint8Array(ip.N * G),
    };
    int4Format.canonical(params, p, canonical);
    cpuBackend.toDense(params, cpuBackend.place(params, canonical), out);
  },
  hostK(params) {
    return params.K; // a multiple of 8 (the format's rule): x's rows are whole 16-byte chunks
  },
  checkTensorK(params) {
    checkGroup(int4Params(params)); // K itself is always a multiple of 8
  },
  activations(_params, x: { dtype: FloatDType; host?: ArrayBufferView }) {
    if (x.dtype !== 'float32') return x;
    if (!x.host) {
      throw new CgTypeError('ERR_DTYPE', `x is a float32 tensor: the CUDA INT4 kernel takes float16 or bfloat16 activations (W4A16); make the tensor in one of them`);
    }
    return { dtype: 'float16', host: toFloat16(x.host as Float32Array) };
  },
  run(d: DeviceAddon, params: WeightParams, p: DevicePlacement, c: KernelCall, async: boolean) {
    const { N, K, group } = int4Params(params);
    const ip = p as Int4Placement;
    // Act-order: the permuted x goes to a scratch buffer, freed once the kernel is done (the
    // addon's reference keeps its memory until then even when freed at once).
    const scratch = ip.actOrder ? withNativeErrors(() => d.deviceAlloc({ device: ip.device, bytes: c.M * K * 2 })) : null;
    const args: Int4DeviceArgs = {
      x: c.x, w: ip.w, scratch, bias: c.bias, out: c.out, M: c.M, N, K, group, zeros: ip.zeros, actOrder: ip.actOrder,
      dtype: c.xDtype as 'float16' | 'bfloat16', outDtype: c.outDtype, lora: c.lora,
    };
    const free = () => {
      if (scratch) d.deviceFree(scratch);
    };
    if (!async) {
      try {
        return withNativeErrors(() => d.linearInt4(args));
      } finally {
        free();
      }
    }
    return withNativeErrorsAsync(() => d.linearInt4Async(args)).finally(free);
  },
};
