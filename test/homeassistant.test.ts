import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandNames, type Kind, kindNames } from '../src/contract/kinds.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { componentOf, discoveryConfig } from '../src/homeassistant/discovery.js';
import { parseCommand } from '../src/homeassistant/gateway.js';
import { http, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { spawnHearth } from './support/process.js';
import { until } from './support/wait.js';

/**
 * The keys Home Assistant documents for each MQTT component (integrations/<component>.mqtt),
 * and the ones hearth must send for the entity to work. A key outside these is a typo Home
 * Assistant would refuse the whole config for.
 */
const common = [
  'availability',
  'availability_mode',
  'device',
  'json_attributes_template',
  'json_attributes_topic',
  'name',
  'object_id',
  'origin',
  'unique_id',
];
const documented: Record<string, { required: string[]; allowed: string[] }> = {
  switch: {
    required: ['state_topic', 'command_topic', 'payload_on', 'payload_off', 'state_on', 'state_off'],
    allowed: ['value_template', 'command_template', 'device_class', 'optimistic', 'retain'],
  },
  binary_sensor: {
    required: ['state_topic', 'payload_on', 'payload_off'],
    allowed: ['value_template', 'device_class', 'expire_after', 'force_update', 'off_delay'],
  },
  sensor: {
    required: ['state_topic'],
    allowed: [
      'value_template',
      'device_class',
      'unit_of_measurement',
      'state_class',
      'options',
      'expire_after',
      'force_update',
      'suggested_display_precision',
    ],
  },
  valve: {
    required: ['command_topic', 'state_topic', 'payload_open', 'payload_close', 'state_open', 'state_closed'],
    allowed: ['value_template', 'payload_stop', 'reports_position', 'device_class', 'optimistic', 'retain'],
  },
  climate: {
    required: [
      'modes',
      'mode_state_topic',
      'mode_command_topic',
      'temperature_state_topic',
      'temperature_command_topic',
    ],
    allowed: [
      'mode_state_template',
      'mode_command_template',
      'temperature_state_template',
      'temperature_command_template',
      'power_command_topic',
      'power_command_template',
      'payload_on',
      'payload_off',
      'min_temp',
      'max_temp',
      'temp_step',
      'precision',
      'temperature_unit',
      'current_temperature_topic',
      'current_temperature_template',
    ],
  },
};

function checkKeys(component: string, payload: Record<string, unknown>): void {
  const doc = documented[component];
  expect(doc, `a table row for ${component}`).toBeDefined();
  if (!doc) return;
  for (const key of [...common, ...doc.required])
    expect(payload, `${component} has ${key}`).toHaveProperty(key);
  const allowed = new Set([...common, ...doc.required, ...doc.allowed]);
  expect(Object.keys(payload).filter((k) => !allowed.has(k))).toEqual([]);
  expect(payload.availability_mode).toBe('all');
  expect(payload.origin).toMatchObject({ name: 'hearth' });
}

function view(id: string, kind: Kind, attributes: Record<string, unknown> = {}): EntityView {
  return {
    id,
    kind,
    name: id,
    driver: 'test',
    state: null,
    available: true,
    reason: null,
    updatedAt: null,
    commands: commandNames(kind),
    attributes,
  };
}

describe('discovery configs for every kind', () => {
  const o = { baseTopic: 'hearth', prefix: 'homeassistant', nodeId: 'box', version: '0.1.0' };
  for (const kind of kindNames) {
    it(`${kind} → ${componentOf[kind]} with the keys Home Assistant documents`, () => {
      const { topic, payload } = discoveryConfig(view(`e_${kind}`, kind, { unit: '°C' }), o, { name: 'd' });
      expect(topic).toBe(`homeassistant/${componentOf[kind]}/box/e_${kind}/config`);
      expect(payload.unique_id).toBe(`hearth_box_e_${kind}`);
      checkKeys(componentOf[kind], payload);
    });
  }

  it('a sensor gets its unit, a device class and a state class; one without a unit gets none', () => {
    const { payload } = discoveryConfig(view('t', 'sensor', { unit: '°C' }), o, {});
    expect(payload).toMatchObject({
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
    });
    const bare = discoveryConfig(view('s', 'sensor'), o, {}).payload;
    expect(bare).not.toHaveProperty('unit_of_measurement');
    expect(bare).not.toHaveProperty('state_class');
  });

  it('reads bare command names and {"command","args"}, and refuses the rest', () => {
    expect(parseCommand(Buffer.from('on'))).toEqual({ command: 'on' });
    expect(parseCommand(Buffer.from('{"command":"open","args":{"seconds":5}}'))).toEqual({
      command: 'open',
      args: { seconds: 5 },
    });
    for (const bad of ['{', '{"command":5}', '[1]', '{"command":"on","x":1}', 'x'.repeat(5000), '"a b"']) {
      expect(parseCommand(Buffer.from(bad))).toHaveProperty('error');
    }
  });
});

describe.skipIf(mosquittoMissing)('Home Assistant and hearth topics over a real Mosquitto', () => {
  let broker: TestMosquitto;
  let lamp: WemoSimulator;
  let h: TestHearth | undefined;
  let ha: MqttClient;
  /** Last payload per topic, and whether it came live (not a retained copy on subscribing). */
  const seen = new Map<string, { text: string; live: boolean }>();

  const config = (withLamp: boolean) => `
mqtt: { url: "${broker.url}" }
${withLamp ? `switches:\n  - { id: lamp, kind: wemo/v1, name: Living room lamp, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }\n` : ''}buttons:
  - { id: bedside, name: Bedside button }
things:
  - { id: outside, kind: mqtt-sensor/v1, topic: home/outside/temperature, unit: "°C" }
  - { id: aircon, kind: mqtt-climate/v1, name: Aircon, topic: home/aircon }
`;
  const payloadOf = (topic: string) => JSON.parse(seen.get(topic)?.text ?? 'null');

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    lamp = await startWemoSimulator({ initial: false });
    ha = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    ha.on('message', (topic, payload, packet) =>
      seen.set(topic, { text: String(payload), live: !packet.retain }),
    );
    await ha.subscribeAsync(['homeassistant/#', 'hearth/+/state']);
    await ha.publishAsync('home/outside/temperature', '21.5', { retain: true });
    // The aircon's firmware: it reports what it is told, retained, as mqtt_things devices do.
    ha.on('message', (topic, payload) => {
      if (topic.startsWith('home/aircon/') && topic.endsWith('/set')) {
        void ha.publishAsync(`${topic.slice(0, -4)}/get`, payload, { retain: true });
      }
    });
    await ha.subscribeAsync('home/aircon/+/set');
    for (const [what, value] of [
      ['power', 'ON'],
      ['mode', 'cool'],
      ['temperature', '22'],
    ]) {
      await ha.publishAsync(`home/aircon/${what}/get`, value as string, { retain: true });
    }
    h = await startTestHearth(config(true));
  });
  afterAll(async () => {
    await h?.close();
    await ha?.endAsync();
    await lamp?.close();
    await broker?.stop();
  });

  it('announces every entity, grouped by device, with the keys Home Assistant documents', async () => {
    const topics = {
      lamp: 'homeassistant/switch/hearth/lamp/config',
      bedside: 'homeassistant/switch/hearth/bedside/config',
      outside: 'homeassistant/sensor/hearth/outside/config',
      aircon: 'homeassistant/climate/hearth/aircon/config',
    };
    await until(() => Object.values(topics).every((t) => seen.has(t)), {
      what: 'every discovery config',
    });
    const lampCfg = payloadOf(topics.lamp);
    checkKeys('switch', lampCfg);
    expect(lampCfg).toMatchObject({
      unique_id: 'hearth_hearth_lamp',
      state_topic: 'hearth/lamp/state',
      command_topic: 'hearth/lamp/set',
      device: { identifiers: ['hearth_hearth_lamp'], name: 'Living room lamp', manufacturer: 'hearth' },
    });
    expect(payloadOf(topics.bedside).device.name).toBe('hearth buttons');
    const outside = payloadOf(topics.outside);
    checkKeys('sensor', outside);
    expect(outside).toMatchObject({
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
    });
    checkKeys('climate', payloadOf(topics.aircon));
    await until(() => payloadOf('hearth/outside/state')?.state === 21.5, {
      what: 'the sensor state published',
    });
    expect(payloadOf('hearth/outside/state')).toMatchObject({ available: true, attributes: { unit: '°C' } });
  });

  it('a command on the discovery command topic reaches the Wemo plug, and the state comes back', async () => {
    const cfg = payloadOf('homeassistant/switch/hearth/lamp/config');
    await ha.publishAsync(cfg.command_topic, cfg.payload_on);
    await until(() => lamp.on, { what: 'the plug on' });
    await until(() => payloadOf('hearth/lamp/state')?.state === 'on', {
      what: 'state on published',
    });
    await ha.publishAsync('hearth/lamp/set', JSON.stringify({ command: 'off', args: {} }));
    await until(() => !lamp.on, { what: 'the plug off' });
  });

  it("the climate's mode and temperature commands, rendered as Home Assistant does, reach the aircon", async () => {
    const cfg = payloadOf('homeassistant/climate/hearth/aircon/config');
    await until(() => payloadOf('hearth/aircon/state')?.available === true, {
      what: 'aircon available',
    });
    await ha.publishAsync(cfg.mode_command_topic, cfg.mode_command_template.replace('{{ value }}', 'heat'));
    await until(() => payloadOf('hearth/aircon/state')?.state?.mode === 'heat', {
      what: 'mode heat',
    });
    await ha.publishAsync(
      cfg.temperature_command_topic,
      cfg.temperature_command_template.replace('{{ value | int }}', '24'),
    );
    await until(() => payloadOf('hearth/aircon/state')?.state?.target === 24, {
      what: 'target 24',
    });
    await ha.publishAsync(cfg.power_command_topic, cfg.payload_off);
    await until(() => payloadOf('hearth/aircon/state')?.state?.power === 'off', {
      what: 'power off',
    });
  });

  it('a button a press creates is announced too', async () => {
    const res = await fetch(`${h?.url}/api/v0/buttons/porch/on/`, { method: 'POST' });
    expect(res.status).toBe(200);
    await until(() => seen.has('homeassistant/switch/hearth/porch/config'), {
      what: 'porch announced',
    });
    expect(payloadOf('homeassistant/switch/hearth/porch/config').device.name).toBe('hearth buttons');
  });

  it('bad input is ignored and counted, and the entity still works', async () => {
    const parts = h?.homeassistant;
    if (!parts) throw new Error('no Home Assistant parts');
    const before = parts.gateway.stats.garbage;
    const linkBefore = parts.mqtt.garbage;
    await ha.publishAsync('hearth/lamp/set', 'not json {');
    await ha.publishAsync('hearth/lamp/set', '{"command": 5}');
    await ha.publishAsync('hearth/nosuch/set', 'on');
    await ha.publishAsync('hearth/bridge/set', 'on');
    await ha.publishAsync('homeassistant/status', 'onlin');
    // Under the connection's cap (8 MiB, for zigbee2mqtt's device list), over a command's 4 kB:
    // it reaches hearth, and the gateway refuses it unread (test/mqtt-floods.test.ts: over the cap).
    await ha.publishAsync('hearth/lamp/set', Buffer.alloc(1024 * 1024, 'x'));
    await until(() => parts.gateway.stats.garbage - before === 5, { what: 'five counted' });
    await until(() => parts.mqtt.garbage - linkBefore === 6, {
      what: 'the bad status counted too',
    });
    // And in /metrics, for whoever watches the box.
    const metrics = (await http(`${h?.url}/metrics`)).body;
    const garbage = /^hearth_mqtt_garbage_total (\d+)$/m.exec(metrics)?.[1];
    expect(Number(garbage)).toBe(parts.mqtt.garbage);
    expect(metrics).toMatch(/^hearth_mqtt_connected 1$/m);
    expect(lamp.on).toBe(false);
    const errorsBefore = parts.gateway.stats.commandErrors;
    await ha.publishAsync('hearth/lamp/set', 'explode');
    await until(() => parts.gateway.stats.commandErrors > errorsBefore, {
      what: 'an unknown command refused',
    });
    await ha.publishAsync('hearth/lamp/set', 'toggle');
    await until(() => lamp.on, { what: 'the plug still switches' });
  });

  it('publishes every config again when Home Assistant says it is online', async () => {
    seen.delete('homeassistant/switch/hearth/bedside/config');
    await ha.publishAsync('homeassistant/status', 'online');
    await until(() => seen.get('homeassistant/switch/hearth/bedside/config')?.live === true, {
      what: 'republished',
    });
  });

  it('says offline on a clean stop, and empties the config of an entity removed from the config', async () => {
    await ha.subscribeAsync('hearth/bridge/state');
    // A retained command runs once, live; its retained copy must not run again at the next start.
    const commandsBefore = h?.homeassistant?.gateway.stats.commands ?? 0;
    await ha.publishAsync('hearth/bedside/set', 'on', { retain: true });
    await until(() => payloadOf('hearth/bedside/state')?.state === 'on', {
      what: 'bedside on',
    });
    expect(h?.homeassistant?.gateway.stats.commands).toBe(commandsBefore + 1);
    await h?.close();
    h = undefined;
    await until(() => seen.get('hearth/bridge/state')?.text === 'offline', {
      what: 'bridge offline',
    });
    seen.delete('homeassistant/switch/hearth/lamp/config');
    seen.delete('homeassistant/switch/hearth/bedside/config');
    h = await startTestHearth(config(false));
    await until(() => seen.get('hearth/bridge/state')?.text === 'online', {
      what: 'bridge online',
    });
    await until(() => seen.get('homeassistant/switch/hearth/lamp/config')?.text === '', {
      what: 'lamp config emptied',
    });
    // The new hearth has a new store, so the pressed button is gone with the lamp.
    expect([...(h.homeassistant?.discovery?.removed ?? [])].sort()).toEqual([
      'homeassistant/switch/hearth/lamp/config',
      'homeassistant/switch/hearth/porch/config',
    ]);
    expect(h.homeassistant?.gateway.stats).toMatchObject({ commands: 0, garbage: 1 });
    await ha.publishAsync('hearth/bedside/set', '', { retain: true });
    expect(payloadOf('homeassistant/switch/hearth/bedside/config').unique_id).toBe('hearth_hearth_bedside');
  });

  it('the last will says offline when the hearth process dies', async () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'hearth.yaml');
      writeFileSync(
        file,
        `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\nmqtt: { url: "${broker.url}", baseTopic: crash }\nbuttons: [{ id: hall }]\n`,
      );
      await ha.subscribeAsync('crash/bridge/state');
      const hearth = await spawnHearth(file);
      await until(() => seen.get('crash/bridge/state')?.text === 'online', {
        timeoutMs: 10_000,
        what: 'bridge online',
      });
      hearth.child.kill('SIGKILL');
      await hearth.exited;
      await until(() => seen.get('crash/bridge/state')?.text === 'offline', {
        what: 'bridge offline by the will',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 20_000);
});
