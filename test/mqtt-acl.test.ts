import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclFile } from '../src/bus/mqtt/acl.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import {
  brokerPassword,
  call,
  type RoleProcess,
  startLockedBroker,
  startRecorder,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { tempDir } from './support/hearth.js';
import { mosquittoMissing, type TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { repoRoot } from './support/process.js';
import { until, waitUntil } from './support/wait.js';

/*
 * "Only hearth may speak as hearth on the broker": a Mosquitto with the password file and ACL
 * hearth renders (src/bus/mqtt/acl.ts, passwd.ts; docs/mqtt.md), an api, a controller and an
 * agent as real processes of the built CLI, each with its own user, and three outsiders: the
 * Home Assistant user, the zigbee2mqtt user and a client without a user name (the test broker
 * takes those, so only the ACL stops them). Each forgery is followed by a legitimate message
 * on a path that passes the forgery's (the marker): once the marker has arrived, a forgery the
 * broker let through would have arrived before it, so "nothing changed" is seen without waiting
 * out a time.
 */
describe.skipIf(mosquittoMissing)('a broker locked as docs/mqtt.md says', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let lamp: WemoSimulator;
  let marker: WemoSimulator;
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  let dir: string;
  let api: RoleProcess;
  const procs: RoleProcess[] = [];
  const outsiders: Array<{ who: string; client: MqttClient }> = [];

  const entity = async (id: string): Promise<EntityView | undefined> =>
    JSON.parse((await call(`${api.url}/api/v1/entities/${id}`)).body).entity;
  const sets = (plug: WemoSimulator) => plug.calls.filter((c) => c.action === 'SetBinaryState').length;
  /** A toggle of the marker plug through the api: api → broker → agent → broker → api. */
  const markerRoundTrip = async () => {
    const r = await call(`${api.url}/api/v0/switches/marker/toggle/`, { method: 'POST' });
    expect(r).toEqual({ status: 200, body: 'OK' });
  };
  /** Every outsider publishes `payload` on `topic`; whatever the broker answers, only effects count. */
  const forge = async (topic: string, payload: unknown, options: IClientPublishOptions = {}) => {
    for (const { client } of outsiders) {
      await client
        .publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
          qos: 1,
          ...options,
        })
        .catch(() => {});
    }
  };
  /** A request as hearth's callers make them (MQTT 5 response topic, correlation data), by every outsider. */
  const forgeRequest = async (topic: string, body: unknown, deadline: number) => {
    for (const { client } of outsiders) {
      await client
        .publishAsync(topic, JSON.stringify({ deadline, body }), {
          qos: 1,
          properties: {
            responseTopic: `hearth/cluster/reply/${client.options.clientId}`,
            correlationData: randomBytes(16),
          },
        })
        .catch(() => {});
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker({ clients: ['homeassistant', 'zigbee2mqtt'] });
    lamp = await startWemoSimulator({ initial: false });
    marker = await startWemoSimulator({ initial: false });
    recorder = await startRecorder();
    dir = tempDir();
    const config = writeClusterConfig(dir, {
      pgUrl: db.url,
      mqttUrl: broker.url,
      body: `
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, timeoutMs: 1000, pollSeconds: 0 }
  - { id: marker, kind: wemo/v1, address: 127.0.0.1, port: ${marker.port}, timeoutMs: 1000, pollSeconds: 0 }
buttons: [{ id: bedside }, { id: hall }]
automations:
  - id: bedside-lamp
    mode: queued
    triggers: [{ state: bedside, to: "on" }]
    actions: [{ command: lamp.toggle }]
  - id: ping
    mode: queued
    triggers: [{ webhook: true }]
    actions: [{ http: { url: "${recorder.url}", method: POST } }]
  - id: hall-ping
    mode: queued
    triggers: [{ state: hall, to: "on" }]
    actions: [{ http: { url: "${recorder.url}", method: POST } }]
backup: { dir: archives, every: "0 3 * * *" }
`,
    });
    procs.push(...(await Promise.all([startRole(config, 'agent'), startRole(config, 'controller')])));
    api = await startRole(config, 'api');
    procs.push(api);
    await waitUntil(async () => (await entity('lamp'))?.available === true, 15_000, 'the lamp available');
    await waitUntil(async () => (await entity('marker'))?.available === true, 15_000, 'the marker available');
    for (const who of ['homeassistant', 'zigbee2mqtt', 'anonymous']) {
      const clientId = `outsider-${who}`;
      const auth = who === 'anonymous' ? {} : { username: who, password: brokerPassword(who) };
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId, ...auth });
      client.on('error', () => {});
      outsiders.push({ who, client });
    }
  }, 90_000);

  afterAll(async () => {
    await Promise.all(outsiders.map(({ client }) => client.endAsync(true)));
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all([lamp?.close(), marker?.close(), recorder?.close()]);
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('takes the password file hearth writes: each role is in with its own user, a wrong password is refused', async () => {
    expect(procs.map((p) => p.role).sort()).toEqual(['agent', 'api', 'controller']);
    const wrong = await mqtt
      .connectAsync(
        broker.url,
        { username: 'hearth-api', password: 'not-the-password', reconnectPeriod: 0 },
        false,
      )
      .then(
        (c) => c.endAsync().then(() => 'connected'),
        (err: Error) => err.message,
      );
    expect(wrong).toMatch(/Not authorized|Bad User Name or Password/i);
  });

  it("lets hearth's roles do their work: a toggle through the api reaches the agent, a run reaches the controller, the api shows states", async () => {
    const before = sets(lamp);
    expect(await call(`${api.url}/api/v0/switches/lamp/on/`, { method: 'POST' })).toEqual({
      status: 200,
      body: 'OK',
    });
    expect(lamp.on).toBe(true);
    expect(sets(lamp)).toBe(before + 1);
    expect(await entity('lamp')).toMatchObject({ state: 'on', available: true });

    const hits = recorder.hits.length;
    const run = await call(`${api.url}/api/v1/automations/ping/run`, { method: 'POST' });
    expect(run.status).toBe(202);
    await waitUntil(() => recorder.hits.length > hits, 5000, 'the run request to reach the controller');

    // Home Assistant commands through hearth's public topic, as its user may.
    const ha = outsiders.find((o) => o.who === 'homeassistant')?.client as MqttClient;
    await ha.publishAsync('hearth/lamp/set', 'off', { qos: 1 });
    await waitUntil(() => !lamp.on, 5000, 'the lamp off through hearth/lamp/set');
  });

  it('no other user and no anonymous client can command an agent, not even with a deadline a day ahead', async () => {
    const on = lamp.on;
    const before = sets(lamp);
    await forgeRequest(
      'hearth/cluster/cmd/main',
      { id: 'lamp', name: 'toggle', args: {} },
      Date.now() + 86_400_000,
    );
    // The same topic, then the same entity's queue: a forged toggle would run before this one.
    expect(await call(`${api.url}/api/v0/switches/lamp/toggle/`, { method: 'POST' })).toEqual({
      status: 200,
      body: 'OK',
    });
    expect(sets(lamp)).toBe(before + 1);
    expect(lamp.on).toBe(!on);
  });

  it('no other user and no anonymous client can run an automation', async () => {
    const hits = recorder.hits.length;
    await forgeRequest(
      'hearth/cluster/ctl/run',
      { automation: 'ping', trigger: 'forged' },
      Date.now() + 5000,
    );
    // The same topic and the same queued automation: a forged run would hit the recorder first.
    expect((await call(`${api.url}/api/v1/automations/ping/run`, { method: 'POST' })).status).toBe(202);
    await waitUntil(() => recorder.hits.length > hits, 5000, 'the real run');
    expect(recorder.hits.length).toBe(hits + 1);
    const runs = JSON.parse((await call(`${api.url}/api/v1/automations/ping/runs`)).body).runs as Array<{
      trigger: string;
    }>;
    expect(runs.map((r) => r.trigger)).not.toContain('forged');
  });

  it('no other user and no anonymous client can forge a state, retained or live', async () => {
    const real = (await entity('lamp')) as EntityView;
    const forged = {
      ...real,
      name: 'Forged lamp',
      state: real.state === 'on' ? 'off' : 'on',
      available: true,
    };
    await forge('hearth/cluster/state/lamp', forged, { retain: true });
    await forge('hearth/cluster/event/lamp', { type: 'state', view: forged, previous: real.state });
    await markerRoundTrip();
    expect(await entity('lamp')).toMatchObject({ name: real.name, state: real.state });
  });

  it('no other user and no anonymous client can forge a leader record (or say the agent went away)', async () => {
    const cluster = JSON.parse((await call(`${api.url}/api/v1/cluster`)).body) as {
      leases: Array<{ name: string; holder: string }>;
    };
    const holder = cluster.leases.find((l) => l.name === 'agent:main')?.holder;
    expect(holder).toBeDefined();
    await forge(`hearth/cluster/members/${holder}`, 'offline', { retain: true });
    await forge('hearth/cluster/leader/agent-main', { holder: null, token: 1_000_000 }, { retain: true });
    await markerRoundTrip();
    expect(await entity('lamp')).toMatchObject({ available: true, reason: null });
  });

  it('no other user and no anonymous client can forge a press that fires an automation', async () => {
    const before = sets(lamp);
    const bedside = (await entity('bedside')) as EntityView;
    const pressed = { ...bedside, state: 'on', updatedAt: new Date().toISOString() };
    await forge('hearth/cluster/event/bedside', { type: 'state', view: pressed, previous: bedside.state });
    // A real press of another button, whose automation the controller hears after the forged one.
    const hits = recorder.hits.length;
    expect(await call(`${api.url}/api/v0/buttons/hall/on/`, { method: 'POST' })).toEqual({
      status: 200,
      body: 'OK',
    });
    await waitUntil(() => recorder.hits.length > hits, 5000, 'the real press to fire hall-ping');
    const runs = JSON.parse((await call(`${api.url}/api/v1/automations/bedside-lamp/runs`)).body).runs;
    expect(runs).toEqual([]);
    expect(sets(lamp)).toBe(before);
    expect((await entity('bedside'))?.state).toBe(bedside.state);
  });

  it('no other user and no anonymous client can forge the backup status', async () => {
    const before = (await call(`${api.url}/api/v1/backups`)).body;
    const now = new Date().toISOString();
    await forge(
      'hearth/cluster/backup',
      {
        every: '* * * * *',
        newest: { name: 'forged.tar.gz', at: now, bytes: 1 },
        lastError: null,
        nextAt: now,
        running: false,
        stale: false,
      },
      { retain: true },
    );
    await markerRoundTrip();
    const after = (await call(`${api.url}/api/v1/backups`)).body;
    expect(after).not.toContain('forged.tar.gz');
    expect(JSON.parse(after).backups?.every ?? null).toBe(JSON.parse(before).backups?.every ?? null);
  });

  it('no other user and no anonymous client can add a button to the api replicas', async () => {
    const ghost = {
      id: 'ghost',
      kind: 'button',
      name: 'ghost',
      driver: 'hearth',
      state: 'on',
      available: true,
      reason: null,
      updatedAt: new Date().toISOString(),
      commands: ['on', 'off'],
      attributes: {},
    };
    await forge('hearth/cluster/state/ghost', ghost, { retain: true });
    await forge('hearth/cluster/event/ghost', { type: 'state', view: ghost, previous: null });
    await markerRoundTrip();
    expect((await call(`${api.url}/api/v1/entities/ghost`)).status).toBe(404);
  });

  it("holds a request with a deadline a day ahead no longer than the entity's own deadline", async () => {
    // An api replica whose clock is a day fast (or any caller hearth's ACL lets in) fills the
    // agent's memory of requests (4096) with deadlines a day ahead. The agent remembers each no
    // longer than the lamp's deadline (timeoutMs 1000) and 1 s for its reply, so a real toggle
    // works again after that, not a day later.
    const skewed = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: 'skewed-api',
      username: 'hearth-api',
      password: brokerPassword('hearth-api'),
    });
    try {
      let replies = 0;
      skewed.on('message', () => {
        replies += 1;
      });
      await skewed.subscribeAsync('hearth/cluster/reply/skewed-api', { qos: 1 });
      const request = JSON.stringify({
        deadline: Date.now() + 86_400_000,
        body: { id: 'lamp', name: 'no-such-command', args: {} },
      });
      // In rounds the broker's queue for the agent (1000 messages) always holds.
      for (let sent = 0; sent < 4096; sent += 512) {
        await Promise.all(
          Array.from({ length: 512 }, () =>
            skewed.publishAsync('hearth/cluster/cmd/main', request, {
              qos: 1,
              properties: {
                responseTopic: 'hearth/cluster/reply/skewed-api',
                correlationData: randomBytes(16),
              },
            }),
          ),
        );
        await until(() => replies >= sent + 512, {
          // A backstop (pacing, so the broker's queue for the agent never overflows), not a promise.
          timeoutMs: 30_000,
          what: () => `replies to ${sent + 512} requests (${replies} so far)`,
        });
      }
      const toggled = async () =>
        (await call(`${api.url}/api/v0/switches/lamp/toggle/`, { method: 'POST' })).status === 200;
      await waitUntil(toggled, 1000 + 1000 + 1000, 'a toggle to be taken after the lamp deadline');
    } finally {
      await skewed.endAsync(true);
    }
    // A backstop for 4096 requests on a loaded machine, not a promise: the promise is the 3 s above.
  }, 120_000);

  it('docs/mqtt.md shows the ACL hearth renders, line for line', () => {
    const docs = readFileSync(join(repoRoot, 'docs', 'mqtt.md'), 'utf8');
    const acl = aclFile({
      agents: ['main', 'kitchen'],
      deviceTopics: { main: ['zigbee2mqtt/#'] },
      clients: ['homeassistant', 'zigbee2mqtt'],
    });
    expect(docs).toContain(`\`\`\`\n${acl}\`\`\``);
  });
});
