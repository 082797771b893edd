/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * The fuzz engine behind fuzz.test.ts. It runs in a child process (test/helpers/child.ts), which
 * hands it the library (`main(cg, config)`); it imports nothing from lib/ at run time.
 *
 * How it is built, so that a new function or a new kind of hostile value is one table entry:
 *   - Fixture: the valid inputs of one case (small shapes; values from the case's seed, each
 *     field from its own stream, so that two fixtures of one case are identical);
 *   - TARGETS: every public function and method. Each has a valid base call built from a
 *     fixture, and slots: the places in that call (an argument, an option, a field of a parts
 *     object, `this`) that take hostile values, each with the families of hostile values that
 *     fit it;
 *   - families: tables of hostile values. A hostile value has a name (what a reproduction
 *     prints), a builder from the slot's valid value, and what the library owes for it (Expect);
 *   - judge(): the outcome of one call against the contract.
 *
 * The contract (lib/errors.ts, README "API"): a call either returns, or throws (rejects, for the
 * async entry points) an Error whose `code` is one of ErrorCodes, never ERR_NATIVE (which means
 * lib/ let the bad input reach the addon's last-line checks); nothing crashes or hangs; an
 * exception thrown by the caller's own getter or Proxy trap may come back unchanged. Some
 * hostile values owe more (Expect): a given code (an `out` sharing memory with x: ERR_OVERLAP;
 * a detached array: ERR_DETACHED), a refusal (forged weights: ERR_WEIGHT), the same result as
 * the valid call (the same data in unusual clothes), the treatment of the same array undisguised
 * (a typed array whose prototype, `constructor` or `length` lie: refused, or read as what it
 * really is), what the method of its own class gives (a weight of another class as `this`), or,
 * when an update of the weight was started during the call, ERR_BUSY or the result with the
 * weight wholly before or wholly after the update. Whatever a call returns is used once (a
 * weight computes, an adapter applies), and no weight is left busy afterwards.
 *
 * A case is one (target, slot, hostile value) of the sweep, which covers every combination in
 * a fixed order, or (past the sweep) a random combination of one or two of them, drawn from the
 * seed. Progress goes to a log file, written synchronously, so that the parent can name the case
 * a crash or a hang happened in, and start again after it.
 */
import type * as CG from '../../lib';
import * as fs from 'fs';
import * as vm from 'vm';
import { MessageChannel, Worker } from 'worker_threads';

type Lib = typeof CG;

export interface Config {
  seed: number;
  /** First case to run (the parent restarts after a case that killed the process). */
  from: number;
  /** Random cases after the sweep, */
  randomCases: number;
  /** ... as many as run before this time (Date.now()); the sweep always runs whole. */
  randomDeadline: number;
  /** One line per event: 'T total', 'S i json' (case started), 'F json' (failure), 'E' (end). */
  logFile: string;
  /** An async call (and what it started) must settle within this. */
  caseTimeoutMs: number;
  /** A case that blocks the event loop this long is killed by the watchdog (logged 'H i'). */
  watchdogMs: number;
}

export interface Failure {
  i: number;
  target: string;
  slot: string;
  hostile: string;
  problem: string;
  /** The class of the problem, without details: what the parent groups by. */
  kind: string;
  error?: { name: string; code: unknown; message: string };
  base: string;
}

// ---- small tools -------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mix(...parts: Array<number | string>): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = String(p);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The intrinsic getters of typed arrays and DataViews: own `buffer`/`length` spoofs do not fool them. */
const TA_PROTO = Object.getPrototypeOf(Uint8Array.prototype);
const intrinsic = (proto: object, name: string) => Object.getOwnPropertyDescriptor(proto, name)!.get!;
const TA_BUFFER = intrinsic(TA_PROTO, 'buffer');
const TA_OFFSET = intrinsic(TA_PROTO, 'byteOffset');
const TA_BYTES = intrinsic(TA_PROTO, 'byteLength');
const DV_BUFFER = intrinsic(DataView.prototype, 'buffer');
const DV_OFFSET = intrinsic(DataView.prototype, 'byteOffset');
const DV_BYTES = intrinsic(DataView.prototype, 'byteLength');

function bytesOf(v: ArrayBufferView): Uint8Array {
  if (v instanceof DataView) return new Uint8Array(DV_BUFFER.call(v), DV_OFFSET.call(v), DV_BYTES.call(v));
  return new Uint8Array(TA_BUFFER.call(v), TA_OFFSET.call(v), TA_BYTES.call(v));
}

function hashBytes(v: ArrayBufferView): string {
  const b = bytesOf(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h >>> 0).toString(16);
}

/** The thrown value of a caller's own getter or trap: it may come back unchanged. */
const SENTINEL = new Error("fuzz sentinel: the caller's own getter threw this");
const SENTINEL_PRIMITIVE = 'fuzz sentinel string';

type TypedArray = Float32Array | Uint16Array | Uint8Array | Int32Array;
type TypedCtor = { new (n: number | ArrayBufferLike | ArrayLike<number>, o?: number, l?: number): TypedArray; BYTES_PER_ELEMENT: number; name: string; prototype: any };

function ctorOf(a: TypedArray): TypedCtor {
  return Object.getPrototypeOf(a).constructor as TypedCtor;
}

function detach(a: ArrayBufferView): void {
  const buf = a.buffer as ArrayBuffer;
  structuredClone(buf, { transfer: [buf] });
}

function detachViaPort(a: ArrayBufferView): void {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [a.buffer as ArrayBuffer]);
  port1.close();
  port2.close();
}

function copyOf(a: TypedArray): TypedArray {
  return a.slice() as TypedArray;
}

function resized(a: TypedArray, n: number): TypedArray {
  const r = new (ctorOf(a))(Math.max(0, n));
  r.set(a.subarray(0, Math.min(n, a.length)) as any);
  return r;
}

function spoofLength<T extends object>(a: T, n: number): T {
  Object.defineProperty(a, 'length', { value: n, configurable: true });
  return a;
}

function shared(a: TypedArray): TypedArray {
  const s = new (ctorOf(a))(new SharedArrayBuffer(a.byteLength));
  s.set(a as any);
  return s;
}

/** The 16/32/8-bit typed array of another type that hostile prototypes dress up. */
function otherCtor(c: TypedCtor): TypedCtor {
  if (c === (Float32Array as any)) return Uint16Array as any;
  if (c === (Uint16Array as any)) return Float32Array as any;
  if (c === (Int32Array as any)) return Float32Array as any;
  return Uint16Array as any;
}

// ---- what a call looks like, and where its slots are -----------------------------------------

interface Call {
  this?: any;
  args: any[];
}

type Step = string | number;

/** 'options.lora.A' / 'adapters[1].alpha' / 'xShape[0]' / 'this' -> steps from the call. */
function parsePath(path: string, params: string[]): Step[] {
  const parts = path.match(/[^.[\]]+/g) ?? [];
  const head = parts[0] ?? '';
  const steps: Step[] = head === 'this' ? ['this'] : ['args', params.indexOf(head)];
  if (head !== 'this' && params.indexOf(head) < 0) throw new Error(`fuzzer: no parameter ${head} in ${params.join(', ')}`);
  for (const p of parts.slice(1)) steps.push(/^\d+$/.test(p) ? Number(p) : p);
  return steps;
}

function getAt(call: Call, steps: Step[]): any {
  let v: any = call;
  for (const s of steps) {
    if (v === undefined || v === null) return undefined;
    v = v[s];
  }
  return v;
}

function setAt(call: Call, steps: Step[], value: any): void {
  let v: any = call;
  for (let i = 0; i < steps.length - 1; i++) {
    if (v[steps[i]] === undefined || v[steps[i]] === null) v[steps[i]] = typeof steps[i + 1] === 'number' ? [] : {};
    v = v[steps[i]];
  }
  v[steps[steps.length - 1]] = value;
}

/** The typed arrays a call holds (arguments, and fields of its plain objects and arrays). */
function arraysIn(call: Call, params: string[]): Array<{ path: string; array: TypedArray }> {
  const found: Array<{ path: string; array: TypedArray }> = [];
  const walk = (v: any, path: string, depth: number) => {
    if (ArrayBuffer.isView(v)) {
      found.push({ path, array: v as TypedArray });
      return;
    }
    if (depth > 2 || v === null || typeof v !== 'object') return;
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return;
    for (const k of Object.keys(v)) walk(v[k], Array.isArray(v) ? `${path}[${k}]` : `${path}.${k}`, depth + 1);
  };
  call.args.forEach((a, i) => walk(a, params[i], 0));
  return found;
}

// ---- fixtures --------------------------------------------------------------------------------

const M = 3;
const N = 8;
const K = 32;
const R = 2;
/** INT4 canonical/GPTQ/AWQ parts: G groups of 8 columns. */
const G = 4;
const BIG = { M: 64, N: 512, K: 1024, R: 32 };

/**
 * The valid inputs of one case. Every field is made on first use from its own random stream
 * (seed, field name), so two fixtures of one case hold equal values whatever order they are used
 * in. Arrays handed to calls are fresh copies: a call that detaches its argument does not reach
 * the fixture.
 */
class Fixture {
  private memo = new Map<string, any>();
  readonly weights: CG.Weight[] = [];
  constructor(readonly cg: Lib, readonly seed: number, readonly variant: number) {}

  rng(name: string): () => number {
    return mulberry32(mix(this.seed, name));
  }

  private once<T>(name: string, make: () => T): T {
    if (!this.memo.has(name)) {
      const v = make();
      if (v instanceof this.cg.Weight) this.weights.push(v);
      this.memo.set(name, v);
    }
    return this.memo.get(name);
  }

  floats(name: string, n: number, scale = 1): Float32Array {
    return this.once(`floats ${name} ${n}`, () => {
      const r = this.rng(name);
      return Float32Array.from({ length: n }, () => (r() - 0.5) * scale);
    }).slice();
  }

  /** bfloat16 bits of random floats. */
  bf16(name: string, n: number): Uint16Array {
    const f = this.floats(name, n);
    const u = new Uint32Array(f.buffer);
    return Uint16Array.from(u, (b) => b >>> 16);
  }

  x32(): Float32Array {
    return this.floats('x', M * K);
  }
  x16(): Uint16Array {
    return this.bf16('x16', M * K);
  }
  wData(): Float32Array {
    return this.floats('w', N * K);
  }
  /** A 2:4 matrix (the first two of every four columns kept). */
  wData24(): Float32Array {
    const w = this.wData();
    for (let i = 0; i < w.length; i++) if (i % 4 >= 2) w[i] = 0;
    return w;
  }
  bias(): Float32Array {
    return this.floats('bias', N);
  }

  dense(): CG.DenseWeight {
    return this.once('dense', () => this.cg.DenseWeight.from(this.wData(), [N, K]));
  }
  dense16(): CG.DenseWeight {
    return this.once('dense16', () => this.cg.DenseWeight.from(this.wData(), [N, K], { dtype: 'bfloat16' }));
  }
  sparse(): CG.Sparse24Weight {
    return this.once('sparse', () => this.cg.Sparse24Weight.prune(this.wData(), [N, K]));
  }
  int4(): CG.Int4Weight {
    return this.once('int4', () => this.cg.Int4Weight.quantize(this.wData(), [N, K], { groupSize: 32, symmetric: false, scaleDtype: 'float32' }));
  }
  int4act(): CG.Int4Weight {
    return this.once('int4act', () => this.cg.Int4Weight.fromCanonical({ ...this.int4Parts(), gIdx: this.gIdx(true) }, [N, K]));
  }
  fp8(): CG.Fp8Weight {
    return this.once('fp8', () => this.cg.Fp8Weight.quantize(this.wData(), [N, K]));
  }
  fp8block(): CG.Fp8Weight {
    return this.once('fp8block', () => this.cg.Fp8Weight.quantize(this.wData(), [N, K], { format: 'e5m2', scaling: { block: [4, 16] } }));
  }

  static readonly WEIGHTS = ['dense', 'dense16', 'sparse', 'int4', 'int4act', 'fp8', 'fp8block'] as const;
  weight(which: (typeof Fixture.WEIGHTS)[number] = Fixture.WEIGHTS[this.variant % Fixture.WEIGHTS.length]): CG.Weight {
    return (this as any)[which]();
  }

  adapter(): CG.LoraAdapter {
    return this.once('adapter', () => new this.cg.LoraAdapter({ A: this.floats('la', R * K), B: this.floats('lb', N * R), alpha: 0.5 }, [N, K]));
  }
  factors(): { A: Float32Array; B: Float32Array; alpha: number } {
    return { A: this.floats('fa', 3 * K), B: this.floats('fb', N * 3), alpha: 0.25 };
  }

