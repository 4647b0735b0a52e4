import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { missing } from './services.js';

/**
 * The PostgreSQL that tests use: 127.0.0.1:5432 as user postgres (trust auth), as `.ci/run`
 * sets it up; HEARTH_TEST_PG_URL points elsewhere (it must name a database to connect to for
 * CREATE DATABASE, e.g. .../postgres).
 */
export const adminUrl = process.env.HEARTH_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Host, port and database of a PostgreSQL URL: what a message may show of it. */
function where(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

/** Why the PostgreSQL at `url` cannot be used by the tests, or undefined when it can. */
export async function postgresProblem(url = adminUrl): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `cannot reach PostgreSQL at ${where(url)} (${e.code ?? e.message}): start it, or point HEARTH_TEST_PG_URL at one (.ci/run installs and starts it)`;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Why the tests that need PostgreSQL are skipped, or undefined when they can run; where the run
 * requires postgres (HEARTH_TEST_REQUIRE, CI), importing this fails instead (services.ts).
 */
export const postgresMissing = missing('postgres', await postgresProblem());

export interface TestDatabase {
  /** URL of the fresh database. */
  url: string;
  name: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

/** A fresh, empty database `hearth_test_<random>` for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `hearth_test_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement as the admin user, on a connection of its own. */
export async function admin(sql: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Cuts every connection hearth has open to `database` (pg_terminate_backend); resolves how many. */
export async function terminateBackends(database: string): Promise<number> {
  const rows = await admin(
    `SELECT count(*)::int AS n FROM (
       SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = $1 AND application_name = 'hearth' AND pid <> pg_backend_pid()
     ) t`,
    [database],
  );
  return Number(rows[0]?.n ?? 0);
}
