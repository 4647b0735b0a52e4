// How long BackupStore.dump() and load() take for a big history, on both store kinds, and how
// long a dump holds the event loop at most. A measurement, not a test:
//
//   node --import tsx bench/backup-store.ts [--rows 1000000] [--chunk 1000] [--pg postgres://postgres@127.0.0.1:5432/postgres]
//
// Fills a fresh store of each kind (a temp SQLite file; a fresh PostgreSQL database, dropped at
// the end) with --rows history_raw rows (100 entities, one reading a minute each), dumps it
// into memory, loads the dump into a fresh store of the same kind and of the other kind.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore, type StorageConfig } from '../src/store/open.js';
import type { DumpChunk, HistoryRow, Store } from '../src/store/store.js';

const { values: opts } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    chunk: { type: 'string', default: '1000' },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const ROWS = Number(opts.rows);
const CHUNK = Number(opts.chunk);
const dir = mkdtempSync(path.join(os.tmpdir(), 'hearth-backup-bench-'));
const databases: string[] = [];

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: opts.pg });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function fresh(kind: 'sqlite' | 'postgres'): Promise<Store> {
  const name = `hearth_bench_${randomBytes(5).toString('hex')}`;
  let storage: StorageConfig;
  if (kind === 'sqlite') {
    storage = { sqlite: path.join(dir, `${name}.db`) };
  } else {
    await admin(`CREATE DATABASE ${name}`);
    databases.push(name);
    const url = new URL(opts.pg);
    url.pathname = `/${name}`;
    storage = { postgres: { url: url.toString() } };
  }
  return openStore(storage);
}

async function fill(store: Store): Promise<void> {
  const T0 = 1_700_000_000_000;
  const batch: HistoryRow[] = [];
  for (let i = 0; i < ROWS; i++) {
    batch.push({
      id: `sensor_${i % 100}`,
      at: T0 + Math.floor(i / 100) * 60_000,
      num: (i % 997) / 10,
      text: null,
    });
    if (batch.length === 10_000 || i === ROWS - 1) await store.history.append(batch.splice(0));
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, (performance.now() - start) / 1000];
}

async function* replay(chunks: readonly DumpChunk[]): AsyncGenerator<DumpChunk> {
  for (const c of chunks) yield c;
}

const dumps = new Map<string, DumpChunk[]>();
try {
  for (const kind of ['sqlite', 'postgres'] as const) {
    const source = await fresh(kind);
    const [, fillS] = await timed(() => fill(source));
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    // Timed as an archive writer would read it: each chunk handled and dropped.
    const [[rows, count], dumpS] = await timed(async () => {
      let n = 0;
      let chunks = 0;
      for await (const c of source.backup.dump(CHUNK)) {
        n += c.rows.length;
        chunks++;
      }
      return [n, chunks];
    });
    delay.disable();
    console.log(
      `${kind}: filled ${rows} rows in ${fillS.toFixed(1)} s; dump ${dumpS.toFixed(2)} s (${count} chunks of ${CHUNK}), event loop held at most ${(delay.max / 1e6).toFixed(1)} ms (p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms)`,
    );
    // Kept in memory (untimed) to load it below.
    const chunks: DumpChunk[] = [];
    for await (const c of source.backup.dump(CHUNK)) chunks.push(c);
    dumps.set(kind, chunks);
    await source.close();
  }
  for (const [from, chunks] of dumps) {
    for (const to of ['sqlite', 'postgres'] as const) {
      const target = await fresh(to);
      const [result, loadS] = await timed(() => target.backup.load(replay(chunks), { replace: false }));
      console.log(`load ${from} dump into ${to}: ${result.rows} rows in ${loadS.toFixed(2)} s`);
      await target.close();
    }
  }
} finally {
  for (const name of databases) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  rmSync(dir, { recursive: true, force: true });
}
