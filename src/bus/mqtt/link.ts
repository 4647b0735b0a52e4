import { EventEmitter } from 'node:events';
import os from 'node:os';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { z } from 'zod/v3';
import { HearthError, reasonOf } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/log.js';
import { advertisedPacketBytes, maxPayloadBytes } from './limits.js';
import { TopicLogLimit } from './log-limit.js';
import {
  describeTlsError,
  isTlsFileProblem,
  type MqttTlsFiles,
  type MqttTlsMaterial,
  readTlsFiles,
} from './tls.js';
import { parseJson, segmentPattern, Topics } from './topics.js';

export interface MqttLinkOptions {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  username?: string;
  password?: string;
  /**
   * With `mqtts://`: paths of PEM files, read when the link is made. `ca` is the CA to trust for
   * the broker's certificate (default: the system's); `cert` and `key`, a client certificate.
   * The broker's certificate is always verified, its name included.
   */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** The contents of those files, read before (then the paths are not read again). */
  tls?: MqttTlsMaterial | undefined;
  /** Default `hearth-<role>-<hostname>-<pid>`. */
  clientId?: string;
  /** Part of the default client id: `api`, `controller`, `agent`, `all`. */
  role?: string;
  /** Default `hearth`. */
  baseTopic?: string;
  /** Replaces the default last will (`<base>/cluster/members/<clientId>` → `offline`, retained). */
  will?: { topic: string; payload: string; retain?: boolean };
  log?: Logger;
  /** Reconnect backoff: first wait, doubled per failed attempt up to the cap. Default 250 ms / 10 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long one connection attempt may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Keep-alive, which is also how fast a silent broker is noticed (1.5×). Default 10 s. */
  keepaliveSeconds?: number;
  /**
   * The largest payload this process takes; a bigger one is logged with its topic and counted
   * (`stats.oversize`). Default {@link maxPayloadBytes} (8 MiB); the broker is told twice this
   * (limits.ts says why).
   */
  maxPayloadBytes?: number;
  /** Non-retained publishes kept while offline; past it they are dropped and counted. Default 1000. */
  offlineQueueMax?: number;
  /** Retained topics remembered to re-send after a reconnect. Default 10000. */
  retainedMax?: number;
  /**
   * Subscriptions with MQTT 5's No Local: the broker never sends this connection what it
   * published itself. A cluster process wants only the others' words (its own it has already
   * taken), and each of its own messages parsed again costs a toggle time.
   */
  noLocal?: boolean;
}

export interface PublishOptions {
  retain?: boolean;
  /**
   * For a retained publish: keep it to send again after a reconnect (default true). False where
   * another process may publish the same topic later (a button any api replica can press) and
   * this process's copy could be stale by then; such a publish made while down is dropped.
   */
  remember?: boolean;
  /** Default 1. */
  qos?: 0 | 1;
  properties?: IClientPublishOptions['properties'];
}

export interface IncomingMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  properties: NonNullable<mqtt.IPublishPacket['properties']>;
}

export type MessageHandler = (message: IncomingMessage) => void | Promise<void>;

/** What went wrong, counted, for metrics and tests. */
export interface LinkStats {
  /** Publishes dropped because the offline queue was full. */
  dropped: number;
  /** Publishes that failed after they were handed to the client (connection lost, broker refused). */
  publishErrors: number;
  /** Incoming payloads that were too big, not JSON or of the wrong shape. */
  garbage: number;
  /** Of those, payloads over the connection's cap ({@link MqttLink.maxPayloadBytes}), dropped unread. */
  oversize: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
  /** Successful connections after the first. */
  reconnects: number;
}

interface Registration {
  filter: string;
  handler: MessageHandler;
  owner: string;
}

interface Queued {
  topic: string;
  payload: string | Buffer;
  options: PublishOptions;
}

export type PublishOutcome = 'sent' | 'queued' | 'dropped';

/** The link is down: the message was not handed to the broker. */
export class LinkDownError extends Error {
  constructor(what: string) {
    super(`${what}: the MQTT broker is not connected; hearth reconnects by itself, try again in a moment`);
    this.name = 'LinkDownError';
  }
}

