/**
 * The simulated CUDA device's execution core (native/cuda/sim/sim.cc): kernels written as CUDA C++
 * (native/cuda/sim_tests/refusal_kernels.cuh) run through the simulator addon's runMisbehaving
 * (native/binding/cuda_sim/refusals.cc).
 *
 *  - kernels that compute something give the right answer (checked against JS): block reductions
 *    through shared memory and __syncthreads, 3-D grids of 3-D blocks, warp collectives run many
 *    times, cp.async of 4/8/16 bytes with zero fill, poisoned shared memory, dynamic smem sizes;
 *  - each thing the hardware leaves undefined is refused: the launch fails with an error that
 *    names the kernel, the block and the thread and says what was wrong, and the process goes on
 *    (a computing kernel runs right after each refusal);
 *  - nothing hangs: the whole battery of refusals first runs in a child process under a timeout
 *    (a deadlocked simulator fails that test instead of hanging jest), and 200 refused launches in
 *    a row leave no thread behind and take bounded time.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';

const ROOT = path.resolve(__dirname, '..', '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'compressed_gemm_cuda_sim.node');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const sim = require(ADDON) as { runMisbehaving(args: Record<string, unknown>): Result };

interface Result {
  ok: boolean;
  error: string;
  data?: number[];
}

const run = (args: Record<string, unknown>): Result => sim.runMisbehaving(args);

// ---- references -----------------------------------------------------------------------------------

/** A seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function blockReduce(blocks: number, n: number, block: number, seed: number): void {
  const next = rng(seed);
  const input = new Int32Array(blocks * n);
  for (let i = 0; i < input.length; ++i) input[i] = Math.floor(next() * 2001) - 1000;
  const r = run({ case: 'block_reduce', input, n, block: [block] });
  expect(r.error).toBe('');
  expect(r.ok).toBe(true);
  const want: number[] = [];
  for (let b = 0; b < blocks; ++b) {
    let s = 0;
    for (let i = 0; i < n; ++i) s += input[b * n + i];
    want.push(s);
  }
  expect(r.data).toEqual(want);
}

/** After a refusal: the process and the simulator still work. */
function expectAlive(): void {
  blockReduce(2, 100, 64, 7);
}

/** The error names the kernel, the block and the thread, and says `what`. */
function expectRefused(r: Result, kernel: string, thread: RegExp, what: RegExp, block = /\(0,0,0\)/): void {
  expect(r.ok).toBe(false);
  const m = /^kernel (\S+), block (\(\d+,\d+,\d+\)), thread (\(\d+,\d+,\d+\)): (.+)$/s.exec(r.error);
  if (!m) throw new Error(`the error does not name kernel, block and thread: ${JSON.stringify(r.error)}`);
  expect(m[1]).toBe(kernel);
  expect(m[2]).toMatch(block);
  expect(m[3]).toMatch(thread);
  expect(m[4]).toMatch(what);
}

