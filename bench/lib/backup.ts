// Backups: `hearth backup` and `hearth restore` of a one-box installation holding 1 MB, 100 MB
// and 1 GB of store + media, against the floor people use instead (GNU tar + gzip of the data
// folder: no consistent snapshot, no checksums), and the disaster drill: from an empty folder
// to /readyz (restore + start) for the README's one-box example.
// Alone: node --import tsx bench/lib/backup.ts [--quick]
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import type { HistoryRow } from '../../src/store/store.js';
import { waitFor200 } from './load.js';
import { freePort, start, stop } from './procs.js';
import { type Budget, budget, int, ratio, table } from './report.js';

const execFileP = promisify(execFile);
const MB = 1_048_576;

export interface BackupSize {
  label: string;
  storeBytes: number;
  mediaBytes: number;
  historyRows: number;
  backupMs: number;
  archiveBytes: number;
  tarMs: number;
  tarBytes: number;
  restoreMs: number;
  untarMs: number;
}

export interface BackupResult {
  sizes: BackupSize[];
  /** Empty folder → restore → start → first 200 of /readyz, ms. */
  drillMs: number | null;
  drillRestoreMs: number | null;
  /** Of the drill: spawn of hearth start → /readyz 200. */
  drillStartMs: number | null;
  errors: string[];
}

/** Fills a one-box installation in `dir` with about `bytes` of store and media. */
async function fill(
  dir: string,
  bytes: number,
): Promise<{ storeBytes: number; mediaBytes: number; rows: number }> {
  mkdirSync(path.join(dir, 'data', 'media'), { recursive: true });
  writeFileSync(
    path.join(dir, 'hearth.yaml'),
    [
      'timezone: Europe/Berlin',
      'http: { host: 127.0.0.1, port: 0 }',
      'storage: { sqlite: data/hearth.db }',
      'media: { dir: data/media }',
      'buttons: [{ id: bedside, name: Bedside button }, { id: porch }]',
      'automations:',
      '  - { id: night, triggers: [{ at: "23:00" }], actions: [{ command: bedside.off }] }',
      '',
    ].join('\n'),
  );
  // A fifth of it (at most 200 MB) is store: a year of a few sensors is tens of MB; the rest is
  // chimes, which compress no further (random bytes stand for mp3).
  const storeTarget = Math.min(bytes / 5, 200 * MB);
  const store = await openSqliteStore(path.join(dir, 'data', 'hearth.db'));
  let rows = 0;
  try {
    await store.states.put({ id: 'bedside', kind: 'button', state: 'on', updatedAt: Date.now() });
    const id = await store.automations.start('night', 'cron 0 23 * * *', Date.now() - 60_000);
    await store.automations.finish(id, 'ok', Date.now(), null);
    // About 45 bytes a row on disk (at, entity, num; WITHOUT ROWID).
    const wanted = Math.max(1000, Math.round(storeTarget / 45));
    const t0 = Date.now() - wanted * 10_000;
    for (let i = 0; i < wanted; i += 10_000) {
      const batch: HistoryRow[] = [];
      for (let j = i; j < Math.min(wanted, i + 10_000); j++) {
        batch.push({
          id: `sensor-${j % 20}`,
          at: t0 + Math.floor(j / 20) * 10_000 + (j % 20),
          num: 20 + (j % 97) / 10,
          text: null,
        });
      }
      await store.history.append(batch);
      rows += batch.length;
    }
  } finally {
    await store.close();
  }
  const storeBytes = statSync(path.join(dir, 'data', 'hearth.db')).size;
  // Media: files of at most 20 MB, written from a 1 MB random block (gzip's window is 32 kB, so
  // the repetition does not compress).
  const block = randomBytes(MB);
  let left = Math.max(MB / 4, bytes - storeBytes);
  let mediaBytes = 0;
  for (let n = 0; left > 0; n++) {
    const size = Math.min(left, 20 * MB);
    const fd = openSync(path.join(dir, 'data', 'media', `chime-${n}.mp3`), 'w');
    for (let w = 0; w < size; w += MB) writeSync(fd, block, 0, Math.min(MB, size - w));
    closeSync(fd);
    left -= size;
    mediaBytes += size;
  }
  return { storeBytes, mediaBytes, rows };
}

async function timed(file: string, args: string[], cwd: string): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const { stdout } = await execFileP(file, args, {
    cwd,
    maxBuffer: 16 * MB,
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn' },
  });
  return { ms: performance.now() - t0, stdout };
}

