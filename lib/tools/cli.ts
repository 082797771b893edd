#!/usr/bin/env node
/** `npx compressed-gemm <command>`: bench (the main job) and info. */
import { BackendInfo, CudaStatus, backend, cudaStatus, setThreads } from '../backends/select';
import { cuda } from '../tensor';
import { BenchOptions, OPS, formatTable, formatUpdateTable, measureFmaPeak, runBench, runUpdateBench, writeJson, writeOutputs } from './bench';
import { formatConcurrencyTable, runConcurrency } from './concurrency';
import { loadOrt } from './peers';

const USAGE = `usage: compressed-gemm <command> [options]

commands:
  bench    time every supported operation against dense float32 on this machine's backend
  info     print the backend this machine would use, where each addon came from, and why a GPU
           can or cannot be used (--json: all of cg.backend() and cg.cudaStatus() as JSON)

bench options:
  --quick             a smoke run under a minute (M in {1,128}, N=K=4096, up to 3 repeats:
                      fewer on slow kernels)
  --peers             also time onnxruntime-node's MatMul / MatMulNBits when it is installed
                      (npm install --ignore-scripts onnxruntime-node)
  --ops a,b           operations to run (${OPS.map((o) => o.name).join(', ')}, lowRankUpdate);
                      dense-f32 always runs as the baseline
  --m 1,16            batch sizes M (default 1,16,128,512)
  --shapes NxK,...    weight shapes (default 4096x4096,11008x4096,4096x11008)
  --threads N         CPU threads (default: COMPRESSED_GEMM_THREADS or all cores)
  --repeats R         timed repeats per measurement, median reported (default 7)
  --json FILE         also write the results as JSON
  --chart FILE.svg    also write a bar chart of the ratios
  --seed S            seed of the random weights and activations (default 1)
  --concurrency C     instead: C linearAsync calls at once vs the same C calls made with linear,
                      wall-time ratio and the event loop's delay (p99, max) while the async calls
                      run (default ops dense-f32,int4-g128,2:4-f32, shape 11008x4096, M 16,128,
                      5 rounds)
  --reuse-out         with --concurrency: each call writes into an out array made once, instead
                      of returning a new array
`;

