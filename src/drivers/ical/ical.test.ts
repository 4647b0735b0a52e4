import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { until } from '../../../test/support/wait.js';
import { ConfigError } from '../../config/errors.js';
import { parseConfig } from '../../config/load.js';
import { systemClock } from '../../core/clock.js';
import type { DriverContext } from '../../core/driver.js';
import { createLogger } from '../../core/log.js';
import { drivers } from '../index.js';
import { icalConfigSchema, icalDriver } from './index.js';

describe('ical/v1 config', () => {
  it('fills defaults and the name', () => {
    expect(
      icalConfigSchema.parse({ id: 'coffee-cal', kind: 'ical/v1', url: 'https://example.com/a.ics' }),
    ).toEqual({
      id: 'coffee-cal',
      kind: 'ical/v1',
      name: 'coffee-cal',
      url: 'https://example.com/a.ics',
      pollSeconds: 300,
      lookaheadDays: 7,
      timeoutMs: 10_000,
      simulate: false,
    });
  });

  it('takes exactly one of url and file, an http(s) url, no unknown keys, polls no faster than every 10 s', () => {
    const bad = (entry: Record<string, unknown>) =>
      icalConfigSchema.safeParse({ id: 'c', kind: 'ical/v1', ...entry }).success;
    expect(bad({})).toBe(false);
    expect(bad({ url: 'https://example.com/a.ics', file: 'a.ics' })).toBe(false);
    expect(bad({ url: 'ftp://example.com/a.ics' })).toBe(false);
    expect(bad({ url: 'not a url' })).toBe(false);
    expect(bad({ file: 'a.ics', pollSecs: 60 })).toBe(false);
    expect(bad({ file: 'a.ics', pollSeconds: 5 })).toBe(false);
    expect(bad({ file: 'a.ics' })).toBe(true);
    expect(bad({ url: 'http://127.0.0.1:8080/cal.ics' })).toBe(true);
  });

  it('is the default kind of calendars:, takes the url from the environment, and never echoes it', () => {
    const secret = 'webcal://calendar.google.com/calendar/ical/x/private-0123456789abcdef/basic.ics';
    const yaml = `calendars:\n  - { id: coffee-cal, url: "\${COFFEE_ICAL_URL}", pollSeconds: 60 }\n`;
    const ok = parseConfig(yaml, '/etc/hearth/hearth.yaml', {
      drivers,
      env: { COFFEE_ICAL_URL: 'https://calendar.google.com/calendar/ical/x/private-0123/basic.ics' },
    });
    expect(ok.devices.map((d) => [d.driver.name, d.config.kind, d.config.pollSeconds])).toEqual([
      ['ical', 'ical/v1', 60],
    ]);
    let error: unknown;
    try {
      parseConfig(yaml, '/etc/hearth/hearth.yaml', { drivers, env: { COFFEE_ICAL_URL: secret } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(
      /hearth\.yaml:2:\d+: calendars\[0\]: url must be an http:\/\/ or https:\/\/ address/,
    );
    expect(message).not.toContain('private-');
  });
});

describe('the ical driver with a bare DriverContext', () => {
  it('never logs the URL or puts it in a reason, and does not block setup on the first fetch', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html>Not Found</html>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/calendar/ical/private-feedface/basic.ics`;
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const reasons: string[] = [];
    const stopping = new AbortController();
    const ctx: DriverContext = {
      entities: {
        bind(id) {
          return {
            id,
            setState() {},
            setAttributes() {},
            setUnavailable: (reason) => reasons.push(reason),
            setAvailable() {},
            fire() {},
          };
        },
        add() {
          throw new Error('the ical driver declares its entity');
        },
        remove() {},
        ids: () => [],
      },
      log: createLogger('trace', sink),
      clock: systemClock,
      signal: stopping.signal,
    };
    const config = icalConfigSchema.parse({ id: 'coffee-cal', kind: 'ical/v1', url });
    try {
      const running = await icalDriver.setup(ctx, config);
      expect(reasons).toEqual([]); // setup returned before the fetch answered
      await until(
        () => {
          expect(reasons).toEqual(['fetch failed: HTTP 404']);
          return true;
        },
        { what: "expect(reasons).toEqual(['fetch failed: HTTP 404'])" },
      );
      await running.stop();
      stopping.abort();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(lines.join('')).toContain('"calendar":"coffee-cal"');
    expect(lines.join('')).not.toContain('feedface');
  });
});
