import type pg from 'pg';
import { HearthError, reasonOf } from '../../core/errors.js';
import { redactText, whereOf } from '../redact.js';

export interface PostgresOptions {
  /** `postgres://user:password@host:5432/database`; the password is never printed. */
  url: string;
  /** Connections at most (default 4): a home cluster has a small PostgreSQL. */
  poolMax?: number;
  /** Deadline to get a connection, ms (default 2000). */
  connectTimeoutMs?: number;
  /** Deadline of one statement, ms (default 4000); the server aborts it, the client gives up 1 s later. */
  statementTimeoutMs?: number;
  /** How long opening keeps trying while the database is unreachable, ms (default 5000). */
  openTimeoutMs?: number;
}

export interface Run {
  /**
   * `idempotent`: running the statement twice leaves the same result as once, so it is retried
   * when the connection broke after it was sent (the reply may have been lost after the commit).
   * Any statement is retried when no connection could be had (it was never sent).
   */
  idempotent: boolean;
  /** What the statement does, for messages: `save the state of bedside`. */
  what: string;
}

/** Tries per statement, and the pause before each retry. */
const RETRY_PAUSES_MS = [50, 250];

/** Errors that mean the connection, not the statement, failed. */
const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown: pg_terminate_backend, a restart
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '53300', // too_many_connections
]);
const CONNECTION_MESSAGES =
  /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|Client was closed|Connection terminated due to connection timeout/i;

export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return CONNECTION_MESSAGES.test(err.message);
}

/** The server gave up on a statement (statement_timeout) or the client stopped waiting. */
export function isTimeout(err: unknown): boolean {
  return (
    err instanceof Error &&
    ((err as { code?: unknown }).code === '57014' || /Query read timeout/i.test(err.message))
  );
}

/**
 * The pool and the one way statements run: each statement is its own transaction, so it has
 * committed when its reply arrives, and a promise resolves only then. A broken connection is
 * retried on a fresh one where that is safe; what still fails rejects with a HearthError of
 * status 503 (unreachable, timed out) or 500 (the statement itself was refused).
 */
export class Db {
  readonly pool: pg.Pool;
  private readonly url: string;
  private closed = false;

  /** `driver`: the `pg` module, imported by the caller (see openPostgresStore). */
  constructor(driver: typeof pg, options: PostgresOptions) {
    this.url = options.url;
    const statementTimeout = options.statementTimeoutMs ?? 4000;
    this.pool = new driver.Pool({
      connectionString: options.url,
      max: options.poolMax ?? 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout + 1000,
      application_name: 'hearth',
      keepAlive: true,
    });
    // An idle connection that the server closes (pg_terminate_backend, a restart) is reported
    // here; the pool has already dropped it and the next statement opens a fresh one. Without
    // this listener the event would crash the process.
    this.pool.on('error', () => {});
  }

  /** Where the database is, without credentials: `127.0.0.1:5432/hearth`. */
  get where(): string {
    return whereOf(this.url);
  }

  async query<R extends pg.QueryResultRow>(text: string, values: unknown[], run: Run): Promise<R[]> {
    let lastErr: unknown;
    for (let attempt = 0; ; attempt++) {
      if (this.closed)
        throw new HearthError('HEARTH_ERR_NOT_READY', `cannot ${run.what}: the store is closed`);
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        lastErr = err;
        if (attempt < RETRY_PAUSES_MS.length) {
          await pause(RETRY_PAUSES_MS[attempt] as number);
          continue;
        }
        // No connection, nothing sent: whatever the reason, the database is unavailable to us.
        throw this.failure(run, err, true);
      }
      // A connection that breaks while checked out emits 'error' besides failing the statement.
      const onError = () => {};
      client.on('error', onError);
      try {
        const result = await client.query<R>(text, values);
        client.off('error', onError);
        client.release();
        return result.rows;
      } catch (err) {
        client.off('error', onError);
        const broken = isConnectionError(err) || isTimeout(err);
        // Destroy rather than reuse a connection whose state is unknown.
        client.release(broken ? (err as Error) : undefined);
        lastErr = err;
        if (run.idempotent && isConnectionError(err) && attempt < RETRY_PAUSES_MS.length) {
          await pause(RETRY_PAUSES_MS[attempt] as number);
          continue;
        }
        throw this.failure(run, lastErr);
      }
    }
  }

  /**
   * Runs `fn` in one transaction on one connection: its statements commit together when it
   * resolves, or not at all. Retried on a fresh connection as `query` is (whole, from BEGIN),
   * so `fn` must be safe to run again when `run.idempotent` is set.
   */
  async transaction<T>(
    fn: (q: <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<R[]>) => Promise<T>,
    run: Run,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed)
        throw new HearthError('HEARTH_ERR_NOT_READY', `cannot ${run.what}: the store is closed`);
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        if (attempt < RETRY_PAUSES_MS.length) {
          await pause(RETRY_PAUSES_MS[attempt] as number);
          continue;
        }
        throw this.failure(run, err, true);
      }
      const onError = () => {};
      client.on('error', onError);
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(async (text, values) => (await client.query(text, values)).rows);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        broken = isConnectionError(err) || isTimeout(err);
        if (!broken) await client.query('ROLLBACK').catch(() => {});
        if (run.idempotent && isConnectionError(err) && attempt < RETRY_PAUSES_MS.length) {
          await pause(RETRY_PAUSES_MS[attempt] as number);
          continue;
        }
        throw err instanceof HearthError ? err : this.failure(run, err);
      } finally {
        client.off('error', onError);
        // Destroy rather than reuse a connection whose state is unknown.
        client.release(broken ? true : undefined);
      }
    }
  }

  failure(run: Run, err: unknown, unreachable = false): HearthError {
    const reason = redactText(reasonOf(err), this.url);
    if (unreachable || isConnectionError(err) || isTimeout(err)) {
      return new HearthError(
        'HEARTH_ERR_STORE_UNAVAILABLE',
        `cannot ${run.what}: PostgreSQL at ${this.where} is unavailable (${reason}); nothing was saved`,
        { cause: err },
      );
    }
    return new HearthError(
      'HEARTH_ERR_STORE',
      `cannot ${run.what} in PostgreSQL at ${this.where}: ${reason}`,
      {
        cause: err,
      },
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
