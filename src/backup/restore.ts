/**
 * `hearth restore ARCHIVE --config-dir DIR`: checks the whole archive first (verify.ts), then
 * the target, and only then writes: the store in one transaction (all rows or none), the media
 * folder and the secrets file moved into place by rename, the config last. Any refusal or
 * failure before that leaves the target as it was. See docs/backups.md.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ConfigError } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { drivers } from '../drivers/index.js';
import { isPlainFileName } from '../media/library.js';
import { openStore } from '../store/open.js';
import { BACKUP_TABLES, type DumpChunk, type Store } from '../store/store.js';
import { digest, readArchive } from './archive.js';
import { exists } from './backup.js';
import { BackupError, storeReason } from './errors.js';
import { classifyMember, type FileEntry, storeMember } from './manifest.js';
import {
  isInside,
  type Moved,
  mayWrite,
  PG_URL_ENV,
  type RestoreTargets,
  restoreTargets,
  rewriteStorage,
  type StorageTarget,
  secretValues,
} from './restore-config.js';
import { decryptSecrets, passphraseFromEnv } from './secrets-crypto.js';
import { verifyArchive } from './verify.js';

export interface RestoreOptions {
  /** The archive, as given (also its name in messages). */
  archive: string;
  /** The folder the config is restored into (absolute). */
  configDir: string;
  /**
   * A second folder (absolute) the user lets the restore write in: the archive's absolute
   * `storage.sqlite`, `media.dir` or `secrets:` inside it stay where they are. Without it, and for
   * any path outside both, they are moved under configDir (restore-config.ts).
   */
  dataDir?: string;
  /** Stop once the archive has unpacked to this many bytes (a gzip bomb); default DEFAULT_MAX_UNPACKED. */
  maxUnpacked?: number;
  /** Restore into this kind of store, rewriting the config's `storage:`. */
  storage?: 'sqlite' | 'postgres';
  /** Replace what the target already has. */
  force?: boolean;
  /** Leave the archive's secrets file out (its passphrase is lost): the rest is restored. */
  withoutSecrets?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Rows per chunk handed to the store. */
  chunkRows?: number;
}

export interface RestoreResult {
  /** The restored config file (absolute). */
  config: string;
  /** Where the store went, without a password: a SQLite path or `postgres host:port/db`. */
  store: string;
  rows: number;
  mediaDir: string;
  mediaFiles: number;
  secrets: string | undefined;
  /** Made by, and when. */
  from: { hearth: string; host: string; createdAt: string; kind: 'sqlite' | 'postgres' };
  /** Settings of the archive's config that pointed outside the folders named, and where they went. */
  moved: Moved[];
  /** Things to do before `hearth start` (the config's problems on this box). */
  warnings: string[];
  durationMs: number;
}

/** Staging folders of a restore under way: a signal handler removes them (src/cli/backup.ts). */
export const restoreLeftovers = new Set<string>();

export function removeRestoreLeftovers(): void {
  for (const path of restoreLeftovers) rmSync(path, { recursive: true, force: true });
  restoreLeftovers.clear();
}

