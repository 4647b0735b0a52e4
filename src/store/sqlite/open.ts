import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { HearthError, reasonOf } from '../../core/errors.js';
import type {
  AutomationRun,
  ButtonLimit,
  ButtonPress,
  ButtonPressResult,
  Store,
  StoredState,
} from '../store.js';
import { sqliteBackup } from './backup.js';
import { sqliteCluster } from './cluster.js';
import { sqliteConfigStacks } from './configstacks.js';
import { sqliteHistory } from './history.js';
import { sqliteMigrations } from './migrations.js';
import { sqliteSessions } from './sessions.js';

/** Runs kept per automation: the newest; older ones are deleted as new ones are recorded. */
export const RUNS_KEPT = 500;

interface RunRow {
  id: number;
  automation: string;
  trigger: string;
  started_at: number;
  ended_at: number | null;
  outcome: string;
  error: string | null;
}

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
  const remove = db.prepare<[string]>('DELETE FROM entity_state WHERE id = ?');
  const undeclaredButtons = db.prepare<[string], { n: number }>(
    "SELECT count(*) AS n FROM entity_state WHERE kind = 'button' AND id NOT IN (SELECT value FROM json_each(?))",
  );
  // One transaction for the check and the write (one commit, as a put): the cap holds.
  const pressButton = db.transaction((p: ButtonPress, limit: ButtonLimit): ButtonPressResult => {
    const before = get.get(p.id);
    if (!before && !limit.declared.includes(p.id)) {
      const n = undeclaredButtons.get(JSON.stringify(limit.declared))?.n ?? 0;
      if (n >= limit.maxUndeclared) return { recorded: false, full: n };
    }
    put.run(p.id, 'button', JSON.stringify(p.state), p.updatedAt);
    return { recorded: true, previous: before ? toStored(before) : undefined };
  });
  const all = db.prepare<[], Row>('SELECT id, kind, state, updated_at FROM entity_state ORDER BY id');
  const byKind = db.prepare<[string], Row>(
    'SELECT id, kind, state, updated_at FROM entity_state WHERE kind = ? ORDER BY id',
  );
  const runInsert = db.prepare<[string, string, number, number | null, string, string | null]>(
    'INSERT INTO automation_run (automation, trigger, started_at, ended_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const runBegin = db.prepare<[number, number]>(
    "UPDATE automation_run SET outcome = 'running', started_at = ? WHERE id = ? AND outcome = 'queued'",
  );
  const runFinish = db.prepare<[string, number, string | null, number]>(
    'UPDATE automation_run SET outcome = ?, ended_at = ?, error = ? WHERE id = ?',
  );
  const runList = db.prepare<[string, number], RunRow>(
    'SELECT * FROM automation_run WHERE automation = ? ORDER BY id DESC LIMIT ?',
  );
  // Runs are kept for a while, not forever: an SD card is small. A run under way or waiting keeps
  // its row, so a storm of skipped triggers cannot erase the run they were skipped for.
  const runPrune = db.prepare<[string, string, number]>(
    `DELETE FROM automation_run WHERE automation = ? AND outcome NOT IN ('running', 'queued')
       AND id <= (SELECT id FROM automation_run WHERE automation = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
  );
  // One commit for the row and the pruning: a trigger storm costs one fsync per trigger.
  const insertRun = db.transaction(
    (
      automation: string,
      trigger: string,
      at: number,
      endedAt: number | null,
      outcome: string,
      error: string | null,
    ) => {
      const id = Number(runInsert.run(automation, trigger, at, endedAt, outcome, error).lastInsertRowid);
      runPrune.run(automation, automation, RUNS_KEPT);
      return id;
    },
  );
  const markGet = db.prepare<[string], { at: number }>('SELECT at FROM automation_mark WHERE automation = ?');
  const markSet = db.prepare<[string, number]>(
    'INSERT INTO automation_mark (automation, at) VALUES (?, ?) ON CONFLICT (automation) DO UPDATE SET at = excluded.at',
  );
  return {
    kind: 'sqlite',
    ...sqliteCluster(db),
    sessions: sqliteSessions(db),
    configstacks: sqliteConfigStacks(db),
    history: sqliteHistory(db),
    backup: sqliteBackup(db),
    automations: {
      async start(automation, trigger, startedAt, outcome = 'running') {
        return insertRun(automation, trigger, startedAt, null, outcome, null);
      },
      async begin(id, startedAt) {
        runBegin.run(startedAt, id);
      },
      async record(automation, trigger, at, outcome, error) {
        const id = insertRun(automation, trigger, at, at, outcome, error);
        return { id, automation, trigger, startedAt: at, endedAt: at, outcome, error };
      },
      async finish(id, outcome, endedAt, error) {
        runFinish.run(outcome, endedAt, error, id);
      },
      async runs(automation, limit) {
        return runList.all(automation, limit).map((r) => ({
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
        return markGet.get(automation)?.at;
      },
      async setMark(automation, at) {
        markSet.run(automation, at);
      },
    },
    states: {
      async get(id) {
        const row = get.get(id);
        return row ? toStored(row) : undefined;
      },
      async put(s) {
        put.run(s.id, s.kind, JSON.stringify(s.state), s.updatedAt);
      },
      async pressButton(p, limit) {
        return pressButton(p, limit);
      },
      async list(kind) {
        return (kind === undefined ? all.all() : byKind.all(kind)).map(toStored);
      },
      async delete(id) {
        return remove.run(id).changes > 0;
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
