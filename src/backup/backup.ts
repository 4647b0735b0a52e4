/**
 * `hearth backup`: one archive of what a user would miss when the box dies (the config, the
 * store's kept tables from one snapshot, the media folder, optionally the secrets file,
 * encrypted), written under a temporary name, re-read and checked, then renamed. See
 * docs/backups.md.
 */
import { once } from 'node:events';
import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, realpath, rename, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import type { HearthConfig } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { readSmallFile } from '../core/read-file.js';
import { isPlainFileName, MediaLibrary } from '../media/library.js';
import { openStore } from '../store/open.js';
import { BACKUP_TABLES, type BackupTable, type Store } from '../store/store.js';
import { hearthVersion } from '../version.js';
import { ArchiveWriter, fileSlice, type MemberSource } from './archive.js';
import { BackupError, storeReason } from './errors.js';
import {
  ARCHIVE_FORMAT,
  configMember,
  type FileEntry,
  formatManifest,
  MANIFEST_MEMBER,
  type Manifest,
  mediaMember,
  SECRETS_MEMBER,
  storeMember,
} from './manifest.js';
import { encryptSecrets, passphraseFromEnv } from './secrets-crypto.js';
import { verifyArchive } from './verify.js';

export interface BackupOptions {
  config: HearthConfig;
  /** The folder to write to (absolute); default: the config's backup.dir. */
  to?: string;
  /** Put the secrets file in, encrypted with $HEARTH_BACKUP_PASSPHRASE. */
  includeSecrets?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Progress and notes for a person (stderr); nothing is said when left out. */
  say?: (line: string) => void;
  /** Whether `say` goes to a terminal (progress then rewrites one line). */
  tty?: boolean;
  /** Rows per chunk read from the store. */
  chunkRows?: number;
}

/** What `--json` prints. */
export interface BackupResult {
  archive: string;
  bytes: number;
  createdAt: string;
  rows: Record<string, number>;
  mediaFiles: number;
  /** Of the media files, in bytes. */
  mediaBytes: number;
  durationMs: number;
}

/**
 * Paths a backup under way would leave behind (the .partial archive, the table dumps): a
 * signal handler removes them before the process exits (see src/cli/backup.ts).
 */
export const leftovers = new Set<string>();

export function removeLeftovers(): void {
  for (const path of leftovers) rmSync(path, { recursive: true, force: true });
  leftovers.clear();
}

/** Media this large in all gets a progress line; smaller folders are done before anyone looks. */
const progressFromBytes = 64 * 1024 * 1024;
const progressEveryMs = 2000;

/** `hearth-<host>-<YYYYMMDDTHHMMSSZ>.tar.gz`. */
export function archiveName(host: string, at: Date): string {
  const safeHost =
    host
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[.-]+/, '')
      .slice(0, 64) || 'host';
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return `hearth-${safeHost}-${stamp}.tar.gz`;
}

/** One row as one line: columns in name order, so the same row is always the same bytes. */
function rowLine(row: Record<string, unknown>): string {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(row).sort()) sorted[key] = row[key];
  return `${JSON.stringify(sorted)}\n`;
}

interface TableDump {
  path: string;
  rows: number;
  size: number;
}

/**
 * Every kept table from one snapshot of the store (BackupStore.dump), each to an NDJSON file in
 * `dir`. The archive needs each member's size before its bytes, so the tables go through disk
 * rather than memory.
 */
async function dumpTables(
  store: Store,
  dir: string,
  chunkRows: number,
): Promise<Map<BackupTable, TableDump>> {
  const dumps = new Map<BackupTable, TableDump & { out: WriteStream }>();
  const writer = (table: BackupTable) => {
    let d = dumps.get(table);
    if (!d) {
      const path = join(dir, `${table}.ndjson`);
      d = { path, rows: 0, size: 0, out: createWriteStream(path, { flags: 'wx', mode: 0o600 }) };
      d.out.on('error', () => {});
      dumps.set(table, d);
    }
    return d;
  };
  for (const table of BACKUP_TABLES) writer(table);
  try {
    for await (const chunk of store.backup.dump(chunkRows)) {
      if (!(BACKUP_TABLES as readonly string[]).includes(chunk.table)) continue;
      const d = writer(chunk.table);
      const text = chunk.rows.map(rowLine).join('');
      d.rows += chunk.rows.length;
      d.size += Buffer.byteLength(text);
      // events.once rejects on 'error' too, and removes both its listeners either way.
      if (!d.out.write(text)) await once(d.out, 'drain');
      if (d.out.errored) throw d.out.errored;
    }
  } finally {
    await Promise.all(
      [...dumps.values()].map(
        (d) =>
          new Promise<void>((resolve, reject) => {
            d.out.end((err?: Error | null) => (err ? reject(err) : resolve()));
          }),
      ),
    );
  }
  return new Map([...dumps].map(([t, d]) => [t, { path: d.path, rows: d.rows, size: d.size }]));
}

