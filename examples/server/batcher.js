// A micro-batcher: requests that arrive close together share one forward pass.
//
// A request waits for company at most `windowMs` from its arrival, less when `maxRows` rows are
// queued; then the queued requests (up to maxRows rows, whole requests only, in arrival order)
// become one batch. One batch runs at a time: requests that arrive meanwhile queue, and the next
// batch starts when it is done and the oldest of them has waited its window. Under load batches
// grow by themselves; an idle server adds at most windowMs of latency. With `enabled: false`
// every request is its own batch, one at a time (the baseline batching is measured against).
'use strict';
const { performance } = require('perf_hooks');

class MicroBatcher {
  /**
   * run(x Float32Array [M, width], M, rowAdapter Int32Array [M]) -> Promise<Float32Array [M, outWidth]>
   */
  constructor({ run, width, outWidth, maxRows = 32, windowMs = 2, enabled = true }) {
    this.run = run;
    this.width = width;
    this.outWidth = outWidth;
    this.maxRows = maxRows;
    this.windowMs = windowMs;
    this.enabled = enabled;
    this.queue = [];
    this.queuedRows = 0;
    this.running = null; // the batch in flight (a promise), or null
    this.timer = null;
    this.idleWaiters = [];
    this.resetStats();
  }

  resetStats() {
    this.stats = { batches: 0, rows: 0, requests: 0, maxRows: 0, failedBatches: 0, busyMs: 0, rowsHistogram: {} };
  }

  /** Queues one request's rows (x [rows, width]) with one adapter index; resolves to its [rows, outWidth]. */
  submit(x, rows, adapter) {
    return new Promise((resolve, reject) => {
      this.queue.push({ x, rows, adapter, resolve, reject, arrived: performance.now() });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Requests waiting for a batch. */
  get pending() {
    return this.queue.length;
  }

  schedule() {
    if (this.running || this.queue.length === 0) return;
    if (!this.enabled || this.queuedRows >= this.maxRows || this.draining) {
      this.startBatch();
    } else if (!this.timer) {
      // The window counts from the oldest request's arrival, so a request that waited for the
      // batch in flight does not wait a whole window more.
      const wait = Math.max(0, this.queue[0].arrived + this.windowMs - performance.now());
      this.timer = setTimeout(() => {
        this.timer = null;
        this.startBatch();
      }, wait);
    }
  }

  startBatch() {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running || this.queue.length === 0) return;
    const batch = [];
    let M = 0;
    while (this.queue.length > 0 && (batch.length === 0 || (this.enabled && M + this.queue[0].rows <= this.maxRows))) {
      const r = this.queue.shift();
      batch.push(r);
      M += r.rows;
    }
    this.queuedRows -= M;
    const x = new Float32Array(M * this.width);
    const rowAdapter = new Int32Array(M);
    let row = 0;
    for (const r of batch) {
      x.set(r.x, row * this.width);
      rowAdapter.fill(r.adapter, row, row + r.rows);
      row += r.rows;
    }
    const s = this.stats;
    s.batches++;
    s.rows += M;
    s.requests += batch.length;
    s.maxRows = Math.max(s.maxRows, M);
    s.rowsHistogram[M] = (s.rowsHistogram[M] || 0) + 1;
    const t0 = process.hrtime.bigint();
    this.running = Promise.resolve()
      .then(() => this.run(x, M, rowAdapter))
      .then(
        (y) => {
          // One request per turn of the event loop: each resolution runs its request's response
          // (JSON formatting, the write) at once, and a batch of them in one go would hold the
          // loop for all of them. Meanwhile the next batch's kernels already run.
          const deliver = (i, at) => {
            if (i === batch.length) return;
            const r = batch[i];
            r.resolve(y.slice(at * this.outWidth, (at + r.rows) * this.outWidth));
            setImmediate(deliver, i + 1, at + r.rows);
          };
          deliver(0, 0);
        },
        (e) => {
          // Every request was checked before it was queued, so a failing batch is the library's
          // or the machine's doing (out of memory, a device error): each request gets the error.
          s.failedBatches++;
          for (const r of batch) r.reject(e);
        },
      )
      .finally(() => {
        s.busyMs += Number(process.hrtime.bigint() - t0) / 1e6;
        this.running = null;
        this.schedule();
        if (!this.running && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** From now on batches start without waiting for the window; resolves when nothing is queued or running. */
  drain() {
    this.draining = true;
    this.schedule();
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

module.exports = { MicroBatcher };