  int4Parts(): { qweight: Uint8Array; scales: Float32Array; zeros: Uint8Array } {
    const r = this.rng('int4 parts');
    return {
      qweight: Uint8Array.from({ length: N * (K / 2) }, () => Math.floor(r() * 256)),
      scales: Float32Array.from({ length: N * G }, () => 0.01 + r()),
      zeros: Uint8Array.from({ length: N * G }, () => Math.floor(r() * 16)),
    };
  }
  /** A GPTQ g_idx: groups of 8 columns, shuffled (act-order) or in order. */
  gIdx(shuffled: boolean): Int32Array {
    const g = Int32Array.from({ length: K }, (_, k) => Math.floor(k / (K / G)));
    if (shuffled) {
      const r = this.rng('gidx');
      for (let i = K - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [g[i], g[j]] = [g[j], g[i]];
      }
    }
    return g;
  }
  packedParts(kind: 'gptq' | 'awq'): { qweight: Int32Array; qzeros: Int32Array; scales: Float32Array } {
    const r = this.rng(`${kind} parts`);
    const words = (n: number) => Int32Array.from({ length: n }, () => (r() * 0x100000000) | 0);
    return { qweight: words((N * K) / 8), qzeros: words((G * N) / 8), scales: Float32Array.from({ length: G * N }, () => 0.01 + r()) };
  }
  codes(): Uint8Array {
    const r = this.rng('codes');
    return Uint8Array.from({ length: N * K }, () => {
      const c = Math.floor(r() * 256);
      return (c & 0x7f) === 0x7f ? 0 : c;
    });
  }

  /** A valid safetensors file: three tensors and metadata. */
  safetensors(): Uint8Array {
    const tensors: Array<[string, string, number[], Uint8Array]> = [
      ['a', 'F32', [2, 3], new Uint8Array(this.floats('st a', 6).buffer)],
      ['b', 'I32', [4], new Uint8Array(Int32Array.of(1, -2, 3, 1 << 30).buffer)],
      ['c', 'F16', [3], new Uint8Array(Uint16Array.of(0x3c00, 0xbc00, 0x7c00).buffer)],
    ];
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let off = 0;
    for (const [name, dtype, shape, bytes] of tensors) {
      header[name] = { dtype, shape, data_offsets: [off, off + bytes.length] };
      off += bytes.length;
    }
    let json = JSON.stringify(header);
    while ((8 + json.length) % 8 !== 0) json += ' ';
    const out = new Uint8Array(8 + json.length + off);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(new TextEncoder().encode(json), 8);
    let p = 8 + json.length;
    for (const t of tensors) {
      out.set(t[3], p);
      p += t[3].length;
    }
    return out;
  }

  // Big weights, for the races with lowRankUpdateAsync (a call must overlap the update).
  bigX(): Float32Array {
    return this.floats('big x', BIG.M * BIG.K);
  }
  bigWeight(which: 'dense' | 'sparse' | 'int4' | 'fp8'): CG.Weight {
    return this.once(`big ${which}`, () => {
      const d = this.floats('big w', BIG.N * BIG.K);
      const s: [number, number] = [BIG.N, BIG.K];
      if (which === 'dense') return this.cg.DenseWeight.from(d, s);
      if (which === 'sparse') return this.cg.Sparse24Weight.prune(d, s);
      if (which === 'int4') return this.cg.Int4Weight.quantize(d, s, { groupSize: 128 });
      return this.cg.Fp8Weight.quantize(d, s, { scaling: { block: [128, 128] } });
    });
  }
}

// ---- expectations and hostile values ----------------------------------------------------------

interface Expect {
  /** Success is a failure: the call must throw (reject). */
  mustThrow?: boolean;
  /** Success is a failure too: the value is valid, in unusual clothes. */
  mustSucceed?: boolean;
  /** When it throws, the code must be one of these. */
  codes?: string[];
  /** When it succeeds, the result must equal the valid call's. */
  same?: boolean;
  /** An update of the call's weight was started during the call. */
  race?: boolean;
  /** When it succeeds, the same call with the hostile value's `plain` form must succeed with the same result. */
  asPlain?: boolean;
  /** (`this` of a method) When it succeeds, the method of the object's own class must give the same result. */
  asOwnClass?: boolean;
}

interface Ctx {
  cg: Lib;
  f: Fixture;
  call: Call;
  target: Target;
  /** Async work the hostile value started: settled before the case is judged. */
  later: Array<Promise<unknown>>;
  rng: () => number;
}

interface Hostile {
  /** What the reproduction prints: the value, or how it was made. */
  name: string;
  make(base: any, c: Ctx): any;
  expect?: Expect;
  /** The same value without its disguise (for Expect.asPlain). */
  plain?(base: any, c: Ctx): any;
  /**
   * Making it calls a class's private constructor: any throw there is the library declining to
   * be forged (a fine outcome), not the fuzzer's trouble.
   */
  forges?: boolean;
}

const SAME: Expect = { same: true };
const AS_PLAIN: Expect = { asPlain: true };
const VALID: Expect = { same: true, mustSucceed: true };
const DETACHED: Expect = { mustThrow: true, codes: ['ERR_DETACHED'] };
const OVERLAP: Expect = { mustThrow: true, codes: ['ERR_OVERLAP'] };
const FORGED_WEIGHT: Expect = { mustThrow: true, codes: ['ERR_WEIGHT'] };

const v = (name: string, value: () => any, expect?: Expect): Hostile => ({ name, make: () => value(), expect });

/** Wrong kinds of values: tried in every slot. */
const UNIVERSAL: Hostile[] = [
  v('undefined', () => undefined),
  v('null', () => null),
  v('true', () => true),
  v('0', () => 0),
  v('-0', () => -0),
  v('NaN', () => NaN),
  v('-1', () => -1),
  v('1.5', () => 1.5),
  v('Infinity', () => Infinity),
  v('2 ** 40', () => 2 ** 40),
  v('1n (a BigInt)', () => 1n),
  v("Symbol('fuzz')", () => Symbol('fuzz')),
  v("''", () => ''),
  v("'float32'", () => 'float32'),
  v('{}', () => ({})),
  v('[]', () => []),
  v('() => 0', () => () => 0),
  v('Object.create(null)', () => Object.create(null)),
  v("a Proxy whose every trap throws the caller's own error", () =>
    new Proxy({}, Object.fromEntries(['get', 'has', 'getPrototypeOf', 'ownKeys', 'getOwnPropertyDescriptor', 'set', 'apply'].map((t) => [t, () => { throw SENTINEL; }])))),
  v("an object whose toString / valueOf / Symbol.toPrimitive throw the caller's own error", () => ({
    [Symbol.toPrimitive]() { throw SENTINEL; },
    toString() { throw SENTINEL; },
    valueOf() { throw SENTINEL; },
  })),
  v('a cyclic object ({ self })', () => {
    const o: any = { a: 1 };
    o.self = o;
    return o;
  }),
  v("new String('x')", () => new String('x')),
  v('Object(1n) (a boxed BigInt)', () => Object(1n)),
];

/**
 * A typed array in disguise: its prototype, `constructor` or `length` lie about what it is. The
 * library must see it for what it is (its intrinsic type and length): refuse it, or treat it
 * exactly as the same array undisguised (`plain`).
 */
function disguised(name: string, build: (b: TypedArray) => { plain: TypedArray; disguise: (a: TypedArray) => any }): Hostile {
  return {
    name,
    make: (b) => { const { plain, disguise } = build(b); return disguise(plain); },
    plain: (b) => build(b).plain,
    expect: AS_PLAIN,
  };
}

/** Typed-array slots: the valid array made hostile. */
function typedFamily(): Hostile[] {
  const h: Hostile[] = [
    { name: 'Object.create(T.prototype): passes instanceof, is no typed array', make: (b) => Object.create(ctorOf(b).prototype) },
    { name: 'new Proxy(array, {})', make: (b) => new Proxy(b, {}), expect: SAME },
    { name: 'detached (its ArrayBuffer transferred with structuredClone)', make: (b) => { detach(b); return b; }, expect: DETACHED },
    { name: 'detached (its ArrayBuffer transferred through MessageChannel.postMessage)', make: (b) => { detachViaPort(b); return b; }, expect: DETACHED },
    {
      name: 'detached, with own `buffer` (a live ArrayBuffer), `byteLength` and `length` spoofed to look attached',
      make: (b) => {
        const n = b.length;
        const bytes = b.byteLength;
        detach(b);
        Object.defineProperty(b, 'buffer', { value: new ArrayBuffer(bytes) });
        Object.defineProperty(b, 'byteLength', { value: bytes });
        return spoofLength(b, n);
      },
      expect: DETACHED,
    },
    disguised('own `length` spoofed: 7 elements more than it says', (b) => ({ plain: resized(b, b.length + 7), disguise: (a) => spoofLength(a, b.length) })),
    disguised('own `length` spoofed: 1 element fewer than it says', (b) => ({ plain: resized(b, b.length - 1), disguise: (a) => spoofLength(a, b.length) })),
    {
      name: 'own `length` getter that detaches the array when read (after the detached check)',
      make: (b) => {
        const n = b.length;
        let reads = 0;
        Object.defineProperty(b, 'length', { get() { if (reads++ === 0) detach(b); return n; } });
        return b;
      },
      expect: SAME,
    },
    disguised('swapped prototype: a typed array of another type U with T.prototype, same element count', (b) => ({
      plain: new (otherCtor(ctorOf(b)))(b.length),
      disguise: (a) => Object.setPrototypeOf(a, ctorOf(b).prototype),
    })),
    disguised("swapped prototype (U with T.prototype) and own `length` spoofed so that its byte size is what T's would be", (b) => {
      const O = otherCtor(ctorOf(b));
      const n = (b.length * b.BYTES_PER_ELEMENT) / O.BYTES_PER_ELEMENT;
      return { plain: new O(Number.isInteger(n) ? n : b.length), disguise: (a) => spoofLength(Object.setPrototypeOf(a, ctorOf(b).prototype), b.length) };
    }),
    disguised("a typed array of another type U with own `constructor` = T and `length` spoofed (byte size is T's)", (b) => {
      const O = otherCtor(ctorOf(b));
      const n = (b.length * b.BYTES_PER_ELEMENT) / O.BYTES_PER_ELEMENT;
      return { plain: new O(Number.isInteger(n) ? n : b.length), disguise: (a) => spoofLength(Object.defineProperty(a, 'constructor', { value: ctorOf(b) }), b.length) };
    }),
    { name: 'class Sub extends T {} with the same contents', make: (b) => { const Sub: any = class Sub extends (ctorOf(b) as any) {}; return new Sub(b); }, expect: SAME },
    { name: 'the same contents over a SharedArrayBuffer', make: (b) => shared(b), expect: VALID },
    {
      name: 'the same contents in a view at byte offset 8 of a larger ArrayBuffer',
      make: (b) => {
        const a = new (ctorOf(b))(new ArrayBuffer(b.byteLength + 16), 8, b.length);
        a.set(b as any);
        return a;
      },
      expect: VALID,
    },
    { name: 'Object.preventExtensions(array) (same contents)', make: (b) => Object.preventExtensions(b), expect: VALID },
    { name: 'own `buffer` property spoofed (another ArrayBuffer), same contents', make: (b) => Object.defineProperty(b, 'buffer', { value: new ArrayBuffer(b.byteLength) }), expect: SAME },
    { name: 'own `byteOffset` and `byteLength` spoofed (0 and 1), same contents', make: (b) => Object.defineProperties(b, { byteOffset: { value: 0 }, byteLength: { value: 1 } }), expect: SAME },
    { name: 'the same contents in a typed array of another realm (vm.runInNewContext)', make: (b) => vm.runInNewContext(`new ${ctorOf(b).name}(src)`, { src: Array.from(b as any) }), expect: SAME },
    { name: 'length 0', make: (b) => new (ctorOf(b))(0) },
    { name: 'one element too many', make: (b) => resized(b, b.length + 1) },
    { name: 'one element too few', make: (b) => resized(b, b.length - 1) },
    { name: 'a plain Array of the same numbers', make: (b) => Array.from(b as any), expect: SAME },
    { name: 'an ArrayBuffer of the same bytes', make: (b) => copyOf(b).buffer, expect: SAME },
    { name: 'a DataView of the same bytes', make: (b) => new DataView(copyOf(b).buffer), expect: SAME },
    { name: 'a Float64Array of the same numbers', make: (b) => Float64Array.from(b as any) },
    { name: 'a Uint32Array of the same numbers', make: (b) => Uint32Array.from(b as any, (x: number) => Math.abs(x) >>> 0) },
    { name: 'a Buffer of the same bytes', make: (b) => Buffer.from(copyOf(b).buffer), expect: SAME },
  ];
  if (typeof (ArrayBuffer.prototype as any).transfer === 'function') {
    h.push({ name: 'detached (ArrayBuffer.prototype.transfer)', make: (b) => { (b.buffer as any).transfer(); return b; }, expect: DETACHED });
  }
  return h;
}

