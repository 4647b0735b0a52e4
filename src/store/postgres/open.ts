import { HearthError, reasonOf } from '../../core/errors.js';
import { redactText } from '../redact.js';
import type { AutomationRun, ButtonPressResult, Store, StoredState } from '../store.js';
import { postgresBackup } from './backup.js';
import { postgresCluster } from './cluster.js';
import { postgresConfigStacks } from './configstacks.js';
import { Db, isConnectionError, type PostgresOptions } from './db.js';
import { postgresHistory } from './history.js';
import { postgresMigrations } from './migrations.js';
import { postgresSessions } from './sessions.js';

export type { PostgresOptions } from './db.js';

/** Runs kept per automation, as on SQLite. */
const RUNS_KEPT = 500;
/** Any constant: every hearth migrating this database takes the same advisory lock. */
const MIGRATION_LOCK = 0x6865617274;
/** Another: every process creating a button takes it, so the count of buttons and the insert are one step. */
const NEW_BUTTON_LOCK = 0x627574746f6e;

interface Row {
  id: string;
  kind: string;
  state: unknown;
  updated_at: number;
}

interface RunRow {
  id: number;
  automation: string;
  trigger: string;
  started_at: number;
  ended_at: number | null;
  outcome: string;
  error: string | null;
}

const toStored = (row: Row): StoredState => ({
  id: row.id,
  kind: row.kind,
  state: row.state,
  updatedAt: row.updated_at,
});

const STATE_COLUMNS = 'id, kind, state, updated_at::float8 AS updated_at';
const RUN_COLUMNS =
  'id::float8 AS id, automation, trigger, started_at::float8 AS started_at, ended_at::float8 AS ended_at, outcome, error';

/**
 * Opens the PostgreSQL store and brings its schema up to date. Only ever loaded by dynamic
 * import (see ../open.ts), so one box on SQLite never loads `pg`. Opening keeps trying for
 * `openTimeoutMs` while the database is unreachable (a cluster where hearth starts first), then
 * fails with a message that says where it looked and what to do.
 */
