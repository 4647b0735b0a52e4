import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxPayloadBytes } from '../src/bus/mqtt/limits.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { republishEveryMs } from '../src/homeassistant/discovery.js';
import { http, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { until, untilOutput } from './support/wait.js';

/**
 * Floods that anyone who may publish on the broker can send stay cheap for the built hearth:
 * its log stays bounded however many topics carry garbage, Home Assistant's `online` republishes
 * discovery at most once per {@link republishEveryMs}, and a zigbee2mqtt device list up to the
 * documented size arrives while a bigger one is logged and counted, never silently lost.
 */
describe.skipIf(mosquittoMissing)('MQTT floods against the built hearth and a real Mosquitto', () => {
  let broker: TestMosquitto;
  let hearth: HearthProcess | undefined;
  let client: MqttClient;
  const dir = tempDir('hearth-floods-');
  const bedsideConfig = 'homeassistant/switch/hearth/bedside/config';
  /** Live (not retained) publishes of the bedside button's discovery config, with when they came. */
  const republishes: number[] = [];
  /** The button's state as hearth last published it (null until pressed). */
  let bedsideState: string | null | undefined;

  const metric = async (name: string): Promise<number> => {
    const text = (await http(`${hearth?.url}/metrics`)).body;
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN');
  };
  const entities = async (): Promise<EntityView[]> =>
    JSON.parse((await http(`${hearth?.url}/api/v1/entities`)).body).entities;
  /** hearth's log lines (JSON, one a line) so far. */
  const logLines = (): string[] => (hearth?.output() ?? '').split('\n').filter((l) => l.startsWith('{'));

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    client.on('message', (topic, payload, packet) => {
      if (topic === bedsideConfig && !packet.retain) republishes.push(Date.now());
      if (topic === 'hearth/bedside/state') bedsideState = JSON.parse(String(payload)).state;
    });
    await client.subscribeAsync([bedsideConfig, 'hearth/bedside/state']);
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http: { host: 127.0.0.1, port: 0 }
storage: { sqlite: hearth.db }
mqtt: { url: "${broker.url}" }
zigbee2mqtt: { baseTopic: zigbee2mqtt }
buttons:
  - { id: bedside, name: Bedside button }
`,
    );
    hearth = await spawnHearth(config);
    await until(() => bedsideState !== undefined, {
      timeoutMs: 10_000,
      what: 'hearth publishing the button state',
    });
    expect(bedsideState).not.toBe('on');
  });
  afterAll(async () => {
    hearth?.child.kill('SIGTERM');
    await hearth?.exited;
    await client?.endAsync();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a flood of homeassistant/status online republishes discovery at most once per window, and the last online is answered', async () => {
    const before = republishes.length;
    const flood = 200;
    for (let i = 0; i < flood; i++) client.publish('homeassistant/status', 'online');
    // hearth reads its connection in order: once the command sent after the flood has turned the
    // button on, every `online` before it has been handled.
    await client.publishAsync('hearth/bedside/set', 'on');
    await until(() => bedsideState === 'on', { timeoutMs: 10_000, what: 'the command sent after the flood' });
    const seen = republishes.slice(before);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    // Republishes are at least a window apart, so over the span from the first one to the end
    // of the flood there can be one more per window begun: a bound by count, not a race.
    const span = Date.now() - (seen[0] as number);
    expect(seen.length).toBeLessThanOrEqual(1 + Math.ceil(span / republishEveryMs));
    expect(seen.length).toBeLessThan(flood / 10);
    // The onlines that came during the window are folded into one republish at its end.
    const count = seen.length;
    await until(() => republishes.length - before > count, {
      timeoutMs: republishEveryMs + 5000,
      what: 'the folded republish',
    });
    const [first, second] = republishes.slice(before + count - 1);
    expect((second as number) - (first as number)).toBeGreaterThanOrEqual(republishEveryMs - 200);
  });

  it('a zigbee2mqtt device list of exactly the documented size arrives; one byte over is logged with its topic and the cap, and counted', async () => {
    const device = (n: number) => ({
      ieee_address: `0x00158d0001${n.toString(16).padStart(6, '0')}`,
      type: 'EndDevice',
      network_address: n,
      supported: true,
      disabled: false,
      friendly_name: `Sensor ${String(n).padStart(3, '0')}`,
      definition: {
        model: 'WSDCGQ11LM',
        vendor: 'Aqara',
        description: 'Temperature, humidity and pressure sensor',
        exposes: [{ type: 'numeric', name: 'temperature', property: 'temperature', access: 1, unit: '°C' }],
        options: [],
      },
      power_source: 'Battery',
      interview_completed: true,
      interviewing: false,
    });
    /** The list of devices 1..n as JSON, padded with whitespace (valid JSON) to `bytes`. */
    const list = (n: number, bytes: number): Buffer => {
      const text = JSON.stringify(Array.from({ length: n }, (_, i) => device(i + 1)));
      expect(Buffer.byteLength(text)).toBeLessThan(bytes);
      return Buffer.from(text.padEnd(bytes - (Buffer.byteLength(text) - text.length), ' '));
    };
    const atCap = list(200, maxPayloadBytes);
    expect(atCap.length).toBe(maxPayloadBytes);
    await client.publishAsync('zigbee2mqtt/bridge/devices', atCap, { retain: true, qos: 1 });
    await expect
      .poll(async () => (await entities()).filter((e) => e.driver === 'zigbee2mqtt').length, {
        timeout: 10_000,
        interval: 100,
      })
      .toBe(200);
    expect((await entities()).some((e) => e.id === 'sensor-200-temperature')).toBe(true);

    const oversizeBefore = await metric('hearth_mqtt_oversize_total');
    const over = list(201, maxPayloadBytes + 1);
    expect(over.length).toBe(maxPayloadBytes + 1);
    await client.publishAsync('zigbee2mqtt/bridge/devices', over, { retain: true, qos: 1 });
    await expect
      .poll(() => metric('hearth_mqtt_oversize_total'), { timeout: 10_000, interval: 100 })
      .toBe(oversizeBefore + 1);
    // Counted first, logged at the same moment; the line reaches this process through a pipe,
    // so it may come a little after the counter moved: waited for, not looked up at once.
    const [line] = await untilOutput(
      () => logLines().join('\n'),
      /^.*zigbee2mqtt\/bridge\/devices.*limit.*$/m,
      {
        what: 'the line logging the oversize device list',
        failOn: hearth?.exited,
      },
    );
    expect(JSON.parse(line as string).msg).toContain(
      `on zigbee2mqtt/bridge/devices: its ${maxPayloadBytes + 1} bytes are over hearth's limit of ${maxPayloadBytes} bytes`,
    );
    // Dropped unread: the entities of the last list that fit stay, the 201st device is not taken.
    const zigbee = (await entities()).filter((e) => e.driver === 'zigbee2mqtt');
    expect(zigbee).toHaveLength(200);
    expect(zigbee.some((e) => e.id === 'sensor-201-temperature')).toBe(false);
    expect(await metric('hearth_mqtt_garbage_total')).toBeGreaterThanOrEqual(1);
  });

  it('garbage on many distinct topics gives a bounded number of log lines, then one summary of the rest', async () => {
    const garbageBefore = await metric('hearth_mqtt_garbage_total');
    const linesBefore = logLines().length;
    const flood = 300;
    for (let i = 0; i < flood; i++) client.publish(`hearth/nosuch-${i}/set`, 'on');
    await expect
      .poll(() => metric('hearth_mqtt_garbage_total'), { timeout: 10_000, interval: 100 })
      .toBe(garbageBefore + flood);
    // The summary comes at the end of the log interval (10 s) that the flood began.
    const summary =
      /MQTT: \d+ more ignored MQTT messages in the last \d+ s were not logged one by one \((\d+) on topics past the first (\d+),/;
    await until(
      () =>
        logLines()
          .slice(linesBefore)
          .some((l) => summary.test(l)),
      { timeoutMs: 15_000, what: 'the summary line of the garbage not logged' },
    );
    const lines = logLines().slice(linesBefore);
    const oneByOne = lines.filter(
      (l) => !summary.test(l) && /ignored an MQTT message on hearth\/nosuch-\d+\/set/.test(l),
    );
    const summaries = lines.flatMap((l) => {
      const m = summary.exec(l);
      return m ? [{ past: Number(m[1]), perInterval: Number(m[2]) }] : [];
    });
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    const perInterval = summaries[0]?.perInterval as number;
    // Bounded by the number of intervals the flood took (one, on any machine that is not stuck),
    // not by the number of topics; and every message is either a line or in a summary.
    expect(oneByOne.length).toBeLessThanOrEqual(perInterval * summaries.length);
    expect(oneByOne.length + summaries.reduce((n, s) => n + s.past, 0)).toBe(flood);
  });
});
