import { randomBytes } from 'node:crypto';
import { z } from 'zod/v3';
import { reasonOf } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import type { IncomingMessage, MqttLink } from './link.js';
import { parseJson } from './topics.js';

/**
 * Why a request failed. The caller maps `status` to its HTTP answer: 503 when nothing ran
 * (no broker, no responder, too many in flight), 504 when the outcome is unknown (deadline,
 * connection lost while waiting), the responder's own status for its error reply.
 */
export type RpcFailure =
  | 'link-down'
  | 'no-responder'
  | 'overloaded'
  | 'timeout'
  | 'link-lost'
  | 'bad-reply'
  | 'remote';

export class RpcError extends Error {
  readonly kind: RpcFailure;
  /** A HEARTH_ERR_* code: the responder's for `remote`, else one that fits the failure. */
  readonly code: string;
  readonly status: number;
  readonly hint: string;

  constructor(kind: RpcFailure, code: string, status: number, message: string, hint: string) {
    super(message);
    this.name = 'RpcError';
    this.kind = kind;
    this.code = code;
    this.status = status;
    this.hint = hint;
  }

  toJSON(): { code: string; message: string; hint: string } {
    return { code: this.code, message: this.message, hint: this.hint };
  }
}

/** What a request carries on the wire: its absolute deadline (epoch ms) and the body. */
export const requestEnvelopeSchema = z.object({ deadline: z.number().finite(), body: z.unknown() });

/** What a reply carries: `{ result }` or `{ error: { code, message, hint, status } }`. */
export const replyEnvelopeSchema = z.union([
  z.object({
    error: z.object({
      code: z.string().max(100),
      message: z.string().max(2000),
      hint: z.string().max(2000).default(''),
      status: z.number().int().min(400).max(599).default(502),
    }),
  }),
  z.object({ result: z.unknown() }),
]);

export interface RequestContext {
  /** Epoch ms after which the caller no longer waits: do nothing after it. */
  deadline: number;
  /** Aborts at the deadline. */
  signal: AbortSignal;
  topic: string;
}

export type RpcHandler = (body: unknown, ctx: RequestContext) => unknown | Promise<unknown>;

export interface ServeOptions {
  /** Who the subscription belongs to (MqttLink owners); default `serve:<topic>`. */
  owner?: string;
  /**
   * The longest a request may take from its arrival, whatever deadline it carries (a body's
   * own limit, such as the entity's deadline); undefined keeps the request's. A deadline a day
   * ahead (a forged request, a caller whose clock is a day fast) then holds a responder no longer
   * than this: its handler's deadline and signal, and the memory of its correlation id, end here.
   */
  maxMs?: (body: unknown) => number | undefined;
}

export interface RpcOptions {
  log?: Logger;
  /** Requests waiting for a reply; past it `request` rejects at once. Default 256. */
  maxInFlight?: number;
  /** Requests a responder remembers (to answer a QoS 1 redelivery without running it again). Default 4096. */
  maxRemembered?: number;
}

export interface RpcStats {
  /** Requests dropped by a responder because their deadline had passed when they arrived. */
  late: number;
  /** Redelivered requests answered from memory instead of being run again. */
  duplicates: number;
  /** Replies that matched no waiting request (it had timed out), and requests without reply topic. */
  unmatched: number;
  /** Requests or replies that were not JSON of the expected shape. */
  garbage: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: RpcError) => void;
  timer: NodeJS.Timeout;
  topic: string;
}

interface Remembered {
  deadline: number;
  /** The reply once the handler finished; undefined while it runs. */
  reply: object | undefined;
}

/**
 * Request/response over MQTT 5 (response topic + correlation data), within the caller's deadline.
 *
 * A request is never acted on late: it carries its absolute deadline, the broker drops it at
 * its message expiry, and the responder drops one that arrives after the deadline. A request
 * is never acted on twice: the responder remembers correlation ids until their deadline has
 * passed (after which a redelivery is dropped as late anyway).
 */
export class MqttRpc {
  readonly stats: RpcStats = { late: 0, duplicates: 0, unmatched: 0, garbage: 0 };
  readonly #link: MqttLink;
  readonly #log: Logger;
  readonly #maxInFlight: number;
  readonly #maxRemembered: number;
  readonly #replyTopic: string;
  readonly #owner: string;
  readonly #pending = new Map<string, Pending>();
  readonly #remembered = new Map<string, Remembered>();
  #started = false;

