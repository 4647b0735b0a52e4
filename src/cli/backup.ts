import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_MAX_UNPACKED, formatSize, parseSize } from '../backup/archive.js';
import { formatBytes, removeLeftovers, runBackup } from '../backup/backup.js';
import { BackupError } from '../backup/errors.js';
import { removeRestoreLeftovers, runRestore } from '../backup/restore.js';
import { pathsOutside } from '../backup/restore-config.js';
import { decryptSecrets, PASSPHRASE_ENV, passphraseFromEnv } from '../backup/secrets-crypto.js';
import { verifyArchive } from '../backup/verify.js';
import { ConfigError } from '../config/errors.js';
import { type HearthConfig, loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { drivers } from '../drivers/index.js';
import { configPath } from './config-path.js';

/**
 * `hearth backup`, `hearth backup verify` and `hearth restore`: options only; the work is in
 * src/backup/. hearth's own scheduler runs `hearth backup --json` as a child process, so the
 * contract (one JSON line on stdout, `hearth backup: ...` and exit 1 on failure, no .partial
 * left) is kept here.
 */
export function registerBackup(program: Command): void {
  const backup = program
    .command('backup')
    .description(
      'write one archive: the config, the store (one snapshot, while hearth runs), the media folder',
    )
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .option('--to <dir>', "the folder to write the archive to (default: the config's backup.dir)")
    .option('--include-secrets', `also the secrets file, encrypted with $${PASSPHRASE_ENV}`)
    .option('--json', 'print one JSON line at the end: archive, bytes, createdAt, rows, mediaFiles')
    // Options after `verify` are verify's own.
    .enablePositionalOptions()
    .action((opts: BackupCliOptions) => backupCommand(opts));
  backup
    .command('verify')
    .description('check an archive (every checksum, the manifest) without restoring anything')
    .argument('<archive>', 'a hearth-<host>-<time>.tar.gz')
    .option('--json', 'print one JSON line: what the archive holds')
    .addOption(maxUnpackedOption())
    .action((archive: string, opts: VerifyCliOptions) => verifyCommand(archive, opts));
  program
    .command('restore')
    .description(
      'restore an archive into a folder: config, store, media (and secrets); nothing changes unless it is whole',
    )
    .argument('<archive>', 'a hearth-<host>-<time>.tar.gz')
    .requiredOption('--config-dir <dir>', 'the folder the config goes into (created if missing)')
    .option(
      '--data-dir <dir>',
      "a folder restore may also write in: the archive's absolute store, media and secrets paths inside it stay (others move under --config-dir)",
    )
    .addOption(maxUnpackedOption())
    .addOption(
      new Option(
        '--storage <kind>',
        'restore into this kind of store, rewriting `storage:` in the config',
      ).choices(['sqlite', 'postgres']),
    )
    .option('-f, --force', 'replace what the folder, the store and the media folder already hold')
    .option('--without-secrets', "leave the archive's encrypted secrets file out (its passphrase is lost)")
    .option('--json', 'print one JSON line at the end')
    .action((archive: string, opts: RestoreCliOptions) => restoreCommand(archive, opts));
}

interface BackupCliOptions {
  config?: string;
  to?: string;
  includeSecrets?: boolean;
  json?: boolean;
}

/** `--max-unpacked-size`: the gzip-bomb limit of verify and restore. */
function maxUnpackedOption(): Option {
  return new Option(
    '--max-unpacked-size <size>',
    `stop if the archive unpacks to more than this (e.g. 64GiB; default ${formatSize(DEFAULT_MAX_UNPACKED).replace(' ', '')})`,
  ).argParser((text: string) => {
    const n = parseSize(text);
    if (n === undefined) {
      throw new InvalidArgumentError('give a size such as 64GiB, 500MiB or a number of bytes');
    }
    return n;
  });
}

interface VerifyCliOptions {
  json?: boolean;
  maxUnpackedSize?: number;
}

interface RestoreCliOptions {
  configDir: string;
  dataDir?: string;
  maxUnpackedSize?: number;
  storage?: 'sqlite' | 'postgres';
  force?: boolean;
  withoutSecrets?: boolean;
  json?: boolean;
}

function failWith(command: string, err: unknown): void {
  const message = err instanceof BackupError ? err.message : `unexpected failure: ${reasonOf(err)}`;
  console.error(`hearth ${command}: ${message}`);
  process.exitCode = 1;
}

/** A signal mid-way removes what the run would leave behind, then exits 1. */
function cleanUpOnSignals(command: string, cleanUp: () => void, what: string): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      console.error(`hearth ${command}: stopped by ${signal}; ${what}`);
      process.exit(1);
    });
  }
}

