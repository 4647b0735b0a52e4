import type { Kysely, Migration, MigrationProvider } from 'kysely';

/**
 * Migrations in order. Never edit one that has shipped: add the next. They are written with
 * Kysely's schema builder so the same list runs on SQLite and PostgreSQL.
 */
const migrations: Record<string, Migration> = {
  '0001_entity_state': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('entity_state')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