interface MediaFile {
  name: string;
  path: string;
  size: number;
}

/**
 * The media folder's files: what hearth serves from it (plain names of regular files inside
 * it, symlinks included). Hidden files (`hearth media add` copies under a dot name before it
 * renames) and anything else are left out; the others are named.
 */
async function listMedia(dir: string, outDir: string, say: (line: string) => void): Promise<MediaFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new BackupError(`cannot read the media folder ${dir}: ${reasonOf(err)}`);
  }
  const lib = new MediaLibrary({ dir });
  const files: MediaFile[] = [];
  const skipped: string[] = [];
  // Archives written into the media folder itself are not media: each would hold the last.
  const sameDir = (await realpath(dir).catch(() => dir)) === (await realpath(outDir).catch(() => outDir));
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    if (sameDir && /^hearth-.*\.tar\.gz(\.partial)?$/.test(name)) continue;
    const path = isPlainFileName(name) ? await lib.resolve(name) : undefined;
    if (path === undefined) {
      skipped.push(name);
      continue;
    }
    files.push({ name, path, size: (await stat(path)).size });
  }
  if (skipped.length > 0) {
    say(
      `note: left out of the media folder (not a file hearth serves): ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ` and ${skipped.length - 5} more` : ''}`,
    );
  }
  return files;
}

/** Sizes as a person reads them: kB, MB, GB. */
export function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${Math.ceil(n / 1024)} kB`;
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(0)} MB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(1)} GB`;
}