/** `postgres://u:p@db.lan:5432/hearth` → `postgres db.lan:5432/hearth`: never the password. */
export function describeStore(storage: StorageTarget): string {
  if (storage.sqlite !== undefined) return storage.sqlite;
  try {
    const u = new URL(storage.postgres.url);
    return `postgres ${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'postgres';
  }
}

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new BackupError(`${dir} is a file, not a folder`);
    throw new BackupError(`cannot read ${dir}: ${reasonOf(err)}`);
  }
}

/** The outermost folder of `dir` that does not exist yet (`dir` itself when only it is missing). */
async function firstMissing(dir: string): Promise<string> {
  let missing = dir;
  for (let parent = dirname(dir); parent !== missing && !(await exists(parent)); parent = dirname(parent)) {
    missing = parent;
  }
  return missing;
}

/**
 * The rows of each staged table file, in BACKUP_TABLES order and chunks of `chunkRows`. Button
 * rows not declared under the config's `buttons:` are counted as they pass: past
 * `buttonLimits.maxUndeclared` the load stops (and its transaction goes back), so the limit
 * holds after a restore as it does for presses. (The store checks each row and id: backup-rows.ts.)
 */
async function* chunksFrom(
  dir: string,
  chunkRows: number,
  buttons: RestoreTargets['buttons'],
): AsyncIterable<DumpChunk> {
  let undeclared = 0;
  for (const table of BACKUP_TABLES) {
    const input = createReadStream(join(dir, `${table}.ndjson`));
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let rows: Record<string, unknown>[] = [];
    let n = 0;
    try {
      for await (const line of lines) {
        n++;
        if (line === '') continue;
        let row: unknown;
        try {
          row = JSON.parse(line);
        } catch {
          throw new BackupError(`${storeMember(table)} line ${n} is not valid JSON`);
        }
        if (row === null || typeof row !== 'object' || Array.isArray(row)) {
          throw new BackupError(`${storeMember(table)} line ${n} is not a row (a JSON object)`);
        }
        const r = row as Record<string, unknown>;
        if (
          table === 'entity_state' &&
          r.kind === 'button' &&
          typeof r.id === 'string' &&
          !buttons.declared.has(r.id) &&
          ++undeclared > buttons.maxUndeclared
        ) {
          throw new BackupError(
            `${storeMember(table)} holds more than ${buttons.maxUndeclared} buttons that are not under buttons: in the archive's config, the most its buttonLimits.maxUndeclared allows; hearth never stores more (it refuses presses past that), so the archive was altered, or its config edited after the presses. Nothing was changed`,
          );
        }
        rows.push(r);
        if (rows.length >= chunkRows) {
          yield { table, rows };
          rows = [];
        }
      }
      if (rows.length > 0) yield { table, rows };
    } finally {
      lines.close();
      input.destroy();
    }
  }
}

