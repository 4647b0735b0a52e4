import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CoffeeSimulator, startCoffeeSimulator } from '../src/drivers/mrcoffeebot/simulator.js';
import { type SonosSimulator, startSonosSimulator } from '../src/drivers/sonos/simulator.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import {
  call,
  type RoleProcess,
  startLockedBroker,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { tempDir } from './support/hearth.js';
import { mosquittoMissing, type TestMosquitto } from './support/mosquitto.js';
import {
  createTestDatabase,
  postgresMissing,
  type TestDatabase,
  terminateBackends,
} from './support/postgres.js';
import { until } from './support/wait.js';

/*
 * What a cluster does when a part of it dies: an api replica, the broker, the database's
 * connections, a serial agent's lease. Real processes of the built CLI, a PostgreSQL database
 * and a Mosquitto of this file's own, a Wemo plug and a coffee pot (over a pty) simulated here.
 */
const LEASE_S = 2;

describe.skipIf(mosquittoMissing ?? postgresMissing)('a cluster when parts of it fail', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let plug: WemoSimulator;
  let pot: CoffeeSimulator;
  let speaker: SonosSimulator;
  let dir: string;
  const procs: RoleProcess[] = [];
  let apis: [RoleProcess, RoleProcess];

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker({ agents: ['main', 'kitchen'] });
    plug = await startWemoSimulator();
    dir = tempDir();
    pot = await startCoffeeSimulator({ path: join(dir, 'ttyCOFFEE') });
    speaker = await startSonosSimulator({ clipMs: 200 });
    mkdirSync(join(dir, 'media'));
    writeFileSync(
      join(dir, 'media', 'ding.mp3'),
      Buffer.concat([Buffer.from('ID3'), Buffer.alloc(4000, 0xff)]),
    );
    const config = writeClusterConfig(dir, {
      pgUrl: db.url,
      mqttUrl: broker.url,
      leaseSeconds: LEASE_S,
      body: `
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${plug.port}, timeoutMs: 1000, pollSeconds: 0 }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, path: ${pot.path}, settleMs: 100, agent: kitchen }
speakers:
  - { id: hall, kind: sonos/v1, address: 127.0.0.1, port: ${speaker.port}, pollSeconds: 0 }
media: { dir: media }
buttonLimits: { maxUndeclared: 10000 }
`,
    });
    const start = (role: 'api' | 'controller' | 'agent', extra: string[] = []) =>
      startRole(config, role, extra).then((p) => {
        procs.push(p);
        return p;
      });
    await Promise.all([start('agent'), start('agent', ['--agent', 'kitchen']), start('controller')]);
    apis = (await Promise.all([start('api'), start('api')])) as [RoleProcess, RoleProcess];
    for (const id of ['lamp', 'coffee']) {
      let last: unknown;
      await until(
        async () => {
          last = JSON.parse((await call(`${apis[1].url}/api/v1/entities/${id}`)).body).entity;
          return (last as { available?: boolean } | undefined)?.available === true;
        },
        { timeoutMs: 15_000, what: () => `${id} to be available (it is ${JSON.stringify(last)})` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${outputs()}`);
      });
    }
  }, 90_000);

  /** What each process said (warnings and up): a failure here is usually a process's story. */
  const outputs = () =>
    procs
      .map(
        (p) =>
          `--- ${p.role} (pid ${p.child.pid}, exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}):\n${p.output().trim().slice(-4000)}`,
      )
      .join('\n');

  // A failure here is usually a process's story: print what each one said (warnings and up).
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(outputs());
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await pot?.close();
    await speaker?.close();
    await plug?.close();
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /**
   * Presses new button ids on `url` from four workers until `fault` settles; answers the ids
   * acknowledged. `fault` gets the live list, so it can strike once presses are flowing, however
   * slow the machine is, rather than after a fixed time.
   */
  async function pressStream(
    url: string,
    prefix: string,
    fault: (acked: readonly string[]) => Promise<unknown>,
  ): Promise<string[]> {
    const acked: string[] = [];
    let done = false;
    const faulted = fault(acked).finally(() => {
      done = true;
    });
    let n = 0;
    const worker = async () => {
      while (!done) {
        const id = `${prefix}${n++}`;
        try {
          const r = await call(`${url}/api/v0/buttons/${id}/on/`, { method: 'POST' });
          if (r.status === 200 && r.body === 'OK') acked.push(id);
        } catch {
          // The process died under the request: not acknowledged.
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker(), faulted]);
    return acked;
  }

  /** Resolves once `count` more presses than now are acknowledged (a loaded box is slow, not broken). */
  const moreAcked = (acked: readonly string[], count: number, what: string) => {
    const target = acked.length + count;
    return until(() => acked.length >= target, {
      timeoutMs: 15_000,
      what: `${count} presses acknowledged ${what}`,
    });
  };

  it('a chime asked of an api replica plays on the speaker, fetched from the agent that runs it', async () => {
    const r = await call(`${apis[1].url}/api/v1/entities/hall/commands/play`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ media: 'ding.mp3' }),
    });
    expect(r.status).toBe(200);
    expect([200, 206]).toContain(speaker.chimes.at(-1)?.fetched?.status);
  });

  it('kill -9 of an api while presses stream in: every acknowledged press reads back from the other', async () => {
    const [a, b] = apis;
    // Killed mid-stream: four presses are always in flight, and enough went through before.
    const acked = await pressStream(a.url, 'k', async (acked) => {
      await moreAcked(acked, 20, 'before the kill');
      await a.kill9();
    });
    expect(acked.length).toBeGreaterThanOrEqual(20);
    for (const id of acked)
      expect(await call(`${b.url}/api/v0/buttons/${id}/`)).toEqual({ status: 200, body: 'ON\n' });
  });

  it('PostgreSQL connections cut mid-stream: nothing acknowledged is lost', async () => {
    const b = apis[1];
    // Three cuts, each once presses are flowing again after the one before; then presses must
    // go through again (the api recovers by itself).
    const acked = await pressStream(b.url, 't', async (acked) => {
      for (let i = 0; i < 3; i++) {
        await moreAcked(acked, 5, `before cut ${i + 1}`);
        expect(await terminateBackends(db.name)).toBeGreaterThan(0);
      }
      await moreAcked(acked, 5, 'after the last cut');
    });
    expect(acked.length).toBeGreaterThanOrEqual(20);
    for (const id of acked)
      expect(await call(`${b.url}/api/v0/buttons/${id}/`)).toEqual({ status: 200, body: 'ON\n' });
    // Still working afterwards.
    expect((await call(`${b.url}/api/v0/buttons/after-cut/on/`, { method: 'POST' })).status).toBe(200);
  });

  it('the broker killed and restarted: entities unavailable meanwhile, commands fail fast, then all comes back; nothing runs twice', async () => {
    const b = apis[1];
    const sets = () => plug.calls.filter((c) => c.action === 'SetBinaryState').length;
    // The cluster is whole again after the test before (its database cut): a toggle goes through.
    await until(
      async () =>
        (await call(`${b.url}/api/v1/entities/lamp/commands/toggle`, { method: 'POST' })).status === 200,
      { timeoutMs: 10_000, what: 'a toggle through api b before the broker is killed' },
    );
    const before = sets();
    await broker.kill();
    await until(
      async () => JSON.parse((await call(`${b.url}/api/v1/entities/lamp`)).body).entity.available === false,
      { what: 'the lamp to be unavailable while the broker is down' },
    );
    const t0 = Date.now();
    const r = await call(`${b.url}/api/v1/entities/lamp/commands/toggle`, { method: 'POST' });
    expect(r.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(500);
    await broker.restart();
    await until(
      async () => JSON.parse((await call(`${b.url}/api/v1/entities/lamp`)).body).entity.available === true,
      { timeoutMs: 20_000, what: 'the lamp to be available again' },
    );
    let acked = 0;
    await until(
      async () => {
        const t = await call(`${b.url}/api/v1/entities/lamp/commands/toggle`, { method: 'POST' });
        if (t.status === 200) acked++;
        return t.status === 200;
      },
      { timeoutMs: 15_000, what: 'a command to work again' },
    );
    // A marker: one more command, answered once the plug has done it. Anything sent while the
    // broker was down and replayed on the reconnect went out before it, on the same connection.
    expect((await call(`${b.url}/api/v1/entities/lamp/commands/toggle`, { method: 'POST' })).status).toBe(
      200,
    );
    expect(sets() - before).toBe(acked + 1);
  });

  it('a serial agent that loses its lease mid-brew turns the heater off at once', async () => {
    const b = apis[1];
    let last = { status: 0, body: '' };
    await until(
      async () => {
        last = await call(`${b.url}/api/v1/entities/coffee/commands/brew`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ minutes: 1 }),
        });
        return last.status === 200;
      },
      { timeoutMs: 10_000, what: 'a brew to start' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last answer ${last.status} ${last.body}`);
    });
    await pot.waitForHeater(true, 3000);
    // Another holder takes the lease (as a standby would after a partition): the agent must
    // notice at its next renewal and stop the device itself, before the firmware's dead-man.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const stolenAt = performance.now();
    await client.query(
      "UPDATE lease SET holder = 'thief', token = token + 1, expires_at = now() + interval '1 hour' WHERE name = 'agent:kitchen'",
    );
    await client.end();
    const off = await pot.waitForHeater(false, 5000);
    expect(off.cause).toBe('B+0');
    // The next renewal comes within a third of the lease.
    expect(off.t - stolenAt).toBeLessThan((LEASE_S * 1000) / 3 + 500);
  });
});
