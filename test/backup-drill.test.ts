/**
 * The disaster drill, with real processes (the built CLI): a box runs hearth; buttons are
 * pressed, an automation runs, a chime is added; `hearth backup` runs while presses keep coming;
 * the box dies (kill -9) and its data folder is wiped; `hearth restore` brings the archive into
 * a new folder, `hearth start` runs it, and everything a user sees through the API is the same.
 * Then the same archive into PostgreSQL (`--storage postgres`): how one box becomes a cluster.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { http, post, tempDir } from './support/hearth.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { until } from './support/wait.js';

const CHIME = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 13) % 256));

const CONFIG = `# the box
http: { host: 127.0.0.1, port: 0 }
storage: { sqlite: data/hearth.db }
media: { dir: data/media }
history: { flush: 1s }
buttonLimits: { maxUndeclared: 10000 } # two press loops of at most 4000 each
buttons:
  - { id: bedside, name: Bedside button }
  - { id: porch, name: Porch light button }
automations:
  - id: evening
    triggers: [{ webhook: true }]
    actions: [{ command: porch.on }]
`;

/** The rows of one table in an archive. */
async function archiveRows(archive: string, table: string): Promise<Record<string, unknown>[]> {
  const extract = tar.extract();
  let text = '';
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const c of entry) parts.push(c as Buffer);
      if (entry.header.name === `store/${table}.ndjson`) text = Buffer.concat(parts).toString('utf8');
    }
  })();
  extract.end(gunzipSync(readFileSync(archive)));
  await done;
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

const json = async (url: string) => {
  const r = await http(url);
  expect(r.status, `${url}: ${r.body}`).toBe(200);
  return JSON.parse(r.body);
};

