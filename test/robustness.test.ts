/**
 * What a server embedding the library relies on beyond plain numerics: arrays over a
 * SharedArrayBuffer work, outputs may not alias inputs, async calls copy their inputs (so the
 * caller may reuse or even transfer them at once), a transferred `out` gives a typed rejection,
 * and weights cannot be altered after they are made.
 */
import * as cg from '../lib';
import { expectRejectsCode, expectThrowsCode } from './helpers/expect-error';
import { checkLinear, decode, linearRef, mulberry32, randomFloat32, seedFor, seedNote } from './helpers/reference';

const M = 5;
const N = 33;
const K = 36;

function shared(src: Float32Array): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(src.length * 4));
  a.set(src);
  return a;
}

function problem(label: string) {
  const seed = seedFor(label);
  const rng = mulberry32(seed);
  const x = randomFloat32(rng, M * K);
  const w = randomFloat32(rng, N * K);
  return { seed, x, w };
}

function expectClose(y: Float32Array, x: Float32Array, wDense: Float32Array, what: string): void {
  const { ref, absSum } = linearRef(decode(x, 'float32'), decode(wDense, 'float32'), null, M, N, K);
  expect(checkLinear(y, 'float32', ref, absSum, M, N, K, what)).toBeNull();
}

describe('SharedArrayBuffer-backed arrays (worker_threads) are plain memory', () => {
  test.each(['dense', '2:4'] as const)('%s: x, weight data and out over a SharedArrayBuffer', (fmt) => {
    const { seed, x, w } = problem(`sab ${fmt}`);
    const weight = fmt === 'dense' ? cg.DenseWeight.from(shared(w), [N, K]) : cg.Sparse24Weight.prune(shared(w), [N, K]);
    const out = shared(new Float32Array(M * N).fill(NaN));
    const y = cg.linear(shared(x), [M, K], weight, { out }) as Float32Array;
    expect(y).toBe(out);
    expectClose(y, x, weight.toDense() as Float32Array, `${fmt} ${seedNote(seed)}`);
  });
});

describe('outputs never alias inputs', () => {
  test('out sharing memory with x is refused with ERR_OVERLAP', () => {
    const w = cg.DenseWeight.from(new Float32Array(K * K).fill(0.5), [K, K]);
    const buf = new Float32Array(M * K).fill(1);
    expectThrowsCode(() => cg.linear(buf, [M, K], w, { out: buf }), RangeError, 'ERR_OVERLAP');
    // a partial overlap through different views of one buffer
    const big = new Float32Array(2 * M * K).fill(1);
    const x = big.subarray(0, M * K);
    const out = big.subarray(M * K - 3, 2 * M * K - 3);
    expectThrowsCode(() => cg.linear(x, [M, K], w, { out }), RangeError, 'ERR_OVERLAP');
  });
  test('out sharing memory with the bias is refused with ERR_OVERLAP', () => {
    const w = cg.DenseWeight.from(new Float32Array(N * K).fill(0.5), [N, K]);
    const out = new Float32Array(M * N);
    expectThrowsCode(() => cg.linear(new Float32Array(M * K), [M, K], w, { out, bias: out.subarray(0, N) }), RangeError, 'ERR_OVERLAP');
  });
  test('disjoint views of one buffer are fine', () => {
    const { seed, x, w } = problem('disjoint views');
    const weight = cg.DenseWeight.from(w, [N, K]);
    const big = new Float32Array(M * K + M * N);
    big.set(x);
    const out = big.subarray(M * K);
    cg.linear(big.subarray(0, M * K), [M, K], weight, { out });
    expectClose(out, x, w, seedNote(seed));
  });
});

describe('linearAsync copies its inputs when called', () => {
  test.each(['dense', '2:4'] as const)('%s: overwriting x and bias right after the call does not change the result', async (fmt) => {
    const { seed, x, w } = problem(`async copy ${fmt}`);
    const weight = fmt === 'dense' ? cg.DenseWeight.from(w, [N, K]) : cg.Sparse24Weight.prune(w, [N, K]);
    const xs = x.slice();
    const bias = new Float32Array(N); // zero bias, overwritten below
    const pending = cg.linearAsync(xs, [M, K], weight, { bias });
    xs.fill(1e6);
    bias.fill(1e6);
    const y = (await pending) as Float32Array;
    expectClose(y, x, weight.toDense() as Float32Array, `${fmt} ${seedNote(seed)}`);
  });
  test('x transferred right after the call: the result is still right', async () => {
    const { seed, x, w } = problem('async transfer x');
    const weight = cg.Sparse24Weight.prune(w, [N, K]);
    const xs = x.slice();
    const pending = cg.linearAsync(xs, [M, K], weight);
    structuredClone(xs.buffer, { transfer: [xs.buffer] });
    expect(xs.length).toBe(0); // detached
    const y = (await pending) as Float32Array;
    expectClose(y, x, weight.toDense() as Float32Array, seedNote(seed));
  });
  test('out transferred while the call runs: rejected with ERR_DETACHED, nothing written to freed memory', async () => {
    const weight = cg.DenseWeight.from(new Float32Array(N * K).fill(0.25), [N, K]);
    const out = new Float32Array(M * N);
    const pending = cg.linearAsync(new Float32Array(M * K).fill(1), [M, K], weight, { out });
    structuredClone(out.buffer, { transfer: [out.buffer] });
    await expectRejectsCode(() => pending, TypeError, 'ERR_DETACHED');
  });
});

describe('weights are immutable once made', () => {
  test.each(['dense', '2:4'] as const)('%s: shape cannot be replaced, and no packed buffer is exposed', (fmt) => {
    const w = new Float32Array(32 * 8).fill(1);
    const weight = fmt === 'dense' ? cg.DenseWeight.from(w, [32, 8]) : cg.Sparse24Weight.prune(w, [32, 8]);
    expect(Object.isFrozen(weight)).toBe(true);
    expect(() => {
      (weight as unknown as { shape: number[] }).shape = [64, 4];
    }).toThrow(TypeError);
    expect(weight.shape).toEqual([32, 8]);
    expect(Object.values(weight).some((v) => v instanceof ArrayBuffer)).toBe(false);
  });
});

test('threads of the wrong type is a TypeError', () => {
  const w = cg.DenseWeight.from(new Float32Array(N * K).fill(1), [N, K]);
  expectThrowsCode(() => cg.linear(new Float32Array(M * K), [M, K], w, { threads: '2' as unknown as number }), TypeError, 'ERR_INVALID_ARG');
});