export async function openPostgresStore(options: PostgresOptions): Promise<Store> {
  // Imported here, not at the top: the bundle keeps `pg` outside (scripts/build.mjs), and a
  // static import would be hoisted to the bundle's top and load it on every start.
  const { default: driver } = await import('pg');
  const db = new Db(driver, options);
  try {
    await migrate(db, options);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  const q = db.query.bind(db);
  // One statement for the row and the pruning. A run under way or waiting keeps its row, so a
  // storm of skipped triggers cannot erase the run they were skipped for.
  const insertRun = async (
    automation: string,
    trigger: string,
    at: number,
    endedAt: number | null,
    outcome: string,
    error: string | null,
  ): Promise<number> => {
    const rows = await q<{ id: number }>(
      `WITH run AS (
         INSERT INTO automation_run (automation, trigger, started_at, ended_at, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
       ), pruned AS (
         DELETE FROM automation_run WHERE automation = $1 AND outcome NOT IN ('running', 'queued') AND id <= (
           SELECT id FROM automation_run WHERE automation = $1 ORDER BY id DESC LIMIT 1 OFFSET $7
         )
       )
       SELECT id::float8 AS id FROM run`,
      [
        automation,
        trigger,
        Math.round(at),
        endedAt === null ? null : Math.round(endedAt),
        outcome,
        error,
        RUNS_KEPT - 1,
      ],
      { idempotent: false, what: `record a run of ${automation}` },
    );
    return (rows[0] as { id: number }).id;
  };
  return {
    kind: 'postgres',
    ...postgresCluster(db),
    sessions: postgresSessions(db),
    configstacks: postgresConfigStacks(db),
    history: postgresHistory(db),
    backup: postgresBackup(db),
    states: {
      async get(id) {
        const rows = await q<Row>(`SELECT ${STATE_COLUMNS} FROM entity_state WHERE id = $1`, [id], {
          idempotent: true,
          what: `read the state of ${id}`,
        });
        return rows[0] && toStored(rows[0]);
      },
      async put(s) {
        await q(
          `INSERT INTO entity_state (id, kind, state, updated_at) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, updated_at = excluded.updated_at`,
          [s.id, s.kind, JSON.stringify(s.state), Math.round(s.updatedAt)],
          { idempotent: true, what: `save the state of ${s.id}` },
        );
      },
      async pressButton(p, limit) {
        // The usual press, of a button that exists: one statement, which also reads the state
        // it replaces.
        const updated = await q<Row>(
          `UPDATE entity_state AS e SET kind = 'button', state = $2::jsonb, updated_at = $3
             FROM (SELECT id, kind, state, updated_at FROM entity_state WHERE id = $1 FOR UPDATE) AS old
            WHERE e.id = old.id
           RETURNING old.id, old.kind, old.state, old.updated_at::float8 AS updated_at`,
          [p.id, JSON.stringify(p.state), Math.round(p.updatedAt)],
          { idempotent: true, what: `save the state of ${p.id}` },
        );
        if (updated[0]) return { recorded: true, previous: toStored(updated[0]) };
        // A new button: counted and inserted under one lock, so replicas creating buttons at once
        // take turns and the cap holds. Retried whole: a retry after a commit finds the row.
        return db.transaction(
          async (tq): Promise<ButtonPressResult> => {
            await tq('SELECT pg_advisory_xact_lock($1)', [NEW_BUTTON_LOCK]);
            const [before] = await tq<Row>(`SELECT ${STATE_COLUMNS} FROM entity_state WHERE id = $1`, [p.id]);
            if (!before && !limit.declared.includes(p.id)) {
              const [count] = await tq<{ n: number }>(
                `SELECT count(*)::int AS n FROM entity_state WHERE kind = 'button' AND NOT (id = ANY($1::text[]))`,
                [limit.declared],
              );
              const n = count?.n ?? 0;
              if (n >= limit.maxUndeclared) return { recorded: false, full: n };
            }
            await tq(
              `INSERT INTO entity_state (id, kind, state, updated_at) VALUES ($1, 'button', $2::jsonb, $3)
               ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, updated_at = excluded.updated_at`,
              [p.id, JSON.stringify(p.state), Math.round(p.updatedAt)],
            );
            return { recorded: true, previous: before && toStored(before) };
          },
          { idempotent: true, what: `save the state of ${p.id}` },
        );
      },
      async list(kind) {
        const rows =
          kind === undefined
            ? await q<Row>(`SELECT ${STATE_COLUMNS} FROM entity_state ORDER BY id`, [], {
                idempotent: true,
                what: 'list states',
              })
            : await q<Row>(`SELECT ${STATE_COLUMNS} FROM entity_state WHERE kind = $1 ORDER BY id`, [kind], {
                idempotent: true,
                what: `list states of kind ${kind}`,
              });
        return rows.map(toStored);
      },
      async delete(id) {
        // Retried after a lost reply, a delete that did commit answers false: the row is gone either way.
        const rows = await q('DELETE FROM entity_state WHERE id = $1 RETURNING 1', [id], {
          idempotent: true,
          what: `delete the state of ${id}`,
        });
        return rows.length > 0;
      },
    },
    automations: {
      async start(automation, trigger, startedAt, outcome = 'running') {
        // Not retried after it was sent: a lost reply after the commit would record the run twice.
        return insertRun(automation, trigger, startedAt, null, outcome, null);
      },
      async begin(id, startedAt) {
        await q(
          "UPDATE automation_run SET outcome = 'running', started_at = $1 WHERE id = $2 AND outcome = 'queued'",
          [Math.round(startedAt), id],
          { idempotent: true, what: `record the start of queued run ${id}` },
        );
      },
      async record(automation, trigger, at, outcome, error) {
        const id = await insertRun(automation, trigger, at, at, outcome, error);
        return { id, automation, trigger, startedAt: at, endedAt: at, outcome, error };
      },
      async finish(id, outcome, endedAt, error) {
        await q(
          'UPDATE automation_run SET outcome = $1, ended_at = $2, error = $3 WHERE id = $4',
          [outcome, Math.round(endedAt), error, id],
          { idempotent: true, what: `record the end of run ${id}` },
        );
      },
      async runs(automation, limit) {
        const rows = await q<RunRow>(
          `SELECT ${RUN_COLUMNS} FROM automation_run WHERE automation = $1 ORDER BY id DESC LIMIT $2`,
          [automation, limit],
          { idempotent: true, what: `list the runs of ${automation}` },
        );
        return rows.map((r) => ({
          id: r.id,
          automation: r.automation,
          trigger: r.trigger,
          startedAt: r.started_at,
          endedAt: r.ended_at,
          outcome: r.outcome as AutomationRun['outcome'],
          error: r.error,
        }));
      },
      async getMark(automation) {
        const rows = await q<{ at: number }>(
          'SELECT at::float8 AS at FROM automation_mark WHERE automation = $1',
          [automation],
          { idempotent: true, what: `read the schedule mark of ${automation}` },
        );
        return rows[0]?.at;
      },
      async setMark(automation, at) {
        await q(
          'INSERT INTO automation_mark (automation, at) VALUES ($1, $2) ON CONFLICT (automation) DO UPDATE SET at = excluded.at',
          [automation, Math.round(at)],
          { idempotent: true, what: `save the schedule mark of ${automation}` },
        );
      },
    },
    close: () => db.close(),
  };
}

/**
 * Applies the missing migrations in one transaction under an advisory lock: two processes
 * opening at once take turns, and the second finds nothing left to do.
 */
async function migrate(db: Db, options: PostgresOptions): Promise<void> {
  const deadline = Date.now() + (options.openTimeoutMs ?? 5000);
  for (;;) {
    try {
      await migrateOnce(db);
      return;
    } catch (err) {
      if (err instanceof HearthError) throw err;
      if (isConnectionError(err) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      throw openError(db, options.url, err);
    }
  }
}

async function migrateOnce(db: Db): Promise<void> {
  // Its 'error' events are heard by the listener Db puts on every connection.
  const client = await db.pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS hearth_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = Number(
      (await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::int AS v FROM hearth_schema'))
        .rows[0]?.v ?? 0,
    );
    if (done > postgresMigrations.length) {
      throw new HearthError(
        'HEARTH_ERR_STORE',
        `the PostgreSQL database at ${db.where} was written by a newer hearth (schema ${done}, this one knows ${postgresMigrations.length})`,
        { hint: 'Run the newer hearth, or restore a backup made by this version.' },
      );
    }
    for (let i = done; i < postgresMigrations.length; i++) {
      await client.query(postgresMigrations[i] as string);
      await client.query('INSERT INTO hearth_schema (version) VALUES ($1)', [i + 1]);
    }
    await client.query('COMMIT');
  } catch (err) {
    if (isConnectionError(err)) broken = err as Error;
    else await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release(broken);
  }
}

function openError(db: Db, url: string, err: unknown): HearthError {
  const reason = redactText(reasonOf(err), url);
  const code = (err as { code?: unknown }).code;
  if (code === '28P01' || code === '28000') {
    return new HearthError(
      'HEARTH_ERR_STORE',
      `PostgreSQL at ${db.where} refused the login (${reason}): check the user and password in storage.postgres.url`,
      { cause: err },
    );
  }
  if (code === '3D000') {
    return new HearthError(
      'HEARTH_ERR_STORE',
      `PostgreSQL at ${db.where} has no such database (${reason}): create it (createdb) or fix the database name in storage.postgres.url`,
      { cause: err },
    );
  }
  if (isConnectionError(err)) {
    return new HearthError(
      'HEARTH_ERR_STORE_UNAVAILABLE',
      `cannot reach PostgreSQL at ${db.where} (${reason}): check that PostgreSQL is running there and that storage.postgres.url names the right host and port`,
      { cause: err },
    );
  }
  return new HearthError('HEARTH_ERR_STORE', `cannot open the PostgreSQL store at ${db.where}: ${reason}`, {
    cause: err,
  });
}
