import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { spawnHearth } from './support/process.js';

/*
 * One box holds its services' leases in its SQLite file, as the box `one-box@<hostname>`
 * (src/compose.ts): the built CLI leads at once, again at once after a kill -9 (the same holder
 * renews its own lease), and refuses to start beside a hearth of another box on the same store.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function oneBox(): { dir: string; db: string; config: string } {
  const dir = tempDir();
  dirs.push(dir);
  const db = join(dir, 'hearth.db');
  const config = join(dir, 'hearth.yaml');
  writeFileSync(
    config,
    `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: ${db} }\nbuttons: [{ id: bedside }]\n`,
  );
  return { dir, db, config };
}

async function leases(db: string): Promise<Array<{ name: string; holder: string; token: number }>> {
  const store = await openSqliteStore(db);
  try {
    return (await store.leases.list()).map(({ name, holder, token }) => ({ name, holder, token }));
  } finally {
    await store.close();
  }
}

describe('one box holds its leases in SQLite', () => {
  it('leads every lease as this box at start, and at once again after a kill -9', async () => {
    const { db, config } = oneBox();
    const first = await spawnHearth(config);
    first.child.kill('SIGKILL');
    await first.exited;
    const held = await leases(db);
    expect(held.map((l) => l.name).sort()).toEqual(['agent:main', 'controller']);
    expect(new Set(held.map((l) => l.holder))).toEqual(new Set([`one-box@${hostname()}`]));
    // The lease it held is still live (10 minutes): the same box takes it again, same term.
    const again = await spawnHearth(config);
    try {
      expect(await leases(db)).toEqual(held);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  }, 60_000);

  it('refuses to start while another box holds a lease of the store, naming it', async () => {
    const { db, config } = oneBox();
    const store = await openSqliteStore(db);
    await store.leases.acquire('agent:main', 'one-box@another-box', 10 * 60_000);
    await store.close();
    const r = await runCli(['start', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `hearth could not start: HEARTH_ERR_CONFIG: another hearth process holds the lease agent:main in ${db}: one box runs one hearth per store`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