function threadCount(): number | undefined {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---- the refusals -----------------------------------------------------------------------------------

interface Refusal {
  name: string;
  args: Record<string, unknown>;
  kernel: string;
  thread: RegExp;
  what: RegExp;
  block?: RegExp;
  check?: (r: Result) => void;
}

const SYNC_NEVER_REACHED = /a __syncthreads that some threads never reach/;
const IN_FLIGHT = /^cp\.async copies in flight when the kernel returned \(missing cp\.async\.wait_group\)/;

const REFUSALS: Refusal[] = [
  {
    name: 'a partial warp (48 threads) at a collective',
    args: { case: 'warp_sum_all', block: [48] },
    kernel: 'warp_sum_all',
    thread: /^\((3[2-9]|4[0-7]),0,0\)$/,
    what: /^\.sync\.aligned op redux\.sync\.add\.u32 needs all 32 lanes; this warp has 16 threads/,
  },
  {
    name: 'a partial warp of a 2-D block (16 x 3) at a collective',
    args: { case: 'warp_sum_all', block: [16, 3] },
    kernel: 'warp_sum_all',
    thread: /^\(\d+,2,0\)$/,
    what: /needs all 32 lanes; this warp has 16 threads/,
  },
  {
    name: 'lanes at different collectives',
    args: { case: 'different_ops', odd: 3 },
    kernel: 'different_ops',
    thread: /^\(\d+,0,0\)$/,
    what: /^lane \d+ is at redux\.sync\.(add|max)\.u32 while lane \d+ is at redux\.sync\.(add|max)\.u32/,
    check: (r) => {
      // One of the two lanes named is lane 3, at the max; the other is at the add.
      const m = /lane (\d+) is at (\S+) while lane (\d+) is at (\S+)/.exec(r.error)!;
      const at = new Map([
        [m[1], m[2]],
        [m[3], m[4]],
      ]);
      expect(at.get('3')).toBe('redux.sync.max.u32');
      expect([...at.values()].sort()).toEqual(['redux.sync.add.u32', 'redux.sync.max.u32']);
    },
  },
  {
    name: 'a lane returning while the others of its warp wait at a collective',
    args: { case: 'early_return_collective', gone: 5 },
    kernel: 'early_return_collective',
    thread: /^\((5|37),0,0\)$/,
    what: /^\.sync\.aligned op redux\.sync\.add\.u32: lane 5 returned without reaching it/,
  },
  {
    name: '__syncthreads that 24 of 64 threads never reach',
    args: { case: 'barrier_not_reached', block: [64], keep: 40 },
    kernel: 'barrier_not_reached',
    thread: /^\((4\d|5\d|6[0-3]),0,0\)$/,
    what: SYNC_NEVER_REACHED,
  },
  {
    name: '__syncthreads that one thread of 256 never reaches',
    args: { case: 'barrier_not_reached', block: [256], keep: 255 },
    kernel: 'barrier_not_reached',
    thread: /^\(255,0,0\)$/,
    what: SYNC_NEVER_REACHED,
  },
  {
    name: 'half a warp at a collective, every other thread at __syncthreads (a deadlock)',
    args: { case: 'barrier_vs_collective', block: [64] },
    kernel: 'barrier_vs_collective',
    thread: /^\(\d+,0,0\)$/,
    what: /^deadlock: .*48 at __syncthreads.*warp 0: 16 of 32 lanes at \.sync\.aligned op redux\.sync\.add\.u32/,
  },
  {
    name: 'cp.async to a misaligned shared address',
    args: { case: 'cp_async_misuse', kind: 1 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: destination at shared offset 116 is not aligned to its cp-size 16$/,
  },
  {
    name: 'cp.async to global memory',
    args: { case: 'cp_async_misuse', kind: 2 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: destination 0x[0-9a-f]+ \(16 bytes\) is not inside the block's shared memory \(512 bytes at 0x[0-9a-f]+\)$/,
  },
  {
    name: 'cp.async from a misaligned source',
    args: { case: 'cp_async_misuse', kind: 3 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: source 0x[0-9a-f]+ is not aligned to its cp-size 16$/,
  },
  {
    name: 'cp.async running past the end of shared memory',
    args: { case: 'cp_async_misuse', kind: 4, block: [64], who: 40 },
    kernel: 'cp_async_misuse',
    thread: /^\(40,0,0\)$/,
    what: /^cp\.async: destination 0x[0-9a-f]+ \(8 bytes\) is not inside the block's shared memory \(1024 bytes/,
  },
  {
    name: 'cp.async with src-size above cp-size',
    args: { case: 'cp_async_misuse', kind: 5 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: src-size 9 outside 0\.\.8/,
  },
  {
    name: 'cp.async with cp-size 12',
    args: { case: 'cp_async_misuse', kind: 6 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: cp-size 12 \(it must be 4, 8 or 16\)$/,
  },
  {
    name: 'cp.async with a negative src-size',
    args: { case: 'cp_async_misuse', kind: 7 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: src-size -1 outside 0\.\.16/,
  },
  {
    name: 'cp.async from shared memory',
    args: { case: 'cp_async_misuse', kind: 8 },
    kernel: 'cp_async_misuse',
    thread: /^\(7,0,0\)$/,
    what: /^cp\.async: source 0x[0-9a-f]+ is in the block's shared memory \(cp\.async reads global memory\)$/,
  },
  {
    name: 'copies committed and never waited for',
    args: { case: 'copies_in_flight', kind: 1 },
    kernel: 'copies_in_flight',
    thread: /^\(9,0,0\)$/,
    what: IN_FLIGHT,
  },
  {
    name: 'copies never committed',
    args: { case: 'copies_in_flight', kind: 2 },
    kernel: 'copies_in_flight',
    thread: /^\(9,0,0\)$/,
    what: /missing cp\.async\.wait_group\): 1 copy \(16 bytes\) pending, never committed$/,
  },
  {
    name: 'wait_group 1 leaves the newest group in flight',
    args: { case: 'copies_in_flight', kind: 3 },
    kernel: 'copies_in_flight',
    thread: /^\(9,0,0\)$/,
    what: /missing cp\.async\.wait_group\): 1 copy \(16 bytes\) pending, in 1 committed group not waited for$/,
  },
  {
    name: 'a std::exception thrown in a kernel body while the others wait at __syncthreads',
    args: { case: 'throws', kind: 1, who: 9 },
    kernel: 'throws',
    thread: /^\(9,0,0\)$/,
    what: /^an exception escaped the kernel body: the kernel body threw this$/,
  },
  {
    name: 'a non-std exception thrown in a kernel body',
    args: { case: 'throws', kind: 2, who: 33 },
    kernel: 'throws',
    thread: /^\(33,0,0\)$/,
    what: /^an exception \(not a std::exception\) escaped the kernel body$/,
  },
  {
    name: "a collective's fn refusing one lane's input (named through fail_lane)",
    args: { case: 'collective_refuses', odd: 40 },
    kernel: 'collective_refuses',
    thread: /^\(40,0,0\)$/,
    what: /^even_only: lane 8 passes an odd value 1$/,
  },
  // mma.sp::ordered_metadata m16n8k32: what the ISA leaves undefined (§9.7.14.6.1).
  {
    name: 'mma.sp with sparsity selector 2 (ptxas accepts it; the ISA leaves it undefined)',
    args: { case: 'mma_sp_misuse', kind: 2 },
    kernel: 'mma_sp_misuse',
    thread: /^\(0,0,0\)$/,
    what: /^mma\.sp::ordered_metadata\.sync\.aligned\.m16n8k32\.row\.col\.f32\.f16\.f16\.f32 \(selector 2\): sparsity selector 2 \(for m16n8k32 with f16\/bf16 it must be 0 or 1/,
  },
  {
    name: 'mma.sp with sparsity selector 3',
    args: { case: 'mma_sp_misuse', kind: 3 },
    kernel: 'mma_sp_misuse',
    thread: /^\(0,0,0\)$/,
    what: /\(selector 3\): sparsity selector 3 /,
  },
  {
    name: 'mma.sp metadata nibble 0x0 (idx0 = idx1 = 0) in a lane selector 0 names',
    args: { case: 'mma_sp_misuse', kind: 0, who: 5, meta: 0x44444440 },
    kernel: 'mma_sp_misuse',
    thread: /^\(5,0,0\)$/,
    // lane 5 = 4 * 1 + 1: row 1 (bits 15:0), columns 16..31; nibble 0 is columns 16..19
    what: /\(selector 0\): lane 5's metadata 0x44444440 has nibble 0x0 for row 1, columns 16\.\.19 \(idx0 0, idx1 0\); ordered_metadata allows only 0x4 0x8 0x9 0xC 0xD 0xE/,
  },
  {
    name: 'mma.sp metadata nibble 0x5 (idx0 = idx1 = 1) in a lane selector 1 names',
    args: { case: 'mma_sp_misuse', kind: 1, who: 6, meta: 0x44444454 },
    kernel: 'mma_sp_misuse',
    thread: /^\(6,0,0\)$/,
    // lane 6 = 4 * 1 + 2 * 1 + 0: row 1, columns 0..15; nibble 1 is columns 4..7
    what: /\(selector 1\): lane 6's metadata 0x44444454 has nibble 0x5 for row 1, columns 4\.\.7 \(idx0 1, idx1 1\)/,
  },
  {
    name: 'mma.sp metadata nibble 0x6 (idx0 2 > idx1 1: unordered) in the upper half',
    args: { case: 'mma_sp_misuse', kind: 1, who: 31, meta: 0x46444444 },
    kernel: 'mma_sp_misuse',
    thread: /^\(31,0,0\)$/,
    // lane 31 = 4 * 7 + 2 * 1 + 1: bits 31:16 are row 15, columns 16..31; nibble 6 is columns 24..27
    what: /lane 31's metadata 0x46444444 has nibble 0x6 for row 15, columns 24\.\.27 \(idx0 2, idx1 1\)/,
  },
  {
    name: 'mma.sp that lane 9 of the warp never reaches',
    args: { case: 'mma_sp_misuse', kind: 4, who: 9 },
    kernel: 'mma_sp_misuse',
    thread: /^\(9,0,0\)$/,
    what: /^\.sync\.aligned op mma\.sp::ordered_metadata\.sync\.aligned\.m16n8k32\.row\.col\.f32\.f16\.f16\.f32 \(selector 0\): lane 9 returned without reaching it/,
  },
  {
    name: 'a refusal in block 2 of 8: the later blocks never run',
    args: { case: 'stop_after_failure', grid: [8], badBlock: 2 },
    kernel: 'stop_after_failure',
    block: /^\(2,0,0\)$/,
    thread: /^\(3,0,0\)$/,
    what: /^cp\.async: destination at shared offset 8 is not aligned to its cp-size 16$/,
    check: (r) => expect(r.data).toEqual([1, 1, 1, 0, 0, 0, 0, 0]),
  },
];

// ---- tests -----------------------------------------------------------------------------------------

jest.setTimeout(30000);

describe('simulated device: no refusal hangs or kills the process', () => {
  test('the whole battery of refusals, in a child process under a timeout', () => {
    const script = `
      const sim = require(${JSON.stringify(ADDON)});
      const out = JSON.parse(process.argv[1]).map((a) => sim.runMisbehaving(a));
      process.stdout.write(JSON.stringify(out));`;
    const t0 = Date.now();
    const child = spawnSync(process.execPath, ['-e', script, JSON.stringify(REFUSALS.map((c) => c.args))], {
      encoding: 'utf8',
      timeout: 20000,
      killSignal: 'SIGKILL',
    });
    if (child.error || child.status !== 0)
      throw new Error(`child: ${child.error ?? ''} status ${child.status} signal ${child.signal}\n${child.stderr}`);
    const results = JSON.parse(child.stdout) as Result[];
    expect(results.length).toBe(REFUSALS.length);
    results.forEach((r, i) => {
      expect(r.ok).toBe(false);
      expect(r.error.startsWith(`kernel ${REFUSALS[i].kernel}, block (`)).toBe(true);
    });
    expect(Date.now() - t0).toBeLessThan(20000);
  });
});

describe('simulated device: kernels compute the right thing', () => {
  test('block reductions through shared memory and __syncthreads (blocks of 32, 256, 1024)', () => {
    blockReduce(3, 1000, 256, 1);
    blockReduce(2, 77, 32, 2);
    blockReduce(1, 5000, 1024, 3);
  });

  test.each([
    [[3, 2, 2], [4, 3, 2]],
    [[2, 3, 4], [8, 1, 4]],
    [[5], [33]],
    [[1, 1, 3], [1, 1, 64]],
  ])('grid %j of blocks %j: every thread runs once with its indices', (grid, block) => {
    const r = run({ case: 'grid_ids', grid, block });
    expect(r.ok).toBe(true);
    const g = [grid[0], grid[1] ?? 1, grid[2] ?? 1];
    const b = [block[0], block[1] ?? 1, block[2] ?? 1];
    const nt = b[0] * b[1] * b[2];
    const total = g[0] * g[1] * g[2] * nt;
    const data = r.data!;
    expect(data.length).toBe(7 * total);
    const counts = data.slice(0, total);
    expect(counts.every((c) => c === 1)).toBe(true);
    for (let i = 0; i < total; ++i) {
      const blk = Math.floor(i / nt);
      const t = i % nt;
      const want = [
        blk % g[0],
        Math.floor(blk / g[0]) % g[1],
        Math.floor(blk / (g[0] * g[1])),
        t % b[0],
        Math.floor(t / b[0]) % b[1],
        Math.floor(t / (b[0] * b[1])),
      ];
      expect(data.slice(total + 6 * i, total + 6 * i + 6)).toEqual(want);
    }
  });

  test('a warp collective (sum of the lanes) 100 times over 4 warps of a 2-D block, 2 blocks', () => {
    const iters = 100;
    const r = run({ case: 'warp_sum_loop', grid: [2], block: [64, 2], iters });
    expect(r.error).toBe('');
    const want: number[] = [];
    for (let blk = 0; blk < 2; ++blk) {
      for (let t = 0; t < 128; ++t) {
        const w = Math.floor(t / 32);
        let acc = 0;
        for (let it = 0; it < iters; ++it) {
          let s = 0;
          for (let l = 0; l < 32; ++l) s = (s + (w * 32 + l) * 7 + it) >>> 0;
          acc = (Math.imul(acc, 31) + s) >>> 0;
        }
        want.push(acc);
      }
    }
    expect(r.data).toEqual(want);
  });

  test.each([4, 8, 16])('cp.async of %i bytes, every src-size: poisoned until its wait_group, then data and zeros', (cp) => {
    for (let srcSize = 0; srcSize <= cp; ++srcSize) {
      const r = run({ case: 'cp_async_fill', cp, srcSize });
      expect(r.error).toBe('');
      const seen = r.data!;
      const threads = 32;
      expect(seen.length).toBe(threads * 6 * cp);
      const copy = (at: number) =>
        Array.from({ length: cp }, (_, i) => (i < srcSize ? 1 + ((at * cp + i) % 250) : 0));
      const poison = new Array(cp).fill(0xff);
      for (let t = 0; t < threads; ++t) {
        const snap = (k: number) => seen.slice((t * 6 + k) * cp, (t * 6 + k + 1) * cp);
        expect(snap(0)).toEqual(poison); // A, issued
        expect(snap(1)).toEqual(poison); // B, issued
        expect(snap(2)).toEqual(copy(t)); // A after wait_group 1
        expect(snap(3)).toEqual(poison); // B after wait_group 1: still in flight
        expect(snap(4)).toEqual(copy(t));
        expect(snap(5)).toEqual(copy(threads + t));
      }
    }
  });

  test('reading a cp.async destination before its wait sees the poison (a NaN), after it the data', () => {
    const r = run({ case: 'cp_async_read_before_wait', block: [64] });
    expect(r.error).toBe('');
    const bits = r.data!;
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let t = 0; t < 64; ++t) {
      expect(bits[2 * t]).toBe(0xffffffff);
      u[0] = bits[2 * t];
      expect(Number.isNaN(f[0])).toBe(true);
      u[0] = bits[2 * t + 1];
      expect(f[0]).toBe(1.5 + t);
    }
  });

  test.each([0, 16, 4096, 48 * 1024, 227 * 1024])(
    'shared memory (%i bytes) is poisoned when each block starts, and 128-byte aligned',
    (smem) => {
      const r = run({ case: 'smem_poison', smem, grid: [3], block: [64] });
      expect(r.error).toBe('');
      const data = r.data!;
      expect(data.slice(0, 3 * 64).every((n) => n === 0)).toBe(true); // no byte other than 0xFF
      expect(data.slice(3 * 64)).toEqual([0, 0, 0]); // base % 128
    },
  );

  test.each([4, 1000, 48 * 1024, 100 * 1024, 227 * 1024])(
    'dynamic shared memory of %i bytes: written by some threads, read back by others',
    (smem) => {
      const r = run({ case: 'smem_reverse', smem, block: [128] });
      expect(r.error).toBe('');
      const words = smem / 4;
      const want = Array.from(
        { length: words },
        (_, i) => (Math.imul(words - 1 - i, 2654435761 | 0) + 1) >>> 0,
      );
      expect(r.data).toEqual(want);
    },
  );

  test.each([
    [0, 6],
    [0, 31],
    [1, 4],
    [1, 29],
  ])('mma.sp with selector %i never reads the metadata of lane %i, which it does not name (0x0: unordered there)', (kind, who) => {
    // Every lane's d[0]: 16 products of 1.0 (the kept values and B all 1).
    const all16 = new Array(32).fill(16);
    expect(run({ case: 'mma_sp_misuse', kind, who, meta: 0 })).toEqual({ ok: true, error: '', data: all16 });
    // The same lane with the same poison is refused when the other selector names it.
    expect(run({ case: 'mma_sp_misuse', kind: 1 - kind, who, meta: 0 }).ok).toBe(false);
  });

  test('the largest launches allowed run: 1024 threads, 1 x 1 x 64, 227 KiB of shared memory', () => {
    expect(run({ case: 'trivial', block: [1024] })).toEqual({ ok: true, error: '' });
    expect(run({ case: 'trivial', block: [1, 1, 64] })).toEqual({ ok: true, error: '' });
    expect(run({ case: 'trivial', smem: 227 * 1024 })).toEqual({ ok: true, error: '' });
  });
});

describe('simulated device: refusals name the kernel, the block and the thread, and the process goes on', () => {
  test.each(REFUSALS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = run(c.args);
    expectRefused(r, c.kernel, c.thread, c.what, c.block);
    c.check?.(r);
    expectAlive();
  });

  test.each([
    [{ block: [0] }, /block \(0,1,1\) has 0 threads; a block has 1 to 1024/],
    [{ block: [1025] }, /block \(1025,1,1\) has 1025 threads; a block has 1 to 1024/],
    [{ block: [32, 33] }, /block \(32,33,1\) has 1056 threads/],
    [{ block: [1, 1, 65] }, /block \(1,1,65\) is over the limits 1024 x 1024 x 64/],
    [{ grid: [0] }, /grid \(0,1,1\) has no blocks/],
    [{ grid: [1, 0, 1] }, /grid \(1,0,1\) has no blocks/],
    [{ grid: [1, 65536] }, /grid \(1,65536,1\) is over the limits/],
    [{ smem: 227 * 1024 + 1 }, /232449 bytes of shared memory per block; at most 232448/],
    [{ smem: 2 ** 40 }, /bytes of shared memory per block/],
  ])('a bad launch configuration %j is refused with the kernel named', (config, what) => {
    const r = run({ case: 'trivial', ...config });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^kernel trivial: launch refused: /);
    expect(r.error).toMatch(what);
    expectAlive();
  });

  test('200 refused launches in a row: bounded time, no thread left behind', () => {
    const cases = [
      { case: 'barrier_not_reached', block: [64], keep: 40 },
      { case: 'early_return_collective', gone: 5 },
      { case: 'throws', kind: 1, who: 9 },
      { case: 'copies_in_flight', kind: 1 },
      { case: 'warp_sum_all', block: [48] },
      { case: 'barrier_vs_collective', block: [64] },
      { case: 'stop_after_failure', grid: [4], badBlock: 0 },
      { case: 'trivial', block: [2000] },
    ];
    for (const c of cases) expect(run(c).ok).toBe(false); // warm the thread pool
    const before = threadCount();
    const t0 = Date.now();
    for (let i = 0; i < 200; ++i) {
      const r = run(cases[i % cases.length]);
      expect(r.ok).toBe(false);
    }
    const ms = Date.now() - t0;
    const after = threadCount();
    expect(ms).toBeLessThan(15000);
    if (before !== undefined && after !== undefined) expect(after).toBeLessThanOrEqual(before + 4);
    expectAlive();
  });
});
