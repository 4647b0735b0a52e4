import type { Clock, Timer } from '../../src/core/clock.js';

interface Pending {
  due: number;
  /** Creation order: timers due at the same instant fire in the order they were set. */
  seq: number;
  fn: () => void;
  handle: FakeTimer;
}

/** What `setTimeout` returns; `unref` and `ref` are accepted and mean nothing here. */
export interface FakeTimer extends Timer {
  unref(): FakeTimer;
  ref(): FakeTimer;
}

/**
 * A Clock whose time moves only when a test says so. Timers fire in order of due time (then
 * of creation), each with `now()` equal to its due time, including timers that a firing timer
 * sets within the span being advanced. Nothing here touches real timers.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Pending[] = [];

  constructor(start: number | Date | string = 0) {
    this.#now = toMs(start);
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): FakeTimer {
    const handle: FakeTimer = {
      unref: () => handle,
      ref: () => handle,
    };
    // Like Node: a negative, NaN or missing delay means "as soon as possible".
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#timers.push({ due: this.#now + delay, seq: this.#seq++, fn, handle });
    return handle;
  }

  clearTimeout(timer: Timer): void {
    this.#timers = this.#timers.filter((t) => t.handle !== timer);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /** The instant the next timer is due, or undefined when none is set. */
  nextDue(): number | undefined {
    return this.#next()?.due;
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`FakeClock.advance: ms must be >= 0, got ${ms}`);
    this.#runUntil(this.#now + ms);
  }

  /**
   * Moves time to `at`. Forward, it fires the timers due on the way, like `advance`; backward
   * (a wall clock stepped back), it fires nothing and timers keep their due instants.
   */
  setTime(at: number | Date | string): void {
    const target = toMs(at);
    if (target <= this.#now) this.#now = target;
    else this.#runUntil(target);
  }

  /**
   * Like `advance`, but lets promises and I/O settle after each timer, for code that awaits
   * between timers (a timer whose callback starts async work that sets the next timer).
   */
  async advanceAsync(ms: number): Promise<void> {
    if (ms < 0) throw new RangeError(`FakeClock.advanceAsync: ms must be >= 0, got ${ms}`);
    const target = this.#now + ms;
    for (;;) {
      await settle();
      const next = this.#next();
      if (!next || next.due > target) break;
      this.#fire(next);
    }
    this.#now = target;
    await settle();
  }

  #runUntil(target: number): void {
    for (;;) {
      const next = this.#next();
      if (!next || next.due > target) break;
      this.#fire(next);
    }
    this.#now = target;
  }

  #fire(t: Pending): void {
    this.#timers = this.#timers.filter((x) => x !== t);
    this.#now = Math.max(this.#now, t.due);
    t.fn();
  }

  #next(): Pending | undefined {
    let best: Pending | undefined;
    for (const t of this.#timers) {
      if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

function toMs(at: number | Date | string): number {
  const ms = typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`FakeClock: not a time: ${String(at)}`);
  return ms;
}

/** One turn of the event loop: pending promise callbacks and ready I/O run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
