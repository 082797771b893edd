#!/usr/bin/env node
// The timings of our own CUDA kernels, for the shapes of torch_baseline.py, as JSON on stdout
// (torch_baseline.py --ours FILE puts them beside cuBLAS's, in timings.json and the table).
//
//   node scripts/gpu-check/bench-ours.js --addon build-cuda/Release/compressed_gemm_cuda.node > ours.json
//   node scripts/gpu-check/bench-ours.js --addon build/Release/compressed_gemm_cuda_sim.node --smoke
//   --from N: start at case N (after a kernel fault the script goes on from the next case in a
//   fresh process itself: continued_after_fault names the faulting cases)
//   --deadline T: start no case after epoch second T (gpu-check.sh gives it half of its timings
//   step); `skipped_for_time` counts the cases left out, the most valuable ones come first.
//
// Kernels: the dense tensor-core GEMM (native/cuda/gemm_dense.cuh; fp16 and bf16) on 8192^3 and the
// LLM shapes, the 2:4 sparse GEMM (gemm_sparse24.cuh; fp16) and the INT4 W4A16 GEMM
// (gemm_int4.cuh; fp16 x, group 128, symmetric) on 8192^2 and the LLM shapes (all three with
// split-K as their auto_splits choose, and off beside it at M = 1 and 16, fp16; dense and 2:4
// also with their 64-row tiles beside the decode tiles they pick at M <= 16, dense with its
// 128-row tile (blockM 128) beside the 64-row one at M = 512, 4096 and 8192, INT4 with its
// 16-row tile beside the 64-row one it picks at M = 128), at M in
// {1, 16, 128, 512, 4096}: y[M, N] = x[M, K] W[N, K]^T, the layout torch_baseline.py times.
// LoRA (rank 16, one adapter, fp16 x) at M = 16 and 128 on the LLM shapes: each GEMM with its
// fused epilogue term (`+lora16`), and the shrink T = x·Aᵀ (lora_shrink.cuh) on its own; then
// `lora_overhead` gives (shrink + fused GEMM) / the plain GEMM of the same case, the issue's
// "adds at most 10%" (the plain GEMMs are the automatic-choice rows above).
//
// Method (as torch_baseline.py): the addon's timeGemm (native/binding/timing_exports.h) records a
// device event before and after each launch; enough copies of the inputs to span 128 MiB (past
// an H100/H200 L2) are made and rotated, one timed launch per copy in turn, after warm-up, so no
// timed launch finds its operands in the L2; the median with the 10th and 90th percentiles.
// Inputs are random values in [-1, 1) (the 2:4 metadata random ordered nibbles, already in the
// lanes' layout): the kernels' time does not depend on them.
//
// Also (`async`): whether an async call makes the JS thread wait for the device (asyncReturn).
//
// On the simulated device (--smoke, or any addon whose devices say simulated) nothing is timed
// as a GPU figure: a few tiny launches check the plumbing and the status says so.
'use strict';
const path = require('path');

const LLM_SHAPES = [[4096, 4096], [11008, 4096], [4096, 11008]]; // [N, K]
const LLM_MS = [1, 16, 128, 512, 4096];
const LORA_MS = [16, 128];
const LORA_RANK = 16;
const SPAN_BYTES = 128 * 2 ** 20;
const ORDERED_NIBBLES = [0x4, 0x8, 0x9, 0xc, 0xd, 0xe];

