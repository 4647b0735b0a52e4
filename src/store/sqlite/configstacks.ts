import type SQLite from 'better-sqlite3';
import type { ConfigStackStore, StackGrant } from '../store.js';

interface ClaimRow {
  stack: string;
  idx: number;
  holder: string;
  entry_hash: string;
  expires_at: number;
}

/**
 * Configstack claims on SQLite. A claim is one IMMEDIATE transaction: it takes the write lock
 * before it reads, so claimers in other processes (each `hearth configstack claim` is one) wait
 * for it (busy_timeout) instead of reading a list another claimer is about to change. The steps
 * mirror ../postgres/configstacks.ts.
 */
export function sqliteConfigStacks(db: SQLite.Database, now: () => number = Date.now): ConfigStackStore {
  const dropShrunk = db.prepare<[string, number]>(
    'DELETE FROM configstack_claim WHERE stack = ? AND idx >= ?',
  );
  const mine = db.prepare<[string, string], ClaimRow>(
    'SELECT * FROM configstack_claim WHERE stack = ? AND holder = ?',
  );
  const extend = db.prepare<{ stack: string; holder: string; hash: string; expires: number }>(
    'UPDATE configstack_claim SET entry_hash = @hash, expires_at = @expires WHERE stack = @stack AND holder = @holder',
  );
  const live = db.prepare<[string, number], { idx: number }>(
    'SELECT idx FROM configstack_claim WHERE stack = ? AND expires_at > ?',
  );
  const take = db.prepare<{ stack: string; idx: number; holder: string; hash: string; expires: number }>(
    `INSERT INTO configstack_claim (stack, idx, holder, entry_hash, expires_at)
     VALUES (@stack, @idx, @holder, @hash, @expires)
     ON CONFLICT (stack, idx) DO UPDATE SET holder = excluded.holder, entry_hash = excluded.entry_hash,
       expires_at = excluded.expires_at`,
  );
  const renew = db.prepare<
    { stack: string; holder: string; size: number; expires: number },
    { idx: number; expires_at: number }
  >(
    `UPDATE configstack_claim SET expires_at = @expires
     WHERE stack = @stack AND holder = @holder AND idx < @size RETURNING idx, expires_at`,
  );
  const release = db.prepare<[string, string]>(
    'DELETE FROM configstack_claim WHERE stack = ? AND holder = ?',
  );
  const list = db.prepare<[string], ClaimRow>('SELECT * FROM configstack_claim WHERE stack = ? ORDER BY idx');

  const claim = db.transaction(
    (stack: string, holder: string, hashes: readonly string[], ttlMs: number): StackGrant | undefined => {
      const at = now();
      const expires = at + Math.round(ttlMs);
      dropShrunk.run(stack, hashes.length);
      const own = mine.get(stack, holder);
      if (own) {
        extend.run({ stack, holder, hash: hashes[own.idx] as string, expires });
        return { index: own.idx, previousHash: own.entry_hash, expiresAt: expires };
      }
      const taken = new Set(live.all(stack, at).map((r) => r.idx));
      for (let idx = 0; idx < hashes.length; idx++) {
        if (taken.has(idx)) continue;
        take.run({ stack, idx, holder, hash: hashes[idx] as string, expires });
        return { index: idx, previousHash: null, expiresAt: expires };
      }
      return undefined;
    },
  );

  return {
    async claim(stack, holder, hashes, ttlMs) {
      return claim.immediate(stack, holder, hashes, ttlMs);
    },
    async renew(stack, holder, size, ttlMs) {
      const row = renew.get({ stack, holder, size, expires: now() + Math.round(ttlMs) });
      return row && { index: row.idx, expiresAt: row.expires_at };
    },
    async release(stack, holder) {
      return release.run(stack, holder).changes > 0;
    },
    async list(stack) {
      const at = now();
      return list.all(stack).map((r) => ({
        stack: r.stack,
        index: r.idx,
        holder: r.holder,
        entryHash: r.entry_hash,
        expiresAt: r.expires_at,
        held: r.expires_at > at,
      }));
    },
  };
}
