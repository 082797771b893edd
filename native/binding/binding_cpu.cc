// The CPU addon's N-API surface. lib/binding.ts declares it as one typed interface; lib/ checks
// every argument before calling here. The checks below repeat only what protects memory
// (buffer sizes, enum ranges), so a caller that bypasses lib/ gets an exception, never a crash.
#include <napi.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../common/cpu_features.h"
#include "../common/fp8.h"
#include "../common/quant_format.h"
#include "../common/sparse24_format.h"
#include "../common/thread_pool.h"
#include "../cpu/fma_peak.h"
#include "../cpu/kernels.h"
#include "../cpu/lowrank.h"

namespace {

using cg::DType;

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

// Errors from the addon's own checks. lib/ validates every argument first, so reaching one of
// these means a caller bypassed lib/ (or lib/ has a bug); they carry code ERR_NATIVE.
Napi::Error coded(Napi::Error e, const char* code) {
  e.Set("code", Napi::String::New(e.Env(), code));
  return e;
}
[[noreturn]] void throw_type(const Napi::Env& env, const std::string& msg) {
  throw coded(Napi::TypeError::New(env, "compressed-gemm native check: " + msg), "ERR_NATIVE");
}
[[noreturn]] void throw_range(const Napi::Env& env, const std::string& msg) {
  throw coded(Napi::RangeError::New(env, "compressed-gemm native check: " + msg), "ERR_NATIVE");
}
void need(const Napi::Env& env, bool ok, const std::string& msg) {
  if (!ok) throw_range(env, msg);
}

// Any TypedArray (over an ArrayBuffer or a SharedArrayBuffer) or ArrayBuffer, as bytes.
Bytes bytes_of(const Napi::Value& v, const char* what) {
  napi_env env = v.Env();
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok)
      throw_type(v.Env(), std::string(what) + ": cannot read the TypedArray");
    size_t elem = 4;
    switch (type) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 4; break;
    }
    // data already points at the view's first byte; a detached view reads as (null, 0).
    return {static_cast<uint8_t*>(data), length * elem};
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength()};
  }
  throw_type(v.Env(), std::string(what) + " must be a TypedArray");
}

int64_t int_of(const Napi::Object& o, const char* key, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_type(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(lo) && d <= double(hi)) || std::floor(d) != d) throw_range(o.Env(), std::string(key) + " out of range");
  return int64_t(d);
}

DType dtype_of(const Napi::Object& o, const char* key) { return DType(int_of(o, key, 0, 2)); }

Napi::Object object_arg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type(info.Env(), "expected one object argument");
  return info[0].As<Napi::Object>();
}

constexpr int64_t kMaxDim = int64_t(1) << 31;

// ---- features ------------------------------------------------------------------------------

bool isa_supported(cg::Isa isa) {
  const cg::CpuFeatures& f = cg::cpu_features();
  switch (isa) {
    case cg::Isa::Scalar: return true;
#if defined(__x86_64__)
    case cg::Isa::Avx2: return f.avx2 && f.fma && f.f16c;
    case cg::Isa::Avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma && f.f16c;
#endif
    default: return false;
  }
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cg::CpuFeatures& f = cg::cpu_features();
  auto features = Napi::Array::New(env);
  uint32_t i = 0;
  auto add = [&](bool on, const char* name) { if (on) features.Set(i++, name); };
  add(f.sse42, "sse4.2"); add(f.avx, "avx"); add(f.avx2, "avx2"); add(f.fma, "fma"); add(f.f16c, "f16c");
  add(f.avx512f, "avx512f"); add(f.avx512bw, "avx512bw"); add(f.avx512dq, "avx512dq"); add(f.avx512vl, "avx512vl");
  add(f.avx512_vnni, "avx512_vnni"); add(f.avx512_bf16, "avx512_bf16"); add(f.avx512_fp16, "avx512_fp16");
  add(f.avx_vnni, "avx_vnni"); add(f.amx_tile, "amx_tile"); add(f.amx_int8, "amx_int8"); add(f.amx_bf16, "amx_bf16");
  auto isas = Napi::Array::New(env);
  uint32_t j = 0;
  isas.Set(j++, "scalar");
  if (isa_supported(cg::Isa::Avx2)) isas.Set(j++, "avx2");
  if (isa_supported(cg::Isa::Avx512)) isas.Set(j++, "avx512");
  auto out = Napi::Object::New(env);
  out.Set("features", features);
  out.Set("isas", isas);
  out.Set("hardwareThreads", cg::hardware_threads());
  return out;
}

// fmaPeak({ isa, threads, iterations }) -> GFLOP/s of a register-only FMA loop on that many
// threads at once: the machine's sustained fp32 FMA peak, to which the bench compares the dense
// kernel.
struct PeakCtx { cg::Isa isa; int64_t iterations; double flops[1024]; };

void peak_task(void* ctx, int t, int) {
  auto* c = static_cast<PeakCtx*>(ctx);
#if defined(__x86_64__)
  c->flops[t] = c->isa == cg::Isa::Avx512 ? cg::avx512::fma_loop_flops(c->iterations)
                                           : cg::avx2::fma_loop_flops(c->iterations);
#else
  c->flops[t] = 0;
#endif
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  auto isa = cg::Isa(int_of(o, "isa", 1, 2));
  need(env, isa_supported(isa), "this CPU cannot run the requested instruction set");
  int threads = int(int_of(o, "threads", 1, 1024));
  auto ctx = std::make_unique<PeakCtx>();
  ctx->isa = isa;
  ctx->iterations = int_of(o, "iterations", 1, int64_t(1) << 40);
  auto t0 = std::chrono::steady_clock::now();
  cg::parallel_for(threads, threads, peak_task, ctx.get());
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double flops = 0;
  for (int t = 0; t < threads; ++t) flops += ctx->flops[t];
  return Napi::Number::New(env, flops / s / 1e9);
}

