import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SonosSimulator, startSonosSimulator } from '../src/drivers/sonos/simulator.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import {
  brokerPassword,
  leaderGauge,
  type RoleProcess,
  startLockedBroker,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { tempDir } from './support/hearth.js';
import { mosquittoMissing, type TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';
import { letTimePass, until } from './support/wait.js';

/*
 * Home Assistant discovery and hearth's own topics in a cluster: real processes of the built CLI
 * (an api, two controllers, an agent), a PostgreSQL database of this file's own, a Mosquitto
 * this file starts, locked with its ACL (Home Assistant logs in as `homeassistant`), a Wemo
 * simulator for the plug and a Sonos one for the speaker. Only the leading controller serves them.
 */
const LEASE_S = 2;
const CONFIG_TOPIC = 'homeassistant/switch/hearth/plug/config';
const BRIDGE_TOPIC = 'homeassistant/binary_sensor/hearth/bridge/config';
const DING_TOPIC = 'homeassistant/button/hearth/hall-play-ding_mp3/config';
const asUser = (username: string) => ({ username, password: brokerPassword(username) });

describe.skipIf(mosquittoMissing ?? postgresMissing)('Home Assistant and hearth topics in a cluster', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let plug: WemoSimulator;
  let speaker: SonosSimulator;
  let dir: string;
  let config: string;
  let ha: MqttClient;
  const procs: RoleProcess[] = [];
  let controllers: RoleProcess[];
  /** Last payload per topic, and whether it came live (not a retained copy on subscribing). */
  const seen = new Map<string, { text: string; live: boolean }>();
  /** Every payload on `hearth/bridge/state`, in order. */
  const bridge: string[] = [];

  const payloadOf = (topic: string) => JSON.parse(seen.get(topic)?.text || 'null');
  const sets = () => plug.calls.filter((c) => c.action === 'SetBinaryState').length;
  const start = (role: 'api' | 'controller' | 'agent') =>
    startRole(config, role).then((p) => {
      procs.push(p);
      return p;
    });
  const leaderOf = async (group: RoleProcess[]) => {
    const gauges = await Promise.all(
      group.map((p) => leaderGauge(p.url, 'controller').catch(() => undefined)),
    );
    return gauges.indexOf(1) < 0 ? undefined : group[gauges.indexOf(1)];
  };

  /** hearth/bridge/state as a client subscribing now gets it: the broker's retained copy. */
  const retainedBridgeState = async () => {
    const late = await mqtt.connectAsync(broker.url, { protocolVersion: 5, ...asUser('homeassistant') });
    try {
      let text: string | undefined;
      late.on('message', (_topic, payload, packet) => {
        if (packet.retain) text = String(payload);
      });
      await late.subscribeAsync('hearth/bridge/state');
      return await until(() => text, { what: 'the retained hearth/bridge/state' });
    } finally {
      await late.endAsync();
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker({ clients: ['homeassistant'] });
    plug = await startWemoSimulator({ initial: false });
    speaker = await startSonosSimulator({ clipMs: 200 });
    dir = tempDir();
    // The agent serves the clip to the speaker from the media folder of its own box.
    mkdirSync(join(dir, 'media'));
    writeFileSync(join(dir, 'media', 'ding.mp3'), Buffer.alloc(3000, 7));
    config = writeClusterConfig(dir, {
      pgUrl: db.url,
      mqttUrl: broker.url,
      leaseSeconds: LEASE_S,
      body: `
switches:
  - { id: plug, kind: wemo/v1, name: Desk plug, room: Study, address: 127.0.0.1, port: ${plug.port}, timeoutMs: 1000, pollSeconds: 0 }
speakers:
  - { id: hall, kind: sonos/v1, name: Hall speaker, address: 127.0.0.1, port: ${speaker.port}, pollSeconds: 0, clips: [ding.mp3] }
media: { dir: media }
homeassistant: { dashboardUrl: "https://hearth.home.arpa" }
buttons:
  - { id: bedside }
`,
    });
    ha = await mqtt.connectAsync(broker.url, { protocolVersion: 5, ...asUser('homeassistant') });
    ha.on('message', (topic, payload, packet) => {
      seen.set(topic, { text: String(payload), live: !packet.retain });
      if (topic === 'hearth/bridge/state') bridge.push(String(payload));
    });
    await ha.subscribeAsync(['homeassistant/#', 'hearth/+/state']);
    const [agent] = await Promise.all([start('agent'), start('api')]);
    expect(agent).toBeDefined();
    controllers = await Promise.all([start('controller'), start('controller')]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await ha?.endAsync();
    await plug?.close();
    await speaker?.close();
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('the leading controller announces the plug, publishes its state retained, and runs a command once', async () => {
    await until(() => payloadOf('hearth/plug/state')?.available === true, {
      timeoutMs: 10_000,
      what: 'the plug state published',
    });
    await until(() => seen.has(CONFIG_TOPIC) && seen.has(BRIDGE_TOPIC), { what: 'the discovery configs' });
    expect(payloadOf(CONFIG_TOPIC)).toMatchObject({
      unique_id: 'hearth_hearth_plug',
      default_entity_id: 'switch.desk_plug',
      name: null,
      state_topic: 'hearth/plug/state',
      command_topic: 'hearth/plug/set',
      device: {
        identifiers: ['hearth_hearth_plug'],
        name: 'Desk plug',
        model: 'wemo (wemo/v1)',
        suggested_area: 'Study',
        configuration_url: 'https://hearth.home.arpa',
        via_device: 'hearth_hearth_bridge',
      },
    });
    expect(payloadOf(CONFIG_TOPIC)).not.toHaveProperty('object_id');
    // hearth itself: connected while a controller leads, on the topic the leader owns.
    expect(payloadOf(BRIDGE_TOPIC)).toMatchObject({
      unique_id: 'hearth_hearth_bridge',
      device_class: 'connectivity',
      state_topic: 'hearth/bridge/state',
      payload_on: 'online',
      device: { identifiers: ['hearth_hearth_bridge'] },
    });
    expect(seen.get('hearth/bridge/state')?.text).toBe('online');
    expect(await leaderOf(controllers)).toBeDefined();

    // What a Home Assistant that starts now gets: retained copies.
    const late = await mqtt.connectAsync(broker.url, { protocolVersion: 5, ...asUser('homeassistant') });
    try {
      const retained = new Map<string, string>();
      late.on('message', (topic, payload, packet) => {
        if (packet.retain) retained.set(topic, String(payload));
      });
      await late.subscribeAsync([CONFIG_TOPIC, 'hearth/plug/state', 'hearth/bridge/state']);
      await until(() => retained.size === 3, { what: 'three retained messages' });
      expect(retained.get('hearth/bridge/state')).toBe('online');
      // Not read yet (pollSeconds: 0): known, available, no state until the first command.
      expect(JSON.parse(retained.get('hearth/plug/state') ?? '')).toMatchObject({
        state: null,
        available: true,
      });
    } finally {
      await late.endAsync();
    }

    // Both controllers see the command topic's traffic; only the leader acts on it.
    const before = sets();
    await ha.publishAsync('hearth/plug/set', 'toggle');
    await until(() => plug.on, { what: 'the plug on' });
    await until(() => payloadOf('hearth/plug/state')?.state === 'on', {
      what: 'state on published',
    });
    // Observation window: the standby got the same message at the same moment; had it acted,
    // its toggle would reach the plug within this second of the leader's.
    await letTimePass(1000);
    expect(sets() - before).toBe(1);

    // A button lives in PostgreSQL: the leader records the press, and announces the button.
    await ha.publishAsync('hearth/bedside/set', 'on');
    await until(() => payloadOf('hearth/bedside/state')?.state === 'on', {
      what: 'bedside on',
    });
    await until(() => seen.has('homeassistant/switch/hearth/bedside/config'), {
      what: 'bedside announced',
    });
    expect(payloadOf('homeassistant/switch/hearth/bedside/config').device).toMatchObject({
      name: 'hearth buttons',
      via_device: 'hearth_hearth_bridge',
    });
  });

  it("a chime's button, pressed by Home Assistant's user, plays the clip through the agent", async () => {
    await until(() => seen.has(DING_TOPIC) && payloadOf('hearth/hall/state')?.available === true, {
      timeoutMs: 10_000,
      what: "the hall speaker's button and state",
    });
    const ding = payloadOf(DING_TOPIC);
    expect(ding).toMatchObject({
      name: 'Play ding',
      default_entity_id: 'button.hall_speaker_play_ding',
      command_topic: 'hearth/hall/set',
      device: { identifiers: ['hearth_hearth_hall'], via_device: 'hearth_hearth_bridge' },
    });
    await ha.publishAsync(ding.command_topic, ding.payload_press);
    await until(() => speaker.chimes.at(-1)?.ended && payloadOf('hearth/hall/state')?.state === 'idle', {
      timeoutMs: 10_000,
      what: 'the clip played and the chime idle again',
    });
    expect(speaker.chimes).toHaveLength(1);
    expect(speaker.chimes[0]?.uri).toMatch(/\/api\/v0\/chime\/ding\.mp3$/);
    expect(speaker.chimes[0]?.fetched).toMatchObject({ status: 206, bytes: 3000 });
  });

  it('after kill -9 of the leader the other controller takes over within the failover time', async () => {
    const leader = await leaderOf(controllers);
    if (!leader) throw new Error('no leading controller');
    const standby = controllers.find((c) => c !== leader) as RoleProcess;
    bridge.length = 0;
    await leader.kill9();
    const killedAt = Date.now();
    // The dead leader's will says offline; the new leader says online.
    await until(() => bridge.includes('offline'), { what: "the dead leader's will" });
    await until(() => bridge.at(-1) === 'online', { timeoutMs: 10_000, what: 'the new leader online' });

    // A command on the set topic works again; `off` is idempotent, so a retry cannot undo it.
    await until(
      async () => {
        if (!plug.on) return true;
        await ha.publishAsync('hearth/plug/set', '{"command": "off"}');
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: 'a command working again (the plug off)' },
    );
    const worked = Date.now() - killedAt;
    expect(worked).toBeLessThanOrEqual(LEASE_S * 1000 + 3000);
    expect(await leaderGauge(standby.url, 'controller')).toBe(1);
    const before = sets();
    await ha.publishAsync('hearth/plug/set', 'toggle');
    await until(() => plug.on, { what: 'the plug on' });
    // Observation window, as above: the old standby, now leader, acts; nothing else does.
    await letTimePass(500);
    expect(sets() - before).toBe(1);

    // Home Assistant restarting: the new leader publishes every config again.
    seen.delete(CONFIG_TOPIC);
    seen.delete(BRIDGE_TOPIC);
    seen.delete(DING_TOPIC);
    seen.delete('homeassistant/switch/hearth/bedside/config');
    await ha.publishAsync('homeassistant/status', 'online');
    await until(
      () =>
        [CONFIG_TOPIC, BRIDGE_TOPIC, DING_TOPIC].every((t) => seen.get(t)?.live === true) &&
        seen.has('homeassistant/switch/hearth/bedside/config'),
      { what: 'the configs republished' },
    );
    expect(payloadOf(CONFIG_TOPIC).device.name).toBe('Desk plug');
  });

  it('a clean stop of the leader hands over without leaving the bridge offline', async () => {
    const leader = await leaderOf(controllers);
    if (!leader) throw new Error('no leading controller');
    const next = await start('controller');
    controllers.push(next);
    bridge.length = 0;
    await leader.stop();
    await until(async () => (await leaderGauge(next.url, 'controller')) === 1, {
      timeoutMs: 10_000,
      what: 'the new controller to lead',
    });
    // The old leader says offline as it goes; whichever order that and the new leader's online
    // reach the broker in, the last word is online.
    await until(() => bridge.includes('offline'), { what: 'offline from the old leader' });
    await until(() => bridge.at(-1) === 'online', { what: 'online from the new leader' });
    // The last word, as a Home Assistant starting now reads it: the broker's retained copy.
    expect(await retainedBridgeState()).toBe('online');
    expect(bridge.at(-1)).toBe('online');
    // An offline that reaches the broker late (a partitioned leader's will, noticed at its
    // keep-alive) is answered at once by the leader.
    bridge.length = 0;
    const late = await mqtt.connectAsync(broker.url, { protocolVersion: 5, ...asUser('hearth-controller') });
    await late.publishAsync('hearth/bridge/state', 'offline', { retain: true });
    await late.endAsync();
    await until(() => bridge.join() === 'offline,online', { what: 'the leader to say online again' });
    const before = sets();
    await ha.publishAsync('hearth/plug/set', 'off');
    await until(() => !plug.on, { what: 'the plug off' });
    // Observation window, as above.
    await letTimePass(500);
    expect(sets() - before).toBe(1);
  });
});
