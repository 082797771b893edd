#!/usr/bin/env node
// An inference server for one compressed MLP block (model.js), on node:http.
//
//   POST /infer          { "x": number[H] | number[][H], "adapter"?: string }  ->  { "y": same shape }
//   GET  /health         backend (cg.backend(): kind, ISA, the routes this model uses), device memory, model
//   GET  /stats          batches, responses by status, the event loop's delay while kernels run
//   POST /stats/reset    zeroes /stats
//
// Concurrent requests are batched (batcher.js): one cg.linearMultiLoraAsync call per projection
// for the whole batch, each row with its request's adapter. Every request is checked before it
// joins a batch, so a bad one gets its own 4xx (JSON with a `code`) and never fails its
// neighbours. SIGTERM / SIGINT / close(): stop accepting, answer every request already received,
// then exit.
//
//   node examples/server/make-model.js && node examples/server/server.js [--port 8080] [--no-batch] ...
'use strict';
const http = require('http');
const path = require('path');
const { monitorEventLoopDelay } = require('perf_hooks');
const cg = require('./compressed-gemm');
const { loadModel } = require('./model');
const { MicroBatcher } = require('./batcher');

/**
 * The server's own error codes and their HTTP status. Checks that mean what a library check
 * means reuse the library's code (ERR_SHAPE_MISMATCH, ERR_INVALID_ARG); an error the library
 * raises keeps its code (libraryError).
 */
const SERVER_ERRORS = {
  ERR_BAD_JSON: 400,
  ERR_INVALID_ARG: 400,
  ERR_SHAPE_MISMATCH: 400,
  ERR_UNKNOWN_ADAPTER: 400,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_BODY_TOO_LARGE: 413,
  ERR_INTERNAL: 500,
  ERR_SHUTTING_DOWN: 503,
};

class HttpError extends Error {
  constructor(code, message, { extra, status = SERVER_ERRORS[code], cause } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.cause = cause;
  }
}

/**
 * An error from the library: its bad-argument errors (TypeError / RangeError with a code) are the
 * client's doing (400); running out of memory or a busy weight may pass (503); the rest is 500.
 * The code travels to the client either way.
 */
function libraryError(e) {
  if (e instanceof HttpError) return e;
  const code = e && typeof e.code === 'string' && Object.prototype.hasOwnProperty.call(cg.ErrorCodes, e.code) ? e.code : null;
  if (code === null) return new HttpError('ERR_INTERNAL', 'internal error', { cause: e });
  const status = e instanceof TypeError || e instanceof RangeError ? 400 : ['ERR_OUT_OF_MEMORY', 'ERR_CUDA_OOM', 'ERR_BUSY'].includes(code) ? 503 : 500;
  return new HttpError(code, e.message, { status, cause: e });
}

/**
 * { x, adapter? } -> the rows as float32 [rows, H], or an HttpError saying what is wrong. x is one
 * row (number[H]) or several (number[][H]); every element a number that is finite in float32
 * (JSON's 1e999 parses as Infinity). Values are rounded to float32, as the library does.
 */
function parseInferRequest(body, H, maxRows, adapterIndex) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError('ERR_INVALID_ARG', 'the body must be a JSON object { x, adapter? }');
  for (const key of Object.keys(body)) {
    if (key !== 'x' && key !== 'adapter') throw new HttpError('ERR_INVALID_ARG', `unknown field '${key}' (known: x, adapter)`);
  }
  const { x, adapter } = body;
  let adapterIdx = -1;
  if (adapter !== undefined && adapter !== null) {
    if (typeof adapter !== 'string' || !adapterIndex.has(adapter)) {
      throw new HttpError('ERR_UNKNOWN_ADAPTER', `unknown adapter ${JSON.stringify(adapter)}`, { extra: { adapters: [...adapterIndex.keys()] } });
    }
    adapterIdx = adapterIndex.get(adapter);
  }
  if (!Array.isArray(x) || x.length === 0) throw new HttpError('ERR_INVALID_ARG', `x must be an array of ${H} numbers or an array of such rows`);
  const batched = Array.isArray(x[0]);
  const rows = batched ? x : [x];
  if (rows.length > maxRows) throw new HttpError('ERR_INVALID_ARG', `x has ${rows.length} rows; at most ${maxRows} per request`);
  const out = new Float32Array(rows.length * H);
  for (let m = 0; m < rows.length; m++) {
    const row = rows[m];
    const where = batched ? `x[${m}]` : 'x';
    if (!Array.isArray(row)) throw new HttpError('ERR_INVALID_ARG', `${where} is not an array`);
    if (row.length !== H) throw new HttpError('ERR_SHAPE_MISMATCH', `${where} has ${row.length} elements; the model's hidden size is ${H}`);
    for (let k = 0; k < H; k++) {
      const v = row[k];
      if (typeof v !== 'number') throw new HttpError('ERR_INVALID_ARG', `${where}[${k}] is not a number`);
      if (!Number.isFinite(Math.fround(v))) throw new HttpError('ERR_INVALID_ARG', `${where}[${k}] = ${v} is not finite in float32`);
      out[m * H + k] = v;
    }
  }
  return { x: out, rows: rows.length, adapter: adapterIdx, batched };
}