/** Float contents: valid arrays with values at the edges. */
const FLOAT_CONTENTS: Hostile[] = [
  { name: 'all NaN', make: (b) => (b instanceof Float32Array ? b.fill(NaN) : b.fill(0x7fc0)) },
  { name: 'all +Infinity', make: (b) => (b instanceof Float32Array ? b.fill(Infinity) : b.fill(0x7f80)) },
  { name: 'all -0', make: (b) => (b instanceof Float32Array ? b.fill(-0) : b.fill(0x8000)) },
  { name: 'all 3.4e38 (near the float32 maximum)', make: (b) => (b instanceof Float32Array ? b.fill(3.4e38) : b.fill(0x7f7f)) },
  { name: 'all 1e-45 (denormals)', make: (b) => (b instanceof Float32Array ? b.fill(1e-45) : b.fill(0x0001)) },
];

/** Arrays whose contents lib/ checks (zero points, FP8 codes): bad contents, and methods that lie about them. */
function lyingArray(b: TypedArray, fillWith: number): TypedArray {
  const a = copyOf(b).fill(fillWith);
  for (const m of ['findIndex', 'indexOf', 'some', 'every', 'find', 'includes', 'filter', 'forEach', 'reduce', 'map', 'slice', 'subarray', Symbol.iterator]) {
    const real = (ctorOf(b).prototype as any)[m];
    Object.defineProperty(a, m, {
      value: m === 'findIndex' || m === 'indexOf' ? () => -1 : m === 'some' || m === 'includes' ? () => false : m === 'every' ? () => true : real,
    });
  }
  return a;
}

function contentFamily(label: string, bad: number, code: string): Hostile[] {
  return [
    { name: `${label} = ${bad} everywhere`, make: (b) => copyOf(b).fill(bad), expect: { mustThrow: true, codes: [code] } },
    { name: `${label} = ${bad} everywhere, with own findIndex/some/every/... that report nothing wrong`, make: (b) => lyingArray(b, bad), expect: { mustThrow: true, codes: [code] } },
    {
      name: `${label} = ${bad} everywhere, in a subclass whose findIndex/some/every report nothing wrong`,
      make: (b) => {
        const Liar: any = class Liar extends (ctorOf(b) as any) {
          findIndex() { return -1; }
          indexOf() { return -1; }
          some() { return false; }
          every() { return true; }
        };
        return new Liar(copyOf(b).fill(bad));
      },
      expect: { mustThrow: true, codes: [code] },
    },
  ];
}

const SCALE_CONTENTS: Hostile[] = [
  { name: 'scales all NaN', make: (b) => (b instanceof Float32Array ? b.fill(NaN) : b.fill(0x7e00)), expect: { mustThrow: true, codes: ['ERR_SCALE'] } },
  { name: 'scales all 0', make: (b) => b.fill(0), expect: { mustThrow: true, codes: ['ERR_SCALE'] } },
  { name: 'scales all -1', make: (b) => (b instanceof Float32Array ? b.fill(-1) : b.fill(0xbc00)), expect: { mustThrow: true, codes: ['ERR_SCALE'] } },
  { name: 'scales all +Infinity', make: (b) => (b instanceof Float32Array ? b.fill(Infinity) : b.fill(0x7c00)), expect: { mustThrow: true, codes: ['ERR_SCALE'] } },
];

const GIDX_CONTENTS: Hostile[] = [
  { name: 'gIdx with an entry -1', make: (b) => { b[0] = -1; return b; }, expect: { mustThrow: true, codes: ['ERR_G_IDX'] } },
  { name: `gIdx with an entry ${G} (one past the groups)`, make: (b) => { b[0] = G; return b; }, expect: { mustThrow: true, codes: ['ERR_G_IDX'] } },
  { name: 'gIdx with an entry 2 ** 31 - 1', make: (b) => { b[0] = 2 ** 31 - 1; return b; }, expect: { mustThrow: true, codes: ['ERR_G_IDX'] } },
  { name: 'gIdx all 0 (one group gets every column)', make: (b) => b.fill(0), expect: { mustThrow: true, codes: ['ERR_G_IDX'] } },
];

/** Numbers where an integer is expected (threads, groupSize, indices). */
function intFamily(base: () => number): Hostile[] {
  return [
    v('NaN', () => NaN), v('Infinity', () => Infinity), v('-Infinity', () => -Infinity), v('-0', () => -0), v('0', () => 0), v('-1', () => -1),
    v('0.5', () => 0.5), v('base + 0.5', () => base() + 0.5), v('2 ** 31 - 1', () => 2 ** 31 - 1), v('2 ** 31', () => 2 ** 31), v('2 ** 32 + 1', () => 2 ** 32 + 1),
    v('2 ** 40', () => 2 ** 40), v('2 ** 53', () => 2 ** 53), v('2 ** 53 + 2', () => 2 ** 53 + 2), v('Number.MAX_VALUE', () => Number.MAX_VALUE), v('1e39', () => 1e39),
    v('Number.MIN_VALUE', () => Number.MIN_VALUE), v('65536', () => 65536), v('65537', () => 65537), v('BigInt(base)', () => BigInt(base())), v('String(base)', () => String(base())),
    v('new Number(base)', () => new Number(base())), v('{ valueOf: () => base }', () => ({ valueOf: () => base() })), v('[base]', () => [base()]),
  ];
}

/** Numbers where a real scale is expected (alpha). */
const REAL_FAMILY: Hostile[] = [
  v('1e39 (beyond float32)', () => 1e39), v('-1e39', () => -1e39), v('3.5e38 (rounds to float32 Infinity)', () => 3.5e38), v('3.4e38', () => 3.4e38),
  v('1e-46 (rounds to float32 0)', () => 1e-46), v('Number.MAX_VALUE', () => Number.MAX_VALUE), v('NaN', () => NaN), v('Infinity', () => Infinity),
  v('-Infinity', () => -Infinity), v('-0', () => -0), v('0', () => 0), v('2n', () => 2n), v("'0.5'", () => '0.5'), v('new Number(0.5)', () => new Number(0.5)),
  v('{ valueOf: () => 0.5 }', () => ({ valueOf: () => 0.5 })),
];

/** Names from a fixed set (dtype, format, isa, ...). */
function enumFamily(valid: string[]): Hostile[] {
  const first = valid[0];
  return [
    ...valid.map((x) => v(`'${x}' (valid)`, () => x)),
    v(`'${first.toUpperCase()}'`, () => first.toUpperCase()), v(`' ${first}'`, () => ` ${first}`), v(`'${first}\\0'`, () => `${first}\0`),
    v("'__proto__'", () => '__proto__'), v("'constructor'", () => 'constructor'), v("'toString'", () => 'toString'), v("'hasOwnProperty'", () => 'hasOwnProperty'),
    v(`new String('${first}')`, () => new String(first)), v(`['${first}']`, () => [first]), v(`{ toString: () => '${first}' }`, () => ({ toString: () => first })),
    v('1', () => 1), v('2n', () => 2n),
  ];
}

const BOOL_FAMILY: Hostile[] = [v("'true'", () => 'true'), v('1', () => 1), v('0', () => 0), v('new Boolean(false)', () => new Boolean(false)), v("'false'", () => 'false')];

/** Shapes [a, b]. */
function shapeFamily(): Hostile[] {
  const mk = (name: string, f: (s: number[]) => any, expect?: Expect): Hostile => ({ name, make: (b: number[]) => f([...b]), expect });
  return [
    mk('[a] (one dimension)', (s) => [s[0]]), mk('[a, b, 1]', (s) => [...s, 1]), mk('[b, a] (transposed)', (s) => [s[1], s[0]]),
    mk('[NaN, b]', (s) => [NaN, s[1]]), mk('[a, Infinity]', (s) => [s[0], Infinity]), mk('[-0, b]', (s) => [-0, s[1]]), mk('[0, b]', (s) => [0, s[1]]),
    mk('[-1, b]', (s) => [-1, s[1]]), mk('[a, 1.5]', (s) => [s[0], 1.5]), mk('[2 ** 31, b]', (s) => [2 ** 31, s[1]]), mk('[2 ** 31 - 1, b] (product past 2^31)', (s) => [2 ** 31 - 1, s[1]]),
    mk('[2 ** 40, 2 ** 40]', () => [2 ** 40, 2 ** 40]), mk('[2 ** 53, b]', (s) => [2 ** 53, s[1]]), mk('[Number.MAX_VALUE, b]', (s) => [Number.MAX_VALUE, s[1]]),
    mk("['a', b] (a numeric string)", (s) => [String(s[0]), s[1]]), mk('[BigInt(a), b]', (s) => [BigInt(s[0]), s[1]]), mk('[null, b]', (s) => [null, s[1]]),
    mk('[a, undefined]', (s) => [s[0], undefined]), mk('[new Number(a), b]', (s) => [new Number(s[0]), s[1]]),
    mk('new Proxy([a, b], {})', (s) => new Proxy(s, {}), SAME),
    mk('a Proxy of [a, b] whose first read of each index is right and later reads are 2 ** 40', (s) => {
      const seen = new Set<PropertyKey>();
      return new Proxy(s, { get(t, k, r) { if (k === '0' || k === '1') { if (seen.has(k)) return 2 ** 40; seen.add(k); } return Reflect.get(t, k, r); } });
    }, SAME),
    mk('[a, b] with index getters: right on the first read, NaN later', (s) => {
      const a: any[] = [];
      s.forEach((d, i) => { let n = 0; Object.defineProperty(a, i, { get: () => (n++ === 0 ? d : NaN), enumerable: true }); });
      return a;
    }, SAME),
    mk('{ 0: a, 1: b, length: 2 } (array-like)', (s) => ({ 0: s[0], 1: s[1], length: 2 })), mk('Int32Array.of(a, b)', (s) => Int32Array.of(s[0], s[1])),
    mk('class Shape extends Array: [a, b]', (s) => { class Shape extends Array {} return Shape.from(s); }, SAME),
    mk('[, b] (a hole)', (s) => { const a = [] as number[]; a[1] = s[1]; return a; }),
    mk('Object.freeze([a, b])', (s) => Object.freeze(s), VALID),
    mk("[a, b] with an index getter that throws the caller's own error", () => { const a: any[] = [0, 0]; Object.defineProperty(a, 0, { get() { throw SENTINEL; } }); return a; }),
  ];
}

function blockSizeFamily(): Hostile[] {
  return [
    ...intFamily(() => 16),
    v('[16, 2 ** 40]', () => [16, 2 ** 40]), v('[2 ** 40, 16]', () => [2 ** 40, 16]), v('[0, 16]', () => [0, 16]), v('[16]', () => [16]),
    v('[16, 16, 16]', () => [16, 16, 16]), v('[NaN, 16]', () => [NaN, 16]), v("['16', 16]", () => ['16', 16]), v('[16.5, 16]', () => [16.5, 16]),
    v('[16, 2 ** 31]', () => [16, 2 ** 31]),
  ];
}

function fp8FormatFamily(): Hostile[] {
  return [...enumFamily(['e4m3', 'e5m2']), v('a cyclic object', () => { const o: any = {}; o.o = o; return o; }), v('{ x: 1n }', () => ({ x: 1n }))];
}

function scalingFamily(): Hostile[] {
  return [
    ...enumFamily(['channel', 'tensor']),
    v('{ block: [2 ** 40, 1] }', () => ({ block: [2 ** 40, 1] })), v('{ block: [1, 2 ** 40] }', () => ({ block: [1, 2 ** 40] })),
    v('{ block: [2 ** 31, 2 ** 31] }', () => ({ block: [2 ** 31, 2 ** 31] })), v('{ block: [0, 1] }', () => ({ block: [0, 1] })),
    v('{ block: [1.5, 2] }', () => ({ block: [1.5, 2] })), v(`{ block: [${N + 100}, ${K + 100}] } (one block, valid)`, () => ({ block: [N + 100, K + 100] })),
    v('{ block: [1, 1] } (valid)', () => ({ block: [1, 1] })), v("{ block: 'x' }", () => ({ block: 'x' })), v('{ block: [1n, 1] }', () => ({ block: [1n, 1] })),
    v('{ block: [4, 16, 1] }', () => ({ block: [4, 16, 1] })), v('{}', () => ({})), v('{ other: 1n }', () => ({ other: 1n })),
    v('a cyclic object', () => { const o: any = {}; o.self = o; return o; }),
    v('{ block: a Proxy of [4, 16] that reads right once, then 2 ** 40 }', () => {
      const seen = new Set<PropertyKey>();
      return { block: new Proxy([4, 16], { get(t, k, r) { if (k === '0' || k === '1') { if (seen.has(k)) return 2 ** 40; seen.add(k); } return Reflect.get(t, k, r); } }) };
    }),
  ];
}