function fail(msg: string): never {
  process.stderr.write(`compressed-gemm: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function intList(v: string, name: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isSafeInteger(x) || x < 1)) fail(`${name} takes positive integers, got ${v}`);
  return xs;
}

function parseBench(args: string[]): BenchOptions {
  const o: BenchOptions = { quick: false, peers: false, ops: null, ms: null, shapes: null, threads: null, repeats: null, json: null, chart: null, seed: 1, concurrency: null, reuseOut: false };
  for (let i = 0; i < args.length; ++i) {
    const a = args[i];
    const val = () => {
      if (i + 1 >= args.length) fail(`${a} needs a value`);
      return args[++i];
    };
    switch (a) {
      case '--quick': o.quick = true; break;
      case '--peers': o.peers = true; break;
      case '--ops': o.ops = val().split(',').map((s) => s.trim()); break;
      case '--m': o.ms = intList(val(), '--m'); break;
      case '--shapes':
        o.shapes = val().split(',').map((s) => {
          const m = /^(\d+)x(\d+)$/.exec(s.trim());
          if (!m) fail(`--shapes takes NxK pairs, got ${s}`);
          return [Number(m[1]), Number(m[2])] as [number, number];
        });
        break;
      case '--threads': o.threads = intList(val(), '--threads')[0]; break;
      case '--repeats': o.repeats = intList(val(), '--repeats')[0]; break;
      case '--json': o.json = val(); break;
      case '--chart': o.chart = val(); break;
      case '--seed': o.seed = intList(val(), '--seed')[0]; break;
      case '--concurrency': o.concurrency = intList(val(), '--concurrency')[0]; break;
      case '--reuse-out': o.reuseOut = true; break;
      default: fail(`unknown option ${a}`);
    }
  }
  return o;
}

/** `info` for a person: the backend, each addon's origin and path, and the GPU's one explanation. */
function formatInfo(be: BackendInfo, cuda: CudaStatus): string {
  const lines = [
    `backend: ${be.kind} (${be.device}); CPU kernels ${be.cpu.isa} x ${be.cpu.threads} threads (this CPU runs ${be.cpu.isas.join(', ')})`,
    `CPU addon: ${be.addons.cpu.origin}, ${be.addons.cpu.path}`,
  ];
  if (be.addons.cudaSim) lines.push(`simulated-device addon: ${be.addons.cudaSim.origin}, ${be.addons.cudaSim.path}`);
  const a = cuda.addon;
  lines.push(a
    ? `CUDA addon: ${a.origin}, ${a.path}\n  CUDA runtime ${a.runtime} (static); driver: ${a.driver === null ? 'none' : `CUDA ${a.driver}`}; ` +
      `SASS ${a.sass.join(', ')}; PTX ${a.ptx === null ? 'unknown' : a.ptx.join(', ') || 'none'}`
    : 'CUDA addon: none');
  lines.push(cuda.message);
  for (const n of be.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === 'bench') {
    const opts = parseBench(rest);
    if (opts.threads !== null) setThreads(opts.threads);
    const be = backend();
    const command = `npx compressed-gemm bench ${rest.join(' ')}`.trim();
    process.stdout.write(
      `compressed-gemm bench — backend ${be.kind} (${be.device}), CPU kernels ${be.cpu.isa} x ${be.cpu.threads} threads\n` +
        `command: ${command}\n` +
        'GFLOP/s counts 2·M·N·K for every op (dense-equivalent work); "vs dense f32" = dense float32 median / op median, same run.\n\n',
    );
    for (const n of be.notes) process.stdout.write(`note: ${n}\n`);
    if (opts.concurrency !== null) {
      const rows = await runConcurrency(opts, opts.concurrency);
      process.stdout.write(`${formatConcurrencyTable(rows)}\n`);
      if (opts.json) writeJson(opts.json, command, { concurrency: rows });
      return;
    }
    const peak = measureFmaPeak();
    if (peak !== null) process.stdout.write(`fp32 FMA peak of this machine (register-only loop, ${be.cpu.threads} threads): ${peak.toFixed(1)} GFLOP/s\n\n`);
    if (opts.peers) {
      const ort = loadOrt();
      process.stdout.write(ort ? `peers: onnxruntime-node ${ort.version} (CPU provider, ${be.cpu.threads} intra-op threads)\n\n`
        : 'peers: onnxruntime-node is not installed (npm install --ignore-scripts onnxruntime-node); no peer ops\n\n');
    }
    const results = await runBench(opts, peak);
    process.stdout.write(`${formatTable(results)}\n`);
    if (results.some((r) => r.backend.startsWith('cuda/'))) {
      const sim = cuda.devices().some((d) => d.simulated);
      process.stdout.write(
        sim
          ? '\ncuda/ rows ran on the simulated device: they time the simulator on the CPU, not a GPU (no GPU figure can come from cuda-sim).\n'
          : '\ncuda/ rows: device tensors in and out (x uploaded once, the result into one float32 tensor), so each figure is the kernels and their launch; GFLOP/s and GB/s are the device\'s.\n',
      );
    }
    const updates = opts.ops === null || opts.ops.includes('lowRankUpdate') ? runUpdateBench(opts) : [];
    if (updates.length) process.stdout.write(`\nlowRankUpdate (W += alpha B A in place, dense float32, rank 16; GFLOP/s counts 2 N K r; it reads and writes the whole weight, so its limit is the memory bandwidth, not the FMA peak):\n\n${formatUpdateTable(updates)}\n`);
    writeOutputs(results, opts, command, peak, updates);
    return;
  }
  if (cmd === 'info') {
    if (rest.some((a) => a !== '--json')) fail(`info takes only --json, got ${rest.join(' ')}`);
    const be = backend();
    const cuda = cudaStatus();
    if (rest.includes('--json')) process.stdout.write(`${JSON.stringify({ backend: be, cuda }, null, 2)}\n`);
    else process.stdout.write(formatInfo(be, cuda));
    return;
  }
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  fail(`unknown command ${cmd}`);
}

main(process.argv.slice(2)).catch((e) => {
  const err = e as Error & { code?: string };
  process.stderr.write(`compressed-gemm: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exit(1);
});
