import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from './support/cli-run.js';
import { http } from './support/hearth.js';
import { type HearthProcess, spawnHearth } from './support/process.js';

// The built CLI (`node bin/hearth.js`, the esbuild bundle in dist/) against what only the
// bundle can get wrong. An ES module bundle is strict mode as a whole, and node-ical's
// CommonJS code assigns to a property it had made read-only: silently ignored in its own
// sloppy-mode files, a TypeError in the bundle, where every event of the feed was lost and a
// calendar trigger never fired, while the same feed worked from source.

const LA = 'America/Los_Angeles';
const SECOND = 1000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** `20261129T163219`: the wall time of `ms` in Los Angeles, as a TZID-qualified iCal DATE-TIME. */
function laTime(ms: number): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: LA,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(ms);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  return `${p.year}${p.month}${p.day}T${p.hour}${p.minute}${p.second}`;
}

/**
 * A feed as Google exports it (VTIMEZONE America/Los_Angeles, TZID-qualified times), made
 * relative to `now`: a single "Brew" at `brewAt`, and a daily "Stand-up" at `standUpAt` that
 * began yesterday, whose instance tomorrow is moved an hour later by a RECURRENCE-ID override.
 */
function googleFeed(brewAt: number, standUpAt: number): string {
  const tz = `TZID=${LA}`;
  return [
    'BEGIN:VCALENDAR',
    'PRODID:-//Google Inc//Google Calendar 70.9054//EN',
    'VERSION:2.0',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    `X-WR-TIMEZONE:${LA}`,
    'BEGIN:VTIMEZONE',
    `TZID:${LA}`,
    `X-LIC-LOCATION:${LA}`,
    'BEGIN:DAYLIGHT',
    'TZOFFSETFROM:-0800',
    'TZOFFSETTO:-0700',
    'TZNAME:PDT',
    'DTSTART:19700308T020000',
    'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU',
    'END:DAYLIGHT',
    'BEGIN:STANDARD',
    'TZOFFSETFROM:-0700',
    'TZOFFSETTO:-0800',
    'TZNAME:PST',
    'DTSTART:19701101T020000',
    'RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU',
    'END:STANDARD',
    'END:VTIMEZONE',
    'BEGIN:VEVENT',
    `DTSTART;${tz}:${laTime(brewAt)}`,
    `DTEND;${tz}:${laTime(brewAt + 60 * SECOND)}`,
    'DTSTAMP:20260101T000000Z',
    'UID:brew-soon@google.com',
    'STATUS:CONFIRMED',
    'SUMMARY:Brew',
    'END:VEVENT',
    'BEGIN:VEVENT',
    `DTSTART;${tz}:${laTime(standUpAt - DAY)}`,
    `DTEND;${tz}:${laTime(standUpAt - DAY + HOUR / 2)}`,
    'RRULE:FREQ=DAILY;COUNT=10',
    'DTSTAMP:20260101T000000Z',
    'UID:stand-up@google.com',
    'STATUS:CONFIRMED',
    'SUMMARY:Stand-up',
    'END:VEVENT',
    'BEGIN:VEVENT',
    `DTSTART;${tz}:${laTime(standUpAt + DAY + HOUR)}`,
    `DTEND;${tz}:${laTime(standUpAt + DAY + HOUR + HOUR / 2)}`,
    `RECURRENCE-ID;${tz}:${laTime(standUpAt + DAY)}`,
    'DTSTAMP:20260101T000000Z',
    'UID:stand-up@google.com',
    'STATUS:CONFIRMED',
    'SUMMARY:Stand-up (moved)',
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

/** The instant as the calendar entity reports it: iCal times have whole seconds. */
const iso = (ms: number) => new Date(Math.floor(ms / SECOND) * SECOND).toISOString();

const dir = mkdtempSync(join(tmpdir(), 'hearth-built-cli-'));
let hearth: HearthProcess | undefined;
afterAll(async () => {
  if (hearth) {
    hearth.child.kill('SIGTERM');
    await hearth.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the built CLI (dist/ bundle)', () => {
  it('fires a calendar trigger from a Google feed with a VTIMEZONE, a recurrence and a moved instance', async () => {
    const now = Date.now();
    // Far enough ahead for a start on two loaded cores; an occurrence already begun at the
    // first read is (by design) not fired.
    const brewAt = now + 15 * SECOND;
    const standUpAt = now + 2 * HOUR;
    writeFileSync(join(dir, 'coffee.ics'), googleFeed(brewAt, standUpAt));
    writeFileSync(
      join(dir, 'hearth.yaml'),
      [
        `timezone: ${LA}`,
        'http: { host: 127.0.0.1, port: 0 }',
        'storage: { sqlite: hearth.db }',
        'calendars:',
        `  - { id: coffee-cal, file: ${JSON.stringify(join(dir, 'coffee.ics'))} }`,
        'automations:',
        '  - id: brew',
        '    triggers: [{ calendar: coffee-cal, on: start, summary: Brew }]',
        '    actions: [{ delay: { seconds: 0 } }]',
        '',
      ].join('\n'),
    );
    hearth = await spawnHearth(join(dir, 'hearth.yaml'));
    const url = hearth.url;
    const calendar = async () => JSON.parse((await http(`${url}/api/v1/entities/coffee-cal`)).body).entity;

    await expect
      .poll(async () => (await calendar()).attributes.lastGoodAt, { timeout: 10_000 })
      .toBeTypeOf('string');
    const before = await calendar();
    expect(before).toMatchObject({ available: true, state: 'off' });
    expect(before.attributes.next).toEqual({ summary: 'Brew', start: iso(brewAt) });
    // Within the 7 days ahead: the Brew, and Stand-ups today and on the six days after
    // (tomorrow's one an hour later); yesterday's is over.
    expect(before.attributes.events).toBe(8);

    const runs = async () => JSON.parse((await http(`${url}/api/v1/automations/brew/runs`)).body).runs;
    await expect
      .poll(runs, { timeout: brewAt - Date.now() + 15 * SECOND, interval: 500 })
      .toMatchObject([
        { automation: 'brew', trigger: 'calendar coffee-cal start "Brew": Brew', outcome: 'ok' },
      ]);
    const run = (await runs())[0];
    expect(run.startedAt).toBeGreaterThanOrEqual(Math.floor(brewAt / SECOND) * SECOND);

    const during = await calendar();
    expect(during).toMatchObject({ state: 'on', attributes: { summary: 'Brew', start: iso(brewAt) } });
    // Today's Stand-up, not tomorrow's: no day is lost.
    expect(during.attributes.next).toEqual({ summary: 'Stand-up', start: iso(standUpAt) });
  }, 60_000);

  it('writes only JSON log lines to stdout, and the welcome banner to stderr', async () => {
    const config = join(dir, 'plain.yaml');
    writeFileSync(config, 'http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: plain.db }\n');
    const cli = startCli(['start', '--config', config], { env: { HEARTH_LOG_LEVEL: 'info' } });
    try {
      await cli.waitFor(/"msg":"ready"/);
      await expect.poll(cli.stderr).toMatch(/hearth is ready on http:\/\/127\.0\.0\.1:\d+/);
    } finally {
      expect(await cli.stop()).toEqual({ code: 0, signal: null });
    }
    const lines = cli
      .stdout()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(cli.stdout()).not.toContain('Try:');
  });
});
