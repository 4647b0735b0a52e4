import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../core/errors.js';
import type { EntityView, RuntimeApi } from '../core/runtime-api.js';
import type { ListenerName } from './access.js';
import type { Metrics } from './metrics.js';
import { publicView } from './public-view.js';

/*
 * GET /api/v1/events: one fan-out per listener. Each change is serialised once per audience
 * (detail for trusted clients, generic reasons for the rest), however many clients listen, and
 * the fan-out holds one subscription to the runtime, not one per client: with thousands of
 * idle dashboards, a button press costs one JSON.stringify, not thousands. What cannot be
 * shared is one socket write per client; changes that come while a fan-out rests go out
 * together, one write per client (see #enqueue).
 */

export interface EventStreamsOptions {
  runtime: RuntimeApi;
  metrics: Metrics;
  listener: ListenerName;
  /** Streams open at once on this listener (`http.maxStreams`); one more is a 503. */
  maxStreams: number;
  /** Bytes a client may leave unread before it is dropped; default 1 MiB. */
  maxBufferedBytes?: number;
  /** How long a client may leave its socket full before it is dropped; default 30 s. */
  drainTimeoutMs?: number;
  /** A comment this often keeps proxies and idle timeouts from closing a quiet stream; default 15 s. */
  keepAliveMs?: number;
}

interface Client {
  socket: Socket;
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
  #pending: EntityView[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** When the last fan-out ended and how long it took (performance.now() ms). */
  #lastFlushEnd = 0;
  #lastFlushMs = 0;
  #seq = 0;
  #unsubscribe: (() => void) | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: EventStreamsOptions) {
    this.#opts = { maxBufferedBytes: 1024 * 1024, drainTimeoutMs: 30_000, keepAliveMs: 15_000, ...opts };
  }

  /**
   * Serves one stream on `reply`; `detail` says whether this client sees failure detail. Past
   * `maxStreams`, answers 503 with Retry-After.
   */
  serve(req: FastifyRequest, reply: FastifyReply, detail: boolean): FastifyReply | undefined {
    if (req.method === 'HEAD') return reply.code(200).headers(headers).send();
    const { maxStreams, metrics, listener } = this.#opts;
    if (this.#closed || this.#clients.size >= maxStreams) {
      metrics.sseRefused.inc({ listener });
      const err = new HearthError(
        'HEARTH_ERR_TOO_MANY_STREAMS',
        `this listener already serves ${this.#clients.size} event streams, its limit (http.maxStreams ${maxStreams})`,
      );
      return reply.code(err.status).header('retry-after', '30').send({ error: err.toJSON() });
    }
    reply.hijack();
    const socket = req.raw.socket;
    // Gone already: 'close' has fired and would never remove it.
    if (socket.destroyed) return undefined;
    socket.setNoDelay(true);
    socket.write(head);
    const client: Client = { socket, detail, drainTimer: undefined };
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
    this.#closed = true;
    for (const c of this.#clients) c.socket.destroy();
    this.#stop();
  }

  #add(client: Client): void {
    this.#clients.add(client);
    this.#opts.metrics.sseStreams.set({ listener: this.#opts.listener }, this.#clients.size);
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.#opts.runtime.subscribe(
      (view) => this.#enqueue(view),
      `sse-${this.#opts.listener}`,
    );
    this.#keepAlive = setInterval(
      () => this.#broadcast(keepAliveFrame, keepAliveFrame),
      this.#opts.keepAliveMs,
    );
    this.#keepAlive.unref();
  }

  #remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    clearTimeout(client.drainTimer);
    this.#opts.metrics.sseStreams.set({ listener: this.#opts.listener }, this.#clients.size);
    if (this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#pending = [];
  }

  #enqueue(view: EntityView): void {
    this.#pending.push(view);
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
    const views = this.#pending;
    if (views.length === 0) return;
    this.#pending = [];
    const started = performance.now();
    let anyDetail = false;
    let anyPublic = false;
    for (const c of this.#clients) {
      if (c.detail) anyDetail = true;
      else anyPublic = true;
    }
    const first = this.#seq + 1;
    this.#seq += views.length;
    const frames = (project: (v: EntityView) => EntityView) =>
      views.map((v, i) => `id: ${first + i}\nevent: state\ndata: ${JSON.stringify(project(v))}\n\n`).join('');
    const detailed = anyDetail ? Buffer.from(frames((v) => v)) : empty;
    const generic = anyPublic ? Buffer.from(frames(publicView)) : empty;
    const built = (anyDetail ? views.length : 0) + (anyPublic ? views.length : 0);
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