async function backupCommand(opts: BackupCliOptions): Promise<void> {
  const path = configPath(opts.config);
  let config: HearthConfig;
  try {
    config = loadConfigFile(path, { drivers });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    failWith(
      'backup',
      new BackupError(`the config ${path} has problems; fix them first (\`hearth check\` lists them)`),
    );
    return;
  }
  cleanUpOnSignals('backup', removeLeftovers, 'no archive was written');
  try {
    const r = await runBackup({
      config,
      ...(opts.to === undefined ? {} : { to: resolve(opts.to) }),
      includeSecrets: opts.includeSecrets ?? false,
      say: (line) => process.stderr.write(line.startsWith('\r') ? line : `hearth backup: ${line}\n`),
      tty: process.stderr.isTTY === true,
    });
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ archive: r.archive, bytes: r.bytes, createdAt: r.createdAt, rows: r.rows, mediaFiles: r.mediaFiles })}\n`,
      );
    } else {
      const rows = Object.values(r.rows).reduce((a, b) => a + b, 0);
      console.log(
        `wrote ${r.archive} (${formatBytes(r.bytes)}): ${rows} rows, ${r.mediaFiles} media file(s)${opts.includeSecrets ? ', the secrets file (encrypted)' : ''}; checked, in ${(r.durationMs / 1000).toFixed(1)} s`,
      );
    }
  } catch (err) {
    failWith('backup', err);
  }
}

async function verifyCommand(archive: string, opts: VerifyCliOptions): Promise<void> {
  try {
    const v = await verifyArchive(
      archive,
      archive,
      opts.maxUnpackedSize === undefined ? {} : { maxUnpacked: opts.maxUnpackedSize },
    );
    // Where the archive's config would have a restore write is said before anyone restores it.
    for (const { setting, value } of pathsOutside(v.config.toString('utf8'))) {
      // Without secrets.enc a restore writes no secrets file: `secrets:` is only read.
      if (setting === 'secrets' && v.sealedSecrets === undefined) continue;
      console.error(
        `hearth backup verify: note: the config puts ${setting} at ${value}, outside its own folder; hearth restore writes only in --config-dir (and --data-dir if you name one), so it moves ${setting} under --config-dir unless --data-dir holds that path`,
      );
    }
    const m = v.manifest;
    // The passphrase is checked too when it is there; without it the rest is still checked.
    let secrets: 'none' | 'checked' | 'not checked' = 'none';
    if (v.sealedSecrets !== undefined) {
      if (process.env[PASSPHRASE_ENV]) {
        await decryptSecrets(
          v.sealedSecrets,
          passphraseFromEnv(process.env, 'secrets.enc is checked with a passphrase'),
        );
        secrets = 'checked';
      } else secrets = 'not checked';
    }
    const rows = Object.values(m.rows).reduce((a, b) => a + b, 0);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ archive: resolve(archive), ok: true, bytes: v.bytes, hearth: m.hearth, createdAt: m.createdAt, host: m.host, store: m.store, rows: m.rows, mediaFiles: v.mediaFiles, secrets })}\n`,
      );
      return;
    }
    const secretsNote =
      secrets === 'none'
        ? 'no secrets file'
        : secrets === 'checked'
          ? 'the secrets file (encrypted; the passphrase opens it)'
          : `the secrets file (encrypted; set ${PASSPHRASE_ENV} to check the passphrase too)`;
    console.log(
      `ok: ${archive} (${formatBytes(v.bytes)}), made by hearth ${m.hearth} on ${m.host} at ${m.createdAt}: the config ${m.config}, a ${m.store.kind} store (schema ${m.store.schema}) of ${rows} rows, ${v.mediaFiles} media file(s), ${secretsNote}; every checksum matches`,
    );
  } catch (err) {
    failWith('backup verify', err);
  }
}

async function restoreCommand(archive: string, opts: RestoreCliOptions): Promise<void> {
  cleanUpOnSignals(
    'restore',
    removeRestoreLeftovers,
    'the restore did not finish; run it again with --force',
  );
  try {
    const r = await runRestore({
      archive,
      configDir: resolve(opts.configDir),
      ...(opts.dataDir === undefined ? {} : { dataDir: resolve(opts.dataDir) }),
      ...(opts.maxUnpackedSize === undefined ? {} : { maxUnpacked: opts.maxUnpackedSize }),
      ...(opts.storage === undefined ? {} : { storage: opts.storage }),
      force: opts.force ?? false,
      withoutSecrets: opts.withoutSecrets ?? false,
    });
    for (const m of r.moved) {
      console.error(
        `hearth restore: the archive's config put ${m.setting} at ${m.from}, outside --config-dir${opts.dataDir === undefined ? '' : ' and --data-dir'}: restored to ${m.to} instead, and the restored config says ${m.setting}: ${m.value}. Restore never writes where an archive alone says; if ${m.from} is where you want it, restore again with --force and --data-dir naming a folder that holds it`,
      );
    }
    for (const line of r.warnings) console.error(line);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ config: r.config, store: r.store, rows: r.rows, mediaDir: r.mediaDir, mediaFiles: r.mediaFiles, secrets: r.secrets ?? null, moved: r.moved, durationMs: r.durationMs })}\n`,
      );
      return;
    }
    console.log(
      `restored ${archive} (made by hearth ${r.from.hearth} on ${r.from.host} at ${r.from.createdAt}) in ${(r.durationMs / 1000).toFixed(1)} s:`,
    );
    console.log(`  config   ${r.config}`);
    console.log(
      `  store    ${r.store} (${r.rows} rows${r.from.kind !== kindOf(r.store) ? `, from ${r.from.kind}` : ''})`,
    );
    console.log(`  media    ${r.mediaDir} (${r.mediaFiles} file(s))`);
    if (r.secrets !== undefined) console.log(`  secrets  ${r.secrets} (mode 0600)`);
    console.log(`start it: hearth start --config ${r.config}`);
  } catch (err) {
    failWith('restore', err);
  }
}

function kindOf(store: string): 'sqlite' | 'postgres' {
  return store.startsWith('postgres ') ? 'postgres' : 'sqlite';
}
