// One suite, two backends: every case runs against SQLite (a temp file) and PostgreSQL (a fresh
// database on 127.0.0.1:5432), so the two cannot drift apart.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historySchema } from '../src/config/sections/history.js';
import { LocalBus } from '../src/core/bus.js';
import { DeviceHost } from '../src/core/device-host.js';
import { HearthError } from '../src/core/errors.js';
import { silentLogger } from '../src/core/log.js';
import { HistoryRecorder } from '../src/history/recorder.js';
import { openStore, type StorageConfig } from '../src/store/open.js';
import type { HistoryRow, Store } from '../src/store/store.js';
import { FakeClock } from './support/fake-clock.js';
import {
  admin,
  adminUrl,
  createTestDatabase,
  postgresMissing,
  type TestDatabase,
  terminateBackends,
} from './support/postgres.js';
import { repoRoot } from './support/process.js';
import { until } from './support/wait.js';

interface Backend {
  name: 'sqlite' | 'postgres';
  setup(): Promise<{ storage: StorageConfig; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    async setup() {
      const dir = mkdtempSync(join(tmpdir(), 'hearth-store-'));
      return {
        storage: { sqlite: join(dir, 'hearth.db') },
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'postgres',
    async setup() {
      const db: TestDatabase = await createTestDatabase();
      return { storage: { postgres: { url: db.url } }, cleanup: () => db.drop() };
    },
  },
];

for (const backend of backends)
  describe.skipIf(backend.name === 'postgres' && postgresMissing)(`store on ${backend.name}`, () => {
    let storage: StorageConfig;
    let cleanup: () => Promise<void>;
    let store: Store;

    beforeAll(async () => {
      ({ storage, cleanup } = await backend.setup());
      store = await openStore(storage);
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('says which backend it is', () => {
      expect(store.kind).toBe(backend.name);
    });

    describe('states', () => {
      it('puts, gets, lists by kind and deletes', async () => {
        await store.states.put({ id: 's-b', kind: 'button', state: 'on', updatedAt: 1_700_000_000_123 });
        await store.states.put({ id: 's-a', kind: 'button', state: { on: true, n: [1, 2] }, updatedAt: 5 });
        await store.states.put({ id: 's-c', kind: 'other', state: 3.5, updatedAt: 6 });
        expect(await store.states.get('s-b')).toEqual({
          id: 's-b',
          kind: 'button',
          state: 'on',
          updatedAt: 1_700_000_000_123,
        });
        expect(await store.states.get('s-missing')).toBeUndefined();
        expect((await store.states.list('button')).map((s) => s.id)).toEqual(['s-a', 's-b']);
        expect((await store.states.list()).map((s) => s.id)).toEqual(
          expect.arrayContaining(['s-a', 's-b', 's-c']),
        );
        await store.states.put({ id: 's-b', kind: 'button', state: 'off', updatedAt: 7 });
        expect((await store.states.get('s-b'))?.state).toBe('off');
        expect(await store.states.delete('s-b')).toBe(true);
        expect(await store.states.delete('s-b')).toBe(false);
        expect(await store.states.get('s-b')).toBeUndefined();
      });

      it('keeps what was written across a reopen', async () => {
        await store.states.put({ id: 'durable', kind: 'button', state: 'on', updatedAt: 42 });
        await store.automations.setMark('durable-auto', 1234);
        const second = await openStore(storage);
        try {
          expect(await second.states.get('durable')).toEqual({
            id: 'durable',
            kind: 'button',
            state: 'on',
            updatedAt: 42,
          });
          expect(await second.automations.getMark('durable-auto')).toBe(1234);
        } finally {
          await second.close();
        }
      });

      it('records presses of buttons, creating new undeclared ones only below the cap, from two connections at once', async () => {
        const declared = ['p-declared'];
        // Buttons written by the cases before count too: the cap is set above what is there.
        const probe = await store.states.pressButton(
          { id: 'p-probe', state: 'on', updatedAt: 1 },
          { declared, maxUndeclared: 0 },
        );
        expect(probe.recorded).toBe(false);
        const there = probe.recorded ? 0 : probe.full;
        expect(await store.states.get('p-probe')).toBeUndefined();
        const limit = { declared, maxUndeclared: there + 5 };

        const second = await openStore(storage);
        try {
          const results = await Promise.all(
            Array.from({ length: 40 }, (_, i) =>
              (i % 2 ? second : store).states.pressButton(
                { id: `p${i}`, state: 'on', updatedAt: 10 + i },
                limit,
              ),
            ),
          );
          expect(results.filter((r) => r.recorded)).toHaveLength(5);
          for (const r of results) if (!r.recorded) expect(r.full).toBe(there + 5);
          const made = (await store.states.list('button')).filter((s) => /^p\d+$/.test(s.id));
          expect(made).toHaveLength(5);

          // A press of a button that exists replaces its state and answers the one before, cap or not.
          const kept = made[0] as { id: string };
          const again = await second.states.pressButton({ id: kept.id, state: 'off', updatedAt: 99 }, limit);
          expect(again).toEqual({
            recorded: true,
            previous: expect.objectContaining({ id: kept.id, kind: 'button', state: 'on' }),
          });
          expect(await store.states.get(kept.id)).toEqual({
            id: kept.id,
            kind: 'button',
            state: 'off',
            updatedAt: 99,
          });
          // A declared id is never refused, and does not count.
          expect(
            await store.states.pressButton({ id: 'p-declared', state: 'on', updatedAt: 5 }, limit),
          ).toEqual({
            recorded: true,
            previous: undefined,
          });
          const full = await store.states.pressButton({ id: 'p-late', state: 'on', updatedAt: 5 }, limit);
          expect(full).toEqual({ recorded: false, full: there + 5 });
        } finally {
          await second.close();
        }
      });

      it('opens twice at once (migrations take turns)', async () => {
        const [a, b] = await Promise.all([openStore(storage), openStore(storage)]);
        await Promise.all([a.close(), b.close()]);
      });
    });

    describe('automations', () => {
      it('records runs newest first and their marks', async () => {
        const first = await store.automations.start('brew', 'cron 0 7 * * *', 1000);
        const second = await store.automations.start('brew', 'webhook', 2000);
        await store.automations.finish(first, 'ok', 1500, null);
        await store.automations.finish(second, 'failed', 2500, 'pot is empty');
        const runs = await store.automations.runs('brew', 10);
        expect(runs).toEqual([
          {
            id: second,
            automation: 'brew',
            trigger: 'webhook',
            startedAt: 2000,
            endedAt: 2500,
            outcome: 'failed',
            error: 'pot is empty',
          },
          {
            id: first,
            automation: 'brew',
            trigger: 'cron 0 7 * * *',
            startedAt: 1000,
            endedAt: 1500,
            outcome: 'ok',
            error: null,
          },
        ]);
        expect(await store.automations.runs('brew', 1)).toHaveLength(1);
        expect(await store.automations.getMark('brew')).toBeUndefined();
        await store.automations.setMark('brew', 99);
        await store.automations.setMark('brew', 100);
        expect(await store.automations.getMark('brew')).toBe(100);
      });
    });

    describe('leases', () => {
      it('acquires, renews keeping the token, refuses another holder, releases', async () => {
        const t0 = Date.now();
        const a = await store.leases.acquire('l1', 'alice', 5000);
        expect(a?.token).toBe(1);
        // The database's clock, within a generous skew of this process's.
        expect(a?.expiresAt).toBeGreaterThan(t0 + 4000);
        expect(a?.expiresAt).toBeLessThan(t0 + 7000);
        const renewed = await store.leases.acquire('l1', 'alice', 5000);
        expect(renewed?.token).toBe(1);
        expect(await store.leases.acquire('l1', 'bob', 5000)).toBeUndefined();
        expect((await store.leases.list()).find((l) => l.name === 'l1')).toMatchObject({
          holder: 'alice',
          token: 1,
          held: true,
        });
        await store.leases.release('l1', 'bob'); // not bob's: nothing happens
        expect(await store.leases.acquire('l1', 'bob', 5000)).toBeUndefined();
        await store.leases.release('l1', 'alice');
        expect((await store.leases.list()).find((l) => l.name === 'l1')?.held).toBe(false);
        // Tokens are never reused, not even after a release, not even by the same holder.
        expect((await store.leases.acquire('l1', 'bob', 5000))?.token).toBe(2);
        await store.leases.release('l1', 'bob');
        expect((await store.leases.acquire('l1', 'alice', 5000))?.token).toBe(3);
      });

      it('lets another holder take an expired lease with the next token', async () => {
        expect((await store.leases.acquire('l2', 'alice', 300))?.token).toBe(1);
        expect(await store.leases.acquire('l2', 'bob', 5000)).toBeUndefined();
        await until(async () => (await store.leases.list()).find((l) => l.name === 'l2')?.held === false, {
          what: 'the 300 ms lease l2 to expire',
        });
        expect((await store.leases.acquire('l2', 'bob', 5000))?.token).toBe(2);
        expect(await store.leases.acquire('l2', 'alice', 5000)).toBeUndefined();
      });

      it('gives a lease to exactly one of 5 holders acquiring at once', async () => {
        for (let round = 0; round < 5; round++) {
          const name = `race-${round}`;
          const results = await Promise.all(
            ['h1', 'h2', 'h3', 'h4', 'h5'].map((h) => store.leases.acquire(name, h, 5000)),
          );
          const winners = results.filter((r) => r !== undefined);
          expect(winners).toHaveLength(1);
          expect(winners[0]?.token).toBe(1);
        }
      });
    });

    describe('claims', () => {
      it('claims an instant once', async () => {
        const lease = await store.leases.acquire('c1', 'alice', 5000);
        const claim = {
          automation: 'chime',
          instant: 1_800_000_000_000,
          lease: 'c1',
          token: lease?.token ?? -1,
        };
        expect(await store.claims.claim(claim)).toBe(true);
        expect(await store.claims.claim(claim)).toBe(false);
        expect(await store.claims.claim({ ...claim, instant: claim.instant + 60_000 })).toBe(true);
        expect(await store.claims.claim({ ...claim, automation: 'other' })).toBe(true);
      });

      it('refuses a stale token, an expired lease and a lease never taken', async () => {
        const first = await store.leases.acquire('c2', 'alice', 200);
        await until(async () => (await store.leases.list()).find((l) => l.name === 'c2')?.held === false, {
          what: 'the 200 ms lease c2 to expire',
        });
        const expired = { automation: 'brew', instant: 1000, lease: 'c2', token: first?.token ?? -1 };
        expect(await store.claims.claim(expired)).toBe(false);
        const second = await store.leases.acquire('c2', 'bob', 5000);
        expect(second?.token).toBe((first?.token ?? 0) + 1);
        // alice, deposed, still has her old token: refused.
        expect(await store.claims.claim(expired)).toBe(false);
        expect(await store.claims.claim({ ...expired, token: second?.token ?? -1 })).toBe(true);
        expect(
          await store.claims.claim({ automation: 'brew', instant: 2000, lease: 'never', token: 1 }),
        ).toBe(false);
      });

      it('lets exactly one of two holders claim when both try at once', async () => {
        const a = await store.leases.acquire('c3', 'alice', 5000);
        for (let i = 0; i < 10; i++) {
          const instant = 5000 + i;
          // bob believes he leads with the next token (he would, after a failover); only one wins.
          const results = await Promise.all([
            store.claims.claim({ automation: 'sprinkle', instant, lease: 'c3', token: a?.token ?? -1 }),
            store.claims.claim({ automation: 'sprinkle', instant, lease: 'c3', token: (a?.token ?? 0) + 1 }),
            store.claims.claim({ automation: 'sprinkle', instant, lease: 'c3', token: a?.token ?? -1 }),
          ]);
          expect(results.filter(Boolean)).toHaveLength(1);
          expect(results[1]).toBe(false);
        }
      });
    });

    describe('configstacks', () => {
      const hashes = (n: number, tag = 'h') => Array.from({ length: n }, (_, i) => `${tag}${i}`);

      it('gives each holder its own entry, the same one again, and none when all are held', async () => {
        const a = await store.configstacks.claim('s1', 'pod-a', hashes(2), 5000);
        expect(a).toMatchObject({ index: 0, previousHash: null });
        expect(a?.expiresAt).toBeGreaterThan(Date.now() + 3000);
        expect(await store.configstacks.claim('s1', 'pod-b', hashes(2), 5000)).toMatchObject({ index: 1 });
        expect(await store.configstacks.claim('s1', 'pod-c', hashes(2), 5000)).toBeUndefined();
        // A restart: the same holder gets the same entry, and hears the hash it had.
        expect(await store.configstacks.claim('s1', 'pod-b', hashes(2), 5000)).toMatchObject({
          index: 1,
          previousHash: 'h1',
        });
        // The entry was edited: the claim stays, the stored hash follows the config.
        expect(await store.configstacks.claim('s1', 'pod-b', ['h0', 'edited'], 5000)).toMatchObject({
          index: 1,
          previousHash: 'h1',
        });
        const claims = await store.configstacks.list('s1');
        expect(claims.map((c) => [c.index, c.holder, c.entryHash, c.held])).toEqual([
          [0, 'pod-a', 'h0', true],
          [1, 'pod-b', 'edited', true],
        ]);
        // Stacks are apart.
        expect(await store.configstacks.claim('s1-other', 'pod-c', hashes(1), 5000)).toMatchObject({
          index: 0,
        });
      });

      it('gives an entry back on release, and drops claims past a shrunk list', async () => {
        await store.configstacks.claim('s2', 'a', hashes(3), 5000);
        await store.configstacks.claim('s2', 'b', hashes(3), 5000);
        await store.configstacks.claim('s2', 'c', hashes(3), 5000);
        expect(await store.configstacks.release('s2', 'a')).toBe(true);
        expect(await store.configstacks.release('s2', 'a')).toBe(false);
        expect(await store.configstacks.claim('s2', 'd', hashes(3), 5000)).toMatchObject({ index: 0 });
        // The list shrank to 2: c's claim on entry 2 is dropped; c can no longer renew it, and a
        // new claim by c finds nothing free.
        expect(await store.configstacks.claim('s2', 'e', hashes(2), 5000)).toBeUndefined();
        expect((await store.configstacks.list('s2')).map((c) => c.holder)).toEqual(['d', 'b']);
        expect(await store.configstacks.renew('s2', 'c', 2, 5000)).toBeUndefined();
        expect(await store.configstacks.claim('s2', 'c', hashes(2), 5000)).toBeUndefined();
        // An empty stack has nothing to give.
        expect(await store.configstacks.claim('s2-empty', 'a', [], 5000)).toBeUndefined();
      });

      it('lets a new holder take the entry of a holder whose claim ran out; renewing keeps it', async () => {
        expect(await store.configstacks.claim('s3', 'old', hashes(2), 400)).toMatchObject({ index: 0 });
        expect(await store.configstacks.claim('s3', 'kept', hashes(2), 400)).toMatchObject({ index: 1 });
        // kept renews before its 400 ms run out; old does not.
        expect(await store.configstacks.renew('s3', 'kept', 2, 5000)).toMatchObject({ index: 1 });
        const entry = async (index: number) =>
          (await store.configstacks.list('s3')).find((c) => c.index === index);
        await until(async () => (await entry(0))?.held === false, { what: "old's 400 ms claim to run out" });
        expect(await entry(1)).toMatchObject({ holder: 'kept', held: true });
        expect(await store.configstacks.claim('s3', 'new', hashes(2), 5000)).toMatchObject({
          index: 0,
          previousHash: null,
        });
        // old comes back: its entry is gone, and there is no other.
        expect(await store.configstacks.renew('s3', 'old', 2, 5000)).toBeUndefined();
        expect(await store.configstacks.claim('s3', 'old', hashes(2), 5000)).toBeUndefined();
      });

      it('gives back its own expired entry to a holder nobody replaced', async () => {
        const expired = () =>
          until(
            async () => (await store.configstacks.list('s4')).find((c) => c.index === 0)?.held === false,
            {
              what: "slow's 200 ms claim to run out",
            },
          );
        expect(await store.configstacks.claim('s4', 'slow', hashes(3), 200)).toMatchObject({ index: 0 });
        await expired();
        // By renewing, and again by claiming.
        expect(await store.configstacks.renew('s4', 'slow', 3, 200)).toMatchObject({ index: 0 });
        await expired();
        expect(await store.configstacks.claim('s4', 'slow', hashes(3), 5000)).toMatchObject({ index: 0 });
      });

      it('gives 5 entries to exactly 5 of 20 holders claiming at once from separate connections', async () => {
        const stores = await Promise.all(Array.from({ length: 20 }, () => openStore(storage)));
        try {
          const grants = await Promise.all(
            stores.map((s, i) => s.configstacks.claim('race', `pod-${i}`, hashes(5), 30_000)),
          );
          const won = grants.filter((g) => g !== undefined).map((g) => g.index);
          expect(won.sort()).toEqual([0, 1, 2, 3, 4]);
          const claims = await store.configstacks.list('race');
          expect(claims).toHaveLength(5);
          expect(new Set(claims.map((c) => c.holder)).size).toBe(5);
          // Each winner is the holder the store recorded for its index.
          grants.forEach((g, i) => {
            if (g) expect(claims[g.index]?.holder).toBe(`pod-${i}`);
          });
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      });
    });

    describe('sessions', () => {
      const hash = (n: number) => n.toString(16).padStart(64, '0');

      it('creates, finds by digest only while alive, deletes', async () => {
        await store.sessions.create({ hash: hash(1), createdAt: 1000, expiresAt: 5000 }, 100);
        expect(await store.sessions.find(hash(1), 4999)).toEqual({
          hash: hash(1),
          createdAt: 1000,
          expiresAt: 5000,
        });
        expect(await store.sessions.find(hash(1), 5000)).toBeUndefined();
        expect(await store.sessions.find(hash(2), 2000)).toBeUndefined();
        // The same digest again (a retry) changes nothing.
        await store.sessions.create({ hash: hash(1), createdAt: 1000, expiresAt: 5000 }, 100);
        expect(await store.sessions.count()).toBe(1);
        expect(await store.sessions.delete(hash(1))).toBe(true);
        expect(await store.sessions.delete(hash(1))).toBe(false);
        expect(await store.sessions.find(hash(1), 2000)).toBeUndefined();
      });

      it('prunes expired sessions, on their own and whenever one is created', async () => {
        await store.sessions.create({ hash: hash(10), createdAt: 1000, expiresAt: 2000 }, 100);
        await store.sessions.create({ hash: hash(11), createdAt: 1000, expiresAt: 3000 }, 100);
        await store.sessions.create({ hash: hash(12), createdAt: 1000, expiresAt: 9000 }, 100);
        expect(await store.sessions.prune(2000)).toBe(1);
        expect(await store.sessions.count()).toBe(2);
        // Created at 3000: the session that expired at 3000 goes.
        await store.sessions.create({ hash: hash(13), createdAt: 3000, expiresAt: 9000 }, 100);
        expect(await store.sessions.count()).toBe(2);
        expect(await store.sessions.find(hash(12), 3000)).toBeDefined();
        expect(await store.sessions.find(hash(13), 3000)).toBeDefined();
        expect(await store.sessions.prune(10_000)).toBe(2);
        expect(await store.sessions.count()).toBe(0);
      });

      it('keeps at most the cap: the oldest go', async () => {
        for (let i = 0; i < 7; i++) {
          await store.sessions.create({ hash: hash(100 + i), createdAt: 10_000 + i, expiresAt: 99_000 }, 5);
        }
        expect(await store.sessions.count()).toBe(5);
        expect(await store.sessions.find(hash(100), 20_000)).toBeUndefined();
        expect(await store.sessions.find(hash(101), 20_000)).toBeUndefined();
        for (let i = 2; i < 7; i++) expect(await store.sessions.find(hash(100 + i), 20_000)).toBeDefined();
        await store.sessions.prune(100_000);
      });

      it('a session written by one connection is seen and ended by another (a restart, another replica)', async () => {
        await store.sessions.create({ hash: hash(200), createdAt: 1000, expiresAt: 50_000 }, 100);
        const second = await openStore(storage);
        try {
          expect(await second.sessions.find(hash(200), 2000)).toBeDefined();
          expect(await second.sessions.delete(hash(200))).toBe(true);
          expect(await store.sessions.find(hash(200), 2000)).toBeUndefined();
        } finally {
          await second.close();
        }
      });
    });

    describe('members', () => {
      it('records heartbeats and lists members', async () => {
        await store.members.heartbeat({
          id: 'api@box1',
          role: 'api',
          host: 'box1',
          pid: 10,
          startedAt: 1000,
        });
        await store.members.heartbeat({
          id: 'agent@box2',
          role: 'agent',
          agent: 'kitchen',
          host: 'box2',
          pid: 20,
          startedAt: 2000,
        });
        await store.members.heartbeat({
          id: 'api@box1',
          role: 'api',
          host: 'box1',
          pid: 11,
          startedAt: 3000,
        });
        const members = await store.members.list();
        expect(members.map((m) => m.id)).toEqual(['agent@box2', 'api@box1']);
        expect(members[0]).toMatchObject({
          role: 'agent',
          agent: 'kitchen',
          host: 'box2',
          pid: 20,
          startedAt: 2000,
        });
        expect(members[1]).toMatchObject({ role: 'api', pid: 11, startedAt: 3000 });
        expect(members[1]?.agent).toBeUndefined();
        expect(members[1]?.silentMs).toBeGreaterThanOrEqual(0);
        expect(members[1]?.silentMs).toBeLessThan(5000);
        expect(Math.abs((members[1]?.lastSeen ?? 0) - Date.now())).toBeLessThan(5000);
      });
    });

    describe('history', () => {
      const MIN = 60_000;
      const DAY = 86_400_000;
      const T0 = Date.parse('2025-03-01T00:00:00Z');

      it('appends in one batch, reads a range in order', async () => {
        await store.history.append([
          { id: 'h-temp', at: T0 + 2000, num: 21.5, text: null },
          { id: 'h-temp', at: T0, num: 20, text: null },
          { id: 'h-door', at: T0 + 1000, num: null, text: 'open' },
          { id: 'h-temp', at: T0 + 4000, num: null, text: null },
        ]);
        expect(await store.history.raw('h-temp', T0, T0 + 10_000, 100)).toEqual([
          { id: 'h-temp', at: T0, num: 20, text: null },
          { id: 'h-temp', at: T0 + 2000, num: 21.5, text: null },
          { id: 'h-temp', at: T0 + 4000, num: null, text: null },
        ]);
        expect(await store.history.raw('h-temp', T0 + 1, T0 + 4000, 100)).toHaveLength(1);
        expect(await store.history.raw('h-temp', T0, T0 + 10_000, 2)).toHaveLength(2);
        expect(await store.history.countRaw('h-temp', T0, T0 + 10_000)).toBe(3);
        expect(await store.history.raw('h-door', T0, T0 + 10_000, 100)).toEqual([
          { id: 'h-door', at: T0 + 1000, num: null, text: 'open' },
        ]);
        expect(await store.history.has('h-door')).toBe(true);
        expect(await store.history.has('h-never')).toBe(false);
        await store.history.append([]);
      });

      it('keeps two readings of one entity in the same ms, both returned in order; a batch appended again adds nothing', async () => {
        const at = T0 + 20_000;
        const batch: HistoryRow[] = [
          { id: 'd-temp', at, num: 20, text: null },
          { id: 'd-temp', at, num: 21, text: null },
          { id: 'd-door', at, num: null, text: 'open' },
          { id: 'd-door', at, num: null, text: 'closed' },
        ];
        await store.history.append(batch);
        // A third reading of that ms in a later batch, numbered by its recorder.
        await store.history.append([{ id: 'd-temp', at, seq: 2, num: 19, text: null }]);
        const temps = [
          { id: 'd-temp', at, num: 20, text: null },
          { id: 'd-temp', at, num: 21, text: null },
          { id: 'd-temp', at, num: 19, text: null },
        ];
        expect(await store.history.raw('d-temp', at, at + 1, 100)).toEqual(temps);
        expect(await store.history.raw('d-temp', T0, T0 + MIN, 2)).toEqual(temps.slice(0, 2));
        expect(await store.history.countRaw('d-temp', T0, T0 + MIN)).toBe(3);
        expect(await store.history.buckets('d-temp', T0, T0 + MIN, MIN)).toEqual([
          { at: T0, count: 3, min: 19, mean: 20, max: 21 },
        ]);
        expect(await store.history.raw('d-door', at, at + 1, 100)).toEqual([
          { id: 'd-door', at, num: null, text: 'open' },
          { id: 'd-door', at, num: null, text: 'closed' },
        ]);
        // The last of a bucket is the later reading of the ms.
        expect(await store.history.textBuckets('d-door', T0, T0 + MIN, MIN)).toEqual([
          { at: T0, text: 'closed' },
        ]);
        // A flush retried after a lost reply: the same rows, the same keys, nothing added.
        await store.history.append(batch);
        await store.history.append([{ id: 'd-temp', at, seq: 2, num: 19, text: null }]);
        expect(await store.history.raw('d-temp', at, at + 1, 100)).toEqual(temps);
        expect(await store.history.countRaw('d-door', at, at + 1)).toBe(2);
      });

      it('buckets numbers (min, mean, max, count) and text (the last value) at read time', async () => {
        // 5-minute buckets: values 1..10 in the first, 100 and 200 in the second.
        const rows: HistoryRow[] = Array.from({ length: 10 }, (_, i) => ({
          id: 'b-temp',
          at: T0 + i * 20_000,
          num: i + 1,
          text: null,
        }));
        rows.push({ id: 'b-temp', at: T0 + 5 * MIN, num: 100, text: null });
        rows.push({ id: 'b-temp', at: T0 + 9 * MIN, num: 200, text: null });
        rows.push({ id: 'b-door', at: T0 + MIN, num: null, text: 'open' });
        rows.push({ id: 'b-door', at: T0 + 2 * MIN, num: null, text: 'closed' });
        rows.push({ id: 'b-door', at: T0 + 7 * MIN, num: null, text: 'open' });
        await store.history.append(rows);
        expect(await store.history.buckets('b-temp', T0, T0 + 10 * MIN, 5 * MIN)).toEqual([
          { at: T0, count: 10, min: 1, mean: 5.5, max: 10 },
          { at: T0 + 5 * MIN, count: 2, min: 100, mean: 150, max: 200 },
        ]);
        expect(await store.history.textBuckets('b-door', T0, T0 + 10 * MIN, 5 * MIN)).toEqual([
          { at: T0, text: 'closed' },
          { at: T0 + 5 * MIN, text: 'open' },
        ]);
        expect(await store.history.textBuckets('b-temp', T0, T0 + 10 * MIN, 5 * MIN)).toEqual([]);
      });

      it('compacts: old numbers become buckets, merged with raw ones when read; older than kept is deleted', async () => {
        const step = 5 * MIN;
        // Long before the rows of the other cases, which compaction (store-wide, by time) leaves alone.
        const T0 = Date.parse('2022-01-01T00:00:00Z');
        // Day 0: a reading every 10 s for an hour (values 0..359) and a door; day 10: a few more.
        const rows: HistoryRow[] = Array.from({ length: 360 }, (_, i) => ({
          id: 'c-temp',
          at: T0 + i * 10_000,
          num: i,
          text: null,
        }));
        rows.push({ id: 'c-door', at: T0 + 30 * MIN, num: null, text: 'open' });
        rows.push({ id: 'c-temp', at: T0 + 10 * DAY, num: 7, text: null });
        rows.push({ id: 'c-temp', at: T0 + 10 * DAY + 1000, num: 9, text: null });
        await store.history.append(rows);

        // Raw kept for 7 days: day 0 is folded into 12 buckets of 30 readings each.
        const first = await store.history.compact(T0 + 8 * DAY, T0 - 365 * DAY, step);
        expect(first).toEqual({ folded: 360, deleted: 0 });
        expect(await store.history.countRaw('c-temp', T0, T0 + DAY)).toBe(0);
        const buckets = await store.history.buckets('c-temp', T0, T0 + DAY, step);
        expect(buckets).toHaveLength(12);
        expect(buckets[0]).toEqual({ at: T0, count: 30, min: 0, mean: 14.5, max: 29 });
        expect(buckets[11]).toEqual({ at: T0 + 55 * MIN, count: 30, min: 330, mean: 344.5, max: 359 });
        // Coarser steps merge stored buckets by weight: the hour is one bucket, mean of 0..359.
        expect(await store.history.buckets('c-temp', T0, T0 + DAY, 3600_000)).toEqual([
          { at: T0, count: 360, min: 0, mean: 179.5, max: 359 },
        ]);
        // Text is kept as its changes, not folded; recent numbers stay raw.
        expect(await store.history.raw('c-door', T0, T0 + DAY, 10)).toHaveLength(1);
        expect(await store.history.countRaw('c-temp', T0 + 10 * DAY, T0 + 11 * DAY)).toBe(2);

        // Raw rows folded into a bucket already there are merged into it, not lost; two readings
        // of one ms are two.
        await store.history.append([
          { id: 'c-temp', at: T0 + 1000, num: -30, text: null },
          { id: 'c-temp', at: T0 + 1000, num: -40, text: null },
        ]);
        expect(await store.history.compact(T0 + 8 * DAY, T0 - 365 * DAY, step)).toEqual({
          folded: 2,
          deleted: 0,
        });
        expect((await store.history.buckets('c-temp', T0, T0 + step, step))[0]).toEqual({
          at: T0,
          count: 32,
          min: -40,
          mean: (14.5 * 30 - 70) / 32,
          max: 29,
        });

        // A year on, day 0 is deleted (12 buckets and the door), day 10 is folded.
        const late = await store.history.compact(T0 + 366 * DAY, T0 + DAY, step);
        expect(late).toEqual({ folded: 2, deleted: 13 });
        expect(await store.history.buckets('c-temp', T0, T0 + DAY, step)).toEqual([]);
        expect(await store.history.has('c-door')).toBe(false);
        expect(await store.history.buckets('c-temp', T0 + 10 * DAY, T0 + 11 * DAY, step)).toEqual([
          { at: T0 + 10 * DAY, count: 2, min: 7, mean: 8, max: 9 },
        ]);
      });

      it('the recorder compacts at start and hourly by its clock: raw past `raw` folded, past `downsampled` deleted', async () => {
        const clock = new FakeClock(T0);
        const config = historySchema.parse({ raw: '1d', downsampled: '3d', step: '5m' });
        // 4 days of a reading every minute, before the recorder starts.
        const rows = Array.from({ length: 4 * 1440 }, (_, i) => ({
          id: 'r-temp',
          at: T0 - 4 * DAY + i * MIN,
          num: i % 10,
          text: null,
        }));
        await store.history.append(rows);
        const runtime = new DeviceHost({
          timezone: 'UTC',
          devices: [],
          bus: new LocalBus(),
          clock,
          log: silentLogger(),
        });
        const recorder = new HistoryRecorder({
          runtime,
          store: store.history,
          config,
          clock,
          log: silentLogger(),
        });
        recorder.start();
        await clock.advanceAsync(0);
        await recorder.compact(); // waits for the compaction the start queued
        expect(recorder.stats.compactions).toBe(2);
        // Older than 3 days: gone. 1 to 3 days: buckets of 5 readings. Last day: raw.
        expect(await store.history.buckets('r-temp', T0 - 5 * DAY, T0 - 3 * DAY, 5 * MIN)).toEqual([]);
        expect(await store.history.countRaw('r-temp', T0 - 4 * DAY, T0 - DAY)).toBe(0);
        const mid = await store.history.buckets('r-temp', T0 - 2 * DAY, T0 - 2 * DAY + 10 * MIN, 5 * MIN);
        expect(mid).toEqual([
          { at: T0 - 2 * DAY, count: 5, min: 0, mean: 2, max: 4 },
          { at: T0 - 2 * DAY + 5 * MIN, count: 5, min: 5, mean: 7, max: 9 },
        ]);
        expect(await store.history.countRaw('r-temp', T0 - DAY, T0)).toBe(1440);
        // An hour later the next compaction folds the hour that left raw retention.
        await clock.advanceAsync(3600_000);
        await recorder.compact();
        expect(recorder.stats.compactions).toBe(4);
        expect(await store.history.countRaw('r-temp', T0 - DAY, T0)).toBe(1440 - 60);
        await recorder.stop();
      });
    });
  });

describe.skipIf(postgresMissing)('store on postgres: connection loss', () => {
  let db: TestDatabase;
  let store: Store;

  beforeAll(async () => {
    db = await createTestDatabase();
    store = await openStore({ postgres: { url: db.url } });
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('loses nothing it acknowledged when every connection is cut mid-stream', async () => {
    const total = 500;
    const concurrency = 8;
    const resolved: number[] = [];
    const rejected: { i: number; err: unknown }[] = [];
    let cuts = 0;
    let killed = 0;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        // Cut every connection twice: once while writes are blocked mid-statement (so the cut
        // hits statements in flight), once at whatever moment it lands.
        if (i === 120) {
          cuts++;
          killed += await cutWhileBlocked(db.name, db.url);
        }
        if (i === 320) {
          cuts++;
          killed += await terminateBackends(db.name);
        }
        try {
          await store.states.put({ id: `w${i}`, kind: 'button', state: { i }, updatedAt: i });
          resolved.push(i);
        } catch (err) {
          rejected.push({ i, err });
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    expect(cuts).toBe(2);
    expect(killed).toBeGreaterThan(0);
    for (const { err } of rejected) {
      expect(err).toBeInstanceOf(HearthError);
      expect((err as HearthError).status).toBe(503);
    }
    // The retry on a fresh connection hides a cut from its callers.
    expect(rejected.map((r) => r.i)).toEqual([]);
    expect(resolved).toHaveLength(total);
    const stored = new Map((await store.states.list('button')).map((s) => [s.id, s.state]));
    const lost = resolved.filter((i) => JSON.stringify(stored.get(`w${i}`)) !== JSON.stringify({ i }));
    expect(lost).toEqual([]);
    // And it keeps working.
    await store.states.put({ id: 'after', kind: 'button', state: 'on', updatedAt: 1 });
    expect((await store.states.get('after'))?.state).toBe('on');
  });

  it('survives idle connections being cut (no crash) and opens fresh ones', async () => {
    await Promise.all(Array.from({ length: 4 }, (_, i) => store.states.get(`idle${i}`)));
    expect(await terminateBackends(db.name)).toBeGreaterThan(0);
    // Gone on the server: their sockets are closed, and the pool hears of it as they were idle.
    await until(async () => (await hearthBackends(db.name, '')) === 0, { what: 'the cut connections gone' });
    await store.states.put({ id: 'idle-after', kind: 'button', state: 'off', updatedAt: 2 });
    expect((await store.states.get('idle-after'))?.state).toBe('off');
    expect((await store.leases.acquire('idle-lease', 'a', 5000))?.token).toBe(1);
  });

  it('survives connections cut the moment they open (no crash), with the process busy', async () => {
    // A cut that lands just after a fresh connection's start-up used to reach the process as an
    // 'error' event with nobody listening (the pool hands the connection over between the two),
    // and that ended it: a cluster agent died this way when its database connections were cut.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/pg-cut-storm.ts', db.url, '4000'],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const cutter = new pg.Client({ connectionString: adminUrl });
    await cutter.connect();
    let killed = 0;
    try {
      await until(() => out.includes('up') || child.exitCode !== null, {
        timeoutMs: 15_000,
        what: 'the storm process to open its store',
      });
      while (child.exitCode === null) {
        const rows = await cutter.query(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'hearth'",
          [db.name],
        );
        killed += Number(rows.rows[0]?.n ?? 0);
      }
    } finally {
      await cutter.end();
    }
    expect([await exited, err]).toEqual([0, '']);
    expect(killed).toBeGreaterThan(20);
    const summary = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { ok: number; failed: number };
    expect(summary.ok).toBeGreaterThan(0);
  }, 30_000);

  it('rejects with 503 when the database is gone, and recovers when it is back', async () => {
    // Stand-in for an outage: a store whose pool cannot connect (this database is renamed away).
    const gone = await createTestDatabase();
    const s = await openStore({ postgres: { url: gone.url, connectTimeoutMs: 1000 } });
    try {
      await s.states.put({ id: 'x', kind: 'button', state: 'on', updatedAt: 1 });
      await terminateBackends(gone.name);
      await admin(`ALTER DATABASE ${gone.name} RENAME TO ${gone.name}_away`);
      const err = await s.states
        .put({ id: 'y', kind: 'button', state: 'on', updatedAt: 2 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HearthError);
      expect(err).toMatchObject({ code: 'HEARTH_ERR_STORE_UNAVAILABLE', status: 503 });
      await admin(`ALTER DATABASE ${gone.name}_away RENAME TO ${gone.name}`);
      await s.states.put({ id: 'z', kind: 'button', state: 'on', updatedAt: 3 });
      expect(await s.states.get('y')).toBeUndefined();
      expect((await s.states.get('z'))?.state).toBe('on');
    } finally {
      await s.close();
      await admin(`DROP DATABASE IF EXISTS ${gone.name}_away WITH (FORCE)`);
      await gone.drop();
    }
  });
});

/** hearth's connections to `database` as the server counts them, `and` narrowing them. */
async function hearthBackends(database: string, and: string): Promise<number> {
  const rows = await admin(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'hearth' ${and}`,
    [database],
  );
  return Number(rows[0]?.n);
}

/**
 * Holds a lock that blocks every write to entity_state, lets writes pile up behind it, then
 * cuts every connection of the store: the writes die mid-statement, uncommitted.
 */
async function cutWhileBlocked(database: string, url: string): Promise<number> {
  const blocker = new pg.Client({ connectionString: url });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE entity_state IN SHARE ROW EXCLUSIVE MODE');
    await until(async () => (await hearthBackends(database, "AND wait_event_type = 'Lock'")) > 0, {
      what: 'writes waiting behind the lock',
    });
    const killed = await terminateBackends(database);
    await blocker.query('ROLLBACK');
    return killed;
  } finally {
    await blocker.end();
  }
}

describe('store on postgres: opening', () => {
  it('says clearly, within a bounded time, that PostgreSQL cannot be reached', async () => {
    const started = Date.now();
    const err = await openStore({
      postgres: { url: 'postgres://hearth:s3cret-pw@127.0.0.1:1/hearth' },
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(HearthError);
    const e = err as HearthError;
    expect(e.status).toBe(503);
    expect(e.message).toContain('cannot reach PostgreSQL at 127.0.0.1:1/hearth');
    expect(e.message).toContain('check that PostgreSQL is running');
    expect(e.message).not.toContain('s3cret-pw');
    expect(e.message).not.toContain('\n');
    expect(JSON.stringify(e)).not.toContain('s3cret-pw');
  });

  it.skipIf(postgresMissing)('names a missing database and says what to do', async () => {
    const url = new URL(adminUrl);
    url.pathname = '/hearth_test_does_not_exist';
    const err = await openStore({ postgres: { url: url.toString() } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HearthError);
    expect((err as HearthError).message).toMatch(/has no such database .*: create it/);
  });
});
