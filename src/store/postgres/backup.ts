import type pg from 'pg';
import { HearthError } from '../../core/errors.js';
import {
  BACKUP_COLUMNS,
  type BackupColumn,
  checkChunkRows,
  DEFAULT_CHUNK_ROWS,
  feedChunks,
  notEmptyError,
} from '../backup-rows.js';
import { BACKUP_TABLES, type BackupStore, type BackupTable, type DumpChunk } from '../store.js';
import { type Db, isConnectionError, isTimeout } from './db.js';

/** Each table's primary key on PostgreSQL: the order of a dump, and its keyset. */
const KEYS: Record<BackupTable, readonly string[]> = {
  entity_state: ['id'],
  automation_run: ['id'],
  automation_mark: ['automation'],
  history_raw: ['entity', 'at', 'seq'],
  history_agg: ['entity', 'at'],
};

/** Rows per INSERT on load: one array per column (unnest), so no limit on parameters. */
const BATCH_ROWS = 5000;

type Row = Record<string, unknown>;

const names = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(', ');

/** bigint comes back as float8: a number, exact below 2^53 (as everywhere in this store). */
const selectList = (table: BackupTable) =>
  BACKUP_COLUMNS[table]
    .map((c) => (c.type === 'int' ? `"${c.name}"::float8 AS "${c.name}"` : `"${c.name}"`))
    .join(', ');

/**
 * The first page of `table`, and the page after a row's key. The key is named through the
 * table (`t.`): a bare `at` in ORDER BY would be the float8 output column, and sorting by it
 * reads a whole entity's rows for every page instead of following the primary key.
 */
function pageSql(table: BackupTable): { first: string; next: string } {
  const keys = KEYS[table].map((k) => `t."${k}"`).join(', ');
  const marks = KEYS[table].map((_, i) => `$${i + 1}`).join(', ');
  const from = `SELECT ${selectList(table)} FROM ${table} t`;
  return {
    first: `${from} ORDER BY ${keys} LIMIT $1`,
    next: `${from} WHERE (${keys}) > (${marks}) ORDER BY ${keys} LIMIT $${KEYS[table].length + 1}`,
  };
}

const ARRAY_TYPES: Record<BackupColumn['type'], string> = {
  text: 'text[]',
  id: 'text[]',
  outcome: 'text[]',
  json: 'text[]',
  int: 'bigint[]',
  real: 'float8[]',
};

/** One INSERT of many rows: a parameter per column (an array), unnested into rows. */
function insertSql(table: BackupTable): string {
  const cols = BACKUP_COLUMNS[table];
  const arrays = cols.map((c, i) => `$${i + 1}::${ARRAY_TYPES[c.type]}`).join(', ');
  const values = cols.map((c) => (c.type === 'json' ? `"${c.name}"::jsonb` : `"${c.name}"`)).join(', ');
  // Run ids are kept as they were; the identity is moved past them at the end.
  const override = table === 'automation_run' ? ' OVERRIDING SYSTEM VALUE' : '';
  return `INSERT INTO ${table} (${names(cols.map((c) => c.name))})${override}
    SELECT ${values} FROM unnest(${arrays}) AS u(${names(cols.map((c) => c.name))})`;
}

/**
 * Backup and restore of the kept tables on PostgreSQL (see ../store.ts BackupStore and
 * ../backup-rows.ts for the rows). Each of dump() and load() takes a connection of its own from
 * the pool for its one transaction; the store's other statements go on beside it.
 *
 * dump(): REPEATABLE READ READ ONLY, so every page comes from the snapshot of the first one,
 * and writers are never blocked. load(): one transaction; with `replace` the tables are
 * truncated inside it (others wait for the commit), without it they are locked against writes
 * (EXCLUSIVE: reads go on) and checked empty before anything is written.
 */