function arg(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** float32 -> IEEE half bits (round to nearest even; the inputs here are small normal numbers). */
function toHalf(v) {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  const mant = u & 0x7fffff;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1;
  return h;
}

/** bfloat16 bits: the float32 bits' upper half, rounded to nearest even. */
function toBf16(v) {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function random16(n, dtype) {
  const a = new Uint16Array(n);
  const enc = dtype === 'bf16' ? toBf16 : toHalf;
  // A repeating block of random values keeps setup fast on 8192^2 inputs; the timing does not care.
  const block = Array.from({ length: 4096 }, () => enc(Math.random() * 2 - 1));
  for (let i = 0; i < n; i++) a[i] = block[i % 4096];
  return a;
}

function percentile(sorted, q) {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i), hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

/** A device buffer holding `src`. */
function upload(addon, src) {
  const h = addon.deviceAlloc({ bytes: src.byteLength });
  addon.copyToDevice({ handle: h, src });
  return h;
}

/** Device buffers of one input set of (kernel, M, N, K), and the kernel's argument object. */
function randomF32(n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * 0.05;
  return a;
}

/**
 * The LoRA term of one adapter of rank `r` for every row (lora_epilogue.h's arguments): T [M, r]
 * and Bt [r, N] float32, the row table (off 0, rank r, alpha 1 for each row) and its device copy.
 */
function loraArgs(addon, keep, M, N, r) {
  const table = new Int32Array(3 * M);
  table.fill(0, 0, M);
  table.fill(r, M, 2 * M);
  table.fill(new Int32Array(new Float32Array([1]).buffer)[0], 2 * M);
  return {
    t: keep(upload(addon, randomF32(M * r))), bt: keep(upload(addon, randomF32(r * N))), rows: keep(addon.deviceAlloc({ bytes: 12 * M })),
    table, rsum: r, tld: r,
  };
}

function inputSet(addon, kernel, dtype, M, N, K, loraRank = 0) {
  const dt = dtype === 'bf16' ? 'bfloat16' : 'float16';
  const handles = [];
  const keep = (h) => (handles.push(h), h);
  const x = keep(upload(addon, random16(M * K, dtype)));
  if (kernel === 'loraShrink') {
    // T = x·Aᵀ for one adapter of rank loraRank (N unused): tiles of 8 rows, A [r, K] float32.
    const r = loraRank, ntiles = Math.ceil(M / 8);
    const tiles = new Int32Array(ntiles * 10).fill(-1);
    for (let i = 0; i < ntiles; i++) {
      tiles[10 * i] = 0;
      tiles[10 * i + 1] = r;
      for (let q = 0; q < 8 && 8 * i + q < M; q++) tiles[10 * i + 2 + q] = 8 * i + q;
    }
    const a = keep(upload(addon, randomF32(r * K)));
    const tilesDev = keep(addon.deviceAlloc({ bytes: tiles.byteLength }));
    const t = keep(addon.deviceAlloc({ bytes: M * r * 4 }));
    return { handles, bytes: M * K * 2 + r * K * 4 + M * r * 4, args: { x, xDtype: dt, M, K, a, lda: K, rsum: r, tiles, tilesDev, t, tld: r } };
  }
  const lora = loraRank ? { lora: loraArgs(addon, keep, M, N, loraRank) } : {};
  const out = keep(addon.deviceAlloc({ bytes: M * N * 2 }));
  if (kernel === 'dense') {
    const w = keep(upload(addon, random16(N * K, dtype)));
    return { handles, bytes: (M * K + N * K + M * N) * 2, args: { x, w, bias: null, out, M, N, K, dtype: dt, outDtype: dt, ...lora } };
  }
  if (kernel === 'int4') {
    const group = 128, G = K / group;
    const layout = addon.int4DeviceLayout({ N, K, group, zeros: false, actOrder: false });
    const qweight = new Uint8Array(N * (K / 2));
    for (let i = 0; i < qweight.length; i++) qweight[i] = (i * 2654435761) >>> 24; // codes: any bytes
    const blob = new Uint8Array(layout.bytes);
    addon.int4ToDeviceLayout({ N, K, group, qweight, scales: new Float32Array(N * G).fill(0.01), zeros: null, perm: null, out: blob });
    const w = keep(upload(addon, blob));
    return {
      handles,
      bytes: M * K * 2 + layout.bytes + M * N * 2,
      args: { x, w, scratch: null, bias: null, out, M, N, K, group, zeros: false, actOrder: false, dtype: dt, outDtype: dt, ...lora },
    };
  }
  const np = Math.ceil(N / 64) * 64, kp = Math.ceil(K / 64) * 64;
  const values = keep(upload(addon, random16(np * (kp / 2), dtype)));
  const words = new Uint32Array((np / 16) * (kp / 32) * 16);
  for (let i = 0; i < words.length; i++) {
    let w = 0;
    for (let j = 0; j < 8; j++) w |= ORDERED_NIBBLES[Math.floor(Math.random() * 6)] << (4 * j);
    words[i] = w >>> 0;
  }
  const meta = keep(upload(addon, words));
  return {
    handles,
    bytes: M * K * 2 + np * kp + words.byteLength + M * N * 2,
    args: { x, values, meta, bias: null, out, M, N, K, np, kp, dtype: dt, outDtype: dt, ...lora },
  };
}

function measure(addon, kernel, dtype, name, M, N, K, opts, extra = {}) {
  const { loraRank = 0, ...launchExtra } = extra;
  const probe = inputSet(addon, kernel, dtype, M, N, K, loraRank);
  Object.assign(probe.args, launchExtra);
  const copies = opts.smoke ? 1 : Math.max(1, Math.min(64, Math.ceil(SPAN_BYTES / probe.bytes)));
  const sets = [probe];
  try {
    for (let i = 1; i < copies; i++) sets.push(inputSet(addon, kernel, dtype, M, N, K, loraRank));
    for (const s of sets) Object.assign(s.args, launchExtra);
    const rounds = opts.smoke ? 2 : Math.max(3, Math.ceil(60 / copies));
    addon.timeGemm({ kernel, args: sets[0].args, warmup: opts.smoke ? 1 : 5, reps: 1 });
    const ms = [];
    for (let r = 0; r < rounds; r++) for (const s of sets) ms.push(addon.timeGemm({ kernel, args: s.args, warmup: 0, reps: 1 }).ms[0]);
    ms.sort((a, b) => a - b);
    const median = percentile(ms, 0.5);
    const flops = kernel === 'loraShrink' ? 2 * M * loraRank * K : 2 * M * N * K;
    const label = kernel === 'loraShrink' ? `lora-shrink r${loraRank}` : `${{ dense: 'dense', sparse24: '2:4', int4: 'int4-g128' }[kernel]}${loraRank ? `+lora${loraRank}` : ''}`;
    return {
      name: `${label}${extra.splits ? ` splits ${extra.splits}` : ''}${extra.blockM ? ` blockM ${extra.blockM}` : ''} ${name}`, kernel, dtype, M, N, K, ...extra,
      median_ms: median, p10_ms: percentile(ms, 0.1), p90_ms: percentile(ms, 0.9), samples: ms.length, copies,
      tflops: flops / (median * 1e-3) / 1e12, gbps: probe.bytes / (median * 1e-3) / 1e9,
    };
  } finally {
    for (const s of sets) for (const h of s.handles) addon.deviceFree(h);
  }
}

/**
 * Whether an async call makes the JS thread wait for the device: `kernels` dense GEMMs queued with
 * linearDenseAsync, then copyToHostAsync of the last output, each call's return timed on the host
 * (process.hrtime), and the time until all of them have settled. Under CUDA a copy into pageable
 * memory returns only once it is done; the addon stages async copies in page-locked memory, so
 * copy_call_ms should be a small fraction of total_ms (`waited` says whether it was not).
 */
async function asyncReturn(addon, simulated) {
  const [M, N, K, kernels] = simulated ? [64, 64, 64, 2] : [8192, 8192, 8192, 8];
  const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
  let set = { handles: [] };
  try {
    // (Inside the try: after a kernel fault the context is unusable, and the cases' results must still be written.)
    set = inputSet(addon, 'dense', 'fp16', M, N, K);
    await addon.linearDenseAsync(set.args); // warm-up: the kernel's first launch
    const t0 = process.hrtime.bigint();
    const pending = [];
    let queueMax = 0;
    for (let i = 0; i < kernels; i++) {
      const t = process.hrtime.bigint();
      pending.push(addon.linearDenseAsync(set.args));
      queueMax = Math.max(queueMax, ms(t));
    }
    const tc = process.hrtime.bigint();
    pending.push(addon.copyToHostAsync({ handle: set.args.out, dst: new Uint16Array(M * N) }));
    const copyCall = ms(tc);
    await Promise.all(pending);
    const total = ms(t0);
    const r = { kernels, M, N, K, queue_call_max_ms: queueMax, copy_call_ms: copyCall, total_ms: total, waited: copyCall > 0.5 * total };
    if (simulated) for (const k of ['queue_call_max_ms', 'copy_call_ms', 'total_ms', 'waited']) delete r[k];
    return r;
  } catch (e) {
    return { kernels, M, N, K, error: `${e.code || e.name}: ${e.message}` };
  } finally {
    for (const h of set.handles) {
      try {
        addon.deviceFree(h);
      } catch {
        // a faulted context: nothing more to free
      }
    }
  }
}

/**
 * Per LoRA case: (shrink + GEMM with its fused term) / the same GEMM without LoRA (the row with no
 * splits or blockM given), from the medians of `results`.
 */
function loraOverhead(results) {
  const find = (pred) => results.find((r) => r.median_ms !== undefined && pred(r));
  const rows = [];
  for (const fused of results) {
    if (!fused.loraRank || fused.kernel === 'loraShrink' || fused.median_ms === undefined) continue;
    const same = (r) => r.M === fused.M && r.N === fused.N && r.K === fused.K && r.dtype === fused.dtype;
    const base = find((r) => r.kernel === fused.kernel && same(r) && !r.loraRank && !r.splits && !r.blockM);
    const shrink = find((r) => r.kernel === 'loraShrink' && same(r) && r.loraRank === fused.loraRank);
    if (!base || !shrink) continue;
    rows.push({
      name: fused.name, M: fused.M, N: fused.N, K: fused.K, rank: fused.loraRank, base_ms: base.median_ms, fused_ms: fused.median_ms,
      shrink_ms: shrink.median_ms, ratio: (fused.median_ms + shrink.median_ms) / base.median_ms,
    });
  }
  return rows;
}

/** CUDA errors after which the process's context is unusable (every later call fails). */
const STICKY = /cudaErrorIllegal|cudaErrorLaunchFailure|cudaErrorMisalignedAddress|cudaErrorAssert|cudaErrorHardwareStackError|cudaErrorLaunchTimeout/;

/** Runs this script again from case `from` (same arguments) and returns its JSON. */
function continueInChild(from) {
  const { spawnSync } = require('child_process'); // eslint-disable-line global-require
  const args = process.argv.slice(1).filter((a, i, all) => a !== '--from' && all[i - 1] !== '--from');
  const r = spawnSync(process.execPath, [...args, '--from', String(from)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { results: [{ name: `cases from ${from}`, error: `the continuing process gave no JSON (status ${r.status}, signal ${r.signal})` }] };
  }
}

async function main() {
  const file = arg('--addon');
  const smoke = process.argv.includes('--smoke');
  const out = { status: 'not built yet', kernels: 'dense tensor-core GEMM (gemm_dense.cuh), 2:4 sparse GEMM (gemm_sparse24.cuh), INT4 W4A16 GEMM (gemm_int4.cuh), each with a fused LoRA term, and the LoRA shrink (lora_shrink.cuh)', results: [] };
  if (!file || file === 'none') {
    out.reason = 'no --addon given';
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  let addon;
  try {
    // eslint-disable-next-line global-require, import/no-dynamic-require
    addon = require(path.resolve(file));
  } catch (e) {
    out.reason = `the CUDA addon does not load: ${e.message.split('\n')[0]}`;
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  if (typeof addon.timeGemm !== 'function') {
    out.reason = 'the addon has no timeGemm export (an older build)';
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  let devices;
  try {
    devices = addon.devices();
  } catch (e) {
    out.status = 'no device';
    out.reason = e.message;
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  const simulated = devices.length > 0 && devices[0].simulated === true;
  out.device = devices[0] || null;
  const cases = [];
  if (smoke || simulated) {
    cases.push(['dense', 'fp16', 'smoke', 3, 70, 64], ['dense', 'bf16', 'smoke', 17, 64, 40], ['sparse24', 'fp16', 'smoke', 5, 70, 72],
      ['int4', 'fp16', 'smoke', 5, 70, 256]);
  } else {
    for (const dtype of ['fp16', 'bf16']) {
      cases.push(['dense', dtype, 'square 8192', 8192, 8192, 8192]);
      for (const [N, K] of LLM_SHAPES) for (const M of LLM_MS) cases.push(['dense', dtype, `llm ${N}x${K}`, M, N, K]);
    }
    for (const [N, K] of LLM_SHAPES) for (const M of LLM_MS) cases.push(['sparse24', 'fp16', `llm ${N}x${K}`, M, N, K]);
    for (const M of LLM_MS) cases.push(['int4', 'fp16', 'square 8192', M, 8192, 8192]);
    for (const [N, K] of LLM_SHAPES) for (const M of LLM_MS) cases.push(['int4', 'fp16', `llm ${N}x${K}`, M, N, K]);
    // Split-K off, beside the automatic choice above: what int4_auto_splits,
    // sparse24_auto_splits and dense_auto_splits buy at small M.
    for (const [N, K] of LLM_SHAPES) for (const M of [1, 16]) cases.push(['int4', 'fp16', `llm ${N}x${K}`, M, N, K, { splits: 1 }]);
    for (const [N, K] of LLM_SHAPES) for (const M of [1, 16]) cases.push(['sparse24', 'fp16', `llm ${N}x${K}`, M, N, K, { splits: 1 }]);
    for (const [N, K] of LLM_SHAPES) for (const M of [1, 16]) cases.push(['dense', 'fp16', `llm ${N}x${K}`, M, N, K, { splits: 1 }]);
    // The general 64-row tiles beside the decode tiles the automatic choice runs at M <= 16.
    for (const [N, K] of LLM_SHAPES) for (const M of [1, 16]) cases.push(['sparse24', 'fp16', `llm ${N}x${K}`, M, N, K, { blockM: 64 }]);
    for (const [N, K] of LLM_SHAPES) for (const M of [1, 16]) cases.push(['dense', 'fp16', `llm ${N}x${K}`, M, N, K, { blockM: 64 }]);
    // The dense wide tile (128 rows; blockM 128 only) beside the 64-row one the automatic choice runs.
    cases.push(['dense', 'fp16', 'square 8192', 8192, 8192, 8192, { blockM: 128 }]);
    for (const [N, K] of LLM_SHAPES) for (const M of [512, 4096]) cases.push(['dense', 'fp16', `llm ${N}x${K}`, M, N, K, { blockM: 128 }]);
    // INT4's decode tile (16 rows) beside the wide tile (64 rows) the automatic choice runs above M = 16.
    for (const [N, K] of LLM_SHAPES) cases.push(['int4', 'fp16', `llm ${N}x${K}`, 128, N, K, { blockM: 16 }]);
    // LoRA rank 16: the fused GEMMs and the shrink (lora_overhead below).
    for (const [N, K] of LLM_SHAPES)
      for (const M of LORA_MS) {
        for (const kernel of ['dense', 'sparse24', 'int4']) cases.push([kernel, 'fp16', `llm ${N}x${K}`, M, N, K, { loraRank: LORA_RANK }]);
        cases.push(['loraShrink', 'fp16', `llm ${N}x${K}`, M, N, K, { loraRank: LORA_RANK }]);
      }
  }
  if (smoke || simulated) {
    cases.push(['int4', 'fp16', 'smoke', 1, 64, 1024, { splits: 4 }], ['sparse24', 'fp16', 'smoke', 1, 64, 1024, { splits: 4 }]);
    cases.push(['sparse24', 'fp16', 'smoke', 1, 64, 1024, { blockM: 64 }], ['dense', 'fp16', 'smoke', 1, 64, 1024, { blockM: 64 }]);
    cases.push(['int4', 'fp16', 'smoke', 20, 64, 1024, { blockM: 16 }], ['dense', 'fp16', 'smoke', 130, 64, 64, { blockM: 128 }]);
    for (const kernel of ['dense', 'sparse24', 'int4']) cases.push([kernel, 'fp16', 'smoke', 5, 70, 256, { loraRank: LORA_RANK }]);
    cases.push(['loraShrink', 'fp16', 'smoke', 5, 70, 256, { loraRank: LORA_RANK }]);
  }
  const deadline = Number(arg('--deadline')) || 0;
  const from = Math.max(0, Number(arg('--from')) || 0);
  let handedOver = false;
  for (let i = from; i < cases.length; i++) {
    if (deadline && Date.now() / 1000 > deadline) {
      out.skipped_for_time = cases.length - i;
      break;
    }
    const [kernel, dtype, name, M, N, K, extra] = cases[i];
    try {
      const r = measure(addon, kernel, dtype, name, M, N, K, { smoke: smoke || simulated }, extra);
      // The simulator's times are the CPU's: the plumbing ran (events, launches, copies), no figure is kept.
      if (simulated) for (const k of ['median_ms', 'p10_ms', 'p90_ms', 'tflops', 'gbps']) delete r[k];
      out.results.push(r);
    } catch (e) {
      out.results.push({ name: `${kernel} ${name}`, kernel, dtype, M, N, K, error: `${e.code || e.name}: ${e.message}` });
      if (STICKY.test(e.message)) {
        // A kernel fault leaves this process's CUDA context unusable (the H200's first run lost
        // every later case so): the remaining cases go on in a fresh process.
        const rest = continueInChild(i + 1);
        out.results.push(...rest.results);
        if (rest.skipped_for_time) out.skipped_for_time = rest.skipped_for_time;
        out.async = rest.async;
        out.continued_after_fault = [`${kernel} ${name} (case ${i})`, ...(rest.continued_after_fault || [])];
        handedOver = true;
        break;
      }
    }
  }
  if (!simulated) out.lora_overhead = loraOverhead(out.results);
  if (!handedOver) out.async = await asyncReturn(addon, smoke || simulated);
  out.status = simulated ? 'simulated: plumbing checked, nothing timed as a GPU figure' : 'measured';
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    process.stdout.write(JSON.stringify({ status: 'not built yet', reason: `bench-ours.js failed: ${e.message}`, results: [] }, null, 2) + '\n');
  });
}

module.exports = { arg, loraOverhead, measure };