// ---- formats -------------------------------------------------------------------------------

struct Dims { int64_t N, K; DType dt; };

Dims dims_of(const Napi::Object& o) {
  Dims d{int_of(o, "N", 1, kMaxDim), int_of(o, "K", 1, kMaxDim), dtype_of(o, "dtype")};
  need(o.Env(), d.N * d.K < kMaxDim, "N*K must be below 2^31");
  return d;
}

// densePack({ data, N, K, dtype }) -> ArrayBuffer in the CPU panel layout
Napi::Value DensePack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  Dims d = dims_of(o);
  Bytes src = bytes_of(o.Get("data"), "data");
  size_t es = size_t(cg::dtype_size(d.dt));
  need(env, src.length == size_t(d.N * d.K) * es, "data has the wrong length");
  auto packed = Napi::ArrayBuffer::New(env, size_t(cg::dense_packed_elems(d.N, d.K)) * es);
  cg::dense_pack(src.data, d.dt, d.N, d.K, packed.Data());
  return packed;
}

// denseUnpack({ packed, N, K, dtype, out })
Napi::Value DenseUnpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  Dims d = dims_of(o);
  size_t es = size_t(cg::dtype_size(d.dt));
  Bytes packed = bytes_of(o.Get("packed"), "packed");
  Bytes out = bytes_of(o.Get("out"), "out");
  need(env, packed.length == size_t(cg::dense_packed_elems(d.N, d.K)) * es, "packed has the wrong length");
  need(env, out.length == size_t(d.N * d.K) * es, "out has the wrong length");
  cg::dense_unpack(packed.data, d.dt, d.N, d.K, out.data);
  return env.Undefined();
}

size_t sparse_packed_bytes(const Dims& d) { return size_t(cg::sp24_packed_bytes(d.N, d.K, cg::dtype_size(d.dt))); }

Bytes packed_of(const Napi::Object& o, const Dims& d) {
  Bytes b = bytes_of(o.Get("packed"), "packed");
  need(o.Env(), d.K % 4 == 0, "K must be a multiple of 4");
  need(o.Env(), b.length == sparse_packed_bytes(d), "packed has the wrong length");
  return b;
}

// sparse24Encode({ data, N, K, dtype, mode: 'prune'|'compress' }) -> { bad, packed }: bad is -1,
// or (compress only) the flat index row * (K/4) + group of the first group that is not 2:4, and
// then packed is undefined. packed is the CPU layout (common/sparse24_format.h).
Napi::Value Sparse24Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  Dims d = dims_of(o);
  need(env, d.K % 4 == 0, "K must be a multiple of 4");
  Bytes src = bytes_of(o.Get("data"), "data");
  const size_t es = size_t(cg::dtype_size(d.dt));
  need(env, src.length == size_t(d.N * d.K) * es, "data has the wrong length");
  std::vector<uint8_t> values(size_t(d.N * (d.K / 2)) * es), meta(size_t(d.N * cg::sparse24_meta_row_bytes(d.K)));
  int64_t bad = -1;
  if (o.Get("mode").ToString().Utf8Value() == "prune") cg::sparse24_prune(src.data, d.dt, d.N, d.K, values.data(), meta.data());
  else bad = cg::sparse24_compress(src.data, d.dt, d.N, d.K, values.data(), meta.data());
  auto out = Napi::Object::New(env);
  out.Set("bad", Napi::Number::New(env, double(bad)));
  if (bad < 0) {
    auto packed = Napi::ArrayBuffer::New(env, sparse_packed_bytes(d));
    cg::sparse24_pack(values.data(), meta.data(), d.dt, d.N, d.K, packed.Data());
    out.Set("packed", packed);
  }
  return out;
}

// sparse24Unpack({ packed, N, K, dtype, values, meta }): the canonical format, from the CPU layout
Napi::Value Sparse24Unpack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  Dims d = dims_of(o);
  Bytes packed = packed_of(o, d);
  Bytes values = bytes_of(o.Get("values"), "values"), meta = bytes_of(o.Get("meta"), "meta");
  need(env, values.length == size_t(d.N * (d.K / 2)) * size_t(cg::dtype_size(d.dt)), "values has the wrong length");
  need(env, meta.length == size_t(d.N * cg::sparse24_meta_row_bytes(d.K)), "meta has the wrong length");
  cg::sparse24_unpack(packed.data, d.dt, d.N, d.K, values.data, meta.data);
  return env.Undefined();
}

// sparse24ToDense({ packed, N, K, dtype, out })
Napi::Value Sparse24ToDense(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  Dims d = dims_of(o);
  Bytes packed = packed_of(o, d);
  Bytes out = bytes_of(o.Get("out"), "out");
  const size_t es = size_t(cg::dtype_size(d.dt));
  need(env, out.length == size_t(d.N * d.K) * es, "out has the wrong length");
  std::vector<uint8_t> values(size_t(d.N * (d.K / 2)) * es), meta(size_t(d.N * cg::sparse24_meta_row_bytes(d.K)));
  cg::sparse24_unpack(packed.data, d.dt, d.N, d.K, values.data(), meta.data());
  cg::sparse24_to_dense(values.data(), meta.data(), d.dt, d.N, d.K, out.data);
  return env.Undefined();
}

// ---- FP8 and INT4 formats (common/fp8.h, common/quant_format.h) -----------------------------

cg::Fp8Format fp8_format_of(const Napi::Object& o) { return cg::Fp8Format(int_of(o, "format", 0, 1)); }

