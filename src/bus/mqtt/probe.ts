import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { HearthError, reasonOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { MqttTlsMaterial } from './tls.js';
import { Topics } from './topics.js';

/**
 * Before a role of a cluster starts, is the broker locked? A client without a user name must not
 * be able to publish on the cluster topics the role acts on: whoever could would run commands,
 * run automations and forge states. The probe shows it by trying, never by reading settings:
 *
 * 1. A client without a user name connects. Refused: the broker is locked (done).
 * 2. Taken: a connection with the role's own user subscribes to the role's topics, the
 *    anonymous client publishes a probe on each (QoS 1), and the role's connection then
 *    publishes a marker to itself. The marker is sent after every probe was acknowledged, so by
 *    the time it arrives every probe the broker delivered has arrived before it. A PUBACK proves
 *    nothing: Mosquitto 2 acknowledges a publish its ACL drops (MQTT 3.1.1) or says "not
 *    authorized" (MQTT 5); only what reaches the role counts.
 *
 * Any probe delivered: the role refuses to start, with one line saying why and what to do.
 * `mqtt.insecure: true` skips it (a broker the household trusts as it is). docs/mqtt.md has the
 * locked set-up; src/bus/mqtt/acl.ts makes its ACL.
 */

export interface ProbeSettings {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  baseTopic: string;
  /** `mqtt.insecure`: do not probe. */
  insecure?: boolean | undefined;
  /** The TLS files' contents (roles.ts reads them once). */
  tls?: MqttTlsMaterial | undefined;
}

export interface ProbeOptions {
  role: 'api' | 'controller' | 'agent';
  /** The agent name, for `agent`. */
  agent?: string;
  log: Logger;
  /** How long the broker may take to be reached at start; default 30 s. */
  reachMs?: number;
  /** Closes what the role opened before, when it must not start (the probe throws after it). */
  undo?: () => Promise<void>;
}

/** How long one connection attempt, and the wait for the marker, may take. */
const stepMs = 5000;

/**
 * Throws HEARTH_ERR_CONFIG when a client without a user name can publish on this role's cluster
 * topics, HEARTH_ERR_NOT_READY when the broker cannot be reached or refuses the role's user
 * (after `opts.undo`, either way).
 */
export async function refuseOpenBroker(settings: ProbeSettings, opts: ProbeOptions): Promise<void> {
  try {
    await probe(settings, opts);
  } catch (err) {
    await opts.undo?.().catch(() => {});
    throw err;
  }
}

async function probe(settings: ProbeSettings, opts: ProbeOptions): Promise<void> {
  const { log } = opts;
  if (settings.insecure === true) {
    log.warn(
      'mqtt.insecure is true: not checking whether clients without a user name may publish on the cluster topics; anyone who reaches the broker may then command devices',
    );
    return;
  }
  const nonce = randomBytes(6).toString('hex');
  const t = new Topics(settings.baseTopic);
  const observerId = `hearth-probe-${nonce}`;
  const probeTopics = topicsOf(opts, t, observerId, nonce);
  const marker = t.member(observerId);
  const payload = `hearth probe ${nonce}`;

  const observer = await reach(settings, observerId, opts.reachMs ?? 30_000);
  let anonymous: MqttClient | undefined;
  try {
    const seen: string[] = [];
    let markerBack = false;
    observer.on('message', (topic, body) => {
      if (topic === marker) markerBack = true;
      else if (probeTopics.includes(topic) && body.toString() === payload) seen.push(topic);
    });
    // Granted or not: a topic the role may not read is one it does not act on.
    await observer.subscribeAsync([...probeTopics, marker], { qos: 1 });

    anonymous = await connectAnonymously(settings, nonce);
    if (!anonymous) {
      log.debug('MQTT broker refuses clients without a user name');
      return;
    }
    for (const topic of probeTopics) {
      // Acknowledged, refused or dropped: only delivery says anything (above).
      await within(anonymous.publishAsync(topic, payload, { qos: 1 })).catch(() => {});
    }
    await within(observer.publishAsync(marker, 'online', { qos: 1 })).catch(() => {});
    const deadline = Date.now() + stepMs;
    while (!markerBack && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (seen.length > 0) {
      throw new HearthError(
        'HEARTH_ERR_CONFIG',
        `the MQTT broker at ${safeUrl(settings.url)} lets a client without a user name publish on hearth's cluster topics (a test message published anonymously reached this ${opts.role} on ${seen[0]}): anyone who reaches the broker could command devices, run automations and forge states. Lock it as docs/mqtt.md says ("Locking the broker": allow_anonymous false, a user per role and its ACL), or set mqtt.insecure: true to run on this broker anyway`,
      );
    }
    if (!markerBack) {
      throw new HearthError(
        'HEARTH_ERR_CONFIG',
        `the MQTT broker at ${safeUrl(settings.url)} takes clients without a user name, and hearth could not check what they may publish: its user ${settings.username ?? '(none)'} did not get its own message on ${marker} back within ${stepMs} ms. Set allow_anonymous false on the broker, or grant hearth's users readwrite on ${t.root}/members/+ (docs/mqtt.md, "Locking the broker")`,
      );
    }
    log.debug('MQTT broker takes clients without a user name but lets them publish on no cluster topic');
  } finally {
    await Promise.all([observer.endAsync(true), anonymous?.endAsync(true)]).catch(() => {});
  }
}

/** The topics this role acts on, as the probe publishes them (ids made up, so nothing real is touched). */
function topicsOf(opts: ProbeOptions, t: Topics, observerId: string, nonce: string): string[] {
  const id = `hearth-probe-${nonce}`;
  const topics = [t.reply(observerId)];
  if (opts.role === 'agent') topics.push(t.cmd(opts.agent ?? 'main'));
  else topics.push(t.state(id), t.event(id), t.leader(id));
  if (opts.role === 'api') topics.push(t.backup);
  if (opts.role === 'controller') topics.push(t.ctl('run'));
  return topics;
}

/** Resolves or rejects as `p` does, or rejects after {@link stepMs}: a client the broker dropped never hangs the start. */
function within<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${stepMs} ms`)), stepMs);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A connected client: an error after the connection (the broker closing it) is not a crash. */
function quiet(client: MqttClient): MqttClient {
  client.on('error', () => {});
  return client;
}

/**
 * Connects once, from options rather than a URL string: mqtt.js parses a string with Node's
 * deprecated `url.parse()`, whose warning on Node 24 would break the one-line refusal.
 */
function open(options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(options);
    const fail = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('error', fail);
    client.once('close', () => fail(new Error('the broker closed the connection')));
    client.once('connect', () => {
      client.removeAllListeners('error');
      client.removeAllListeners('close');
      resolve(client);
    });
  });
}

function baseOptions(settings: ProbeSettings, clientId: string): IClientOptions {
  const u = new URL(settings.url);
  return {
    protocol: u.protocol.replace(/:$/, '') as IClientOptions['protocol'],
    hostname: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : u.protocol === 'mqtts:' ? 8883 : 1883,
    protocolVersion: 5,
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: stepMs,
    properties: { sessionExpiryInterval: 0 },
    ...(settings.tls?.ca === undefined ? {} : { ca: settings.tls.ca }),
    rejectUnauthorized: true,
  };
}

/** The role's own connection, retried until the broker answers or `reachMs` has passed. */
async function reach(settings: ProbeSettings, clientId: string, reachMs: number): Promise<MqttClient> {
  const deadline = Date.now() + reachMs;
  for (;;) {
    try {
      const client = await open({
        ...baseOptions(settings, clientId),
        ...(settings.username === undefined ? {} : { username: settings.username }),
        ...(settings.password === undefined ? {} : { password: settings.password }),
        ...(settings.tls?.cert === undefined ? {} : { cert: settings.tls.cert }),
        ...(settings.tls?.key === undefined ? {} : { key: settings.tls.key }),
      });
      return quiet(client);
    } catch (err) {
      const reason = reasonOf(err);
      const refused = /not authori[sz]ed|bad user ?name|bad username or password/i.test(reason);
      if (refused || Date.now() + 1000 > deadline) {
        throw new HearthError(
          'HEARTH_ERR_NOT_READY',
          `cannot check the MQTT broker at ${safeUrl(settings.url)} before starting: ${reason}${refused ? ' (check mqtt.username and mqtt.password: each role has its own user, docs/mqtt.md)' : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** A client without a user name (and without a client certificate); undefined when the broker refuses it. */
async function connectAnonymously(settings: ProbeSettings, nonce: string): Promise<MqttClient | undefined> {
  try {
    return quiet(await open(baseOptions(settings, `hearth-anonymous-${nonce}`)));
  } catch {
    return undefined;
  }
}

function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable url)';
  }
}
