import type { Timer } from '../../core/clock.js';
import type { DriverContext, EntityHandle } from '../../core/driver.js';
import { reasonOf } from '../../core/errors.js';
import {
  expandOccurrences,
  type Feed,
  FeedError,
  type FeedSource,
  loadFeedText,
  type Occurrence,
  parseFeed,
} from './feed.js';

export interface CalendarOptions {
  id: string;
  name: string;
  source: FeedSource;
  pollMs: number;
  lookaheadMs: number;
  timeoutMs: number;
  /** IANA zone whose midnights bound all-day events. */
  timeZone: string;
}

/**
 * How late a start or end may be noticed and still be fired: timer jitter and a slow event
 * loop, not a host that was asleep for an hour (a brew three hours late is worse than none).
 */
const LATE_LIMIT_MS = 60_000;
/** Re-expand at least this often, so the window keeps sliding even with no event in it. */
const MAX_WAIT_MS = 6 * 3_600_000;

type Edge = 'start' | 'end';

/**
 * One feed as one `calendar` entity. It polls the feed, keeps the last good copy, and fires
 * `start` and `end` at each occurrence's instants by timers on the runtime's clock.
 *
 * Each firing is keyed by edge, UID and start instant, so an occurrence fires once however
 * often the feed is re-read; a moved occurrence is a new key and fires at its new instant.
 */
export class CalendarEntity {
  readonly #ctx: DriverContext;
  readonly #opts: CalendarOptions;
  readonly #handle: EntityHandle<'calendar'>;
  readonly #abort = new AbortController();
  /** Aborts an in-flight read when the driver or this calendar stops. */
  readonly #signal: AbortSignal;
  /** The last good copy, and the text it came from (an unchanged body is not parsed again). */
  #feed: Feed | undefined;
  #text: string | undefined;
  #lastGoodAt: number | undefined;
  #occurrences: Occurrence[] = [];
  /** Edges at or before this instant have been handled; undefined until the first good copy. */
  #cursor: number | undefined;
  /** Keys of edges already fired (or deliberately skipped), with the occurrence's end for pruning. */
  readonly #done = new Map<string, number>();
  /** Occurrences whose `start` was fired and whose `end` has not been, by key. */
  readonly #started = new Map<string, Occurrence>();
  #pollTimer: Timer | undefined;
  #edgeTimer: Timer | undefined;
  #stopped = false;

  constructor(ctx: DriverContext, opts: CalendarOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#signal = AbortSignal.any([ctx.signal, this.#abort.signal]);
    this.#handle = ctx.entities.bind(opts.id, 'calendar', {});
  }