// fp8Encode({ src: Float32Array, dst: Uint8Array, format }) / fp8Decode({ src, dst, format })
Napi::Value Fp8Encode(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Fp8Format f = fp8_format_of(o);
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  need(info.Env(), src.length == dst.length * 4, "src and dst lengths differ");
  const float* x = reinterpret_cast<const float*>(src.data);
  for (size_t i = 0; i < dst.length; ++i) dst.data[i] = cg::fp8_encode(x[i], f);
  return info.Env().Undefined();
}

Napi::Value Fp8Decode(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Fp8Format f = fp8_format_of(o);
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  need(info.Env(), dst.length == src.length * 4, "src and dst lengths differ");
  float* y = reinterpret_cast<float*>(dst.data);
  for (size_t i = 0; i < src.length; ++i) y[i] = cg::fp8_decode(src.data[i], f);
  return info.Env().Undefined();
}

cg::Int4Dims int4_dims_of(const Napi::Object& o) {
  cg::Int4Dims d{int_of(o, "N", 1, kMaxDim), int_of(o, "K", 8, kMaxDim), int_of(o, "group", 1, kMaxDim)};
  need(o.Env(), d.N * d.K < kMaxDim && d.K % 8 == 0 && d.K % d.group == 0 && d.group % 8 == 0, "bad INT4 dimensions");
  return d;
}

DType scale_dtype_of(const Napi::Object& o) {
  const DType t = dtype_of(o, "scaleDtype");
  need(o.Env(), t != DType::BF16, "INT4 scales are float16 or float32");
  return t;
}

struct Int4Canonical {
  Bytes q, scales, zeros;  // zeros.data null: symmetric
};

Int4Canonical int4_canonical_of(const Napi::Object& o, const cg::Int4Dims& d, DType sdt) {
  Int4Canonical c{bytes_of(o.Get("qweight"), "qweight"), bytes_of(o.Get("scales"), "scales"), {}};
  need(o.Env(), c.q.length == size_t(d.N * (d.K / 2)), "qweight has the wrong length");
  need(o.Env(), c.scales.length == size_t(d.N * d.groups()) * size_t(cg::dtype_size(sdt)), "scales has the wrong length");
  Napi::Value z = o.Get("zeros");
  if (!z.IsNull() && !z.IsUndefined()) {
    c.zeros = bytes_of(z, "zeros");
    need(o.Env(), c.zeros.length == size_t(d.N * d.groups()), "zeros has the wrong length");
  }
  return c;
}

const int32_t* perm_of(const Napi::Object& o, const cg::Int4Dims& d) {
  Napi::Value v = o.Get("perm");
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  Bytes b = bytes_of(v, "perm");
  need(o.Env(), b.length == size_t(d.K) * 4, "perm has the wrong length");
  const int32_t* p = reinterpret_cast<const int32_t*>(b.data);
  std::vector<uint8_t> seen(size_t(d.K), 0);
  for (int64_t i = 0; i < d.K; ++i) {
    need(o.Env(), p[i] >= 0 && p[i] < d.K && !seen[size_t(p[i])], "perm is not a permutation of 0..K-1");
    seen[size_t(p[i])] = 1;
  }
  return p;
}

Bytes int4_packed_of(const Napi::Object& o, const cg::Int4Dims& d) {
  Bytes b = bytes_of(o.Get("packed"), "packed");
  need(o.Env(), b.length == size_t(cg::int4_layout(d).bytes), "packed has the wrong length");
  return b;
}

// int4Quantize({ data, N, K, group, symmetric, scaleDtype, qweight, scales, zeros }) -> { bad, reason }
Napi::Value Int4Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const cg::Int4Dims d = int4_dims_of(o);
  const DType sdt = scale_dtype_of(o);
  const bool symmetric = o.Get("symmetric").ToBoolean();
  Bytes data = bytes_of(o.Get("data"), "data");
  need(env, data.length == size_t(d.N * d.K) * 4, "data has the wrong length");
  Int4Canonical c = int4_canonical_of(o, d, sdt);
  need(env, symmetric || c.zeros.data, "asymmetric quantization needs zeros");
  int reason = 0;
  const int64_t bad = cg::int4_quantize(d, reinterpret_cast<const float*>(data.data), symmetric, sdt, c.q.data, c.scales.data,
                                        symmetric ? nullptr : c.zeros.data, &reason);
  auto out = Napi::Object::New(env);
  out.Set("bad", Napi::Number::New(env, double(bad)));
  out.Set("reason", Napi::Number::New(env, reason));
  return out;
}

// int4Pack({ N, K, group, qweight, scales, scaleDtype, zeros?, perm? }) -> ArrayBuffer (CPU layout)
Napi::Value Int4Pack(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Int4Dims d = int4_dims_of(o);
  const DType sdt = scale_dtype_of(o);
  Int4Canonical c = int4_canonical_of(o, d, sdt);
  const int32_t* perm = perm_of(o, d);
  const cg::Int4Layout L = cg::int4_layout(d);
  auto packed = Napi::ArrayBuffer::New(info.Env(), size_t(L.bytes));
  uint8_t* base = static_cast<uint8_t*>(packed.Data());
  std::memset(base, 0, size_t(L.bytes));
  cg::int4_pack(d, c.q.data, c.scales.data, sdt, c.zeros.data, perm, base, reinterpret_cast<float*>(base + L.scales_off),
                reinterpret_cast<float*>(base + L.zeros_off));
  return packed;
}

