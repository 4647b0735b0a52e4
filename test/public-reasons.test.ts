import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityView } from '../src/core/runtime-api.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { publicReason, publicReasons, publicView } from '../src/server/public-view.js';
import { http, post, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { rawRequest } from './support/raw-http.js';
import { until } from './support/wait.js';

/*
 * Finding 5 of the hardening issue: the public listener told the internet LAN addresses, serial
 * numbers and file paths through `reason`. Public readers get a generic phrase; the control
 * listener keeps the detail for the household.
 */

const SERIAL = '/dev/serial/by-id/usb-Hearth_Test_Coffee_SN0042-if00-port0';

/** Opens an SSE stream; `next(n)` resolves with the next n `state` events. */
function stream(url: string) {
  const got: EntityView[] = [];
  let opened!: () => void;
  const ready = new Promise<void>((r) => {
    opened = r;
  });
  let buf = '';
  const req = request(url, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.startsWith('retry:')) opened();
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) got.push(JSON.parse(data.slice(6)));
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return {
    ready,
    got,
    close: () => req.destroy(),
  };
}

describe('public readers see generic reasons; the control listener keeps the detail', () => {
  let h: TestHearth;
  let pub: string;
  let dir: string;
  let calendar: string;
  let plug: WemoSimulator;
  const secrets = () => [
    '127.0.0.1:1',
    '127.0.0.1',
    '/dev/serial',
    'SN0042',
    calendar,
    dir,
    'ECONNREFUSED',
    'ENOENT',
  ];

  beforeAll(async () => {
    dir = tempDir('hearth-reasons-');
    calendar = join(dir, 'private', 'calendar.ics');
    plug = await startWemoSimulator({ initial: false });
    h = await startTestHearth(
      `switches:
  - { id: dead-plug, kind: wemo/v1, address: 127.0.0.1, port: 1, timeoutMs: 500, pollSeconds: 0 }
  - { id: plug, kind: wemo/v1, address: 127.0.0.1, port: ${plug.port}, timeoutMs: 500, pollSeconds: 0 }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, path: ${SERIAL}, settleMs: 100 }
calendars:
  - { id: cal, kind: ical/v1, file: ${calendar} }
`,
      { http: '{ host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }' },
    );
    if (!h.publicUrl) throw new Error('no public listener');
    pub = h.publicUrl;
    // The dead plug is unavailable once a command to it has failed.
    await post(`${h.url}/api/v1/entities/dead-plug/commands/on`);
    await until(
      async () => {
        const { entities } = JSON.parse((await http(`${h.url}/api/v1/entities`)).body) as {
          entities: EntityView[];
        };
        return ['dead-plug', 'coffee', 'cal'].every(
          (id) => entities.find((e) => e.id === id)?.available === false,
        );
      },
      { timeoutMs: 10_000, what: 'the three failing entities unavailable' },
    );
  });

  afterAll(async () => {
    await h?.close();
    await plug?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the control listener tells the household what is wrong, where', async () => {
    const { entities } = JSON.parse((await http(`${h.url}/api/v1/entities`)).body) as {
      entities: EntityView[];
    };
    const reason = (id: string) => entities.find((e) => e.id === id)?.reason ?? '';
    expect(reason('dead-plug')).toContain('127.0.0.1:1');
    expect(reason('coffee')).toContain(SERIAL);
    expect(reason('cal')).toContain(calendar);
  });

  it('the public listener says only "not answering", "not found" or "device error", everywhere', async () => {
    const list = await http(`${pub}/api/v1/entities`);
    const { entities } = JSON.parse(list.body) as { entities: EntityView[] };
    const reason = (id: string) => entities.find((e) => e.id === id)?.reason;
    expect(reason('dead-plug')).toBe('not answering');
    expect(reason('coffee')).toBe('not found');
    expect(reason('cal')).toBe('not found');
    expect(reason('plug')).toBeNull();
    const one = await http(`${pub}/api/v1/entities/coffee`);
    const page = await http(`${pub}/`);
    for (const body of [list.body, one.body, page.body]) {
      for (const secret of secrets()) expect([secret, body.includes(secret)]).toEqual([secret, false]);
    }
    expect(JSON.parse(one.body).entity.reason).toBe('not found');
  });

  it('a stranger reaching the control listener through a rebound name gets the generic reason too', async () => {
    const rebound = await rawRequest(`${h.url}/api/v1/entities/dead-plug`, {
      headers: { host: 'attacker.example' },
    });
    expect(JSON.parse(rebound.body).entity.reason).toBe('not answering');
  });

  it('the public stream carries generic reasons, the control stream the detail', async () => {
    const publicStream = stream(`${pub}/api/v1/events`);
    const controlStream = stream(`${h.url}/api/v1/events`);
    await Promise.all([publicStream.ready, controlStream.ready]);
    expect((await post(`${h.url}/api/v1/entities/plug/commands/on`)).status).toBe(200);
    const port = plug.port;
    await plug.close();
    // The plug is gone: the command fails and the plug becomes unavailable, on both streams.
    expect((await post(`${h.url}/api/v1/entities/plug/commands/off`)).status).toBe(502);
    await until(
      async () =>
        [publicStream, controlStream].every((s) => s.got.some((e) => e.id === 'plug' && !e.available)),
      { what: 'the plug unavailable on both streams' },
    );
    const down = (s: typeof publicStream) => s.got.find((e) => e.id === 'plug' && !e.available);
    expect(down(publicStream)?.reason).toBe('not answering');
    expect(down(controlStream)?.reason).toContain(`127.0.0.1:${port}`);
    expect(JSON.stringify(publicStream.got)).not.toContain('127.0.0.1');
    publicStream.close();
    controlStream.close();
  });
});

describe('publicReason and publicView', () => {
  it('maps a reason to a fixed phrase, never to its text', () => {
    const cases: Array<[string, string]> = [
      ['wemo 192.168.1.40:49153 did not answer within 2000 ms', 'not answering'],
      ['ECONNREFUSED: connect ECONNREFUSED 10.0.0.5:9999', 'not answering'],
      ['getaddrinfo ENOTFOUND lamp.lan', 'not answering'],
      ['driver failed to start: Error: No such file or directory, cannot open /dev/ttyUSB0', 'not found'],
      ['read failed: no file /home/ann/calendar.ics', 'not found'],
      ['the coffee pot cannot brew: sensor CRC error (T+-1000) on /dev/ttyACM0', 'device error'],
    ];
    for (const [reason, phrase] of cases) expect([reason, publicReason(reason)]).toEqual([reason, phrase]);
    expect(publicReason(null)).toBeNull();
    for (const [reason] of cases) expect(publicReasons).toContain(publicReason(reason));
  });

  it('makes failure attributes generic too, and leaves an available entity as it is', () => {
    const view: EntityView = {
      id: 'front',
      kind: 'valve',
      name: 'Front',
      driver: 'relay-board',
      state: 'closed',
      available: true,
      reason: null,
      updatedAt: null,
      commands: [],
      attributes: { closedBy: 'port', failure: 'relay board port /dev/serial/by-id/usb-X: EIO', relay: 1 },
    };
    expect(publicView(view).attributes).toEqual({ closedBy: 'port', failure: 'device error', relay: 1 });
    const fine = { ...view, attributes: { relay: 1 } };
    expect(publicView(fine)).toBe(fine);
  });
});
