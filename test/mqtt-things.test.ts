import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mqttAccess } from '../src/bus/mqtt/access.js';
import { MqttLink } from '../src/bus/mqtt/link.js';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import { drivers } from '../src/drivers/index.js';
import { mqttThingConfigSchema, mqttThingsDriver } from '../src/drivers/mqtt-things/index.js';
import { setupMqttThing } from '../src/drivers/mqtt-things/setup.js';
import { fakeDriverContext } from './support/driver-context.js';
import { http, post, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { until } from './support/wait.js';

/**
 * A tiny mqtt_things firmware: it takes `.../set` and reports the new value retained on
 * `.../get`, as the cluster's devices do. `mute` stops it answering (a device that hangs).
 */
class FakeFirmware {
  readonly got: string[] = [];
  mute = false;
  private constructor(readonly client: MqttClient) {}

  static async start(url: string, prefixes: string[]): Promise<FakeFirmware> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
    const fw = new FakeFirmware(client);
    client.on('message', (topic, payload) => {
      if (!topic.endsWith('/set')) return;
      fw.got.push(`${topic}=${payload}`);
      if (!fw.mute) client.publish(`${topic.slice(0, -4)}/get`, payload, { retain: true });
    });
    for (const p of prefixes) await client.subscribeAsync(`${p}/+/set`);
    return fw;
  }

  report(topic: string, payload: string | Buffer): Promise<unknown> {
    return this.client.publishAsync(topic, payload, { retain: true });
  }
}

const json = { 'content-type': 'application/json' };

async function entity(h: TestHearth, id: string) {
  const r = await http(`${h.url}/api/v1/entities/${id}`);
  const body = JSON.parse(r.body);
  return body.entity ?? body;
}

/** The entity once `test` holds for it. */
async function entityWhen(
  h: TestHearth,
  id: string,
  test: (e: Record<string, unknown>) => boolean,
  what: string,
): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> | undefined;
  return until(
    async () => {
      const e: Record<string, unknown> = await entity(h, id);
      last = e;
      return test(e) ? e : undefined;
    },
    { what: () => `${what}; ${id} was ${JSON.stringify(last)}` },
  );
}

