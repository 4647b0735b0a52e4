import { spawn } from 'node:child_process';
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Cron } from 'croner';
import type { BackupConfig } from '../config/sections/backup.js';
import type { BackupStatus } from '../contract/views.js';
import { reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/** What GET /api/v1/backups and the dashboard show, and /metrics exports: src/contract/views.ts. */
export type { BackupStatus };

export interface BackupSchedulerOptions {
  config: BackupConfig;
  /** The config file the child `hearth backup --config` reads (absolute). */
  configFile: string;
  timezone: string;
  log: Logger;
  /** The CLI the child runs: `process.argv[1]` (bin/hearth.js) by default. */
  cli?: string;
  /** A backup that takes longer is killed and counted as failed. */
  timeoutMs?: number;
  /** Called when the status changed: after start, when a backup starts and when it ends. */
  onChange?: (status: BackupStatus) => void;
}

/** `hearth-<host>-<YYYYMMDDTHHMMSSZ>.tar.gz`, as `hearth backup` names its archives. */
const archiveName = /^hearth-.+-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.tar\.gz$/;

/** The time in an archive's name (epoch ms), or undefined when it is not one of hearth's archives. */
export function archiveTime(name: string): number | undefined {
  const m = archiveName.exec(name);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
}

/** hearth's archives in `dir`, newest first; a missing folder has none. */
export async function listArchives(dir: string): Promise<Array<{ name: string; at: number; bytes: number }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: Array<{ name: string; at: number; bytes: number }> = [];
  for (const name of names) {
    const at = archiveTime(name);
    if (at === undefined) continue;
    try {
      const s = await stat(join(dir, name));
      if (s.isFile()) found.push({ name, at, bytes: s.size });
    } catch {
      // Deleted meanwhile (another process pruning): not there.
    }
  }
  return found.sort((a, b) => b.at - a.at || (a.name < b.name ? 1 : -1));
}

/** What the child printed with --json. */
interface BackupResult {
  archive: string;
  bytes: number;
}

/**
 * Scheduled backups (`backup: { every }`), run inside hearth: by the one process on one box, by
 * the leading controller in a cluster. Each backup is a child process running `hearth backup
 * --json`, the very command a user runs by hand, so a backup's reading and compressing never
 * holds up this process's event loop (a button press answers as fast during a backup), and a
 * backup that crashes cannot take hearth with it. Runs never overlap; after a success the
 * archives past `keep` are deleted, oldest first.
 */
export class BackupScheduler {
  readonly #o: BackupSchedulerOptions;
  readonly #startedAt = Date.now();
  #cron: Cron | undefined;
  #child: ReturnType<typeof spawn> | undefined;
  #running: Promise<void> | undefined;
  #newest: { name: string; at: number; bytes: number } | null = null;
  #lastError: { at: number; message: string } | null = null;
  #warned = false;
  #staleCheck: NodeJS.Timeout | undefined;

  constructor(opts: BackupSchedulerOptions) {
    this.#o = opts;
  }

