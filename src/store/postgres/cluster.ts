import { randomUUID } from 'node:crypto';
import {
  CLAIMS_KEPT_MS,
  type ClaimStore,
  type LeaseStore,
  MEMBERS_KEPT_MS,
  type MemberStore,
} from '../store.js';
import type { Db } from './db.js';

/** How often (at most) old claims and silent members are pruned. */
const PRUNE_EVERY_MS = 60_000;

const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;

/**
 * Leases, claims and members on PostgreSQL. Every decision about time uses the database's
 * now(), so boxes with skewed clocks agree; each operation is one statement, so it is atomic
 * without an explicit transaction.
 */
export function postgresCluster(db: Db): { leases: LeaseStore; claims: ClaimStore; members: MemberStore } {
  let lastClaimPrune = 0;
  let lastMemberPrune = 0;
  return {
    leases: {
      async acquire(name, holder, ttlMs) {
        // Concurrent acquires of one name serialise on the row (INSERT ... ON CONFLICT locks it
        // and re-evaluates the WHERE on the newest version), so exactly one holder wins.
        const rows = await db.query<{ token: number; expires_at: number }>(
          `INSERT INTO lease AS l (name, holder, token, expires_at)
           VALUES ($1, $2, 1, now() + make_interval(secs => $3::float8 / 1000))
           ON CONFLICT (name) DO UPDATE SET
             token = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.token ELSE l.token + 1 END,
             holder = excluded.holder,
             expires_at = excluded.expires_at
           WHERE l.holder = excluded.holder OR l.expires_at <= now()
           RETURNING token::float8 AS token, ${ms('expires_at')} AS expires_at`,
          [name, holder, Math.round(ttlMs)],
          // A retry after a lost reply renews the lease just taken and keeps its token.
          { idempotent: true, what: `acquire the lease ${name}` },
        );
        const row = rows[0];
        return row && { token: row.token, expiresAt: row.expires_at };
      },
      async release(name, holder) {
        await db.query(
          'UPDATE lease SET expires_at = now() WHERE name = $1 AND holder = $2 AND expires_at > now()',
          [name, holder],
          { idempotent: true, what: `release the lease ${name}` },
        );
      },
      async list() {
        const rows = await db.query<{
          name: string;
          holder: string;
          token: number;
          expires_at: number;
          held: boolean;
        }>(
          `SELECT name, holder, token::float8 AS token, ${ms('expires_at')} AS expires_at, expires_at > now() AS held
           FROM lease ORDER BY name`,
          [],
          { idempotent: true, what: 'list the leases' },
        );
        return rows.map((r) => ({
          name: r.name,
          holder: r.holder,
          token: r.token,
          expiresAt: r.expires_at,
          held: r.held,
        }));
      },
    },
    claims: {
      async claim(c) {
        // `attempt` makes this call's retries idempotent (a retry after a lost reply finds its
        // own row and answers true) while a second call for the same instant answers false.
        // FOR SHARE holds the lease row until the insert commits, so it cannot change hands
        // between the check and the insert.
        const attempt = randomUUID();
        const rows = await db.query<{ ok: boolean }>(
          `WITH held AS (
             SELECT 1 FROM lease WHERE name = $3 AND token = $4 AND expires_at > now() FOR SHARE
           ), ins AS (
             INSERT INTO schedule_claim (automation, instant, lease, token, attempt)
             SELECT $1, $2, $3, $4, $5 FROM held
             ON CONFLICT (automation, instant) DO NOTHING
             RETURNING 1
           )
           SELECT EXISTS (SELECT 1 FROM ins)
             OR EXISTS (SELECT 1 FROM schedule_claim WHERE automation = $1 AND instant = $2 AND attempt = $5) AS ok`,
          [c.automation, Math.round(c.instant), c.lease, c.token, attempt],
          { idempotent: true, what: `claim ${c.automation} at ${new Date(c.instant).toISOString()}` },
        );
        if (Date.now() - lastClaimPrune > PRUNE_EVERY_MS) {
          lastClaimPrune = Date.now();
          // Pruning is housekeeping: its failure must not turn a good claim into an error.
          await db
            .query(
              'DELETE FROM schedule_claim WHERE claimed_at < now() - make_interval(secs => $1::float8 / 1000)',
              [CLAIMS_KEPT_MS],
              {
                idempotent: true,
                what: 'prune old schedule claims',
              },
            )
            .catch(() => {});
        }
        return rows[0]?.ok === true;
      },
    },
    members: {
      async heartbeat(b) {
        await db.query(
          `INSERT INTO member (id, role, agent, host, pid, started_at, last_seen)
           VALUES ($1, $2, $3, $4, $5, $6, now())
           ON CONFLICT (id) DO UPDATE SET role = excluded.role, agent = excluded.agent, host = excluded.host,
             pid = excluded.pid, started_at = excluded.started_at, last_seen = excluded.last_seen`,
          [b.id, b.role, b.agent ?? null, b.host, b.pid, Math.round(b.startedAt)],
          { idempotent: true, what: `record the heartbeat of ${b.id}` },
        );
        if (Date.now() - lastMemberPrune > PRUNE_EVERY_MS) {
          lastMemberPrune = Date.now();
          await db
            .query(
              'DELETE FROM member WHERE last_seen < now() - make_interval(secs => $1::float8 / 1000)',
              [MEMBERS_KEPT_MS],
              {
                idempotent: true,
                what: 'prune silent members',
              },
            )
            .catch(() => {});
        }
      },
      async list() {
        const rows = await db.query<{
          id: string;
          role: string;
          agent: string | null;
          host: string;
          pid: number;
          started_at: number;
          last_seen: number;
          silent_ms: number;
        }>(
          `SELECT id, role, agent, host, pid, started_at::float8 AS started_at, ${ms('last_seen')} AS last_seen,
             ${ms('now()')} - ${ms('last_seen')} AS silent_ms
           FROM member WHERE last_seen >= now() - make_interval(secs => $1::float8 / 1000) ORDER BY id`,
          [MEMBERS_KEPT_MS],
          { idempotent: true, what: 'list the cluster members' },
        );
        return rows.map((r) => ({
          id: r.id,
          role: r.role,
          agent: r.agent ?? undefined,
          host: r.host,
          pid: r.pid,
          startedAt: r.started_at,
          lastSeen: r.last_seen,
          silentMs: Math.max(0, r.silent_ms),
        }));
      },
    },
  };
}
