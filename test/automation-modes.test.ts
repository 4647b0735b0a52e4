import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Hearth, startHearth } from '../src/compose.js';
import type { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { RUNS_KEPT } from '../src/store/sqlite/open.js';
import { FakeClock } from './support/fake-clock.js';
import { http, post, tempDir } from './support/hearth.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MIN = 60_000;

/** A real hearth on loopback from config text, in `dir` (kept across restarts), on `clock`. */
async function boot(dir: string, yaml: string, clock: FakeClock): Promise<Hearth> {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    // No history recorder: its flush timer would sit among the delays these tests count.
    `timezone: UTC\nhttp: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\nhistory: { enabled: false }\n${yaml}`,
  );
  const hearth = await startHearth(loadConfigFile(file, { drivers }), { log: silentLogger(), clock });
  cleanups.push(() => hearth.stop());
  return hearth;
}

/** An automation `slow` that waits 10 minutes, then presses `done`. */
const slow = (mode: string) => `buttons: [{ id: done }, { id: press }]
automations:
  - id: slow
    ${mode}
    triggers: [{ state: press, to: "on" }]
    actions: [{ delay: { minutes: 10 } }, { command: done.on }]
`;

async function runsOf(h: Hearth) {
  return (await h.automations.runs('slow', 500)).reverse();
}

const runNow = async (h: Hearth) => {
  const r = await post(`${h.url}/api/v1/automations/slow/run`);
  return { status: r.status, body: JSON.parse(r.body) };
};