  /** Starts polling. Does not wait for the first read: a slow feed must not hold up start-up. */
  start(): void {
    void this.#poll();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#pollTimer) this.#ctx.clock.clearTimeout(this.#pollTimer);
    if (this.#edgeTimer) this.#ctx.clock.clearTimeout(this.#edgeTimer);
    this.#pollTimer = undefined;
    this.#edgeTimer = undefined;
  }

  async #poll(): Promise<void> {
    const { id, source, timeoutMs } = this.#opts;
    const log = this.#ctx.log;
    try {
      const text = await loadFeedText(source, { timeoutMs, signal: this.#signal });
      const feed = text === this.#text && this.#feed ? this.#feed : parseFeed(text);
      if (this.#stopped) return;
      if (feed !== this.#feed) log.debug({ calendar: id, events: feed.events }, 'calendar feed read');
      this.#feed = feed;
      this.#text = text;
      this.#lastGoodAt = this.#ctx.clock.now();
      this.#handle.setAvailable();
    } catch (err) {
      if (this.#stopped) return;
      // The runtime logs the outage once (entity unavailable, with this reason); each failed
      // poll is only a debug line. The URL never appears: it is a secret address.
      const reason = err instanceof FeedError ? err.message : `failed: ${reasonOf(err)}`;
      log.debug({ calendar: id, reason, keeping: this.#feed !== undefined }, 'calendar feed unusable');
      this.#handle.setUnavailable(reason);
    }
    // From the new copy, or from the last good one when this read failed: events keep firing.
    this.#refresh();
    if (this.#stopped) return;
    this.#pollTimer = this.#ctx.clock.setTimeout(() => {
      this.#pollTimer = undefined;
      void this.#poll();
    }, this.#opts.pollMs);
    this.#pollTimer.unref?.();
  }

  /** Expands the last good copy around now, fires what is due, and sets the next timer. */
  #refresh(): void {
    if (this.#stopped || !this.#feed) return;
    try {
      this.#expandAndFire(this.#feed);
    } catch (err) {
      // A fault here (a node-ical bug on one odd feed) must not end polling or the process.
      const reason = `cannot expand the feed: ${reasonOf(err)}`;
      this.#ctx.log.warn({ calendar: this.#opts.id, reason }, 'calendar feed unusable');
      this.#handle.setUnavailable(reason);
    }
  }

  #expandAndFire(feed: Feed): void {
    const now = this.#ctx.clock.now();
    this.#occurrences = expandOccurrences(feed, {
      // A little behind now, so an edge noticed slightly late (a busy event loop) still fires.
      from: new Date(now - LATE_LIMIT_MS),
      to: new Date(now + this.#opts.lookaheadMs),
      timeZone: this.#opts.timeZone,
    });
    // The first copy: whatever is already in progress sets the state (on) but does not fire
    // `start`; that start happened before hearth knew of it, and an automation should not act
    // on it late (a brew half an hour into the event). Its `end` fires as usual.
    this.#cursor ??= now;
    this.#endVanished(now);
    this.#fireDue(now);
    this.#scheduleEdge(now);
  }

  /** A started occurrence that left the feed (deleted, cancelled) ends now: every `start` gets its `end`. */
  #endVanished(now: number): void {
    const current = new Set(this.#occurrences.map(keyOf));
    for (const [key, o] of this.#started) {
      if (current.has(key)) continue;
      this.#started.delete(key);
      this.#done.set(`end|${key}`, o.end.getTime());
      // Moved while in progress: the new occurrence carries on, and ends at its own end.
      const carriedOn = this.#occurrences.some(
        (n) => n.uid === o.uid && n.start.getTime() <= now && n.end.getTime() > now,
      );
      if (carriedOn || o.end.getTime() <= now) continue;
      this.#handle.fire('end', { ...payload(o), end: new Date(now).toISOString() });
    }
  }

  #fireDue(now: number): void {
    const cursor = this.#cursor ?? now;
    const due: Array<{ at: number; edge: Edge; o: Occurrence }> = [];
    if (now > cursor) {
      for (const o of this.#occurrences) {
        const start = o.start.getTime();
        const end = o.end.getTime();
        if (start > cursor && start <= now) due.push({ at: start, edge: 'start', o });
        if (end > cursor && end <= now) due.push({ at: end, edge: 'end', o });
      }
      // In time order; at one instant ends first, so back-to-back events read end, start.
      due.sort((a, b) => a.at - b.at || (a.edge === b.edge ? 0 : a.edge === 'end' ? -1 : 1));
      this.#cursor = now;
    }
    // The state first, so an automation acting on `start` sees the calendar `on`.
    this.#updateView(now);
    for (const { at, edge, o } of due) {
      const key = keyOf(o);
      const doneKey = `${edge}|${key}`;
      if (this.#done.has(doneKey)) continue;
      this.#done.set(doneKey, o.end.getTime());
      if (edge === 'start') {
        if (now - at > LATE_LIMIT_MS) continue;
        this.#started.set(key, o);
      } else {
        this.#started.delete(key);
        if (now - at > LATE_LIMIT_MS) continue;
      }
      this.#handle.fire(edge, payload(o));
    }
    // Keys of occurrences long over can never come due again.
    for (const [k, end] of this.#done) if (end < now - LATE_LIMIT_MS - 86_400_000) this.#done.delete(k);
  }

  #updateView(now: number): void {
    const inProgress = this.#occurrences.filter((o) => o.start.getTime() <= now && o.end.getTime() > now);
    // Of several at once, the one that began last is "the" current one (a brew inside an all-day event).
    const current = inProgress.at(-1);
    const next = this.#occurrences.find((o) => o.start.getTime() > now);
    this.#handle.setAttributes({
      summary: current?.summary ?? null,
      start: current?.start.toISOString() ?? null,
      end: current?.end.toISOString() ?? null,
      next: next ? { summary: next.summary, start: next.start.toISOString() } : null,
      lastGoodAt: this.#lastGoodAt === undefined ? null : new Date(this.#lastGoodAt).toISOString(),
      events: this.#occurrences.filter((o) => o.end.getTime() > now).length,
    });
    this.#handle.setState(current ? 'on' : 'off');
  }

  #scheduleEdge(now: number): void {
    if (this.#edgeTimer) this.#ctx.clock.clearTimeout(this.#edgeTimer);
    let next = now + Math.min(MAX_WAIT_MS, this.#opts.lookaheadMs / 2);
    for (const o of this.#occurrences) {
      for (const at of [o.start.getTime(), o.end.getTime()]) if (at > now && at < next) next = at;
    }
    this.#edgeTimer = this.#ctx.clock.setTimeout(() => {
      this.#edgeTimer = undefined;
      this.#refresh();
    }, next - now);
    this.#edgeTimer.unref?.();
  }
}

function keyOf(o: Occurrence): string {
  return `${o.uid}|${o.start.toISOString()}`;
}

function payload(o: Occurrence): Record<string, unknown> {
  return {
    summary: o.summary,
    start: o.start.toISOString(),
    end: o.end.toISOString(),
    uid: o.uid,
    allDay: o.allDay,
  };
}