/** Reads a request body up to `limit` bytes; a longer one is an ERR_BODY_TOO_LARGE (its rest is drained, not kept). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    const tooLarge = (n) => new HttpError('ERR_BODY_TOO_LARGE', `the body has ${n} bytes; at most ${limit}`);
    if (declared > limit) {
      req.resume();
      reject(tooLarge(declared));
      return;
    }
    const chunks = [];
    let size = 0;
    let failed = false;
    req.on('data', (c) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(`more than ${limit}`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

/** The event loop's delay histogram (ns) as milliseconds. */
function delayStats(h) {
  const ms = (ns) => Math.round(ns / 1e3) / 1e3;
  return { samples: h.count, mean: ms(h.mean || 0), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

/**
 * A server over one model. Options: model (path), host, port, batch (boolean), maxBatch (rows),
 * batchWindowMs, maxRowsPerRequest, maxBodyBytes, shutdownTimeoutMs.
 */
function createServer(options = {}) {
  const o = {
    model: path.join(__dirname, 'model.safetensors'), host: '127.0.0.1', port: 8080, batch: true, maxBatch: 32, batchWindowMs: 2,
    maxRowsPerRequest: 16, maxBodyBytes: 0, shutdownTimeoutMs: 10000, ...options,
  };
  const model = loadModel(o.model);
  const H = model.hidden;
  // A number takes at most ~24 characters in JSON (-1.2345678901234567e-30,); twice that is slack.
  const maxBodyBytes = o.maxBodyBytes || o.maxRowsPerRequest * H * 48 + 4096;
  const batcher = new MicroBatcher({
    run: (x, M, rowAdapter) => model.forward(x, M, rowAdapter),
    width: H, outWidth: H, maxRows: o.maxBatch, windowMs: o.batchWindowMs, enabled: o.batch,
  });
  // Timer lateness sampled every millisecond: what every request on this process waits on top of
  // its own work. The kernels run off the event loop (linearMultiLoraAsync), so it stays small.
  const eventLoopDelay = monitorEventLoopDelay({ resolution: 1 });
  eventLoopDelay.enable();
  const counts = { received: 0, inFlight: 0, byStatus: {}, byCode: {} };
  let closing = null;

  /** Answers with JSON; counted in /stats unless it answers /health or /stats themselves. */
  function send(res, status, obj, counted = true) {
    if (counted) {
      counts.byStatus[status] = (counts.byStatus[status] || 0) + 1;
      if (obj.code) counts.byCode[obj.code] = (counts.byCode[obj.code] || 0) + 1;
    }
    const body = JSON.stringify(obj);
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    // While shutting down, connections close after their response, so that none stays open.
    if (closing) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  function sendError(res, err) {
    const e = libraryError(err);
    if (e.status >= 500) console.error(`${e.code}: ${e.cause ? (e.cause.stack || e.cause) : e.message}`);
    send(res, e.status, { error: e.message, code: e.code, ...(e.extra || {}) });
  }

  function stats() {
    const b = batcher.stats;
    return {
      requests: { received: counts.received, inFlight: counts.inFlight, queued: batcher.pending, byStatus: counts.byStatus, byCode: counts.byCode },
      batching: { enabled: o.batch, maxBatch: o.maxBatch, windowMs: o.batchWindowMs },
      batches: {
        count: b.batches, rows: b.rows, requests: b.requests, meanRows: b.batches ? b.rows / b.batches : 0, maxRows: b.maxRows,
        rowsHistogram: b.rowsHistogram, failed: b.failedBatches, busyMs: Math.round(b.busyMs),
      },
      linearCalls: model.linearCalls,
      eventLoopDelayMs: delayStats(eventLoopDelay),
    };
  }

  function health() {
    const b = cg.backend();
    const layers = model.describe().layers;
    // A route row covers a format and, for dense and 2:4, the weight dtypes it lists.
    const usedBy = (r) => layers.some((l) => l.format === r.format && (!r.dtypes || r.dtypes.includes(l.dtype)));
    return {
      status: closing ? 'shutting-down' : 'ok',
      backend: {
        kind: b.kind, device: b.device, isa: b.cpu.isa, threads: b.cpu.threads, cuda: b.cuda, notes: b.notes,
        // The routes this model's calls take: multi-LoRA linear on each weight format it holds.
        routes: b.routes
          .filter((r) => r.op === 'linear+lora' && r.activations === 'native' && usedBy(r))
          .map((r) => ({ op: r.op, format: r.format, runsOn: r.runsOn, note: r.note })),
      },
      memory: cg.cuda.memory(),
      model: model.describe(),
    };
  }

  async function infer(req, res) {
    let body;
    try {
      body = JSON.parse((await readBody(req, maxBodyBytes)).toString('utf8'));
    } catch (e) {
      throw e instanceof HttpError ? e : new HttpError('ERR_BAD_JSON', `the body is not JSON: ${e.message}`);
    }
    const r = parseInferRequest(body, H, o.maxRowsPerRequest, model.adapterIndex);
    const y = await batcher.submit(r.x, r.rows, r.adapter);
    const rows = [];
    for (let m = 0; m < r.rows; m++) rows.push(Array.from(y.subarray(m * H, (m + 1) * H)));
    send(res, 200, { y: r.batched ? rows : rows[0] });
  }

  async function route(req, res) {
    const url = req.url.split('?')[0];
    const methods = { '/infer': 'POST', '/health': 'GET', '/stats': 'GET', '/stats/reset': 'POST' };
    if (!(url in methods)) throw new HttpError('ERR_NOT_FOUND', `no route ${url} (routes: ${Object.keys(methods).join(', ')})`);
    if (req.method !== methods[url]) {
      res.setHeader('allow', methods[url]);
      throw new HttpError('ERR_METHOD_NOT_ALLOWED', `${url} takes ${methods[url]}, not ${req.method}`);
    }
    if (url === '/infer') return infer(req, res);
    req.resume();
    if (url === '/health') return send(res, 200, health(), false);
    if (url === '/stats') return send(res, 200, stats(), false);
    batcher.resetStats();
    model.linearCalls = 0;
    eventLoopDelay.reset();
    for (const k of ['byStatus', 'byCode']) counts[k] = {};
    counts.received = 0;
    return send(res, 200, { reset: true }, false);
  }

  const server = http.createServer((req, res) => {
    if (closing) {
      // A request on a connection that was open when shutdown began: not accepted.
      req.resume();
      sendError(res, new HttpError('ERR_SHUTTING_DOWN', 'the server is shutting down'));
      return;
    }
    counts.received++;
    counts.inFlight++;
    res.on('close', () => { counts.inFlight--; });
    route(req, res).catch((e) => {
      if (res.headersSent) res.destroy();
      else sendError(res, e);
    });
  });

  return {
    server,
    model,
    stats,
    health,
    /** Starts listening; resolves to { port, url }. */
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.host, () => {
          server.off('error', reject);
          const { port } = server.address();
          resolve({ port, url: `http://${o.host}:${port}` });
        });
      });
    },
    /**
     * Stops accepting connections, answers every request already received (queued ones run at
     * once, without waiting for their batch window), closes idle connections and resolves when
     * the last connection has closed. A connection still open after shutdownTimeoutMs is cut.
     */
    close() {
      if (closing) return closing;
      closing = (async () => {
        const closed = new Promise((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), o.shutdownTimeoutMs);
        await batcher.drain();
        await closed;
        clearTimeout(force);
        eventLoopDelay.disable();
      })();
      return closing;
    },
  };
}