describe.skipIf(mosquittoMissing)('mqtt_things devices through a real hearth and Mosquitto', () => {
  let broker: TestMosquitto;
  let h: TestHearth;
  let fw: FakeFirmware;

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    fw = await FakeFirmware.start(broker.url, ['home/lamp', 'home/aircon/living']);
    await fw.report('home/lamp/state/get', '0');
    await fw.report('home/aircon/living/power/get', 'OFF');
    await fw.report('home/aircon/living/mode/get', 'off');
    await fw.report('home/aircon/living/temperature/get', '24');
    h = await startTestHearth(
      [
        `mqtt: { url: "${broker.url}" }`,
        'things:',
        '  - { id: lamp, kind: mqtt-switch/v1, topic: home/lamp, timeoutMs: 1000 }',
        '  - { id: temp, kind: mqtt-sensor/v1, topic: home/temp, unit: "°C" }',
        '  - { id: hum, kind: mqtt-sensor/v1, topic: home/weather, field: humidity, unit: "%" }',
        '  - { id: ac, kind: mqtt-climate/v1, topic: home/aircon/living, timeoutMs: 1000 }',
        '  - { id: dead, kind: mqtt-switch/v1, topic: home/dead, timeoutMs: 300 }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await h?.close();
    await fw?.client.endAsync();
    await broker?.stop();
  });

  it('switches a relay: 1/0 on state/set, done when state/get reports it', async () => {
    await entityWhen(h, 'lamp', (e) => e.available === true && e.state === 'off', 'the retained state');
    const on = await post(`${h.url}/api/v1/entities/lamp/commands/on`);
    expect(on.status).toBe(200);
    expect(JSON.parse(on.body).entity).toMatchObject({ state: 'on', available: true });
    expect(fw.got).toContain('home/lamp/state/set=1');
    const toggled = await post(`${h.url}/api/v1/entities/lamp/commands/toggle`);
    expect(JSON.parse(toggled.body).entity.state).toBe('off');
    expect(fw.got.at(-1)).toBe('home/lamp/state/set=0');
    // Switched by hand at the device: hearth follows.
    await fw.report('home/lamp/state/get', '1');
    await entityWhen(h, 'lamp', (e) => e.state === 'on', 'the state switched by hand');
  });

  it('a device that never reports is unavailable, and its command times out instead of hanging', async () => {
    expect(await entity(h, 'dead')).toMatchObject({ available: false });
    const r = await post(`${h.url}/api/v1/entities/dead/commands/on`);
    expect(r.status).toBeGreaterThanOrEqual(400);
    // Once the device answers, it works.
    await fw.report('home/dead/state/get', '1');
    await entityWhen(h, 'dead', (e) => e.available === true && e.state === 'on', 'the late device');
  });

  it('a switch whose firmware hangs times out, then works again', async () => {
    fw.mute = true;
    const r = await post(`${h.url}/api/v1/entities/lamp/commands/off`);
    expect(JSON.parse(r.body).error.code).toBe('HEARTH_ERR_DEVICE_TIMEOUT');
    fw.mute = false;
    const again = await post(`${h.url}/api/v1/entities/lamp/commands/off`);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body).entity.state).toBe('off');
  });

  it('reads sensors: a plain number, or a field of a JSON object, with their unit', async () => {
    await fw.report('home/temp', '21.5');
    await fw.report('home/weather', JSON.stringify({ humidity: 41, wind: 3 }));
    expect(await entityWhen(h, 'temp', (e) => e.state === 21.5, 'the temperature')).toMatchObject({
      kind: 'sensor',
      available: true,
      attributes: { unit: '°C' },
    });
    expect(await entityWhen(h, 'hum', (e) => e.state === 41, 'the humidity')).toMatchObject({
      attributes: { unit: '%' },
    });
  });

  it('runs an aircon: power, mode and temperature on their own topics', async () => {
    await entityWhen(h, 'ac', (e) => e.available === true, 'the aircon state');
    expect((await entity(h, 'ac')).state).toEqual({ power: 'off', mode: 'off', target: 24 });
    const set = await post(`${h.url}/api/v1/entities/ac/commands/set`, {
      body: JSON.stringify({ power: 'on', mode: 'cool', temperature: 20 }),
      headers: json,
    });
    expect(set.status).toBe(200);
    expect(JSON.parse(set.body).entity).toMatchObject({
      kind: 'climate',
      state: { power: 'on', mode: 'cool', target: 20 },
    });
    expect(fw.got).toEqual(
      expect.arrayContaining([
        'home/aircon/living/power/set=ON',
        'home/aircon/living/mode/set=cool',
        'home/aircon/living/temperature/set=20',
      ]),
    );
    const off = await post(`${h.url}/api/v1/entities/ac/commands/off`);
    expect(JSON.parse(off.body).entity.state).toEqual({ power: 'off', mode: 'cool', target: 20 });
    const tooHot = await post(`${h.url}/api/v1/entities/ac/commands/set`, {
      body: JSON.stringify({ temperature: 31 }),
      headers: json,
    });
    expect(JSON.parse(tooHot.body).error.code).toBe('HEARTH_ERR_BAD_ARGUMENTS');
  });
});

