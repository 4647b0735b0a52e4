import { setImmediate as nextTurn } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { HearthError, reasonOf } from '../../core/errors.js';
import {
  BACKUP_COLUMNS,
  checkChunkRows,
  DEFAULT_CHUNK_ROWS,
  feedChunks,
  notEmptyError,
} from '../backup-rows.js';
import { BACKUP_TABLES, type BackupStore, type BackupTable, type DumpChunk } from '../store.js';

/** Each table's primary key on SQLite: the order of a dump, and its keyset. */
const KEYS: Record<BackupTable, readonly string[]> = {
  entity_state: ['id'],
  automation_run: ['id'],
  automation_mark: ['automation'],
  history_raw: ['at', 'entity', 'seq'],
  history_agg: ['entity', 'at'],
};

/** Rows per INSERT on load: 200 rows of 7 columns stay far below SQLite's 32766 variables. */
const BATCH_ROWS = 200;

/** The page cache while loading, in KiB as `PRAGMA cache_size` takes it (negative). */
const LOAD_CACHE_KIB = -64 * 1024;

type Row = Record<string, unknown>;

const names = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(', ');

/** The first page of `table`, and the page after a row's key. */
function pageSql(table: BackupTable): { first: string; next: string } {
  const cols = names(BACKUP_COLUMNS[table].map((c) => c.name));
  const keys = names(KEYS[table]);
  const marks = KEYS[table].map(() => '?').join(', ');
  return {
    first: `SELECT ${cols} FROM ${table} ORDER BY ${keys} LIMIT ?`,
    next: `SELECT ${cols} FROM ${table} WHERE (${keys}) > (${marks}) ORDER BY ${keys} LIMIT ?`,
  };
}

/** A row as read into the canonical form (../backup-rows.ts): only the state needs parsing. */
const canonical = (table: BackupTable, row: Row): Row =>
  table === 'entity_state' ? { ...row, state: JSON.parse(row.state as string) as unknown } : row;

/**
 * Backup and restore of the kept tables on SQLite (see ../store.ts BackupStore and
 * ../backup-rows.ts for the rows). `db` is the store's own connection.
 *
 * dump() reads through a connection of its own, read-only, in one read transaction: in WAL
 * mode that is a snapshot, and the store's writes go on beside it. Only a database without a
 * file (':memory:') is read through `db`, all at once, since nothing else can open it.
 *
 * load() writes through `db` in one transaction (BEGIN IMMEDIATE), held while the chunks are
 * read: it is for a store nobody else writes meanwhile (hearth restore runs with hearth
 * stopped); a write of this process in that time would join the transaction.
 */
