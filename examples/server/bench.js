#!/usr/bin/env node
// Throughput of the server with batching on and off, the same load for the same time:
//
//   node examples/server/bench.js [--model FILE] [--seconds 5] [--connections 16] [--threads N]
//
// Each mode gets a fresh server process (the model file is written first if missing), a 1 s
// warm-up, then `connections` keep-alive clients sending single-row requests (a mix of no adapter
// and the checkpoint's three adapters) back to back. Prints a Markdown table.
'use strict';
const fs = require('fs');
const path = require('path');
const { makeModel, DEFAULT_OUT } = require('./make-model');
const { startServer, runLoad, send } = require('./load');

function parseArgs(argv) {
  const o = { model: DEFAULT_OUT, seconds: 5, connections: 16, threads: 0 };
  const names = { '--model': 'model', '--seconds': 'seconds', '--connections': 'connections', '--threads': 'threads' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new RangeError(`unknown or incomplete option ${argv[i]} (known: ${Object.keys(names).join(', ')})`);
    o[key] = key === 'model' ? path.resolve(argv[i + 1]) : Number(argv[i + 1]);
  }
  return o;
}

async function getJson(url, p, method = 'GET') {
  const r = await send(undefined, url, { method, path: p });
  if (r.error || r.status !== 200) throw new Error(`${method} ${p}: ${r.error || r.status} ${r.body || ''}`);
  return JSON.parse(r.body);
}

async function measure(mode, o, bodies) {
  const env = { ...process.env };
  if (o.threads) env.COMPRESSED_GEMM_THREADS = String(o.threads);
  const s = await startServer(['--model', o.model, ...(mode === 'unbatched' ? ['--no-batch'] : [])], { env });
  try {
    const next = (i) => ({ body: bodies[i % bodies.length] });
    await runLoad({ url: s.url, connections: o.connections, durationMs: 1000, next });
    await getJson(s.url, '/stats/reset', 'POST');
    const load = await runLoad({ url: s.url, connections: o.connections, durationMs: o.seconds * 1000, next });
    const stats = await getJson(s.url, '/stats');
    const health = await getJson(s.url, '/health');
    return { mode, load, stats, health };
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.model)) makeModel({ out: o.model });
  const probe = await startServer(['--model', o.model]);
  const { model } = await getJson(probe.url, '/health');
  probe.child.kill('SIGTERM');
  await probe.exited;
  const adapters = [null, ...model.adapters.map((a) => a.name)];
  const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({
    x: Array.from({ length: model.hidden }, () => Math.fround(Math.random() * 2 - 1)),
    ...(adapters[i % adapters.length] ? { adapter: adapters[i % adapters.length] } : {}),
  }));
  const results = [];
  for (const mode of ['batched', 'unbatched']) results.push(await measure(mode, o, bodies));
  const b = results[0].health.backend;
  console.log(`MLP block H=${model.hidden} I=${model.intermediate} (gate/up INT4 GPTQ g128, down 2:4 float16, 3 LoRA adapters), ` +
    `backend ${b.kind}${b.kind === 'cpu' ? `/${b.isa} x${b.threads} threads` : ''}, ${o.connections} connections, ${o.seconds} s per mode\n`);
  console.log('| mode      | requests/s | latency p50 ms | p99 ms | rows per batch (mean / max) | linear calls per request | event-loop delay p99 / max ms |');
  console.log('|-----------|-----------:|---------------:|-------:|----------------------------:|-------------------------:|------------------------------:|');
  for (const { mode, load, stats } of results) {
    const d = stats.eventLoopDelayMs;
    console.log(`| ${mode.padEnd(9)} | ${load.perSecond.toFixed(0).padStart(10)} | ${load.latencyMs.p50.toFixed(1).padStart(14)} | ${load.latencyMs.p99.toFixed(1).padStart(6)} | ` +
      `${`${stats.batches.meanRows.toFixed(1)} / ${stats.batches.maxRows}`.padStart(27)} | ${(stats.linearCalls / stats.batches.requests).toFixed(2).padStart(24)} | ` +
      `${`${d.p99.toFixed(1)} / ${d.max.toFixed(1)}`.padStart(29)} |`);
    if (load.networkErrors || Object.keys(load.byStatus).some((s) => s !== '200')) {
      console.log(`  (${mode}: ${load.networkErrors} network errors, statuses ${JSON.stringify(load.byStatus)})`);
    }
  }
  console.log(`\nbatched / unbatched throughput: ${(results[0].load.perSecond / results[1].load.perSecond).toFixed(2)}x`);
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e.message}`);
  process.exitCode = 1;
});
