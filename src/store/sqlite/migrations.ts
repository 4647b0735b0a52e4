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
];
