import type { Store } from './store.js';

/** `storage:` of the config: exactly one backend. */
export type StorageConfig =
  | { sqlite: string; postgres?: undefined }
  | {
      sqlite?: undefined;
      postgres: {
        url: string;
        poolMax?: number;
        connectTimeoutMs?: number;
        statementTimeoutMs?: number;
        openTimeoutMs?: number;
      };
    };

/**
 * Opens the configured store. Each backend is imported only when chosen, so one box on SQLite
 * never loads the PostgreSQL client, and a cluster never opens a SQLite file.
 */
export async function openStore(storage: StorageConfig): Promise<Store> {
  if (storage.postgres !== undefined) {
    const { openPostgresStore } = await import('./postgres/open.js');
    return openPostgresStore(storage.postgres);
  }
  const { openSqliteStore } = await import('./sqlite/open.js');
  return openSqliteStore(storage.sqlite);
}
