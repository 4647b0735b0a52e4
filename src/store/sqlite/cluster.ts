import type SQLite from 'better-sqlite3';
import {
  CLAIMS_KEPT_MS,
  type ClaimStore,
  type LeaseStore,
  MEMBERS_KEPT_MS,
  type MemberStore,
} from '../store.js';

/** How often (at most) old claims and silent members are pruned. */
const PRUNE_EVERY_MS = 60_000;

interface LeaseRow {
  name: string;
  holder: string;
  token: number;
  expires_at: number;
}

interface MemberRow {
  id: string;
  role: string;
  agent: string | null;
  host: string;
  pid: number;
  started_at: number;
  last_seen: number;
}

/**
 * Leases, claims and members on SQLite: one box, so this box's clock is the database's clock.
 * The SQL mirrors the PostgreSQL backend statement for statement (see ../postgres/cluster.ts).
 */
export function sqliteCluster(
  db: SQLite.Database,
  now: () => number = Date.now,
): { leases: LeaseStore; claims: ClaimStore; members: MemberStore } {
  // The token goes up whenever the lease changes hands or was expired; a holder renewing its
  // live lease keeps its token, which also makes a retried acquire harmless.
  const acquire = db.prepare<
    { name: string; holder: string; now: number; ttl: number },
    { token: number; expires_at: number }
  >(
    `INSERT INTO lease (name, holder, token, expires_at) VALUES (@name, @holder, 1, @now + @ttl)
     ON CONFLICT (name) DO UPDATE SET
       token = CASE WHEN lease.holder = excluded.holder AND lease.expires_at > @now THEN lease.token ELSE lease.token + 1 END,
       holder = excluded.holder,
       expires_at = excluded.expires_at
     WHERE lease.holder = excluded.holder OR lease.expires_at <= @now
     RETURNING token, expires_at`,
  );
  const release = db.prepare<{ name: string; holder: string; now: number }>(
    'UPDATE lease SET expires_at = @now WHERE name = @name AND holder = @holder AND expires_at > @now',
  );
  const leaseList = db.prepare<[], LeaseRow>(
    'SELECT name, holder, token, expires_at FROM lease ORDER BY name',
  );
  const claimInsert = db.prepare<{
    automation: string;
    instant: number;
    lease: string;
    token: number;
    now: number;
  }>(
    `INSERT INTO schedule_claim (automation, instant, lease, token, claimed_at)
     SELECT @automation, @instant, @lease, @token, @now FROM lease
     WHERE name = @lease AND token = @token AND expires_at > @now
     ON CONFLICT (automation, instant) DO NOTHING`,
  );
  const claimPrune = db.prepare<[number]>('DELETE FROM schedule_claim WHERE instant < ?');
  const beat = db.prepare<MemberRow>(
    `INSERT INTO member (id, role, agent, host, pid, started_at, last_seen)
     VALUES (@id, @role, @agent, @host, @pid, @started_at, @last_seen)
     ON CONFLICT (id) DO UPDATE SET role = excluded.role, agent = excluded.agent, host = excluded.host,
       pid = excluded.pid, started_at = excluded.started_at, last_seen = excluded.last_seen`,
  );
  const memberPrune = db.prepare<[number]>('DELETE FROM member WHERE last_seen < ?');
  const memberList = db.prepare<[number], MemberRow>('SELECT * FROM member WHERE last_seen >= ? ORDER BY id');

  let lastClaimPrune = 0;
  let lastMemberPrune = 0;
  return {
    leases: {
      async acquire(name, holder, ttlMs) {
        const row = acquire.get({ name, holder, now: now(), ttl: Math.round(ttlMs) });
        return row && { token: row.token, expiresAt: row.expires_at };
      },
      async release(name, holder) {
        release.run({ name, holder, now: now() });
      },
      async list() {
        const at = now();
        return leaseList.all().map((r) => ({
          name: r.name,
          holder: r.holder,
          token: r.token,
          expiresAt: r.expires_at,
          held: r.expires_at > at,
        }));
      },
    },
    claims: {
      async claim(c) {
        // One statement, and SQLite runs one writer at a time: no call can slip between the
        // check of the lease and the insert.
        const args = {
          automation: c.automation,
          instant: c.instant,
          lease: c.lease,
          token: c.token,
          now: now(),
        };
        const ok = claimInsert.run(args).changes === 1;
        if (now() - lastClaimPrune > PRUNE_EVERY_MS) {
          lastClaimPrune = now();
          claimPrune.run(lastClaimPrune - CLAIMS_KEPT_MS);
        }
        return ok;
      },
    },
    members: {
      async heartbeat(b) {
        const at = now();
        beat.run({
          id: b.id,
          role: b.role,
          agent: b.agent ?? null,
          host: b.host,
          pid: b.pid,
          started_at: b.startedAt,
          last_seen: at,
        });
        if (at - lastMemberPrune > PRUNE_EVERY_MS) {
          lastMemberPrune = at;
          memberPrune.run(at - MEMBERS_KEPT_MS);
        }
      },
      async list() {
        const at = now();
        return memberList.all(at - MEMBERS_KEPT_MS).map((r) => ({
          id: r.id,
          role: r.role,
          agent: r.agent ?? undefined,
          host: r.host,
          pid: r.pid,
          startedAt: r.started_at,
          lastSeen: r.last_seen,
          silentMs: Math.max(0, at - r.last_seen),
        }));
      },
    },
  };
}