// ---- weights, adapters, `this` ----------------------------------------------------------------

/** The arguments a weight class's (private) constructor takes, with a packed buffer of `bytes`. */
function forgedCtorArgs(cg: Lib, w: CG.Weight, bytes: number): [any, any[]] {
  const shape = [...w.shape];
  if (w instanceof cg.DenseWeight) return [cg.DenseWeight, [shape, w.dtype, new ArrayBuffer(bytes)]];
  if (w instanceof cg.Sparse24Weight) return [cg.Sparse24Weight, [shape, w.dtype, new ArrayBuffer(bytes)]];
  if (w instanceof cg.Int4Weight) return [cg.Int4Weight, [shape, { packed: new ArrayBuffer(bytes), perm: null, gIdx: null, group: w.groupSize }, w.symmetric, w.scaleDtype]];
  const f = w as CG.Fp8Weight;
  return [cg.Fp8Weight, [shape, f.fp8Format, f.scaling, { packed: new ArrayBuffer(bytes), bn: 1, bk: shape[1] }]];
}

function weightFamily(): Hostile[] {
  return [
    { name: '{ ...w } (a spread copy)', make: (w) => ({ ...w }), expect: FORGED_WEIGHT },
    { name: 'Object.create(w)', make: (w) => Object.create(w), expect: FORGED_WEIGHT },
    { name: 'new Proxy(w, {})', make: (w) => new Proxy(w, {}), expect: FORGED_WEIGHT },
    { name: "Object.setPrototypeOf({ shape, dtype, format }, w's prototype)", make: (w) => Object.setPrototypeOf({ shape: w.shape, dtype: w.dtype, format: w.format }, Object.getPrototypeOf(w)), expect: FORGED_WEIGHT },
    { name: "w's class itself", make: (w) => Object.getPrototypeOf(w).constructor, expect: FORGED_WEIGHT },
    { name: "w's prototype", make: (w) => Object.getPrototypeOf(w), expect: FORGED_WEIGHT },
    {
      name: "Reflect.construct(w's class, [shape, ..., a caller-owned ArrayBuffer of the right size])",
      make: (w, c) => { const [C, a] = forgedCtorArgs(c.cg, w, w.byteLength); return Reflect.construct(C, a); },
      expect: FORGED_WEIGHT,
      forges: true,
    },
    {
      name: "Reflect.construct(w's class, [shape, ..., a caller-owned ArrayBuffer of 4 bytes])",
      make: (w, c) => { const [C, a] = forgedCtorArgs(c.cg, w, 4); return Reflect.construct(C, a); },
      expect: FORGED_WEIGHT,
      forges: true,
    },
    { name: "Reflect.construct(cg.Weight, [shape, 'float32']) (the abstract base)", make: (w, c) => Reflect.construct(c.cg.Weight, [[...w.shape], 'float32']), expect: FORGED_WEIGHT, forges: true },
    {
      name: "class Fake extends cg.Weight { format = 'dense' }, constructed with w's shape",
      make: (w, c) => { const Fake: any = class extends (c.cg.Weight as any) { format = 'dense'; byteLength = 0; toDense() { return new Float32Array(0); } }; return new Fake([...w.shape], 'float32'); },
      expect: FORGED_WEIGHT,
      forges: true,
    },
    { name: `a real DenseWeight of another shape [${N}, ${K + 8}]`, make: (_w, c) => c.cg.DenseWeight.from(new Float32Array(N * (K + 8)), [N, K + 8]) },
    ...Fixture.WEIGHTS.map((which) => ({ name: `the fixture's ${which} weight (valid)`, make: (_w: any, c: Ctx) => c.f.weight(which) })),
    {
      name: 'the weight while a lowRankUpdateAsync of it is in flight',
      make: (w, c) => { c.later.push(startUpdate(c, w)); return w; },
      expect: { mustThrow: true, codes: ['ERR_BUSY'] },
    },
  ];
}

/** For lowRankUpdate's `w`: a weight that async calls are reading. */
const READ_WEIGHT: Hostile = {
  name: 'the weight while a linearAsync reading it is in flight',
  make: (w, c) => {
    const K2 = w.shape[1];
    c.later.push(c.cg.linearAsync(new Float32Array(64 * K2), [64, K2], w).catch(() => undefined));
    return w;
  },
  expect: { mustThrow: true, codes: ['ERR_BUSY'] },
};

/**
 * Starts lowRankUpdateAsync(w, B, A) and returns its settled promise: rank 4, or rank 64 for the
 * big weights (so that the update runs long enough for a call to overlap it).
 */
function startUpdate(c: Ctx, w: CG.Weight): Promise<unknown> {
  const [n, k] = w.shape;
  const rank = n >= BIG.N ? 64 : 4;
  const r = c.f.rng(`update ${n} ${k}`);
  const B = Float32Array.from({ length: n * rank }, () => r() - 0.5);
  const A = Float32Array.from({ length: rank * k }, () => r() - 0.5);
  try {
    return c.cg.lowRankUpdateAsync(w, B, A, { alpha: 1, threads: 1 }).catch(() => undefined);
  } catch {
    return Promise.resolve();
  }
}

/**
 * An adapter (LoraAdapter or { A, B, alpha }). `owed`: whether forged ones owe a refusal (not
 * where every adapter is refused anyway: linearMultiLora's lora option).
 */
function adapterFamily(owed = true): Hostile[] {
  const REFUSED: Expect | undefined = owed ? { mustThrow: true } : undefined;
  const DETACHED_: Expect | undefined = owed ? DETACHED : undefined;
  return [
    { name: '{ ...adapter } (a spread copy)', make: (_b, c) => ({ ...c.f.adapter() }), expect: REFUSED },
    { name: 'Object.create(adapter)', make: (_b, c) => Object.create(c.f.adapter()), expect: REFUSED },
    { name: 'new Proxy(adapter, {})', make: (_b, c) => new Proxy(c.f.adapter(), {}), expect: REFUSED },
    {
      name: 'Object.setPrototypeOf({ shape, rank: 65537, alpha: 1e39 }, LoraAdapter.prototype)',
      make: (_b, c) => Object.setPrototypeOf({ shape: [N, K], rank: 65537, alpha: 1e39 }, c.cg.LoraAdapter.prototype),
      expect: REFUSED,
    },
    { name: 'a LoraAdapter made for another shape', make: (_b, c) => new c.cg.LoraAdapter({ A: new Float32Array(K), B: new Float32Array(N + 8) }, [N + 8, K]), expect: REFUSED },
    { name: 'a LoraAdapter of rank 65537 (past 65,536)', make: (_b, c) => new c.cg.LoraAdapter({ A: new Float32Array(65537 * K), B: new Float32Array(N * 65537) }, [N, K]) },
    { name: 'a LoraAdapter with alpha 1e39 (beyond float32)', make: (_b, c) => new c.cg.LoraAdapter({ A: new Float32Array(K), B: new Float32Array(N), alpha: 1e39 }, [N, K]) },
    { name: '{ A, B, alpha: 1e39 }', make: (_b, c) => ({ ...c.f.factors(), alpha: 1e39 }) },
    { name: '{ A: B, B: A } (swapped factors)', make: (_b, c) => { const f = c.f.factors(); return { A: f.B, B: f.A }; } },
    { name: '{ A: empty, B: empty }', make: () => ({ A: new Float32Array(0), B: new Float32Array(0) }) },
    { name: 'factors of rank 65537 (past 65,536)', make: () => ({ A: new Float32Array(65537 * K), B: new Float32Array(N * 65537) }) },
    { name: "{ A, B } with A's buffer detached", make: (_b, c) => { const f = c.f.factors(); detach(f.A); return f; }, expect: DETACHED_ },
  ];
}

function adaptersFamily(): Hostile[] {
  return [
    v('[] (no adapters, rows refer to 0 and 1)', () => []),
    { name: 'an array of 65537 adapters (past 65,536)', make: (_b, c) => new Array(65537).fill(c.f.adapter()) },
    { name: 'a sparse array of length 65537 holding adapters at 0 and 1', make: (b) => { const a: any[] = []; a.length = 65537; a[0] = b[0]; a[1] = b[1]; return a; } },
    { name: '[, adapter] (a hole at 0)', make: (b) => { const a: any[] = []; a[1] = b[1]; return a; } },
    { name: 'new Proxy(adapters, {})', make: (b) => new Proxy(b, {}), expect: SAME },
    {
      name: 'adapters whose element 0 is right on the first read and a forged copy later',
      make: (b) => { const a = [...b]; let n = 0; Object.defineProperty(a, 0, { get: () => (n++ === 0 ? b[0] : { ...b[0], alpha: 1e39 }), enumerable: true }); return a; },
      expect: SAME,
    },
    v('{ 0: adapter, length: 1 } (array-like)', () => ({ length: 1 })),
    { name: 'a Proxy of adapters whose `length` reads 1', make: (b) => new Proxy([...b], { get: (t, k, r) => (k === 'length' ? 1 : Reflect.get(t, k, r)) }) },
    { name: 'adapters with `map` overridden to return []', make: (b) => Object.defineProperty([...b], 'map', { value: () => [] }) },
  ];
}

function indexFamily(): Hostile[] {
  return [
    v('Int32Array.of(65536, -1, 1)', () => Int32Array.of(65536, -1, 1)), v('Int32Array.of(-2, -1, 1)', () => Int32Array.of(-2, -1, 1)),
    v('Int32Array.of(2, -1, 1) (one past the adapters)', () => Int32Array.of(2, -1, 1)),
    v('[0, -1, 1] (a plain array, valid)', () => [0, -1, 1], VALID), v('[0, NaN, 1]', () => [0, NaN, 1]), v('[0, 1.5, 1]', () => [0, 1.5, 1]),
    v("['0', -1, 1]", () => ['0', -1, 1]), v('[0n, -1, 1]', () => [0n, -1, 1]), v('[, -1, 1] (a hole)', () => { const a: any[] = []; a[1] = -1; a[2] = 1; return a; }),
    v('[0, -0, 1]', () => [0, -0, 1]),
    { name: '[0, -1, 1] with index getters: right on the first read, 7 later', make: () => { const a: any[] = []; [0, -1, 1].forEach((x, i) => { let n = 0; Object.defineProperty(a, i, { get: () => (n++ === 0 ? x : 7), enumerable: true }); }); return a; }, expect: SAME },
    v('Uint32Array.of(0, 4294967295, 1)', () => Uint32Array.of(0, 4294967295, 1)), v('Float64Array.of(0, -1, 1)', () => Float64Array.of(0, -1, 1)),
  ];
}

