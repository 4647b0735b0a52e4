import type { SessionStore } from '../store.js';
import type { Db } from './db.js';

interface Row {
  hash: string;
  created_at: number;
  expires_at: number;
}

const COLUMNS = 'hash, created_at::float8 AS created_at, expires_at::float8 AS expires_at';

/** Dashboard sessions on PostgreSQL; the SQL mirrors ../sqlite/sessions.ts. */
export function postgresSessions(db: Db): SessionStore {
  return {
    async create(s, cap) {
      // Safe to retry whole: the insert does nothing when the digest is already there.
      await db.transaction(
        async (q) => {
          await q('DELETE FROM dashboard_session WHERE expires_at <= $1', [Math.round(s.createdAt)]);
          await q(
            'INSERT INTO dashboard_session (hash, created_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING',
            [s.hash, Math.round(s.createdAt), Math.round(s.expiresAt)],
          );
          await q(
            `DELETE FROM dashboard_session WHERE hash NOT IN (
               SELECT hash FROM dashboard_session ORDER BY created_at DESC, hash DESC LIMIT $1
             )`,
            [Math.max(0, Math.floor(cap))],
          );
        },
        { idempotent: true, what: 'save a dashboard session' },
      );
    },
    async find(hash, now) {
      const rows = await db.query<Row>(
        `SELECT ${COLUMNS} FROM dashboard_session WHERE hash = $1 AND expires_at > $2`,
        [hash, Math.round(now)],
        { idempotent: true, what: 'look up a dashboard session' },
      );
      const r = rows[0];
      return r && { hash: r.hash, createdAt: r.created_at, expiresAt: r.expires_at };
    },
    async delete(hash) {
      const rows = await db.query('DELETE FROM dashboard_session WHERE hash = $1 RETURNING 1', [hash], {
        idempotent: true,
        what: 'end a dashboard session',
      });
      return rows.length > 0;
    },
    async prune(now) {
      const rows = await db.query(
        'DELETE FROM dashboard_session WHERE expires_at <= $1 RETURNING 1',
        [Math.round(now)],
        {
          idempotent: true,
          what: 'prune expired dashboard sessions',
        },
      );
      return rows.length;
    },
    async count() {
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dashboard_session', [], {
        idempotent: true,
        what: 'count dashboard sessions',
      });
      return rows[0]?.n ?? 0;
    },
  };
}
