import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { asConfigError } from '../config/errors.js';
import { type HearthConfig, loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { drivers } from '../drivers/index.js';
import { openStore } from '../store/open.js';
import { redactSecrets } from '../store/redact.js';
import type { Store } from '../store/store.js';
import { configPath } from './config-path.js';

/** Exit codes of `hearth configstack`, beside 0 (done) and 1 (config or store problem). */
export const STACK_EXIT = { usage: 2, noFreeEntry: 3, lost: 4 } as const;

export interface StackOptions {
  config?: string;
  holder: string;
  ttl: string;
  out?: string;
  json?: boolean;
}

type Entry = Record<string, unknown>;

/** JSON with object keys sorted, so the hash does not depend on the order keys are written in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What a claim remembers of its entry: a change means the list was edited under the holder. */
export function entryHash(entry: Entry): string {
  return createHash('sha256').update(canonical(entry)).digest('hex').slice(0, 16);
}

function fail(what: string, message: string, code = 1): void {
  console.error(`hearth configstack ${what}: ${message}`);
  process.exitCode = code;
}

interface Loaded {
  config: HearthConfig;
  entries: Entry[];
}

/** Loads the config and finds the stack; says what is wrong and sets the exit code otherwise. */
function load(what: string, name: string, opts: { config?: string }): Loaded | undefined {
  const path = configPath(opts.config);
  let config: HearthConfig;
  try {
    config = loadConfigFile(path, { drivers });
  } catch (caught) {
    console.error(asConfigError(caught, path).message);
    process.exitCode = 1;
    return undefined;
  }
  const entries = Object.hasOwn(config.configstacks, name) ? config.configstacks[name] : undefined;
  if (!entries) {
    const known = Object.keys(config.configstacks);
    fail(
      what,
      `${path} has no configstack ${JSON.stringify(name)}; ${known.length > 0 ? `it has: ${known.join(', ')}` : 'add one under configstacks:'}`,
      STACK_EXIT.usage,
    );
    return undefined;
  }
  return { config, entries };
}

/** The holder's name: it goes into the database and messages, so printable and bounded. */
function checkHolder(what: string, holder: string): boolean {
  if (/^[\x21-\x7e]{1,253}$/.test(holder)) return true;
  fail(
    what,
    '--holder must be 1 to 253 printable characters without spaces, e.g. $HOSTNAME',
    STACK_EXIT.usage,
  );
  return false;
}

function ttlMs(what: string, ttl: string): number | undefined {
  const s = Number(ttl);
  if (/^\d+$/.test(ttl) && s >= 1 && s <= 86_400) return s * 1000;
  fail(
    what,
    `--ttl must be a whole number of seconds from 1 to 86400 (got ${JSON.stringify(ttl)})`,
    STACK_EXIT.usage,
  );
  return undefined;
}

async function withStore<T>(
  what: string,
  config: HearthConfig,
  fn: (store: Store) => Promise<T>,
): Promise<T | undefined> {
  let store: Store;
  try {
    store = await openStore(config.storage);
  } catch (err) {
    fail(what, reasonOf(err));
    return undefined;
  }
  try {
    return await fn(store);
  } catch (err) {
    fail(what, reasonOf(err));
    return undefined;
  } finally {
    await store.close().catch(() => {});
  }
}

/**
 * Written beside the target under a hidden name, then renamed: a reader sees the old file or the
 * new one. Mode 0600: the entry is the config after `${VAR}` and `!secret`, so it may hold a secret.
 */
function writeAtomically(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
}

export async function claim(name: string, opts: StackOptions): Promise<void> {
  const what = 'claim';
  const out = opts.out as string;
  const ttl = ttlMs(what, opts.ttl);
  if (ttl === undefined || !checkHolder(what, opts.holder)) return;
  const loaded = load(what, name, opts);
  if (!loaded) return;
  const { config, entries } = loaded;
  const hashes = entries.map(entryHash);
  await withStore(what, config, async (store) => {
    const grant = await store.configstacks.claim(name, opts.holder, hashes, ttl);
    if (!grant) {
      fail(
        what,
        `no free entry in the configstack ${name}: all ${entries.length} are held by live holders (\`hearth configstack list ${name}\` shows them); add an entry or stop a replica`,
        STACK_EXIT.noFreeEntry,
      );
      return;
    }
    const entry = entries[grant.index] as Entry;
    const header = `# configstacks.${name}[${grant.index}] of ${config.file}, claimed by ${opts.holder}\n`;
    try {
      writeAtomically(out, header + stringify(entry));
    } catch (err) {
      fail(what, `claimed ${name}[${grant.index}] but cannot write ${out}: ${reasonOf(err)}`);
      return;
    }
    console.log(`claimed ${name}[${grant.index}] for ${opts.holder}: wrote ${out}`);
    if (grant.previousHash !== null && grant.previousHash !== hashes[grant.index]) {
      console.log(
        `note: entry ${grant.index} of ${name} changed since ${opts.holder} last claimed it (the list was edited); ${out} has what the config says now`,
      );
    }
    console.log(
      `the claim runs out in ${ttl / 1000} s unless renewed: run \`hearth configstack hold ${name} --holder ${opts.holder}\` beside it`,
    );
  });
}

export async function hold(name: string, opts: StackOptions): Promise<void> {
  const what = 'hold';
  const ttl = ttlMs(what, opts.ttl);
  if (ttl === undefined || !checkHolder(what, opts.holder)) return;
  const loaded = load(what, name, opts);
  if (!loaded) return;
  const { config, entries } = loaded;
  let store: Store;
  try {
    store = await openStore(config.storage);
  } catch (err) {
    fail(what, reasonOf(err));
    return;
  }
  const lostMessage = `${opts.holder} holds no entry of the configstack ${name}: never claimed, released, taken by another holder after it ran out, or the list shrank past it; run \`hearth configstack claim\` first`;
  let first: Awaited<ReturnType<Store['configstacks']['renew']>>;
  try {
    first = await store.configstacks.renew(name, opts.holder, entries.length, ttl);
  } catch (err) {
    await store.close().catch(() => {});
    fail(what, reasonOf(err));
    return;
  }
  if (!first) {
    await store.close().catch(() => {});
    fail(what, lostMessage, STACK_EXIT.lost);
    return;
  }
  const index = first.index;
  const every = Math.max(250, Math.floor(ttl / 3));
  console.log(`holding ${name}[${index}] for ${opts.holder}; renewing every ${every / 1000} s`);

  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const stop = async (release: boolean, code: number) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    await inflight;
    if (release) {
      try {
        await store.configstacks.release(name, opts.holder);
        console.log(`released ${name}[${index}]`);
      } catch (err) {
        console.error(`hearth configstack hold: cannot release ${name}[${index}]: ${reasonOf(err)}`);
        code = 1;
      }
    }
    await store.close().catch(() => {});
    process.exitCode = code;
    done();
  };
  const renew = async () => {
    try {
      const grant = await store.configstacks.renew(name, opts.holder, entries.length, ttl);
      if (!grant || grant.index !== index) {
        console.error(`hearth configstack hold: lost ${name}[${index}]: ${lostMessage}`);
        void stop(false, STACK_EXIT.lost);
        return;
      }
    } catch (err) {
      // Tried again at the next tick; the claim lasts until its TTL runs out.
      console.error(
        `hearth configstack hold: cannot renew ${name}[${index}] (trying again): ${reasonOf(err)}`,
      );
    }
    if (!stopping) timer = setTimeout(tick, every);
  };
  const tick = () => {
    inflight = renew();
  };
  timer = setTimeout(tick, every);
  const onSignal = () => void stop(true, 0);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await finished;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
}