function bytesFamily(): Hostile[] {
  const header = (json: string, tail = 0) => {
    const j = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + j.length + tail);
    new DataView(out.buffer).setBigUint64(0, BigInt(j.length), true);
    out.set(j, 8);
    return out;
  };
  return [
    { name: 'an ArrayBuffer of the same bytes (valid)', make: (b) => b.slice().buffer, expect: VALID },
    { name: 'a Buffer of the same bytes (valid)', make: (b) => Buffer.from(b), expect: VALID },
    { name: 'a DataView of the same bytes (valid)', make: (b) => new DataView(b.slice().buffer), expect: VALID },
    { name: 'a detached ArrayBuffer', make: (b) => { const buf = b.slice().buffer; structuredClone(buf, { transfer: [buf] }); return buf; }, expect: DETACHED },
    { name: 'a SharedArrayBuffer of the same bytes', make: (b) => shared(b).buffer, expect: SAME },
    { name: 'Object.create(ArrayBuffer.prototype)', make: () => Object.create(ArrayBuffer.prototype) },
    { name: 'new Proxy(an ArrayBuffer of the file, {})', make: (b) => new Proxy(b.slice().buffer, {}), expect: SAME },
    v('header length 2^64 - 1', () => { const a = new Uint8Array(16); new DataView(a.buffer).setBigUint64(0, 0xffffffffffffffffn, true); return a; }),
    v('header length 2^53 + 1', () => { const a = new Uint8Array(16); new DataView(a.buffer).setBigUint64(0, 2n ** 53n + 1n, true); return a; }),
    v('a header that is a JSON array', () => header('[1,2]')),
    v('a header that is 10^5 nested arrays', () => header('['.repeat(100000) + ']'.repeat(100000))),
    v('a tensor of shape [2^26, 2^26] F32 spanning 0 bytes', () => header('{"t":{"dtype":"F32","shape":[67108864,67108864],"data_offsets":[0,0]}}')),
    v('a tensor of shape [2^53] U8', () => header('{"t":{"dtype":"U8","shape":[9007199254740992],"data_offsets":[0,0]}}')),
    v('data_offsets [0.5, 4.5]', () => header('{"t":{"dtype":"U8","shape":[4],"data_offsets":[0.5,4.5]}}', 8)),
    v('a tensor named __proto__', () => header('{"__proto__":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', 2)),
    v('a tensor named constructor with dtype "toString"', () => header('{"constructor":{"dtype":"toString","shape":[2],"data_offsets":[0,2]}}', 2)),
    v('__metadata__ with a key __proto__', () => header('{"__metadata__":{"__proto__":"x"},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)),
    v('a shape with -0 and 1e0', () => header('{"t":{"dtype":"U8","shape":[-0,1e0],"data_offsets":[0,0]}}')),
    v('dtype "__proto__"', () => header('{"t":{"dtype":"__proto__","shape":[1],"data_offsets":[0,1]}}', 1)),
    {
      name: '1 to 8 random bytes of the file changed',
      make: (b, c) => {
        const a = b.slice();
        const n = 1 + Math.floor(c.rng() * 8);
        for (let i = 0; i < n; i++) a[Math.floor(c.rng() * a.length)] = Math.floor(c.rng() * 256);
        return a;
      },
    },
  ];
}

const WEIGHT_CLASS: Record<(typeof Fixture.WEIGHTS)[number], string> = {
  dense: 'DenseWeight', dense16: 'DenseWeight', sparse: 'Sparse24Weight', int4: 'Int4Weight', int4act: 'Int4Weight', fp8: 'Fp8Weight', fp8block: 'Fp8Weight',
};

/**
 * `this` of a method of class `cls`. A real weight of another class must be refused
 * (ERR_WEIGHT), or give what the method of its own class gives (a method all weights share).
 */
function thisFamily(cls: string): Hostile[] {
  return [
    v('{}', () => ({}), FORGED_WEIGHT), v('null', () => null, FORGED_WEIGHT), v('undefined', () => undefined, FORGED_WEIGHT), v('1', () => 1, FORGED_WEIGHT),
    { name: "Object.create(the class's prototype)", make: (w) => Object.create(Object.getPrototypeOf(w)), expect: FORGED_WEIGHT },
    { name: '{ ...w }', make: (w) => ({ ...w }), expect: FORGED_WEIGHT },
    { name: 'Object.create(w)', make: (w) => Object.create(w), expect: FORGED_WEIGHT },
    { name: 'new Proxy(w, {})', make: (w) => new Proxy(w, {}), expect: FORGED_WEIGHT },
    v("{ shape: [2 ** 40, 2 ** 40], dtype: 'float32' }", () => ({ shape: [2 ** 40, 2 ** 40], dtype: 'float32', scaleDtype: 'float32', fp8Format: 'e4m3' }), FORGED_WEIGHT),
    v(`{ shape: [${N}, ${K}], dtype: 'evil' }`, () => ({ shape: [N, K], dtype: 'evil' }), FORGED_WEIGHT),
    ...Fixture.WEIGHTS.filter((which) => WEIGHT_CLASS[which] !== cls).map((which) => ({
      name: `the fixture's ${which} weight (a ${WEIGHT_CLASS[which]})`,
      make: (_w: any, c: Ctx) => c.f.weight(which),
      expect: { codes: ['ERR_WEIGHT'], asOwnClass: true } as Expect,
    })),
    {
      name: "Reflect.construct(the class, [shape, ..., a caller-owned ArrayBuffer of the right size])",
      make: (w, c) => { const [C, a] = forgedCtorArgs(c.cg, w, w.byteLength); return Reflect.construct(C, a); },
      expect: FORGED_WEIGHT,
      forges: true,
    },
  ];
}

/**
 * An object slot (options, parts, factors) with its known fields: the object as a whole made
 * hostile, and for each field a getter that throws, flips, detaches another argument after it
 * was checked, or starts an update of the call's weight.
 */
function objectFamily(fields: string[]): Hostile[] {
  const withGetter = (b: any, field: string, get: (orig: any) => any) => {
    const o = { ...(b ?? {}) };
    const orig = o[field];
    Object.defineProperty(o, field, { get: () => get(orig), enumerable: true, configurable: true });
    return o;
  };
  const h: Hostile[] = [
    { name: 'new Proxy(object, {})', make: (b) => new Proxy({ ...(b ?? {}) }, {}), expect: SAME },
    { name: 'Object.create(object) (the fields inherited)', make: (b) => Object.create({ ...(b ?? {}) }), expect: SAME },
    { name: 'Object.create(null) with the same fields', make: (b) => Object.assign(Object.create(null), b ?? {}), expect: SAME },
    { name: 'Object.freeze({ ...object })', make: (b) => Object.freeze({ ...(b ?? {}) }), expect: VALID },
    { name: 'an array carrying the fields', make: (b) => Object.assign([], b ?? {}) },
    {
      name: "a Proxy of the object whose ownKeys / getOwnPropertyDescriptor traps throw the caller's own error",
      make: (b) => new Proxy({ ...(b ?? {}) }, { ownKeys() { throw SENTINEL; }, getOwnPropertyDescriptor() { throw SENTINEL; } }),
      expect: SAME,
    },
    {
      name: 'a Proxy of the object: the first read of each field is right, later reads are Symbols',
      make: (b) => {
        const seen = new Set<PropertyKey>();
        return new Proxy({ ...(b ?? {}) }, { get(t, k, r) { if (typeof k === 'string' && fields.includes(k)) { if (seen.has(k)) return Symbol('flip'); seen.add(k); } return Reflect.get(t, k, r); } });
      },
      expect: SAME,
    },
  ];
  for (const field of fields) {
    h.push({ name: `a getter on \`${field}\` that throws the caller's own Error`, make: (b) => withGetter(b, field, () => { throw SENTINEL; }) });
    h.push({ name: `a getter on \`${field}\` that throws the caller's own string`, make: (b) => withGetter(b, field, () => { throw SENTINEL_PRIMITIVE; }) });
    h.push({
      name: `a getter on \`${field}\`: right on the first read, a Symbol on later reads`,
      make: (b) => { let n = 0; return withGetter(b, field, (orig) => (n++ === 0 ? orig : Symbol('flip'))); },
      expect: SAME,
    });
    // Detaching another argument of the call: made per call, since the paths depend on it.
    h.push({
      name: `a getter on \`${field}\` that detaches every other typed array of the call, then returns the right value`,
      make: (b, c) => {
        let done = false;
        return withGetter(b, field, (orig) => {
          if (!done) {
            done = true;
            for (const { array } of arraysIn(c.call, c.target.params)) if (array !== orig && !(array.buffer instanceof SharedArrayBuffer) && array.byteLength > 0) detach(array);
          }
          return orig;
        });
      },
      expect: SAME,
    });
    h.push({
      name: `a getter on \`${field}\` that starts lowRankUpdateAsync on the call's weight, then returns the right value`,
      make: (b, c) => {
        const w = c.target.weightOf?.(c.call);
        let done = false;
        return withGetter(b, field, (orig) => {
          if (!done && w) {
            done = true;
            c.later.push(startUpdate(c, w));
          }
          return orig;
        });
      },
      expect: { race: true },
    });
  }
  return h;
}

/** `out` that shares memory with x (or the bias) in ways a buffer identity check misses. */
function outAliasFamily(): Hostile[] {
  /** Puts x (or bias) over a SharedArrayBuffer large enough for out, and returns a second SAB object over it. */
  const aliasOf = (c: Ctx, path: string, out: TypedArray, offsetBytes: number): TypedArray => {
    const steps = parsePath(path, c.target.params);
    const src = getAt(c.call, steps) as TypedArray;
    const bytes = Math.max(src.byteLength, offsetBytes + out.byteLength);
    const sab = new SharedArrayBuffer(bytes + 8);
    const s = new (ctorOf(src))(sab, 0, src.length);
    s.set(src as any);
    setAt(c.call, steps, s);
    const sab2 = structuredClone(sab);
    return new (ctorOf(out))(sab2, offsetBytes, out.length);
  };
  return [
    { name: "over x's SharedArrayBuffer through a second SharedArrayBuffer object (structuredClone), from x's first byte", make: (b, c) => aliasOf(c, 'x', b, 0), expect: OVERLAP },
    { name: "over x's SharedArrayBuffer through a second SharedArrayBuffer object, from x's 8th byte (partial overlap)", make: (b, c) => aliasOf(c, 'x', b, 8), expect: OVERLAP },
    {
      name: "over x's SharedArrayBuffer, the same SharedArrayBuffer object",
      make: (b, c) => {
        aliasOf(c, 'x', b, 0);
        return new (ctorOf(b))(getAt(c.call, parsePath('x', c.target.params)).buffer, 0, b.length);
      },
      expect: OVERLAP,
    },
    {
      name: "a view of x's own ArrayBuffer with own `buffer` spoofed (another ArrayBuffer)",
      make: (b, c) => {
        const steps = parsePath('x', c.target.params);
        const x = getAt(c.call, steps) as TypedArray;
        const big = new (ctorOf(x))(new ArrayBuffer(Math.max(x.byteLength, b.byteLength)), 0, x.length);
        big.set(x as any);
        setAt(c.call, steps, big);
        const out = new (ctorOf(b))(big.buffer, 0, b.length);
        return Object.defineProperty(out, 'buffer', { value: new ArrayBuffer(out.byteLength) });
      },
      expect: OVERLAP,
    },
    {
      name: "over the bias's SharedArrayBuffer through a second SharedArrayBuffer object",
      make: (b, c) => {
        const steps = parsePath('options.bias', c.target.params);
        if (!getAt(c.call, steps)) setAt(c.call, steps, c.f.bias());
        return aliasOf(c, 'options.bias', b, 0);
      },
      expect: OVERLAP,
    },
  ];
}

/** For linear's `bias`: aliases `out` while it is checked and used, and looks separate when the overlap check reads it again. */
const BIAS_FLIP_ALIAS: Hostile = {
  name: 'bias getter: a Float32Array over `out` for its first 4 reads, a separate array after (the overlap check reads it again)',
  make: (_b, c) => {
    const optSteps = parsePath('options', c.target.params);
    const o = getAt(c.call, optSteps) ?? {};
    const outArr = o.out ?? (o.out = c.call.args[0] instanceof Uint16Array ? new Uint16Array(M * N) : new Float32Array(M * N));
    const alias = new Float32Array(outArr.buffer, outArr.byteOffset, N);
    const separate = new Float32Array(N);
    let reads = 0;
    const o2 = { ...o };
    // (The setter ignores the fuzzer's own write of the slot.)
    Object.defineProperty(o2, 'bias', { get: () => (++reads <= 4 ? alias : separate), set: () => undefined, enumerable: true });
    setAt(c.call, optSteps, o2);
    return alias;
  },
  expect: OVERLAP,
};

// ---- targets ---------------------------------------------------------------------------------

interface Slot {
  path: string;
  families: Hostile[];
  /** Puts a valid value where the slot is, when the base call has none there. */
  ensure?(call: Call, f: Fixture): void;
  /** The hostile value replaces the whole call's options (it sets the slot itself). */
  whole?: boolean;
}

interface Target {
  name: string;
  params: string[];
  base(f: Fixture): Call;
  run(cg: Lib, call: Call): unknown;
  slots: Slot[];
  /** The weight the call reads or writes (for the races with lowRankUpdateAsync). */
  weightOf?(call: Call): CG.Weight | undefined;
  /** The result to compare, when the call's effect is on an argument (lowRankUpdate). */
  effect?(call: Call, result: unknown): unknown;
  /** Only in the sweep a fixed number of times, not in the random phase (the big races). */
  rounds?: number;
  /** (Methods) The same member as the class of `this` has it (for Expect.asOwnClass). */
  ownRun?(cg: Lib, call: Call): unknown;
}

const slot = (path: string, families: Hostile[], ensure?: Slot['ensure']): Slot => ({ path, families, ensure });
const ensureOption = (name: string, make: (f: Fixture, call: Call) => any) => (call: Call, f: Fixture) => {
  const o = call.args[call.args.length - 1];
  if (o[name] === undefined) o[name] = make(f, call);
};

const ARRAY = (extra: Hostile[] = []) => [...typedFamily(), ...extra, ...UNIVERSAL];
const FLOATS = () => ARRAY(FLOAT_CONTENTS);
const DTYPES = ['float32', 'float16', 'bfloat16'];

function linearTarget(name: string, multi: boolean): Target {
  const params = multi ? ['x', 'xShape', 'w', 'adapters', 'adapterIndexPerRow', 'options'] : ['x', 'xShape', 'w', 'options'];
  const optionFields = ['dtype', 'bias', 'outDtype', 'out', 'threads', 'activations', 'lora'];
  const slots: Slot[] = [
    slot('x', FLOATS()),
    slot('xShape', [...shapeFamily(), ...UNIVERSAL]),
    slot('w', [...weightFamily(), ...UNIVERSAL]),
    slot('options', [...objectFamily(optionFields), ...UNIVERSAL]),
    slot('options.dtype', [...enumFamily(DTYPES), ...UNIVERSAL]),
    slot('options.bias', [...FLOATS(), BIAS_FLIP_ALIAS], ensureOption('bias', (f) => f.bias())),
    slot('options.outDtype', [...enumFamily(DTYPES), ...UNIVERSAL]),
    slot('options.out', [...ARRAY(), ...outAliasFamily()], ensureOption('out', (_f, c) => (c.args[0] instanceof Uint16Array ? new Uint16Array(M * N) : new Float32Array(M * N)))),
    slot('options.threads', [...intFamily(() => 1), ...UNIVERSAL]),
    slot('options.activations', [...enumFamily(['native', 'fp8', 'int8']), ...UNIVERSAL]),
  ];
  if (multi) {
    slots.push(
      slot('adapters', [...adaptersFamily(), ...UNIVERSAL]),
      slot('adapters[0]', [...adapterFamily(), ...UNIVERSAL]),
      slot('adapters[1]', [...objectFamily(['A', 'B', 'alpha', 'dtype']), ...UNIVERSAL]),
      slot('adapters[1].A', FLOATS()),
      slot('adapters[1].alpha', [...REAL_FAMILY, ...UNIVERSAL]),
      slot('adapterIndexPerRow', [...indexFamily(), ...typedFamily(), ...UNIVERSAL]),
      slot('options.lora', [...adapterFamily(false), ...UNIVERSAL]),
    );
  } else {
    const ensureFactors = (call: Call, f: Fixture) => {
      const o = call.args[call.args.length - 1];
      if (!o.lora || Object.getPrototypeOf(o.lora) !== Object.prototype) o.lora = f.factors();
    };
    slots.push(
      slot('options.lora', [...adapterFamily(), ...UNIVERSAL], ensureOption('lora', (f) => f.adapter())),
      slot('options.lora.A', FLOATS(), ensureFactors),
      slot('options.lora.B', FLOATS(), ensureFactors),
      slot('options.lora.alpha', [...REAL_FAMILY, ...UNIVERSAL], ensureFactors),
      slot('options.lora.dtype', [...enumFamily(DTYPES), ...UNIVERSAL], ensureFactors),
    );
  }
  const fn = name.replace(/^cg\./, '');
  return {
    name,
    params,
    base(f) {
      const v = f.variant;
      const x16 = v % 3 === 2;
      const options: any = { threads: 1 };
      if (x16) options.dtype = 'bfloat16';
      if (v % 2 === 0) options.bias = f.bias();
      if (v % 4 < 2) options.out = x16 ? new Uint16Array(M * N) : new Float32Array(M * N);
      if (!multi && v % 5 === 0) options.lora = v % 10 === 0 ? f.adapter() : f.factors();
      const x = x16 ? f.x16() : f.x32();
      const w = f.weight();
      return { args: multi ? [x, [M, K], w, [f.adapter(), f.factors()], Int32Array.of(0, -1, 1), options] : [x, [M, K], w, options] };
    },
    run: (cg, c) => (cg as any)[fn](...c.args),
    slots,
    weightOf: (c) => c.args[2],
  };
}

function updateTarget(name: string): Target {
  const fn = name.replace(/^cg\./, '');
  return {
    name,
    params: ['w', 'B', 'A', 'options'],
    base: (f) => ({ args: [f.weight(), f.floats('ub', N * R), f.floats('ua', R * K), { alpha: 0.5, threads: 1 }] }),
    run: (cg, c) => (cg as any)[fn](...c.args),
    slots: [
      slot('w', [...weightFamily(), READ_WEIGHT, ...UNIVERSAL]),
      slot('B', FLOATS()),
      slot('A', FLOATS()),
      slot('options', [...objectFamily(['alpha', 'blockSize', 'reprune', 'dtype', 'threads']), ...UNIVERSAL]),
      slot('options.alpha', [...REAL_FAMILY, ...UNIVERSAL]),
      slot('options.blockSize', [...blockSizeFamily(), ...UNIVERSAL]),
      slot('options.reprune', [...BOOL_FAMILY, ...UNIVERSAL]),
      slot('options.dtype', [...enumFamily(DTYPES), ...UNIVERSAL]),
      slot('options.threads', [...intFamily(() => 1), ...UNIVERSAL]),
    ],
    weightOf: (c) => c.args[0],
    effect: (c) => c.args[0],
  };
}

function factoryTarget(name: string, run: (cg: Lib, c: Call) => unknown, base: (f: Fixture) => Call, params: string[], slots: Slot[]): Target {
  return { name, params, base, run, slots };
}

const weightDataBase = (f: Fixture, data: Float32Array, opts?: any): Call => {
  if (f.variant % 3 === 2) {
    const u = new Uint32Array(data.buffer);
    return { args: [Uint16Array.from(u, (b) => b >>> 16), [N, K], { ...opts, dtype: 'bfloat16' }] };
  }
  return { args: [data, [N, K], { ...opts }] };
};

const dataSlots = (optionFields: string[]): Slot[] => [
  slot('data', FLOATS()),
  slot('shape', [...shapeFamily(), ...UNIVERSAL]),
  slot('options', [...objectFamily(optionFields), ...UNIVERSAL]),
  slot('options.dtype', [...enumFamily(DTYPES), ...UNIVERSAL]),
];

function partsSlots(parts: Record<string, Hostile[]>): Slot[] {
  const s: Slot[] = [slot('parts', [...objectFamily(Object.keys(parts)), ...UNIVERSAL]), slot('shape', [...shapeFamily(), ...UNIVERSAL])];
  const ensureGIdx = (c: Call, f: Fixture) => {
    if (c.args[0].gIdx === undefined || c.args[0].gIdx === null) c.args[0].gIdx = f.gIdx(true);
  };
  for (const [k, fam] of Object.entries(parts)) s.push(slot(`parts.${k}`, fam, k === 'gIdx' ? ensureGIdx : undefined));
  return s;
}

const METHODS: Array<[string, string, 'method' | 'getter']> = [
  ['DenseWeight', 'toDense', 'method'], ['DenseWeight', 'byteLength', 'getter'],
  ['Sparse24Weight', 'toDense', 'method'], ['Sparse24Weight', 'canonical', 'method'], ['Sparse24Weight', 'values', 'getter'], ['Sparse24Weight', 'meta', 'getter'], ['Sparse24Weight', 'byteLength', 'getter'],
  ['Int4Weight', 'toDense', 'method'], ['Int4Weight', 'canonical', 'method'], ['Int4Weight', 'byteLength', 'getter'],
  ['Fp8Weight', 'toDense', 'method'], ['Fp8Weight', 'canonical', 'method'], ['Fp8Weight', 'byteLength', 'getter'],
];

/** Thrown by callMember when the object's own class has no such member. */
const NO_MEMBER = Symbol('no such member');

/** Calls method or getter `member`, as `proto` (or its prototype chain) has it, on `self`. */
function callMember(proto: any, member: string, kind: 'method' | 'getter', self: unknown): unknown {
  for (let p = proto; p !== null; p = Object.getPrototypeOf(p)) {
    const d = Object.getOwnPropertyDescriptor(p, member);
    if (d) return kind === 'getter' ? d.get!.call(self) : d.value.call(self);
  }
  throw NO_MEMBER;
}

function methodTarget(cls: string, member: string, kind: 'method' | 'getter'): Target {
  const which = { DenseWeight: 'dense', Sparse24Weight: 'sparse', Int4Weight: 'int4act', Fp8Weight: 'fp8block' }[cls] as (typeof Fixture.WEIGHTS)[number];
  return {
    name: `cg.${cls}.prototype.${member}${kind === 'getter' ? ' (getter)' : '()'}`,
    params: [],
    base: (f) => ({ this: f.weight(which), args: [] }),
    run: (cg, c) => callMember((cg as any)[cls].prototype, member, kind, c.this),
    slots: [slot('this', thisFamily(cls))],
    ownRun: (_cg, c) => callMember(Object.getPrototypeOf(c.this), member, kind, c.this),
    weightOf: (c) => (c.this instanceof Object ? c.this : undefined),
  };
}

/** Calls on a 512 x 1024 weight with an update of it started during the call: big enough to overlap. */
function raceTargets(): Target[] {
  const t: Target[] = [];
  const started = (field: string): Hostile => ({
    name: `a getter on \`${field}\` that starts lowRankUpdateAsync on the same 512 x 1024 weight`,
    make: (b, c) => {
      const o = { ...(b ?? {}) };
      const orig = o[field];
      let done = false;
      Object.defineProperty(o, field, { get: () => { if (!done) { done = true; c.later.push(startUpdate(c, c.target.weightOf!(c.call)!)); } return orig; }, enumerable: true });
      return o;
    },
    expect: { race: true },
  });
  for (const fn of ['linear', 'linearAsync', 'linearMultiLora', 'linearMultiLoraAsync']) {
    const multi = fn.startsWith('linearMulti');
    t.push({
      name: `cg.${fn} (512 x 1024 dense weight, M = 64)`,
      params: multi ? ['x', 'xShape', 'w', 'adapters', 'adapterIndexPerRow', 'options'] : ['x', 'xShape', 'w', 'options'],
      base: (f) => {
        const opts = { bias: f.floats('big bias', BIG.N), out: new Float32Array(BIG.M * BIG.N), threads: 1 };
        const x = f.bigX();
        const w = f.bigWeight('dense');
        if (!multi) return { args: [x, [BIG.M, BIG.K], w, opts] };
        const ad = [{ A: f.floats('big a', BIG.R * BIG.K), B: f.floats('big b', BIG.N * BIG.R), alpha: 0.5 }];
        return { args: [x, [BIG.M, BIG.K], w, ad, Int32Array.from({ length: BIG.M }, (_, m) => (m % 2) - 1), opts] };
      },
      run: (cg, c) => (cg as any)[fn](...c.args),
      slots: [{ path: 'options', families: ['bias', 'out', 'threads'].map(started) }],
      weightOf: (c) => c.args[2],
      rounds: 3,
    });
  }
  for (const [which, cls, member] of [['dense', 'DenseWeight', 'toDense'], ['sparse', 'Sparse24Weight', 'canonical'], ['int4', 'Int4Weight', 'canonical'], ['int4', 'Int4Weight', 'toDense'], ['fp8', 'Fp8Weight', 'toDense']] as const) {
    t.push({
      name: `cg.${cls}.prototype.${member}() (512 x 1024 weight)`,
      params: [],
      base: (f) => ({ this: f.bigWeight(which), args: [] }),
      run: (cg, c) => (cg as any)[cls].prototype[member].call(c.this),
      slots: [{ path: 'this', families: [{ name: 'the weight, with a lowRankUpdateAsync of it started just before the call', make: (w, c) => { c.later.push(startUpdate(c, w)); return w; }, expect: { race: true } }] }],
      weightOf: (c) => c.this,
      rounds: 4,
    });
  }
  return t;
}

function targets(): Target[] {
  const t: Target[] = [
    linearTarget('cg.linear', false),
    linearTarget('cg.linearAsync', false),
    linearTarget('cg.linearMultiLora', true),
    linearTarget('cg.linearMultiLoraAsync', true),
    updateTarget('cg.lowRankUpdate'),
    updateTarget('cg.lowRankUpdateAsync'),
    factoryTarget('cg.DenseWeight.from', (cg, c) => cg.DenseWeight.from(...(c.args as [any, any, any])), (f) => weightDataBase(f, f.wData()), ['data', 'shape', 'options'], dataSlots(['dtype'])),
    factoryTarget('cg.Sparse24Weight.prune', (cg, c) => cg.Sparse24Weight.prune(...(c.args as [any, any, any])), (f) => weightDataBase(f, f.wData()), ['data', 'shape', 'options'], dataSlots(['dtype'])),
    factoryTarget('cg.Sparse24Weight.compress', (cg, c) => cg.Sparse24Weight.compress(...(c.args as [any, any, any])), (f) => weightDataBase(f, f.wData24()), ['data', 'shape', 'options'], dataSlots(['dtype'])),
    factoryTarget(
      'cg.Int4Weight.quantize',
      (cg, c) => cg.Int4Weight.quantize(...(c.args as [any, any, any])),
      (f) => weightDataBase(f, f.wData(), { groupSize: 32, symmetric: f.variant % 2 === 0, scaleDtype: f.variant % 4 < 2 ? 'float16' : 'float32' }),
      ['data', 'shape', 'options'],
      [
        ...dataSlots(['groupSize', 'symmetric', 'scaleDtype', 'dtype']),
        slot('options.groupSize', [...intFamily(() => 32), v("'32'", () => '32'), v('-1 (valid)', () => -1), ...UNIVERSAL]),
        slot('options.symmetric', [...BOOL_FAMILY, ...UNIVERSAL]),
        slot('options.scaleDtype', [...enumFamily(['float16', 'float32']), ...UNIVERSAL]),
      ],
    ),
    factoryTarget(
      'cg.Int4Weight.fromCanonical',
      (cg, c) => cg.Int4Weight.fromCanonical(...(c.args as [any, any])),
      (f) => ({ args: [{ ...f.int4Parts(), gIdx: f.variant % 2 === 0 ? f.gIdx(true) : null }, [N, K]] }),
      ['parts', 'shape'],
      [
        ...partsSlots({
          qweight: ARRAY(),
          scales: ARRAY(SCALE_CONTENTS),
          zeros: ARRAY([...contentFamily('zero points', 255, 'ERR_FORMAT'), ...contentFamily('zero points', 17, 'ERR_FORMAT')]),
          gIdx: ARRAY(GIDX_CONTENTS),
        }),
      ],
    ),
    factoryTarget(
      'cg.Int4Weight.fromGPTQ',
      (cg, c) => cg.Int4Weight.fromGPTQ(...(c.args as [any, any])),
      (f) => ({ args: [{ ...f.packedParts('gptq'), gIdx: f.variant % 2 === 0 ? f.gIdx(true) : undefined }, [N, K]] }),
      ['parts', 'shape'],
      partsSlots({ qweight: ARRAY(), qzeros: ARRAY(), scales: ARRAY(SCALE_CONTENTS), gIdx: ARRAY(GIDX_CONTENTS) }),
    ),
    factoryTarget(
      'cg.Int4Weight.fromAWQ',
      (cg, c) => cg.Int4Weight.fromAWQ(...(c.args as [any, any])),
      (f) => ({ args: [f.packedParts('awq'), [N, K]] }),
      ['parts', 'shape'],
      partsSlots({ qweight: ARRAY(), qzeros: ARRAY(), scales: ARRAY(SCALE_CONTENTS) }),
    ),
    factoryTarget(
      'cg.Fp8Weight.quantize',
      (cg, c) => cg.Fp8Weight.quantize(...(c.args as [any, any, any])),
      (f) => weightDataBase(f, f.wData(), { format: f.variant % 2 ? 'e5m2' : 'e4m3', scaling: [undefined, 'tensor', { block: [4, 16] }][f.variant % 3] }),
      ['data', 'shape', 'options'],
      [...dataSlots(['format', 'scaling', 'dtype']), slot('options.format', [...fp8FormatFamily(), ...UNIVERSAL]), slot('options.scaling', [...scalingFamily(), ...UNIVERSAL])],
    ),
    factoryTarget(
      'cg.Fp8Weight.fromCodes',
      (cg, c) => cg.Fp8Weight.fromCodes(...(c.args as [any, any, any])),
      (f) => ({ args: [{ codes: f.codes(), scales: f.floats('fp8 scales', N, 1).map((s) => 0.01 + Math.abs(s)) }, [N, K], { format: 'e4m3', scaling: 'channel' }] }),
      ['parts', 'shape', 'options'],
      [
        slot('parts', [...objectFamily(['codes', 'scales']), ...UNIVERSAL]),
        slot('parts.codes', ARRAY(contentFamily('codes', 0x7f, 'ERR_FORMAT'))),
        slot('parts.scales', ARRAY([...SCALE_CONTENTS, v('a number 0.5 (for channel scaling)', () => 0.5), v('NaN', () => NaN), v('-1', () => -1)])),
        slot('shape', [...shapeFamily(), ...UNIVERSAL]),
        slot('options', [...objectFamily(['format', 'scaling']), ...UNIVERSAL]),
        slot('options.format', [...fp8FormatFamily(), ...UNIVERSAL]),
        slot('options.scaling', [...scalingFamily(), ...UNIVERSAL]),
      ],
    ),
    factoryTarget('cg.fp8.encode', (cg, c) => cg.fp8.encode(...(c.args as [any, any])), (f) => ({ args: [f.floats('enc', 37, 1000), 'e4m3'] }), ['values', 'format'], [
      slot('values', FLOATS()),
      slot('format', [...fp8FormatFamily(), ...UNIVERSAL]),
    ]),
    factoryTarget('cg.fp8.decode', (cg, c) => cg.fp8.decode(...(c.args as [any, any])), (f) => ({ args: [f.codes(), 'e5m2'] }), ['codes', 'format'], [
      slot('codes', ARRAY()),
      slot('format', [...fp8FormatFamily(), ...UNIVERSAL]),
    ]),
    factoryTarget('cg.fp8.max', (cg, c) => cg.fp8.max(...(c.args as [any])), () => ({ args: ['e4m3'] }), ['format'], [slot('format', [...fp8FormatFamily(), ...UNIVERSAL])]),
    factoryTarget('cg.safetensors.read', (cg, c) => cg.safetensors.read(...(c.args as [any])), (f) => ({ args: [f.safetensors()] }), ['input'], [slot('input', [...bytesFamily(), ...typedFamily(), ...UNIVERSAL])]),
    factoryTarget(
      'new cg.LoraAdapter',
      (cg, c) => new cg.LoraAdapter(...(c.args as [any, any])),
      (f) => ({ args: [f.factors(), [N, K]] }),
      ['factors', 'shape'],
      [
        slot('factors', [...objectFamily(['A', 'B', 'alpha', 'dtype']), ...UNIVERSAL]),
        slot('factors.A', FLOATS()),
        slot('factors.B', FLOATS()),
        slot('factors.alpha', [...REAL_FAMILY, ...UNIVERSAL]),
        slot('factors.dtype', [...enumFamily(DTYPES), ...UNIVERSAL]),
        slot('shape', [...shapeFamily(), ...UNIVERSAL]),
      ],
    ),
    factoryTarget('cg.setThreads', (cg, c) => cg.setThreads(...(c.args as [any])), () => ({ args: [2] }), ['n'], [slot('n', [...intFamily(() => 2), ...UNIVERSAL])]),
    factoryTarget('cg.setCpuIsa', (cg, c) => cg.setCpuIsa(...(c.args as [any])), () => ({ args: ['scalar'] }), ['isa'], [slot('isa', [...enumFamily(['scalar', 'avx2', 'avx512', 'amx']), ...UNIVERSAL])]),
    factoryTarget('cg.backend', (cg, c) => (cg.backend as any)(...c.args), () => ({ args: [] }), ['extra'], [slot('extra', UNIVERSAL)]),
    factoryTarget('cg.cudaStatus', (cg, c) => (cg.cudaStatus as any)(...c.args), () => ({ args: [] }), ['extra'], [slot('extra', UNIVERSAL)]),
    ...METHODS.map(([cls, member, kind]) => methodTarget(cls, member, kind)),
    ...raceTargets(),
  ];
  return t;
}

// ---- running and judging one case -------------------------------------------------------------

interface Mutation {
  slot: Slot;
  hostile: Hostile;
}

interface CaseSpec {
  target: Target;
  mutations: Mutation[];
  variant: number;
}

function baseCall(target: Target, f: Fixture, mutations: Mutation[]): Call {
  const call = target.base(f);
  for (const m of mutations) m.slot.ensure?.(call, f);
  return call;
}

function describeValue(x: any, depth = 0): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'symbol') return x.toString();
  if (typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number') return Object.is(x, -0) ? '-0' : String(x);
  if (typeof x === 'function') return `function ${x.name}`;
  if (ArrayBuffer.isView(x)) return `${Object.getPrototypeOf(x)?.constructor?.name}(${(x as any).length})`;
  if (x instanceof ArrayBuffer) return `ArrayBuffer(${x.byteLength})`;
  const name = Object.getPrototypeOf(x)?.constructor?.name;
  if (name && name.endsWith('Weight')) return `${name} ${x.dtype ?? ''} [${x.shape}]`;
  if (name === 'LoraAdapter') return `LoraAdapter [${x.shape}] rank ${x.rank}`;
  if (depth > 1) return Array.isArray(x) ? '[...]' : '{...}';
  if (Array.isArray(x)) return x.length > 8 ? `Array(${x.length})` : `[${x.map((e) => describeValue(e, depth + 1)).join(', ')}]`;
  return `{ ${Object.keys(x).map((k) => `${k}: ${describeValue(x[k], depth + 1)}`).join(', ')} }`;
}

