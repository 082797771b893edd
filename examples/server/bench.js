#!/usr/bin/env node
// Throughput of the server with batching on and off, the same load for the same time:
//
//   node examples/server/bench.js [--model FILE] [--seconds 3] [--rounds 3] [--connections 16] [--threads N]
//
// Both servers run side by side (the idle one costs nothing) and take turns: batched, unbatched,
// batched, ... `rounds` times each, every turn after a 0.5 s warm-up, so that a shared machine's
// load drifts over both alike. `connections` keep-alive clients send single-row requests (no
// adapter and the checkpoint's three adapters in turn) back to back. Prints a Markdown table:
// each mode's totals over its turns, and the median of the per-round throughput ratios.
'use strict';
const fs = require('fs');
const path = require('path');
const { makeModel, DEFAULT_OUT } = require('./make-model');
const { startServer, runLoad, send } = require('./load');

function parseArgs(argv) {
  const o = { model: DEFAULT_OUT, seconds: 3, rounds: 3, connections: 16, threads: 0 };
  const names = { '--model': 'model', '--seconds': 'seconds', '--rounds': 'rounds', '--connections': 'connections', '--threads': 'threads' };
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

/** One turn: warm-up, reset, load; the load's summary and the server's /stats. */
async function turn(server, o, next) {
  await runLoad({ url: server.url, connections: o.connections, durationMs: 500, next });
  await getJson(server.url, '/stats/reset', 'POST');
  const load = await runLoad({ url: server.url, connections: o.connections, durationMs: o.seconds * 1000, next });
  return { load, stats: await getJson(server.url, '/stats') };
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.model)) makeModel({ out: o.model });
  const env = { ...process.env };
  if (o.threads) env.COMPRESSED_GEMM_THREADS = String(o.threads);
  const modes = { batched: [], unbatched: ['--no-batch'] };
  const servers = {};
  try {
    for (const [mode, args] of Object.entries(modes)) servers[mode] = await startServer(['--model', o.model, ...args], { env });
    const { model, backend: b } = await getJson(servers.batched.url, '/health');
    const adapters = [null, ...model.adapters.map((a) => a.name)];
    const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({
      x: Array.from({ length: model.hidden }, () => Math.fround(Math.random() * 2 - 1)),
      ...(adapters[i % adapters.length] ? { adapter: adapters[i % adapters.length] } : {}),
    }));
    const next = (i) => ({ body: bodies[i % bodies.length] });
    const turns = { batched: [], unbatched: [] };
    for (let r = 0; r < o.rounds; r++) for (const mode of Object.keys(modes)) turns[mode].push(await turn(servers[mode], o, next));
    console.log(`MLP block H=${model.hidden} I=${model.intermediate} (gate/up INT4 GPTQ g128, down 2:4 float16, 3 LoRA adapters), ` +
      `backend ${b.kind}${b.kind === 'cpu' ? `/${b.isa} x${b.threads} threads` : ''}, ${o.connections} connections, ${o.rounds} turns of ${o.seconds} s per mode\n`);
    console.log('| mode      | requests/s | latency p50 ms | p99 ms | rows per batch (mean / max) | linear calls per request | event-loop delay p99 / max ms |');
    console.log('|-----------|-----------:|---------------:|-------:|----------------------------:|-------------------------:|------------------------------:|');
    for (const [mode, ts] of Object.entries(turns)) {
      const sum = (f) => ts.reduce((a, t) => a + f(t), 0);
      const perSecond = (sum((t) => t.load.answered) / sum((t) => t.load.elapsedMs)) * 1000;
      const rows = sum((t) => t.stats.batches.rows);
      const batches = sum((t) => t.stats.batches.count);
      console.log(`| ${mode.padEnd(9)} | ${perSecond.toFixed(0).padStart(10)} | ${median(ts.map((t) => t.load.latencyMs.p50)).toFixed(1).padStart(14)} | ` +
        `${median(ts.map((t) => t.load.latencyMs.p99)).toFixed(1).padStart(6)} | ` +
        `${`${(rows / batches).toFixed(1)} / ${Math.max(...ts.map((t) => t.stats.batches.maxRows))}`.padStart(27)} | ` +
        `${(sum((t) => t.stats.linearCalls) / sum((t) => t.stats.batches.requests)).toFixed(2).padStart(24)} | ` +
        `${`${median(ts.map((t) => t.stats.eventLoopDelayMs.p99)).toFixed(1)} / ${Math.max(...ts.map((t) => t.stats.eventLoopDelayMs.max)).toFixed(1)}`.padStart(29)} |`);
      const errors = sum((t) => t.load.networkErrors);
      const other = ts.flatMap((t) => Object.keys(t.load.byStatus)).filter((st) => st !== '200');
      if (errors || other.length) console.log(`  (${mode}: ${errors} network errors, statuses other than 200: ${[...new Set(other)].join(', ')})`);
    }
    const ratios = turns.batched.map((t, r) => t.load.perSecond / turns.unbatched[r].load.perSecond);
    console.log(`\nbatched / unbatched throughput per round: ${ratios.map((x) => `${x.toFixed(2)}x`).join(', ')} (median ${median(ratios).toFixed(2)}x)`);
    console.log('(latency and event-loop p99: the median over the turns; max: the largest)');
  } finally {
    for (const s of Object.values(servers)) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e.message}`);
  process.exitCode = 1;
});