export async function release(name: string, opts: StackOptions): Promise<void> {
  const what = 'release';
  if (!checkHolder(what, opts.holder)) return;
  const loaded = load(what, name, opts);
  if (!loaded) return;
  await withStore(what, loaded.config, async (store) => {
    const had = await store.configstacks.release(name, opts.holder);
    console.log(
      had ? `released ${opts.holder}'s entry of ${name}` : `${opts.holder} held no entry of ${name}`,
    );
  });
}

export async function list(name: string, opts: { config?: string; json?: boolean }): Promise<void> {
  const what = 'list';
  const loaded = load(what, name, opts);
  if (!loaded) return;
  const { config, entries } = loaded;
  await withStore(what, config, async (store) => {
    const claims = await store.configstacks.list(name);
    const byIndex = new Map(claims.map((c) => [c.index, c]));
    const rows = entries.map((entry, index) => {
      const c = byIndex.get(index);
      return {
        index,
        holder: c?.held ? c.holder : null,
        expiresAt: c?.held ? c.expiresAt : null,
        changed: c?.held ? c.entryHash !== entryHash(entry) : false,
        // An entry holds its secrets substituted: only the claimed file, 0600, carries them.
        entry: redactSecrets(entry),
      };
    });
    if (opts.json) {
      console.log(JSON.stringify(rows, null, 2));
      return;
    }
    const cells = [
      ['index', 'holder', 'expires', 'entry'],
      ...rows.map((r) => [
        String(r.index),
        r.holder ?? '(free)',
        r.expiresAt === null ? '' : new Date(r.expiresAt).toISOString(),
        JSON.stringify(r.entry).slice(0, 60) + (r.changed ? ' (changed since claimed)' : ''),
      ]),
    ];
    const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => (c[i] as string).length)));
    console.log(
      cells
        .map((c) =>
          c
            .map((cell, i) => cell.padEnd(widths[i] ?? 0))
            .join('  ')
            .trimEnd(),
        )
        .join('\n'),
    );
  });
}
