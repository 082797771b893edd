// A small load generator (node:http, keep-alive connections, no dependencies) and a helper that
// starts the server in a child process. bench.js and test/examples/server.test.ts use both.
'use strict';
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const { performance } = require('perf_hooks');

const SERVER = path.join(__dirname, 'server.js');

/**
 * Starts `node server.js ...args` and resolves once it listens: { child, url, port, output(),
 * exited } (exited: a promise of { code, signal }). Rejects when the server exits or has not
 * said where it listens within timeoutMs.
 */
function startServer(args, { env = process.env, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const output = () => out;
    const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], port: Number(m[2]), output, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d; });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (code ${code}, signal ${signal}) before listening:\n${out}`));
    });
  });
}

/** One HTTP request; resolves to { status, body } or { error } (never rejects). */
function send(agent, url, { method = 'POST', path: p = '/infer', body = null, headers = {} }) {
  return new Promise((resolve) => {
    const u = new URL(p, url);
    const h = { ...headers };
    if (body !== null) {
      h['content-type'] = h['content-type'] || 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ agent, hostname: u.hostname, port: u.port, path: u.pathname, method, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ error: e.code || e.message }));
    });
    req.on('error', (e) => resolve({ error: e.code || e.message }));
    req.end(body === null ? undefined : body);
  });
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0;
}

/**
 * `connections` clients, each sending its next request as soon as its previous one is answered,
 * until `durationMs` has passed (requests in flight then are still awaited). next(i) gives request
 * i ({ method, path, body, headers }); onResponse(request, result) sees every answer. Returns what
 * was sent and answered: { sent, answered, networkErrors, byStatus, elapsedMs, perSecond, latencyMs }.
 */
async function runLoad({ url, connections = 16, durationMs = 3000, next, onResponse = () => {} }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  const byStatus = {};
  let sent = 0;
  let networkErrors = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  async function client() {
    while (performance.now() < deadline) {
      const request = next(sent++);
      const t = performance.now();
      const result = await send(agent, url, request);
      latencies.push(performance.now() - t);
      if (result.error) networkErrors++;
      else byStatus[result.status] = (byStatus[result.status] || 0) + 1;
      onResponse(request, result);
    }
  }
  await Promise.all(Array.from({ length: connections }, client));
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const answered = latencies.length - networkErrors;
  return {
    sent, answered, networkErrors, byStatus, elapsedMs,
    perSecond: (answered / elapsedMs) * 1000,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] || 0 },
  };
}

module.exports = { startServer, runLoad, send };
