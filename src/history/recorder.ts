import type { HistoryConfig } from '../config/sections/history.js';
import type { Clock, Timer } from '../core/clock.js';
import { reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { DeviceApi, EntityView } from '../core/runtime-api.js';
import type { HistoryRow, HistoryStore } from '../store/store.js';

/** Text longer than this is cut: a history row is a reading, not a document. */
const MAX_TEXT = 256;

/**
 * Readings at or past this size are kept as text, not as numbers: downsampling sums them
 * (count × mean), and on PostgreSQL a sum past 1.8e308 is an error that would stop every
 * compaction for good. No sensor reads 1e150; a device that sends it sent garbage.
 */
const MAX_NUMBER = 1e150;
/** How often old rows are compacted (and once at start). */
export const COMPACT_EVERY_MS = 3_600_000;

/** Counters of the recorder, for /metrics later and for tests. */
export interface RecorderStats {
  /** Rows taken into the buffer. */
  recorded: number;
  /** Rows committed to the store. */
  written: number;
  /** Rows dropped, oldest first, because the buffer was full (the store too slow or away). */
  dropped: number;
  /** Commits (each one transaction). */
  flushes: number;
  /** Flushes that failed (the rows stay buffered for the next one). */
  failures: number;
  /** Rows waiting now. */
  buffered: number;
  compactions: number;
}

export interface RecorderOptions {
  runtime: DeviceApi;
  store: HistoryStore;
  config: HistoryConfig;
  clock: Clock;
  log: Logger;
}

/** The row that records `view` now: numbers as numbers, everything else as text, unavailable as a gap. */
export function rowOf(view: EntityView, at: number): HistoryRow {
  const { state } = view;
  if (!view.available || state === null || state === undefined)
    return { id: view.id, at, num: null, text: null };
  if (typeof state === 'number') {
    if (!Number.isFinite(state)) return { id: view.id, at, num: null, text: null };
    return Math.abs(state) < MAX_NUMBER
      ? { id: view.id, at, num: state, text: null }
      : { id: view.id, at, num: null, text: String(state) };
  }
  const text = typeof state === 'string' ? state : JSON.stringify(state);
  return { id: view.id, at, num: null, text: text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text };
}

/**
 * Records every entity's changes into the store's history, in batches so an SD card is not
 * worn out: rows wait in memory and are written in one transaction every `flush`, or at once
 * when `batch` are waiting. A change that repeats the last recorded value (an availability flap
 * that leaves the state as it was, an attribute change) is not a row. The buffer is bounded: a
 * flood, or a store that is away, drops the oldest rows and counts them. `stop` writes what is
 * waiting. Compaction (raw numbers to buckets, old rows deleted) runs at start and hourly.
 */
export class HistoryRecorder {
  readonly stats: RecorderStats = {
    recorded: 0,
    written: 0,
    dropped: 0,
    flushes: 0,
    failures: 0,
    buffered: 0,
    compactions: 0,
  };
  readonly #o: RecorderOptions;
  readonly #exclude: Set<string>;
  /** The last value recorded per entity, as a key, to skip repeats. */
  readonly #last = new Map<string, string>();
  /** The ms and seq of each entity's last row: a second reading in the same ms is seq + 1. */
  readonly #stamp = new Map<string, { at: number; seq: number }>();
  #buffer: HistoryRow[] = [];
  #flushTimer: Timer | undefined;
  #compactTimer: Timer | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The flush or compaction under way; they run one at a time. */
  #busy: Promise<void> = Promise.resolve();
  #failing = false;

  constructor(opts: RecorderOptions) {
    this.#o = opts;
    this.#exclude = new Set(opts.config.exclude);
  }

  start(): this {
    if (this.#unsubscribe) return this;
    this.#unsubscribe = this.#o.runtime.subscribe((view) => this.#take(view), 'history');
    for (const view of this.#o.runtime.list()) this.#take(view);
    this.#scheduleCompaction(0);
    return this;
  }

  /** Stops recording and writes what is waiting; resolves once it is committed (or failed). */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const { clock } = this.#o;
    if (this.#flushTimer) clock.clearTimeout(this.#flushTimer);
    if (this.#compactTimer) clock.clearTimeout(this.#compactTimer);
    this.#flushTimer = undefined;
    this.#compactTimer = undefined;
    await this.flush();
  }

  /** Writes what is waiting now, after the flush or compaction under way. */
  flush(): Promise<void> {
    if (this.#flushTimer) this.#o.clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    return this.#queue(() => this.#write());
  }

  /** Runs one compaction now (after the flush under way). */
  compact(): Promise<void> {
    return this.#queue(() => this.#compact());
  }

  #take(view: EntityView): void {
    if (!this.#unsubscribe || this.#exclude.has(view.id)) return;
    const row = rowOf(view, this.#o.clock.now());
    const key = row.num !== null ? `n${row.num}` : row.text !== null ? `t${row.text}` : '-';
    if (this.#last.get(view.id) === key) return;
    this.#last.set(view.id, key);
    // Two changes in one ms are two readings (several MQTT messages in one packet): numbered,
    // so both are kept even when a flush falls between them, and a retried flush writes the
    // same keys again.
    const ms = Math.round(row.at);
    const stamp = this.#stamp.get(view.id);
    row.seq = stamp !== undefined && stamp.at === ms ? stamp.seq + 1 : 0;
    this.#stamp.set(view.id, { at: ms, seq: row.seq });
    const { config } = this.#o;
    this.#buffer.push(row);
    this.stats.recorded++;
    if (this.#buffer.length > config.buffer) {
      const over = this.#buffer.length - config.buffer;
      this.#buffer.splice(0, over);
      this.stats.dropped += over;
    }
    this.stats.buffered = this.#buffer.length;
    if (this.#buffer.length >= config.batch) void this.flush();
    else if (!this.#flushTimer)
      this.#flushTimer = this.#o.clock.setTimeout(() => void this.flush(), config.flush);
  }

  #queue(job: () => Promise<void>): Promise<void> {
    const next = this.#busy.then(job);
    this.#busy = next.catch(() => {});
    return next;
  }

  async #write(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const rows = this.#buffer;
    this.#buffer = [];
    try {
      await this.#o.store.append(rows);
      this.stats.flushes++;
      this.stats.written += rows.length;
      if (this.#failing) this.#o.log.info('history: writing again');
      this.#failing = false;
    } catch (err) {
      this.stats.failures++;
      // Back in front of what came since, within the bound; the next flush tries again.
      const all = rows.concat(this.#buffer);
      const over = Math.max(0, all.length - this.#o.config.buffer);
      this.stats.dropped += over;
      this.#buffer = all.slice(over);
      if (!this.#failing)
        this.#o.log.warn({ err: reasonOf(err) }, 'history: cannot write; keeping rows in memory');
      this.#failing = true;
      if (this.#unsubscribe && !this.#flushTimer)
        this.#flushTimer = this.#o.clock.setTimeout(() => void this.flush(), this.#o.config.flush);
    } finally {
      this.stats.buffered = this.#buffer.length;
    }
  }

  async #compact(): Promise<void> {
    const { config, clock, store, log } = this.#o;
    const now = clock.now();
    const rawBefore = now - config.raw - ((now - config.raw) % config.step);
    try {
      const { folded, deleted } = await store.compact(rawBefore, now - config.downsampled, config.step);
      this.stats.compactions++;
      if (folded + deleted > 0) log.debug({ folded, deleted }, 'history: compacted');
    } catch (err) {
      log.warn({ err: reasonOf(err) }, 'history: compaction failed; trying again in an hour');
    }
  }

  #scheduleCompaction(ms: number): void {
    this.#compactTimer = this.#o.clock.setTimeout(() => {
      if (!this.#unsubscribe) return;
      void this.compact().finally(() => {
        if (this.#unsubscribe) this.#scheduleCompaction(COMPACT_EVERY_MS);
      });
    }, ms);
    this.#compactTimer.unref?.();
  }
}