  constructor(link: MqttLink, options: RpcOptions = {}) {
    this.#link = link;
    this.#log = (options.log ?? silentLogger()).child({ part: 'mqtt-rpc' });
    this.#maxInFlight = options.maxInFlight ?? 256;
    this.#maxRemembered = options.maxRemembered ?? 4096;
    this.#replyTopic = link.topics.reply(link.clientId);
    this.#owner = `rpc:${randomBytes(4).toString('hex')}`;
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Subscribes to this process's reply topic. Call once, before the first request. */
  start(): this {
    if (this.#started) return this;
    this.#started = true;
    this.#link.subscribe(this.#replyTopic, (m) => this.#onReply(m), this.#owner);
    // Replies are lost with the connection (clean session): fail fast rather than wait out the deadline.
    this.#link.on('down', this.#onDown);
    return this;
  }

  stop(): void {
    this.#link.offOwner(this.#owner);
    this.#link.off('down', this.#onDown);
    this.#failAll('link-lost', 'the request was cancelled because hearth is stopping');
    this.#started = false;
  }

  /**
   * Sends `body` to whoever serves `topic` and resolves with its result, or rejects with an
   * {@link RpcError} no later than `timeoutMs` from now.
   */
  request(topic: string, body: unknown, options: { timeoutMs: number }): Promise<unknown> {
    const timeoutMs = Math.max(1, Math.round(options.timeoutMs));
    if (!this.#started) this.start();
    if (!this.#link.connected) {
      return Promise.reject(
        new RpcError(
          'link-down',
          'HEARTH_ERR_NOT_READY',
          503,
          `request to ${topic} not sent: the MQTT broker is not connected (${this.#link.downReason})`,
          'Check that the MQTT broker runs and mqtt.url points at it; hearth reconnects by itself.',
        ),
      );
    }
    if (this.#pending.size >= this.#maxInFlight) {
      return Promise.reject(
        new RpcError(
          'overloaded',
          'HEARTH_ERR_NOT_READY',
          503,
          `request to ${topic} not sent: ${this.#pending.size} requests are already waiting for replies (the limit)`,
          'An agent is slow or gone; try again in a moment.',
        ),
      );
    }
    const correlation = randomBytes(16);
    const id = correlation.toString('hex');
    const deadline = Date.now() + timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(
          id,
          new RpcError(
            'timeout',
            'HEARTH_ERR_DEVICE_TIMEOUT',
            504,
            `no reply to the request to ${topic} within ${timeoutMs} ms`,
            'The agent that owns the device is slow or hung; it did not act after the deadline. Try again.',
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, topic });
      this.#link
        .publishNow(
          topic,
          { deadline, body },
          {
            qos: 1,
            properties: {
              responseTopic: this.#replyTopic,
              correlationData: correlation,
              // Whole seconds, rounded up: the broker discards it by then; the deadline does the rest.
              messageExpiryInterval: Math.ceil(timeoutMs / 1000),
              contentType: 'application/json',
            },
          },
        )
        .then(({ reasonCode }) => {
          // 16: the broker had no subscriber for it. No agent serves this topic now.
          if (reasonCode === 16) {
            this.#settle(
              id,
              new RpcError(
                'no-responder',
                'HEARTH_ERR_NOT_READY',
                503,
                `nothing serves ${topic}: the agent is not connected to the MQTT broker`,
                'Check that the agent process for this device runs; the command was not run.',
              ),
            );
          }
        })
        .catch((err: unknown) => {
          // A reason code is the broker's refusal: nothing was delivered. Anything else is a
          // connection lost after the message was written: it may have been delivered.
          const refused = typeof (err as { code?: unknown }).code === 'number';
          this.#settle(
            id,
            refused
              ? new RpcError(
                  'no-responder',
                  'HEARTH_ERR_NOT_READY',
                  503,
                  `the MQTT broker refused the request to ${topic}: ${reasonOf(err)}`,
                  "Check the broker's ACL for this MQTT user; the command was not run.",
                )
              : new RpcError(
                  'link-lost',
                  'HEARTH_ERR_DEVICE_TIMEOUT',
                  504,
                  `request to ${topic} failed: ${reasonOf(err)}; the command may or may not have run`,
                  'The connection to the MQTT broker was lost; hearth reconnects by itself. Check the state, then try again.',
                ),
          );
        });
    });
  }

  /**
   * Serves requests on `topic`: runs `handler` once per request that arrives before its
   * deadline, and replies with its result or its error. Returns a function that stops serving.
   */
  serve(topic: string, handler: RpcHandler, options: ServeOptions = {}): () => void {
    const owner = options.owner ?? `serve:${topic}`;
    return this.#link.subscribe(topic, (m) => this.#onRequest(m, handler, options.maxMs), owner);
  }

  async #onRequest(m: IncomingMessage, handler: RpcHandler, maxMs: ServeOptions['maxMs']): Promise<void> {
    const responseTopic = m.properties.responseTopic;
    const correlation = m.properties.correlationData;
    if (!responseTopic || !correlation || m.retain) {
      // A retained or plain publish on a command topic is no request: never act on it.
      this.stats.unmatched += 1;
      this.#link.countGarbage(
        m.topic,
        'a request needs a response topic and correlation data, and must not be retained',
      );
      return;
    }
    const request = parseJson(requestEnvelopeSchema, m.payload);
    if (!request) {
      this.stats.garbage += 1;
      this.#link.countGarbage(m.topic, 'request is not JSON { deadline, body }');
      this.#reply(responseTopic, correlation, Date.now() + 5000, {
        error: {
          code: 'HEARTH_ERR_BAD_REQUEST',
          message: `request on ${m.topic} is not JSON of the form { "deadline": <epoch ms>, "body": ... }`,
          hint: 'See docs/mqtt.md for the request format.',
          status: 400,
        },
      });
      return;
    }
    const now = Date.now();
    if (request.deadline <= now) {
      this.stats.late += 1;
      return;
    }
    const bound = maxMs?.(request.body);
    const deadline =
      bound === undefined ? request.deadline : Math.min(request.deadline, now + Math.max(1, bound));
    const key = `${responseTopic}\u0000${correlation.toString('hex')}`;
    const seen = this.#remembered.get(key);
    if (seen) {
      this.stats.duplicates += 1;
      if (seen.reply) this.#reply(responseTopic, correlation, seen.deadline, seen.reply);
      return;
    }
    if (!this.#remember(key, deadline, now)) {
      this.#reply(responseTopic, correlation, deadline, {
        error: {
          code: 'HEARTH_ERR_NOT_READY',
          message: `the agent serving ${m.topic} has ${this.#remembered.size} requests in progress (its limit)`,
          hint: 'Try again in a moment.',
          status: 503,
        },
      });
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('deadline passed')), deadline - now);
    let reply: object;
    try {
      const result = await handler(request.body, {
        deadline,
        signal: controller.signal,
        topic: m.topic,
      });
      reply = { result: result === undefined ? null : result };
    } catch (err) {
      reply = { error: errorReply(err) };
    } finally {
      clearTimeout(timer);
    }
    const entry = this.#remembered.get(key);
    if (entry) entry.reply = reply;
    if (Date.now() < deadline) this.#reply(responseTopic, correlation, deadline, reply);
  }

  /** Remembers a request until its deadline; false when full of requests still within theirs. */
  #remember(key: string, deadline: number, now: number): boolean {
    if (this.#remembered.size >= this.#maxRemembered) {
      for (const [k, r] of this.#remembered) if (r.deadline <= now) this.#remembered.delete(k);
    }
    if (this.#remembered.size >= this.#maxRemembered) return false;
    this.#remembered.set(key, { deadline, reply: undefined });
    return true;
  }

  #reply(topic: string, correlation: Buffer, deadline: number, reply: object): void {
    const left = Math.max(1, deadline - Date.now());
    this.#link
      .publishNow(topic, reply, {
        // QoS 0: a reply is lost only with the connection, and then the caller has already
        // failed (link lost, 504); an acknowledgement would only add a round trip to every command.
        qos: 0,
        properties: {
          correlationData: correlation,
          messageExpiryInterval: Math.ceil(left / 1000),
          contentType: 'application/json',
        },
      })
      .catch((err: unknown) => this.#log.debug({ err: reasonOf(err) }, 'reply not sent'));
  }

  #onReply(m: IncomingMessage): void {
    const correlation = m.properties.correlationData;
    const id = correlation?.toString('hex');
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!id || !pending) {
      this.stats.unmatched += 1;
      return;
    }
    const reply = parseJson(replyEnvelopeSchema, m.payload);
    if (!reply) {
      this.stats.garbage += 1;
      this.#settle(
        id,
        new RpcError(
          'bad-reply',
          'HEARTH_ERR_DEVICE_FAILED',
          502,
          `the reply to the request to ${pending.topic} is not JSON { result } or { error }`,
          'The agent may run another hearth version; update every hearth process to the same version.',
        ),
      );
      return;
    }
    if ('error' in reply) {
      const e = reply.error;
      this.#settle(id, new RpcError('remote', e.code, e.status, e.message, e.hint));
      return;
    }
    this.#settle(id, undefined, reply.result);
  }

  #settle(id: string, err: RpcError | undefined, result?: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(result);
  }

  readonly #onDown = (): void => {
    this.#failAll(
      'link-lost',
      'the connection to the MQTT broker was lost while waiting for the reply; the command may or may not have run',
    );
  };

  #failAll(kind: RpcFailure, why: string): void {
    for (const [id, p] of [...this.#pending]) {
      this.#settle(
        id,
        new RpcError(
          kind,
          'HEARTH_ERR_DEVICE_TIMEOUT',
          504,
          `request to ${p.topic}: ${why}`,
          'Check the state, then try again.',
        ),
      );
    }
  }
}

function errorReply(err: unknown): { code: string; message: string; hint: string; status: number } {
  const e = err as { code?: unknown; status?: unknown; hint?: unknown } | undefined;
  const hearth = typeof e?.code === 'string' && e.code.startsWith('HEARTH_ERR_');
  const code = hearth ? (e?.code as string) : 'HEARTH_ERR_DEVICE_FAILED';
  const status = typeof e?.status === 'number' && e.status >= 400 && e.status <= 599 ? e.status : 502;
  const hint = typeof e?.hint === 'string' ? e.hint : 'See the agent log for details.';
  // A HEARTH_ERR_ code travels in `code`; other codes (ECONNREFUSED) stay in the message.
  const message = hearth && err instanceof Error ? err.message.replace(/\s*\n\s*/g, ' ') : reasonOf(err);
  return { code, message: message.slice(0, 2000), hint, status };
}
