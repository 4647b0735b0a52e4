import type { ConfigStackStore, StackGrant } from '../store.js';
import type { Db } from './db.js';

const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
/** statement_timestamp(), not now(): now() is when the transaction began, before it waited for the lock. */
const expiry = 'statement_timestamp() + make_interval(secs => $3::float8 / 1000)';

/**
 * Configstack claims on PostgreSQL. A claim is one transaction that first takes an advisory
 * lock for its stack, so claimers of one stack take turns: each sees every claim committed
 * before it (READ COMMITTED, a fresh snapshot per statement) and no two can pick the same free
 * index. Renewals and releases are single statements that take no lock; the one race they have
 * with a claimer (renewing a claim that had just expired) is settled by the conditional upsert
 * below. Claims are rare (a pod starting), so taking turns costs nothing.
 */
export function postgresConfigStacks(db: Db): ConfigStackStore {
  return {
    async claim(stack, holder, hashes, ttlMs) {
      const ttl = Math.round(ttlMs);
      // Safe to retry whole: a holder that claimed already gets its own index back.
      return db.transaction(
        async (q): Promise<StackGrant | undefined> => {
          await q("SELECT pg_advisory_xact_lock(hashtextextended('hearth configstack ' || $1, 0))", [stack]);
          await q('DELETE FROM configstack_claim WHERE stack = $1 AND idx >= $2', [stack, hashes.length]);
          const own = await q<{ idx: number; entry_hash: string }>(
            'SELECT idx, entry_hash FROM configstack_claim WHERE stack = $1 AND holder = $2',
            [stack, holder],
          );
          if (own[0]) {
            const { idx, entry_hash } = own[0];
            const rows = await q<{ expires_at: number }>(
              `UPDATE configstack_claim SET entry_hash = $4, expires_at = ${expiry}
               WHERE stack = $1 AND holder = $2 RETURNING ${ms('expires_at')} AS expires_at`,
              [stack, holder, ttl, hashes[idx]],
            );
            return {
              index: idx,
              previousHash: entry_hash,
              expiresAt: (rows[0] as { expires_at: number }).expires_at,
            };
          }
          const live = await q<{ idx: number }>(
            'SELECT idx FROM configstack_claim WHERE stack = $1 AND expires_at > statement_timestamp()',
            [stack],
          );
          const taken = new Set(live.map((r) => r.idx));
          for (let idx = 0; idx < hashes.length; idx++) {
            if (taken.has(idx)) continue;
            // An expired claim is replaced only if it is still expired: its holder may have
            // renewed it since the read above (renewals take no lock). ON CONFLICT re-checks
            // the newest version of the row.
            const rows = await q<{ expires_at: number }>(
              `INSERT INTO configstack_claim AS c (stack, idx, holder, entry_hash, expires_at)
               VALUES ($1, $4, $2, $5, ${expiry})
               ON CONFLICT (stack, idx) DO UPDATE SET holder = excluded.holder, entry_hash = excluded.entry_hash,
                 expires_at = excluded.expires_at
               WHERE c.expires_at <= statement_timestamp()
               RETURNING ${ms('expires_at')} AS expires_at`,
              [stack, holder, ttl, idx, hashes[idx]],
            );
            if (rows[0]) return { index: idx, previousHash: null, expiresAt: rows[0].expires_at };
          }
          return undefined;
        },
        { idempotent: true, what: `claim an entry of the configstack ${stack}` },
      );
    },
    async renew(stack, holder, size, ttlMs) {
      const rows = await db.query<{ idx: number; expires_at: number }>(
        `UPDATE configstack_claim SET expires_at = ${expiry}
         WHERE stack = $1 AND holder = $2 AND idx < $4 RETURNING idx, ${ms('expires_at')} AS expires_at`,
        [stack, holder, Math.round(ttlMs), size],
        { idempotent: true, what: `renew the claim of ${holder} on the configstack ${stack}` },
      );
      const row = rows[0];
      return row && { index: row.idx, expiresAt: row.expires_at };
    },
    async release(stack, holder) {
      const rows = await db.query(
        'DELETE FROM configstack_claim WHERE stack = $1 AND holder = $2 RETURNING 1',
        [stack, holder],
        { idempotent: true, what: `release the claim of ${holder} on the configstack ${stack}` },
      );
      return rows.length > 0;
    },
    async list(stack) {
      const rows = await db.query<{
        stack: string;
        idx: number;
        holder: string;
        entry_hash: string;
        expires_at: number;
        held: boolean;
      }>(
        `SELECT stack, idx, holder, entry_hash, ${ms('expires_at')} AS expires_at,
           expires_at > statement_timestamp() AS held
         FROM configstack_claim WHERE stack = $1 ORDER BY idx`,
        [stack],
        { idempotent: true, what: `list the claims of the configstack ${stack}` },
      );
      return rows.map((r) => ({
        stack: r.stack,
        index: r.idx,
        holder: r.holder,
        entryHash: r.entry_hash,
        expiresAt: r.expires_at,
        held: r.held,
      }));
    },
  };
}