const FLAGS = {
  '--model': ['model', String], '--host': ['host', String], '--port': ['port', Number], '--max-batch': ['maxBatch', Number],
  '--batch-window-ms': ['batchWindowMs', Number], '--max-rows-per-request': ['maxRowsPerRequest', Number],
  '--max-body-bytes': ['maxBodyBytes', Number], '--shutdown-timeout-ms': ['shutdownTimeoutMs', Number],
};

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--no-batch') {
      o.batch = false;
      continue;
    }
    const f = FLAGS[argv[i]];
    if (!f || argv[i + 1] === undefined) throw new RangeError(`unknown or incomplete option ${argv[i]} (known: --no-batch, ${Object.keys(FLAGS).join(', ')})`);
    const v = f[1](argv[++i]);
    if (f[1] === Number && !(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`${argv[i - 1]} takes a non-negative integer, got ${argv[i]}`);
    o[f[0]] = f[0] === 'model' ? path.resolve(v) : v;
  }
  return o;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const s = createServer(opts);
  const { url } = await s.listen();
  const b = cg.backend();
  console.log(`listening on ${url} (backend ${b.kind}${b.kind === 'cpu' ? `/${b.cpu.isa} x${b.cpu.threads}` : ''}, batching ${opts.batch === false ? 'off' : 'on'})`);
  const stop = (signal) => {
    console.log(`${signal}: shutting down`);
    s.close().then(() => {
      console.log('closed');
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`server: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    if (e.code === 'ENOENT') console.error('(no model file: run `node examples/server/make-model.js` first)');
    process.exit(1);
  });
}

module.exports = { createServer, parseArgs, parseInferRequest, libraryError, SERVER_ERRORS };