  /** Reads what `backup.dir` holds, then runs the schedule (if any). */
  async start(): Promise<this> {
    await this.refresh();
    const { every } = this.#o.config;
    if (every !== undefined) {
      this.#cron = new Cron(every, { timezone: this.#o.timezone, protect: true }, () => this.runNow());
      this.#checkStale();
    }
    // The folder is read again every minute (a backup made by hand, an archive deleted), and
    // lateness checked: it changes with time alone.
    this.#staleCheck = setInterval(() => {
      void this.refresh().then(() => {
        this.#checkStale();
        this.#changed();
      });
    }, 60_000).unref();
    this.#changed();
    return this;
  }

  /** Stops the schedule; a backup under way is stopped too (its partial file is its own to remove). */
  async stop(): Promise<void> {
    this.#cron?.stop();
    this.#cron = undefined;
    clearInterval(this.#staleCheck);
    this.#child?.kill('SIGTERM');
    await this.#running;
  }

  /** Reads the newest archive in `backup.dir` again (a backup made by hand counts too). */
  async refresh(): Promise<void> {
    try {
      this.#newest = (await listArchives(this.#o.config.dir))[0] ?? null;
    } catch (err) {
      this.#o.log.warn({ err: reasonOf(err), dir: this.#o.config.dir }, 'cannot read the backup folder');
    }
  }

  status(): BackupStatus {
    const next = this.#cron?.nextRun();
    return {
      every: this.#o.config.every ?? null,
      newest: this.#newest && {
        name: this.#newest.name,
        at: new Date(this.#newest.at).toISOString(),
        bytes: this.#newest.bytes,
      },
      lastError: this.#lastError && {
        at: new Date(this.#lastError.at).toISOString(),
        message: this.#lastError.message,
      },
      nextAt: next ? next.toISOString() : null,
      running: this.#running !== undefined,
      stale: this.#stale(),
    };
  }

  /** Runs a backup now unless one is running (then resolves when that one ends). */
  runNow(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
        this.#changed();
      });
      this.#changed();
    }
    return this.#running;
  }

  #changed(): void {
    try {
      this.#o.onChange?.(this.status());
    } catch (err) {
      this.#o.log.warn({ err: reasonOf(err) }, 'could not say how backups stand');
    }
  }

  async #run(): Promise<void> {
    const { log } = this.#o;
    const started = Date.now();
    try {
      const result = await this.#spawn();
      await this.#prune();
      await this.refresh();
      this.#lastError = null;
      log.info(
        { archive: result.archive, bytes: result.bytes, ms: Date.now() - started },
        'backup written and verified',
      );
    } catch (err) {
      this.#lastError = { at: Date.now(), message: reasonOf(err) };
      log.error({ err: reasonOf(err) }, 'scheduled backup failed; the next one runs on schedule');
    }
    this.#checkStale();
  }

  #spawn(): Promise<BackupResult> {
    const { config, configFile } = this.#o;
    const cli = this.#o.cli ?? process.argv[1] ?? 'bin/hearth.js';
    const args = [cli, 'backup', '--config', configFile, '--to', config.dir, '--json'];
    if (config.includeSecrets) args.push('--include-secrets');
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
      this.#child = child;
      let out = '';
      let err = '';
      // Bounded: the child prints one JSON line, and errors of a few lines.
      child.stdout?.on('data', (d: Buffer) => {
        if (out.length < 65_536) out += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        if (err.length < 65_536) err += d.toString();
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(`hearth backup took longer than ${Math.round(this.timeoutMs / 60_000)} min; stopped`),
        );
      }, this.timeoutMs).unref();
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.#child = undefined;
        if (code !== 0) {
          const said = lastLines(err) || (signal ? `killed by ${signal}` : `exit code ${code}`);
          return reject(new Error(said));
        }
        try {
          const line = out.trim().split('\n').at(-1) ?? '';
          const r = JSON.parse(line) as BackupResult;
          if (typeof r.archive !== 'string' || typeof r.bytes !== 'number')
            throw new Error('no archive named');
          resolve(r);
        } catch {
          reject(new Error(`hearth backup did not say which archive it wrote: ${out.slice(0, 200)}`));
        }
      });
    });
  }

  get timeoutMs(): number {
    return this.#o.timeoutMs ?? 3600_000;
  }

  /** Deletes hearth's archives past `keep`, oldest first. Only files named as hearth names them. */
  async #prune(): Promise<void> {
    const { dir, keep } = this.#o.config;
    for (const old of (await listArchives(dir)).slice(keep)) {
      try {
        await unlink(join(dir, old.name));
        this.#o.log.info({ archive: old.name, keep }, 'old backup deleted');
      } catch (err) {
        this.#o.log.warn({ err: reasonOf(err), archive: old.name }, 'cannot delete an old backup');
      }
    }
  }

  /** Twice the schedule's interval (the time between its next two runs), or undefined without one. */
  #interval(): number | undefined {
    const [a, b] = this.#cron?.nextRuns(2) ?? [];
    return a && b ? b.getTime() - a.getTime() : undefined;
  }

  #stale(): boolean {
    const interval = this.#interval();
    if (interval === undefined) return false;
    const since = this.#newest?.at ?? this.#startedAt;
    return Date.now() - since > 2 * interval;
  }

  #checkStale(): void {
    const stale = this.#stale();
    if (stale && !this.#warned) {
      const newest = this.#newest
        ? `the newest, ${this.#newest.name}, is from ${new Date(this.#newest.at).toISOString()}`
        : 'there is none';
      this.#o.log.warn(
        { dir: this.#o.config.dir, every: this.#o.config.every },
        `backups are late: ${newest}, older than twice the schedule; see the last backup error above, or run hearth backup by hand`,
      );
    }
    this.#warned = stale;
  }
}

/** The last few lines a child printed on stderr: what it said went wrong. */
function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' ').slice(0, 500);
}
