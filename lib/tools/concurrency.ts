/**
 * `bench --concurrency C`: what a server sees. C calls on the same weight and input are made at
 * once with linearAsync (Promise.all) and, in the same round, one after another with linear;
 * each call returns a new array, as a request handler's would (--reuse-out: each writes into an
 * `out` array of its own, made once). Reported per op and M, medians
 * over the rounds: both wall times, their ratio (above 1 = the async calls cost more than the
 * same work done synchronously), and the event loop's delay while the async calls run
 * (perf_hooks.monitorEventLoopDelay at 1 ms resolution: p99 and max of each round), next to
 * the same figures measured right after with nothing running, for as long: on a shared machine
 * the loop waits for a core behind other processes too, and that part is not the library's.
 */
import { monitorEventLoopDelay } from 'perf_hooks';
import { linear, linearAsync } from '../ops/linear';
import { Weight } from '../weights/weight';
import { BenchOptions, OPS, markdownTable, median, mulberry32, progress, randomArray } from './bench';

export interface ConcurrencyResult {
  op: string;
  M: number;
  N: number;
  K: number;
  concurrency: number;
  rounds: number;
  /** median wall time of C synchronous calls made one after another */
  syncMs: number;
  /** median wall time of C linearAsync calls made at once, until the last one resolves */
  asyncMs: number;
  /** median over rounds of asyncMs / syncMs of the same round */
  ratio: number;
  /** event-loop delay while the async calls ran: median over rounds of each round's p99, max */
  delayP99Ms: number;
  delayMaxMs: number;
  /** the largest delay seen in any round */
  worstMaxMs: number;
  /** the same figures with no call running, for as long as the async calls took: the machine's own noise */
  idleP99Ms: number;
  idleMaxMs: number;
}

/** p99 and max (ms) of the event loop's delay while `during` runs. */
async function loopDelay(during: () => Promise<unknown>): Promise<[number, number]> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await during();
  h.disable();
  return [h.percentile(99) / 1e6, h.max / 1e6];
}

/** The ops a server would batch through linearAsync; --ops picks others among the linear ones. */
const DEFAULT_OPS = ['dense-f32', 'int4-g128', '2:4-f32'];

export async function runConcurrency(opts: BenchOptions, concurrency: number): Promise<ConcurrencyResult[]> {
  const names = opts.ops ?? DEFAULT_OPS;
  const specs = names.map((n) => {
    const s = OPS.find((o) => o.name === n);
    if (!s || !s.weight) throw new Error(`--concurrency runs linear ops only (${OPS.filter((o) => o.weight).map((o) => o.name).join(', ')}), got ${n}`);
    return s;
  });
  const shapes = opts.shapes ?? [[11008, 4096]];
  const ms = opts.ms ?? [16, 128];
  const rounds = opts.repeats ?? 5;
  const rand = mulberry32(opts.seed);
  const results: ConcurrencyResult[] = [];
  for (const [N, K] of shapes) {
    const wdata = randomArray(N * K, rand);
    for (const spec of specs) {
      const w: Weight = spec.weight!(wdata, N, K);
      const activations = spec.activations ?? 'native';
      for (const M of ms) {
        progress(`concurrency ${concurrency}: ${spec.name} M=${M} N=${N} K=${K}`);
        const x = randomArray(M * K, rand);
        // --reuse-out: each call writes into an array of its own made once (no garbage per call).
        const outs = Array.from({ length: concurrency }, () => (opts.reuseOut ? new Float32Array(M * N) : undefined));
        const sync = () => {
          for (let i = 0; i < concurrency; ++i) linear(x, [M, K], w, { activations, out: outs[i] });
        };
        const all = () => Promise.all(outs.map((out) => linearAsync(x, [M, K], w, { activations, out })));
        sync();
        await all(); // warm-up: page in the weight, start the threads
        const syncMs: number[] = [], asyncMs: number[] = [], ratios: number[] = [];
        const p99: number[] = [], max: number[] = [], idleP99: number[] = [], idleMax: number[] = [];
        for (let r = 0; r < rounds; ++r) {
          const t0 = performance.now();
          sync();
          const s = performance.now() - t0;
          let a = 0;
          const [dp99, dmax] = await loopDelay(async () => {
            const t1 = performance.now();
            await all();
            a = performance.now() - t1;
          });
          const [ip99, imax] = await loopDelay(() => new Promise((done) => setTimeout(done, a)));
          syncMs.push(s);
          asyncMs.push(a);
          ratios.push(a / s);
          p99.push(dp99);
          max.push(dmax);
          idleP99.push(ip99);
          idleMax.push(imax);
        }
        results.push({
          op: spec.name, M, N, K, concurrency, rounds,
          syncMs: median(syncMs), asyncMs: median(asyncMs), ratio: median(ratios),
          delayP99Ms: median(p99), delayMaxMs: median(max), worstMaxMs: Math.max(...max),
          idleP99Ms: median(idleP99), idleMaxMs: median(idleMax),
        });
      }
      w.dispose();
    }
  }
  progress(`done: ${results.length} concurrency measurements`, true);
  return results;
}

export function formatConcurrencyTable(results: ConcurrencyResult[]): string {
  const head = ['op', 'M', 'N', 'K', 'calls', 'sync ms', 'async ms', 'async/sync', 'loop delay p99 ms', 'max ms', 'worst max ms', 'idle p99 ms', 'idle max ms'];
  const rows = results.map((r) => [
    r.op, String(r.M), String(r.N), String(r.K), String(r.concurrency), r.syncMs.toFixed(1), r.asyncMs.toFixed(1),
    `${r.ratio.toFixed(2)}x`, r.delayP99Ms.toFixed(1), r.delayMaxMs.toFixed(1), r.worstMaxMs.toFixed(1), r.idleP99Ms.toFixed(1), r.idleMaxMs.toFixed(1),
  ]);
  return markdownTable(head, rows, 1);
}
