import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { drivers } from '../src/drivers/index.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { planEntities, slugOf } from '../src/drivers/zigbee2mqtt/exposes.js';
import { ZigbeeSimulator } from '../src/drivers/zigbee2mqtt/simulator.js';
import { runCli, startCli } from './support/cli-run.js';
import { http, post, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { until } from './support/wait.js';

describe('zigbee2mqtt devices as entities (the mapping)', () => {
  it('makes ids of friendly names', () => {
    expect(slugOf('Hall Remote')).toBe('hall-remote');
    expect(slugOf('living/Lamp 2')).toBe('living-lamp-2');
    expect(slugOf('Küche Decke')).toBe('kuche-decke');
    expect(slugOf('0x00158d0001a1b201')).toBe('0x00158d0001a1b201');
  });

  it('takes switches, detectors, sensors and actions; a device with two gangs gets one id per endpoint', () => {
    const binary = (name: string, access: number, on: unknown, off: unknown, endpoint?: string) => ({
      type: 'binary',
      name,
      property: endpoint ? `${name}_${endpoint}` : name,
      access,
      value_on: on,
      value_off: off,
      ...(endpoint ? { endpoint } : {}),
    });
    const plan = planEntities([
      { ieee_address: '0x1', type: 'Coordinator', friendly_name: 'Coordinator', definition: null },
      {
        ieee_address: '0x2',
        friendly_name: 'Wall Switch',
        definition: {
          exposes: [
            { type: 'switch', endpoint: 'l1', features: [binary('state', 7, 'ON', 'OFF', 'l1')] },
            { type: 'switch', endpoint: 'l2', features: [binary('state', 7, 'ON', 'OFF', 'l2')] },
          ],
        },
      },
      {
        ieee_address: '0x3',
        friendly_name: 'Bath Leak',
        definition: {
          exposes: [
            binary('water_leak', 1, true, false),
            { type: 'numeric', name: 'battery', property: 'battery', access: 1, unit: '%' },
            { type: 'numeric', name: 'linkquality', property: 'linkquality', access: 1, unit: 'lqi' },
          ],
        },
      },
      { ieee_address: '0x4', friendly_name: 'Disabled', disabled: true, definition: { exposes: [] } },
      { friendly_name: 'no ieee address' },
      'not a device',
    ]);
    expect(plan.entities.map((e) => [e.id, e.kind, e.property])).toEqual([
      ['wall-switch-l1', 'switch', 'state_l1'],
      ['wall-switch-l2', 'switch', 'state_l2'],
      ['bath-leak', 'binary_sensor', 'water_leak'],
      ['bath-leak-battery', 'sensor', 'battery'],
    ]);
    expect(plan.entities.find((e) => e.id === 'bath-leak')?.attributes).toEqual({ deviceClass: 'moisture' });
    expect(plan.problems).toHaveLength(2);
  });

  it('two devices that would share an id: the first keeps it, and the problem names both', () => {
    const sensor = (ieee: string, name: string) => ({
      ieee_address: ieee,
      friendly_name: name,
      definition: { exposes: [{ type: 'binary', name: 'occupancy', property: 'occupancy', access: 1 }] },
    });
    const plan = planEntities([sensor('0x1', 'Hall Motion'), sensor('0x2', 'hall_motion')]);
    expect(plan.entities.map((e) => e.device)).toEqual(['Hall Motion']);
    expect(plan.problems[0]).toMatch(/"hall_motion" and "Hall Motion" would both be "hall-motion"/);
  });
});

describe('the zigbee2mqtt: section', () => {
  const load = (yaml: string) => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, yaml);
    try {
      return loadConfigFile(file, { drivers });
    } catch (err) {
      return err;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('needs mqtt:, says so at its line, and takes only its own keys', () => {
    const noBroker = load('timezone: UTC\nzigbee2mqtt: { baseTopic: zigbee2mqtt }\n');
    expect(noBroker).toBeInstanceOf(ConfigError);
    expect(String((noBroker as Error).message)).toMatch(
      /hearth\.yaml:2:\d+: zigbee2mqtt: needs the MQTT broker/,
    );
    const typo = load('mqtt: { url: mqtt://127.0.0.1 }\nzigbee2mqtt:\n  baseTopik: z2m\n');
    expect(String((typo as Error).message)).toMatch(
      /hearth\.yaml:3:\d+: zigbee2mqtt\.baseTopik: unknown key/,
    );
    const list = load('mqtt: { url: mqtt://127.0.0.1 }\nzigbee2mqtt: [a]\n');
    expect(String((list as Error).message)).toMatch(
      /zigbee2mqtt: must be a mapping, like \{ baseTopic: zigbee2mqtt \}/,
    );
  });

  it('defaults to base topic zigbee2mqtt on agent main; automations may name its entities', () => {
    const cfg = load(
      'mqtt: { url: mqtt://127.0.0.1 }\nzigbee2mqtt: {}\nautomations:\n  - { id: a, triggers: [{ state: hall-remote, to: single }], actions: [{ command: hall-lamp.toggle }] }\n',
    ) as { devices: Array<{ config: Record<string, unknown>; agent: string }> };
    expect(cfg.devices[0]?.config).toMatchObject({
      id: 'zigbee2mqtt',
      baseTopic: 'zigbee2mqtt',
      timeoutMs: 5000,
    });
    expect(cfg.devices[0]?.agent).toBe('main');
  });
});

describe.skipIf(mosquittoMissing)('zigbee2mqtt through the built hearth and a real Mosquitto', () => {
  let broker: TestMosquitto;
  let z2m: ZigbeeSimulator;
  let lamp: WemoSimulator;
  let hearth: HearthProcess | undefined;
  let watcher: MqttClient;
  const dir = tempDir('hearth-zigbee-');

  const entities = async (): Promise<EntityView[]> =>
    JSON.parse((await http(`${hearth?.url}/api/v1/entities`)).body).entities;
  const entity = async (id: string): Promise<EntityView | undefined> =>
    (await entities()).find((e) => e.id === id);
  const poll = (id: string) => expect.poll(() => entity(id), { interval: 50 });

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    lamp = await startWemoSimulator({ initial: false });
    z2m = await ZigbeeSimulator.start({ mqttUrl: broker.url });
    watcher = await mqtt.connectAsync(broker.url);
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http: { host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }
storage: { sqlite: hearth.db }
mqtt: { url: "${broker.url}" }
zigbee2mqtt: { baseTopic: zigbee2mqtt, timeoutMs: 2000 }
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
automations:
  - id: remote-lamp
    triggers: [{ state: hall-remote, to: single }]
    actions: [{ command: lamp.toggle }]
`,
    );
    hearth = await spawnHearth(config);
  });
  afterAll(async () => {
    hearth?.child.kill('SIGTERM');
    await hearth?.exited;
    await watcher?.endAsync();
    await z2m?.close().catch(() => {});
    await lamp?.close();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hearth check names the automation ids it expects from zigbee2mqtt', async () => {
    const r = await runCli(['check', '--config', join(dir, 'hearth.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/expected from zigbee2mqtt.*: hall-remote/);
  });

  it('the device list becomes entities of the right kinds, with units and device classes', async () => {
    await expect
      .poll(async () =>
        (await entities())
          .filter((e) => e.driver === 'zigbee2mqtt')
          .map((e) => e.id)
          .sort(),
      )
      .toEqual(
        [
          'desk-lamp',
          'front-door',
          'front-door-battery',
          'hall-motion',
          'hall-motion-battery',
          'hall-motion-illuminance-lux',
          'hall-remote',
          'hall-remote-battery',
          'kitchen-plug',
          'kitchen-plug-energy',
          'kitchen-plug-power',
          'living-room-sensor-battery',
          'living-room-sensor-humidity',
          'living-room-sensor-pressure',
          'living-room-sensor-temperature',
        ].sort(),
      );
    expect(await entity('kitchen-plug')).toMatchObject({ kind: 'switch', commands: ['on', 'off', 'toggle'] });
    expect(await entity('front-door')).toMatchObject({
      kind: 'binary_sensor',
      attributes: { deviceClass: 'door' },
    });
    expect(await entity('living-room-sensor-temperature')).toMatchObject({
      kind: 'sensor',
      attributes: { unit: '°C', zigbee: { device: 'Living Room Sensor', property: 'temperature' } },
    });
    // Not retained by zigbee2mqtt: hearth asked the switches for their state.
    await poll('kitchen-plug').toMatchObject({ state: 'off', available: true });
  });

  it('the public listener shows no IEEE address (hardware identity), on the entity list, the stream and the page', async () => {
    await poll('kitchen-plug').toMatchObject({ available: true });
    // The control listener has them: the household's own detail.
    const ieee = /0x[0-9a-f]{16}/i;
    expect(await entity('kitchen-plug')).toMatchObject({
      attributes: { zigbee: { ieee: expect.stringMatching(ieee) } },
    });
    const pub = /public status page \(read-only\) on (http:\/\/\S+)/.exec(hearth?.output() ?? '')?.[1];
    expect(pub).toBeDefined();
    const list = await http(`${pub}/api/v1/entities`);
    expect(list.status).toBe(200);
    const plug = (JSON.parse(list.body).entities as EntityView[]).find((e) => e.id === 'kitchen-plug');
    expect(plug?.attributes).toMatchObject({ zigbee: { device: 'Kitchen Plug', property: 'state' } });
    expect(list.body).not.toMatch(ieee);
    expect(list.body).not.toContain('"ieee"');
    const page = await http(`${pub}/`);
    expect(page.status).toBe(200);
    expect(page.body).not.toMatch(ieee);
    // A change on the event stream.
    const stream = await fetch(`${pub}/api/v1/events`, { signal: AbortSignal.timeout(10_000) });
    const reader = stream.body?.getReader();
    await z2m.report('Living Room Sensor', { temperature: 21.5 });
    let text = '';
    while (reader && !text.includes('living-room-sensor-temperature')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader?.cancel();
    expect(text).toContain('living-room-sensor-temperature');
    expect(text).not.toMatch(ieee);
  });

  it('state follows the device topics', async () => {
    await z2m.report('Living Room Sensor', { temperature: 23.5 });
    await poll('living-room-sensor-temperature').toMatchObject({ state: 23.5 });
    await z2m.report('Front Door', { contact: false });
    await poll('front-door').toMatchObject({ state: 'on' });
    await z2m.report('Front Door', { contact: true });
    await poll('front-door').toMatchObject({ state: 'off' });
  });

  it('a command goes to <base>/<name>/set and is done when the device reports it', async () => {
    const r = await post(`${hearth?.url}/api/v1/entities/kitchen-plug/commands/on`, {
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ entity: { state: 'on' } });
    expect(z2m.sets.at(-1)).toEqual({ device: 'Kitchen Plug', payload: { state: 'ON' } });
    expect(z2m.state('Kitchen Plug')).toMatchObject({ state: 'ON' });
    const t = await post(`${hearth?.url}/api/v0/switches/kitchen-plug/toggle/`);
    expect(t.status).toBe(200);
    expect(z2m.state('Kitchen Plug')).toMatchObject({ state: 'OFF' });
  });

  it("a remote's action triggers the automation that toggles the Wemo plug, on every press", async () => {
    const before = lamp.calls.length;
    const runs = async () =>
      JSON.parse((await http(`${hearth?.url}/api/v1/automations/remote-lamp/runs`)).body).runs as Array<{
        outcome: string;
        endedAt: number | null;
      }>;
    await z2m.press('Hall Remote', 'single');
    await expect.poll(() => lamp.on).toBe(true);
    // The automation runs one at a time (mode single): the next press once this run has ended.
    await expect.poll(async () => (await runs()).filter((r) => r.endedAt !== null).length).toBe(1);
    await z2m.press('Hall Remote', 'single');
    await expect.poll(() => lamp.on).toBe(false);
    // A double press is not the automation's.
    await z2m.press('Hall Remote', 'double');
    await poll('hall-remote').toMatchObject({ state: 'double' });
    expect(lamp.on).toBe(false);
    expect(lamp.calls.length).toBeGreaterThan(before);
    expect((await runs()).filter((r) => r.outcome === 'ok')).toHaveLength(2);
  });

  it('a device renamed or removed in zigbee2mqtt moves or goes, without a restart; its retained state goes too', async () => {
    const states = new Map<string, string>();
    watcher.on('message', (topic, payload) => states.set(topic, String(payload)));
    await watcher.subscribeAsync('hearth/+/state');
    await expect.poll(() => states.get('hearth/hall-motion/state')).toBeDefined();

    // As zigbee2mqtt's frontend asks it.
    await watcher.publishAsync(
      'zigbee2mqtt/bridge/request/device/rename',
      JSON.stringify({ from: 'Hall Motion', to: 'Landing Motion' }),
    );
    await poll('landing-motion').toMatchObject({ kind: 'binary_sensor', name: 'Landing Motion' });
    expect(await entity('hall-motion')).toBeUndefined();
    await expect.poll(() => states.get('hearth/hall-motion/state')).toBe('');
    await z2m.report('Landing Motion', { occupancy: true });
    await poll('landing-motion').toMatchObject({ state: 'on' });

    await z2m.remove('Desk Lamp');
    await expect.poll(() => entity('desk-lamp')).toBeUndefined();
  });

  it('bridge offline makes every zigbee entity unavailable, and online brings them back; a device offline only its own', async () => {
    await z2m.setBridge('offline');
    await poll('kitchen-plug').toMatchObject({
      available: false,
      reason: expect.stringMatching(/zigbee2mqtt is offline/),
    });
    await poll('hall-remote').toMatchObject({ available: false });
    expect(await entity('lamp')).toMatchObject({ available: true });
    const refused = await post(`${hearth?.url}/api/v0/switches/kitchen-plug/on/`);
    expect(refused.status).toBe(502);
    await z2m.setBridge('online');
    await poll('kitchen-plug').toMatchObject({ available: true });

    await z2m.setAvailability('Kitchen Plug', 'offline');
    await poll('kitchen-plug').toMatchObject({
      available: false,
      reason: expect.stringMatching(/Kitchen Plug.*offline/),
    });
    expect(await entity('front-door')).toMatchObject({ available: true });
    await z2m.setAvailability('Kitchen Plug', 'online');
    await poll('kitchen-plug').toMatchObject({ available: true });
  });

  it('after a broker restart (its retained messages lost), discovery, retained states and the zigbee entities come back', async () => {
    await broker.restart();
    const fresh = await mqtt.connectAsync(broker.url, { reconnectPeriod: 200 });
    try {
      const retained = new Map<string, string>();
      let markers = 0;
      fresh.on('message', (topic, payload, packet) => {
        if (topic === 'test/marker') markers++;
        else if (packet.retain) retained.set(topic, String(payload));
      });
      await fresh.subscribeAsync('test/marker');
      // Subscribed again and again: only the copies the broker holds on subscribing count. They
      // come before a marker published after the subscription, on the same connection.
      await expect
        .poll(
          async () => {
            await fresh.unsubscribeAsync(['homeassistant/#', 'hearth/#']);
            await fresh.subscribeAsync(['homeassistant/#', 'hearth/#']);
            const marker = markers + 1;
            await fresh.publishAsync('test/marker', 'after the retained copies');
            await until(() => markers >= marker, { what: 'the marker after the retained copies' });
            return [
              retained.get('homeassistant/switch/hearth/lamp/config') !== undefined,
              retained.get('hearth/bridge/state'),
              retained.get('hearth/lamp/state') !== undefined,
              retained.get('hearth/kitchen-plug/state') !== undefined,
            ];
          },
          { timeout: 10_000, interval: 200 },
        )
        .toEqual([true, 'online', true, true]);
    } finally {
      await fresh.endAsync();
    }
    // Nothing stuck: a command through the zigbee bridge works again.
    await expect
      .poll(async () => (await post(`${hearth?.url}/api/v0/switches/kitchen-plug/on/`)).status, {
        timeout: 10_000,
        interval: 200,
      })
      .toBe(200);
    expect(z2m.state('Kitchen Plug')).toMatchObject({ state: 'ON' });
  });

  it('garbage on zigbee2mqtt topics is counted and ignored; the entities still work', async () => {
    const garbage = async () => {
      const text = (await http(`${hearth?.url}/metrics`)).body;
      return Number(/^hearth_mqtt_garbage_total (\d+)/m.exec(text)?.[1] ?? 'NaN');
    };
    const before = await garbage();
    await z2m.raw('Kitchen Plug', 'not json');
    await z2m.raw('Kitchen Plug', '[1,2]');
    await z2m.raw('Kitchen Plug', JSON.stringify({ state: 'MAYBE' }));
    await z2m.raw('Living Room Sensor', JSON.stringify({ temperature: 'hot' }));
    await z2m.raw('Kitchen Plug', Buffer.alloc(70 * 1024, 'x'));
    await z2m.raw('bridge/state', 'sideways');
    await z2m.raw('bridge/devices', '{"not": "a list"}');
    await expect.poll(garbage).toBeGreaterThanOrEqual(before + 7);
    // The retained device list was replaced by garbage; the entities hearth has stay.
    expect(await entity('kitchen-plug')).toMatchObject({ available: true });
    await z2m.report('Living Room Sensor', { temperature: 19 });
    await poll('living-room-sensor-temperature').toMatchObject({ state: 19 });
  });
});

describe.skipIf(mosquittoMissing)('hearth sim zigbee2mqtt', () => {
  it('publishes its house on the broker it is given, and takes commands', async () => {
    const broker = await TestMosquitto.start();
    const sim = startCli(['sim', 'zigbee2mqtt', '--mqtt', broker.url]);
    const client = await mqtt.connectAsync(broker.url);
    try {
      await sim.waitFor(/zigbee2mqtt simulator publishing on/);
      const seen = new Map<string, string>();
      client.on('message', (topic, payload) => seen.set(topic, String(payload)));
      await client.subscribeAsync(['zigbee2mqtt/bridge/#', 'zigbee2mqtt/Kitchen Plug']);
      await expect.poll(() => seen.get('zigbee2mqtt/bridge/state')).toBe('{"state":"online"}');
      // The device list follows the bridge's state: it may still be on its way.
      const names = () =>
        (JSON.parse(seen.get('zigbee2mqtt/bridge/devices') ?? '[]') as Array<{ friendly_name: string }>).map(
          (d) => d.friendly_name,
        );
      await expect.poll(names).toContain('Hall Remote');
      await client.publishAsync('zigbee2mqtt/Kitchen Plug/set', '{"state":"ON"}');
      await expect.poll(() => seen.get('zigbee2mqtt/Kitchen Plug')).toMatch(/"state":"ON"/);
      expect(await sim.stop()).toEqual({ code: 0, signal: null });
      await expect.poll(() => seen.get('zigbee2mqtt/bridge/state')).toBe('{"state":"offline"}');
    } finally {
      await sim.stop();
      await client.endAsync();
      await broker.stop();
    }
  });

  it('without --mqtt it says what it needs', async () => {
    const r = await runCli(['sim', 'zigbee2mqtt']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs a broker: --mqtt/);
  });
});
