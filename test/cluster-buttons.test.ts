import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  type RoleProcess,
  startLockedBroker,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { post, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { mosquittoMissing, type TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

/*
 * The cap on buttons that presses create (`buttonLimits.maxUndeclared`) holds through two api
 * replicas pressing new ids at once, as it does on one box: both check and write in the one
 * store, in one transaction.
 */
const CAP = 20;
const IDS = 300;

describe.skipIf(mosquittoMissing)('buttons through two api replicas', () => {
  let db: TestDatabase;
  let broker: TestMosquitto;
  let dir: string;
  let apis: RoleProcess[] = [];
  let oneBox: TestHearth;

  beforeAll(async () => {
    db = await createTestDatabase();
    broker = await startLockedBroker();
    dir = tempDir();
    const body = `buttons: [{ id: bedside }]\nbuttonLimits: { maxUndeclared: ${CAP} }\n`;
    const config = writeClusterConfig(dir, { pgUrl: db.url, mqttUrl: broker.url, body });
    apis = await Promise.all([startRole(config, 'api'), startRole(config, 'api')]);
    oneBox = await startTestHearth(body);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(apis.map((p) => p.stop()));
    await oneBox?.close();
    await broker?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('keeps at most maxUndeclared new ids, and refuses the rest as one box does', async () => {
    const [a, b] = apis as [RoleProcess, RoleProcess];
    // Many new ids at once, spread over both replicas, 16 in flight at a time.
    const answers: Array<{ id: string; status: number; body: string }> = [];
    const ids = Array.from({ length: IDS }, (_, i) => `new${i}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < ids.length; i = next++) {
          const id = ids[i] as string;
          const api = i % 2 === 0 ? a : b;
          answers.push({ id, ...(await call(`${api.url}/api/v0/buttons/${id}/on/`, { method: 'POST' })) });
        }
      }),
    );
    const rows = await storeButtons(db.url);
    const ok = answers.filter((x) => x.status === 200);
    const refused = answers.filter((x) => x.status !== 200);
    expect(rows.length).toBeLessThanOrEqual(CAP);
    expect(ok.length).toBe(rows.length);
    expect(ok.length).toBe(CAP);
    expect(new Set(ok.map((x) => x.id))).toEqual(new Set(rows));
    expect(refused.length).toBe(IDS - CAP);

    // One box full to the same cap answers the same for the same id, word for word.
    for (let i = 0; i < CAP; i++) await post(`${oneBox.url}/api/v0/buttons/box${i}/on/`);
    for (const x of refused.slice(0, 5)) {
      const box = await post(`${oneBox.url}/api/v0/buttons/${x.id}/on/`);
      expect({ status: x.status, body: x.body }).toEqual({ status: box.status, body: box.body });
    }
    expect(refused[0]?.status).toBe(409);

    // The declared button and the ids kept still work through either replica.
    expect((await call(`${b.url}/api/v0/buttons/bedside/on/`, { method: 'POST' })).status).toBe(200);
    const first = ok[0]?.id as string;
    expect(await call(`${b.url}/api/v0/buttons/${first}/off/`, { method: 'POST' })).toEqual({
      status: 200,
      body: 'OK',
    });
    expect(await call(`${a.url}/api/v0/buttons/${first}/`)).toEqual({ status: 200, body: 'OFF\n' });
  }, 60_000);
});

/** The ids of the undeclared buttons the shared store holds. */
async function storeButtons(url: string): Promise<string[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>(
      "SELECT id FROM entity_state WHERE kind = 'button' AND id <> 'bedside' ORDER BY id",
    );
    return rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}
