import { type Kysely, Migrator } from 'kysely';
import { HearthError } from '../core/errors.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import type { StateStore, Store, StoredState } from './store.js';

type Tx = Omit<Store, 'transaction' | 'close'>;

function stateStore(db: Kysely<Database>): StateStore {
  const toStored = (row: { id: string; kind: string; state: string; updated_at: number | string }) => ({
    id: row.id,
    kind: row.kind,
    state: JSON.parse(row.state) as unknown,
    updatedAt: Number(row.updated_at),
  });
  return {
    async get(id) {
      const row = await db.selectFrom('entity_state').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? toStored(row) : undefined;
    },
    async put(s: StoredState) {
      const values = { id: s.id, kind: s.kind, state: JSON.stringify(s.state), updated_at: s.updatedAt };
      await db
        .insertInto('entity_state')
        .values(values)
        .onConflict((oc) =>
          oc
            .column('id')
            .doUpdateSet({ kind: values.kind, state: values.state, updated_at: values.updated_at }),
        )
        .execute();
    },
    async list(kind) {
      let q = db.selectFrom('entity_state').selectAll();
      if (kind !== undefined) q = q.where('kind', '=', kind);
      return (await q.orderBy('id').execute()).map(toStored);
    },
  };
}

/** The Store on any Kysely dialect: SQLite now, PostgreSQL with the same code later. */
export class KyselyStore implements Store {
  readonly states: StateStore;
  readonly #db: Kysely<Database>;

  private constructor(db: Kysely<Database>) {
    this.#db = db;
    this.states = stateStore(db);
  }

  /** Runs pending migrations, then returns the store. */
  static async open(db: Kysely<Database>, where: string): Promise<KyselyStore> {
    const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      await db.destroy();
      throw new HearthError('HEARTH_ERR_STORE', `migration ${failed} failed on ${where}: ${String(error)}`, {
        cause: error,
      });
    }
    return new KyselyStore(db);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#db.transaction().execute((trx) => fn({ states: stateStore(trx) }));
  }

  async close(): Promise<void> {
    await this.#db.destroy();
  }
}
