/**
 * A type test that must fail: test/types/types.test.ts checks that tsc rejects this file with
 * exactly the errors marked `fails TS....` on their lines, so the type tests can fail, and fail
 * for the reason they say.
 */
import * as cg from 'compressed-gemm';
import { linearr } from 'compressed-gemm'; // fails TS2724 (no such export)
import { expectType } from './expect';

declare const f32: Float32Array;
const w = cg.DenseWeight.from(f32, [32, 64]);

expectType<cg.Tensor>()(cg.linear(f32, [4, 64], w)); // fails TS2554 (host arrays give host arrays)
expectType<cg.FloatArray>()(cg.linearAsync(f32, [4, 64], w)); // fails TS2554 (a Promise)
expectType<number | undefined>()(w.byteLength); // fails TS2554 (exact: assignable is not enough)
// @ts-expect-error a call that compiles makes the directive an error // fails TS2578
cg.linear(f32, [4, 64], w, { outDtype: 'float16' });
cg.linear(f32, [4, 64], w, { outDtype: 'float8' }); // fails TS2769 (no overload takes it)
void linearr;
