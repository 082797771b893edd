/**
 * The type tests' only helper: exact type equality, as tsd's expectType does. Checked by tsc,
 * never run.
 */

/** true when A and B are the same type (not merely assignable: any, readonly and unions count). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * expectType<Expected>()(value) compiles only when value's type is exactly Expected; otherwise
 * tsc reports "Expected 2 arguments, but got 1" (TS2554) at the call.
 */
export declare function expectType<Expected>(): <Actual>(value: Actual, ...exact: Equal<Expected, Actual> extends true ? [] : [`not the expected type`]) => void;
