import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { HearthError, reasonOf } from '../../core/errors.js';
import type { Store, StoredState } from '../store.js';
import { sqliteMigrations } from './migrations.js';

interface Row {
  id: string;
  kind: string;
  state: string;
  updated_at: number;
}

const toStored = (row: Row): StoredState => ({
  id: row.id,
  kind: row.kind,
  state: JSON.parse(row.state) as unknown,
  updatedAt: row.updated_at,
});

/**
 * Opens (creating if needed) the SQLite store and brings its schema up to date. WAL lets
 * readers run beside the writer; synchronous=FULL makes every commit survive a power cut, not
 * only a crash: writes are button presses, rare enough that the fsync costs nothing a person
 * notices. better-sqlite3 is synchronous, so a resolved write is already on disk.
 */
export async function openSqliteStore(path: string): Promise<Store> {
  let db: SQLite.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new SQLite(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    migrate(db, path);
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw new HearthError('HEARTH_ERR_STORE', `cannot open SQLite database ${path}: ${reasonOf(err)}`, {
      cause: err,
    });
  }
  const get = db.prepare<[string], Row>('SELECT id, kind, state, updated_at FROM entity_state WHERE id = ?');
  const put = db.prepare<[string, string, string, number]>(
    `INSERT INTO entity_state (id, kind, state, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, updated_at = excluded.updated_at`,
  );
  const all = db.prepare<[], Row>('SELECT id, kind, state, updated_at FROM entity_state ORDER BY id');
  const byKind = db.prepare<[string], Row>(
    'SELECT id, kind, state, updated_at FROM entity_state WHERE kind = ? ORDER BY id',
  );
  return {
    states: {
      async get(id) {
        const row = get.get(id);
        return row ? toStored(row) : undefined;
      },
      async put(s) {
        put.run(s.id, s.kind, JSON.stringify(s.state), s.updatedAt);
      },
      async list(kind) {
        return (kind === undefined ? all.all() : byKind.all(kind)).map(toStored);
      },
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

function migrate(db: SQLite.Database, path: string): void {
  const done = db.pragma('user_version', { simple: true }) as number;
  if (done > sqliteMigrations.length) {
    throw new HearthError(
      'HEARTH_ERR_STORE',
      `${path} was written by a newer hearth (schema ${done}, this one knows ${sqliteMigrations.length})`,
      { hint: 'Run the newer hearth, or restore a backup made by this version.' },
    );
  }
  for (let i = done; i < sqliteMigrations.length; i++) {
    const sql = sqliteMigrations[i] as string;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${i + 1}`);
    })();
  }
}
