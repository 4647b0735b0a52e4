import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { HearthError, reasonOf } from '../../core/errors.js';
import { KyselyStore } from '../kysely-store.js';
import type { Database } from '../schema.js';
import type { Store } from '../store.js';

/**
 * Opens (creating if needed) the SQLite store. WAL lets readers run beside the writer;
 * synchronous=FULL makes every commit survive a power cut, not only a crash: writes are
 * button presses and commands, rare enough that the fsync costs nothing a person notices.
 */
export async function openSqliteStore(path: string): Promise<Store> {
  let sqlite: SQLite.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    throw new HearthError('HEARTH_ERR_STORE', `cannot open SQLite database ${path}: ${reasonOf(err)}`, {
      cause: err,
    });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return KyselyStore.open(db, path);
}