export function sqliteBackup(db: SQLite.Database): BackupStore {
  const where = db.memory ? 'the SQLite store' : `the SQLite store ${db.name}`;
  const fail = (what: string, err: unknown): HearthError =>
    err instanceof HearthError
      ? err
      : new HearthError('HEARTH_ERR_STORE', `cannot ${what} ${where}: ${reasonOf(err)}`, { cause: err });
  /** A step of load(): the database's refusal says which step, and that nothing was restored. */
  const step = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof HearthError) throw err;
      throw new HearthError(
        'HEARTH_ERR_STORE',
        `cannot ${what} ${where}: ${reasonOf(err)}; nothing was restored`,
        { cause: err },
      );
    }
  };

  const counts = (): Record<BackupTable, number> => {
    const out = {} as Record<BackupTable, number>;
    for (const t of BACKUP_TABLES) {
      out[t] = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    }
    return out;
  };

  const inserts = new Map<string, SQLite.Statement>();
  const insert = (table: BackupTable, rows: unknown[][]): void => {
    const key = `${table}/${rows.length}`;
    const cols = BACKUP_COLUMNS[table];
    const tuple = `(${cols.map(() => '?').join(', ')})`;
    const stmt =
      inserts.get(key) ??
      db.prepare(
        `INSERT INTO ${table} (${names(cols.map((c) => c.name))}) VALUES ${Array(rows.length).fill(tuple).join(', ')}`,
      );
    inserts.set(key, stmt);
    step(`restore the rows of ${table} into`, () => stmt.run(rows.flat()));
  };

  return {
    async schemaVersion() {
      return db.pragma('user_version', { simple: true }) as number;
    },

    async isEmpty() {
      return BACKUP_TABLES.every((t) => db.prepare(`SELECT 1 FROM ${t} LIMIT 1`).get() === undefined);
    },

    async *dump(chunkRows = DEFAULT_CHUNK_ROWS): AsyncGenerator<DumpChunk> {
      checkChunkRows(chunkRows);
      if (db.memory) {
        yield* dumpAtOnce(db, chunkRows);
        return;
      }
      let reader: SQLite.Database;
      try {
        reader = new SQLite(db.name, { readonly: true, fileMustExist: true });
        reader.pragma('busy_timeout = 5000');
        // Deferred: the snapshot is taken by the first SELECT and held until the end.
        reader.exec('BEGIN');
      } catch (err) {
        throw fail('read', err);
      }
      try {
        for (const table of BACKUP_TABLES) {
          const sql = pageSql(table);
          const first = reader.prepare(sql.first);
          const next = reader.prepare(sql.next);
          let rows = first.all(chunkRows) as Row[];
          while (rows.length > 0) {
            yield { table, rows: rows.map((r) => canonical(table, r)) };
            if (rows.length < chunkRows) break;
            const last = rows.at(-1) as Row;
            // Let hearth's other work run between chunks: a big dump never holds the loop long.
            await nextTurn();
            rows = next.all(...KEYS[table].map((k) => last[k]), chunkRows) as Row[];
          }
        }
      } catch (err) {
        throw fail('read', err);
      } finally {
        // Also when the consumer stops early: the snapshot is let go at once.
        if (reader.inTransaction) reader.exec('ROLLBACK');
        reader.close();
      }
    },

    async load(chunks, { replace }) {
      if (db.inTransaction) {
        throw new HearthError('HEARTH_ERR_STORE', `cannot restore into ${where}: it is in a transaction`);
      }
      step('restore into', () => db.exec('BEGIN IMMEDIATE'));
      // A bigger page cache while loading: rows that do not come in this table's key order
      // (history_raw from PostgreSQL) land all over the b-tree, and with the default 2 MiB
      // inserts keep re-reading pages (1 million rows from PostgreSQL loaded in 25 s, not 14).
      const cacheSize = db.pragma('cache_size', { simple: true }) as number;
      db.pragma(`cache_size = ${LOAD_CACHE_KIB}`);
      try {
        step('empty', () => {
          if (replace) {
            for (const t of BACKUP_TABLES) db.exec(`DELETE FROM ${t}`);
          } else {
            const held = counts();
            if (BACKUP_TABLES.some((t) => held[t] > 0)) throw notEmptyError(held, where);
          }
        });
        // Errors of the chunks' reader (the archive) come through as they are.
        const rows = await feedChunks(chunks, BATCH_ROWS, insert);
        step('finish restoring into', () => {
          // Run ids go on from the largest one loaded, as if the runs had been recorded here.
          const max = (db.prepare('SELECT max(id) AS m FROM automation_run').get() as { m: number | null }).m;
          db.prepare("DELETE FROM sqlite_sequence WHERE name = 'automation_run'").run();
          if (max !== null) {
            db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('automation_run', ?)").run(max);
          }
          db.exec('COMMIT');
        });
        return { rows };
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      } finally {
        db.pragma(`cache_size = ${cacheSize}`);
      }
    },
  };
}

/**
 * A database without a file has no second connection: it is read whole in one synchronous go
 * (nothing else runs meanwhile, so it is one snapshot), then handed out in chunks.
 */
async function* dumpAtOnce(db: SQLite.Database, chunkRows: number): AsyncGenerator<DumpChunk> {
  const tables = BACKUP_TABLES.map((table) => {
    const cols = names(BACKUP_COLUMNS[table].map((c) => c.name));
    const rows = db.prepare(`SELECT ${cols} FROM ${table} ORDER BY ${names(KEYS[table])}`).all() as Row[];
    return { table, rows };
  });
  for (const { table, rows } of tables) {
    for (let i = 0; i < rows.length; i += chunkRows) {
      if (i > 0) await nextTurn();
      yield { table, rows: rows.slice(i, i + chunkRows).map((r) => canonical(table, r)) };
    }
  }
}
