/**
 * SQLite schema changes in order; `PRAGMA user_version` records how many have run. Never edit
 * one that has shipped: append the next.
 */
export const sqliteMigrations: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS entity_state (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     state TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   )`,
  `CREATE TABLE automation_run (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     automation TEXT NOT NULL,
     trigger TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     ended_at INTEGER,
     outcome TEXT NOT NULL,
     error TEXT
   );
   CREATE INDEX automation_run_by_automation ON automation_run (automation, id DESC);
   CREATE TABLE automation_mark (
     automation TEXT PRIMARY KEY,
     at INTEGER NOT NULL
   )`,
  // Leases, schedule claims and members: the same tables as on PostgreSQL, so one box and a
  // cluster run the same code. Times are epoch ms by this box's clock.
  `CREATE TABLE lease (
     name TEXT PRIMARY KEY,
     holder TEXT NOT NULL,
     token INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE TABLE schedule_claim (
     automation TEXT NOT NULL,
     instant INTEGER NOT NULL,
     lease TEXT NOT NULL,
     token INTEGER NOT NULL,
     claimed_at INTEGER NOT NULL,
     PRIMARY KEY (automation, instant)
   );
   CREATE INDEX schedule_claim_by_instant ON schedule_claim (instant);
   CREATE TABLE member (
     id TEXT PRIMARY KEY,
     role TEXT NOT NULL,
     agent TEXT,
     host TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   )`,
  // Per-replica configs: who holds which entry of a configstack (see ../store.ts).
  `CREATE TABLE configstack_claim (
     stack TEXT NOT NULL,
     idx INTEGER NOT NULL,
     holder TEXT NOT NULL,
     entry_hash TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (stack, idx)
   );
   CREATE UNIQUE INDEX configstack_claim_by_holder ON configstack_claim (stack, holder)`,
  // History (see ../store.ts HistoryStore). Without rowid: one b-tree per table, no index.
  // Raw rows are keyed by time first, so a batch of every entity's readings lands on the last
  // page or two: keyed by entity first, each flush rewrote one page per entity, ten times the
  // bytes on an SD card (bench/README.md, 15). Reading one entity scans the range's rows of all.
  `CREATE TABLE history_raw (
     at INTEGER NOT NULL,
     entity TEXT NOT NULL,
     num REAL,
     text TEXT,
     PRIMARY KEY (at, entity)
   ) WITHOUT ROWID;
   CREATE TABLE history_agg (
     entity TEXT NOT NULL,
     at INTEGER NOT NULL,
     step INTEGER NOT NULL,
     count INTEGER NOT NULL,
     min REAL NOT NULL,
     mean REAL NOT NULL,
     max REAL NOT NULL,
     PRIMARY KEY (entity, at)
   ) WITHOUT ROWID`,
  // Dashboard sessions (see ../store.ts SessionStore): the digest of the id, never the id.
  `CREATE TABLE dashboard_session (
     hash TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX dashboard_session_by_created ON dashboard_session (created_at);
   CREATE INDEX dashboard_session_by_expiry ON dashboard_session (expires_at)`,
  // Every reading kept: two of one entity in the same ms were one row under (at, entity), the
  // second replacing the first. `seq` numbers the readings of an entity within its ms (0, 1, ...),
  // so a reading appended again (a retried flush) still lands on its own row. Time stays first
  // in the key (see above); seq is 0 nearly always, which SQLite stores in the record's header
  // alone (one byte a row). A table's key cannot be altered: the rows move to a new table.
  `CREATE TABLE history_raw_v7 (
     at INTEGER NOT NULL,
     entity TEXT NOT NULL,
     seq INTEGER NOT NULL DEFAULT 0,
     num REAL,
     text TEXT,
     PRIMARY KEY (at, entity, seq)
   ) WITHOUT ROWID;
   INSERT INTO history_raw_v7 (at, entity, seq, num, text) SELECT at, entity, 0, num, text FROM history_raw;
   DROP TABLE history_raw;
   ALTER TABLE history_raw_v7 RENAME TO history_raw`,
];
