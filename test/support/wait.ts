/**
 * Waiting in tests: for a state, for a line of a process's output, or, on purpose, for time to
 * pass. The one place tests wait (docs/testing.md).
 *
 * A test synchronises on the thing it stands for, never on a fixed delay: on a loaded two-core
 * machine what takes a millisecond when idle can take a second. The timeout of a wait is a
 * backstop that turns a hang into a message naming what was awaited and the last value or error
 * seen; it claims nothing about speed. Where speed is a product promise ("off within 1 s of the
 * host going quiet"), measure it from the event and assert it on its own.
 */

/** How long a wait lasts when the caller gives no timeout: under vitest's 20 s per test. */
export const DEFAULT_WAIT_MS = 10_000;

export interface UntilOptions {
  /**
   * What is awaited, as the error should say it ("the api's backup line"). A function is called
   * only when the wait fails, so it can describe the state at that moment.
   */
  what: string | (() => string);
  /** Give up after this long (default DEFAULT_WAIT_MS): a backstop, not a product promise. */
  timeoutMs?: number;
  /** Time between checks; default 20 ms. */
  intervalMs?: number;
  /**
   * The wait fails at once when this settles: a process that exited will print no more, a
   * broker that died will deliver nothing. What it settles with goes into the message.
   */
  failOn?: Promise<unknown>;
}

/** The values `if` takes as true. */
export type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

type Seen = { value: unknown } | { error: unknown } | undefined;

/**
 * Checks `check` (sync or async) until it returns a truthy value, and returns that value. A
 * check that throws counts as "not yet" (so `() => { expect(x).toBe(1); return true; }` works),
 * and its error is the one reported if the wait runs out. Fails after `timeoutMs` with
 * `timed out after N ms waiting for WHAT; last seen: VALUE` (or `last error: MESSAGE`).
 */
export async function until<T>(check: () => T | Promise<T>, opts: UntilOptions): Promise<Truthy<T>> {
  return poll(check, opts, (seen) => describeSeen(seen));
}

/**
 * The form that test/support/mosquitto.ts had (and test/support/cluster.ts's `until`, async
 * checks included): `await waitUntil(() => lamp.on, 5000, 'the lamp on')`. New tests use `until`.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  await until(check, { timeoutMs, what });
}

export interface OutputOptions extends Partial<UntilOptions> {}

/**
 * Waits until `read()` (the output so far of a process, a log) matches `pattern`, and returns the
 * match. On failure the message shows the end of the output. Pass the process's exit as
 * `failOn`: a process that has ended prints nothing more.
 */
export async function untilOutput(
  read: () => string,
  pattern: RegExp,
  opts: OutputOptions = {},
): Promise<RegExpMatchArray> {
  const what = opts.what ?? `${pattern} in the output`;
  return poll(
    () => read().match(pattern),
    { ...opts, what },
    () => `the output ends:\n${tail(read())}`,
  );
}

/**
 * Lets `ms` pass on purpose. Only for an observation window: the test shows that something does
 * NOT happen within a time the product promises, measured from the event, and the call site says
 * which promise in a comment. Never as synchronisation (use `until`); where a later legitimate
 * message can serve as a marker ("the good message after the bad one arrived, so the bad one was
 * dropped"), wait for the marker instead.
 */
export function letTimePass(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Whether `p` settles before the event loop turns once: "at once", without waiting for any I/O
 * or timer. For a promise to refuse at once (a full queue, a link that is down), this proves
 * what a bound of a few milliseconds would, without being at the mercy of a loaded machine.
 */
export async function settlesAtOnce(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

async function poll<T>(
  check: () => T | Promise<T>,
  opts: UntilOptions,
  describeLast: (seen: Seen) => string,
): Promise<Truthy<T>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_MS;
  const intervalMs = opts.intervalMs ?? 20;
  const started = performance.now();
  const deadline = started + timeoutMs;
  const what = () => (typeof opts.what === 'function' ? opts.what() : opts.what);

  let ended: { why: unknown } | undefined;
  let wake: (() => void) | undefined;
  opts.failOn?.then(
    (value) => {
      ended = { why: value };
      wake?.();
    },
    (error: unknown) => {
      ended = { why: error };
      wake?.();
    },
  );
  const fail = (message: string, cause?: unknown): Error =>
    new Error(message, cause === undefined ? undefined : { cause });

  let seen: Seen;
  for (;;) {
    try {
      // A check that never settles (a request with no timeout) must not outlast the wait by
      // much; the last check, made at the deadline, still gets a second.
      const value = await settlesWithin(check, Math.max(deadline - performance.now(), 1000));
      if (value) return value as Truthy<T>;
      seen = { value };
    } catch (error) {
      if (error === NOT_SETTLED) {
        throw fail(
          `timed out after ${timeoutMs} ms waiting for ${what()}: the last check did not settle; ${describeLast(seen)}`,
        );
      }
      seen = { error };
    }
    if (ended) {
      throw fail(`gave up waiting for ${what()}: ${describe(ended.why)}; ${describeLast(seen)}`, ended.why);
    }
    if (performance.now() >= deadline) {
      throw fail(
        `timed out after ${timeoutMs} ms waiting for ${what()}; ${describeLast(seen)}`,
        'error' in (seen ?? {}) ? (seen as { error: unknown }).error : undefined,
      );
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(intervalMs, Math.max(deadline - performance.now(), 0)));
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = undefined;
  }
}

const NOT_SETTLED = Symbol('not settled');

async function settlesWithin<T>(check: () => T | Promise<T>, ms: number): Promise<T> {
  const result = check();
  if (!isThenable(result)) return result;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(NOT_SETTLED), ms);
  });
  try {
    return await Promise.race([result, late]);
  } finally {
    clearTimeout(timer);
  }
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

function describeSeen(seen: Seen): string {
  if (seen === undefined) return 'no check completed';
  if ('error' in seen) return `last error: ${describe(seen.error)}`;
  return `last seen: ${describe(seen.value)}`;
}

function describe(v: unknown): string {
  if (v instanceof Error) return v.message;
  if (typeof v === 'string') return JSON.stringify(clip(v));
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return String(v);
  try {
    return clip(JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v));
  } catch {
    return clip(String(v));
  }
}

function clip(s: string, max = 600): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length} chars)`;
}

function tail(s: string, max = 2000): string {
  return s.length <= max ? s : `...${s.slice(-max)}`;
}
