#!/usr/bin/env node
// Which of our kernels fault on a real GPU: each case of bench-ours.js's kinds (dense, 2:4, INT4,
// the LoRA shrink; small and LLM shapes; split-K, tiles, fused LoRA) launched once, in a child
// process of its own (a faulting kernel leaves its CUDA context unusable), with
// CUDA_LAUNCH_BLOCKING=1 so the error names the launch. One line per case: ok, or the error.
//
//   node scripts/gpu-check/isolate.js --addon build-cuda/Release/compressed_gemm_cuda.node
'use strict';
const path = require('path');
const { spawnSync } = require('child_process');
const { arg, measure } = require('./bench-ours.js');

const CASES = [];
for (const [kernel, dtypes] of [['dense', ['fp16', 'bf16']], ['sparse24', ['fp16', 'bf16']], ['int4', ['fp16', 'bf16']]]) {
  for (const dtype of dtypes) {
    for (const [M, N, K] of [[5, 70, 256], [1, 4096, 4096], [16, 4096, 4096], [128, 4096, 4096], [130, 64, 1024]]) CASES.push([kernel, dtype, M, N, K, {}]);
    CASES.push([kernel, dtype, 1, 4096, 4096, { splits: 1 }]);
    CASES.push([kernel, dtype, 16, 4096, 4096, { loraRank: 16 }]);
    CASES.push([kernel, dtype, 128, 4096, 4096, { loraRank: 16 }]);
  }
}
CASES.push(['int4', 'fp16', 20, 64, 1024, { blockM: 16 }], ['int4', 'fp16', 1, 64, 1024, { splits: 4 }]);
CASES.push(['dense', 'fp16', 1, 64, 1024, { blockM: 64 }], ['dense', 'fp16', 130, 64, 64, { blockM: 128 }], ['sparse24', 'fp16', 1, 64, 1024, { blockM: 64 }]);
CASES.push(['loraShrink', 'fp16', 16, 4096, 4096, { loraRank: 16 }], ['loraShrink', 'fp16', 5, 70, 256, { loraRank: 16 }]);

const addonPath = path.resolve(arg('--addon') || 'build-cuda/Release/compressed_gemm_cuda.node');
const child = arg('--child');
if (child !== undefined) {
  const [kernel, dtype, M, N, K, extra] = CASES[Number(child)];
  const addon = require(addonPath);
  try {
    measure(addon, kernel, dtype, 'isolate', M, N, K, { smoke: true }, extra);
    console.log('ok');
  } catch (e) {
    console.log(`${e.code || e.name}: ${e.message.split('\n')[0]}`);
    process.exitCode = 1;
  }
} else {
  let failed = 0;
  for (let i = 0; i < CASES.length; i++) {
    const r = spawnSync(process.execPath, [__filename, '--addon', addonPath, '--child', String(i)], {
      env: { ...process.env, CUDA_LAUNCH_BLOCKING: '1' }, encoding: 'utf8', timeout: 60000,
    });
    const line = (r.stdout || '').trim().split('\n').pop() || `no output (status ${r.status}, signal ${r.signal}): ${(r.stderr || '').replace(/\s+/g, ' ').slice(-300)}`;
    if (line !== 'ok') failed++;
    console.log(`${String(i).padStart(2)} ${JSON.stringify(CASES[i])}: ${line}`);
  }
  console.log(`# ${CASES.length - failed} ok, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
