import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { crossSite, HostNames } from '../src/server/origin.js';
import { http, startTestHearth, type TestHearth } from './support/hearth.js';
import { metricSample, type RawAnswer, rawRequest } from './support/raw-http.js';

/*
 * Finding 3 of the hardening issue: a page on the internet, opened by anyone in the house, must
 * not drive devices (cross-site POST without preflight), nor read control routes through a
 * name rebound to this box (DNS rebinding); old devices and scripts keep working.
 */

const TEXT = 'text/plain; charset=utf-8';

function expectRefused(label: string, r: RawAnswer, path: string, says: RegExp): void {
  expect([label, r.status]).toEqual([label, 403]);
  if (path.startsWith('/api/v0')) {
    expect([label, r.type]).toEqual([label, TEXT]);
    expect(r.body).toMatch(says);
    expect(r.body).toMatch(/^[^\n]+\n$/);
  } else {
    const { error } = JSON.parse(r.body);
    expect([label, error.code]).toEqual([label, 'HEARTH_ERR_FORBIDDEN']);
    expect(error.message).toMatch(says);
    expect(error.hint.length).toBeGreaterThan(10);
  }
}

describe('control routes refuse cross-site requests and foreign Host names', () => {
  let lamp: WemoSimulator;
  let h: TestHearth;
  let base: string;
  let port: string;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    h = await startTestHearth(
      `switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, path: /dev/serial/by-id/usb-hearth-test-no-such-pot, settleMs: 100 }
buttons:
  - { id: bedside }
automations:
  - id: lamp-on
    triggers: [{ state: bedside, to: "on" }]
    actions: [{ command: lamp.on }]
`,
      { http: '{ host: 127.0.0.1, port: 0, hostNames: [hearth.home.arpa] }' },
    );
    base = h.url;
    port = new URL(base).port;
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  const attacks: Array<[string, string, string | undefined]> = [
    ['POST', '/api/v1/entities/lamp/commands/on', '{"minutes":1}'],
    ['POST', '/api/v1/entities/coffee/commands/brew', '{"minutes":1}'],
    ['POST', '/api/v0/switches/lamp/on/', 'x'],
    ['POST', '/api/v0/buttons/bedside/on/', undefined],
    ['POST', '/api/v1/automations/lamp-on/run', undefined],
    ['GET', '/metrics', undefined],
  ];

  it('refuses a page of another site: its Origin, Origin null, or Sec-Fetch-Site cross-site or same-site', async () => {
    const before = (await http(`${base}/metrics`)).body;
    const signs: Array<Record<string, string>> = [
      { origin: 'https://attacker.example.com', 'content-type': 'text/plain' },
      { origin: 'null', 'content-type': 'text/plain' },
      { origin: `http://127.0.0.1:${Number(port) + 1}` },
      { origin: `http://localhost:${port}` }, // the right port, but not the Host asked for
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'cross-site' },
    ];
    let refused = 0;
    for (const headers of signs) {
      for (const [method, path, body] of attacks) {
        const label = `${method} ${path} ${JSON.stringify(headers)}`;
        const r = await rawRequest(base + path, { method, headers, body });
        expectRefused(label, r, path, /another site/);
        refused++;
      }
    }
    // Nothing happened: the plug was not switched, the button not pressed, no run started.
    expect(lamp.on).toBe(false);
    expect((await http(`${base}/api/v0/buttons/bedside/`)).status).toBe(404);
    expect(JSON.parse((await http(`${base}/api/v1/automations/lamp-on/runs`)).body).runs).toEqual([]);
    const after = (await http(`${base}/metrics`)).body;
    const count = (m: string) =>
      metricSample(m, 'hearth_http_forbidden_total', { listener: 'control', reason: 'origin' });
    expect(count(after) - count(before)).toBe(refused);
  });

  it('passes a page of its own origin, and clients that send neither header (curl, scripts, old devices)', async () => {
    const own = await rawRequest(`${base}/api/v1/entities/lamp/commands/on`, {
      method: 'POST',
      headers: { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' },
    });
    expect([own.status, JSON.parse(own.body).entity.state]).toEqual([200, 'on']);
    const byName = await rawRequest(`${base}/api/v1/entities/lamp/commands/off`, {
      method: 'POST',
      headers: { host: `hearth.home.arpa:${port}`, origin: `http://hearth.home.arpa:${port}` },
    });
    expect(byName.status).toBe(200);
    // Behind a TLS proxy the page is https and the Host has no port.
    const proxied = await rawRequest(`${base}/metrics`, {
      headers: {
        host: 'hearth.home.arpa',
        origin: 'https://hearth.home.arpa',
        'sec-fetch-site': 'same-origin',
      },
    });
    expect(proxied.status).toBe(200);
    const typed = await rawRequest(`${base}/metrics`, { headers: { 'sec-fetch-site': 'none' } });
    expect(typed.status).toBe(200);
    // An old device: no Origin, any body and type, on /api/v0.
    const device = await rawRequest(`${base}/api/v0/switches/lamp/on/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'state=1',
    });
    expect([device.status, device.body]).toEqual([200, 'OK']);
    expect(lamp.on).toBe(true);
  });

  it('refuses a Host that is not a name of this box (DNS rebinding), on control routes only', async () => {
    const before = (await http(`${base}/metrics`)).body;
    const foreign = [
      'attacker.example.com',
      `attacker.example.com:${port}`,
      'hearth.home.arpa.evil.example',
      '::1',
    ];
    let refused = 0;
    for (const host of foreign) {
      for (const [method, path] of [
        ['GET', '/metrics'],
        ['GET', '/api/v0/clocktime/'],
        ['POST', '/api/v0/switches/lamp/off/'],
        ['POST', '/api/v1/entities/lamp/commands/off'],
      ] as const) {
        const r = await rawRequest(base + path, { method, headers: { host } });
        expectRefused(`${method} ${path} Host ${host}`, r, path, /Host/);
        refused++;
      }
    }
    expect(lamp.on).toBe(true);
    const first = await rawRequest(`${base}/metrics`, { headers: { host: 'attacker.example.com' } });
    expect(JSON.parse(first.body).error.hint).toContain('http.hostNames');
    // A rebound page reads this answer: it must not learn the box's names from it.
    expect(JSON.parse(first.body).error.message).toBe(
      'control requests must name this server in the Host header (an IP address, localhost, ' +
        'this machine\'s name or one in http.hostNames), not "attacker.example.com"',
    );
    expect(first.body).not.toContain('hearth.home.arpa');
    refused++;
    // Status routes are for anyone, whatever name they used.
    expect((await rawRequest(`${base}/healthz`, { headers: { host: 'attacker.example.com' } })).status).toBe(
      200,
    );
    const after = (await http(`${base}/metrics`)).body;
    const count = (m: string) =>
      metricSample(m, 'hearth_http_forbidden_total', { listener: 'control', reason: 'host' });
    expect(count(after) - count(before)).toBe(refused);
  });

  it("accepts IP literals, localhost, this machine's names and http.hostNames as Host", async () => {
    const short = hostname().split('.')[0] ?? hostname();
    const good = [
      `127.0.0.1:${port}`,
      '192.168.1.10:8000',
      '[::1]:8000',
      '[fe80::1]',
      'localhost',
      `LOCALHOST:${port}`,
      'hearth.localhost',
      hostname(),
      `${short}.local:${port}`,
      'hearth.home.arpa',
      'Hearth.Home.Arpa.',
    ];
    for (const host of good) {
      const r = await rawRequest(`${base}/api/v0/clocktime/`, { headers: { host } });
      expect([host, r.status]).toEqual([host, 200]);
    }
  });

  it('needs JSON for a body on /api/v1: another type is a 415 that touches no device', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['text/plain', { 'content-type': 'text/plain' }],
      ['a form', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['no type at all', {}],
    ];
    for (const [label, headers] of cases) {
      for (const path of ['/api/v1/entities/coffee/commands/brew', '/api/v1/entities/lamp/commands/off']) {
        const r = await rawRequest(base + path, { method: 'POST', headers, body: '{"minutes":1}' });
        expect([label, path, r.status]).toEqual([label, path, 415]);
        const { error } = JSON.parse(r.body);
        expect(error.code).toBe('HEARTH_ERR_UNSUPPORTED_MEDIA_TYPE');
        expect(error.message).toContain('application/json');
        expect(error.hint).toContain('Content-Type: application/json');
      }
    }
    expect(lamp.on).toBe(true);
    // No body is a command without arguments, whatever the type says.
    const empty = await rawRequest(`${base}/api/v1/entities/lamp/commands/off`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '',
    });
    expect(empty.status).toBe(200);
    expect(lamp.on).toBe(false);
    const json = await rawRequest(`${base}/api/v1/entities/lamp/commands/on`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{}',
    });
    expect(json.status).toBe(200);
    expect(lamp.on).toBe(true);
    // /api/v0 still takes anything.
    const v0 = await rawRequest(`${base}/api/v0/switches/lamp/off/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'not json at all',
    });
    expect([v0.status, v0.body]).toEqual([200, 'OK']);
  });
});

