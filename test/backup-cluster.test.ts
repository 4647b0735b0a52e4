import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import {
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
import { metricSample } from './support/raw-http.js';
import { until } from './support/wait.js';

/*
 * Scheduled backups in a cluster: real processes of the built CLI (an api, two controllers), a
 * PostgreSQL database of this file's own, a Mosquitto this file starts. Only the leading
 * controller makes backups; the api's dashboard line shows what it said; when the leader is
 * killed, the next one goes on.
 */
describe.skipIf(mosquittoMissing ?? postgresMissing)('scheduled backups in a cluster', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let dir: string;
  let config: string;
  let api: RoleProcess;
  let controllers: RoleProcess[];
  const procs: RoleProcess[] = [];
  const start = (role: 'api' | 'controller') =>
    startRole(config, role, [], { HEARTH_LOG_LEVEL: 'info' }).then((p) => {
      procs.push(p);
      return p;
    });
  const archives = () => {
    try {
      return readdirSync(join(dir, 'archives')).filter((n) => n.endsWith('.tar.gz'));
    } catch {
      return [];
    }
  };
  const written = (p: RoleProcess) => (p.output().match(/backup written and verified/g) ?? []).length;

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker({ agents: [] });
    dir = tempDir();
    config = writeClusterConfig(dir, {
      pgUrl: db.url,
      mqttUrl: broker.url,
      body: `
buttons: [{ id: bedside }]
backup: { dir: archives, every: "*/2 * * * * *", keep: 20 }
`,
    });
    api = await start('api');
    controllers = await Promise.all([start('controller'), start('controller')]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('the leading controller alone makes them, and the api shows the newest', async () => {
    expect((await call(`${api.url}/api/v0/buttons/bedside/on`, { method: 'POST' })).status).toBe(200);
    await until(() => archives().length >= 2, { timeoutMs: 30_000, what: 'two archives' });
    const gauges = await Promise.all(controllers.map((c) => leaderGauge(c.url, 'controller')));
    const leader = controllers[gauges.indexOf(1)];
    const standby = controllers[gauges.indexOf(0)];
    if (!leader || !standby) throw new Error(`no leader and standby: ${gauges.join(', ')}`);
    expect(written(leader)).toBeGreaterThanOrEqual(1);
    expect(written(standby)).toBe(0);
    const leaderMetrics = (await call(`${leader.url}/metrics`)).body;
    expect(metricSample(leaderMetrics, 'hearth_backup_last_size_bytes')).toBeGreaterThan(0);
    expect((await call(`${standby.url}/metrics`)).body).not.toMatch(/^hearth_backup_last_size_bytes /m);
    // The api serves what the leader said on <base>/cluster/backup.
    let said = '';
    await until(
      async () => {
        said = (await call(`${api.url}/api/v1/backups`)).body;
        const { backups } = JSON.parse(said) as {
          backups: { newest: { name: string } | null; every: string } | null;
        };
        return backups?.every === '*/2 * * * * *' && archives().includes(backups.newest?.name ?? '');
      },
      { timeoutMs: 30_000, what: 'the api to show the newest archive' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the api said ${said}; archives: ${archives().join(', ')}`);
    });
    // An archive of PostgreSQL verifies, and holds the button.
    const newest = archives().sort().at(-1) ?? '';
    const v = await runCli(['backup', 'verify', join(dir, 'archives', newest)]);
    expect([v.code, v.stderr]).toEqual([0, '']);

    // The leader dies: the standby leads and goes on making backups.
    await leader.kill9();
    const before = archives().length;
    await until(() => written(standby) >= 1 && archives().length > before, {
      timeoutMs: 30_000,
      what: 'a backup by the new leader',
    });
    expect(await leaderGauge(standby.url, 'controller')).toBe(1);
  }, 90_000);
});
