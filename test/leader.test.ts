// Leader election on both backends, in real time with a short lease: one leader at a time, a
// leader that cannot renew stops acting before its lease can expire, and a standby takes over
// only after that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../src/house/leader.js';
import { openStore, type StorageConfig } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { createTestDatabase, postgresMissing } from './support/postgres.js';
import { until } from './support/wait.js';

const TTL = 1500;

interface Term {
  who: string;
  token: number;
  from: number;
  to?: number;
  reason?: string;
}

/** Two electors for one lease, each on its own store (as two processes would be), and the terms they served. */
function contest(stores: [Store, Store], lease: string) {
  const terms: Term[] = [];
  const lastExpiry = new Map<string, number>();
  /** How many times each holder's known expiry moved on: its renewals (the first grant included). */
  const renewals = new Map<string, number>();
  const electors = (['a', 'b'] as const).map(
    (who, i) =>
      new LeaderElector({
        leases: (stores[i] as Store).leases,
        name: lease,
        holder: who,
        ttlMs: TTL,
        onLead: (token) => terms.push({ who, token, from: Date.now() }),
        onLose: (reason) => {
          const term = terms.findLast((t) => t.who === who && t.to === undefined);
          if (term) Object.assign(term, { to: Date.now(), reason });
        },
      }),
  );
  // The expiry each leader last knew of: the database's may only be later (a renewal whose answer was lost).
  const watch = setInterval(() => {
    electors.forEach((e, i) => {
      const who = i === 0 ? 'a' : 'b';
      if (!e.lease || e.lease.expiresAt === lastExpiry.get(who)) return;
      lastExpiry.set(who, e.lease.expiresAt);
      renewals.set(who, (renewals.get(who) ?? 0) + 1);
    });
  }, 10);
  const leader = () => electors.findIndex((e) => e.isLeader);
  const waitFor = (cond: () => boolean, what: string) =>
    until(cond, { intervalMs: 10, what: () => `${what}; terms: ${JSON.stringify(terms)}` });
  const noOverlap = () => {
    const sorted = [...terms].sort((x, y) => x.from - y.from);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1] as Term;
      expect(prev.to, `term ${JSON.stringify(prev)} still open when the next began`).toBeDefined();
      expect((sorted[i] as Term).from).toBeGreaterThanOrEqual(prev.to as number);
    }
  };
  for (const e of electors) e.start();
  return {
    electors,
    terms,
    lastExpiry,
    renewals,
    leader,
    waitFor,
    noOverlap,
    async stop() {
      clearInterval(watch);
      await Promise.all(electors.map((e) => e.stop()));
    },
  };
}

