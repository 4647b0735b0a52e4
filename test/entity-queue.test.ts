/**
 * Commands to one entity run one at a time; how many may wait is bounded, so a flood of
 * presses for a hung plug fails fast with a clear error instead of piling up without end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HearthError } from '../src/core/errors.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { post, startTestHearth, type TestHearth } from './support/hearth.js';
import { settlesAtOnce } from './support/wait.js';

describe('the queue of one entity', () => {
  let lamp: WemoSimulator;
  let h: TestHearth;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    lamp.mode = 'hang';
    h = await startTestHearth(`
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, timeoutMs: 1000, pollSeconds: 0 }
`);
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  it('refuses the 101st waiting command at once, naming the entity, and takes commands again after', async () => {
    const waiting = Array.from({ length: 100 }, () =>
      h.runtime.command('lamp', 'on').catch((err: unknown) => err),
    );
    const refusing = h.runtime.command('lamp', 'on');
    expect(await settlesAtOnce(refusing)).toBe(true);
    const refused = await refusing.catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(HearthError);
    expect((refused as HearthError).status).toBe(502);
    expect((refused as HearthError).message).toBe(
      'commands for lamp: 100 are already waiting; try again once the earlier ones have finished',
    );
    const over = await post(`${h.url}/api/v0/switches/lamp/on/`);
    expect(over.status).toBe(502);
    expect(over.body).toContain('commands for lamp: 100 are already waiting');

    // The queued ones end at their own deadlines (the first by timeout, the rest expire in turn).
    const outcomes = await Promise.all(waiting);
    expect(outcomes.every((o) => o instanceof Error)).toBe(true);
    lamp.mode = 'ok';
    expect((await h.runtime.command('lamp', 'on')).state).toBe('on');
  });
});
