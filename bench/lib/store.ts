// Section 8: button-press-like writes (states.put, each committed before it resolves) per second,
// on SQLite (a temp file, WAL, synchronous=FULL) and on PostgreSQL (a fresh database on
// 127.0.0.1:5432, dropped afterwards): one writer in sequence, then 16 at once.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { openStore, type StorageConfig } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { int, ms, table } from './report.js';

export interface StoreFigures {
  backend: string;
  sequentialPerS: number;
  sequentialP50Ms: number;
  sequentialP99Ms: number;
  concurrentPerS: number;
}

const PG_ADMIN = process.env.HEARTH_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Runs the section, prints its table and returns the figures; a backend that cannot run is reported and skipped. */
export async function storeWrites(opts: {
  tmp: string;
  quick: boolean;
  clients?: number;
  log?: (line: string) => void;
}): Promise<StoreFigures[]> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const writes = opts.quick ? 500 : 2000;
  const seconds = opts.quick ? 1 : 3;
  const clients = opts.clients ?? 16;
  log(
    `\n8. store writes (states.put, committed): ${writes} sequential, then ${clients} writers for ${seconds} s`,
  );
  const figures: StoreFigures[] = [];
  const sqlite = await measure(
    'sqlite',
    { sqlite: path.join(opts.tmp, 'bench-store.db') },
    writes,
    seconds,
    clients,
  );
  figures.push(sqlite);
  const name = `hearth_bench_${randomBytes(4).toString('hex')}`;
  try {
    await admin(`CREATE DATABASE ${name}`);
    const url = new URL(PG_ADMIN);
    url.pathname = `/${name}`;
    figures.push(await measure('postgres', { postgres: { url: url.toString() } }, writes, seconds, clients));
  } catch (err) {
    log(
      `bench: store writes on PostgreSQL (127.0.0.1:5432) skipped: ${err instanceof Error ? err.message : String(err)}`,
    );
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  }
  log(
    table(
      ['backend', 'sequential /s', 'p50 ms', 'p99 ms', `@${clients} /s`],
      figures.map((f) => [
        f.backend,
        int(f.sequentialPerS),
        ms(f.sequentialP50Ms),
        ms(f.sequentialP99Ms),
        int(f.concurrentPerS),
      ]),
    ),
  );
  return figures;
}

async function measure(
  backend: string,
  storage: StorageConfig,
  writes: number,
  seconds: number,
  clients: number,
): Promise<StoreFigures> {
  const store: Store = await openStore(storage);
  try {
    const put = (i: number) =>
      store.states.put({
        id: `button${i % 64}`,
        kind: 'button',
        state: i % 2 ? 'on' : 'off',
        updatedAt: Date.now(),
      });
    for (let i = 0; i < 50; i++) await put(i);
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < writes; i++) {
      const s = performance.now();
      await put(i);
      lat.push(performance.now() - s);
    }
    const seqMs = performance.now() - t0;
    lat.sort((a, b) => a - b);
    let done = 0;
    const end = performance.now() + seconds * 1000;
    const c0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = c; performance.now() < end; i += clients) {
          await put(i);
          done++;
        }
      }),
    );
    const conMs = performance.now() - c0;
    return {
      backend,
      sequentialPerS: (writes / seqMs) * 1000,
      sequentialP50Ms: lat[Math.floor(lat.length * 0.5)] ?? Number.NaN,
      sequentialP99Ms: lat[Math.floor(lat.length * 0.99)] ?? Number.NaN,
      concurrentPerS: (done / conMs) * 1000,
    };
  } finally {
    await store.close();
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