describe.skipIf(mosquittoMissing)('mqtt_things bad input', () => {
  let broker: TestMosquitto;
  let link: MqttLink;
  let fw: FakeFirmware;

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    link = new MqttLink({ url: broker.url, clientId: 'things-test' }).start();
    await until(() => link.connected, { what: 'the link' });
    fw = await FakeFirmware.start(broker.url, ['home/fan']);
  });
  afterAll(async () => {
    await link?.stop();
    await fw?.client.endAsync();
    await broker?.stop();
  });

  it('ignores and counts garbage on every topic, and the entity is not stuck', async () => {
    const cfg = (raw: unknown) => mqttThingConfigSchema.parse(raw);
    const things = [
      cfg({ id: 'fan', kind: 'mqtt-switch/v1', topic: 'home/fan' }),
      cfg({ id: 'rain', kind: 'mqtt-sensor/v1', topic: 'home/rain', field: 'mm' }),
      cfg({ id: 'ac', kind: 'mqtt-climate/v1', topic: 'home/ac' }),
    ];
    const f = fakeDriverContext(mqttThingsDriver, things);
    const running = [];
    for (const t of things) running.push(await setupMqttThing({ ...f.ctx, mqtt: mqttAccess(link) }, t));
    const fan = f.entity('fan', 'switch');
    const rain = f.entity('rain', 'sensor');
    const ac = f.entity('ac', 'climate');
    expect(fan.available).toBe(false);

    const before = link.stats.garbage;
    await fw.report('home/fan/state/get', 'banana');
    await fw.report('home/rain', 'not json');
    await fw.report('home/rain', '{"mm": "lots"}');
    await fw.report('home/rain', '[1, 2]');
    await fw.report('home/ac/temperature/get', '99');
    await fw.report('home/ac/mode/get', 'turbo');
    await fw.report('home/rain', Buffer.alloc(4096, 0x31)); // under the link's cap, over a reading's
    await until(() => link.stats.garbage - before === 7, {
      what: 'seven counted garbage payloads',
    });
    // 1 MB: past the link's 256 kB cap, the broker drops it for hearth; nothing breaks.
    await fw.report('home/rain', Buffer.alloc(1024 * 1024, 0x31));
    expect(fan.states).toEqual([]);
    expect(rain.states).toEqual([]);
    expect(ac.states).toEqual([]);
    expect(fan.available).toBe(false);

    // Good payloads after all that still land.
    await fw.report('home/fan/state/get', '1');
    await fw.report('home/rain', '{"mm": 2.5}');
    await fw.report('home/ac/power/get', 'ON');
    await fw.report('home/ac/mode/get', 'heat');
    await fw.report('home/ac/temperature/get', '22');
    await until(() => fan.states.length === 1 && rain.states.length === 1 && ac.states.length > 0, {
      what: 'states',
    });
    expect(fan.states).toEqual(['on']);
    expect(rain.states).toEqual([2.5]);
    expect(ac.states.at(-1)).toEqual({ power: 'on', mode: 'heat', target: 22 });
    expect(fan.available).toBe(true);
    const off = await fan.handlers.off({}, { signal: AbortSignal.timeout(2000) });
    expect(off).toBe('off');

    // The broker dies: unavailable; back, the retained state makes it available again.
    await broker.kill();
    await until(() => fan.available === false, { what: 'unavailable without the broker' });
    await broker.restart();
    await fw.client.endAsync();
    fw = await FakeFirmware.start(broker.url, ['home/fan']);
    await fw.report('home/fan/state/get', '0');
    await until(() => fan.available === true, { timeoutMs: 10_000, what: 'available again' });
    for (const r of running) await r.stop();
  }, 20_000);
});

describe('mqtt_things config', () => {
  it('a device under things: without mqtt: is an error at its line', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(file, 'things:\n  - { id: lamp, kind: mqtt-switch/v1, topic: home/lamp }\n');
    let error: unknown;
    try {
      loadConfigFile(file, { drivers });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toMatch(
      /hearth\.yaml:2:\d+: things\[0\]: needs the MQTT broker: add `mqtt:/,
    );
  });

  it('refuses wildcards in a topic and unknown keys', () => {
    expect(
      mqttThingConfigSchema.safeParse({ id: 'a', kind: 'mqtt-switch/v1', topic: 'home/+/x' }).success,
    ).toBe(false);
    expect(
      mqttThingConfigSchema.safeParse({ id: 'a', kind: 'mqtt-switch/v1', topic: 'home/x', unit: 'W' })
        .success,
    ).toBe(false);
    expect(
      mqttThingConfigSchema.safeParse({ id: 'a', kind: 'mqtt-sensor/v1', topic: 'home/x' }).success,
    ).toBe(true);
  });
});