/** Writes a small file under a temporary name, fsyncs it, and renames it into place. */
async function writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(temp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function runRestore(opts: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const env = opts.env ?? process.env;
  const label = opts.archive;
  const force = opts.force ?? false;

  // 1. The archive, whole: nothing is touched before it has passed.
  const readOpts = opts.maxUnpacked === undefined ? {} : { maxUnpacked: opts.maxUnpacked };
  const verified = await verifyArchive(opts.archive, label, readOpts);
  const { manifest } = verified;
  let secretsPlain: Buffer | undefined;
  if (verified.sealedSecrets !== undefined && !opts.withoutSecrets) {
    const passphrase = passphraseFromEnv(
      env,
      `${label} holds the secrets file, encrypted with a passphrase`,
      ', or pass --without-secrets to restore everything else',
    );
    secretsPlain = await decryptSecrets(verified.sealedSecrets, passphrase);
  }
  if (opts.storage === 'postgres' && !env[PG_URL_ENV]) {
    throw new BackupError(
      `--storage postgres loads the store into $${PG_URL_ENV}, which is not set; export ${PG_URL_ENV}=postgres://USER:PASSWORD@HOST:5432/DATABASE`,
    );
  }
  let configText = verified.config.toString('utf8');
  if (opts.storage !== undefined) configText = rewriteStorage(configText, opts.storage);
  // Where this restore may write: the folders the user named, never the archive's say.
  const roots = { configDir: opts.configDir, dataDir: opts.dataDir };
  const targets: RestoreTargets = restoreTargets(
    configText,
    roots,
    env,
    secretsPlain === undefined ? undefined : secretValues(secretsPlain.toString('utf8')),
  );
  configText = targets.configText;
  // restoreTargets answers only such paths; checked again here, before anything is replaced.
  for (const path of [targets.mediaDir, targets.storage.sqlite, secretsPlain && targets.secrets]) {
    if (path && !mayWrite(roots, path)) throw new Error(`restore would write outside its folders: ${path}`);
  }
  if (secretsPlain !== undefined && targets.secrets === undefined) {
    throw new BackupError(`${label} holds a secrets file, but its config names none (no \`secrets:\`)`);
  }
  const configFile = join(opts.configDir, manifest.config);
  if (targets.mediaDir === opts.configDir || isInside(targets.mediaDir, opts.configDir)) {
    throw new BackupError(
      `the config's media folder ${targets.mediaDir} is the folder the config goes into (or holds it); restore into a folder of its own`,
    );
  }

  // 2. The target: empty, or --force.
  const refuse = (what: string) => {
    throw new BackupError(
      `${what}; restore into an empty or new folder, or pass --force to replace what the archive holds. Nothing was changed`,
    );
  };
  const dirEntries = await entries(opts.configDir);
  if (dirEntries !== undefined && dirEntries.length > 0 && !force) {
    refuse(`${opts.configDir} is not empty (${dirEntries.length} entries)`);
  }
  const mediaEntries = await entries(targets.mediaDir);
  if (mediaEntries !== undefined && mediaEntries.length > 0 && !force) {
    refuse(`the media folder ${targets.mediaDir} is not empty`);
  }
  if (
    secretsPlain !== undefined &&
    targets.secrets !== undefined &&
    (await exists(targets.secrets)) &&
    !force
  ) {
    refuse(`the secrets file ${targets.secrets} already exists`);
  }
  if (!force && (await exists(configFile))) refuse(`${configFile} already exists`);

  let store: Store | undefined;
  const sqliteFile = targets.storage.sqlite;
  const sqliteExisted = sqliteFile === undefined ? false : await exists(sqliteFile);
  // Opening a SQLite file creates it and its folder; on failure both go again.
  const sqliteDirExisted = sqliteFile === undefined ? true : await exists(dirname(sqliteFile));
  const openTarget = async () => {
    try {
      return await openStore(targets.storage);
    } catch (err) {
      throw new BackupError(`cannot open the store ${describeStore(targets.storage)}: ${storeReason(err)}`);
    }
  };
  const created: string[] = [];
  const staging: string[] = [];
  let storeLoaded = false;
  try {
    if (sqliteFile !== undefined && !sqliteDirExisted) created.push(await firstMissing(dirname(sqliteFile)));
    if (sqliteFile === undefined || sqliteExisted) {
      store = await openTarget();
      if (!force && !(await store.backup.isEmpty())) {
        refuse(`the store ${describeStore(targets.storage)} is not empty`);
      }
    }

    // 3. Stage what the archive holds next to where it goes, checking every byte again.
    // mkdir answers the first folder it had to create: removing that one removes them all.
    const madeDir = await mkdir(opts.configDir, { recursive: true });
    if (madeDir !== undefined) created.push(madeDir);
    const stage = await mkdtemp(join(opts.configDir, '.hearth-restore-'));
    staging.push(stage);
    restoreLeftovers.add(stage);
    const mediaParent = dirname(targets.mediaDir);
    const madeMedia = await mkdir(mediaParent, { recursive: true });
    if (madeMedia !== undefined) created.push(madeMedia);
    const mediaStage = await mkdtemp(join(mediaParent, '.hearth-restore-media-'));
    staging.push(mediaStage);
    restoreLeftovers.add(mediaStage);

    const listed = new Map<string, FileEntry>(manifest.files.map((f) => [f.path, f]));
    const changed: string[] = [];
    await readArchive(
      opts.archive,
      label,
      async (entry) => {
        const kind = classifyMember(entry.path, isPlainFileName);
        let out: string | undefined;
        if (kind?.kind === 'store') out = join(stage, `${kind.table}.ndjson`);
        else if (kind?.kind === 'media') out = join(mediaStage, kind.name);
        if (out === undefined) {
          await digest(entry.stream);
          return;
        }
        const ws = createWriteStream(out, { flags: 'wx', mode: kind?.kind === 'media' ? 0o644 : 0o600 });
        ws.on('error', () => {});
        const d = await digest(entry.stream, async (chunk) => {
          // events.once rejects on 'error' too, and removes both its listeners either way: a race
          // with once(ws, 'error') left one error listener per drain behind.
          if (!ws.write(chunk)) await once(ws, 'drain');
          if (ws.errored) throw ws.errored;
        });
        await new Promise<void>((resolve, reject) =>
          ws.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
        const want = listed.get(entry.path);
        if (want === undefined || want.sha256 !== d.sha256 || want.size !== d.size) changed.push(entry.path);
      },
      readOpts,
    );
    if (changed.length > 0) {
      throw new BackupError(
        `${label} changed while it was being restored (${changed[0]}); nothing was restored`,
      );
    }
    for (const table of BACKUP_TABLES) {
      // A table the archive has no rows for still needs its (empty) file to read.
      const path = join(stage, `${table}.ndjson`);
      if (!(await exists(path))) await (await open(path, 'w', 0o600)).close();
    }

    // 4. The store: one transaction, all rows or none.
    store ??= await openTarget();
    let rows: number;
    try {
      rows = (
        await store.backup.load(chunksFrom(stage, opts.chunkRows ?? 1000, targets.buttons), {
          replace: force,
        })
      ).rows;
    } catch (err) {
      if (err instanceof BackupError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'HEARTH_ERR_STORE_NOT_EMPTY')
        refuse(`the store ${describeStore(targets.storage)} is not empty`);
      // The store's own message names the table and row.
      throw new BackupError(`cannot load the store ${describeStore(targets.storage)}: ${storeReason(err)}`);
    }
    storeLoaded = true;
    await store.close();
    store = undefined;

    // 5. Files, each by rename; the config last, so a config in place means a finished restore.
    if (mediaEntries !== undefined) {
      const old = `${targets.mediaDir}.old-${process.pid}`;
      await rename(targets.mediaDir, old);
      await rename(mediaStage, targets.mediaDir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(mediaStage, targets.mediaDir);
    }
    restoreLeftovers.delete(mediaStage);
    // mkdtemp made it 0700; a media folder is as readable as any other folder hearth writes.
    await chmod(targets.mediaDir, 0o755);
    if (secretsPlain !== undefined && targets.secrets !== undefined) {
      await mkdir(dirname(targets.secrets), { recursive: true });
      await writeFileAtomic(targets.secrets, secretsPlain, 0o600);
    }
    await writeFileAtomic(configFile, configText, 0o640);
    await rm(stage, { recursive: true, force: true });
    restoreLeftovers.delete(stage);

    // 6. What the user still has to do on this box before `hearth start`.
    const warnings: string[] = [];
    try {
      loadConfigFile(configFile, { drivers, env });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      warnings.push(
        `the restored config has problems on this box; fix them, then \`hearth check --config ${configFile}\`:`,
        ...err.message.split('\n').map((l) => `  ${l}`),
      );
    }
    return {
      config: configFile,
      moved: targets.moved,
      store: describeStore(targets.storage),
      rows,
      mediaDir: targets.mediaDir,
      mediaFiles: verified.mediaFiles,
      secrets: secretsPlain === undefined ? undefined : targets.secrets,
      from: {
        hearth: manifest.hearth,
        host: manifest.host,
        createdAt: manifest.createdAt,
        kind: manifest.store.kind,
      },
      warnings,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    await store?.close().catch(() => {});
    store = undefined;
    for (const dir of staging) await rm(dir, { recursive: true, force: true });
    for (const dir of staging) restoreLeftovers.delete(dir);
    if (!storeLoaded && sqliteFile !== undefined && !sqliteExisted) {
      // The SQLite file this restore created (opening it does) goes again.
      for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(sqliteFile + suffix, { force: true });
    }
    if (storeLoaded) {
      // Past the point of no return: the store has the archive's rows; say what is left to do.
      throw new BackupError(
        `the store ${describeStore(targets.storage)} was restored, but the files were not: ${reasonOf(err)}; fix that, then run the restore again with --force`,
      );
    }
    for (const dir of created.reverse()) await rm(dir, { recursive: true, force: true });
    if (err instanceof BackupError) throw err;
    throw new BackupError(reasonOf(err), { cause: err });
  }
}
