import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EntityView } from '../contract/views.js';
import { HearthError } from '../core/errors.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ListenerName } from './access.js';
import {
  closeJournal,
  type EventJournal,
  type JournalEntry,
  openJournal,
  type ResetReason,
} from './event-journal.js';
import { publicView } from './public-view.js';

/*
 * GET /api/v1/events: one fan-out per listener. Each change is serialised once per audience
 * (detail for trusted clients, generic reasons for the rest), however many clients listen, and
 * the fan-out holds one subscription to the runtime, not one per client: with thousands of
 * idle dashboards, a button press costs one JSON.stringify, not thousands. What cannot be
 * shared is one socket write per client; changes that come while a fan-out rests go out
 * together, one write per client (see #enqueue).
 *
 * Every frame has an id from the process's journal (event-journal.ts). A client that comes
 * back with `Last-Event-ID` (or `?lastEventId=`, for clients that cannot set headers) first
 * gets what it missed, in order, or an `event: reset` with the reason and a snapshot of every
 * entity when the journal no longer covers its gap. A public client's replay and snapshot are
 * the public view, as its live frames are.
 */

export interface EventStreamsOptions {
  runtime: RuntimeApi;
  metrics: Metrics;
  listener: ListenerName;
  /** Streams open at once on this listener (`http.maxStreams`); one more is a 503. */
  maxStreams: number;
  /** Streams one client address may hold (`http.maxStreamsPerClient`); one more is a 503. Default 10. */
  maxStreamsPerClient?: number;
  /** The client address of a request (the socket's peer, or what a trusted proxy forwards). */
  clientAddress?: (req: FastifyRequest) => string;
  /** Bytes a client may leave unread before it is dropped; default 1 MiB. */
  maxBufferedBytes?: number;
  /** How long a client may leave its socket full before it is dropped; default 30 s. */
  drainTimeoutMs?: number;
  /** A comment this often keeps proxies and idle timeouts from closing a quiet stream; default 15 s. */
  keepAliveMs?: number;
}

interface Client {
  socket: Socket;
  /** The client address, whose streams are counted together. */
  address: string;
  detail: boolean;
  drainTimer: NodeJS.Timeout | undefined;
}

const headers = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/*
 * The stream is written on the socket itself, not through ServerResponse: no chunked encoding,
 * the body ends when the connection does (an event stream is never reused for another
 * request). So one encoded Buffer goes to every client as it is: one encoding per change, and
 * one write per client.
 */
const head = Buffer.from(
  `HTTP/1.1 200 OK\r\n${Object.entries({ ...headers, connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\nretry: 2000\n\n`,
  'latin1',
);
const keepAliveFrame = Buffer.from(': keep-alive\n\n');

const empty = Buffer.alloc(0);

/** A batch bigger than this is sent at once, not held for the pause between fan-outs. */
const MAX_PENDING = 256;

