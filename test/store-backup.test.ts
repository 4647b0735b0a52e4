// BackupStore on both kinds: dump from one snapshot, load all or nothing, and the rows the same
// from SQLite and PostgreSQL, so a backup of one restores into the other. Real SQLite files in a
// temp dir; one fresh PostgreSQL database for the file, a schema in it per store.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HearthError } from '../src/core/errors.js';
import { BACKUP_COLUMNS } from '../src/store/backup-rows.js';
import { openStore } from '../src/store/open.js';
import { postgresMigrations } from '../src/store/postgres/migrations.js';
import { sqliteMigrations } from '../src/store/sqlite/migrations.js';
import { BACKUP_TABLES, type BackupTable, type DumpChunk, type Store } from '../src/store/store.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';
import { letTimePass } from './support/wait.js';

type Kind = 'sqlite' | 'postgres';
type Rows = Record<string, unknown>[];
type Tables = Record<BackupTable, Rows>;

let dir: string;
let pgdb: TestDatabase;
const opened: Store[] = [];
/** The SQLite file of each store opened here. */
const files = new Map<Store, string>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hearth-backup-'));
  if (!postgresMissing) pgdb = await createTestDatabase();
});
// Each store has a pool of its own: closed after each test, so the connections stay few.
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
afterAll(async () => {
  await pgdb?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A new, empty store of `kind`: a new SQLite file, or a new schema in the test database. */
async function fresh(kind: Kind): Promise<Store> {
  const name = `s_${randomBytes(5).toString('hex')}`;
  let store: Store;
  if (kind === 'sqlite') {
    const file = join(dir, `${name}.db`);
    store = await openStore({ sqlite: file });
    files.set(store, file);
  } else {
    const url = new URL(pgdb.url);
    await runIn(pgdb.url, `CREATE SCHEMA ${name}`);
    url.searchParams.set('options', `-c search_path=${name}`);
    store = await openStore({ postgres: { url: url.toString() } });
  }
  opened.push(store);
  return store;
}

async function runIn(url: string, sql: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function collect(chunks: AsyncIterable<DumpChunk>): Promise<DumpChunk[]> {
  const out: DumpChunk[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

async function* replay(chunks: readonly DumpChunk[]): AsyncGenerator<DumpChunk> {
  for (const c of chunks) yield c;
}

/** The rows of each table, in dump order. */
function byTable(chunks: readonly DumpChunk[]): Tables {
  const out = Object.fromEntries(BACKUP_TABLES.map((t) => [t, [] as Rows])) as Tables;
  for (const c of chunks) out[c.table].push(...c.rows);
  return out;
}

const KEY: Record<BackupTable, string[]> = {
  entity_state: ['id'],
  automation_run: ['id'],
  automation_mark: ['automation'],
  history_raw: ['entity', 'at', 'seq'],
  history_agg: ['entity', 'at'],
};

/** The rows of each table in one order whatever the kind (the kinds key history_raw differently). */
function sorted(chunks: readonly DumpChunk[]): Tables {
  const tables = byTable(chunks);
  const cmp = (a: unknown, b: unknown) =>
    typeof a === 'number' && typeof b === 'number'
      ? a - b
      : String(a) < String(b)
        ? -1
        : String(a) > String(b)
          ? 1
          : 0;
  for (const t of BACKUP_TABLES) {
    tables[t].sort((a, b) => {
      for (const k of KEY[t]) {
        const d = cmp(a[k], b[k]);
        if (d !== 0) return d;
      }
      return 0;
    });
  }
  return tables;
}

const T0 = 1_700_000_000_000;
const HOUR = 3600_000;

/** Fills a store through its public API with values that are easy to lose on the way. */
async function fill(store: Store): Promise<void> {
  const states: [string, unknown][] = [
    ['b-on', 'on'],
    ['b-obj', { on: true, n: [1, 2.5, -0.1], nested: { 'ü-ключ': 'ö "q" \\ {a,b} NULL' } }],
    ['b-null', null],
    ['b-num', 1e-300],
    ['b-big', Number.MAX_SAFE_INTEGER],
    ['b-arr', [null, false, '', { a: [] }]],
    ['b-emoji', '🔥 "quoted", {braces}'],
  ];
  for (const [i, [id, state]] of states.entries()) {
    await store.states.put({ id, kind: i % 2 ? 'button' : 'other', state, updatedAt: T0 + i });
  }
  const a = await store.automations.start('wake', 'cron 20 6 * * *', T0);
  await store.automations.finish(a, 'ok', T0 + 1500, null);
  const b = await store.automations.start('wake', 'state bedside on', T0 + 2000);
  await store.automations.finish(b, 'failed', T0 + 2100, 'lamp "bedside" did not answer\nin 5 s');
  await store.automations.start('night', 'webhook', T0 + 3000, 'queued');
  await store.automations.start('night', 'webhook', T0 + 3001);
  await store.automations.record('night', 'state door open', T0 + 4000, 'skipped', 'condition false');
  await store.automations.setMark('wake', T0 + 5000);
  await store.automations.setMark('night', T0 + 6000);
  const rows = [];
  for (let i = 0; i < 120; i++) {
    rows.push({ id: 'temp', at: T0 + i * 60_000, num: 20 + Math.sin(i) * 3, text: null });
    rows.push({ id: 'power', at: T0 + i * 60_000 + 7, num: i % 10 === 0 ? null : i * 0.1, text: null });
  }
  rows.push({ id: 'door', at: T0 + 5, num: null, text: 'open' });
  rows.push({ id: 'door', at: T0 + 9, num: null, text: 'closed, "really" {x} \\ NULL' });
  rows.push({ id: 'door', at: T0 + 11, num: null, text: null });
  // A second reading in the same ms: its own row (seq 1).
  rows.push({ id: 'door', at: T0 + 11, num: null, text: 'ajar' });
  rows.push({ id: 'climate', at: T0 + 13, num: null, text: '{"mode":"heat","target":21.5}' });
  // Past the compacted hour: an average of the largest double overflows on PostgreSQL.
  rows.push({ id: 'extreme', at: T0 + 2 * HOUR + 17, num: 1.7976931348623157e308, text: null });
  rows.push({ id: 'extreme', at: T0 + 2 * HOUR + 19, num: -5e-324, text: null });
  rows.push({ id: 'extreme', at: T0 + 2 * HOUR + 23, num: 21, text: null });
  await store.history.append(rows);
  // The first hour's numbers become buckets of 10 minutes; then more raw rows on top.
  const r = await store.history.compact(T0 + HOUR, T0 - HOUR, 600_000);
  expect(r.folded).toBeGreaterThan(0);
  await store.history.append([{ id: 'temp', at: T0 + 3 * HOUR, num: 19.25, text: null }]);
}

function expectChunksOk(chunks: readonly DumpChunk[], chunkRows: number): void {
  for (const c of chunks) {
    expect(c.rows.length).toBeGreaterThan(0);
    expect(c.rows.length).toBeLessThanOrEqual(chunkRows);
    for (const row of c.rows) {
      expect(Object.keys(row)).toEqual(BACKUP_COLUMNS[c.table].map((col) => col.name));
    }
  }
  // Table by table in BACKUP_TABLES order.
  const order = chunks.map((c) => BACKUP_TABLES.indexOf(c.table));
  expect([...order].sort((x, y) => x - y)).toEqual(order);
}

/**
 * Resolves 'blocked' if `p` has not settled within `ms`. A write blocked by the open dump would
 * wait for ever; the bound only decides when to say so, so it is a generous backstop.
 */
const within = <T>(p: Promise<T>, ms = 10_000) =>
  Promise.race([p, letTimePass(ms).then(() => 'blocked' as const)]);

async function rejection(p: Promise<unknown>): Promise<HearthError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HearthError);
    return err as HearthError;
  }
  throw new Error('expected a rejection');
}

for (const kind of ['sqlite', 'postgres'] as const)
  describe.skipIf(kind === 'postgres' && postgresMissing)(`backup on ${kind}`, () => {
    it('reports the schema version and emptiness; an empty store dumps nothing and loads nothing', async () => {
      const store = await fresh(kind);
      expect(await store.backup.schemaVersion()).toBe(
        kind === 'sqlite' ? sqliteMigrations.length : postgresMigrations.length,
      );
      expect(await store.backup.isEmpty()).toBe(true);
      expect(await collect(store.backup.dump())).toEqual([]);
      expect(await store.backup.load(replay([]), { replace: false })).toEqual({ rows: 0 });
      expect(await store.backup.isEmpty()).toBe(true);
      await store.automations.setMark('x', 1);
      expect(await store.backup.isEmpty()).toBe(false);
      // Sessions are not backed up: a store holding only a session is empty to a backup.
      const other = await fresh(kind);
      await other.sessions.create({ hash: 'a'.repeat(64), createdAt: T0, expiresAt: T0 + HOUR }, 10);
      expect(await other.backup.isEmpty()).toBe(true);
    });

    it('round trip: fill, dump, load into a fresh store, dump again: the same rows', async () => {
      const source = await fresh(kind);
      await fill(source);
      const first = await collect(source.backup.dump());
      expectChunksOk(first, 1000);
      const tables = byTable(first);
      for (const t of BACKUP_TABLES) expect(tables[t].length, t).toBeGreaterThan(0);
      // The canonical form: the state parsed, numbers as numbers, null as null.
      expect(tables.entity_state.find((r) => r.id === 'b-obj')?.state).toEqual({
        on: true,
        n: [1, 2.5, -0.1],
        nested: { 'ü-ключ': 'ö "q" \\ {a,b} NULL' },
      });
      expect(tables.entity_state.find((r) => r.id === 'b-null')).toEqual({
        id: 'b-null',
        kind: 'other',
        state: null,
        updated_at: T0 + 2,
      });
      expect(tables.automation_run.find((r) => r.outcome === 'queued')).toMatchObject({
        ended_at: null,
        error: null,
        started_at: T0 + 3000,
      });
      expect(tables.history_raw.find((r) => r.entity === 'extreme' && r.at === T0 + 2 * HOUR + 17)?.num).toBe(
        1.7976931348623157e308,
      );

      const target = await fresh(kind);
      const total = first.reduce((n, c) => n + c.rows.length, 0);
      expect(await target.backup.load(replay(first), { replace: false })).toEqual({ rows: total });
      expect(await collect(target.backup.dump())).toEqual(first);
      // And through the public API, as hearth would read it.
      expect(await target.states.list()).toEqual(await source.states.list());
      expect(await target.automations.runs('wake', 10)).toEqual(await source.automations.runs('wake', 10));
      expect(await target.automations.getMark('night')).toBe(T0 + 6000);
      expect(await target.history.buckets('temp', T0 - HOUR, T0 + 4 * HOUR, HOUR)).toEqual(
        await source.history.buckets('temp', T0 - HOUR, T0 + 4 * HOUR, HOUR),
      );
      expect(await target.history.raw('door', 0, T0 + HOUR, 10)).toEqual(
        await source.history.raw('door', 0, T0 + HOUR, 10),
      );
    });

    it.runIf(kind === 'sqlite')('dumps a store without a file (:memory:) all the same', async () => {
      const file = await fresh('sqlite');
      const memory = await openStore({ sqlite: ':memory:' });
      opened.push(memory);
      await fill(file);
      await fill(memory);
      const chunks = await collect(memory.backup.dump(10));
      expectChunksOk(chunks, 10);
      // The same fill on a file and in memory dumps the same rows.
      expect(chunks).toEqual(await collect(file.backup.dump(10)));
      const target = await fresh('sqlite');
      await target.backup.load(replay(chunks), { replace: false });
      expect(await collect(target.backup.dump(10))).toEqual(chunks);
    });

    it('dumps in chunks of at most chunkRows, in key order, and loads them back', async () => {
      const source = await fresh(kind);
      const rows = [];
      // Readings in pairs of one entity and ms (seq 0 and 1): odd chunks split some pairs.
      for (let i = 0; i < 250; i++)
        rows.push({ id: `e${Math.floor(i / 2) % 7}`, at: T0 + Math.floor(i / 2), num: i, text: null });
      await source.history.append(rows);
      for (let i = 0; i < 20; i++)
        await source.states.put({ id: `s${i}`, kind: 'button', state: i, updatedAt: i });
      const chunks = await collect(source.backup.dump(7));
      expectChunksOk(chunks, 7);
      const raw = chunks.filter((c) => c.table === 'history_raw');
      expect(raw.length).toBe(Math.ceil(250 / 7));
      expect(raw.slice(0, -1).every((c) => c.rows.length === 7)).toBe(true);
      // Keyset pages: every row once, in the kind's key order.
      const all = raw.flatMap((c) => c.rows);
      expect(all.length).toBe(250);
      const keys = all.map((r): (string | number)[] =>
        kind === 'sqlite'
          ? [r.at as number, r.entity as string, r.seq as number]
          : [r.entity as string, r.at as number, r.seq as number],
      );
      const keySorted = [...keys].sort((a, b) => {
        for (let i = 0; i < a.length; i++) {
          const x = a[i] as string | number;
          const y = b[i] as string | number;
          if (x !== y) return x < y ? -1 : 1;
        }
        return 0;
      });
      expect(keys).toEqual(keySorted);
      expect(all.filter((r) => r.seq === 1).length).toBe(125);
      expect(new Set(keys.map((k) => k.join('/'))).size).toBe(250);

      const target = await fresh(kind);
      expect(await target.backup.load(replay(chunks), { replace: false })).toEqual({ rows: 270 });
      expect(await collect(target.backup.dump(1000))).toEqual(await collect(source.backup.dump(1000)));
      await expect(collect(source.backup.dump(0))).rejects.toThrow(/chunkRows/);
    });

    it('dumps one snapshot, and writes made meanwhile are not blocked', async () => {
      const store = await fresh(kind);
      for (let i = 0; i < 10; i++)
        await store.states.put({ id: `s${i}`, kind: 'button', state: i, updatedAt: i });
      await store.history.append([{ id: 'temp', at: T0, num: 1, text: null }]);
      const it = store.backup.dump(3)[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value).toMatchObject({ table: 'entity_state' });
      // Committed after the first chunk: a row that sorts after every one read so far, a run,
      // history. Each must resolve while the dump is open.
      expect(await within(store.states.put({ id: 'zz-late', kind: 'button', state: 1, updatedAt: 1 }))).toBe(
        undefined,
      );
      expect(await within(store.states.delete('s9'))).toBe(true);
      expect(typeof (await within(store.automations.start('late', 'webhook', T0)))).toBe('number');
      expect(await within(store.history.append([{ id: 'temp', at: T0 + 1, num: 2, text: null }]))).toBe(
        undefined,
      );
      const rest: DumpChunk[] = [first.value as DumpChunk];
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
      const seen = byTable(rest);
      expect(seen.entity_state.map((r) => r.id)).toEqual([...Array(10).keys()].map((i) => `s${i}`));
      expect(seen.automation_run).toEqual([]);
      expect(seen.history_raw.map((r) => r.at)).toEqual([T0]);
      // The next dump sees them.
      const after = byTable(await collect(store.backup.dump(3)));
      expect(after.entity_state.map((r) => r.id)).toContain('zz-late');
      expect(after.entity_state.map((r) => r.id)).not.toContain('s9');
      expect(after.automation_run.length).toBe(1);
      expect(after.history_raw.length).toBe(2);
    });

    it('lets the snapshot go when the reader stops early', async () => {
      const store = await fresh(kind);
      for (let i = 0; i < 10; i++)
        await store.states.put({ id: `s${i}`, kind: 'button', state: i, updatedAt: i });
      const it = store.backup.dump(2)[Symbol.asyncIterator]();
      await it.next();
      await store.states.put({ id: 'later', kind: 'button', state: 1, updatedAt: 1 });
      // While the dump is open, its snapshot is held...
      expect(await snapshotHeld(store)).toBe(true);
      await it.return?.();
      // ...and not after it stopped.
      expect(await snapshotHeld(store)).toBe(false);
    });

    it('loads history rows of an archive made before seq (no such column) as the first reading of their ms', async () => {
      const target = await fresh(kind);
      const old: DumpChunk[] = [
        {
          table: 'history_raw',
          rows: [
            { entity: 'temp', at: T0, num: 20, text: null },
            { entity: 'temp', at: T0 + 1000, num: 21, text: null },
          ],
        },
      ];
      expect(await target.backup.load(replay(old), { replace: false })).toEqual({ rows: 2 });
      expect(byTable(await collect(target.backup.dump())).history_raw).toEqual([
        { entity: 'temp', at: T0, seq: 0, num: 20, text: null },
        { entity: 'temp', at: T0 + 1000, seq: 0, num: 21, text: null },
      ]);
      // A reading of the same ms recorded after the restore is kept beside it.
      await target.history.append([{ id: 'temp', at: T0, seq: 1, num: 22, text: null }]);
      expect((await target.history.raw('temp', T0, T0 + 1, 10)).map((r) => r.num)).toEqual([20, 22]);
    });

    it('loads all or nothing: a bad row in the last chunk writes nothing', async () => {
      const source = await fresh(kind);
      await fill(source);
      const good = await collect(source.backup.dump(50));
      const bads: [string, DumpChunk, RegExp][] = [
        [
          'a count that is not a number',
          { table: 'history_agg', rows: [{ ...byTable(good).history_agg[0], at: 1, count: '3' }] },
          /row \d+ of history_agg: count is a string, not an integer/,
        ],
        [
          'an unknown table',
          { table: 'lease' as BackupTable, rows: [{ name: 'x' }] },
          /chunk \d+ names the table "lease", which hearth does not back up/,
        ],
        [
          'an unknown column',
          { table: 'automation_mark', rows: [{ automation: 'zzz', at: 1, extra: 2 }] },
          /row \d+ of automation_mark has a column "extra"/,
        ],
        [
          'a missing column',
          { table: 'automation_run', rows: [{ id: 999, automation: 'x', trigger: 'y', outcome: 'ok' }] },
          /row \d+ of automation_run has no started_at/,
        ],
        [
          'a time that is not an integer',
          { table: 'history_raw', rows: [{ entity: 'zzz', at: 1.5, num: 1, text: null }] },
          /history_raw: at is a number, not an integer/,
        ],
        [
          'an outcome hearth does not know',
          {
            table: 'automation_run',
            rows: [{ id: 999, automation: 'x', trigger: 'y', started_at: 1, outcome: 'exploded' }],
          },
          /outcome is not one of/,
        ],
        [
          'a row twice (the database refuses it)',
          { table: 'history_raw', rows: [byTable(good).history_raw[0] as Record<string, unknown>] },
          /history_raw/,
        ],
      ];
      // One target for all: each refusal must leave it empty for the next.
      const target = await fresh(kind);
      for (const [what, bad, message] of bads) {
        const err = await rejection(target.backup.load(replay([...good, bad]), { replace: false }));
        expect(err.message, what).toMatch(message);
        expect(err.message, what).toMatch(/nothing was (restored|saved)/);
        expect(await target.backup.isEmpty(), what).toBe(true);
        expect(await collect(target.backup.dump()), what).toEqual([]);
      }
      // An archive that cannot be read to its end: nothing either.
      async function* broken(): AsyncGenerator<DumpChunk> {
        yield* replay(good);
        throw new Error('unexpected end of archive');
      }
      await expect(target.backup.load(broken(), { replace: false })).rejects.toThrow(
        'unexpected end of archive',
      );
      expect(await target.backup.isEmpty()).toBe(true);
      // With replace, the store keeps what it had.
      const before = await collect(source.backup.dump());
      await rejection(
        source.backup.load(replay([...good.slice(0, 2), bads[0]?.[1] as DumpChunk]), { replace: true }),
      );
      expect(await collect(source.backup.dump())).toEqual(before);
    });

    it('refuses a store that is not empty before reading the backup; replace replaces it', async () => {
      const source = await fresh(kind);
      await fill(source);
      const backup = await collect(source.backup.dump());
      const target = await fresh(kind);
      await target.states.put({ id: 'mine', kind: 'button', state: 'on', updatedAt: 1 });
      await target.history.append([
        { id: 'x', at: 1, num: 1, text: null },
        { id: 'x', at: 2, num: 2, text: null },
      ]);
      let read = false;
      async function* watched(): AsyncGenerator<DumpChunk> {
        read = true;
        yield* replay(backup);
      }
      const err = await rejection(target.backup.load(watched(), { replace: false }));
      expect(err.code).toBe('HEARTH_ERR_STORE_NOT_EMPTY');
      expect(err.status).toBe(409);
      expect(err.message).toMatch(/is not empty \(it holds 1 entity state and 2 history rows\)/);
      expect(err.message).toContain('--force');
      expect(read).toBe(false);
      expect(await target.states.get('mine')).toMatchObject({ state: 'on' });

      const total = backup.reduce((n, c) => n + c.rows.length, 0);
      expect(await target.backup.load(replay(backup), { replace: true })).toEqual({ rows: total });
      expect(await target.states.get('mine')).toBeUndefined();
      expect(await collect(target.backup.dump())).toEqual(backup);
    });

    it('run ids go on past the largest id loaded', async () => {
      const run = (id: number) => ({
        id,
        automation: 'wake',
        trigger: 'webhook',
        started_at: T0 + id,
        ended_at: T0 + id + 1,
        outcome: 'ok',
        error: null,
      });
      const target = await fresh(kind);
      await target.backup.load(replay([{ table: 'automation_run', rows: [run(5), run(41)] }]), {
        replace: false,
      });
      expect(await target.automations.start('wake', 'webhook', T0 + 100)).toBe(42);
      // Replacing a store whose ids ran higher: ids go on from the backup's, as on the source.
      const busy = await fresh(kind);
      for (let i = 0; i < 60; i++) await busy.automations.record('wake', 'webhook', T0 + i, 'skipped', null);
      await busy.backup.load(replay([{ table: 'automation_run', rows: [run(5), run(41)] }]), {
        replace: true,
      });
      expect(await busy.automations.start('wake', 'webhook', T0 + 100)).toBe(42);
      // A backup without runs: they start again from 1.
      await busy.backup.load(replay([]), { replace: true });
      expect(await busy.automations.start('wake', 'webhook', T0 + 100)).toBe(1);
    });
  });

/**
 * Whether a dump still holds its snapshot. SQLite: a checkpoint that must reset the WAL cannot
 * while a reader holds an old snapshot (busy). PostgreSQL: a hearth connection is idle in a
 * transaction.
 */
async function snapshotHeld(store: Store): Promise<boolean> {
  const file = files.get(store);
  if (file !== undefined) {
    const probe = new SQLite(file);
    try {
      probe.pragma('busy_timeout = 0');
      const [r] = probe.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return r?.busy === 1;
    } finally {
      probe.close();
    }
  }
  const rows = await runIn(
    pgdb.url,
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = $1 AND application_name = 'hearth' AND state LIKE 'idle in transaction%'`,
    [pgdb.name],
  );
  return Number(rows[0]?.n) > 0;
}

describe.skipIf(postgresMissing)('backup across kinds', () => {
  it.each([
    ['sqlite', 'postgres'],
    ['postgres', 'sqlite'],
  ] as const)('%s → %s and back: the same rows', async (from, to) => {
    const source = await fresh(from);
    await fill(source);
    const first = await collect(source.backup.dump(64));
    const other = await fresh(to);
    await other.backup.load(replay(first), { replace: false });
    const second = await collect(other.backup.dump(64));
    expect(sorted(second)).toEqual(sorted(first));
    const back = await fresh(from);
    await back.backup.load(replay(second), { replace: false });
    const third = await collect(back.backup.dump(64));
    expect(sorted(third)).toEqual(sorted(first));
    // Read back through the public API of the other kind.
    expect(await other.states.get('b-obj')).toEqual(await source.states.get('b-obj'));
    expect(await other.history.raw('door', 0, T0 + HOUR, 10)).toEqual(
      await source.history.raw('door', 0, T0 + HOUR, 10),
    );
    expect(await other.automations.runs('night', 10)).toEqual(await source.automations.runs('night', 10));
    expect(await other.automations.start('x', 'webhook', T0)).toBe(
      Math.max(...byTable(first).automation_run.map((r) => r.id as number)) + 1,
    );
  });
});
