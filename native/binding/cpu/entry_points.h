// The CPU addon's entry points, one file per concern, each registering its exports:
//   info.cc       cpuInfo, fmaPeak                        [sync]
//   formats.cc    the canonical formats (native/formats/): convert, FP8 codec, 2:4 prune and
//                 compress, INT4 quantize and GPTQ/AWQ import, FP8 quantize     [sync]
//   placement.cc  a weight's CPU placement: place, canonical, toDense         [sync]
//   linear.cc     linear [sync], linearAsync [libuv pool, Promise]
//   lowrank.cc    lowRankUpdate [sync], lowRankUpdateAsync [libuv pool, Promise]
// lib/native/cpu.ts declares the same surface as one typed interface.
#pragma once
#include <napi.h>

#include "cpu/kernels.h"

namespace cg {
namespace binding {

void register_info(Napi::Env env, Napi::Object exports);
void register_formats(Napi::Env env, Napi::Object exports);
void register_placement(Napi::Env env, Napi::Object exports);
void register_linear(Napi::Env env, Napi::Object exports);
void register_lowrank(Napi::Env env, Napi::Object exports);

// o[key]: 'scalar' | 'avx2' | 'avx512', one this CPU runs.
Isa isa_of(const Napi::Object& o, const char* key);

}  // namespace binding
}  // namespace cg
