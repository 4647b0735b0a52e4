import type { BackupStore } from '../store.js';

/** Backup and restore of the kept tables (see ../store.ts BackupStore). Not written yet. */
export function sqliteBackup(_db: unknown): BackupStore {
  const missing = (): never => {
    throw new Error('backup is not implemented yet');
  };
  return { schemaVersion: missing, dump: missing, isEmpty: missing, load: missing };
}
