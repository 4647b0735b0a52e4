import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttLink } from '../src/bus/mqtt/link.js';
import { MqttRpc, RpcError } from '../src/bus/mqtt/rpc.js';
import { HearthError } from '../src/core/errors.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { settlesAtOnce, until, waitUntil } from './support/wait.js';

const links: MqttLink[] = [];
const rpcs: MqttRpc[] = [];
const raws: MqttClient[] = [];

async function member(broker: TestMosquitto, clientId: string, maxInFlight?: number) {
  const link = new MqttLink({ url: broker.url, clientId, reconnectMinMs: 50, reconnectMaxMs: 300 }).start();
  links.push(link);
  const rpc = new MqttRpc(link, maxInFlight === undefined ? {} : { maxInFlight }).start();
  rpcs.push(rpc);
  await link.whenUp(5000);
  return { link, rpc };
}

/** Settles `p` and tells how long it took, so a test can check "rejected at the deadline". */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - t0, value };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

afterEach(async () => {
  for (const r of rpcs.splice(0)) r.stop();
  await Promise.all(links.splice(0).map((l) => l.stop()));
  await Promise.all(raws.splice(0).map((c) => c.endAsync(true)));
});

describe.skipIf(mosquittoMissing)('request/response over a real Mosquitto', () => {
  let broker: TestMosquitto;
  beforeAll(async () => {
    broker = await TestMosquitto.start();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('round trip: the responder runs the command once and the caller gets its result', async () => {
    const agent = await member(broker, 'agent-rt');
    const api = await member(broker, 'api-rt');
    const seen: unknown[] = [];
    agent.rpc.serve(agent.link.topics.cmd('rt'), (body, ctx) => {
      seen.push(body);
      expect(ctx.deadline).toBeGreaterThan(Date.now());
      return { ok: true, echo: body };
    });
    await until(() => agent.link.connected, { what: 'agent' });
    const result = await api.rpc.request(
      api.link.topics.cmd('rt'),
      { entity: 'lamp', command: 'toggle' },
      { timeoutMs: 2000 },
    );
    expect(result).toEqual({ ok: true, echo: { entity: 'lamp', command: 'toggle' } });
    expect(seen).toHaveLength(1);
    expect(api.rpc.inFlight).toBe(0);
  });

  it('a handler error comes back as a typed error with its code, status and hint', async () => {
    const agent = await member(broker, 'agent-err');
    const api = await member(broker, 'api-err');
    agent.rpc.serve(agent.link.topics.cmd('err'), (body) => {
      if ((body as { plain?: boolean }).plain) throw new Error('socket hang up');
      throw new HearthError('HEARTH_ERR_DEVICE_TIMEOUT', 'lamp did not answer within 2000 ms');
    });
    const typed = await timed(api.rpc.request(api.link.topics.cmd('err'), {}, { timeoutMs: 2000 }));
    expect(typed.error).toBeInstanceOf(RpcError);
    expect(typed.error).toMatchObject({
      kind: 'remote',
      code: 'HEARTH_ERR_DEVICE_TIMEOUT',
      status: 504,
    });
    expect((typed.error as RpcError).message).toBe('lamp did not answer within 2000 ms');
    expect((typed.error as RpcError).hint).toMatch(/powered/);
    const plain = await timed(
      api.rpc.request(api.link.topics.cmd('err'), { plain: true }, { timeoutMs: 2000 }),
    );
    expect(plain.error).toMatchObject({ kind: 'remote', code: 'HEARTH_ERR_DEVICE_FAILED', status: 502 });
  });

  it('no responder: rejects with 503 at once (the broker says no subscriber matched), never hangs', async () => {
    const api = await member(broker, 'api-none');
    const r = await timed(api.rpc.request(api.link.topics.cmd('nobody'), {}, { timeoutMs: 3000 }));
    expect(r.error).toMatchObject({ kind: 'no-responder', status: 503 });
    expect(r.ms).toBeLessThan(1000);
  });

  it('a responder that never answers: rejects with 504 at the deadline', async () => {
    const agent = await member(broker, 'agent-mute');
    const api = await member(broker, 'api-mute');
    agent.rpc.serve(agent.link.topics.cmd('mute'), () => new Promise(() => {}));
    // serve() subscribes in the background: until the broker has it, a request finds no
    // responder (503 at once). Asked again until the responder is there (CI on Node 24, loaded).
    const r = await until(
      async () => {
        const t = await timed(api.rpc.request(api.link.topics.cmd('mute'), {}, { timeoutMs: 300 }));
        return (t.error as { kind?: string } | undefined)?.kind === 'no-responder' ? undefined : t;
      },
      { intervalMs: 100, what: 'an answer other than no-responder (the subscription at the broker)' },
    );
    expect(r.error).toMatchObject({ kind: 'timeout', status: 504 });
    expect(r.ms).toBeGreaterThanOrEqual(295);
    expect(r.ms).toBeLessThan(300 + 250);
  });

  it('a slow responder: the caller rejects at the deadline and the responder does not act after it', async () => {
    const agent = await member(broker, 'agent-slow');
    const api = await member(broker, 'api-slow');
    const acted: string[] = [];
    let handled = false;
    agent.rpc.serve(agent.link.topics.cmd('slow'), async (body, ctx) => {
      if ((body as { quick?: boolean }).quick) return 'quick';
      // A device slower than the caller's deadline: it answers only once the deadline has passed.
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
      handled = true;
      // What a driver does with the signal: never switch the device once the caller gave up.
      if (ctx.signal.aborted || Date.now() >= ctx.deadline) return { acted: false };
      acted.push('switched');
      return { acted: true };
    });
    const r = await timed(api.rpc.request(api.link.topics.cmd('slow'), {}, { timeoutMs: 200 }));
    expect(r.error).toMatchObject({ kind: 'timeout', status: 504 });
    expect(r.ms).toBeLessThan(200 + 250);
    await until(() => handled, { what: "the responder's signal aborted at the deadline" });
    expect(acted).toEqual([]);
    // A marker: a quick request's reply comes after any reply the slow handler sent, on the same
    // connections; none was (a reply after the deadline would count as unmatched).
    expect(await api.rpc.request(api.link.topics.cmd('slow'), { quick: true }, { timeoutMs: 5000 })).toBe(
      'quick',
    );
    expect(api.rpc.stats.unmatched).toBe(0);
  });

  it('a request that arrives after its deadline is never executed', async () => {
    const agent = await member(broker, 'agent-late');
    const ran: unknown[] = [];
    agent.rpc.serve(agent.link.topics.cmd('late'), (body) => void ran.push(body));
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    raws.push(c);
    const props = (deadline: number) => ({
      properties: { responseTopic: 'hearth/cluster/reply/raw-late', correlationData: randomBytes(16) },
      qos: 1 as const,
      payload: JSON.stringify({ deadline, body: { at: deadline } }),
    });
    const late = props(Date.now() - 1);
    await c.publishAsync('hearth/cluster/cmd/late', late.payload, { qos: 1, properties: late.properties });
    const fresh = props(Date.now() + 5000);
    await c.publishAsync('hearth/cluster/cmd/late', fresh.payload, { qos: 1, properties: fresh.properties });
    // The marker: the late request went first on the same connection, so it was judged already.
    await until(() => ran.length > 0, { what: 'the fresh request' });
    expect(ran).toHaveLength(1);
    expect(agent.rpc.stats.late).toBe(1);
  });

  it("a responder's bound (maxMs) caps a deadline a day ahead: the handler's deadline and signal end at the bound", async () => {
    const agent = await member(broker, 'agent-bound');
    const seen: Array<{ arrived: number; deadline: number; aborted?: number }> = [];
    agent.rpc.serve(
      agent.link.topics.cmd('bound'),
      (_body, ctx) =>
        new Promise((resolve) => {
          const s: (typeof seen)[number] = { arrived: Date.now(), deadline: ctx.deadline };
          seen.push(s);
          ctx.signal.addEventListener('abort', () => {
            s.aborted = Date.now();
            resolve(null);
          });
        }),
      { maxMs: () => 200 },
    );
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    raws.push(c);
    const payload = JSON.stringify({ deadline: Date.now() + 86_400_000, body: {} });
    const properties = { responseTopic: 'hearth/cluster/reply/raw-bound', correlationData: randomBytes(16) };
    await c.publishAsync('hearth/cluster/cmd/bound', payload, { qos: 1, properties });
    await waitUntil(() => seen[0]?.aborted !== undefined, 200 + 1000, 'the handler aborted at the bound');
    const s = seen[0] as Required<(typeof seen)[number]>;
    expect(s.deadline - s.arrived).toBeLessThanOrEqual(200);
    expect(s.aborted).toBeGreaterThanOrEqual(s.deadline - 1);
  });

  it('a QoS 1 redelivery (same correlation data) is not executed twice; the reply is sent again', async () => {
    const agent = await member(broker, 'agent-dup');
    let runs = 0;
    agent.rpc.serve(agent.link.topics.cmd('dup'), () => {
      runs += 1;
      return { runs };
    });
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    raws.push(c);
    const replies: string[] = [];
    c.on('message', (_t, payload) => replies.push(String(payload)));
    await c.subscribeAsync('hearth/cluster/reply/raw-dup', { qos: 1 });
    const correlationData = randomBytes(16);
    const payload = JSON.stringify({ deadline: Date.now() + 5000, body: { command: 'toggle' } });
    const properties = { responseTopic: 'hearth/cluster/reply/raw-dup', correlationData };
    await c.publishAsync('hearth/cluster/cmd/dup', payload, { qos: 1, properties });
    await until(() => replies.length === 1, { what: 'the first reply' });
    await c.publishAsync('hearth/cluster/cmd/dup', payload, { qos: 1, properties });
    await until(() => replies.length === 2, { what: 'the reply to the duplicate' });
    expect(runs).toBe(1);
    expect(replies).toEqual(['{"result":{"runs":1}}', '{"result":{"runs":1}}']);
    expect(agent.rpc.stats.duplicates).toBe(1);
  });

  it('garbage requests and replies are counted and ignored, never thrown', async () => {
    const agent = await member(broker, 'agent-junk');
    const api = await member(broker, 'api-junk');
    let runs = 0;
    agent.rpc.serve(agent.link.topics.cmd('junk'), () => {
      runs += 1;
      return 'ok';
    });
    const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    raws.push(c);
    const replies: string[] = [];
    c.on('message', (_t, payload) => replies.push(String(payload)));
    await c.subscribeAsync('hearth/cluster/reply/raw-junk', { qos: 1 });
    await c.publishAsync('hearth/cluster/cmd/junk', 'toggle please', { qos: 1 }); // no response topic
    await c.publishAsync('hearth/cluster/cmd/junk', '{"body":1}', {
      qos: 1,
      properties: { responseTopic: 'hearth/cluster/reply/raw-junk', correlationData: randomBytes(4) },
    });
    // A reply that matches nothing and one that is not JSON, straight at the api's reply topic.
    await c.publishAsync('hearth/cluster/reply/api-junk', 'garbage', { qos: 1 });
    await until(() => replies.length === 1, { what: 'the error reply to the bad request' });
    expect(JSON.parse(replies[0] ?? '')).toMatchObject({
      error: { code: 'HEARTH_ERR_BAD_REQUEST', status: 400 },
    });
    expect(runs).toBe(0);
    expect(await api.rpc.request(api.link.topics.cmd('junk'), {}, { timeoutMs: 2000 })).toBe('ok');
    expect(agent.link.stats.garbage).toBe(2);
    expect(api.rpc.stats.unmatched).toBe(1);
  });

  it('bounds the requests in flight: past the limit, rejects at once', async () => {
    const agent = await member(broker, 'agent-busy');
    const api = await member(broker, 'api-busy', 3);
    agent.rpc.serve(agent.link.topics.cmd('busy'), () => new Promise(() => {}));
    const waiting = [1, 2, 3].map(() =>
      timed(api.rpc.request('hearth/cluster/cmd/busy', {}, { timeoutMs: 400 })),
    );
    expect(api.rpc.inFlight).toBe(3);
    const overP = api.rpc.request('hearth/cluster/cmd/busy', {}, { timeoutMs: 400 });
    expect(await settlesAtOnce(overP)).toBe(true);
    await expect(overP).rejects.toMatchObject({ kind: 'overloaded', status: 503 });
    for (const w of await Promise.all(waiting)) expect(w.error).toMatchObject({ kind: 'timeout' });
    expect(api.rpc.inFlight).toBe(0);
  });
});

describe.skipIf(mosquittoMissing)('request/response when the broker dies', () => {
  let broker: TestMosquitto;
  beforeAll(async () => {
    broker = await TestMosquitto.start();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('fails fast while down, and works again after the restart without anyone resubscribing', async () => {
    const agent = await member(broker, 'agent-k');
    const api = await member(broker, 'api-k');
    let runs = 0;
    let hanging = false;
    agent.rpc.serve(agent.link.topics.cmd('k'), async (body) => {
      if ((body as { hang?: boolean }).hang) {
        hanging = true;
        return new Promise(() => {});
      }
      runs += 1;
      return runs;
    });
    expect(await api.rpc.request('hearth/cluster/cmd/k', {}, { timeoutMs: 2000 })).toBe(1);

    // A request waiting when the broker dies fails as soon as the link notices, not at its deadline.
    const waiting = timed(api.rpc.request('hearth/cluster/cmd/k', { hang: true }, { timeoutMs: 5000 }));
    await until(() => hanging, { what: 'the request at the responder' });
    const killedAt = performance.now();
    await broker.kill();
    const lost = await waiting;
    expect(lost.error).toMatchObject({ kind: 'link-lost', status: 504 });
    expect(performance.now() - killedAt).toBeLessThan(1500);

    await until(() => !api.link.connected, { what: 'the api link down' });
    const downP = api.rpc.request('hearth/cluster/cmd/k', {}, { timeoutMs: 2000 });
    expect(await settlesAtOnce(downP)).toBe(true);
    await expect(downP).rejects.toMatchObject({ kind: 'link-down', status: 503 });

    await broker.restart();
    await Promise.all([api.link.whenUp(5000), agent.link.whenUp(5000)]);
    expect(await api.rpc.request('hearth/cluster/cmd/k', {}, { timeoutMs: 2000 })).toBe(2);
    expect(runs).toBe(2); // nothing ran twice or late across the restart
  });
});
