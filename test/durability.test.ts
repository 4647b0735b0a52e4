import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { http, post, tempDir } from './support/hearth.js';
import { spawnHearth } from './support/process.js';

describe('an acknowledged button press survives kill -9', () => {
  const dir = tempDir();
  const config = join(dir, 'hearth.yaml');
  writeFileSync(
    config,
    // 150 pressed ids: past the default cap of undeclared buttons (100).
    'http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: data/hearth.db }\nbuttonLimits: { maxUndeclared: 1000 }\nbuttons:\n  - { id: bedside }\n',
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every state answered with 200 across kill -9 and a restart', async () => {
    const first = await spawnHearth(config);
    const want = new Map<string, 'ON' | 'OFF'>();
    // Many ids (the old service forgot past 128) and repeated presses of one id: the last wins.
    for (let i = 0; i < 150; i++) {
      const id = i < 140 ? `button-${i}` : 'bedside';
      const state = (i * 7) % 3 === 0 ? 'on' : 'off';
      const r = await post(`${first.url}/api/v0/buttons/${id}/${state}/`);
      expect([r.status, r.body]).toEqual([200, 'OK']);
      want.set(id, state === 'on' ? 'ON' : 'OFF');
    }
    // The very last acknowledged write, then the process dies with no chance to flush anything.
    expect((await post(`${first.url}/api/v0/buttons/last-one/on`)).status).toBe(200);
    want.set('last-one', 'ON');
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    const second = await spawnHearth(config);
    try {
      for (const [id, state] of want) {
        const r = await http(`${second.url}/api/v0/buttons/${id}/`);
        expect([id, r.status, r.body]).toEqual([id, 200, `${state}\n`]);
      }
      const entities = JSON.parse((await http(`${second.url}/api/v1/entities`)).body).entities;
      expect(entities).toHaveLength(want.size);
    } finally {
      second.child.kill('SIGTERM');
      const { code } = await second.exited;
      // SIGTERM is a clean stop.
      expect(code).toBe(0);
    }
  });
});