export function postgresBackup(db: Db): BackupStore {
  const where = `the PostgreSQL store at ${db.where}`;

  /**
   * A connection of its own for one transaction. `run` runs a statement on it; a refusal says
   * what it was doing, and `after` (load: nothing was restored). `end` gives the connection
   * back, rolled back if `open`, destroyed if it broke.
   */
  const connect = async (what: string, after?: string) => {
    let client: pg.PoolClient;
    try {
      client = await db.pool.connect();
    } catch (err) {
      throw db.failure({ what, idempotent: false }, err, true);
    }
    // A connection that breaks while checked out emits 'error' besides failing the statement.
    const onError = () => {};
    client.on('error', onError);
    let broken = false;
    return {
      async run<R extends pg.QueryResultRow>(
        sql: string,
        values: unknown[] = [],
        doing = what,
      ): Promise<R[]> {
        try {
          return (await client.query<R>(sql, values)).rows;
        } catch (err) {
          if (isConnectionError(err) || isTimeout(err)) broken = true;
          const failure = db.failure({ what: doing, idempotent: false }, err);
          // A broken connection already says that nothing was saved.
          if (after === undefined || failure.code !== 'HEARTH_ERR_STORE') throw failure;
          throw new HearthError(failure.code, `${failure.message}; ${after}`, { cause: err });
        }
      },
      async end(open: boolean) {
        if (open && !broken) await client.query('ROLLBACK').catch(() => {});
        client.off('error', onError);
        client.release(broken ? true : undefined);
      },
    };
  };

  return {
    async schemaVersion() {
      const rows = await db.query<{ v: number }>(
        'SELECT coalesce(max(version), 0)::int AS v FROM hearth_schema',
        [],
        { idempotent: true, what: 'read the schema version' },
      );
      return rows[0]?.v ?? 0;
    },

    async isEmpty() {
      const rows = await db.query<{ empty: boolean }>(
        `SELECT NOT (${BACKUP_TABLES.map((t) => `EXISTS (SELECT 1 FROM ${t})`).join(' OR ')}) AS empty`,
        [],
        { idempotent: true, what: 'check whether the store is empty' },
      );
      return rows[0]?.empty === true;
    },

    async *dump(chunkRows = DEFAULT_CHUNK_ROWS): AsyncGenerator<DumpChunk> {
      checkChunkRows(chunkRows);
      const c = await connect('read the store for a backup');
      let open = false;
      try {
        await c.run('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        open = true;
        for (const table of BACKUP_TABLES) {
          const sql = pageSql(table);
          let rows = await c.run<Row>(sql.first, [chunkRows]);
          while (rows.length > 0) {
            yield { table, rows };
            if (rows.length < chunkRows) break;
            const last = rows.at(-1) as Row;
            rows = await c.run<Row>(sql.next, [...KEYS[table].map((k) => last[k]), chunkRows]);
          }
        }
        await c.run('COMMIT');
        open = false;
      } finally {
        // Also when the consumer stops early: the snapshot and the connection are let go at once.
        await c.end(open);
      }
    },

    async load(chunks, { replace }) {
      const c = await connect('restore the backup', 'nothing was restored');
      let open = false;
      try {
        await c.run('BEGIN');
        open = true;
        const tables = BACKUP_TABLES.join(', ');
        if (replace) {
          await c.run(`TRUNCATE ${tables}`);
        } else {
          await c.run(`LOCK TABLE ${tables} IN EXCLUSIVE MODE`);
          const [held] = await c.run<Record<BackupTable, number>>(
            `SELECT ${BACKUP_TABLES.map((t) => `(SELECT count(*) FROM ${t})::float8 AS ${t}`).join(', ')}`,
          );
          if (held && BACKUP_TABLES.some((t) => held[t] > 0)) throw notEmptyError(held, where);
        }
        // Errors of the chunks' reader (the archive) come through as they are.
        const rows = await feedChunks(chunks, BATCH_ROWS, async (table, batch) => {
          const columns = BACKUP_COLUMNS[table].map((_, i) => batch.map((r) => r[i]));
          await c.run(insertSql(table), columns, `restore the rows of ${table}`);
        });
        // Run ids go on from the largest one loaded, as if the runs had been recorded here.
        // ALTER (unlike setval) is undone with the transaction if it rolls back.
        const [last] = await c.run<{ m: number | null }>('SELECT max(id)::float8 AS m FROM automation_run');
        await c.run(`ALTER TABLE automation_run ALTER COLUMN id RESTART WITH ${(last?.m ?? 0) + 1}`);
        await c.run('COMMIT');
        open = false;
        return { rows };
      } finally {
        await c.end(open);
      }
    },
  };
}