export class EventStreams {
  readonly #opts: Required<EventStreamsOptions>;
  readonly #clients = new Set<Client>();
  /** Streams open per client address; an address with none has no entry. */
  readonly #perAddress = new Map<string, number>();
  readonly #journal: EventJournal;
  readonly #sink = (e: JournalEntry) => this.#enqueue(e);
  #pending: JournalEntry[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** When the last fan-out ended and how long it took (performance.now() ms). */
  #lastFlushEnd = 0;
  #lastFlushMs = 0;
  #subscribed = false;
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: EventStreamsOptions) {
    this.#opts = {
      maxBufferedBytes: 1024 * 1024,
      drainTimeoutMs: 30_000,
      keepAliveMs: 15_000,
      maxStreamsPerClient: 10,
      clientAddress: (req) => req.socket.remoteAddress ?? '',
      ...opts,
    };
    this.#journal = openJournal(opts.runtime);
  }

  /**
   * The id of the latest change, for a page that renders a snapshot now and opens its stream
   * from there (`?lastEventId=`); the journal records from now on, so that stream misses nothing.
   */
  mark(): string {
    this.#journal.touch();
    return this.#journal.lastId;
  }

  /**
   * Serves one stream on `reply`; `detail` says whether this client sees failure detail. Past
   * `maxStreams`, answers 503 with Retry-After.
   */
  serve(req: FastifyRequest, reply: FastifyReply, detail: boolean): FastifyReply | undefined {
    if (req.method === 'HEAD') return reply.code(200).headers(headers).send();
    const { maxStreams, maxStreamsPerClient, metrics, listener } = this.#opts;
    const address = this.#opts.clientAddress(req);
    const mine = this.#perAddress.get(address) ?? 0;
    if (this.#closed || this.#clients.size >= maxStreams || mine >= maxStreamsPerClient) {
      metrics.sseRefused.inc({ listener });
      // One client may not take every place: the dashboards of the others would find none.
      const err = new HearthError(
        'HEARTH_ERR_TOO_MANY_STREAMS',
        mine >= maxStreamsPerClient
          ? `${address} already has ${mine} event streams open on this listener, the limit for one client (http.maxStreamsPerClient ${maxStreamsPerClient})`
          : `this listener already serves ${this.#clients.size} event streams, its limit (http.maxStreams ${maxStreams})`,
      );
      return reply.code(err.status).header('retry-after', '30').send({ error: err.toJSON() });
    }
    reply.hijack();
    const socket = req.raw.socket;
    // Gone already: 'close' has fired and would never remove it.
    if (socket.destroyed) return undefined;
    socket.setNoDelay(true);
    const lastId = lastEventId(req);
    socket.write(lastId === undefined ? head : Buffer.concat([head, this.#catchUp(lastId, detail)]));
    const client: Client = { socket, address, detail, drainTimer: undefined };
    this.#add(client);
    socket.on('drain', () => {
      clearTimeout(client.drainTimer);
      client.drainTimer = undefined;
    });
    socket.on('close', () => this.#remove(client));
    return undefined;
  }

  /** Ends every stream and lets go of the runtime (the listener is closing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#clients) c.socket.destroy();
    this.#stop();
    closeJournal(this.#opts.runtime, this.#journal);
  }

  /**
   * What a client that last saw `lastId` missed: the frames after it, or a reset with a
   * snapshot. Changes waiting for the next fan-out go to the other clients first, so the
   * journal's frames and the live ones that follow neither overlap nor leave a gap.
   */
  #catchUp(lastId: string, detail: boolean): Buffer {
    this.#flush();
    const { listener, metrics, maxBufferedBytes } = this.#opts;
    const since = this.#journal.since(lastId);
    let reason: ResetReason;
    if ('entries' in since) {
      const text = frames(since.entries, this.#journal, detail ? shown : publicView);
      if (Buffer.byteLength(text) <= maxBufferedBytes / 2) {
        metrics.sseReplayed.inc({ listener }, since.entries.length);
        return Buffer.from(text);
      }
      reason = 'too-much';
    } else reason = since.reset;
    metrics.sseResets.inc({ listener, reason });
    const project = detail ? shown : publicView;
    const entities = this.#opts.runtime.list().map(project);
    return Buffer.from(
      `id: ${this.#journal.lastId}\nevent: reset\ndata: ${JSON.stringify({ reason, entities })}\n\n`,
    );
  }

  #add(client: Client): void {
    this.#clients.add(client);
    this.#perAddress.set(client.address, (this.#perAddress.get(client.address) ?? 0) + 1);
    this.#opts.metrics.sseStreams.set({ listener: this.#opts.listener }, this.#clients.size);
    if (this.#subscribed) return;
    this.#subscribed = true;
    this.#journal.attach(this.#sink);
    this.#keepAlive = setInterval(
      () => this.#broadcast(keepAliveFrame, keepAliveFrame),
      this.#opts.keepAliveMs,
    );
    this.#keepAlive.unref();
  }

  #remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    const left = (this.#perAddress.get(client.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(client.address, left);
    else this.#perAddress.delete(client.address);
    clearTimeout(client.drainTimer);
    this.#opts.metrics.sseStreams.set({ listener: this.#opts.listener }, this.#clients.size);
    if (this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#subscribed) this.#journal.detach(this.#sink);
    this.#subscribed = false;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#pending = [];
  }

  #enqueue(entry: JournalEntry): void {
    this.#pending.push(entry);
    if (this.#pending.length >= MAX_PENDING) this.#flush();
    else if (!this.#flushTimer) {
      // A fan-out to thousands of sockets takes milliseconds (one write each); the next waits
      // as long as the last took, so streams never take more than half the event loop from
      // button presses, and the changes of that pause go out together, one write per client.
      const wait = Math.max(0, this.#lastFlushEnd + this.#lastFlushMs - performance.now());
      this.#flushTimer = setTimeout(() => this.#flush(), wait);
    }
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const entries = this.#pending;
    if (entries.length === 0) return;
    this.#pending = [];
    const started = performance.now();
    let anyDetail = false;
    let anyPublic = false;
    for (const c of this.#clients) {
      if (c.detail) anyDetail = true;
      else anyPublic = true;
    }
    const detailed = anyDetail ? Buffer.from(frames(entries, this.#journal, shown)) : empty;
    const generic = anyPublic ? Buffer.from(frames(entries, this.#journal, publicView)) : empty;
    const built = (anyDetail ? entries.length : 0) + (anyPublic ? entries.length : 0);
    this.#opts.metrics.sseFrames.inc({ listener: this.#opts.listener }, built);
    this.#broadcast(detailed, generic);
    this.#lastFlushEnd = performance.now();
    // At most 250 ms, so an event is never held long, whatever the load.
    this.#lastFlushMs = Math.min(250, this.#lastFlushEnd - started);
  }

  #broadcast(detailed: Buffer, generic: Buffer): void {
    const { maxBufferedBytes, drainTimeoutMs } = this.#opts;
    for (const c of this.#clients) {
      const socket = c.socket;
      const full = !socket.write(c.detail ? detailed : generic);
      // A client that does not read would make hearth hold every change for it, unbounded.
      if (socket.writableLength > maxBufferedBytes) this.#drop(c, 'buffer');
      else if (full && !c.drainTimer) {
        c.drainTimer = setTimeout(() => this.#drop(c, 'stalled'), drainTimeoutMs);
        c.drainTimer.unref();
      }
    }
  }

  #drop(client: Client, reason: 'buffer' | 'stalled'): void {
    this.#opts.metrics.sseDropped.inc({ listener: this.#opts.listener, reason });
    this.#remove(client);
    client.socket.destroy();
  }
}

const shown = (v: EntityView) => v;

/** The frames of `entries`, each with its id; `project` makes a state public or leaves it. */
function frames(
  entries: readonly JournalEntry[],
  journal: EventJournal,
  project: (v: EntityView) => EntityView,
): string {
  let out = '';
  for (const e of entries) {
    out +=
      e.type === 'state'
        ? `id: ${journal.idOf(e.seq)}\nevent: state\ndata: ${JSON.stringify(project(e.view))}\n\n`
        : `id: ${journal.idOf(e.seq)}\nevent: removed\ndata: ${JSON.stringify(e.removed)}\n\n`;
  }
  return out;
}

/** `Last-Event-ID` as EventSource sends it on a reconnect, or `?lastEventId=` from a client that cannot set it. */
function lastEventId(req: FastifyRequest): string | undefined {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header !== '') return header;
  const query = (req.query as Record<string, unknown> | undefined)?.lastEventId;
  return typeof query === 'string' && query !== '' ? query : undefined;
}