export async function backupBench(opts: {
  root: string;
  tmp: string;
  sizes: number[];
  log: (line: string) => void;
}): Promise<BackupResult> {
  const bin = path.join(opts.root, 'bin', 'hearth.js');
  const node = process.execPath;
  const result: BackupResult = {
    sizes: [],
    drillMs: null,
    drillRestoreMs: null,
    drillStartMs: null,
    errors: [],
  };
  for (const bytes of opts.sizes) {
    const label = bytes >= 1024 * MB ? `${bytes / 1024 / MB} GB` : `${bytes / MB} MB`;
    const work = mkdtempSync(path.join(opts.tmp, 'backup-'));
    try {
      const src = path.join(work, 'src');
      mkdirSync(src);
      opts.log(`  ${label}: filling store and media`);
      const filled = await fill(src, bytes);
      const out = path.join(work, 'out');
      const made = await timed(
        node,
        [bin, 'backup', '--config', path.join(src, 'hearth.yaml'), '--to', out, '--json'],
        opts.root,
      );
      const { archive, bytes: archiveBytes } = JSON.parse(made.stdout.trim().split('\n').at(-1) ?? '{}') as {
        archive: string;
        bytes: number;
      };
      const tarFile = path.join(work, 'floor.tar.gz');
      const tar = await timed('tar', ['czf', tarFile, '-C', src, '.'], work);
      const dst = path.join(work, 'restored');
      const restored = await timed(node, [bin, 'restore', archive, '--config-dir', dst], opts.root);
      const untarDir = path.join(work, 'untar');
      mkdirSync(untarDir);
      const untar = await timed('tar', ['xzf', tarFile, '-C', untarDir], work);
      const size: BackupSize = {
        label,
        storeBytes: filled.storeBytes,
        mediaBytes: filled.mediaBytes,
        historyRows: filled.rows,
        backupMs: made.ms,
        archiveBytes,
        tarMs: tar.ms,
        tarBytes: statSync(tarFile).size,
        restoreMs: restored.ms,
        untarMs: untar.ms,
      };
      result.sizes.push(size);
      opts.log(
        `  ${label}: backup ${int(size.backupMs)} ms (tar czf ${int(size.tarMs)}), restore ${int(size.restoreMs)} ms (tar xzf ${int(size.untarMs)}), archive ${(archiveBytes / MB).toFixed(1)} MB`,
      );

      // The drill, on the smallest: an empty folder, restore, start, /readyz.
      if (bytes === Math.min(...opts.sizes)) {
        const drill = path.join(work, 'drill');
        const t0 = performance.now();
        const r = await timed(node, [bin, 'restore', archive, '--config-dir', drill], opts.root);
        const port = await freePort();
        const yaml = path.join(drill, 'hearth.yaml');
        writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('port: 0', `port: ${port}`));
        const t1 = performance.now();
        const proc = start('drill', node, [bin, 'start', '--config', yaml], opts.root);
        try {
          await waitFor200(port, '/readyz', 60_000, 5, () => !proc.hasExited());
          result.drillMs = performance.now() - t0;
          result.drillStartMs = performance.now() - t1;
          result.drillRestoreMs = r.ms;
        } finally {
          await stop(proc);
        }
      }
    } catch (err) {
      result.errors.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return result;
}

export function backupReport(r: BackupResult): string {
  const mb = (b: number) => (b / MB).toFixed(1);
  const rows = r.sizes.map((s) => [
    s.label,
    mb(s.storeBytes),
    mb(s.mediaBytes),
    int(s.backupMs),
    int(s.tarMs),
    ratio(s.backupMs / s.tarMs),
    mb(s.archiveBytes),
    mb(s.tarBytes),
    int(s.restoreMs),
    int(s.untarMs),
    ratio(s.restoreMs / s.untarMs),
  ]);
  return [
    '\n=== 17. backup and restore (one box: SQLite + media; floor: tar czf / tar xzf of the folder) ===',
    table(
      [
        'size',
        'store MB',
        'media MB',
        'backup ms',
        'tar czf ms',
        'ratio',
        'archive MB',
        'tar.gz MB',
        'restore ms',
        'tar xzf ms',
        'ratio',
      ],
      rows,
    ),
    r.drillMs === null
      ? 'drill: not measured'
      : `drill (empty folder → hearth restore → hearth start → /readyz 200): ${int(r.drillMs)} ms, of which restore ${int(r.drillRestoreMs ?? 0)} ms, start to ready ${int(r.drillStartMs ?? 0)} ms`,
  ].join('\n');
}

export function backupBudgets(r: BackupResult | null): Budget[] {
  return [budget('drill: empty folder to /readyz', r?.drillMs ?? undefined, '<', 60_000, 'ms')];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-backup-'));
  const quick = process.argv.includes('--quick');
  const r = await backupBench({
    root,
    tmp,
    sizes: quick ? [MB, 100 * MB] : [MB, 100 * MB, 1024 * MB],
    log: (l) => console.log(l),
  });
  console.log(backupReport(r));
  for (const e of r.errors) console.log(`ERROR ${e}`);
  rmSync(tmp, { recursive: true, force: true });
}
