/**
 * Names that exist in the API but have no kernels yet throw ERR_NOT_SUPPORTED (a plain Error
 * with that code), synchronously or as a rejection, and never return a (zero) result.
 *
 * Int4Weight.quantize / fromGPTQ / fromAWQ and Fp8Weight.quantize are implemented now (tested in
 * int4.test.ts and fp8-weight.test.ts), so they are no longer listed here. linear() with an INT4
 * or FP8 weight, lowRankUpdate, linearMultiLora and the `lora` option are implemented too (tested
 * in linear.quant.test.ts, ops/lowrank-update.test.ts, ops/lora.test.ts and
 * ops/multi-lora.test.ts).
 */
import * as cg from '../lib';
import { expectRejectsCode, expectThrowsCode } from './helpers/expect-error';

const N = 8;
const K = 32;
const M = 2;
const w32 = new Float32Array(N * K).map((_, i) => (i % 9) - 4 + 0.5);
const x = new Float32Array(M * K).fill(1);
const dense = cg.DenseWeight.from(w32, [N, K]);
const sparse = cg.Sparse24Weight.prune(w32, [N, K]);

type AnyFn = (...a: unknown[]) => unknown;

describe('ERR_NOT_SUPPORTED', () => {
  const calls: Array<[string, () => unknown]> = [
    ["linear(..., { activations: 'fp8' })", () => cg.linear(x, [M, K], dense, { activations: 'fp8' })],
    ["linear(..., { activations: 'int8' }) on a 2:4 weight", () => cg.linear(x, [M, K], sparse, { activations: 'int8' })],
  ];
  test.each(calls)('%s throws, and returns nothing', (_name, fn) => {
    const e = expectThrowsCode(fn, Error, 'ERR_NOT_SUPPORTED');
    expect(e.message).toMatch(/not supported/);
  });

  test.each([
    ["activations: 'fp8'", { activations: 'fp8' as const }],
    ["activations: 'int8'", { activations: 'int8' as const }],
  ])('linearAsync with %s rejects', async (_name, opts) => {
    await expectRejectsCode(() => cg.linearAsync(x, [M, K], sparse, opts), Error, 'ERR_NOT_SUPPORTED');
  });

  test('activations: "native" (the default) is accepted', () => {
    const a = cg.linear(x, [M, K], dense, { activations: 'native' });
    const b = cg.linear(x, [M, K], dense);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  test('an `out` buffer is left untouched by a not-supported call', () => {
    const out = new Float32Array(M * N).fill(7);
    expectThrowsCode(() => cg.linear(x, [M, K], dense, { out, activations: 'fp8' }), Error, 'ERR_NOT_SUPPORTED');
    expect(Array.from(out)).toEqual(new Array(M * N).fill(7));
  });
});