function describeCall(t: Target, c: Call): string {
  const args = c.args.map((a) => describeValue(a)).join(', ');
  return c.this !== undefined ? `${t.name} with this = ${describeValue(c.this)}` : `${t.name}(${args})`;
}

/** What a result is, for comparing two calls; using a weight or adapter also proves it works. */
function digest(cg: Lib, f: Fixture, x: any, depth = 0): string {
  if (x === undefined || x === null || typeof x !== 'object') return typeof x === 'number' && Object.is(x, -0) ? '-0' : String(x);
  if (ArrayBuffer.isView(x)) return `${Object.prototype.toString.call(x)}(${bytesOf(x).byteLength}):${hashBytes(x)}`;
  if (x instanceof cg.Weight) {
    const w = x as CG.Weight;
    let s = `${w.format} ${w.dtype} [${w.shape}] ${w.byteLength}: ${digest(cg, f, w.toDense())}`;
    if ('canonical' in w) s += ` canonical ${digest(cg, f, (w as any).canonical(), depth + 1)}`;
    if (w.shape[1] === K) s += ` linear ${digest(cg, f, cg.linear(f.x32(), [M, K], w))}`;
    return s;
  }
  if (x instanceof cg.LoraAdapter) {
    const a = x as CG.LoraAdapter;
    let s = `adapter [${a.shape}] ${a.rank} ${a.alpha}`;
    if (a.shape[0] === N && a.shape[1] === K) s += ` linear ${digest(cg, f, cg.linear(f.x32(), [M, K], f.dense(), { lora: a }))}`;
    return s;
  }
  if (depth > 4) return '...';
  if (Array.isArray(x)) return `[${x.map((e) => digest(cg, f, e, depth + 1)).join(',')}]`;
  return `{${Object.keys(x).sort().map((k) => `${k}:${digest(cg, f, x[k], depth + 1)}`).join(',')}}`;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown } | { hang: true };

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof HANG> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<typeof HANG>((r) => { timer = setTimeout(() => r(HANG), ms); })]).finally(() => clearTimeout(timer));
}
const HANG = Symbol('hang');