// int4Unpack({ packed, N, K, group, perm?, scaleDtype, qweight, scales, zeros? }): canonical
Napi::Value Int4Unpack(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Int4Dims d = int4_dims_of(o);
  const DType sdt = scale_dtype_of(o);
  Bytes packed = int4_packed_of(o, d);
  Int4Canonical c = int4_canonical_of(o, d, sdt);
  const int32_t* perm = perm_of(o, d);
  const cg::Int4Layout L = cg::int4_layout(d);
  cg::int4_unpack(d, packed.data, reinterpret_cast<const float*>(packed.data + L.scales_off),
                  reinterpret_cast<const float*>(packed.data + L.zeros_off), perm, c.q.data, c.scales.data, sdt, c.zeros.data);
  return info.Env().Undefined();
}

// int4Dequant({ packed, N, K, group, perm?, out: Float32Array [N, K] })
Napi::Value Int4Dequant(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Int4Dims d = int4_dims_of(o);
  Bytes packed = int4_packed_of(o, d);
  const int32_t* perm = perm_of(o, d);
  Bytes out = bytes_of(o.Get("out"), "out");
  need(info.Env(), out.length == size_t(d.N * d.K) * 4, "out has the wrong length");
  const cg::Int4Layout L = cg::int4_layout(d);
  cg::int4_dequant(d, packed.data, reinterpret_cast<const float*>(packed.data + L.scales_off),
                   reinterpret_cast<const float*>(packed.data + L.zeros_off), perm, reinterpret_cast<float*>(out.data));
  return info.Env().Undefined();
}

// gptqToCanonical / awqToCanonical({ N, K, G, qweight: Int32Array, qzeros: Int32Array, scales,
// scaleDtype, outQ, outZeros, outScales })
template <bool kAwq>
Napi::Value PackedToCanonical(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const int64_t N = int_of(o, "N", 8, kMaxDim), K = int_of(o, "K", 8, kMaxDim), G = int_of(o, "G", 1, kMaxDim);
  need(env, N * K < kMaxDim && N % 8 == 0 && K % 8 == 0 && K % G == 0, "bad packed INT4 dimensions");
  const DType sdt = scale_dtype_of(o);
  Bytes qw = bytes_of(o.Get("qweight"), "qweight"), qz = bytes_of(o.Get("qzeros"), "qzeros"), sc = bytes_of(o.Get("scales"), "scales");
  Bytes oq = bytes_of(o.Get("outQ"), "outQ"), oz = bytes_of(o.Get("outZeros"), "outZeros"), os = bytes_of(o.Get("outScales"), "outScales");
  need(env, qw.length == size_t(N * K / 8) * 4 && qz.length == size_t(G * N / 8) * 4, "qweight/qzeros have the wrong length");
  need(env, sc.length == size_t(G * N) * size_t(cg::dtype_size(sdt)) && os.length == sc.length, "scales have the wrong length");
  need(env, oq.length == size_t(N * K / 2) && oz.length == size_t(N * G), "outputs have the wrong length");
  const int32_t* q = reinterpret_cast<const int32_t*>(qw.data);
  const int32_t* z = reinterpret_cast<const int32_t*>(qz.data);
  if (kAwq) cg::awq_to_canonical(N, K, G, q, z, sc.data, sdt, oq.data, oz.data, os.data);
  else cg::gptq_to_canonical(N, K, G, q, z, sc.data, sdt, oq.data, oz.data, os.data);
  return env.Undefined();
}

cg::Fp8Dims fp8_dims_of(const Napi::Object& o) {
  cg::Fp8Dims d{int_of(o, "N", 1, kMaxDim), int_of(o, "K", 1, kMaxDim), int_of(o, "bn", 1, kMaxDim), int_of(o, "bk", 1, kMaxDim)};
  need(o.Env(), d.N * d.K < kMaxDim, "N*K must be below 2^31");
  return d;
}

// fp8Quantize({ data, N, K, bn, bk, format, codes, scales }) -> bad (-1 or first non-finite index)
Napi::Value Fp8Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const cg::Fp8Dims d = fp8_dims_of(o);
  Bytes data = bytes_of(o.Get("data"), "data"), codes = bytes_of(o.Get("codes"), "codes"), scales = bytes_of(o.Get("scales"), "scales");
  need(env, data.length == size_t(d.N * d.K) * 4 && codes.length == size_t(d.N * d.K), "data/codes have the wrong length");
  need(env, scales.length == size_t(d.scales()) * 4, "scales has the wrong length");
  return Napi::Number::New(env, double(cg::fp8_quantize(d, reinterpret_cast<const float*>(data.data), fp8_format_of(o), codes.data,
                                                        reinterpret_cast<float*>(scales.data))));
}

// fp8Pack({ codes, scales, N, K, bn, bk }) -> ArrayBuffer (the CPU layout, quant_format.h)
Napi::Value Fp8Pack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  const cg::Fp8Dims d = fp8_dims_of(o);
  Bytes codes = bytes_of(o.Get("codes"), "codes"), scales = bytes_of(o.Get("scales"), "scales");
  need(env, codes.length == size_t(d.N * d.K) && scales.length == size_t(d.scales()) * 4, "codes/scales have the wrong length");
  auto packed = Napi::ArrayBuffer::New(env, size_t(cg::fp8_bytes(d)));
  cg::fp8_pack(d, codes.data, reinterpret_cast<const float*>(scales.data), static_cast<uint8_t*>(packed.Data()));
  return packed;
}

Bytes fp8_packed_of(const Napi::Object& o, const cg::Fp8Dims& d) {
  Bytes b = bytes_of(o.Get("packed"), "packed");
  need(o.Env(), b.length == size_t(cg::fp8_bytes(d)), "packed has the wrong length");
  return b;
}

