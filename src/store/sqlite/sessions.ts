import type SQLite from 'better-sqlite3';
import type { SessionStore, StoredSession } from '../store.js';

interface Row {
  hash: string;
  created_at: number;
  expires_at: number;
}

const toSession = (r: Row): StoredSession => ({
  hash: r.hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

/** Dashboard sessions on SQLite; the SQL mirrors ../postgres/sessions.ts. */
export function sqliteSessions(db: SQLite.Database): SessionStore {
  const prune = db.prepare<[number]>('DELETE FROM dashboard_session WHERE expires_at <= ?');
  const insert = db.prepare<[string, number, number]>(
    'INSERT INTO dashboard_session (hash, created_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING',
  );
  // Keeps the newest `cap` (by creation, then digest so ties are decided the same everywhere).
  const trim = db.prepare<[number]>(
    `DELETE FROM dashboard_session WHERE hash NOT IN (
       SELECT hash FROM dashboard_session ORDER BY created_at DESC, hash DESC LIMIT ?
     )`,
  );
  const find = db.prepare<[string, number], Row>(
    'SELECT hash, created_at, expires_at FROM dashboard_session WHERE hash = ? AND expires_at > ?',
  );
  const remove = db.prepare<[string]>('DELETE FROM dashboard_session WHERE hash = ?');
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dashboard_session');
  const create = db.transaction((s: StoredSession, cap: number) => {
    prune.run(s.createdAt);
    insert.run(s.hash, s.createdAt, s.expiresAt);
    trim.run(Math.max(0, Math.floor(cap)));
  });
  return {
    async create(session, cap) {
      create.immediate(session, cap);
    },
    async find(hash, now) {
      const row = find.get(hash, now);
      return row && toSession(row);
    },
    async delete(hash) {
      return remove.run(hash).changes > 0;
    },
    async prune(now) {
      return prune.run(now).changes;
    },
    async count() {
      return count.get()?.n ?? 0;
    },
  };
}
