import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hearth, startHearth } from '../src/compose.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { LOGIN_FAILURES, LoginThrottle } from '../src/server/sessions.js';
import { http, tempDir } from './support/hearth.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';

/*
 * Issue 11: dashboard sessions live in the store, so two hearths on one database (two api
 * replicas, or one hearth and the one after a restart) accept the same cookie, and a logout on
 * one ends it on all. Wrong logins are throttled per client address.
 */

const TOKEN = 'sessions-test-token-0123456789abcdef';
const json = { 'content-type': 'application/json' };

interface Backend {
  name: string;
  setup(): Promise<{ storage: string; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'one SQLite file',
    async setup() {
      return { storage: '{ sqlite: hearth.db }', cleanup: async () => {} };
    },
  },
  {
    name: 'one PostgreSQL database',
    async setup() {
      const db: TestDatabase = await createTestDatabase();
      return { storage: `{ postgres: { url: "${db.url}" } }`, cleanup: () => db.drop() };
    },
  },
];

for (const backend of backends)
  describe.skipIf(backend.name.includes('PostgreSQL') && postgresMissing)(
    `dashboard sessions shared by two hearths on ${backend.name}`,
    () => {
      let dir: string;
      let file: string;
      let cleanup: () => Promise<void>;
      const running: Hearth[] = [];

      const start = async () => {
        const h = await startHearth(loadConfigFile(file, { drivers }), { log: silentLogger() });
        running.push(h);
        return h;
      };
      const stop = async (h: Hearth) => {
        await h.stop();
        running.splice(running.indexOf(h), 1);
      };

      beforeAll(async () => {
        dir = tempDir();
        file = join(dir, 'hearth.yaml');
        const setup = await backend.setup();
        cleanup = setup.cleanup;
        writeFileSync(
          file,
          `http: { host: 127.0.0.1, port: 0, token: ${TOKEN} }\nstorage: ${setup.storage}\nbuttons:\n  - { id: bedside }\n`,
        );
      });

      afterAll(async () => {
        for (const h of [...running]) await h.stop();
        await cleanup?.();
        rmSync(dir, { recursive: true, force: true });
      });

      const press = (h: Hearth, cookie?: string) =>
        http(`${h.url}/api/v1/entities/bedside/commands/on`, {
          method: 'POST',
          headers: cookie ? { cookie } : {},
        });
      const loggedIn = async (h: Hearth, cookie: string) =>
        JSON.parse((await http(`${h.url}/api/v1/session`, { headers: { cookie } })).body).authenticated;

      it('a session made on one is accepted by the other, survives a restart, and a logout ends it on both', async () => {
        const a = await start();
        const b = await start();
        const login = await http(`${a.url}/api/v1/session`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ token: TOKEN }),
        });
        expect(login.status).toBe(200);
        const cookie = /^(hearth_session=[\w-]{43});/.exec(login.headers.get('set-cookie') ?? '')?.[1] ?? '';
        expect(cookie).not.toBe('');
        expect((await press(b)).status).toBe(403);
        expect((await press(b, cookie)).status).toBe(200);
        expect(await loggedIn(b, cookie)).toBe(true);

        // A restart of a: the session is still good there.
        await stop(a);
        const a2 = await start();
        expect((await press(a2, cookie)).status).toBe(200);

        // The store keeps the digest of the id, never the id.
        const id = cookie.split('=')[1] as string;
        const digest = createHash('sha256').update(id).digest('hex');
        expect(await a2.store.sessions.find(digest, Date.now())).toBeDefined();
        expect(await a2.store.sessions.find(id, Date.now())).toBeUndefined();

        // Logging out on b ends it on a2 too, at once.
        const out = await http(`${b.url}/api/v1/session`, { method: 'DELETE', headers: { cookie } });
        expect(out.status).toBe(204);
        expect((await press(a2, cookie)).status).toBe(403);
        expect((await press(b, cookie)).status).toBe(403);
        expect(await loggedIn(a2, cookie)).toBe(false);
        expect(await a2.store.sessions.count()).toBe(0);
      });
    },
  );

/** A POST from a chosen loopback address (127.0.0.2 is loopback too on Linux). */
function postFrom(
  localAddress: string,
  url: string,
  body: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, headers: json }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('wrong logins are throttled per client address', () => {
  let dir: string;
  let h: Hearth;

  beforeAll(async () => {
    dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(
      file,
      `http: { host: 127.0.0.1, port: 0, token: ${TOKEN}, allow: [127.0.0.0/8] }\nstorage: { sqlite: hearth.db }\n`,
    );
    h = await startHearth(loadConfigFile(file, { drivers }), { log: silentLogger() });
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`answers 429 with Retry-After after ${LOGIN_FAILURES} wrong tokens, to that address only`, async () => {
    const url = `${h.url}/api/v1/session`;
    const wrong = JSON.stringify({ token: 'not-the-token' });
    const right = JSON.stringify({ token: TOKEN });
    for (let i = 0; i < LOGIN_FAILURES; i++) {
      expect((await postFrom('127.0.0.3', url, wrong)).status).toBe(403);
    }
    for (const body of [wrong, right]) {
      const refused = await postFrom('127.0.0.3', url, body);
      expect(refused.status).toBe(429);
      const wait = Number(refused.headers['retry-after']);
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(60);
      expect(refused.headers['set-cookie']).toBeUndefined();
      const { error } = JSON.parse(refused.body);
      expect(error.code).toBe('HEARTH_ERR_TOO_MANY_LOGINS');
      expect(error.message).not.toContain(TOKEN);
    }
    // Another address still logs in with the right token.
    const ok = await postFrom('127.0.0.4', url, right);
    expect(ok.status).toBe(200);
    expect(String(ok.headers['set-cookie'])).toMatch(/^hearth_session=/);
  });
});

describe('LoginThrottle', () => {
  it('blocks for a minute, forgets failures older than a minute, and tracks a bounded number of addresses', () => {
    let now = 1_000_000;
    const t = new LoginThrottle(() => now, 3);
    for (let i = 0; i < LOGIN_FAILURES - 1; i++) t.failed('a');
    expect(t.retryAfter('a')).toBe(0);
    // The window ran out: the count starts again.
    now += 60_000;
    for (let i = 0; i < LOGIN_FAILURES - 1; i++) t.failed('a');
    expect(t.retryAfter('a')).toBe(0);
    t.failed('a');
    expect(t.retryAfter('a')).toBe(60);
    now += 59_500;
    expect(t.retryAfter('a')).toBe(1);
    now += 500;
    expect(t.retryAfter('a')).toBe(0);
    // A right login clears the tally.
    t.failed('b');
    t.succeeded('b');
    expect(t.tracked).toBe(1);
    for (const address of ['c', 'd', 'e', 'f']) t.failed(address);
    expect(t.tracked).toBe(3);
  });
});