/** Everything a user sees through the API, for ids that `keep` allows. */
async function view(base: string, from: number, to: number, keep: (id: string) => boolean) {
  // By id: a running hearth lists buttons in the order they were first pressed, a started one
  // in the store's order; that is not something a backup keeps.
  const entities = (await json(`${base}/api/v1/entities`)).entities
    .filter((e: { id: string }) => keep(e.id))
    .sort((x: { id: string }, y: { id: string }) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const runs = (await json(`${base}/api/v1/automations/evening/runs`)).runs;
  const automations = (await json(`${base}/api/v1/automations`)).automations;
  const media = (await json(`${base}/api/v1/media`)).files;
  const chimes: Record<string, string> = {};
  for (const file of media) {
    const r = await fetch(`${base}/api/v0/chime/${encodeURIComponent(file)}`);
    chimes[file] = createHash('sha256')
      .update(Buffer.from(await r.arrayBuffer()))
      .digest('hex');
  }
  const history: Record<string, unknown> = {};
  for (const id of ['bedside', 'porch', 'kitchen']) {
    history[id] = await json(`${base}/api/v1/entities/${id}/history?from=${from}&to=${to}`);
  }
  return { entities, runs, automations, media, chimes, history };
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN;
}

/** Presses new buttons one after another until stopped; each press's id, ack time and latency. */
function pressLoop(base: string, prefix: string) {
  const acked: Array<{ id: string; at: number; ms: number }> = [];
  let stop = false;
  let failures = 0;
  const done = (async () => {
    for (let i = 0; !stop && i < 4000; i++) {
      const id = `${prefix}-${i}`;
      const t0 = performance.now();
      const r = await post(`${base}/api/v0/buttons/${id}/on/`);
      const ms = performance.now() - t0;
      if (r.status === 200) acked.push({ id, at: Date.now(), ms });
      else failures++;
    }
  })();
  return {
    acked,
    failures: () => failures,
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe('the disaster drill', () => {
  const root = tempDir('hearth-drill-');
  const box = join(root, 'box');
  const config = join(box, 'hearth.yaml');
  let db: TestDatabase | undefined;
  const running: HearthProcess[] = [];
  afterAll(async () => {
    for (const p of running) p.child.kill('SIGKILL');
    await db?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it.skipIf(postgresMissing)(
    'a restore into a database that cannot be opened changes nothing and never prints the password',
    async () => {
      const small = join(root, 'small');
      mkdirSync(small, { recursive: true });
      writeFileSync(join(small, 'hearth.yaml'), 'http: { port: 0 }\nstorage: { sqlite: data/hearth.db }\n');
      const made = await runCli(['backup', '--config', join(small, 'hearth.yaml'), '--json']);
      expect(made.code, made.stderr).toBe(0);
      const archive = JSON.parse(made.stdout).archive;
      const password = 'missing-db-pw-never-printed';
      const url = `postgres://postgres:${password}@127.0.0.1:5432/hearth_no_such_database`;
      const target = join(root, 'no-db');
      const r = await runCli(['restore', archive, '--config-dir', target, '--storage', 'postgres'], {
        env: { HEARTH_PG_URL: url },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^hearth restore: cannot open the store postgres 127\.0\.0\.1:5432\/hearth_no_such_database: /,
      );
      expect(r.stdout + r.stderr).not.toContain(password);
      expect(existsSync(target)).toBe(false);
    },
  );

  it.skipIf(postgresMissing)(
    'a box dies; restore and start bring back the same entities, runs, history and media, into SQLite, into PostgreSQL and back',
    async () => {
      mkdirSync(box, { recursive: true });
      writeFileSync(config, CONFIG);
      const from = Date.now() - 1000;
      const a = await spawnHearth(config);
      running.push(a);

      // State a user made: presses, an automation run, a chime.
      for (const [id, state] of [
        ['bedside', 'on'],
        ['kitchen', 'on'],
        ['bedside', 'off'],
        ['kitchen', 'off'],
        ['kitchen', 'on'],
      ] as const) {
        expect((await post(`${a.url}/api/v0/buttons/${id}/${state}/`)).status).toBe(200);
      }
      const run = await post(`${a.url}/api/v1/automations/evening/run`);
      expect(run.status, run.body).toBe(202);
      await until(
        async () => (await json(`${a.url}/api/v1/automations/evening/runs`)).runs[0]?.outcome === 'ok',
        {
          what: 'the evening run to end ok',
        },
      );
      const chime = join(root, 'doorbell.mp3');
      writeFileSync(chime, CHIME);
      const added = await runCli(['media', 'add', chime, '--config', config]);
      expect(added.code, added.stderr).toBe(0);
      // History is written every second (flush: 1s) and read from the store: once the history
      // API has every change above, what the query below covers is on disk.
      const points = async (id: string) =>
        (await json(`${a.url}/api/v1/entities/${id}/history?from=${from}&to=${Date.now()}`)).points.length;
      await until(
        async () =>
          (await points('kitchen')) >= 3 && (await points('bedside')) >= 2 && (await points('porch')) >= 1,
        {
          what: 'the presses and the run in the history',
        },
      );
      const to = Date.now();

      // Presses with no backup running, for the baseline latency.
      const baseline = pressLoop(a.url, 'calm');
      await until(() => baseline.acked.length >= 100, { what: '100 presses for the baseline' });
      await baseline.stop();

      // The backup, while presses keep coming.
      const load = pressLoop(a.url, 'busy');
      await until(() => load.acked.length >= 5, { what: 'presses flowing before the backup' });
      const backupStarted = Date.now();
      const ackedBefore = load.acked.filter((p) => p.at < backupStarted).map((p) => p.id);
      const t0 = performance.now();
      const backup = await runCli(['backup', '--config', config, '--json'], { timeoutMs: 120_000 });
      const backupMs = performance.now() - t0;
      const backupEnded = Date.now();
      await until(() => load.acked.some((p) => p.at > backupEnded), {
        what: 'a press acknowledged after the backup',
      });
      await load.stop();
      expect(backup.code, backup.stderr).toBe(0);
      const result = JSON.parse(backup.stdout);
      expect(backup.stdout.trim().split('\n')).toHaveLength(1);
      expect(Object.keys(result).sort()).toEqual(['archive', 'bytes', 'createdAt', 'mediaFiles', 'rows']);
      expect(result.archive.startsWith(join(box, 'backups'))).toBe(true);
      expect(result.mediaFiles).toBe(1);

      // Every press acknowledged before the backup began is in the archive.
      const stored = new Set((await archiveRows(result.archive, 'entity_state')).map((r) => r.id as string));
      expect(ackedBefore.length).toBeGreaterThan(0);
      expect(ackedBefore.filter((id) => !stored.has(id))).toEqual([]);
      const during = load.acked.filter((p) => p.at >= backupStarted && p.at <= backupEnded);
      expect(load.failures()).toBe(0);

      // What the user saw on the box, then the box dies and its data is gone.
      const inArchive = (id: string) => !id.startsWith('busy-') || stored.has(id);
      const before = await view(a.url, from, to, inArchive);
      expect(before.entities.length).toBeGreaterThan(3);
      expect(before.runs).toHaveLength(1);
      expect(before.media).toEqual(['doorbell.mp3']);
      expect((before.history.kitchen as { points: unknown[] }).points.length).toBeGreaterThanOrEqual(3);
      a.child.kill('SIGKILL');
      await a.exited;
      const archive = join(root, 'hearth-backup.tar.gz');
      writeFileSync(archive, readFileSync(result.archive));
      rmSync(box, { recursive: true, force: true });

      // A new box: restore, start, compare.
      const newBox = join(root, 'new-box');
      const t1 = performance.now();
      const restored = await runCli(['restore', archive, '--config-dir', newBox], { timeoutMs: 120_000 });
      const restoreMs = performance.now() - t1;
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stderr).toBe('');
      const b = await spawnHearth(join(newBox, 'hearth.yaml'));
      running.push(b);
      const after = await view(b.url, from, to, inArchive);
      expect(after).toEqual(before);
      // Every button of the archive is back, the ones pressed during the backup included.
      const back = new Set(
        (await json(`${b.url}/api/v1/entities`)).entities.map((e: { id: string }) => e.id),
      );
      expect([...stored].filter((id) => !back.has(id))).toEqual([]);
      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);

      // Into the restored folder again: refused without --force, nothing changed.
      const listing = readdirSync(newBox).sort();
      const again = await runCli(['restore', archive, '--config-dir', newBox]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/is not empty/);
      expect(readdirSync(newBox).sort()).toEqual(listing);

      // One box to a cluster's store: the SQLite archive into PostgreSQL.
      db = await createTestDatabase();
      const pgBox = join(root, 'pg-box');
      const noUrl = await runCli(['restore', archive, '--config-dir', pgBox, '--storage', 'postgres']);
      expect(noUrl.code).toBe(1);
      expect(noUrl.stderr).toMatch(/HEARTH_PG_URL, which is not set/);
      expect(existsSync(pgBox)).toBe(false);
      // PostgreSQL here trusts every login, so a password in the URL is never checked: it is
      // there to show that no output ever has it.
      const password = 'drill-pw-never-printed';
      const withPassword = new URL(db.url);
      withPassword.password = password;
      const env = { HEARTH_PG_URL: withPassword.toString() };
      const t2 = performance.now();
      const toPg = await runCli(['restore', archive, '--config-dir', pgBox, '--storage', 'postgres'], {
        env,
        timeoutMs: 120_000,
      });
      const restorePgMs = performance.now() - t2;
      expect(toPg.code, toPg.stderr).toBe(0);
      expect(toPg.stdout + toPg.stderr).not.toContain(password);
      expect(toPg.stdout).toMatch(
        /store {4}postgres 127\.0\.0\.1:5432\/hearth_test_\w+ \(\d+ rows, from sqlite\)/,
      );
      const pgConfig = readFileSync(join(pgBox, 'hearth.yaml'), 'utf8');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's ${VAR}
      expect(pgConfig).toContain('storage: { postgres: { url: "${HEARTH_PG_URL}" } }');
      expect(pgConfig.startsWith('# the box\n')).toBe(true);
      // The folder holds the config and the media; the store is in PostgreSQL.
      expect(existsSync(join(pgBox, 'data', 'hearth.db'))).toBe(false);
      const c = await spawnHearth(join(pgBox, 'hearth.yaml'), env);
      running.push(c);
      expect(await view(c.url, from, to, inArchive)).toEqual(before);
      // And it goes on working: a press after the restore is kept.
      expect((await post(`${c.url}/api/v0/buttons/bedside/on/`)).status).toBe(200);

      // Back the other way: a backup of the PostgreSQL store, while that hearth runs, restored
      // into SQLite (--storage sqlite).
      const onPg = await view(c.url, from, to, inArchive);
      const pgBackup = await runCli(['backup', '--config', join(pgBox, 'hearth.yaml'), '--json'], {
        env,
        timeoutMs: 120_000,
      });
      expect(pgBackup.code, pgBackup.stderr).toBe(0);
      expect(pgBackup.stdout + pgBackup.stderr).not.toContain(password);
      const pgArchive = JSON.parse(pgBackup.stdout).archive;
      const verified = await runCli(['backup', 'verify', pgArchive, '--json']);
      expect(JSON.parse(verified.stdout).store.kind).toBe('postgres');
      c.child.kill('SIGTERM');
      expect((await c.exited).code).toBe(0);
      expect(c.output()).not.toContain(password);
      const backToOneBox = join(root, 'one-box-again');
      const toSqlite = await runCli([
        'restore',
        pgArchive,
        '--config-dir',
        backToOneBox,
        '--storage',
        'sqlite',
      ]);
      expect(toSqlite.code, toSqlite.stderr).toBe(0);
      expect(readFileSync(join(backToOneBox, 'hearth.yaml'), 'utf8')).toContain(
        'storage: { sqlite: data/hearth.db }',
      );
      const d = await spawnHearth(join(backToOneBox, 'hearth.yaml'));
      running.push(d);
      expect(await view(d.url, from, to, inArchive)).toEqual(onPg);
      d.child.kill('SIGTERM');
      expect((await d.exited).code).toBe(0);

      const ms = (x: number) => `${Math.round(x)} ms`;
      console.log(
        [
          `drill: archive ${result.bytes} bytes (${Object.values(result.rows as Record<string, number>).reduce((s, n) => s + n, 0)} rows, ${result.mediaFiles} media file)`,
          `backup ${ms(backupMs)} (CLI, start to exit), restore into SQLite ${ms(restoreMs)}, into PostgreSQL ${ms(restorePgMs)}`,
          `presses without a backup: ${baseline.acked.length}, p99 ${ms(p99(baseline.acked.map((p) => p.ms)))}`,
          `presses during the backup: ${during.length}, p99 ${ms(p99(during.map((p) => p.ms)))}; all ${ackedBefore.length} acknowledged before it are in the archive`,
        ].join('\n'),
      );
    },
    240_000,
  );
});
