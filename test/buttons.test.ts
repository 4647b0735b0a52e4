import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod/v3';
import { type Hearth, startHearth } from '../src/compose.js';
import { loadConfigFile } from '../src/config/load.js';
import { LocalBus } from '../src/core/bus.js';
import { Buttons } from '../src/core/buttons.js';
import { systemClock } from '../src/core/clock.js';
import type { Driver } from '../src/core/driver.js';
import { createLogger, silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { startWemoSimulator } from '../src/drivers/wemo/simulator.js';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import { http, post, startTestHearth, tempDir } from './support/hearth.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real hearth on loopback from config text in `dir`, kept across restarts; `lines` gets its log. */
async function boot(
  dir: string,
  yaml: string,
  { lines, http = '{ host: 127.0.0.1, port: 0 }' }: { lines?: string[]; http?: string } = {},
): Promise<Hearth> {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(file, `http: ${http}\nstorage: { sqlite: hearth.db }\n${yaml}`);
  const log = lines
    ? createLogger(
        'info',
        new Writable({
          write(chunk, _enc, done) {
            lines.push(String(chunk));
            done();
          },
        }),
      )
    : silentLogger();
  const hearth = await startHearth(loadConfigFile(file, { drivers }), { log });
  cleanups.push(() => hearth.stop());
  return hearth;
}

const del = (url: string) => http(url, { method: 'DELETE' });
const errorOf = (body: string) => (JSON.parse(body) as { error: { code: string; hint: string } }).error;

describe('buttons that presses create', () => {
  it('caps undeclared button ids; declared buttons and known ids always work', async () => {
    const h = await startTestHearth(`buttons: [{ id: bedside }]\nbuttonLimits: { maxUndeclared: 3 }\n`);
    cleanups.push(() => h.close());
    for (const id of ['a', 'b', 'c'])
      expect((await post(`${h.url}/api/v0/buttons/${id}/on/`)).body).toBe('OK');

    const refused = await post(`${h.url}/api/v0/buttons/d/on/`);
    expect(refused.status).toBe(409);
    expect(refused.type).toBe('text/plain; charset=utf-8');
    expect(refused.body).toMatch(
      /^HEARTH_ERR_TOO_MANY_BUTTONS: button "d" was not created: 3 buttons .* \(3\); delete unused ones with DELETE \/api\/v1\/entities\/<id>, or declare "d" under buttons:\n$/,
    );
    // /api/v1 never creates a button: an unknown id there is still a 404.
    expect((await post(`${h.url}/api/v1/entities/e/commands/on`)).status).toBe(404);
    // Nothing of a refused id is kept anywhere.
    expect((await http(`${h.url}/api/v0/buttons/d/`)).status).toBe(404);
    expect(await h.store.states.get('d')).toBeUndefined();
    expect(h.runtime.list().map((e) => e.id)).toEqual(['bedside', 'a', 'b', 'c']);

    // The declared button and ids that exist are never refused.
    expect((await post(`${h.url}/api/v0/buttons/bedside/on/`)).status).toBe(200);
    expect((await post(`${h.url}/api/v0/buttons/a/off/`)).status).toBe(200);
    expect((await http(`${h.url}/api/v0/buttons/a/`)).body).toBe('OFF\n');

    // Deleting one makes room.
    expect((await del(`${h.url}/api/v1/entities/a`)).status).toBe(204);
    expect((await http(`${h.url}/api/v0/buttons/a/`)).status).toBe(404);
    expect((await post(`${h.url}/api/v0/buttons/d/on/`)).body).toBe('OK');
  });

  it('allows 100 undeclared ids by default', async () => {
    const h = await startTestHearth('');
    cleanups.push(() => h.close());
    for (let i = 0; i < 100; i++) expect((await post(`${h.url}/api/v0/buttons/b${i}/on/`)).status).toBe(200);
    expect((await post(`${h.url}/api/v0/buttons/b100/on/`)).status).toBe(409);
    expect(h.runtime.list()).toHaveLength(100);
  });

  it('DELETE /api/v1/entities/<id>: a pressed button goes for good; the config owns the rest', async () => {
    const dir = tempDir();
    const plug = await startWemoSimulator({ initial: false });
    cleanups.push(() => plug.close());
    const yaml = `buttons: [{ id: bedside }]
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${plug.port}, pollSeconds: 0 }
`;
    let h = await boot(dir, yaml);
    await post(`${h.url}/api/v0/buttons/porch/on/`);

    const declared = await del(`${h.url}/api/v1/entities/bedside`);
    expect([declared.status, errorOf(declared.body).code]).toEqual([409, 'HEARTH_ERR_ENTITY_DECLARED']);
    expect(errorOf(declared.body).hint).toContain('config file');
    const device = await del(`${h.url}/api/v1/entities/lamp`);
    expect([device.status, errorOf(device.body).code]).toEqual([409, 'HEARTH_ERR_ENTITY_DECLARED']);
    const unknown = await del(`${h.url}/api/v1/entities/nosuch`);
    expect([unknown.status, errorOf(unknown.body).code]).toEqual([404, 'HEARTH_ERR_ENTITY_NOT_FOUND']);

    expect((await del(`${h.url}/api/v1/entities/porch`)).status).toBe(204);
    expect((await http(`${h.url}/api/v1/entities/porch`)).status).toBe(404);
    expect(await h.store.states.get('porch')).toBeUndefined();
    await h.stop();

    // Gone after a restart too; and it is a control route: the public listener refuses it.
    h = await boot(dir, '', { http: '{ host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }' });
    expect(h.runtime.get('porch')).toBeUndefined();
    await post(`${h.url}/api/v0/buttons/porch/on/`);
    expect((await del(`${h.publicUrl}/api/v1/entities/porch`)).status).toBe(403);
    expect(h.runtime.get('porch')?.state).toBe('on');
  });

  it('a device declared after its id was pressed as a button wins: the button is dropped, once', async () => {
    const dir = tempDir();
    let h = await boot(dir, '');
    expect((await post(`${h.url}/api/v0/buttons/garage/on/`)).body).toBe('OK');
    await h.stop();

    const plug = await startWemoSimulator({ initial: false });
    cleanups.push(() => plug.close());
    const yaml = `switches:
  - { id: garage, kind: wemo/v1, address: 127.0.0.1, port: ${plug.port}, pollSeconds: 0 }
`;
    const lines: string[] = [];
    h = await boot(dir, yaml, { lines });
    expect(h.runtime.get('garage')).toMatchObject({ kind: 'switch', driver: 'wemo', available: true });
    expect((await post(`${h.url}/api/v0/switches/garage/on/`)).body).toBe('OK');
    expect(plug.on).toBe(true);
    expect(await h.store.states.get('garage')).toBeUndefined();
    const warnings = lines.filter((l) => l.includes('the config wins'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 40, entity: 'garage', driver: 'wemo' });
    // A press of the device's id is refused, so the clash cannot come back.
    expect((await post(`${h.url}/api/v0/buttons/garage/on/`)).status).toBe(400);
    await h.stop();

    lines.length = 0;
    h = await boot(dir, yaml, { lines });
    expect(lines.filter((l) => l.includes('the config wins'))).toEqual([]);
  });

  it('a device that has not registered yet still owns its ids', async () => {
    // The button rules know a device's ids from the config, not from the device: a device that
    // is away (its driver has registered nothing yet) still owns its ids against a press.
    const store = await openSqliteStore(join(tempDir(), 'hearth.db'));
    cleanups.push(() => store.close());
    const buttons = new Buttons({
      declared: [],
      rows: store.states,
      clock: systemClock,
      log: silentLogger(),
      deviceOf: (id) => (id === 'garage' ? 'probing' : undefined),
    });
    await expect(buttons.press('garage', 'on')).rejects.toMatchObject({
      code: 'HEARTH_ERR_BAD_ID',
      message: '"garage" is an entity of a probing device in the config, not a button',
    });
    expect(await store.states.get('garage')).toBeUndefined();
  });
});
