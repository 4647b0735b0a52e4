import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityView } from '../src/core/runtime-api.js';
import {
  expandOccurrences,
  FeedError,
  loadFeedText,
  type Occurrence,
  parseFeed,
} from '../src/drivers/ical/feed.js';
import { FakeClock } from './support/fake-clock.js';
import { startTestHearth, type TestHearth } from './support/hearth.js';
import { until } from './support/wait.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/ical/${name}`, import.meta.url), 'utf8');
const google = fixture('google-coffee.ics');
const outlook = fixture('outlook-pacific.ics');
const LA = 'America/Los_Angeles';

interface Route {
  status?: number;
  body?: string;
  type?: string;
  /** Never answer (a feed that hangs). */
  hang?: boolean;
}

/** A feed server on 127.0.0.1 whose answers a test changes as it goes. */
class FeedServer {
  readonly routes = new Map<string, Route>();
  readonly server: Server;
  url = '';
  #held: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req, res) => {
      const route = this.routes.get(req.url ?? '') ?? { status: 404, body: 'Not Found', type: 'text/html' };
      if (route.hang) {
        this.#held.push(res);
        return;
      }
      res.writeHead(route.status ?? 200, { 'content-type': route.type ?? 'text/calendar; charset=UTF-8' });
      res.end(route.body ?? '');
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.#held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A Google-style secret address: the path is the secret. */
const SECRET_PATH =
  '/calendar/ical/coffee%40group.calendar.google.com/private-5f1e2d3c4b5a69788796a5b4c3d2e1f0/basic.ics';

let feeds: FeedServer;
beforeAll(async () => {
  feeds = await new FeedServer().start();
});
afterAll(async () => {
  await feeds.close();
});

const row = (o: Occurrence) =>
  `${o.start.toISOString()} ${o.end.toISOString()} ${o.allDay ? 'all-day ' : ''}${o.summary}`;

async function expandFromServer(path: string, from: string, to: string, timeZone = LA): Promise<string[]> {
  const text = await loadFeedText({ url: feeds.url + path }, { timeoutMs: 5000 });
  return expandOccurrences(parseFeed(text), { from: new Date(from), to: new Date(to), timeZone }).map(row);
}

describe('iCal feeds served over HTTP, expanded for a window', () => {
  beforeAll(() => {
    feeds.routes.set(SECRET_PATH, { body: google });
    feeds.routes.set('/outlook.ics', { body: outlook });
  });

  it('expands the Google export: weekly Brew with EXDATE, moved and cancelled instances, all-day events, DST', async () => {
    // 1 to 14 March in Los Angeles. DST starts Sunday 8 March at 02:00 (PST -8 -> PDT -7).
    const got = await expandFromServer(SECRET_PATH, '2026-03-01T08:00:00Z', '2026-03-15T07:00:00Z');
    expect(got).toEqual([
      '2026-03-02T14:45:00.000Z 2026-03-02T15:00:00.000Z Brew', // Mon 06:45 PST
      // Wed 4 March: EXDATE. Fri 6 March: moved to Saturday 08:00 (RECURRENCE-ID).
      '2026-03-06T08:00:00.000Z 2026-03-09T07:00:00.000Z all-day Spring break', // 6-8 Mar, 71 h (DST)
      '2026-03-06T17:00:00.000Z 2026-03-06T17:30:00.000Z Stand-up', // 09:00 PST
      '2026-03-07T16:00:00.000Z 2026-03-07T16:15:00.000Z Brew (weekend)', // the moved Friday
      '2026-03-07T17:00:00.000Z 2026-03-07T17:30:00.000Z Stand-up',
      '2026-03-08T07:00:00.000Z 2026-03-08T14:00:00.000Z Night roast', // 23:00 PST -> 07:00 PDT: 7 h
      '2026-03-08T16:00:00.000Z 2026-03-08T16:30:00.000Z Stand-up', // still 09:00, now PDT
      // Mon 9 March: cancelled (STATUS:CANCELLED override). Wed 11 March: moved out, to the 19th.
      '2026-03-09T16:00:00.000Z 2026-03-09T16:30:00.000Z Stand-up',
      '2026-03-10T07:00:00.000Z 2026-03-11T07:00:00.000Z all-day Beans delivery',
      // "Descaling" on 10 March is STATUS:CANCELLED: absent.
      '2026-03-10T16:00:00.000Z 2026-03-10T16:30:00.000Z Stand-up', // COUNT=5: the last one
      '2026-03-13T13:45:00.000Z 2026-03-13T14:00:00.000Z Brew', // Fri 06:45 PDT
      '2026-03-14T14:30:00.000Z 2026-03-14T14:45:00.000Z Brew', // Mon 16th moved back to Sat 14th
    ]);
  });

  it('brings in an instance moved into the window from outside it, and drops one moved out of it', async () => {
    // 15 to 21 March. The 11th (a week earlier, outside) was moved to Thursday the 19th; Monday
    // the 16th (inside) was moved out, to the 14th.
    const got = await expandFromServer(SECRET_PATH, '2026-03-15T07:00:00Z', '2026-03-22T07:00:00Z');
    expect(got).toEqual([
      '2026-03-18T13:45:00.000Z 2026-03-18T14:00:00.000Z Brew',
      '2026-03-19T14:00:00.000Z 2026-03-19T14:15:00.000Z Brew',
      '2026-03-20T13:45:00.000Z 2026-03-20T14:00:00.000Z Brew',
    ]);
  });

  it('includes an occurrence already in progress at the start of the window', async () => {
    const got = await expandFromServer(SECRET_PATH, '2026-03-08T12:00:00Z', '2026-03-08T17:00:00Z');
    expect(got).toEqual([
      '2026-03-06T08:00:00.000Z 2026-03-09T07:00:00.000Z all-day Spring break',
      '2026-03-08T07:00:00.000Z 2026-03-08T14:00:00.000Z Night roast',
      '2026-03-08T16:00:00.000Z 2026-03-08T16:30:00.000Z Stand-up',
    ]);
  });

  it('reads an Outlook feed whose zone is the Windows name "Pacific Standard Time": 10:00 local before and after DST', async () => {
    const got = await expandFromServer('/outlook.ics', '2026-03-01T08:00:00Z', '2026-04-01T07:00:00Z');
    expect(got).toEqual([
      '2026-03-03T18:00:00.000Z 2026-03-03T18:30:00.000Z Coffee with Dana', // 10:00 PST
      '2026-03-10T17:00:00.000Z 2026-03-10T17:30:00.000Z Coffee with Dana', // 10:00 PDT
      '2026-03-16T07:00:00.000Z 2026-03-17T07:00:00.000Z all-day Office closed',
      '2026-03-17T17:00:00.000Z 2026-03-17T17:30:00.000Z Coffee with Dana',
    ]);
  });

  it("runs all-day events from midnight to midnight in hearth's timezone, whatever the host's zone", async () => {
    const berlin = await expandFromServer(
      SECRET_PATH,
      '2026-03-05T00:00:00Z',
      '2026-03-06T12:00:00Z',
      'Europe/Berlin',
    );
    expect(berlin.filter((r) => r.includes('all-day'))).toEqual([
      '2026-03-05T23:00:00.000Z 2026-03-08T23:00:00.000Z all-day Spring break',
    ]);
    // node-ical builds DATE values in the host's zone; the result must not depend on it.
    const hostZone = process.env.TZ;
    try {
      const offsets = { 'Asia/Tokyo': -540, 'America/New_York': 300, 'Pacific/Kiritimati': -840 };
      for (const [tz, offset] of Object.entries(offsets)) {
        process.env.TZ = tz;
        expect(new Date('2026-03-01T00:00:00Z').getTimezoneOffset(), 'the host zone changed').toBe(offset);
        const got = await expandFromServer(SECRET_PATH, '2026-03-01T08:00:00Z', '2026-03-15T07:00:00Z');
        expect(
          got.filter((r) => r.includes('all-day')),
          tz,
        ).toEqual([
          '2026-03-06T08:00:00.000Z 2026-03-09T07:00:00.000Z all-day Spring break',
          '2026-03-10T07:00:00.000Z 2026-03-11T07:00:00.000Z all-day Beans delivery',
        ]);
      }
    } finally {
      if (hostZone === undefined) delete process.env.TZ;
      else process.env.TZ = hostZone;
    }
  });

  it('says why a feed cannot be used, without the secret address', async () => {
    feeds.routes.set('/login', { status: 200, type: 'text/html', body: fixture('login-page.html') });
    feeds.routes.set('/cut', { body: fixture('truncated.ics') });
    feeds.routes.set('/boom', { status: 500, body: 'oops' });
    feeds.routes.set('/empty', { body: '' });
    feeds.routes.set('/hang', { hang: true });
    const reason = async (path: string, timeoutMs = 5000): Promise<string> => {
      try {
        parseFeed(await loadFeedText({ url: feeds.url + path }, { timeoutMs }));
      } catch (err) {
        expect(err).toBeInstanceOf(FeedError);
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(await reason(`${SECRET_PATH}.gone`)).toBe('fetch failed: HTTP 404');
    expect(await reason('/boom')).toBe('fetch failed: HTTP 500');
    expect(await reason('/login')).toBe(
      'not iCal: it does not start with BEGIN:VCALENDAR (it starts "<!DOCTYPE html> <html lang=\\"en\\"> <head><")',
    );
    expect(await reason('/cut')).toBe('not iCal: no END:VCALENDAR, the feed was cut short');
    expect(await reason('/empty')).toBe('not iCal: the body is empty');
    expect(await reason('/hang', 300)).toBe('fetch failed: no answer within 300 ms');

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await loadFeedText(
      { url: `http://127.0.0.1:${port}${SECRET_PATH}` },
      { timeoutMs: 5000 },
    ).catch((err: Error) => err.message);
    expect(refused).toBe(`fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`);
  });
});

describe('the calendar driver in a running hearth, on a fake clock', () => {
  let hearth: TestHearth | undefined;
  const path = '/driver.ics';

  afterEach(async () => {
    await hearth?.close();
    hearth = undefined;
    delete process.env.COFFEE_ICAL_URL;
  });

  /** Starts hearth with the coffee calendar at `start`; resolves once its first read is in. */
  async function boot(
    start: string,
    entry = `{ id: coffee-cal, url: "\${COFFEE_ICAL_URL}", pollSeconds: 60 }`,
  ) {
    process.env.COFFEE_ICAL_URL = feeds.url + path;
    const clock = new FakeClock(start);
    hearth = await startTestHearth(`timezone: ${LA}\ncalendars:\n  - ${entry}\n`, { clock });
    const runtime = hearth.runtime;
    const fired: string[] = [];
    runtime.onEvent((e) => {
      if (e.id === 'coffee-cal')
        fired.push(`${new Date(e.at).toISOString()} ${e.event} ${String(e.data.summary)}`);
    });
    const view = () => runtime.get('coffee-cal') as EntityView;
    await until(
      () => {
        expect(view().attributes.lastGoodAt).toBeTypeOf('string');
        return true;
      },
      { what: "expect(view().attributes.lastGoodAt).toBeTypeOf('string')" },
    );
    return { clock, fired, view };
  }

  it('fires start and end at each occurrence instant and is on in between', async () => {
    feeds.routes.set(path, { body: google });
    const { clock, fired, view } = await boot('2026-03-02T14:00:00Z'); // Monday 06:00 PST
    expect(view()).toMatchObject({
      kind: 'calendar',
      driver: 'ical',
      state: 'off',
      available: true,
      attributes: {
        next: { summary: 'Brew', start: '2026-03-02T14:45:00.000Z' },
        lastGoodAt: '2026-03-02T14:00:00.000Z',
        // Seven days ahead: Brew, Spring break, Stand-up, Brew (weekend), Stand-up, Night roast, Stand-up.
        events: 7,
      },
    });

    clock.setTime('2026-03-02T14:50:00Z');
    expect(view().state).toBe('on');
    expect(view().attributes).toMatchObject({
      summary: 'Brew',
      start: '2026-03-02T14:45:00.000Z',
      end: '2026-03-02T15:00:00.000Z',
    });

    clock.setTime('2026-03-09T08:00:00Z');
    expect(view().state).toBe('off');
    expect(view().attributes.summary).toBeUndefined();
    expect(fired).toEqual([
      '2026-03-02T14:45:00.000Z start Brew',
      '2026-03-02T15:00:00.000Z end Brew',
      '2026-03-06T08:00:00.000Z start Spring break', // local midnight, Friday
      '2026-03-06T17:00:00.000Z start Stand-up',
      '2026-03-06T17:30:00.000Z end Stand-up',
      '2026-03-07T16:00:00.000Z start Brew (weekend)',
      '2026-03-07T16:15:00.000Z end Brew (weekend)',
      '2026-03-07T17:00:00.000Z start Stand-up',
      '2026-03-07T17:30:00.000Z end Stand-up',
      '2026-03-08T07:00:00.000Z start Night roast',
      '2026-03-08T14:00:00.000Z end Night roast',
      '2026-03-08T16:00:00.000Z start Stand-up', // 09:00 PDT: an hour earlier in UTC
      '2026-03-08T16:30:00.000Z end Stand-up',
      '2026-03-09T07:00:00.000Z end Spring break', // local midnight starting Monday
    ]);
  });

  it('carries the occurrence in the event data', async () => {
    feeds.routes.set(path, { body: google });
    const { clock } = await boot('2026-03-02T14:00:00Z');
    const events: unknown[] = [];
    hearth?.runtime.onEvent((e) => events.push({ event: e.event, data: e.data }));
    clock.setTime('2026-03-02T14:45:00Z');
    expect(events).toEqual([
      {
        event: 'start',
        data: {
          summary: 'Brew',
          start: '2026-03-02T14:45:00.000Z',
          end: '2026-03-02T15:00:00.000Z',
          uid: '7kq2m0v3brew1t0b4c8e9f0a1d@google.com',
          allDay: false,
        },
      },
    ]);
  });

  it('is on at start-up during an occurrence without firing its start; its end fires', async () => {
    feeds.routes.set(path, { body: google });
    const { clock, fired, view } = await boot('2026-03-02T14:50:00Z');
    expect(view().state).toBe('on');
    expect(view().attributes.summary).toBe('Brew');
    clock.setTime('2026-03-02T15:10:00Z');
    expect(fired).toEqual(['2026-03-02T15:00:00.000Z end Brew']);
    expect(view().state).toBe('off');
  });

  it('keeps the last good copy when the feed fails or is not iCal, still fires from it, says why, and recovers', async () => {
    feeds.routes.set(path, { body: google });
    const { clock, fired, view } = await boot('2026-03-02T14:00:00Z');

    feeds.routes.set(path, { status: 500, body: 'Internal Server Error', type: 'text/html' });
    clock.advance(60_000); // the next poll
    await until(
      () => {
        expect(view().available).toBe(false);
        return true;
      },
      { what: 'expect(view().available).toBe(false)' },
    );
    expect(view().reason).toBe('fetch failed: HTTP 500');

    feeds.routes.set(path, { body: fixture('login-page.html'), type: 'text/html' });
    clock.advance(60_000);
    await until(
      () => {
        expect(view().reason).toMatch(/^not iCal: it does not start with BEGIN:VCALENDAR/);
        return true;
      },
      { what: 'expect(view().reason).toMatch(/^not iCal: it does not start with BEGIN:VCALENDAR/)' },
    );

    feeds.routes.set(path, { body: fixture('truncated.ics') });
    clock.advance(60_000);
    await until(
      () => {
        expect(view().reason).toBe('not iCal: no END:VCALENDAR, the feed was cut short');
        return true;
      },
      { what: "expect(view().reason).toBe('not iCal: no END:VCALENDAR, the feed was cut short')" },
    );

    // Still firing from the copy read at 14:00.
    clock.setTime('2026-03-02T14:45:00Z');
    expect(fired).toEqual(['2026-03-02T14:45:00.000Z start Brew']);
    expect(view()).toMatchObject({
      state: 'on',
      available: false,
      attributes: { lastGoodAt: '2026-03-02T14:00:00.000Z' },
    });

    feeds.routes.set(path, { body: google });
    clock.advance(60_000);
    await until(
      () => {
        expect(view().available).toBe(true);
        return true;
      },
      { what: 'expect(view().available).toBe(true)' },
    );
    expect(view().reason).toBeNull();
    expect(view().attributes.lastGoodAt).toBe('2026-03-02T14:46:00.000Z');
    clock.setTime('2026-03-02T15:00:00Z');
    expect(fired).toEqual(['2026-03-02T14:45:00.000Z start Brew', '2026-03-02T15:00:00.000Z end Brew']);
  });

  it('reschedules when the feed changes, and never fires one occurrence twice', async () => {
    feeds.routes.set(path, { body: google });
    const { clock, fired, view } = await boot('2026-03-02T14:40:00Z');
    clock.setTime('2026-03-02T14:46:00Z'); // Brew started; polls at 14:41 ... 14:46 re-read the same feed
    await until(
      () => {
        expect(view().attributes.lastGoodAt).not.toBe('2026-03-02T14:40:00.000Z');
        return true;
      },
      { what: "expect(view().attributes.lastGoodAt).not.toBe('2026-03-02T14:40:00.000Z')" },
    );

    // Someone adds a second brew at 08:30 PST and moves Friday's Stand-up to 11:00.
    const extra = [
      'BEGIN:VEVENT',
      'DTSTART;TZID=America/Los_Angeles:20260302T083000',
      'DTEND;TZID=America/Los_Angeles:20260302T084500',
      'DTSTAMP:20260302T144600Z',
      'UID:extra-brew-1@google.com',
      'SUMMARY:Brew',
      'END:VEVENT',
      'BEGIN:VEVENT',
      'DTSTART;TZID=America/Los_Angeles:20260306T110000',
      'DTEND;TZID=America/Los_Angeles:20260306T113000',
      'DTSTAMP:20260302T144600Z',
      'UID:1b6d0c2e9a7f4e3d8c5b4a3f2e1d0c9b@google.com',
      'RECURRENCE-ID;TZID=America/Los_Angeles:20260306T090000',
      'SUMMARY:Stand-up',
      'END:VEVENT',
      '',
    ].join('\r\n');
    feeds.routes.set(path, { body: google.replace('END:VCALENDAR', `${extra}END:VCALENDAR`) });
    const before = view().attributes.lastGoodAt;
    clock.advance(60_000);
    await until(
      () => {
        expect(view().attributes.lastGoodAt).not.toBe(before);
        return true;
      },
      { what: 'expect(view().attributes.lastGoodAt).not.toBe(before)' },
    );
    expect(view().attributes.next).toEqual({ summary: 'Brew', start: '2026-03-02T16:30:00.000Z' });

    clock.setTime('2026-03-06T19:00:00Z');
    expect(fired).toEqual([
      '2026-03-02T14:45:00.000Z start Brew',
      '2026-03-02T15:00:00.000Z end Brew',
      '2026-03-02T16:30:00.000Z start Brew',
      '2026-03-02T16:45:00.000Z end Brew',
      '2026-03-06T08:00:00.000Z start Spring break',
      '2026-03-06T19:00:00.000Z start Stand-up', // 11:00 PST, moved from 09:00
    ]);
  });

  it('ends a started occurrence at once when it is cancelled in the feed, so every start has its end', async () => {
    feeds.routes.set(path, { body: google });
    const { clock, fired, view } = await boot('2026-03-02T14:40:00Z');
    clock.setTime('2026-03-02T14:46:00Z');
    await until(
      () => {
        expect(view().attributes.lastGoodAt).toBe('2026-03-02T14:46:00.000Z');
        return true;
      },
      { what: "expect(view().attributes.lastGoodAt).toBe('2026-03-02T14:46:00.000Z')" },
    );
    expect(view().state).toBe('on');

    const cancelled = [
      'BEGIN:VEVENT',
      'DTSTART;TZID=America/Los_Angeles:20260302T064500',
      'DTEND;TZID=America/Los_Angeles:20260302T070000',
      'DTSTAMP:20260302T144600Z',
      'UID:7kq2m0v3brew1t0b4c8e9f0a1d@google.com',
      'RECURRENCE-ID;TZID=America/Los_Angeles:20260302T064500',
      'STATUS:CANCELLED',
      'SUMMARY:Brew',
      'END:VEVENT',
      '',
    ].join('\r\n');
    feeds.routes.set(path, { body: google.replace('END:VCALENDAR', `${cancelled}END:VCALENDAR`) });
    clock.advance(60_000);
    await until(
      () => {
        expect(fired).toHaveLength(2);
        return true;
      },
      { what: 'expect(fired).toHaveLength(2)' },
    );
    expect(fired).toEqual(['2026-03-02T14:45:00.000Z start Brew', '2026-03-02T14:47:00.000Z end Brew']);
    expect(view().state).toBe('off');
    clock.setTime('2026-03-02T15:30:00Z'); // the old end passes: nothing more
    expect(fired).toHaveLength(2);
  });

  it('reads a local .ics file, relative to the working directory', async () => {
    const { clock, fired, view } = await boot(
      '2026-03-03T17:30:00Z',
      '{ id: coffee-cal, file: test/fixtures/ical/outlook-pacific.ics }',
    );
    expect(view().attributes.next).toEqual({
      summary: 'Coffee with Dana',
      start: '2026-03-03T18:00:00.000Z',
    });
    clock.setTime('2026-03-10T18:00:00Z');
    expect(fired).toEqual([
      '2026-03-03T18:00:00.000Z start Coffee with Dana',
      '2026-03-03T18:30:00.000Z end Coffee with Dana',
      '2026-03-10T17:00:00.000Z start Coffee with Dana',
      '2026-03-10T17:30:00.000Z end Coffee with Dana',
    ]);
  });

  it('does not wait for a feed that hangs: hearth starts, and the calendar says why once the fetch times out', async () => {
    feeds.routes.set(path, { hang: true });
    process.env.COFFEE_ICAL_URL = feeds.url + path;
    hearth = await startTestHearth(
      `timezone: ${LA}\ncalendars:\n  - { id: coffee-cal, url: "\${COFFEE_ICAL_URL}", timeoutMs: 3000 }\n`,
      { clock: new FakeClock('2026-03-02T14:00:00Z') },
    );
    // Started while the fetch still hangs: had start waited for it, the calendar would say why
    // already (its 3 s timeout), whatever the time start took on a loaded machine.
    const runtime = hearth.runtime;
    expect(runtime.get('coffee-cal')).toMatchObject({ state: null, available: true });
    await until(
      () => {
        expect(runtime.get('coffee-cal')).toMatchObject({
          state: null,
          available: false,
          reason: 'fetch failed: no answer within 3000 ms',
        });
        return true;
      },
      { what: "expect(runtime.get('coffee-cal')).toMatchObject({ state: null, available: false, reas..." },
    );
  });
});
