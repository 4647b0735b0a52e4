import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { metricSample } from './support/raw-http.js';
import { until, untilOutput } from './support/wait.js';

/*
 * Scheduled backups (`backup: { every, keep }`) in the built CLI: `hearth start` runs `hearth
 * backup` on schedule, keeps `keep` archives, and says how backups stand in /metrics, in
 * GET /api/v1/backups (the dashboard's line) and in its log when they are late.
 */

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(backup: string): Promise<{ h: HearthProcess; dir: string }> {
  const dir = tempDir('hearth-backup-schedule-');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hearth.yaml');
  writeFileSync(
    config,
    `http: { host: 127.0.0.1, port: 0 }
storage: { sqlite: data/hearth.db }
buttons: [{ id: doorbell }]
backup: ${backup}
`,
  );
  const h = await spawnHearth(config, { HEARTH_LOG_LEVEL: 'info' });
  cleanups.push(async () => {
    h.child.kill('SIGTERM');
    await h.exited;
  });
  return { h, dir };
}

const archives = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.tar.gz'))
    .sort();

const backups = async (url: string) =>
  ((await (await fetch(`${url}/api/v1/backups`)).json()) as { backups: Record<string, unknown> }).backups;

describe('scheduled backups in the built CLI', () => {
  it('runs on schedule, keeps `keep` archives that verify, and reports the newest in /metrics and the API', async () => {
    const { h, dir } = await start('{ dir: archives, every: "*/2 * * * * *", keep: 2 }');
    const out = join(dir, 'archives');
    // Three backups written: the first is deleted again (keep: 2).
    await until(() => (h.output().match(/backup written and verified/g) ?? []).length >= 3, {
      timeoutMs: 20_000,
      what: 'three backups',
    });
    const kept = archives(out);
    expect(kept).toHaveLength(2);
    expect(readdirSync(out).filter((n) => n.endsWith('.partial'))).toEqual([]);
    for (const name of kept) {
      const v = await runCli(['backup', 'verify', join(out, name)]);
      expect([name, v.code, v.stderr]).toEqual([name, 0, '']);
    }
    const status = await until(
      async () => {
        const b = await backups(h.url);
        return (b.newest as { name: string } | null)?.name === archives(out).at(-1) ? b : undefined;
      },
      { what: 'the API to show the newest' },
    );
    const newest = status.newest as { name: string; at: string; bytes: number };
    expect(newest.bytes).toBe(statSync(join(out, newest.name)).size);
    expect(Date.now() - Date.parse(newest.at)).toBeLessThan(10_000);
    expect(status).toMatchObject({ every: '*/2 * * * * *', stale: false, lastError: null });
    expect(typeof status.nextAt).toBe('string');
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    const at = metricSample(metrics, 'hearth_backup_last_success_timestamp_seconds');
    expect(Math.abs((at ?? 0) * 1000 - Date.now())).toBeLessThan(10_000);
    expect(metricSample(metrics, 'hearth_backup_last_size_bytes')).toBeGreaterThan(0);
    expect(metricSample(metrics, 'hearth_backup_stale')).toBe(0);
    // Never more than `keep` in the folder, whatever the number of runs.
    expect(archives(out).length).toBeLessThanOrEqual(2);
  });

  it('a backup that fails is logged and shown; backups older than twice the schedule are late', async () => {
    // The folder is a file: every backup fails.
    const { h, dir } = await start('{ dir: archives, every: "*/2 * * * * *" }');
    writeFileSync(join(dir, 'archives'), 'not a folder');
    const status = await until(
      async () => {
        const b = await backups(h.url);
        return b.stale === true && b.lastError !== null ? b : undefined;
      },
      { timeoutMs: 20_000, what: 'a late, failed backup' },
    );
    expect(status.newest).toBeNull();
    expect((status.lastError as { message: string }).message).toMatch(/archives/);
    expect(h.output()).toMatch(/scheduled backup failed/);
    // Said in the log at the next check (each run, and every minute).
    await untilOutput(h.output, /backups are late/, { timeoutMs: 20_000, failOn: h.exited });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metricSample(metrics, 'hearth_backup_stale')).toBe(1);
    expect(metrics).not.toMatch(/^hearth_backup_last_success_timestamp_seconds /m);
  });

  it('without a schedule, shows the newest archive made by hand', async () => {
    const { h, dir } = await start('{ dir: archives }');
    const made = await runCli(['backup', '--config', join(dir, 'hearth.yaml'), '--json']);
    expect([made.code, made.stderr]).toEqual([0, '']);
    const { archive } = JSON.parse(made.stdout) as { archive: string };
    expect(archive).toBe(join(dir, 'archives', archives(join(dir, 'archives'))[0] ?? ''));
    const status = await backups(h.url);
    expect(status).toMatchObject({
      every: null,
      nextAt: null,
      stale: false,
      lastError: null,
      running: false,
    });
    expect(status.newest).toMatchObject({
      name: archive.slice(archive.lastIndexOf('/') + 1),
      bytes: statSync(archive).size,
    });
  });
});