// fp8Unpack({ packed, N, K, bn, bk, codes, scales })
Napi::Value Fp8Unpack(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Fp8Dims d = fp8_dims_of(o);
  Bytes packed = fp8_packed_of(o, d);
  Bytes codes = bytes_of(o.Get("codes"), "codes"), scales = bytes_of(o.Get("scales"), "scales");
  need(info.Env(), codes.length == size_t(d.N * d.K) && scales.length == size_t(d.scales()) * 4, "codes/scales have the wrong length");
  cg::fp8_unpack(d, packed.data, codes.data);
  std::memcpy(scales.data, packed.data + cg::fp8_scales_off(d), scales.length);
  return info.Env().Undefined();
}

// fp8Dequant({ packed, N, K, bn, bk, format, out: Float32Array [N, K] })
Napi::Value Fp8Dequant(const Napi::CallbackInfo& info) {
  auto o = object_arg(info);
  const cg::Fp8Dims d = fp8_dims_of(o);
  Bytes packed = fp8_packed_of(o, d);
  Bytes out = bytes_of(o.Get("out"), "out");
  need(info.Env(), out.length == size_t(d.N * d.K) * 4, "out has the wrong length");
  cg::fp8_dequant(d, packed.data, reinterpret_cast<const float*>(packed.data + cg::fp8_scales_off(d)), fp8_format_of(o),
                  reinterpret_cast<float*>(out.data));
  return info.Env().Undefined();
}

// convert({ src, srcDtype, dst, dstDtype }): element-wise, rounding to nearest even
Napi::Value Convert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = object_arg(info);
  DType sdt = dtype_of(o, "srcDtype"), ddt = dtype_of(o, "dstDtype");
  Bytes src = bytes_of(o.Get("src"), "src"), dst = bytes_of(o.Get("dst"), "dst");
  size_t n = src.length / size_t(cg::dtype_size(sdt));
  need(env, src.length % size_t(cg::dtype_size(sdt)) == 0 && dst.length == n * size_t(cg::dtype_size(ddt)),
       "src and dst lengths differ");
  for (size_t i = 0; i < n; ++i) cg::store_from_f32(dst.data, ddt, int64_t(i), cg::load_as_f32(src.data, sdt, int64_t(i)));
  return env.Undefined();
}

// ---- linear --------------------------------------------------------------------------------

enum class WeightKind { Dense = 0, Sparse24 = 1, Int4 = 2, Fp8 = 3 };

// Everything one linear call needs, captured on the JS thread.
//
// Sync calls read and write the caller's arrays in place (no JS runs meanwhile). Async calls
// copy x and the bias at call time and compute into a buffer of their own, copied into `out` on
// the JS thread when the work is done: the caller may reuse x at once, and neither transferring
// nor resizing an array while the call runs can make the kernel touch freed memory. The weight's
// buffer is held by a reference; lib/ never hands it out.
struct LinearCall {
  WeightKind kind = WeightKind::Dense;
  int64_t M = 0, N = 0, K = 0;
  DType xdt = DType::F32, wdt = DType::F32, ydt = DType::F32;
  Bytes x, w, bias, y;
  int threads = 1;
  cg::Isa isa = cg::Isa::Scalar;
  bool async = false;
  cg::ActQuant act = cg::ActQuant::None;
  int64_t act_block = 0;         // fp8 activations: K extent of one scale (0: one per row)
  cg::Int4Dims int4{};           // kind Int4
  std::vector<int32_t> perm;     // kind Int4, act-order (empty: none)
  cg::Fp8Dims fp8{};             // kind Fp8
  cg::Fp8Format fp8_format = cg::Fp8Format::E4M3;
  std::vector<Napi::ObjectReference> keep;
  std::vector<uint8_t> xcopy, biascopy, ybuf;
  Napi::ObjectReference out_ref;
  // Low-rank terms (fused LoRA, or one adapter per row): the adapters' packed A and B, and
  // each row's adapter (empty: adapter 0 for every row).
  std::vector<cg::LoraAdapterRef> adapters;
  std::vector<int32_t> row_adapter;