export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const { config } = opts;
  const env = opts.env ?? process.env;
  const say = opts.say ?? (() => {});
  const outDir = opts.to ?? config.backup.dir;

  // Everything that can be refused is checked before anything is written.
  let sealed: Buffer | undefined;
  let secretsPlain: Buffer | undefined;
  let passphrase: string | undefined;
  if (opts.includeSecrets) {
    if (config.secrets === undefined) {
      throw new BackupError(
        `--include-secrets: the config ${config.file} has no \`secrets:\` file; leave the option out`,
      );
    }
    passphrase = passphraseFromEnv(env, '--include-secrets encrypts the secrets file with a passphrase');
    try {
      secretsPlain = Buffer.from(readSmallFile(config.secrets), 'utf8');
    } catch (err) {
      throw new BackupError(`cannot read the secrets file ${config.secrets}: ${reasonOf(err)}`);
    }
  }
  let configBytes: Buffer;
  try {
    configBytes = Buffer.from(readSmallFile(config.file), 'utf8');
  } catch (err) {
    throw new BackupError(`cannot read the config ${config.file}: ${reasonOf(err)}`);
  }
  const configName = basename(config.file);
  if (!isPlainFileName(configName)) {
    throw new BackupError(
      `the config's file name ${JSON.stringify(configName)} cannot be kept in an archive`,
    );
  }
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new BackupError(`cannot create the backup folder ${outDir}: ${reasonOf(err)}`);
  }

  const createdAt = new Date();
  const host = hostname();
  const name = archiveName(host, createdAt);
  const final = join(outDir, name);
  const partial = `${final}.partial`;
  if (await exists(final)) {
    throw new BackupError(`${final} already exists (two backups in one second?); run the backup again`);
  }

  let store: Store | undefined;
  let writer: ArchiveWriter | undefined;
  let tmp: string | undefined;
  const fds: Array<{ close(): Promise<void> }> = [];
  try {
    try {
      store = await openStore(config.storage);
    } catch (err) {
      throw new BackupError(`cannot open the store: ${storeReason(err)}`);
    }
    if (passphrase !== undefined && secretsPlain !== undefined) {
      sealed = await encryptSecrets(secretsPlain, passphrase);
    }

    tmp = await mkdtemp(join(outDir, '.hearth-backup-'));
    leftovers.add(tmp);
    let tables: Map<BackupTable, TableDump>;
    let schema: number;
    try {
      schema = await store.backup.schemaVersion();
      tables = await dumpTables(store, tmp, opts.chunkRows ?? 1000);
    } catch (err) {
      throw new BackupError(`cannot read the store: ${storeReason(err)}`, { cause: err });
    }
    const kind = store.kind;
    await store.close();
    store = undefined;

    const media = await listMedia(config.media.dir, outDir, say);
    const mediaBytes = media.reduce((n, f) => n + f.size, 0);

    try {
      writer = ArchiveWriter.create(partial);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new BackupError(
          `another backup is writing ${partial} right now; let it finish, then run this one again`,
        );
      }
      throw new BackupError(`cannot write ${partial}: ${reasonOf(err)}`);
    }
    // Ours from here on: removed if this backup fails or is stopped.
    leftovers.add(partial);
    const files: FileEntry[] = [];
    const add = async (m: MemberSource, onBytes?: (n: number) => void) => {
      if (!writer) return;
      files.push(await writer.add(m, onBytes));
    };

    await add({
      path: configMember(configName),
      size: configBytes.length,
      mtime: createdAt,
      data: configBytes,
    });
    for (const table of BACKUP_TABLES) {
      const t = tables.get(table);
      if (!t) continue;
      const fh = await open(t.path, 'r');
      fds.push(fh);
      const size = (await fh.stat()).size;
      await add({ path: storeMember(table), size, mtime: createdAt, data: fileSlice(fh.fd, size) });
      await fh.close();
      fds.pop();
    }

    const progress =
      mediaBytes >= progressFromBytes ? progressLine(mediaBytes, say, opts.tty ?? false) : undefined;
    for (const m of media) {
      let fh: Awaited<ReturnType<typeof open>>;
      try {
        fh = await open(m.path, 'r');
      } catch (err) {
        throw new BackupError(`cannot read the media file ${m.path}: ${reasonOf(err)}`);
      }
      fds.push(fh);
      // The size of the file as opened: `hearth media add` replaces a file by renaming, so
      // this descriptor keeps the version it opened.
      const st = await fh.stat();
      await add(
        {
          path: mediaMember(m.name),
          size: st.size,
          mtime: st.mtime,
          data: fileSlice(fh.fd, st.size),
        },
        progress?.add,
      );
      await fh.close();
      fds.pop();
    }
    progress?.end();

    if (sealed !== undefined) {
      await add({ path: SECRETS_MEMBER, size: sealed.length, mode: 0o600, mtime: createdAt, data: sealed });
    }
    const rows = Object.fromEntries(BACKUP_TABLES.map((t) => [t, tables.get(t)?.rows ?? 0]));
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      hearth: hearthVersion,
      createdAt: createdAt.toISOString(),
      host,
      store: { kind, schema },
      config: configName,
      rows,
      files,
    };
    const manifestBytes = Buffer.from(formatManifest(manifest));
    await add({ path: MANIFEST_MEMBER, size: manifestBytes.length, mtime: createdAt, data: manifestBytes });
    files.pop();
    try {
      await writer.finish();
    } catch (err) {
      throw new BackupError(`cannot write ${partial}: ${reasonOf(err)}`);
    }
    writer = undefined;
    rmSync(tmp, { recursive: true, force: true });
    leftovers.delete(tmp);

    // Read back what was written, as a restore would, before it gets its real name.
    const verified = await verifyArchive(partial, partial, { maxUnpacked: Number.POSITIVE_INFINITY }).catch(
      (err: unknown) => {
        throw new BackupError(`the archive just written does not read back: ${reasonOf(err)}`);
      },
    );
    if (verified.manifest.files.length !== files.length) {
      throw new BackupError('the archive just written does not read back whole');
    }
    if (await exists(final)) {
      throw new BackupError(`${final} appeared while the backup ran; run the backup again`);
    }
    await rename(partial, final);
    leftovers.delete(partial);
    await syncDir(outDir);

    return {
      archive: final,
      bytes: verified.bytes,
      createdAt: manifest.createdAt,
      rows,
      mediaFiles: media.length,
      mediaBytes,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    await writer?.abort();
    for (const fh of fds) await fh.close().catch(() => {});
    removeLeftovers();
    if (err instanceof BackupError) throw err;
    throw new BackupError(reasonOf(err), { cause: err });
  } finally {
    await store?.close().catch(() => {});
  }
}

/** Says how far the media files are, at most every 2 s: one rewritten line on a terminal. */
function progressLine(total: number, say: (line: string) => void, tty: boolean) {
  let done = 0;
  let last = performance.now();
  const line = () =>
    `media ${formatBytes(done)} of ${formatBytes(total)} (${Math.floor((done / total) * 100)}%)`;
  return {
    add(n: number) {
      done += n;
      const now = performance.now();
      if (now - last < progressEveryMs) return;
      last = now;
      say(tty ? `\r${line()}` : line());
    },
    end() {
      say(tty ? `\r${line()}\n` : line());
    },
  };
}

/** Whether anything is at `path` (a file, a folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** fsync a folder, so a rename in it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a folder; the rename itself is still atomic.
  } finally {
    await fh.close();
  }
}
