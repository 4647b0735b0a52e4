import { randomBytes } from 'node:crypto';
import type { EntityView } from '../contract/views.js';
import type { BusEvents } from '../core/bus.js';
import type { RuntimeApi } from '../core/runtime-api.js';

/*
 * The process's record of recent changes, for event streams that reconnect. Every change gets
 * the next id of one sequence per process (both listeners share it), written `<epoch>-<n>`: the
 * epoch is random per process, so an id from a process before a restart (or from another api
 * replica) is recognised as foreign, never mistaken for one of ours. The last REPLAY_EVENTS
 * changes of the last REPLAY_MS are kept; a client that comes back with `Last-Event-ID` gets
 * what it missed from them, or a reset when they no longer cover its gap.
 *
 * It listens while any stream is open and REPLAY_MS after the last one closed (a dashboard
 * reloading, a phone waking), so a box nobody watches records nothing.
 */

/** Changes kept for replay. */
export const REPLAY_EVENTS = 1000;
/** How long a change is kept for replay, and how long the journal listens after the last stream closed. */
export const REPLAY_MS = 5 * 60_000;

export type JournalEntry =
  | { seq: number; at: number; type: 'state'; view: EntityView }
  | { seq: number; at: number; type: 'removed'; removed: { id: string; kind: string } };

/** Why a `Last-Event-ID` cannot be resumed. */
export type ResetReason =
  /** The id is from another process: hearth restarted, or another api replica answered. */
  | 'other-process'
  /** Changes after it are no longer kept (more than REPLAY_EVENTS since, or older than REPLAY_MS). */
  | 'too-old'
  /** Not an id hearth gave out. */
  | 'invalid'
  /** What was missed is more than the stream may hold unread; the snapshot is smaller. */
  | 'too-much';

export type Since = { entries: JournalEntry[] } | { reset: ResetReason };

type Sink = (e: JournalEntry) => void;

export class EventJournal {
  /** Random per process: ids from any other process are told apart. */
  readonly epoch = randomBytes(4).toString('hex');
  readonly #runtime: RuntimeApi;
  readonly #capacity: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #ring: (JournalEntry | undefined)[];
  #start = 0;
  #length = 0;
  #seq = 0;
  /** A client whose last id is at least this (and at most #seq) can resume: nothing after it was lost. */
  #floor = 0;
  readonly #sinks = new Set<Sink>();
  #offs: Array<() => void> | undefined;
  #linger: NodeJS.Timeout | undefined;

  constructor(runtime: RuntimeApi, opts: { capacity?: number; maxAgeMs?: number; now?: () => number } = {}) {
    this.#runtime = runtime;
    this.#capacity = opts.capacity ?? REPLAY_EVENTS;
    this.#maxAgeMs = opts.maxAgeMs ?? REPLAY_MS;
    this.#now = opts.now ?? (() => performance.now());
    this.#ring = new Array(this.#capacity);
  }

  /** The id of the latest change: what a snapshot read now is current as of. */
  get lastId(): string {
    return this.idOf(this.#seq);
  }

  idOf(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  /** Feeds `sink` every change from now on, and keeps recording while any sink is attached. */
  attach(sink: Sink): void {
    this.#sinks.add(sink);
    this.#listen();
  }

  /** Stops feeding `sink`; with none left, the journal records REPLAY_MS longer, then stops. */
  detach(sink: Sink): void {
    if (!this.#sinks.delete(sink) || this.#sinks.size > 0) return;
    this.#lingerFor(this.#maxAgeMs);
  }

  /**
   * Starts recording now, as a stream would (for REPLAY_MS if no stream opens): a client that
   * read a snapshot as of `lastId` can then open its stream from there without a gap.
   */
  touch(): void {
    this.#listen();
    if (this.#sinks.size === 0) this.#lingerFor(this.#maxAgeMs);
  }

  /** What came after `lastId`, in order; or why that cannot be told. */
  since(lastId: string): Since {
    const m = /^([0-9a-f]{8})-(\d{1,15})$/.exec(lastId.trim());
    if (!m) return { reset: 'invalid' };
    if (m[1] !== this.epoch) return { reset: 'other-process' };
    const last = Number(m[2]);
    if (last > this.#seq) return { reset: 'invalid' };
    this.#expire();
    if (!this.#offs || last < this.#floor) return { reset: 'too-old' };
    const entries: JournalEntry[] = [];
    for (let i = 0; i < this.#length; i++) {
      const e = this.#ring[(this.#start + i) % this.#capacity] as JournalEntry;
      if (e.seq > last) entries.push(e);
    }
    return { entries };
  }

  /** Stops recording and forgets everything (the listeners are closing). */
  stop(): void {
    this.#sinks.clear();
    this.#unlisten();
  }

  #listen(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    if (this.#offs) return;
    this.#offs = [
      this.#runtime.subscribe((view) => this.#append({ type: 'state', view }), 'sse-journal'),
      this.#runtime.onRemoved(
        (e: BusEvents['entity.removed']) =>
          this.#append({ type: 'removed', removed: { id: e.id, kind: e.kind } }),
        'sse-journal',
      ),
    ];
  }

  #lingerFor(ms: number): void {
    clearTimeout(this.#linger);
    this.#linger = setTimeout(() => this.#unlisten(), ms);
    this.#linger.unref();
  }

  #unlisten(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    if (!this.#offs) return;
    for (const off of this.#offs) off();
    this.#offs = undefined;
    // What happens from now on goes unrecorded: no id given out so far can be resumed.
    this.#seq++;
    this.#floor = this.#seq;
    this.#ring.fill(undefined);
    this.#start = 0;
    this.#length = 0;
  }

  #append(
    change: { type: 'state'; view: EntityView } | { type: 'removed'; removed: { id: string; kind: string } },
  ): void {
    const entry = { ...change, seq: ++this.#seq, at: this.#now() } as JournalEntry;
    if (this.#length === this.#capacity) this.#evict();
    this.#ring[(this.#start + this.#length) % this.#capacity] = entry;
    this.#length++;
    this.#expire();
    for (const sink of this.#sinks) sink(entry);
  }

  #expire(): void {
    const oldest = this.#now() - this.#maxAgeMs;
    while (this.#length > 0 && (this.#ring[this.#start] as JournalEntry).at < oldest) this.#evict();
  }

  #evict(): void {
    const e = this.#ring[this.#start] as JournalEntry;
    this.#floor = e.seq;
    this.#ring[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.#capacity;
    this.#length--;
  }
}

/**
 * Streams of both listeners share one journal per runtime (per process), so ids are one
 * sequence. Counted: the last EventStreams to close stops it.
 */
const journals = new WeakMap<RuntimeApi, { journal: EventJournal; users: number }>();

export function openJournal(runtime: RuntimeApi): EventJournal {
  let j = journals.get(runtime);
  if (!j) {
    j = { journal: new EventJournal(runtime), users: 0 };
    journals.set(runtime, j);
  }
  j.users++;
  return j.journal;
}

export function closeJournal(runtime: RuntimeApi, journal: EventJournal): void {
  const j = journals.get(runtime);
  if (!j || j.journal !== journal) return;
  if (--j.users > 0) return;
  journals.delete(runtime);
  journal.stop();
}