  void capture_lora(const Napi::Object& o) {
    Napi::Env env = o.Env();
    Napi::Value lv = o.Get("lora");
    if (lv.IsNull() || lv.IsUndefined()) return;
    if (!lv.IsObject()) throw_type(env, "lora must be an object");
    Napi::Object lo = lv.As<Napi::Object>();
    Napi::Value av = lo.Get("adapters");
    if (!av.IsArray()) throw_type(env, "lora.adapters must be an array");
    Napi::Array arr = av.As<Napi::Array>();
    need(env, arr.Length() >= 1 && arr.Length() <= 65536, "lora.adapters must hold 1 to 65536 adapters");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value e = arr.Get(i);
      if (!e.IsObject()) throw_type(env, "each adapter must be an object");
      Napi::Object ao = e.As<Napi::Object>();
      const int r = int(int_of(ao, "r", 1, 65536));
      Bytes a = hold(ao, "a"), b = hold(ao, "b");
      need(env, a.length == size_t(cg::dense_packed_elems(r, K)) * 4, "adapter A has the wrong length");
      need(env, b.length == size_t(cg::dense_packed_elems(N, r)) * 4, "adapter B has the wrong length");
      Napi::Value al = ao.Get("alpha");
      if (!al.IsNumber()) throw_type(env, "adapter alpha must be a number");
      const float alpha = float(al.As<Napi::Number>().DoubleValue());
      need(env, std::isfinite(alpha), "adapter alpha must be finite");
      adapters.push_back({a.data, reinterpret_cast<const float*>(b.data), r, alpha});
    }
    Napi::Value rv = lo.Get("rowAdapter");
    if (!rv.IsNull() && !rv.IsUndefined()) {
      Bytes rb = bytes_of(rv, "rowAdapter");
      need(env, rb.length == size_t(M) * 4, "rowAdapter must hold one index per row");
      const int32_t* ri = reinterpret_cast<const int32_t*>(rb.data);
      row_adapter.assign(ri, ri + M);  // a copy: an async call must not read the caller's array later
      for (int32_t a : row_adapter) need(env, a >= -1 && a < int32_t(adapters.size()), "rowAdapter entries must be -1 or adapter indices");
    }
  }

  void capture(const Napi::Object& o, bool is_async) {
    Napi::Env env = o.Env();
    async = is_async;
    kind = WeightKind(int_of(o, "kind", 0, 3));
    M = int_of(o, "M", 1, kMaxDim);
    N = int_of(o, "N", 1, kMaxDim);
    K = int_of(o, "K", 1, kMaxDim);
    need(env, M * K < kMaxDim && M * N < kMaxDim && N * K < kMaxDim, "dimensions too large");
    xdt = dtype_of(o, "xDtype");
    wdt = dtype_of(o, "wDtype");
    ydt = dtype_of(o, "outDtype");
    threads = int(int_of(o, "threads", 1, 1024));
    isa = cg::Isa(int_of(o, "isa", 0, 2));
    need(env, isa_supported(isa), "this CPU cannot run the requested instruction set");
    x = bytes_of(o.Get("x"), "x");
    w = hold(o, "w");
    y = bytes_of(o.Get("out"), "out");
    need(env, x.length == size_t(M * K) * size_t(cg::dtype_size(xdt)), "x has the wrong length");
    need(env, y.length == size_t(M * N) * size_t(cg::dtype_size(ydt)), "out has the wrong length");
    size_t ws = size_t(cg::dtype_size(wdt));
    if (kind == WeightKind::Dense) {
      need(env, w.length == size_t(cg::dense_packed_elems(N, K)) * ws, "packed weight has the wrong length");
    } else if (kind == WeightKind::Sparse24) {
      need(env, K % 4 == 0, "K must be a multiple of 4");
      need(env, w.length == size_t(cg::sp24_packed_bytes(N, K, int(ws))), "packed 2:4 weight has the wrong length");
    } else if (kind == WeightKind::Int4) {
      int4 = cg::Int4Dims{N, K, int_of(o, "group", 8, kMaxDim)};
      need(env, K % 8 == 0 && K % int4.group == 0 && int4.group % 8 == 0, "bad INT4 group");
      need(env, w.length == size_t(cg::int4_layout(int4).bytes), "packed INT4 weight has the wrong length");
      Napi::Value pv = o.Get("perm");
      if (!pv.IsNull() && !pv.IsUndefined()) {
        Bytes pb = bytes_of(pv, "perm");
        need(env, pb.length == size_t(K) * 4, "perm has the wrong length");
        perm.assign(reinterpret_cast<const int32_t*>(pb.data), reinterpret_cast<const int32_t*>(pb.data) + K);
        for (int32_t c : perm) need(env, c >= 0 && c < K, "perm entries must be columns of x");
      }
    } else {
      fp8 = cg::Fp8Dims{N, K, int_of(o, "bn", 1, kMaxDim), int_of(o, "bk", 1, kMaxDim)};
      fp8_format = cg::Fp8Format(int_of(o, "fp8Format", 0, 1));
      need(env, w.length == size_t(cg::fp8_bytes(fp8)), "packed FP8 weight has the wrong length");
    }
    capture_lora(o);
    act = o.Get("act").IsUndefined() ? cg::ActQuant::None : cg::ActQuant(int_of(o, "act", 0, 2));
    need(env, act == cg::ActQuant::None || kind == WeightKind::Int4 || kind == WeightKind::Fp8, "quantized activations need an INT4 or FP8 weight");
    act_block = o.Get("actBlock").IsUndefined() ? 0 : int_of(o, "actBlock", 0, kMaxDim);
    Napi::Value bv = o.Get("bias");
    if (!bv.IsNull() && !bv.IsUndefined()) {
      bias = bytes_of(bv, "bias");
      need(env, bias.length == size_t(N) * 4, "bias must be a Float32Array of length N");
    }
    if (async) {
      xcopy.assign(x.data, x.data + x.length);
      x.data = xcopy.data();
      if (bias.data) {
        biascopy.assign(bias.data, bias.data + bias.length);
        bias.data = biascopy.data();
      }
      ybuf.resize(y.length);
      y.data = ybuf.data();
      out_ref = Napi::Persistent(o.Get("out").As<Napi::Object>());
    }
  }

  Bytes hold(const Napi::Object& o, const char* key) {
    Napi::Value v = o.Get(key);
    Bytes b = bytes_of(v, key);
    keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
    return b;
  }

  // Runs on any thread; touches no JS value. Throws std::bad_alloc when the kernel could not
  // get its scratch memory.
  void run() {
    cg::GemmProblem p;
    p.x = x.data; p.xdt = xdt;
    p.M = M; p.N = N; p.K = K;
    p.bias = bias.data ? reinterpret_cast<const float*>(bias.data) : nullptr;
    p.y = y.data; p.ydt = ydt;
    p.threads = threads;
    // Low-rank terms: t = alpha * x · Aᵀ first (per adapter segment), added in the epilogue.
    std::vector<float> t;
    std::vector<const float*> bs;
    std::vector<int32_t> ranks;
    cg::LoraEpilogue lora;
    if (!adapters.empty()) {
      int rmax = 0;
      for (const auto& a : adapters) rmax = a.r > rmax ? a.r : rmax;
      t.assign(size_t(M) * size_t(rmax), 0.0f);  // may throw std::bad_alloc: out of memory
      const int32_t* ra = row_adapter.empty() ? nullptr : row_adapter.data();
      if (!cg::lora_first_product(isa, p, adapters.data(), int(adapters.size()), ra, t.data(), rmax)) throw std::bad_alloc();
      for (const auto& a : adapters) {
        bs.push_back(a.b_packed);
        ranks.push_back(a.r);
      }
      lora.t = t.data();
      lora.tstride = rmax;
      lora.row_adapter = ra;
      lora.b = bs.data();
      lora.rank = ranks.data();
      p.lora = &lora;
    }
    bool ok;
    if (kind == WeightKind::Dense) {
      ok = cg::dense_linear(isa, p, w.data, wdt);
    } else if (kind == WeightKind::Sparse24) {
      ok = cg::sparse24_linear(isa, p, w.data, wdt);
    } else {
      cg::QuantProblem q;
      q.p = &p;
      q.packed = w.data;
      q.act = act;
      q.act_block = act_block;
      if (kind == WeightKind::Int4) {
        q.kind = cg::QuantKind::Int4;
        q.int4 = int4;
        q.perm = perm.empty() ? nullptr : perm.data();
      } else {
        q.kind = cg::QuantKind::Fp8;
        q.fp8 = fp8;
        q.fp8_format = fp8_format;
      }
      ok = cg::quant_linear(isa, q);
    }
    if (!ok) throw std::bad_alloc();
  }

  // Async, on the JS thread once run() is done: the result goes into the caller's `out`.
  // False when `out` was detached or resized meanwhile.
  bool deliver() {
    Bytes dst = bytes_of(out_ref.Value(), "out");
    if (dst.length != ybuf.size() || (dst.data == nullptr && !ybuf.empty())) return false;
    std::memcpy(dst.data, ybuf.data(), ybuf.size());
    return true;
  }
};

