import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHearth, type TestHearth } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { until } from './support/wait.js';

/* One box with `mqtt:`: the process keeps one connection to the broker, for MQTT devices and Home Assistant. */
describe.skipIf(mosquittoMissing)('one box with an MQTT broker', () => {
  let broker: TestMosquitto;
  let h: TestHearth;

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    h = await startTestHearth(`mqtt: { url: "${broker.url}", clientId: hearth-box }\n`);
  });
  afterAll(async () => {
    await h?.close();
    await broker?.stop();
  });

  it('connects, says it is online, and is marked offline by its will when the broker loses it', async () => {
    const seen = new Map<string, string>();
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    client.on('message', (topic, payload) => seen.set(topic, String(payload)));
    await client.subscribeAsync('hearth/bridge/state');
    await until(() => seen.get('hearth/bridge/state') === 'online', {
      what: 'hearth online',
    });
    // A clean stop says offline too.
    await h.close();
    await until(() => seen.get('hearth/bridge/state') === 'offline', {
      what: 'hearth offline',
    });
    await client.endAsync();
    expect(seen.get('hearth/bridge/state')).toBe('offline');
  });
});
