import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityView } from '../src/core/runtime-api.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { ZigbeeSimulator } from '../src/drivers/zigbee2mqtt/simulator.js';
import {
  brokerUrlAs,
  call,
  leaderGauge,
  type RoleProcess,
  startLockedBroker,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { tempDir } from './support/hearth.js';
import { mosquittoMissing, type TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';
import { until } from './support/wait.js';

/*
 * zigbee2mqtt in a cluster: an agent follows the bridge, an api replica lists and commands its
 * entities, the controller's automation hears a remote. Real processes of the built CLI, a
 * PostgreSQL database of this file's own, a Mosquitto this file starts, the zigbee2mqtt and
 * Wemo simulators.
 */
describe.skipIf(mosquittoMissing ?? postgresMissing)('zigbee2mqtt devices in a cluster', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let z2m: ZigbeeSimulator;
  let lamp: WemoSimulator;
  let dir: string;
  let api: RoleProcess;
  const procs: RoleProcess[] = [];

  const entities = async (): Promise<EntityView[]> =>
    JSON.parse((await call(`${api.url}/api/v1/entities`)).body).entities;
  const entity = async (id: string) => (await entities()).find((e) => e.id === id);

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker({
      agents: ['main', 'zigbee'],
      deviceTopics: { zigbee: ['zigbee2mqtt/#'] },
      clients: ['zigbee2mqtt'],
    });
    lamp = await startWemoSimulator({ initial: false });
    z2m = await ZigbeeSimulator.start({ mqttUrl: brokerUrlAs(broker, 'zigbee2mqtt') });
    dir = tempDir();
    const config = writeClusterConfig(dir, {
      pgUrl: db.url,
      mqttUrl: broker.url,
      body: `
zigbee2mqtt: { baseTopic: zigbee2mqtt, agent: zigbee, timeoutMs: 2000 }
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
automations:
  - id: remote-lamp
    triggers: [{ state: hall-remote, to: single }]
    actions: [{ command: lamp.toggle }]
`,
    });
    const started = await Promise.all([
      startRole(config, 'agent'),
      startRole(config, 'agent', ['--agent', 'zigbee']),
      startRole(config, 'controller'),
      startRole(config, 'api'),
    ]);
    procs.push(...started);
    api = started[3] as RoleProcess;
    // Ready is not leading: a press before the controller runs its automations is not heard
    // (nobody leads yet). Leading, it hears every state change from then on.
    const controller = started[2] as RoleProcess;
    await until(async () => (await leaderGauge(controller.url, 'controller')) === 1, {
      timeoutMs: 20_000,
      what: 'the controller to lead',
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await z2m?.close().catch(() => {});
    await lamp?.close();
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('the api replica lists the zigbee entities its agent found, and a command reaches the device', async () => {
    await until(async () => (await entity('kitchen-plug'))?.state === 'off', {
      timeoutMs: 10_000,
      what: 'the plug, read',
    });
    expect((await entities()).filter((e) => e.driver === 'zigbee2mqtt')).toHaveLength(15);
    const r = await call(`${api.url}/api/v0/switches/kitchen-plug/on/`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(z2m.state('Kitchen Plug')).toMatchObject({ state: 'ON' });
  });

  it("the controller's automation hears the remote and toggles the Wemo plug on another agent", async () => {
    const finished = async () =>
      JSON.parse((await call(`${api.url}/api/v1/automations/remote-lamp/runs`)).body).runs.filter(
        (r: { endedAt: number | null }) => r.endedAt !== null,
      ).length;
    await z2m.press('Hall Remote');
    await until(() => lamp.on, { what: 'the lamp on' });
    // The automation runs one at a time (mode single): the next press once this run has ended.
    await until(async () => (await finished()) === 1, { what: 'the first run recorded' });
    await z2m.press('Hall Remote');
    await until(() => !lamp.on, { what: 'the lamp off again' });
  });

  it('a rename and a removal reach the api replica; bridge offline makes them unavailable there', async () => {
    await z2m.rename('Front Door', 'Back Door');
    await until(async () => (await entity('back-door')) !== undefined, {
      what: 'back-door listed',
    });
    expect(await entity('front-door')).toBeUndefined();
    await z2m.remove('Desk Lamp');
    await until(async () => (await entity('desk-lamp')) === undefined, {
      what: 'desk-lamp gone',
    });
    await z2m.setBridge('offline');
    await until(async () => (await entity('kitchen-plug'))?.available === false, {
      what: 'unavailable',
    });
    expect(await entity('lamp')).toMatchObject({ available: true });
    await z2m.setBridge('online');
    await until(async () => (await entity('kitchen-plug'))?.available === true, {
      what: 'available again',
    });
  });
});