describe('automation modes', () => {
  it('single (the default): a trigger while it runs is recorded as skipped, 409 to the webhook', async () => {
    const clock = new FakeClock('2026-06-02T12:00:00Z');
    const h = await boot(tempDir(), slow(''), clock);
    const first = await runNow(h);
    expect(first).toMatchObject({ status: 202, body: { run: { outcome: 'running', trigger: 'webhook' } } });

    const again = await runNow(h);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: 'HEARTH_ERR_AUTOMATION_BUSY',
      message: 'automation "slow" is already running (mode: single); this trigger was recorded as skipped',
    });
    expect(again.body.error.hint).toContain('mode: restart');
    expect(again.body.run).toMatchObject({ outcome: 'skipped', error: 'already running (mode: single)' });
    // Every kind of trigger, not only the webhook.
    await post(`${h.url}/api/v0/buttons/press/on/`);
    await expect.poll(async () => (await runsOf(h)).length).toBe(3);

    const list = JSON.parse((await http(`${h.url}/api/v1/automations`)).body).automations;
    expect(list[0]).toMatchObject({ id: 'slow', mode: 'single', max: null, running: 1, queued: 0 });

    await clock.advanceAsync(10 * MIN);
    await expect
      .poll(async () => (await runsOf(h)).map((r) => [r.trigger, r.outcome, r.error]))
      .toEqual([
        ['webhook', 'ok', null],
        ['webhook', 'skipped', 'already running (mode: single)'],
        ['state press to on', 'skipped', 'already running (mode: single)'],
      ]);
    expect(h.runtime.get('done')?.state).toBe('on');
    // Over: the next trigger runs.
    expect((await runNow(h)).status).toBe(202);
  });

  it('restart: the run under way is cancelled, its delay cut, and a new one starts', async () => {
    const clock = new FakeClock('2026-06-02T12:00:00Z');
    const h = await boot(tempDir(), slow('mode: restart'), clock);
    await runNow(h);
    await clock.advanceAsync(5 * MIN);
    expect((await runNow(h)).status).toBe(202);
    await expect
      .poll(async () => (await runsOf(h)).map((r) => [r.outcome, r.error]))
      .toEqual([
        ['cancelled', 'restarted by webhook'],
        ['running', null],
      ]);
    // The first run's 10 minutes would end now: it does not press the button.
    await clock.advanceAsync(5 * MIN);
    expect(h.runtime.get('done')?.state).toBeNull();
    expect(clock.pending).toBe(1);
    await clock.advanceAsync(5 * MIN);
    await expect.poll(async () => (await runsOf(h)).map((r) => r.outcome)).toEqual(['cancelled', 'ok']);
    const [cancelled, ok] = await runsOf(h);
    expect(cancelled?.endedAt).toBe(Date.parse('2026-06-02T12:05:00Z'));
    expect(ok?.endedAt).toBe(Date.parse('2026-06-02T12:15:00Z'));
    expect(h.runtime.get('done')?.state).toBe('on');
  });

  it('queued: runs one after another, up to max running and waiting; hearth stopping cancels the waiting', async () => {
    const dir = tempDir();
    const clock = new FakeClock('2026-06-02T12:00:00Z');
    const yaml = slow('mode: queued\n    max: 3');
    let h = await boot(dir, yaml, clock);
    expect((await runNow(h)).body.run.outcome).toBe('running');
    const second = await runNow(h);
    expect(second).toMatchObject({ status: 202, body: { run: { outcome: 'queued' } } });
    expect((await runNow(h)).status).toBe(202);
    const refused = await runNow(h);
    expect(refused.status).toBe(409);
    expect(refused.body.run.error).toBe('already running or waiting 3 times (mode: queued, max: 3)');
    const view = JSON.parse((await http(`${h.url}/api/v1/automations/slow`)).body).automation;
    expect(view).toMatchObject({ mode: 'queued', max: 3, running: 1, queued: 2 });

    await clock.advanceAsync(10 * MIN);
    await expect
      .poll(async () => (await runsOf(h)).map((r) => r.outcome))
      .toEqual(['ok', 'running', 'queued', 'skipped']);
    // The second began when the first ended.
    expect((await runsOf(h))[1]?.startedAt).toBe(Date.parse('2026-06-02T12:10:00Z'));
    await h.stop();

    h = await boot(dir, yaml, clock);
    expect((await runsOf(h)).map((r) => [r.outcome, r.error])).toEqual([
      ['ok', null],
      ['cancelled', 'HEARTH_ERR_NOT_READY: hearth is stopping'],
      ['cancelled', 'HEARTH_ERR_NOT_READY: hearth is stopping'],
      ['skipped', 'already running or waiting 3 times (mode: queued, max: 3)'],
    ]);
  });

  it('parallel: up to max at once, the rest skipped', async () => {
    const clock = new FakeClock('2026-06-02T12:00:00Z');
    const h = await boot(tempDir(), slow('mode: parallel\n    max: 2'), clock);
    expect((await runNow(h)).status).toBe(202);
    await clock.advanceAsync(MIN);
    expect((await runNow(h)).status).toBe(202);
    const refused = await runNow(h);
    expect([refused.status, refused.body.run.error]).toEqual([
      409,
      'already running 2 times (mode: parallel, max: 2)',
    ]);
    await clock.advanceAsync(9 * MIN);
    // The first is over; there is room again beside the second.
    await expect.poll(async () => (await runsOf(h))[0]?.outcome).toBe('ok');
    expect((await runNow(h)).status).toBe(202);
    await clock.advanceAsync(10 * MIN);
    await expect
      .poll(async () => (await runsOf(h)).map((r) => r.outcome))
      .toEqual(['ok', 'ok', 'skipped', 'ok']);
  });

  it('a storm of triggers is bounded: one run, the newest skipped ones kept, the running one never pruned', async () => {
    const clock = new FakeClock('2026-06-02T12:00:00Z');
    const h = await boot(tempDir(), slow(''), clock);
    await h.automations.trigger('slow');
    const storm = RUNS_KEPT + 100;
    for (let i = 0; i < storm; i++) {
      expect((await h.automations.trigger('slow')).busy).toBe(true);
    }
    let runs = await h.automations.runs('slow', 10_000);
    expect(runs.length).toBeLessThanOrEqual(RUNS_KEPT + 1);
    expect(runs.filter((r) => r.outcome === 'running')).toHaveLength(1);
    await clock.advanceAsync(10 * MIN);
    await expect.poll(async () => (await h.automations.runs('slow', 10_000)).at(-1)?.outcome).toBe('ok');
    runs = await h.automations.runs('slow', 10_000);
    expect(runs.filter((r) => r.outcome === 'ok')).toHaveLength(1);
  });

  it('max with mode single is a config error at its line', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(
      file,
      `buttons: [{ id: done }]
automations:
  - id: once
    max: 3
    actions: [{ command: done.on }]
`,
    );
    let error: ConfigError | undefined;
    try {
      loadConfigFile(file, { drivers });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error?.issues.map((i) => `${i.line} ${i.field}: ${i.message}`)).toEqual([
      "4 automations[0].max: applies only to mode: queued or parallel, and this automation's mode is single: remove max, or set the mode (got 3)",
    ]);
  });
});