/**
 * One MQTT 5 connection per process, shared by the bus, request/response and the MQTT drivers.
 *
 * - Clean start with a session expiry of 0: a reconnect starts a fresh session, so the broker
 *   never replays a stale QoS 1 command to this process long after it was sent.
 * - Subscriptions live here, not in the session: after every (re)connect they are made again
 *   before `up` is emitted, so once `connected` is true every handler is receiving.
 * - Every retained publish is remembered per topic (latest wins) and sent again on each connect,
 *   so a broker restarted without persistence learns every state again. Other publishes made
 *   while down wait in a bounded queue (past it they are dropped and counted).
 * - `<base>/cluster/members/<clientId>` is `online` while connected; the last will sets it `offline`.
 *
 * Events: `up` (connected and subscribed), `down` (reason).
 */
export class MqttLink extends EventEmitter<{ up: []; down: [reason: string] }> {
  readonly clientId: string;
  readonly topics: Topics;
  readonly stats: LinkStats = {
    dropped: 0,
    publishErrors: 0,
    garbage: 0,
    oversize: 0,
    handlerErrors: 0,
    reconnects: 0,
  };
  /** The largest payload taken; see {@link MqttLinkOptions.maxPayloadBytes}. */
  readonly maxPayloadBytes: number;
  readonly #opts: MqttLinkOptions;
  readonly #log: Logger;
  readonly #registrations = new Set<Registration>();
  /** Filters subscribed at the broker on the current connection. */
  readonly #subscribed = new Set<string>();
  /**
   * MQTT 5 subscription identifier per filter. A broker sends one copy of a message per
   * matching subscription (Mosquitto does), each tagged with its subscription's identifier, so
   * each copy goes only to the handlers of that filter: overlapping filters never double up.
   */
  readonly #filterIds = new Map<string, number>();
  #nextFilterId = 1;
  /**
   * PUBACK reason codes by message id, for {@link publishNow}: mqtt.js hands the publish
   * callback the stored packet, not the PUBACK, so 16 (no matching subscribers) is read here.
   * Message ids are 16-bit, so this holds at most 65535 entries.
   */
  readonly #pubackReasons = new Map<number, number>();
  /**
   * The latest retained publish of this process per topic. Sent again on every connect: a
   * broker restarted without persistence has lost them, and while down only the latest matters.
   */
  readonly #retained = new Map<string, Queued>();
  /** Non-retained publishes made while down, in order, bounded. */
  #offline: Queued[] = [];
  #client: MqttClient | undefined;
  #connected = false;
  #stopped = false;
  #attempt = 0;
  #everUp = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #lastDownReason = 'not connected yet';
  /** For warnings of a fixed set of kinds (broker errors, a handler that throws). */
  #lastErrorLog = new Map<string, number>();
  /** For warnings keyed by topic, which anyone who may publish can multiply. */
  readonly #garbageLog: TopicLogLimit;
  /** Oversize messages apart, so a flood of small garbage never hides a device list too big. */
  readonly #oversizeLog: TopicLogLimit;
  /** The PEM contents of ca, cert and key; never logged. */
  readonly #tls: MqttTlsMaterial;
  /** The socket {@link publish} corked until the current run of ticks is over ({@link #batch}). */
  #corked: { uncork(): void } | undefined;

  constructor(options: MqttLinkOptions) {
    super();
    this.#opts = options;
    this.#log = (options.log ?? silentLogger()).child({ part: 'mqtt' });
    this.clientId = options.clientId ?? defaultClientId(options.role ?? 'hearth');
    if (!segmentPattern.test(this.clientId)) {
      throw new Error(
        `mqtt.clientId ${JSON.stringify(this.clientId)} is not usable: it must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -`,
      );
    }
    this.topics = new Topics(options.baseTopic ?? 'hearth');
    this.maxPayloadBytes = options.maxPayloadBytes ?? maxPayloadBytes;
    const warn = (msg: string) => this.#log.warn(msg);
    this.#garbageLog = new TopicLogLimit(warn, 'ignored MQTT messages');
    this.#oversizeLog = new TopicLogLimit(warn, 'MQTT messages over the size limit', { maxTopics: 5 });
    // Read once, here: a file missing at start is an error now, not a reconnect loop.
    this.#tls = options.tls ?? openTlsFiles(options);
  }

  /** True while connected to the broker with every subscription in place. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Why the link is down (the last error), for health output. */
  get downReason(): string {
    return this.#connected ? '' : this.#lastDownReason;
  }