const backends: { name: string; setup(): Promise<{ storage: StorageConfig; cleanup(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    async setup() {
      const dir = mkdtempSync(join(tmpdir(), 'hearth-leader-'));
      return {
        storage: { sqlite: join(dir, 'h.db') },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'postgres',
    async setup() {
      const db = await createTestDatabase();
      return { storage: { postgres: { url: db.url } }, cleanup: () => db.drop() };
    },
  },
];

for (const backend of backends)
  describe.skipIf(backend.name === 'postgres' && postgresMissing)(
    `leader election on ${backend.name}`,
    () => {
      let storage: StorageConfig;
      let cleanup: () => Promise<void>;
      beforeAll(async () => {
        ({ storage, cleanup } = await backend.setup());
      });
      afterAll(async () => {
        await cleanup?.();
      });

      it('elects one leader, which stops acting before expiry when its database is gone; the other takes over after', async () => {
        const stores: [Store, Store] = [await openStore(storage), await openStore(storage)];
        const c = contest(stores, 'controller');
        try {
          await c.waitFor(() => c.leader() >= 0, 'a leader');
          const first = c.leader();
          expect(c.electors.filter((e) => e.isLeader)).toHaveLength(1);
          // Several renewals: the same leader, the same token, no loss.
          const leading = first === 0 ? 'a' : 'b';
          const renewed = c.renewals.get(leading) ?? 0;
          await c.waitFor(() => (c.renewals.get(leading) ?? 0) >= renewed + 3, 'three renewals');
          expect(c.leader()).toBe(first);
          expect(c.terms).toHaveLength(1);
          const who = first === 0 ? 'a' : 'b';
          const token = c.terms[0]?.token as number;

          // The leader's database goes away: every renewal now fails.
          await (stores[first] as Store).close();
          await c.waitFor(() => c.terms.length === 2 && c.terms[1]?.from !== undefined, 'a second term');
          const [old, next] = c.terms as [Term, Term];
          const expiry = c.lastExpiry.get(who) as number;
          expect(old.who).toBe(who);
          expect(old.reason).toMatch(/could not be renewed in time/);
          // It stopped acting before its lease could expire...
          expect(old.to).toBeLessThan(expiry);
          // ...and the other took over only after the expiry, with the next token.
          expect(next.who).not.toBe(who);
          expect(next.from).toBeGreaterThanOrEqual(expiry - 5);
          expect(next.token).toBe(token + 1);
          c.noOverlap();
        } finally {
          await c.stop();
          for (const s of stores) await s.close();
        }
      });

      it('hands over at once when the leader stops, and tokens keep rising', async () => {
        const stores: [Store, Store] = [await openStore(storage), await openStore(storage)];
        const c = contest(stores, 'agent:kitchen');
        try {
          await c.waitFor(() => c.leader() >= 0, 'a leader');
          const first = c.leader();
          const token = c.electors[first]?.token as number;
          const stoppedAt = Date.now();
          await c.electors[first]?.stop();
          await c.waitFor(() => c.leader() === 1 - first, 'the other to lead');
          // A released lease is taken on the standby's next attempt, well before the lease would have expired.
          expect(Date.now() - stoppedAt).toBeLessThan(TTL);
          expect(c.electors[1 - first]?.token).toBe(token + 1);
          c.noOverlap();
        } finally {
          await c.stop();
          for (const s of stores) await s.close();
        }
      });
    },
  );

describe.skipIf(postgresMissing)('leader election on postgres: a renewal that hangs', () => {
  it('stops acting before expiry although its renewal never answers', async () => {
    const db = await createTestDatabase();
    const stores: [Store, Store] = [
      await openStore({ postgres: { url: db.url } }),
      await openStore({ postgres: { url: db.url } }),
    ];
    const c = contest(stores, 'controller');
    const blocker = new pg.Client({ connectionString: db.url });
    try {
      await c.waitFor(() => c.leader() >= 0, 'a leader');
      const who = c.leader() === 0 ? 'a' : 'b';
      await c.waitFor(() => c.lastExpiry.has(who), "the leader's expiry known");
      await blocker.connect();
      // Every statement on the lease table now waits: renewals are sent and never answered.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE lease IN ACCESS EXCLUSIVE MODE');
      await c.waitFor(() => c.terms[0]?.to !== undefined, 'the leader to stop acting');
      expect(c.leader()).toBe(-1);
      const lost = c.terms[0] as Term;
      expect(lost.who).toBe(who);
      expect(lost.to).toBeLessThan(c.lastExpiry.get(who) as number);
      // The lock holds until the lost lease has expired: nobody may lead meanwhile.
      const expiry = c.lastExpiry.get(who) as number;
      await c.waitFor(() => Date.now() > expiry, 'the lost lease to expire under the lock');
      expect(c.leader()).toBe(-1);
      await blocker.query('ROLLBACK');
      await c.waitFor(() => c.leader() >= 0, 'a leader after the lock');
      expect(c.terms.length).toBeGreaterThanOrEqual(2);
      // Whoever leads now: the other holder only with a new token; the same one may keep its token
      // if nobody took the lease meanwhile (its renewal, queued behind the lock, was judged at
      // the moment it was sent, while the lease was still its own).
      const last = c.terms.at(-1) as Term;
      expect(last.who === lost.who || last.token > lost.token).toBe(true);
      c.noOverlap();
    } finally {
      await blocker.end().catch(() => {});
      await c.stop();
      for (const s of stores) await s.close();
      await db.drop();
    }
  });
});
