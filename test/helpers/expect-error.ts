/** Assertions on the library's typed errors: the class (TypeError/RangeError/Error) and the `code`. */

type ErrorClass = new (...args: never[]) => Error;

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}(${(e as { code?: unknown }).code}): ${e.message}`;
  return String(e);
}

function checkError(e: unknown, cls: ErrorClass, code: string, where: string): Error {
  if (!(e instanceof cls) || (e as { code?: unknown }).code !== code) {
    throw new Error(`${where}: expected a ${cls.name} with code ${code}, got ${describeError(e)}`);
  }
  // The class check above is what matters; these make a failure readable in jest's output too.
  expect(e).toBeInstanceOf(cls);
  expect((e as { code?: unknown }).code).toBe(code);
  expect(typeof (e as Error).message).toBe('string');
  expect((e as Error).message.length).toBeGreaterThan(0);
  return e as Error;
}

/** fn() must throw synchronously an instance of `cls` with `code`; returns the error. */
export function expectThrowsCode(fn: () => unknown, cls: ErrorClass, code: string): Error {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    return checkError(e, cls, code, 'thrown error');
  }
  throw new Error(`expected a ${cls.name} with code ${code}, but the call returned ${Object.prototype.toString.call(result)}`);
}

/**
 * fn() must return a promise (not throw synchronously) that rejects with an instance of `cls`
 * with `code`; returns the error.
 */
export async function expectRejectsCode(fn: () => Promise<unknown>, cls: ErrorClass, code: string): Promise<Error> {
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (e) {
    throw new Error(`expected a rejected promise, but the call threw synchronously: ${describeError(e)}`);
  }
  expect(typeof (p as { then?: unknown }).then).toBe('function');
  let value: unknown;
  try {
    value = await p;
  } catch (e) {
    return checkError(e, cls, code, 'rejection');
  }
  throw new Error(`expected a rejection with ${cls.name} ${code}, but the promise resolved to ${Object.prototype.toString.call(value)}`);
}

/** A call's outcome: null when it returns, else the thrown error's class name and code ("RangeError ERR_NATIVE"). */
export function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    return `${(e as Error).name} ${(e as { code?: string }).code}`;
  }
}
