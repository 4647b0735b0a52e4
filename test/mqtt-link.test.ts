import { spawn } from 'node:child_process';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LinkDownError, MqttLink, type MqttLinkOptions, topicMatches } from '../src/bus/mqtt/link.js';
import { type StatePayload, statePayloadSchema, TopicIdError, Topics } from '../src/bus/mqtt/topics.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { repoRoot } from './support/process.js';
import { until, untilOutput } from './support/wait.js';

const opened: MqttLink[] = [];
const raws: MqttClient[] = [];

function link(broker: TestMosquitto, opts: Partial<MqttLinkOptions> = {}): MqttLink {
  const l = new MqttLink({ url: broker.url, role: 'test', reconnectMinMs: 50, reconnectMaxMs: 300, ...opts });
  opened.push(l.start());
  return l;
}

async function raw(broker: TestMosquitto): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  raws.push(c);
  return c;
}

function state(value: unknown, at = Date.now()): StatePayload {
  return { state: value, available: true, reason: null, updatedAt: at, attributes: {} };
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.stop()));
  await Promise.all(raws.splice(0).map((c) => c.endAsync(true)));
});

describe.skipIf(mosquittoMissing)('MqttLink against a real Mosquitto', () => {
  let broker: TestMosquitto;
  beforeAll(async () => {
    broker = await TestMosquitto.start();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('a filter subscribed while the connection is still subscribing the others is subscribed too', async () => {
    // The window: a part of hearth subscribing while the link, just connected, subscribes what
    // was registered before (on one box, Home Assistant's topics while the drivers' go out).
    const seed = await raw(broker);
    await seed.publishAsync('window/first', 'x', { retain: true });
    const l = new MqttLink({ url: broker.url, role: 'test', reconnectMinMs: 50, reconnectMaxMs: 300 });
    const late: string[] = [];
    let subscribedIn: boolean | undefined;
    l.subscribe(
      'window/first',
      () => {
        if (subscribedIn !== undefined) return;
        subscribedIn = !l.connected;
        l.subscribe('window/late', (m) => void late.push(String(m.payload)), 'test');
      },
      'test',
    );
    for (let i = 0; i < 30; i++) l.subscribe(`window/other-${i}`, () => {}, 'test');
    opened.push(l.start());
    await l.whenUp(5000);
    await until(() => subscribedIn !== undefined, { what: 'the retained message' });
    expect(subscribedIn).toBe(true);
    await seed.publishAsync('window/late', 'hello', { qos: 1 });
    await until(() => late.length > 0, { what: 'the message on the late filter' });
    expect(late).toEqual(['hello']);
  });

  it('a filter subscribed while the link says online is subscribed too', async () => {
    // A role registers its handlers across awaits of its own start-up (the api's backup status
    // after it has read its buttons from the store), so a registration can land while the link
    // is between its subscriptions and `connected`: as it sends `online`. A real TCP proxy
    // between link and broker registers one exactly as that PUBLISH passes through it.
    const got: string[] = [];
    let l: MqttLink | undefined;
    let registeredLate = false;
    const proxy = net.createServer((inbound) => {
      const out = net.connect(broker.port, '127.0.0.1');
      out.pipe(inbound);
      inbound.on('data', (chunk: Buffer) => {
        // The first PUBLISH (packet type 3) the link sends is its retained `online`.
        if (!registeredLate && (chunk[0] ?? 0) >> 4 === 3) {
          registeredLate = true;
          l?.subscribe('late/x', (m) => void got.push(m.topic), 'test');
        }
        out.write(chunk);
      });
      inbound.on('error', () => out.destroy());
      out.on('error', () => inbound.destroy());
      inbound.on('close', () => out.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as net.AddressInfo).port;
      l = new MqttLink({
        url: `mqtt://127.0.0.1:${port}`,
        role: 'test',
        reconnectMinMs: 50,
        reconnectMaxMs: 300,
      });
      l.subscribe('early/x', (m) => void got.push(m.topic), 'test');
      opened.push(l.start());
      await l.whenUp(5000);
      expect(registeredLate).toBe(true);
      const seed = await raw(broker);
      await seed.publishAsync('early/x', 'a', { qos: 1 });
      await seed.publishAsync('late/x', 'b', { qos: 1 });
      await until(() => got.length === 2, { what: 'both messages' }).catch(() => {
        throw new Error(
          `the link received only ${JSON.stringify(got)}: the late filter was never subscribed`,
        );
      });
    } finally {
      await l?.stop();
      proxy.close();
    }
  });

  it('delivers retained state to a client that connects later, and marks itself online', async () => {
    const a = link(broker, { clientId: 'agent-a' });
    await a.whenUp(5000);
    expect(a.publish(a.topics.state('lamp'), state('on'), { retain: true })).toBe('sent');

    const b = link(broker, { clientId: 'api-b' });
    const seen: { value: StatePayload; retain: boolean }[] = [];
    const members = new Map<string, string>();
    b.subscribeJson(
      b.topics.states,
      statePayloadSchema,
      (value, m) => void seen.push({ value, retain: m.retain }),
      'api',
    );
    b.subscribe(b.topics.members, (m) => void members.set(m.topic, String(m.payload)), 'api');
    await b.whenUp(5000);
    await until(() => seen.length > 0 && members.has('hearth/cluster/members/agent-a'), {
      what: 'retained messages',
    });
    expect(seen[0]).toMatchObject({ value: { state: 'on', available: true }, retain: true });
    expect(members.get('hearth/cluster/members/agent-a')).toBe('online');
    expect(members.get('hearth/cluster/members/api-b')).toBe('online');
  });

  it('ignores garbage and isolates a throwing handler: it never throws, counts, and keeps going', async () => {
    // A small cap, so one packet over it is cheap to send (the default is 8 MiB: limits.ts).
    const l = link(broker, { baseTopic: 'garbage', maxPayloadBytes: 256 * 1024 });
    const good: unknown[] = [];
    const alsoCalled: string[] = [];
    l.subscribeJson(l.topics.states, statePayloadSchema, (v) => void good.push(v.state), 'api');
    l.subscribe(
      'garbage/cluster/state/#',
      () => {
        throw new Error('handler bug');
      },
      'buggy',
    );
    l.subscribe(
      'garbage/cluster/state/#',
      async () => Promise.reject(new Error('async handler bug')),
      'buggy-async',
    );
    l.subscribe('garbage/cluster/state/#', (m) => void alsoCalled.push(m.topic), 'other');
    await l.whenUp(5000);

    const c = await raw(broker);
    await c.publishAsync('garbage/cluster/state/x', 'not json', { qos: 1 });
    await c.publishAsync('garbage/cluster/state/x', '{"state": 1}', { qos: 1 }); // wrong shape: no `available`
    await c.publishAsync('garbage/cluster/state/x', Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
    // Over the link's 256 kB cap: the broker delivers it (the link advertises twice its cap), and
    // the link drops it unread, before any handler, and counts it: never lost without a word.
    await c.publishAsync('garbage/cluster/state/big', Buffer.alloc(300 * 1024, 0x41), { qos: 1 });
    await c.publishAsync('garbage/cluster/state/x', JSON.stringify(state('fine')), { qos: 1 });

    await until(() => good.length === 1, { what: 'the valid message' });
    expect(good).toEqual(['fine']);
    // The broker sends one copy per matching subscription (the state filter and #): two here.
    expect(l.stats.oversize).toBe(2);
    expect(l.stats.garbage).toBe(5);
    expect(alsoCalled.filter((t) => t === 'garbage/cluster/state/x')).toHaveLength(4);
    expect(alsoCalled).not.toContain('garbage/cluster/state/big');
    await until(() => l.stats.handlerErrors === 8, { what: 'handler errors counted' });
    expect(l.connected).toBe(true);
  });

  it('off(owner) drops every handler of that owner', async () => {
    const l = link(broker, { baseTopic: 'owners' });
    const got: string[] = [];
    l.subscribe('owners/event/+', (m) => void got.push(`a:${m.topic}`), 'a');
    l.subscribe('owners/state/+', (m) => void got.push(`a:${m.topic}`), 'a');
    l.subscribe('owners/event/+', (m) => void got.push(`b:${m.topic}`), 'b');
    await l.whenUp(5000);
    l.offOwner('a');
    const c = await raw(broker);
    await c.publishAsync('owners/state/x', 'x', { qos: 1 });
    await c.publishAsync('owners/event/x', 'x', { qos: 1 });
    // The marker: event/x came after state/x on one connection, and every handler of a message
    // runs when it arrives, so by now a's handlers would have had both.
    await until(() => got.length > 0, { what: 'a message for b' });
    expect(got).toEqual(['b:owners/event/x']);
  });

  it('the last will marks a killed member offline', async () => {
    const observer = link(broker, { baseTopic: 'will' });
    const status: string[] = [];
    observer.subscribe('will/cluster/members/child-1', (m) => void status.push(String(m.payload)), 'test');
    await observer.whenUp(5000);

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/mqtt-member.ts', broker.url, 'will', 'child-1'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout?.on('data', (d) => {
      out += String(d);
    });
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code) => resolve(`it exited (${code})`)),
    );
    try {
      await untilOutput(() => out, /^up$/m, {
        timeoutMs: 15_000,
        what: 'the member to connect',
        failOn: exited,
      });
      await until(() => status.includes('online'), { what: 'online' });
      child.kill('SIGKILL');
      await until(() => status.at(-1) === 'offline', { what: 'the will (offline)' });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('validates ids before they become topic levels', () => {
    const t = new Topics('hearth');
    expect(t.state('kitchen_lamp-2')).toBe('hearth/cluster/state/kitchen_lamp-2');
    for (const bad of ['a/b', '+', '#', '', 'x'.repeat(65), 'lamp ']) {
      expect(() => t.state(bad)).toThrow(TopicIdError);
    }
    expect(() => new Topics('home/+')).toThrow(TopicIdError);
    expect(t.idOf('state', 'hearth/cluster/state/lamp')).toBe('lamp');
    expect(t.idOf('state', 'hearth/cluster/state/a/b')).toBeUndefined();
    expect(() => new MqttLink({ url: broker.url, clientId: 'has space' })).toThrow(/clientId/);
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
  });
});

describe.skipIf(mosquittoMissing)('MqttLink when the broker dies', () => {
  let broker: TestMosquitto;
  beforeAll(async () => {
    broker = await TestMosquitto.start();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('goes down, queues within bounds, comes back by itself, resubscribes and re-sends retained state', async () => {
    // The agent comes back well after the api has subscribed again: queued events are not
    // retained, so they reach only subscribers that are there when they are sent.
    const agent = link(broker, {
      clientId: 'agent',
      offlineQueueMax: 2,
      reconnectMinMs: 1500,
      reconnectMaxMs: 1500,
    });
    const api = link(broker, { clientId: 'api' });
    const apiStates: unknown[] = [];
    const apiEvents: string[] = [];
    api.subscribeJson(api.topics.states, statePayloadSchema, (v) => void apiStates.push(v.state), 'api');
    api.subscribe(api.topics.events, (m) => void apiEvents.push(String(m.payload)), 'api');
    await Promise.all([agent.whenUp(5000), api.whenUp(5000)]);
    const downs: string[] = [];
    api.on('down', (r) => downs.push(r));
    agent.publish(agent.topics.state('lamp'), state(1), { retain: true });
    await until(() => apiStates.includes(1), { what: 'state 1' });

    await broker.kill();
    await until(() => !api.connected && !agent.connected, { what: 'both links down' });
    expect(downs).toHaveLength(1);
    await expect(agent.publishNow('hearth/x', 'x')).rejects.toBeInstanceOf(LinkDownError);
    // While down: retained state coalesces to the latest; other publishes queue up to the bound.
    expect(agent.publish(agent.topics.state('lamp'), state(2), { retain: true })).toBe('queued');
    expect(agent.publish(agent.topics.state('lamp'), state(3), { retain: true })).toBe('queued');
    expect(agent.publish(agent.topics.event('lamp'), 'e1')).toBe('queued');
    expect(agent.publish(agent.topics.event('lamp'), 'e2')).toBe('queued');
    expect(agent.publish(agent.topics.event('lamp'), 'e3')).toBe('dropped');
    expect(agent.stats.dropped).toBe(1);

    const ups = new Promise<void>((resolve) => api.once('up', () => resolve()));
    await broker.restart();
    await ups;
    await agent.whenUp(5000);
    // The api's subscriptions came back without anyone asking: it sees the latest state only.
    await until(() => apiStates.includes(3), { what: 'state 3 after the restart' });
    expect(apiStates).not.toContain(2);
    await until(() => apiEvents.length === 2, { what: 'the queued events' });
    expect(apiEvents).toEqual(['e1', 'e2']);

    // A broker without persistence lost its retained messages; the agent re-sent them.
    const late = link(broker, { clientId: 'late' });
    const lateStates: unknown[] = [];
    late.subscribeJson(late.topics.states, statePayloadSchema, (v) => void lateStates.push(v.state), 'x');
    await late.whenUp(5000);
    await until(() => lateStates.length > 0, {
      what: 'retained state on the restarted broker',
    });
    expect(lateStates).toEqual([3]);
    expect(api.stats.reconnects).toBe(1);
  });
});
