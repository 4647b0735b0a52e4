/**
 * PostgreSQL schema changes in order; the table hearth_schema records which have run. Never
 * edit one that has shipped: append the next. Times that hearth supplies (state changes, runs,
 * schedule instants) are epoch ms in bigint, as on SQLite; times the database judges (lease
 * expiry, last seen) are timestamptz from its own clock.
 */
export const postgresMigrations: readonly string[] = [
  `CREATE TABLE entity_state (
     id text PRIMARY KEY,
     kind text NOT NULL,
     state jsonb NOT NULL,
     updated_at bigint NOT NULL
   );
   CREATE INDEX entity_state_by_kind ON entity_state (kind, id);
   CREATE TABLE automation_run (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     automation text NOT NULL,
     trigger text NOT NULL,
     started_at bigint NOT NULL,
     ended_at bigint,
     outcome text NOT NULL,
     error text
   );
   CREATE INDEX automation_run_by_automation ON automation_run (automation, id DESC);
   CREATE TABLE automation_mark (
     automation text PRIMARY KEY,
     at bigint NOT NULL
   );
   CREATE TABLE lease (
     name text PRIMARY KEY,
     holder text NOT NULL,
     token bigint NOT NULL,
     expires_at timestamptz NOT NULL
   );
   CREATE TABLE schedule_claim (
     automation text NOT NULL,
     instant bigint NOT NULL,
     lease text NOT NULL,
     token bigint NOT NULL,
     attempt text NOT NULL,
     claimed_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (automation, instant)
   );
   CREATE INDEX schedule_claim_by_age ON schedule_claim (claimed_at);
   CREATE TABLE member (
     id text PRIMARY KEY,
     role text NOT NULL,
     agent text,
     host text NOT NULL,
     pid integer NOT NULL,
     started_at bigint NOT NULL,
     last_seen timestamptz NOT NULL
   )`,
  // Per-replica configs: who holds which entry of a configstack (see ../store.ts).
  `CREATE TABLE configstack_claim (
     stack text NOT NULL,
     idx integer NOT NULL,
     holder text NOT NULL,
     entry_hash text NOT NULL,
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (stack, idx)
   );
   CREATE UNIQUE INDEX configstack_claim_by_holder ON configstack_claim (stack, holder)`,
  // History (see ../store.ts HistoryStore).
  `CREATE TABLE history_raw (
     entity text NOT NULL,
     at bigint NOT NULL,
     num double precision,
     text text,
     PRIMARY KEY (entity, at)
   );
   CREATE TABLE history_agg (
     entity text NOT NULL,
     at bigint NOT NULL,
     step bigint NOT NULL,
     count bigint NOT NULL,
     min double precision NOT NULL,
     mean double precision NOT NULL,
     max double precision NOT NULL,
     PRIMARY KEY (entity, at)
   )`,
  // Dashboard sessions (see ../store.ts SessionStore): the digest of the id, never the id.
  // Times are epoch ms by the api replica's clock, as on SQLite.
  `CREATE TABLE dashboard_session (
     hash text PRIMARY KEY,
     created_at bigint NOT NULL,
     expires_at bigint NOT NULL
   );
   CREATE INDEX dashboard_session_by_created ON dashboard_session (created_at);
   CREATE INDEX dashboard_session_by_expiry ON dashboard_session (expires_at)`,
  // Every reading kept: `seq` numbers the readings of an entity within its ms (see
  // ../sqlite/migrations.ts). Adding a column with a constant default rewrites no row; the key
  // is rebuilt once.
  `ALTER TABLE history_raw ADD COLUMN seq integer NOT NULL DEFAULT 0;
   ALTER TABLE history_raw DROP CONSTRAINT history_raw_pkey;
   ALTER TABLE history_raw ADD CONSTRAINT history_raw_pkey PRIMARY KEY (entity, at, seq)`,
];
