/** The tables, as Kysely sees them; the same for SQLite and PostgreSQL. */
export interface Database {
  entity_state: {
    id: string;
    kind: string;
    /** JSON text. */
    state: string;
    /** Epoch ms. */
    updated_at: number;
  };
}
