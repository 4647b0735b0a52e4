import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Hearth, startHearth } from '../src/compose.js';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { FakeClock } from './support/fake-clock.js';
import { http, post, tempDir } from './support/hearth.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real hearth on loopback from config text, in `dir` (kept across restarts), on `clock`. */
async function boot(dir: string, yaml: string, clock?: FakeClock): Promise<Hearth> {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    `timezone: America/Los_Angeles\nhttp: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\n${yaml}`,
  );
  const hearth = await startHearth(loadConfigFile(file, { drivers }), { log: silentLogger(), clock });
  cleanups.push(() => hearth.stop());
  return hearth;
}

async function sim(): Promise<WemoSimulator> {
  const s = await startWemoSimulator({ initial: false });
  cleanups.push(() => s.close());
  return s;
}

async function runsOf(h: Hearth, id: string) {
  return (await h.automations.runs(id, 100)).reverse();
}

describe('automations', () => {
  it('the wall button toggles the lamp, every press, and each run is recorded', async () => {
    const lamp = await sim();
    const h = await boot(
      tempDir(),
      `switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
buttons:
  - { id: bedside }
automations:
  - id: bedside-lamp
    mode: queued # a second press while the first toggles is another toggle
    triggers: [{ state: bedside, to: "on" }]
    actions: [{ command: lamp.toggle }]
`,
    );
    expect((await post(`${h.url}/api/v0/buttons/bedside/on/`)).body).toBe('OK');
    await expect.poll(() => lamp.on).toBe(true);
    // The same state again is another press.
    await post(`${h.url}/api/v0/buttons/bedside/on/`);
    await expect.poll(() => lamp.on).toBe(false);
    await post(`${h.url}/api/v0/buttons/bedside/off/`);
    await expect
      .poll(async () => (await runsOf(h, 'bedside-lamp')).map((r) => r.outcome))
      .toEqual(['ok', 'ok']);
    expect(lamp.on).toBe(false);
    const api = JSON.parse((await http(`${h.url}/api/v1/automations/bedside-lamp/runs`)).body).runs;
    expect(api).toHaveLength(2);
    expect(api[0]).toMatchObject({
      automation: 'bedside-lamp',
      trigger: 'state bedside to on',
      outcome: 'ok',
      error: null,
    });
  });

  it('fires cron once at the right instants across both DST changes (America/Los_Angeles)', async () => {
    const clock = new FakeClock('2026-03-07T12:00:00Z');
    const h = await boot(
      tempDir(),
      `buttons: [{ id: marker }]
automations:
  - id: spring
    triggers: [{ cron: "30 2 * * *" }]
    actions: [{ command: marker.on }]
  - id: fall
    triggers: [{ cron: "30 1 * * *" }]
    actions: [{ command: marker.off }]
`,
      clock,
    );
    // Through the spring change (02:30 does not exist on 2026-03-08) ...
    for (let i = 0; i < 4 * 24 * 4; i++) await clock.advanceAsync(15 * 60_000);
    const spring = (await runsOf(h, 'spring')).map((r) => new Date(r.startedAt).toISOString());
    expect(spring).toEqual([
      '2026-03-08T10:30:00.000Z',
      '2026-03-09T09:30:00.000Z',
      '2026-03-10T09:30:00.000Z',
      '2026-03-11T09:30:00.000Z',
    ]);
    // ... and through the fall change (01:30 happens twice on 2026-11-01): once.
    clock.setTime('2026-10-31T12:00:00Z');
    await clock.advanceAsync(0);
    for (let i = 0; i < 3 * 24 * 4; i++) await clock.advanceAsync(15 * 60_000);
    // The instants the jump to October passed over start as it ends (each waits for its claim
    // in the store), at 12:00 exactly: only what came after is of the fall change.
    const fall = (await runsOf(h, 'fall'))
      .map((r) => new Date(r.startedAt).toISOString())
      .filter((t) => t > '2026-10-31T12:00:00.000Z');
    expect(fall).toEqual([
      '2026-11-01T08:30:00.000Z',
      '2026-11-02T09:30:00.000Z',
      '2026-11-03T09:30:00.000Z',
    ]);
  });

  it('after downtime, runs a missed schedule once within its window, or skips it, and says which', async () => {
    const dir = tempDir();
    const yaml = `buttons: [{ id: marker }]
automations:
  - id: skipper
    triggers: [{ cron: "0 6 * * *" }]
    actions: [{ command: marker.on }]
  - id: catcher
    triggers: [{ at: "06:00" }]
    missed: { runOnceWithinMinutes: 15 }
    actions: [{ command: marker.on }]
`;
    const clock = new FakeClock('2026-06-01T12:00:00Z'); // 05:00 in Los Angeles
    let h = await boot(dir, yaml, clock);
    await h.stop();
    // The power comes back at 06:10: 06:00 was missed, 10 minutes ago.
    clock.setTime('2026-06-01T13:10:00Z');
    h = await boot(dir, yaml, clock);
    await clock.advanceAsync(0);
    await expect
      .poll(async () => (await runsOf(h, 'catcher')).map((r) => [r.trigger, r.outcome]))
      .toEqual([['missed at 06:00 at 2026-06-01T13:00:00.000Z', 'ok']]);
    const skipped = await runsOf(h, 'skipper');
    expect(skipped.map((r) => [r.trigger, r.outcome])).toEqual([
      ['missed cron 0 6 * * * at 2026-06-01T13:00:00.000Z', 'skipped'],
    ]);
    expect(skipped[0]?.error).toBe(
      '1 run(s) missed while hearth was down, the latest at 2026-06-01T13:00:00.000Z; missed: skip',
    );
    await h.stop();
    // Down again until 07:00 the next day: an hour late is outside the 15-minute window.
    clock.setTime('2026-06-02T14:00:00Z');
    h = await boot(dir, yaml, clock);
    const late = (await runsOf(h, 'catcher')).at(-1);
    expect(late).toMatchObject({
      outcome: 'skipped',
      trigger: 'missed at 06:00 at 2026-06-02T13:00:00.000Z',
    });
    expect(late?.error).toContain('more than 15 min ago');
  });

  it('checks conditions: weekday, time window and state', async () => {
    const clock = new FakeClock('2026-06-02T13:00:00Z'); // a Tuesday, 06:00 in Los Angeles
    const h = await boot(
      tempDir(),
      `buttons: [{ id: marker }, { id: away }]
automations:
  - id: mwf
    conditions: [{ weekday: [mon, wed, fri] }]
    actions: [{ command: marker.on }]
  - id: morning
    conditions: [{ time: { after: "05:30", before: "07:00" } }, { state: away, is: "off" }]
    actions: [{ command: marker.on }]
  - id: night
    conditions: [{ time: { after: "22:00", before: "05:00" } }]
    actions: [{ command: marker.on }]
`,
      clock,
    );
    await post(`${h.url}/api/v0/buttons/away/off/`);
    for (const id of ['mwf', 'morning', 'night']) await h.automations.trigger(id);
    await expect.poll(async () => (await runsOf(h, 'night')).map((r) => r.outcome)).toEqual(['skipped']);
    expect((await runsOf(h, 'mwf'))[0]).toMatchObject({
      outcome: 'skipped',
      error: 'it is tue, not mon/wed/fri',
    });
    expect((await runsOf(h, 'morning'))[0]?.outcome).toBe('ok');
    expect((await runsOf(h, 'night'))[0]?.error).toBe('it is 06:00, outside 22:00–05:00');
    await post(`${h.url}/api/v0/buttons/away/on/`);
    await h.automations.trigger('morning');
    await expect
      .poll(async () => (await runsOf(h, 'morning')).map((r) => r.outcome))
      .toEqual(['ok', 'skipped']);
    expect((await runsOf(h, 'morning'))[1]?.error).toBe('away is on, not off');
  });

  it('retries a failing action per its policy, and a failure never blocks other automations', async () => {
    const clock = new FakeClock('2026-06-02T13:00:00Z');
    const lamp = await sim();
    lamp.mode = 'error';
    const h = await boot(
      tempDir(),
      `switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
buttons: [{ id: marker }]
automations:
  - id: stubborn
    actions: [{ command: lamp.on, retry: { attempts: 3, delaySeconds: 2 } }]
  - id: hopeless
    retry: { attempts: 2, delaySeconds: 1 }
    actions: [{ command: lamp.on }, { command: marker.on }]
  - id: other
    actions: [{ command: marker.off }]
`,
      clock,
    );
    await h.automations.trigger('stubborn');
    await expect.poll(() => lamp.calls.length).toBe(1);
    // Meanwhile another automation runs at once.
    await h.automations.trigger('other');
    await expect.poll(async () => (await runsOf(h, 'other')).map((r) => r.outcome)).toEqual(['ok']);
    await clock.advanceAsync(2000);
    await expect.poll(() => lamp.calls.length).toBe(2);
    lamp.mode = 'ok';
    await clock.advanceAsync(2000);
    await expect.poll(async () => (await runsOf(h, 'stubborn')).map((r) => r.outcome)).toEqual(['ok']);
    expect(lamp.on).toBe(true);

    lamp.mode = 'error';
    await h.automations.trigger('hopeless');
    await expect.poll(() => lamp.calls.length).toBe(4);
    await clock.advanceAsync(1000);
    await expect.poll(async () => (await runsOf(h, 'hopeless')).map((r) => r.outcome)).toEqual(['failed']);
    expect((await runsOf(h, 'hopeless'))[0]?.error).toContain('HTTP 500');
    // The action after the failing one never ran.
    expect(h.runtime.get('marker')?.state).toBe('off');
  });

  it('calls HTTP endpoints and other automations, and runs on demand through the API', async () => {
    const got: Array<{ method?: string; url?: string; body: string; type?: string }> = [];
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => {
        body += String(d);
      });
      req.on('end', () => {
        got.push({ method: req.method, url: req.url, body, type: req.headers['content-type'] });
        res.writeHead(req.url === '/fail' ? 500 : 204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as AddressInfo).port;
    const h = await boot(
      tempDir(),
      `buttons: [{ id: marker }]
automations:
  - id: notify
    actions: [{ http: { url: "http://127.0.0.1:${port}/hook?key=s3cret", body: { text: "coffee" } } }]
  - id: chain
    triggers: [{ webhook: true }]
    actions: [{ automation: notify }, { command: marker.on }]
  - id: broken
    actions: [{ http: { url: "http://127.0.0.1:${port}/fail", method: GET } }]
`,
    );
    const r = await post(`${h.url}/api/v1/automations/chain/run`);
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body).run).toMatchObject({
      automation: 'chain',
      trigger: 'webhook',
      outcome: 'running',
    });
    await expect.poll(async () => (await runsOf(h, 'chain')).map((x) => x.outcome)).toEqual(['ok']);
    expect(got).toEqual([
      { method: 'POST', url: '/hook?key=s3cret', body: '{"text":"coffee"}', type: 'application/json' },
    ]);
    expect((await runsOf(h, 'notify'))[0]?.trigger).toBe('automation chain');
    expect(h.runtime.get('marker')?.state).toBe('on');

    await post(`${h.url}/api/v1/automations/broken/run`);
    await expect
      .poll(async () => (await runsOf(h, 'broken'))[0]?.error)
      .toBe(`HTTP GET to http://127.0.0.1:${port} answered 500`);

    const list = JSON.parse((await http(`${h.url}/api/v1/automations`)).body).automations;
    expect(list.map((a: { id: string }) => a.id)).toEqual(['notify', 'chain', 'broken']);
    expect(list[1]).toMatchObject({ triggers: ['webhook'], nextRunAt: null, lastRun: { outcome: 'ok' } });
    const missing = await post(`${h.url}/api/v1/automations/nosuch/run`);
    expect([missing.status, JSON.parse(missing.body).error.code]).toEqual([
      404,
      'HEARTH_ERR_ENTITY_NOT_FOUND',
    ]);
  });

  it('fires a schedule within 100 ms of its second (real time)', async () => {
    const h = await boot(
      tempDir(),
      `buttons: [{ id: marker }]
automations:
  - id: tick
    triggers: [{ cron: "* * * * * *" }]
    actions: [{ command: marker.on }]
`,
    );
    const view = JSON.parse((await http(`${h.url}/api/v1/automations/tick`)).body).automation;
    expect(Date.parse(view.nextRunAt) % 1000).toBe(0);
    await expect.poll(async () => (await runsOf(h, 'tick')).length).toBeGreaterThanOrEqual(2);
    for (const run of await runsOf(h, 'tick')) expect(run.startedAt % 1000).toBeLessThan(100);
  });

  it('fires from a calendar: a "Brew" event starts the automation at its start instant', async () => {
    const dir = tempDir();
    const ics = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//hearth//test//EN',
      'BEGIN:VEVENT',
      'UID:brew-1@test',
      'DTSTAMP:20260601T000000Z',
      'DTSTART:20260602T133000Z',
      'DTEND:20260602T134500Z',
      'SUMMARY:Brew coffee',
      'END:VEVENT',
      'BEGIN:VEVENT',
      'UID:meeting-1@test',
      'DTSTAMP:20260601T000000Z',
      'DTSTART:20260602T140000Z',
      'DTEND:20260602T150000Z',
      'SUMMARY:Meeting',
      'END:VEVENT',
      'END:VCALENDAR',
      '',
    ].join('\r\n');
    writeFileSync(join(dir, 'coffee.ics'), ics);
    const clock = new FakeClock('2026-06-02T13:00:00Z');
    const h = await boot(
      dir,
      `buttons: [{ id: marker }]
calendars:
  - { id: coffee-cal, file: ${join(dir, 'coffee.ics')}, pollSeconds: 60 }
automations:
  - id: brew-from-calendar
    triggers: [{ calendar: coffee-cal, on: start, summary: "brew" }]
    actions: [{ command: marker.on }]
  - id: regex
    triggers: [{ calendar: coffee-cal, on: end, summary: "/^meet/i" }]
    actions: [{ command: marker.off }]
`,
      clock,
    );
    // The feed has been read once it reports when its last good copy came.
    await expect.poll(() => h.runtime.get('coffee-cal')?.attributes.lastGoodAt).toBeTruthy();
    for (let i = 0; i < 3 * 60; i++) await clock.advanceAsync(60_000);
    const brew = await runsOf(h, 'brew-from-calendar');
    expect(brew.map((r) => [new Date(r.startedAt).toISOString(), r.trigger, r.outcome])).toEqual([
      ['2026-06-02T13:30:00.000Z', 'calendar coffee-cal start "brew": Brew coffee', 'ok'],
    ]);
    const regex = await runsOf(h, 'regex');
    expect(regex.map((r) => new Date(r.startedAt).toISOString())).toEqual(['2026-06-02T15:00:00.000Z']);
  });

  it('names an automation that refers to an unknown entity at its line', () => {
    const dir = tempDir();
    const file = join(dir, 'hearth.yaml');
    writeFileSync(
      file,
      `buttons: [{ id: bedside }]
automations:
  - id: typo
    triggers: [{ state: bedsid, to: "on" }]
    actions: [{ command: lamp.toggle }, { automation: nowhere }]
  - id: bad-cron
    triggers: [{ cron: "61 * * * *" }]
    actions: [{ delay: { seconds: 1 } }]
`,
    );
    let error: ConfigError | undefined;
    try {
      loadConfigFile(file, { drivers });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const lines = error?.issues.map((i) => `${i.line} ${i.field}: ${i.message}`);
    expect(lines).toEqual([
      expect.stringMatching(/^7 automations\[1\]\.triggers\[0\]\.cron: is not a cron expression/),
    ]);
    // With the cron fixed, every unknown name is reported at its line.
    writeFileSync(
      file,
      `buttons: [{ id: bedside }]
automations:
  - id: typo
    triggers: [{ state: bedsid, to: "on" }]
    actions: [{ command: lamp.toggle }, { automation: nowhere }]
`,
    );
    try {
      loadConfigFile(file, { drivers });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error?.issues.map((i) => `${i.line} ${i.field}: ${i.message}`)).toEqual([
      '4 automations[0].triggers[0].state: no entity "bedsid"; known entities: bedside',
      '5 automations[0].actions[0].command: no entity "lamp"; known entities: bedside',
      '5 automations[0].actions[1].automation: no automation "nowhere"',
    ]);
    // A command the entity's kind does not take is an error too, known from the config alone.
    writeFileSync(
      file,
      `switches: [{ id: lamp, kind: wemo/v1, address: 127.0.0.1 }]
coffee: [{ id: pot, kind: mrcoffeebot/v1, path: /dev/null }]
automations:
  - id: wrong
    triggers: [{ webhook: true }]
    actions: [{ command: lamp.brew }, { command: pot-water.on }, { command: pot.brew, args: { minutes: 5 } }]
`,
    );
    try {
      loadConfigFile(file, { drivers });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error?.issues.map((i) => `${i.line} ${i.field}: ${i.message}`)).toEqual([
      '6 automations[0].actions[0].command: switch "lamp" has no command "brew"; it takes on, off, toggle',
      '6 automations[0].actions[1].command: sensor "pot-water" has no command "on"; it takes none',
    ]);
  });
});
