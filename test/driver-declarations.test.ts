import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod/v3';
import { LocalBus } from '../src/core/bus.js';
import { systemClock } from '../src/core/clock.js';
import { DeviceHost } from '../src/core/device-host.js';
import type { DeviceConfig, Driver, DriverContext } from '../src/core/driver.js';
import { createLogger } from '../src/core/log.js';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import { fakeDriverContext } from './support/driver-context.js';
import { tempDir } from './support/hearth.js';

/*
 * A driver's entities are declared once, by `entities(config)`; `setup` binds its commands to
 * those ids. A driver whose setup binds (or adds) an id it did not declare fails: in the
 * runtime, and in the driver context its own tests use.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A driver that declares one switch `<id>` and, in setup, does what `bind` says with `ctx`. */
function testDriver(
  bind: (ctx: DriverContext, config: DeviceConfig) => void,
): Driver & { caught: unknown[] } {
  const caught: unknown[] = [];
  return {
    name: 'declaring',
    configKinds: ['declaring/v1'],
    section: 'switches',
    configSchema: z.object({ id: z.string(), kind: z.string() }) as unknown as Driver['configSchema'],
    entities: (c) => [{ id: c.id, kind: 'switch', name: c.id, timeoutMs: 1000 }],
    async setup(ctx, config) {
      try {
        bind(ctx, config);
      } catch (err) {
        caught.push(err);
        throw err;
      }
      return { stop: async () => {} };
    },
    caught,
  };
}

const handlers = {
  on: async () => 'on' as const,
  off: async () => 'off' as const,
  toggle: async () => 'on' as const,
};
const config = { id: 'lamp', kind: 'declaring/v1', name: 'lamp', simulate: false };

/** Starts `driver` with one device `lamp` in a real runtime; answers it and its log lines. */
async function run(driver: Driver): Promise<{ runtime: DeviceHost; lines: string[] }> {
  const store = await openSqliteStore(join(tempDir(), 'hearth.db'));
  cleanups.push(() => store.close());
  const lines: string[] = [];
  const log = createLogger(
    'info',
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const runtime = new DeviceHost({
    timezone: 'UTC',
    devices: [{ driver, config }],
    bus: new LocalBus(),
    clock: systemClock,
    log,
  });
  await runtime.start();
  cleanups.push(() => runtime.stop());
  return { runtime, lines };
}

describe('entities are declared once, by the driver', () => {
  it('binds a declared id: the entity has the declared kind, name and deadline', async () => {
    const driver = testDriver((ctx, c) => ctx.entities.bind(c.id, 'switch', handlers, { pollMs: 0 }));
    const { runtime } = await run(driver);
    expect(driver.caught).toEqual([]);
    expect(runtime.get('lamp')).toMatchObject({
      id: 'lamp',
      kind: 'switch',
      name: 'lamp',
      driver: 'declaring',
    });
    expect((await runtime.command('lamp', 'on')).state).toBe('on');
  });

  it('refuses to bind an id the driver did not declare, and the device fails to start', async () => {
    const driver = testDriver((ctx) => ctx.entities.bind('porch', 'switch', handlers));
    const { runtime, lines } = await run(driver);
    expect(driver.caught).toHaveLength(1);
    expect(driver.caught[0]).toMatchObject({
      code: 'HEARTH_ERR_CONFIG',
      message:
        'the declaring driver binds switch "porch" for device "lamp", which its entities() does not declare (it declares "lamp" (switch))',
    });
    expect(runtime.get('porch')).toBeUndefined();
    expect(lines.join('')).toContain('which its entities() does not declare');
  });

  it('refuses to bind a declared id as another kind', async () => {
    const driver = testDriver((ctx, c) => ctx.entities.bind(c.id, 'sensor', {}));
    await run(driver);
    expect(driver.caught[0]).toMatchObject({ code: 'HEARTH_ERR_CONFIG', message: /binds sensor "lamp"/ });
  });

  it('refuses an entity added at run time by a driver that is not dynamic', async () => {
    const driver = testDriver((ctx) =>
      ctx.entities.add({ id: 'porch', kind: 'switch', name: 'porch', timeoutMs: 1000, pollMs: 0 }, handlers),
    );
    const { runtime } = await run(driver);
    expect(driver.caught[0]).toMatchObject({
      code: 'HEARTH_ERR_CONFIG',
      message: /adds entity "porch" at run time for device "lamp", but only a driver with dynamic: true may/,
    });
    expect(runtime.get('porch')).toBeUndefined();
  });

  it("fails the driver's own test: the driver context of driver tests refuses the same", async () => {
    const driver = testDriver((ctx) => ctx.entities.bind('porch', 'switch', handlers));
    const { ctx } = fakeDriverContext(driver, config);
    await expect(driver.setup(ctx, config)).rejects.toMatchObject({ code: 'HEARTH_ERR_CONFIG' });
    const adding = testDriver((c) =>
      c.entities.add({ id: 'porch', kind: 'switch', name: 'porch', timeoutMs: 1000, pollMs: 0 }, handlers),
    );
    await expect(adding.setup(fakeDriverContext(adding, config).ctx, config)).rejects.toThrow(/not dynamic/);
  });
});