  /** Starts connecting; returns at once. The link keeps reconnecting until {@link stop}. */
  start(): this {
    if (this.#client || this.#stopped) return this;
    const will = this.#opts.will ?? {
      topic: this.topics.member(this.clientId),
      payload: 'offline',
      retain: true,
    };
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: this.clientId,
      clean: true,
      // Reconnects are ours (#scheduleReconnect), with backoff; mqtt.js only retries at a fixed pace.
      reconnectPeriod: 0,
      connectTimeout: this.#opts.connectTimeoutMs ?? 5000,
      keepalive: this.#opts.keepaliveSeconds ?? 10,
      // Ours too: resubscribing is done before `up`, so nothing is missed after a reconnect.
      resubscribe: false,
      // Offline publishes go to our bounded queue; never into mqtt.js's unbounded one.
      queueQoSZero: false,
      properties: {
        sessionExpiryInterval: 0,
        maximumPacketSize: advertisedPacketBytes(this.maxPayloadBytes),
      },
      will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: will.retain ?? true },
      ...(this.#opts.username === undefined ? {} : { username: this.#opts.username }),
      ...(this.#opts.password === undefined ? {} : { password: this.#opts.password }),
      // Only for mqtts:// (the config refuses them with mqtt://); verification is never turned off.
      ...this.#tls,
      rejectUnauthorized: true,
    };
    const client = mqtt.connect(this.#opts.url, options);
    this.#client = client;
    client.on('connect', () => void this.#onConnect(client));
    client.on('close', () => this.#onClose('connection closed'));
    client.on('error', (err) => this.#onError(err));
    client.on('message', (topic, payload, packet) => this.#dispatch(topic, payload, packet));
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined && packet.reasonCode) {
        this.#pubackReasons.set(packet.messageId, packet.reasonCode);
      }
    });
    return this;
  }

  /** Resolves once the link is up; rejects after `timeoutMs`. */
  whenUp(timeoutMs: number): Promise<void> {
    if (this.#connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('up', onUp);
        reject(
          new Error(
            `MQTT broker at ${this.#safeUrl()} not reached within ${timeoutMs} ms: ${this.#lastDownReason}`,
          ),
        );
      }, timeoutMs);
      const onUp = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('up', onUp);
    });
  }

  /**
   * Publishes, or keeps it for the next connection while down. Never throws and never rejects:
   * a failure is counted and logged, so a caller may fire and forget. Payload objects are sent
   * as JSON.
   */
  publish(topic: string, payload: string | Buffer | object, options: PublishOptions = {}): PublishOutcome {
    const q: Queued = { topic, payload: encode(payload), options };
    if (options.retain && options.remember === false) {
      if (!this.#connected || !this.#client) return 'dropped';
      this.#retained.delete(topic);
    } else if (options.retain) {
      if (!this.#retained.has(topic) && this.#retained.size >= (this.#opts.retainedMax ?? 10_000)) {
        this.#logRateLimited(
          'retained',
          `MQTT: more than ${this.#retained.size} retained topics; ${topic} is not re-sent after a reconnect`,
        );
      } else {
        this.#retained.delete(topic);
        this.#retained.set(topic, q);
      }
    }
    if (this.#connected && this.#client) {
      this.#batch(this.#client);
      this.#send(this.#client, q).catch(() => {});
      return 'sent';
    }
    if (options.retain) return 'queued';
    if (this.#offline.length >= (this.#opts.offlineQueueMax ?? 1000)) {
      this.stats.dropped += 1;
      this.#logRateLimited('dropped', `MQTT offline queue full: dropped a publish to ${topic}`);
      return 'dropped';
    }
    this.#offline.push(q);
    return 'queued';
  }

  /**
   * Stops re-sending the retained messages this process published under `prefix` after a
   * reconnect: a role that stepped down must not overwrite its successor's state with its own.
   */
  forgetRetained(prefix: string): void {
    for (const topic of [...this.#retained.keys()])
      if (topic.startsWith(prefix)) this.#retained.delete(topic);
  }

  /**
   * Publishes now and resolves when the broker has it (PUBACK for QoS 1), with the broker's
   * reason code (16: no subscriber matched). Rejects with {@link LinkDownError} when down:
   * for requests, which must not wait for a broker.
   */
  async publishNow(
    topic: string,
    payload: string | Buffer | object,
    options: PublishOptions = {},
  ): Promise<{ reasonCode: number }> {
    const client = this.#client;
    if (!this.#connected || !client) throw new LinkDownError(`publish to ${topic}`);
    return this.#send(client, { topic, payload: encode(payload), options });
  }

  /**
   * Calls `handler` for every message on topics matching `filter`, until `off(owner)` or the
   * returned function. The subscription is made again after every reconnect. A handler that
   * throws is logged and counted; the others still run.
   */
  subscribe(filter: string, handler: MessageHandler, owner: string): () => void {
    validateFilter(filter);
    const reg: Registration = { filter, handler, owner };
    this.#registrations.add(reg);
    const client = this.#client;
    if (this.#connected && client && !this.#subscribed.has(filter)) {
      this.#subscribed.add(filter);
      this.#brokerSubscribe(client, filter).catch((err: unknown) => {
        this.#subscribed.delete(filter);
        this.#log.warn(
          { filter, err: reasonOf(err) },
          'MQTT subscribe failed; retried on the next reconnect',
        );
      });
    }
    return () => this.#remove((r) => r === reg);
  }

  /**
   * Like {@link subscribe}, for JSON payloads of one shape: anything too big, not JSON or of
   * the wrong shape is counted in `stats.garbage` and ignored.
   */
  subscribeJson<T>(
    filter: string,
    schema: z.ZodType<T, z.ZodTypeDef, unknown>,
    handler: (value: T, message: IncomingMessage) => void | Promise<void>,
    owner: string,
  ): () => void {
    return this.subscribe(
      filter,
      (message) => {
        const value = parseJson(schema, message.payload);
        if (value === undefined) {
          this.countGarbage(message.topic, 'not JSON of the expected shape');
          return;
        }
        return handler(value, message);
      },
      owner,
    );
  }

  /** Drops every handler `owner` registered (and the broker subscriptions no one needs any more). */
  offOwner(owner: string): void {
    this.#remove((r) => r.owner === owner);
  }

  /** Counts and (rate-limited) logs a payload that a handler could not use. */
  countGarbage(topic: string, why: string): void {
    this.stats.garbage += 1;
    this.#garbageLog.warn(topic, `ignored an MQTT message on ${topic}: ${why}`);
  }

  /** Publishes `offline` for this member, then disconnects. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#garbageLog.stop();
    this.#oversizeLog.stop();
    const client = this.#client;
    if (!client) return;
    if (this.#connected && !this.#opts.will) {
      await Promise.race([
        this.#send(client, {
          topic: this.topics.member(this.clientId),
          payload: 'offline',
          options: { retain: true },
        }).catch(() => {}),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
    }
    this.#setDown('stopped');
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }

  /** Drops the connection without a clean goodbye, as a crash would (tests and failover drills). */
  async destroy(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#garbageLog.stop();
    this.#oversizeLog.stop();
    this.#setDown('destroyed');
    const client = this.#client;
    if (client) {
      // Destroying the socket first keeps mqtt.js from sending DISCONNECT, so the will is sent.
      client.stream?.destroy();
      await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    }
  }

  async #onConnect(client: MqttClient): Promise<void> {
    if (this.#stopped || client !== this.#client) return;
    // A command is one small packet each way: Nagle's algorithm would hold it back up to 40 ms.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    this.#subscribed.clear();
    try {
      // Until nothing new: a part that subscribes while these go out (not yet `connected`, so
      // subscribe() leaves it to us) is subscribed in the next round, never forgotten.
      const attempted = new Set<string>();
      await this.#subscribeNew(client, attempted);
      if (!this.#opts.will) {
        await this.#send(client, {
          topic: this.topics.member(this.clientId),
          payload: 'online',
          options: { retain: true },
        });
        // A part that subscribed while `online` went out is not forgotten either: from the last
        // round's end to `connected` below nothing may await.
        await this.#subscribeNew(client, attempted);
      }
    } catch (err) {
      // The connection went away while subscribing: `close` follows and schedules a reconnect.
      this.#log.debug({ err: reasonOf(err) }, 'MQTT connection lost while subscribing');
      return;
    }
    if (!client.connected || this.#stopped) return;
    if (this.#everUp) this.stats.reconnects += 1;
    this.#everUp = true;
    this.#attempt = 0;
    this.#connected = true;
    this.#lastDownReason = '';
    this.#log.info({ url: this.#safeUrl(), clientId: this.clientId }, 'MQTT connected');
    this.#flushOffline(client);
    this.emit('up');
  }

  #flushOffline(client: MqttClient): void {
    const queued = [...this.#retained.values(), ...this.#offline];
    this.#offline = [];
    for (const q of queued) this.#send(client, q).catch(() => {});
  }

  #onClose(reason: string): void {
    this.#setDown(reason);
    this.#scheduleReconnect();
  }

  #onError(err: Error): void {
    const tls = describeTlsError(err);
    if (tls) {
      this.#lastDownReason = tls.replace(/^MQTT: /, '');
      this.#logRateLimited('error', tls);
      return;
    }
    const reason = reasonOf(err);
    this.#lastDownReason = /Bad User Name|Not authorized|Bad username/i.test(reason)
      ? `${reason} (check mqtt.username and mqtt.password)`
      : reason;
    this.#logRateLimited('error', `MQTT: ${this.#lastDownReason}`);
  }

  #setDown(reason: string): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.#subscribed.clear();
    this.#lastDownReason = reason;
    // A clean stop is not trouble: one info line, never a warning about reconnecting.
    if (this.#stopped) this.#log.info({ url: this.#safeUrl() }, 'MQTT connection closed');
    else this.#log.warn({ url: this.#safeUrl(), reason }, 'MQTT disconnected; reconnecting');
    this.emit('down', reason);
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#reconnectTimer) return;
    const min = this.#opts.reconnectMinMs ?? 250;
    const max = this.#opts.reconnectMaxMs ?? 10_000;
    const base = Math.min(max, min * 2 ** Math.min(this.#attempt, 20));
    // Jitter, so that every process of a cluster does not knock on a restarted broker at once.
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.#attempt += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#stopped) this.#client?.reconnect();
    }, delay);
  }

  /** Subscribes, round after round until none is new, every registered filter not in `attempted`. */
  async #subscribeNew(client: MqttClient, attempted: Set<string>): Promise<void> {
    for (;;) {
      const filters = [...new Set([...this.#registrations].map((r) => r.filter))].filter(
        (f) => !attempted.has(f),
      );
      if (filters.length === 0) return;
      for (const f of filters) attempted.add(f);
      await Promise.all(
        filters.map(async (f) => {
          if (await this.#brokerSubscribe(client, f)) this.#subscribed.add(f);
        }),
      );
    }
  }

  /** One SUBSCRIBE per filter, as the subscription identifier belongs to the whole packet. */
  async #brokerSubscribe(client: MqttClient, filter: string): Promise<boolean> {
    let id = this.#filterIds.get(filter);
    if (id === undefined) {
      id = this.#nextFilterId++;
      this.#filterIds.set(filter, id);
    }
    const granted = await client.subscribeAsync(filter, {
      qos: 1,
      ...(this.#opts.noLocal ? { nl: true } : {}),
      properties: { subscriptionIdentifier: id },
    });
    if (granted.some((g) => g.qos === 128)) {
      this.#log.warn({ filter }, 'MQTT broker refused a subscription; check its ACL for this user');
      return false;
    }
    return true;
  }

  /**
   * Holds fire-and-forget publishes in the socket until the current run of ticks is over, so
   * they go out in one write. mqtt.js handles each incoming packet in its own process.nextTick
   * and mqtt-packet flushes after each publish, so a burst of sensor readings, each republished
   * as `<base>/<id>/state`, cost one writev syscall per state (a fifth of hearth's time in
   * bench section 14). A microtask runs once the nextTick queue is empty: after every packet of
   * the chunk just read, before the event loop goes on; a lone publish is delayed by nothing.
   */
  #batch(client: MqttClient): void {
    if (this.#corked) return;
    const stream = client.stream;
    stream.cork();
    this.#corked = stream;
    queueMicrotask(() => {
      this.#corked = undefined;
      stream.uncork();
    });
  }

  #send(client: MqttClient, q: Queued): Promise<{ reasonCode: number }> {
    const qos = q.options.qos ?? 1;
    return client
      .publishAsync(q.topic, q.payload, {
        qos,
        retain: q.options.retain ?? false,
        ...(q.options.properties ? { properties: q.options.properties } : {}),
      })
      .then((packet) => {
        const id = packet?.messageId;
        if (id === undefined) return { reasonCode: 0 };
        const reasonCode = this.#pubackReasons.get(id) ?? 0;
        this.#pubackReasons.delete(id);
        return { reasonCode };
      })
      .catch((err: unknown) => {
        this.stats.publishErrors += 1;
        this.#logRateLimited('publish', `MQTT publish to ${q.topic} failed: ${reasonOf(err)}`);
        throw err;
      });
  }

  #dispatch(topic: string, payload: Buffer, packet: mqtt.IPublishPacket): void {
    if (payload.length > this.maxPayloadBytes) {
      this.stats.garbage += 1;
      this.stats.oversize += 1;
      this.#oversizeLog.warn(
        topic,
        `dropped an MQTT message on ${topic}: its ${payload.length} bytes are over hearth's limit of ${this.maxPayloadBytes} bytes for one message`,
      );
      return;
    }
    const message: IncomingMessage = {
      topic,
      payload,
      retain: packet.retain,
      properties: packet.properties ?? {},
    };
    const ids = packet.properties?.subscriptionIdentifier;
    const via = ids === undefined ? undefined : new Set(Array.isArray(ids) ? ids : [ids]);
    for (const reg of this.#registrations) {
      if (via ? !via.has(this.#filterIds.get(reg.filter) ?? -1) : !topicMatches(reg.filter, topic)) continue;
      try {
        const r = reg.handler(message);
        if (r && typeof r.then === 'function')
          r.catch((err: unknown) => this.#handlerFailed(reg, topic, err));
      } catch (err) {
        this.#handlerFailed(reg, topic, err);
      }
    }
  }

  #handlerFailed(reg: Registration, topic: string, err: unknown): void {
    this.stats.handlerErrors += 1;
    this.#logRateLimited(
      `handler:${reg.owner}`,
      `MQTT handler of ${reg.owner} failed on ${topic}: ${reasonOf(err)}`,
    );
  }

  #remove(match: (r: Registration) => boolean): void {
    const removed = [...this.#registrations].filter(match);
    for (const r of removed) this.#registrations.delete(r);
    const still = new Set([...this.#registrations].map((r) => r.filter));
    const unused = [...new Set(removed.map((r) => r.filter))].filter(
      (f) => !still.has(f) && this.#subscribed.has(f),
    );
    for (const f of unused) this.#subscribed.delete(f);
    for (const f of removed.map((r) => r.filter)) if (!still.has(f)) this.#filterIds.delete(f);
    if (unused.length > 0 && this.#connected) this.#client?.unsubscribeAsync(unused).catch(() => {});
  }

  /** One line per kind of trouble per 10 s: a flapping broker or a garbage publisher must not fill the disk. */
  #logRateLimited(key: string, msg: string): void {
    const now = Date.now();
    if ((this.#lastErrorLog.get(key) ?? 0) > now - 10_000) return;
    if (this.#lastErrorLog.size > 1000) this.#lastErrorLog.clear();
    this.#lastErrorLog.set(key, now);
    this.#log.warn(msg);
  }

  #safeUrl(): string {
    try {
      const u = new URL(this.#opts.url);
      u.username = '';
      u.password = '';
      return u.toString();
    } catch {
      return '(unparsable url)';
    }
  }
}

/**
 * Reads `mqtt.ca`, `mqtt.cert` and `mqtt.key` for {@link MqttLinkOptions.tls}; throws a
 * HEARTH_ERR_CONFIG whose one line names the field and the path (never the contents).
 */
export function openTlsFiles(files: MqttTlsFiles): MqttTlsMaterial {
  const tls = readTlsFiles(files);
  if (isTlsFileProblem(tls)) throw new HearthError('HEARTH_ERR_CONFIG', `mqtt.${tls.field}: ${tls.message}`);
  return tls;
}

/** Creates a link and starts connecting; see {@link MqttLink}. */
export function connectLink(options: MqttLinkOptions): MqttLink {
  return new MqttLink(options).start();
}

/** `hearth-<role>-<hostname>-<pid>`, cut and cleaned to a valid topic level. */
export function defaultClientId(role: string): string {
  const host = os
    .hostname()
    .replace(/[^A-Za-z0-9_-]/g, '-')
    .slice(0, 32);
  const id = `hearth-${role.replace(/[^A-Za-z0-9_-]/g, '-')}-${host}-${process.pid}`;
  return id.slice(0, 64);
}

/** MQTT topic filter matching: `+` one level, `#` the rest (including the parent level). */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

function validateFilter(filter: string): void {
  const levels = filter.split('/');
  const bad =
    filter.length === 0 ||
    levels.some(
      (l, i) => (l.includes('#') && (l !== '#' || i !== levels.length - 1)) || (l.includes('+') && l !== '+'),
    );
  if (bad) {
    throw new Error(
      `MQTT topic filter ${JSON.stringify(filter)} is not valid: + must stand alone in a level and # only as the last level`,
    );
  }
}

function encode(payload: string | Buffer | object): string | Buffer {
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) return payload;
  return JSON.stringify(payload);
}