describe('dashboard sessions: the cookie stands in for the token, never for the origin checks', () => {
  const TOKEN = 'csrf-session-test-token-0123456789';
  let lamp: WemoSimulator;
  let h: TestHearth;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    h = await startTestHearth(
      `switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
`,
      { http: `{ host: 127.0.0.1, port: 0, token: ${TOKEN} }` },
    );
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  const json = { 'content-type': 'application/json' };
  const login = (headers: Record<string, string> = {}, token = TOKEN) =>
    http(`${h.url}/api/v1/session`, {
      method: 'POST',
      headers: { ...json, ...headers },
      body: JSON.stringify({ token }),
    });
  const toggle = (headers: Record<string, string>) =>
    http(`${h.url}/api/v1/entities/lamp/commands/toggle`, {
      method: 'POST',
      headers: { ...json, ...headers },
    });

  it('logs in with the token only, from this origin only, and sets an HttpOnly SameSite=Strict cookie', async () => {
    expect(JSON.parse((await http(`${h.url}/api/v1/session`)).body)).toEqual({
      tokenRequired: true,
      authenticated: false,
    });
    const wrong = await login({}, 'not-the-token-at-all');
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const foreign: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of foreign) {
      const r = await login(headers);
      expect(r.status).toBe(403);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    const ok = await login({ origin: h.url, 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(200);
    const cookie = ok.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^hearth_session=[\w-]{43}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(TOKEN);
  });

  it('authorises control with the cookie, still refuses another site with it, and logs out', async () => {
    const id = /^hearth_session=([\w-]+)/.exec((await login()).headers.get('set-cookie') ?? '')?.[1];
    const cookie = `hearth_session=${id}`;
    expect((await toggle({})).status).toBe(403);
    expect((await toggle({ cookie: 'hearth_session=forged' })).status).toBe(403);
    expect((await toggle({ cookie })).status).toBe(200);
    expect(lamp.on).toBe(true);
    // A browser would not send a SameSite=Strict cookie from another site; were it sent, the origin rule still refuses.
    expect((await toggle({ cookie, origin: 'http://evil.example' })).status).toBe(403);
    expect((await toggle({ cookie, 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect(lamp.on).toBe(true);
    const session = await http(`${h.url}/api/v1/session`, { headers: { cookie } });
    expect(JSON.parse(session.body)).toEqual({ tokenRequired: true, authenticated: true });
    const out = await http(`${h.url}/api/v1/session`, { method: 'DELETE', headers: { cookie } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(
      /^hearth_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict$/,
    );
    expect((await toggle({ cookie })).status).toBe(403);
    expect(lamp.on).toBe(true);
  });
});

describe('HostNames and crossSite', () => {
  it("takes the machine's name in its full, short and .local forms, and the configured names", () => {
    const names = new HostNames(['Hearth.Home.Arpa'], 'Kitchen-Pi.lan');
    for (const ok of [
      'kitchen-pi.lan',
      'kitchen-pi',
      'kitchen-pi.local:8000',
      'hearth.home.arpa',
      '10.0.0.5:80',
    ])
      expect([ok, names.allows(ok)]).toEqual([ok, true]);
    for (const bad of [
      'kitchen-pi.evil.example',
      'lan',
      'home.arpa',
      '[not-v6]',
      'a b',
      '10.0.0.5:80:90',
      '',
    ])
      expect([bad, names.allows(bad)]).toEqual([bad, false]);
    expect(names.allows(undefined)).toBe(true);
  });

  it('finds a request cross-site by its Origin against its own Host, or by Sec-Fetch-Site', () => {
    expect(crossSite({ host: '10.0.0.5:8000' })).toBeUndefined();
    expect(crossSite({ host: '10.0.0.5:8000', origin: 'http://10.0.0.5:8000' })).toBeUndefined();
    expect(crossSite({ host: 'hearth', origin: 'http://hearth:80' })).toBeUndefined();
    expect(crossSite({ host: 'hearth:443', origin: 'https://hearth' })).toBeUndefined();
    expect(crossSite({ host: '10.0.0.5:8000', origin: 'http://10.0.0.5:8080' })).toBeDefined();
    expect(crossSite({ host: '10.0.0.5:8000', origin: 'ftp://10.0.0.5:8000' })).toBeDefined();
    expect(crossSite({ origin: 'http://10.0.0.5:8000' })).toBeDefined();
    expect(crossSite({ host: 'h', 'sec-fetch-site': 'same-origin' })).toBeUndefined();
    expect(crossSite({ host: 'h', 'sec-fetch-site': 'none' })).toBeUndefined();
    expect(crossSite({ host: 'h', 'sec-fetch-site': 'same-site' })).toBeDefined();
  });
});
