import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBus } from '../src/core/bus.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { Metrics } from '../src/metrics/metrics.js';
import { hearthVersion } from '../src/version.js';
import { http, post, startTestHearth, type TestHearth } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { metricSample } from './support/raw-http.js';
import { until } from './support/wait.js';

/*
 * /metrics for Grafana: build info, entity states as gauges (on/off, sensors by unit),
 * availability, automation runs by outcome; and contrib/grafana/hearth.json names only
 * metrics a real hearth exposes.
 */

const scrape = async (h: TestHearth) => (await http(`${h.url}/metrics`)).body;

/** The sample lines of `name` (any labels). */
const lines = (text: string, name: string) =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe.skipIf(mosquittoMissing)('/metrics for Grafana, through a real hearth', () => {
  let broker: TestMosquitto;
  let device: MqttClient;
  let lamp: WemoSimulator;
  let broken: WemoSimulator;
  let h: TestHearth;

  beforeAll(async () => {
    broker = await TestMosquitto.start();
    device = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const readings: Array<[string, string]> = [
      ['home/temp', '21.5'],
      ['home/temp-f', '212'],
      ['home/hum', '48'],
      ['home/power', '1.5'],
      ['home/energy', '123.4'],
      ['home/pressure', '1013'],
      ['home/link', '77'],
    ];
    for (const [topic, value] of readings) await device.publishAsync(topic, value, { retain: true });
    lamp = await startWemoSimulator({ initial: true });
    broken = await startWemoSimulator({ initial: false });
    broken.mode = 'error';
    h = await startTestHearth(`mqtt: { url: "${broker.url}" }
things:
  - { id: temp, kind: mqtt-sensor/v1, topic: home/temp, unit: "°C" }
  - { id: temp-f, kind: mqtt-sensor/v1, topic: home/temp-f, unit: "°F" }
  - { id: hum, kind: mqtt-sensor/v1, topic: home/hum, unit: "%" }
  - { id: power, kind: mqtt-sensor/v1, topic: home/power, unit: kW }
  - { id: energy, kind: mqtt-sensor/v1, topic: home/energy, unit: kWh }
  - { id: pressure, kind: mqtt-sensor/v1, topic: home/pressure, unit: hPa }
  - { id: link, kind: mqtt-sensor/v1, topic: home/link, unit: lqi }
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
  - { id: broken, kind: wemo/v1, address: 127.0.0.1, port: ${broken.port}, pollSeconds: 0 }
buttons:
  - { id: bedside }
  - { id: away }
automations:
  - id: fine
    actions: [{ command: bedside.on }]
  - id: doomed
    actions: [{ command: broken.on }]
  - id: picky
    conditions: [{ state: away, is: "on" }]
    actions: [{ command: bedside.off }]
`);
    await post(`${h.url}/api/v0/buttons/away/off/`);
  });

  afterAll(async () => {
    await h?.close();
    await device?.endAsync();
    await broker?.stop();
    await lamp?.close();
    await broken?.close();
  });

  it('says which hearth and Node.js it is', async () => {
    expect(lines(await scrape(h), 'hearth_build_info')).toEqual([
      `hearth_build_info{version="${hearthVersion}",revision="source",node="${process.versions.node}"} 1`,
    ]);
  });

  it('shows on/off entities as 0/1 and sensors in metrics named by their unit', async () => {
    let last = '';
    await until(
      async () => {
        last = await scrape(h);
        return metricSample(last, 'hearth_sensor_value', { entity: 'link' }) === 77;
      },
      {
        what: () =>
          `hearth_sensor_value{entity="link"} 77; it had:\n${lines(last, 'hearth_sensor_value').join('\n')}`,
      },
    );
    await until(
      async () => {
        last = await scrape(h);
        return metricSample(last, 'hearth_sensor_hectopascals', { entity: 'pressure' }) === 1013;
      },
      {
        what: () =>
          `hearth_sensor_hectopascals{entity="pressure"} 1013; it had:\n${last
            .split('\n')
            .filter((l) => l.startsWith('hearth_sensor'))
            .join('\n')}`,
      },
    );
    const m = await scrape(h);
    expect(lines(m, 'hearth_sensor_celsius').sort()).toEqual([
      'hearth_sensor_celsius{entity="temp"} 21.5',
      'hearth_sensor_celsius{entity="temp-f"} 100',
    ]);
    expect(lines(m, 'hearth_sensor_percent')).toEqual(['hearth_sensor_percent{entity="hum"} 48']);
    expect(lines(m, 'hearth_sensor_watts')).toEqual(['hearth_sensor_watts{entity="power"} 1500']);
    expect(lines(m, 'hearth_sensor_kilowatt_hours')).toEqual([
      'hearth_sensor_kilowatt_hours{entity="energy"} 123.4',
    ]);
    expect(lines(m, 'hearth_sensor_value')).toEqual(['hearth_sensor_value{entity="link",unit="lqi"} 77']);
    expect(m).toContain('# TYPE hearth_sensor_celsius gauge');

    expect(lines(m, 'hearth_entity_on')).toContain('hearth_entity_on{entity="away",kind="button"} 0');
    // A button never pressed has no state yet: no series, rather than a false 0.
    expect(lines(m, 'hearth_entity_on').some((l) => l.includes('entity="bedside"'))).toBe(false);
    expect(metricSample(m, 'hearth_entity_available', { entity: 'lamp' })).toBe(1);
    expect(metricSample(m, 'hearth_entity_available', { entity: 'broken' })).toBe(1);
    expect((await post(`${h.url}/api/v1/entities/broken/commands/on`)).status).toBe(502);
    expect(metricSample(await scrape(h), 'hearth_entity_available', { entity: 'broken' })).toBe(0);

    expect((await post(`${h.url}/api/v1/entities/lamp/commands/on`)).status).toBe(200);
    await post(`${h.url}/api/v0/buttons/bedside/on/`);
    const on = await scrape(h);
    expect(metricSample(on, 'hearth_entity_on', { entity: 'lamp', kind: 'switch' })).toBe(1);
    expect(metricSample(on, 'hearth_entity_on', { entity: 'bedside', kind: 'button' })).toBe(1);
    expect((await post(`${h.url}/api/v1/entities/lamp/commands/off`)).status).toBe(200);
    expect(lines(await scrape(h), 'hearth_entity_on')).toContain(
      'hearth_entity_on{entity="lamp",kind="switch"} 0',
    );
  });

  it('counts automation runs by outcome', async () => {
    const runs = (m: string, automation: string, outcome: string) =>
      metricSample(m, 'hearth_automation_runs_total', { automation, outcome });
    for (const id of ['fine', 'fine', 'doomed', 'picky']) {
      expect((await post(`${h.url}/api/v1/automations/${id}/run`)).status).toBeLessThan(300);
    }
    let last = '';
    await until(
      async () => {
        last = await scrape(h);
        return runs(last, 'fine', 'ok') === 2 && runs(last, 'doomed', 'failed') === 1;
      },
      { what: () => `the runs counted; it had:\n${lines(last, 'hearth_automation_runs_total').join('\n')}` },
    );
    const m = await scrape(h);
    expect(runs(m, 'picky', 'skipped')).toBe(1);
    expect(lines(m, 'hearth_automation_runs_total')).toHaveLength(3);
  });

  it('contrib/grafana/hearth.json parses, has unique ids, and names only metrics hearth exposes', async () => {
    const dash = JSON.parse(readFileSync(new URL('../contrib/grafana/hearth.json', import.meta.url), 'utf8'));
    expect(dash.uid).toMatch(/^[\w-]{1,40}$/);
    const vars = dash.templating.list as Array<{ name: string; type: string; query: unknown }>;
    expect(vars.find((v) => v.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    const panels = dash.panels as Array<{
      id: number;
      type: string;
      title: string;
      datasource?: { uid: string };
      targets?: Array<{ expr: string; refId: string }>;
    }>;
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);

    // The names a hearth declares: one box with MQTT (this one), and a cluster role's lease
    // gauge, which only processes with leases have (a Metrics with one, as roles.ts builds it).
    const exposed = new Map<string, string>();
    const declare = (text: string) => {
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) exposed.set(m[1] as string, m[2] as string);
    };
    declare(await scrape(h));
    const role = new Metrics({ list: () => [], ready: true, events: new LocalBus() }, () => [
      { lease: 'controller', leading: true },
    ]);
    declare(await role.registry.metrics());
    const known = (name: string) => {
      if (exposed.has(name)) return true;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return base !== name && ['histogram', 'summary'].includes(exposed.get(base) ?? '');
    };

    const named = new Set<string>();
    for (const p of panels) {
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe(`\${datasource}`);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets ?? []) {
        const names = [...t.expr.matchAll(/\b(?:hearth|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(known(n), `${p.title}: ${n} is not on /metrics`).toBe(true);
          named.add(n.replace(/_bucket$/, ''));
        }
      }
    }
    // And the dashboard covers what the issue asks for.
    for (const n of [
      'hearth_entity_on',
      'hearth_sensor_celsius',
      'hearth_entity_available',
      'hearth_automation_runs_total',
      'hearth_device_call_duration_seconds',
      'hearth_device_call_errors_total',
      'hearth_mqtt_connected',
      'hearth_mqtt_garbage_total',
      'hearth_leader',
      'hearth_sse_streams',
      'hearth_build_info',
    ]) {
      expect(named.has(n), n).toBe(true);
    }
  });
});
