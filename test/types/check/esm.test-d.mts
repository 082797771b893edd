/**
 * Type tests of the two ES module import forms (dist/index.d.mts, the "import" condition):
 * the default export is the whole library, the named exports are its members, and both are the
 * same declarations a CommonJS user gets. Only type-checked (test/types/types.test.ts).
 */
import cg from 'compressed-gemm';
import { linear, linearAsync, DenseWeight, Tensor, CgRangeError, safetensors } from 'compressed-gemm';
import type { FloatArray, ErrorCode, LinearOptions } from 'compressed-gemm';
import * as ns from 'compressed-gemm';
import { expectType } from './expect.js';

declare const f32: Float32Array;
declare const u16: Uint16Array;

const w = DenseWeight.from(f32, [32, 64]);
expectType<FloatArray>()(linear(f32, [4, 64], w));
expectType<FloatArray>()(cg.linear(f32, [4, 64], cg.DenseWeight.from(u16, [32, 64], { dtype: 'float16' })));
expectType<Promise<FloatArray>>()(linearAsync(f32, [4, 64], w));
const t = cg.Tensor.fromHost(u16, [4, 64], { dtype: 'bfloat16' });
expectType<Tensor>()(t);
expectType<cg.Tensor>()(linear(t, [4, 64], w));
expectType<Promise<Tensor>>()(cg.linearAsync(t, [4, 64], w));
const options: LinearOptions = { outDtype: 'float16' };
cg.linear(f32, [4, 64], w, options);
// @ts-expect-error the named and the default export are the same checked function
linear(f32, [4, 64], w, { outDtype: 'float64' });
// @ts-expect-error likewise through the default export
cg.linear(f32, [4, 64], w, { threads: '2' });

// One library, not two: the default export's members are the named exports.
expectType<typeof linear>()(cg.linear);
expectType<typeof DenseWeight>()(cg.DenseWeight);
expectType<typeof safetensors>()(cg.safetensors);
expectType<typeof cg>()(ns.default);
expectType<typeof ns.backend>()(cg.backend);

declare const caught: unknown;
if (caught instanceof CgRangeError) expectType<ErrorCode>()(caught.code);
// @ts-expect-error only what lib/index.ts exports is public
cg.checkShape2;
// @ts-expect-error likewise for the named form
ns.MAX_RANK;