Napi::Error out_of_memory(Napi::Env env) {
  return coded(Napi::Error::New(env, "compressed-gemm: out of memory for the kernel's buffers"), "ERR_OUT_OF_MEMORY");
}

Napi::Value Linear(const Napi::CallbackInfo& info) {
  LinearCall call;
  call.capture(object_arg(info), false);
  try {
    call.run();
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  return info.Env().Undefined();
}

class LinearWorker : public Napi::AsyncWorker {
 public:
  LinearWorker(Napi::Env env, std::unique_ptr<LinearCall> call)
      : Napi::AsyncWorker(env, "compressed-gemm:linear"), call_(std::move(call)), deferred_(env) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      call_->run();
    } catch (const std::bad_alloc&) {
      oom_ = true;
      SetError("out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    const bool delivered = call_->deliver();
    call_.reset();  // drop the references on the JS thread
    if (delivered) {
      deferred_.Resolve(Env().Undefined());
    } else {
      deferred_.Reject(coded(Napi::TypeError::New(Env(), "compressed-gemm: `out` was detached or resized while linearAsync ran"),
                             "ERR_DETACHED").Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    call_.reset();
    deferred_.Reject(oom_ ? out_of_memory(Env()).Value() : e.Value());
  }

 private:
  bool oom_ = false;
  std::unique_ptr<LinearCall> call_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value LinearAsync(const Napi::CallbackInfo& info) {
  auto call = std::make_unique<LinearCall>();
  try {
    call->capture(object_arg(info), true);
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  auto* worker = new LinearWorker(info.Env(), std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

// ---- lowRankUpdate ----------------------------------------------------------------------------

// lowRankUpdate({ kind, N, K, r, alpha, b, a, abDtype, w, wDtype, reprune, group, perm, symmetric,
//   scaleDtype, bn, bk, fp8Format, tileK, threads, isa }) -> scratch bytes used. The weight's
// buffer is updated in place; A and B are copied when the call is made (async calls).
struct UpdateCall {
  cg::LowRankUpdate u;
  cg::Isa isa = cg::Isa::Scalar;
  std::vector<uint8_t> acopy, bcopy;
  std::vector<int32_t> perm;
  Napi::ObjectReference keep_w;
  int64_t result = 0;

  void capture(const Napi::Object& o) {
    Napi::Env env = o.Env();
    u.kind = cg::UpdateKind(int_of(o, "kind", 0, 3));
    u.N = int_of(o, "N", 1, kMaxDim);
    u.K = int_of(o, "K", 1, kMaxDim);
    need(env, u.N * u.K < kMaxDim, "N*K must be below 2^31");
    u.r = int(int_of(o, "r", 1, kMaxDim));
    Napi::Value al = o.Get("alpha");
    if (!al.IsNumber()) throw_type(env, "alpha must be a number");
    u.alpha = float(al.As<Napi::Number>().DoubleValue());
    need(env, std::isfinite(u.alpha), "alpha must be finite");
    u.abdt = dtype_of(o, "abDtype");
    const size_t es = size_t(cg::dtype_size(u.abdt));
    Bytes a = bytes_of(o.Get("a"), "a"), b = bytes_of(o.Get("b"), "b");
    need(env, a.length == size_t(u.r) * size_t(u.K) * es && b.length == size_t(u.N) * size_t(u.r) * es, "A and B have the wrong lengths");
    acopy.assign(a.data, a.data + a.length);
    bcopy.assign(b.data, b.data + b.length);
    u.a = acopy.data();
    u.b = bcopy.data();
    Napi::Value wv = o.Get("w");
    Bytes w = bytes_of(wv, "w");
    keep_w = Napi::Persistent(wv.As<Napi::Object>());
    u.w = w.data;
    u.tile_k = int_of(o, "tileK", 1, kMaxDim);
    u.threads = int(int_of(o, "threads", 1, 1024));
    isa = cg::Isa(int_of(o, "isa", 0, 2));
    need(env, isa_supported(isa), "this CPU cannot run the requested instruction set");
    switch (u.kind) {
      case cg::UpdateKind::Dense:
        u.wdt = dtype_of(o, "wDtype");
        need(env, w.length == size_t(cg::dense_packed_elems(u.N, u.K)) * size_t(cg::dtype_size(u.wdt)), "w has the wrong length");
        break;
      case cg::UpdateKind::Sparse24:
        u.wdt = dtype_of(o, "wDtype");
        need(env, u.K % 4 == 0 && w.length == size_t(cg::sp24_packed_bytes(u.N, u.K, cg::dtype_size(u.wdt))), "w has the wrong length");
        u.reprune = o.Get("reprune").ToBoolean();
        break;
      case cg::UpdateKind::Int4: {
        u.int4 = cg::Int4Dims{u.N, u.K, int_of(o, "group", 8, kMaxDim)};
        need(env, u.K % 8 == 0 && u.K % u.int4.group == 0 && u.int4.group % 8 == 0, "bad INT4 group");
        need(env, w.length == size_t(cg::int4_layout(u.int4).bytes), "w has the wrong length");
        u.symmetric = o.Get("symmetric").ToBoolean();
        u.scale_dt = dtype_of(o, "scaleDtype");
        Napi::Value pv = o.Get("perm");
        if (!pv.IsNull() && !pv.IsUndefined()) {
          Bytes pb = bytes_of(pv, "perm");
          need(env, pb.length == size_t(u.K) * 4, "perm has the wrong length");
          perm.assign(reinterpret_cast<const int32_t*>(pb.data), reinterpret_cast<const int32_t*>(pb.data) + u.K);
          for (int32_t c : perm) need(env, c >= 0 && c < u.K, "perm entries must be columns");
          u.perm = perm.data();
        }
        break;
      }
      default:
        u.fp8 = cg::Fp8Dims{u.N, u.K, int_of(o, "bn", 1, kMaxDim), int_of(o, "bk", 1, kMaxDim)};
        u.fp8_format = cg::Fp8Format(int_of(o, "fp8Format", 0, 1));
        need(env, w.length == size_t(cg::fp8_bytes(u.fp8)), "w has the wrong length");
        break;
    }
  }
};

Napi::Error update_error(Napi::Env env, int64_t r) {
  if (r == -1) return out_of_memory(env);
  return coded(Napi::RangeError::New(env, "compressed-gemm: the update would give a group or block a scale its dtype cannot hold "
                                          "(non-finite values, or past float16 scales); the weight is unchanged"),
               "ERR_SCALE");
}

Napi::Value LowRankUpdateSync(const Napi::CallbackInfo& info) {
  UpdateCall call;
  try {
    call.capture(object_arg(info));
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  const int64_t r = cg::lowrank_update(call.isa, call.u);
  if (r < 0) throw update_error(info.Env(), r);
  return Napi::Number::New(info.Env(), double(r));
}

class UpdateWorker : public Napi::AsyncWorker {
 public:
  UpdateWorker(Napi::Env env, std::unique_ptr<UpdateCall> call)
      : Napi::AsyncWorker(env, "compressed-gemm:lowRankUpdate"), call_(std::move(call)), deferred_(env) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { result_ = cg::lowrank_update(call_->isa, call_->u); }
  void OnOK() override {
    call_.reset();
    if (result_ < 0) deferred_.Reject(update_error(Env(), result_).Value());
    else deferred_.Resolve(Napi::Number::New(Env(), double(result_)));
  }

 private:
  std::unique_ptr<UpdateCall> call_;
  Napi::Promise::Deferred deferred_;
  int64_t result_ = 0;
};

Napi::Value LowRankUpdateAsync(const Napi::CallbackInfo& info) {
  auto call = std::make_unique<UpdateCall>();
  try {
    call->capture(object_arg(info));
  } catch (const std::bad_alloc&) {
    throw out_of_memory(info.Env());
  }
  auto* worker = new UpdateWorker(info.Env(), std::move(call));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo));
  exports.Set("densePack", Napi::Function::New(env, DensePack));
  exports.Set("denseUnpack", Napi::Function::New(env, DenseUnpack));
  exports.Set("sparse24Encode", Napi::Function::New(env, Sparse24Encode));
  exports.Set("sparse24Unpack", Napi::Function::New(env, Sparse24Unpack));
  exports.Set("sparse24ToDense", Napi::Function::New(env, Sparse24ToDense));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  exports.Set("fp8Encode", Napi::Function::New(env, Fp8Encode));
  exports.Set("fp8Decode", Napi::Function::New(env, Fp8Decode));
  exports.Set("fp8Quantize", Napi::Function::New(env, Fp8Quantize));
  exports.Set("fp8Pack", Napi::Function::New(env, Fp8Pack));
  exports.Set("fp8Unpack", Napi::Function::New(env, Fp8Unpack));
  exports.Set("fp8Dequant", Napi::Function::New(env, Fp8Dequant));
  exports.Set("int4Quantize", Napi::Function::New(env, Int4Quantize));
  exports.Set("int4Pack", Napi::Function::New(env, Int4Pack));
  exports.Set("int4Unpack", Napi::Function::New(env, Int4Unpack));
  exports.Set("int4Dequant", Napi::Function::New(env, Int4Dequant));
  exports.Set("gptqToCanonical", Napi::Function::New(env, PackedToCanonical<false>));
  exports.Set("awqToCanonical", Napi::Function::New(env, PackedToCanonical<true>));
  exports.Set("convert", Napi::Function::New(env, Convert));
  exports.Set("linear", Napi::Function::New(env, Linear));
  exports.Set("linearAsync", Napi::Function::New(env, LinearAsync));
  exports.Set("lowRankUpdate", Napi::Function::New(env, LowRankUpdateSync));
  exports.Set("lowRankUpdateAsync", Napi::Function::New(env, LowRankUpdateAsync));
  return exports;
}

}  // namespace

NODE_API_MODULE(compressed_gemm_cpu, Init)
