// The migration that keys history_raw by (entity, ms, seq), from a store written by the hearth
// before it: the old schema made by the migrations that version shipped (they are never
// edited), rows written as it wrote them, then opened by this hearth. On a SQLite file and on a
// fresh PostgreSQL database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type StorageConfig } from '../src/store/open.js';
import { postgresMigrations } from '../src/store/postgres/migrations.js';
import { sqliteMigrations } from '../src/store/sqlite/migrations.js';
import type { Store } from '../src/store/store.js';
import { createTestDatabase, postgresMissing } from './support/postgres.js';

const T0 = Date.parse('2025-03-01T00:00:00Z');

/** What the old hearth had written: raw rows of two entities, a bucket, a button. */
const OLD_RAW = [
  { entity: 'temp', at: T0, num: 20.5, text: null },
  { entity: 'temp', at: T0 + 1000, num: 21, text: null },
  { entity: 'door', at: T0 + 1000, num: null, text: 'open' },
  { entity: 'door', at: T0 + 2000, num: null, text: null },
];

interface Old {
  /** The schema version before the history key changed. */
  version: number;
  storage: StorageConfig;
  /** Runs one statement on the old store (the old hearth writing). */
  run(sql: string, values: unknown[]): Promise<void>;
  /** The old hearth stops: its connection is closed. */
  release(): Promise<void>;
  cleanup(): Promise<void>;
}

const backends: { name: string; make(): Promise<Old> }[] = [
  {
    name: 'sqlite',
    async make() {
      const dir = mkdtempSync(join(tmpdir(), 'hearth-migrate-'));
      const file = join(dir, 'hearth.db');
      const version = sqliteMigrations.length - 1;
      const db = new SQLite(file);
      db.pragma('journal_mode = WAL');
      for (const sql of sqliteMigrations.slice(0, version)) db.exec(sql);
      db.pragma(`user_version = ${version}`);
      return {
        version,
        storage: { sqlite: file },
        async run(sql, values) {
          db.prepare(sql.replace(/\$\d+/g, '?')).run(...values);
        },
        async release() {
          db.close();
        },
        async cleanup() {
          if (db.open) db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async make() {
      const test = await createTestDatabase();
      const version = postgresMigrations.length - 1;
      const client = new pg.Client({ connectionString: test.url });
      await client.connect();
      let ended = false;
      await client.query(
        'CREATE TABLE hearth_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      for (const [i, sql] of postgresMigrations.slice(0, version).entries()) {
        await client.query(sql);
        await client.query('INSERT INTO hearth_schema (version) VALUES ($1)', [i + 1]);
      }
      return {
        version,
        storage: { postgres: { url: test.url } },
        async run(sql, values) {
          await client.query(sql, values);
        },
        async release() {
          ended = true;
          await client.end();
        },
        async cleanup() {
          if (!ended) await client.end().catch(() => {});
          await test.drop();
        },
      };
    },
  },
];

for (const backend of backends)
  describe.skipIf(backend.name === 'postgres' && postgresMissing)(
    `history key migration on ${backend.name}`,
    () => {
      const cleanups: Array<() => Promise<void>> = [];
      afterAll(async () => {
        for (const c of cleanups.splice(0).reverse()) await c();
      });

      it('keeps every row of the old schema, then keeps two readings of one ms', async () => {
        const old = await backend.make();
        cleanups.push(() => old.cleanup());
        for (const r of OLD_RAW) {
          await old.run('INSERT INTO history_raw (entity, at, num, text) VALUES ($1, $2, $3, $4)', [
            r.entity,
            r.at,
            r.num,
            r.text,
          ]);
        }
        await old.run(
          'INSERT INTO history_agg (entity, at, step, count, min, mean, max) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          ['temp', T0 - 300_000, 300_000, 4, 18, 19, 20],
        );
        // The old key refused a second reading of one ms (the old hearth replaced the first).
        await expect(
          old.run('INSERT INTO history_raw (entity, at, num, text) VALUES ($1, $2, $3, $4)', [
            'temp',
            T0,
            22,
            null,
          ]),
        ).rejects.toThrow(/UNIQUE|unique|duplicate/);
        await old.run('INSERT INTO entity_state (id, kind, state, updated_at) VALUES ($1, $2, $3, $4)', [
          'hall',
          'button',
          '"on"',
          T0,
        ]);

        await old.release();
        const store: Store = await openStore(old.storage);
        cleanups.push(() => store.close());
        expect(await store.backup.schemaVersion()).toBe(old.version + 1);
        // Every old row is there, as it was.
        expect(await store.history.raw('temp', T0 - 1, T0 + 5000, 100)).toEqual([
          { id: 'temp', at: T0, num: 20.5, text: null },
          { id: 'temp', at: T0 + 1000, num: 21, text: null },
        ]);
        expect(await store.history.raw('door', T0 - 1, T0 + 5000, 100)).toEqual([
          { id: 'door', at: T0 + 1000, num: null, text: 'open' },
          { id: 'door', at: T0 + 2000, num: null, text: null },
        ]);
        expect(await store.history.buckets('temp', T0 - 300_000, T0, 300_000)).toEqual([
          { at: T0 - 300_000, count: 4, min: 18, mean: 19, max: 20 },
        ]);
        expect((await store.states.get('hall'))?.state).toBe('on');

        // A reading in the ms of an old row is a second row now, after it (the recorder numbers it).
        await store.history.append([{ id: 'temp', at: T0 + 1000, seq: 1, num: 23, text: null }]);
        // And two new readings of one ms in one batch are both kept.
        await store.history.append([
          { id: 'temp', at: T0 + 3000, num: 24, text: null },
          { id: 'temp', at: T0 + 3000, num: 25, text: null },
        ]);
        expect(
          (await store.history.raw('temp', T0 - 1, T0 + 5000, 100)).map((r) => [r.at - T0, r.num]),
        ).toEqual([
          [0, 20.5],
          [1000, 21],
          [1000, 23],
          [3000, 24],
          [3000, 25],
        ]);
        // The old rows and the new ones dump as one table, each with its seq.
        const dumped: Record<string, unknown>[] = [];
        for await (const c of store.backup.dump(2)) if (c.table === 'history_raw') dumped.push(...c.rows);
        expect(dumped.filter((r) => r.entity === 'temp').map((r) => [(r.at as number) - T0, r.seq])).toEqual([
          [0, 0],
          [1000, 0],
          [1000, 1],
          [3000, 0],
          [3000, 1],
        ]);
      });
    },
  );
