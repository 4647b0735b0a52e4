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
];