async function invoke(cg: Lib, target: Target, call: Call, timeoutMs: number): Promise<Outcome> {
  let r: unknown;
  try {
    r = target.run(cg, call);
  } catch (e) {
    return { ok: false, error: e };
  }
  if (r instanceof Promise) {
    try {
      const v = await withTimeout(r, timeoutMs);
      if (v === HANG) return { hang: true };
      return { ok: true, value: v };
    } catch (e) {
      return { ok: false, error: e };
    }
  }
  return { ok: true, value: r };
}

function errorInfo(e: unknown): { name: string; code: unknown; message: string } {
  if (e instanceof Error) return { name: e.name, code: (e as any).code, message: e.message };
  return { name: typeof e, code: undefined, message: typeof e === 'symbol' ? e.toString() : String(e) };
}

/** Why a thrown value breaks the contract, or null. [problem, kind] */
function judgeError(cg: Lib, e: unknown, expect: Expect): [string, string] | null {
  if (e === SENTINEL || e === SENTINEL_PRIMITIVE) return null; // the caller's own exception, unchanged
  if (!(e instanceof Error)) return [`threw a non-Error value: ${errorInfo(e).message}`, 'threw a non-Error'];
  const code = (e as any).code;
  if (typeof code !== 'string' || !Object.prototype.hasOwnProperty.call(cg.ErrorCodes, code)) {
    return [`threw ${e.name} without a code of ErrorCodes (code ${String(code)}): ${e.message}`, `uncoded ${e.name}`];
  }
  if (code === 'ERR_NATIVE') return [`ERR_NATIVE (the addon's last-line check caught what lib/ let through): ${e.message}`, 'ERR_NATIVE'];
  if (expect.mustSucceed) return [`refused a valid input with ${code}: ${e.message}`, `refused a valid input (${code})`];
  if (expect.codes && !expect.codes.includes(code)) return [`threw ${code}, expected ${expect.codes.join(' or ')}: ${e.message}`, `${code} instead of ${expect.codes.join('/')}`];
  return null;
}

interface CaseResult {
  problem: string;
  kind: string;
  error?: { name: string; code: unknown; message: string };
}

async function runCase(cg: Lib, spec: CaseSpec, seed: number, cfg: Config): Promise<{ results: CaseResult[]; base: string }> {
  const { target, mutations } = spec;
  const expect: Expect = mutations.length === 1 ? mutations[0].hostile.expect ?? {} : combine(mutations.map((m) => m.hostile.expect ?? {}));
  const fixture = () => new Fixture(cg, seed, spec.variant);

  // The valid call, on a fixture of its own, when a result must be compared with it.
  let baseDigest: string | null = null;
  let baseDesc = '';
  const f0 = fixture();
  const call0 = baseCall(target, f0, mutations);
  baseDesc = describeCall(target, call0);
  if (expect.same || expect.race) {
    const o = await invoke(cg, target, call0, cfg.caseTimeoutMs);
    if (!('ok' in o) || !o.ok) {
      const why = 'hang' in o ? 'hung' : `threw ${JSON.stringify(errorInfo(o.error))}`;
      return { results: [{ problem: `fuzzer: the valid base call ${why}`, kind: 'fuzzer: base call failed' }], base: baseDesc };
    }
    baseDigest = digest(cg, f0, target.effect ? target.effect(call0, o.value) : o.value);
  }

  const f = fixture();
  const call = baseCall(target, f, mutations);
  const ctx: Ctx = { cg, f, call, target, later: [], rng: mulberry32(mix(seed, 'case rng')) };
  for (const m of mutations) {
    const steps = parsePath(m.slot.path, target.params);
    try {
      setAt(call, steps, m.hostile.make(getAt(call, steps), ctx));
    } catch (e) {
      // Building the value may run the library (a constructor): a coded refusal is the outcome.
      // Anything else is the fuzzer's own trouble (two mutations that do not combine are skipped).
      if (mutations.length > 1 || m.hostile.forges) return { results: [], base: baseDesc };
      const bad = judgeError(cg, e, {});
      if (bad) return { results: [{ problem: `while building the hostile value: ${bad[0]}`, kind: `building the value: ${bad[1]}`, error: errorInfo(e) }], base: baseDesc };
      return { results: [], base: baseDesc };
    }
  }

  const results: CaseResult[] = [];
  const outcome = await invoke(cg, target, call, cfg.caseTimeoutMs);
  const settled = await withTimeout(Promise.allSettled(ctx.later), cfg.caseTimeoutMs);
  if ('hang' in outcome) results.push({ problem: `did not settle within ${cfg.caseTimeoutMs} ms`, kind: 'hang' });
  else if (settled === HANG) results.push({ problem: `what the hostile value started did not settle within ${cfg.caseTimeoutMs} ms`, kind: 'hang' });
  else if (!outcome.ok) {
    // (In a race any coded error is fine too: the race only constrains results.)
    const bad = judgeError(cg, outcome.error, expect);
    if (bad) results.push({ problem: bad[0], kind: bad[1], error: errorInfo(outcome.error) });
  } else if (expect.mustThrow) {
    results.push({ problem: `returned normally${expect.codes ? `, expected ${expect.codes.join(' or ')}` : ', expected a refusal'}`, kind: `accepted (expected ${expect.codes?.join('/') ?? 'a refusal'})` });
  } else {
    // What it returned must work (a weight computes, an adapter applies) and, where owed, match.
    let d: string | null = null;
    try {
      d = digest(cg, f, target.effect ? target.effect(call, outcome.value) : outcome.value);
    } catch (e) {
      const info = errorInfo(e);
      results.push({ problem: `accepted, but what it returned fails when used: ${info.name} ${String(info.code)}: ${info.message}`, kind: `accepted; its result then fails (${info.code ?? info.name})`, error: info });
    }
    if (d !== null && expect.same && d !== baseDigest) {
      results.push({ problem: "accepted, and the result differs from the valid call's", kind: 'accepted with a different result' });
    } else if (d !== null && (expect.asPlain || expect.asOwnClass) && mutations.length === 1) {
      // The same call with the value undisguised (or the method of the object's own class).
      const m = mutations[0];
      const f3 = fixture();
      const call3 = baseCall(target, f3, mutations);
      const ctx3: Ctx = { cg, f: f3, call: call3, target, later: [], rng: mulberry32(mix(seed, 'case rng')) };
      const steps = parsePath(m.slot.path, target.params);
      setAt(call3, steps, expect.asPlain ? m.hostile.plain!(getAt(call3, steps), ctx3) : m.hostile.make(getAt(call3, steps), ctx3));
      const alt = await invoke(cg, expect.asPlain ? target : { ...target, run: target.ownRun! }, call3, cfg.caseTimeoutMs);
      const what = expect.asPlain ? 'the same value undisguised' : "its own class's method";
      if (!('ok' in alt)) results.push({ problem: `(${what} hung)`, kind: 'hang' });
      else if (!alt.ok && alt.error === NO_MEMBER) {
        results.push({ problem: `accepted a weight of a class that has no such member (returned ${describeValue(outcome.value)})`, kind: 'accepted a weight of another class (which has no such member)' });
      } else if (!alt.ok) {
        const info = errorInfo(alt.error);
        results.push({ problem: `accepted, while ${what} is refused (${String(info.code)} ${info.message}): it was read as something it is not`, kind: `accepted a disguised value (${what} is refused)` });
      } else if (digest(cg, f3, target.effect ? target.effect(call3, alt.value) : alt.value) !== d) {
        results.push({ problem: `accepted, with a result other than that of ${what}: it was read as something it is not`, kind: `read a disguised value as what it pretends to be` });
      }
    } else if (d !== null && expect.race) {
      const f2 = f; // the weight now holds the update: the valid call again gives "after"
      const after = await invoke(cg, target, baseCall(target, f2, mutations), cfg.caseTimeoutMs);
      const afterDigest = 'ok' in after && after.ok ? digest(cg, f2, target.effect ? target.effect(call, after.value) : after.value) : null;
      if (d !== baseDigest && d !== afterDigest) {
        results.push({ problem: 'the result is neither that of the weight before the update nor after it (it read a half-updated weight); expected ERR_BUSY or one of them', kind: 'mixed old and new weights (expected ERR_BUSY)' });
      }
    }
  }

  // Nothing is left busy once everything settled.
  const hung = results.some((r) => r.kind === 'hang');
  for (const w of hung ? [] : f.weights) {
    const [n, k] = w.shape;
    try {
      cg.lowRankUpdate(w, new Float32Array(n), new Float32Array(k), { alpha: 0 });
    } catch (e) {
      const info = errorInfo(e);
      results.push({ problem: `afterwards the fixture's ${w.format} weight refuses updates: ${info.code} ${info.message}`, kind: `left a weight unusable (${info.code})`, error: info });
    }
  }
  return { results, base: baseDesc };
}

function combine(es: Expect[]): Expect {
  // (asPlain / asOwnClass compare one mutation with its plain form: not for combinations.)
  return {
    mustThrow: es.some((e) => e.mustThrow),
    same: es.every((e) => e.same),
    // A race is judged against the unmutated call: only when every other mutation promises
    // that call's result (same), not when another one changes it (e.g. a different alpha).
    race: es.some((e) => e.race) && es.every((e) => e.race || e.same),
  };
}

// ---- the sweep, the random phase, the log -----------------------------------------------------

function sweep(all: Target[]): CaseSpec[] {
  const cases: CaseSpec[] = [];
  for (const target of all) {
    for (let round = 0; round < (target.rounds ?? 1); round++) {
      for (const s of target.slots) {
        for (const hostile of s.families) cases.push({ target, mutations: [{ slot: s, hostile }], variant: cases.length });
      }
    }
  }
  return cases;
}

/** A random case: a (target, slot) drawn uniformly over every slot, and maybe a second slot of that target. */
function randomCase(all: Target[], seed: number, i: number): CaseSpec {
  const r = mulberry32(mix(seed, 'random case', i));
  const pool = all.filter((t) => !t.rounds).flatMap((t) => t.slots.map(() => t));
  const target = pool[Math.floor(r() * pool.length)];
  const n = r() < 0.3 && target.slots.length > 1 ? 2 : 1;
  const mutations: Mutation[] = [];
  for (let tries = 0; mutations.length < n && tries < 50; ++tries) {
    const s = target.slots[Math.floor(r() * target.slots.length)];
    // Two slots where one lies inside the other (options.lora and options.lora.B): the outer
    // mutation would replace the inner one's value, so the pair would not test both.
    const nested = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);
    if (mutations.some((m) => nested(m.slot.path, s.path))) continue;
    const hostile = s.families[Math.floor(r() * s.families.length)];
    // An aliasing value (expected ERR_OVERLAP) is made over another slot's array (out over x,
    // bias over out): a second mutation of that slot would replace the array it aliases, so it
    // is drawn alone.
    if (hostile.expect?.codes?.includes('ERR_OVERLAP')) {
      if (mutations.length > 0) continue;
      mutations.push({ slot: s, hostile });
      break;
    }
    mutations.push({ slot: s, hostile });
  }
  return { target, mutations, variant: Math.floor(r() * 1000) };
}

/** Kills the process when the event loop is blocked past watchdogMs (a synchronous hang). */
function startWatchdog(cfg: Config, progress: Int32Array): void {
  const w = new Worker(
    `const { workerData } = require('worker_threads');
     const fs = require('fs');
     const p = new Int32Array(workerData.sab);
     let last = -2, since = Date.now();
     setInterval(() => {
       const now = Atomics.load(p, 0);
       if (now !== last) { last = now; since = Date.now(); return; }
       if (now >= 0 && Date.now() - since > workerData.ms) {
         fs.appendFileSync(workerData.log, 'H ' + now + '\\n');
         process.kill(process.pid, 'SIGKILL');
       }
     }, 200);`,
    { eval: true, workerData: { sab: progress.buffer, ms: cfg.watchdogMs, log: cfg.logFile } },
  );
  w.unref();
}

export async function main(cg: Lib, cfg: Config): Promise<{ cases: number; failures: number }> {
  const all = targets();
  const fixed = sweep(all);
  const total = fixed.length + cfg.randomCases;
  const fd = fs.openSync(cfg.logFile, 'a');
  const log = (line: string) => fs.writeSync(fd, `${line}\n`);
  if (cfg.from === 0) log(`T ${total} ${fixed.length}`);
  const progress = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(progress, 0, -1);
  startWatchdog(cfg, progress);
  const info0 = cg.backend();
  let failures = 0;
  for (let i = cfg.from; i < total; i++) {
    if (i >= fixed.length && Date.now() > cfg.randomDeadline) break;
    const spec = i < fixed.length ? fixed[i] : randomCase(all, cfg.seed, i);
    const desc = { target: spec.target.name, slot: spec.mutations.map((m) => m.slot.path).join(' + '), hostile: spec.mutations.map((m) => m.hostile.name).join(' + ') };
    log(`S ${i} ${JSON.stringify(desc)}`);
    Atomics.store(progress, 0, i);
    const seed = mix(cfg.seed, 'case', i);
    const { results, base } = await runCase(cg, spec, seed, cfg);
    for (const r of results) {
      const rec: Failure = { i, ...desc, problem: r.problem, kind: r.kind, error: r.error, base };
      log(`F ${JSON.stringify(rec)}`);
      failures++;
    }
    // Global settings a case may have changed.
    const info = cg.backend();
    if (info.cpu.threads !== info0.cpu.threads) cg.setThreads(info0.cpu.threads);
    if (info.cpu.isa !== info0.cpu.isa) cg.setCpuIsa(info0.cpu.isa);
  }
  Atomics.store(progress, 0, -1);
  log('E');
  fs.closeSync(fd);
  return { cases: total - cfg.from, failures };
}
