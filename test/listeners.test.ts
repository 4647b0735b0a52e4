import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import { defaultAllow } from '../src/config/schema.js';
import { drivers } from '../src/drivers/index.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { AllowList } from '../src/server/allow-list.js';
import { type Answer, http, post, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { rawRequest } from './support/raw-http.js';

const TEXT = 'text/plain; charset=utf-8';
const TOKEN = 'correct-horse-battery-staple-42';

/** One sample of a metric from the Prometheus text (0 when the series does not exist yet). */
function sample(metrics: string, name: string, labels: Record<string, string>): number {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}

/** Opens the SSE stream, resolves with its status and headers once the first bytes arrive. */
function openEvents(url: string): Promise<{ status: number; type: string | undefined; first: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      res.setEncoding('utf8');
      res.once('data', (chunk: string) => {
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], first: chunk });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('no events within 5 s')));
    req.end();
  });
}

/** Collects `count` parsed `state` events from the stream of `url`, after `opened` resolves. */
function collectStates(url: string, count: number): { opened: Promise<void>; states: Promise<unknown[]> } {
  let opened!: () => void;
  const openedP = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const states = new Promise<unknown[]>((resolve, reject) => {
    const got: unknown[] = [];
    const req = request(url, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.startsWith('retry:')) opened();
        for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: state') && data) got.push(JSON.parse(data.slice(6)));
        }
        if (got.length >= count) {
          req.destroy();
          resolve(got);
        }
      });
    });
    req.on('error', (err) => {
      if (got.length < count) reject(err);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`only ${got.length} of ${count} events arrived`)));
    req.end();
  });
  return { opened: openedP, states };
}

/** Asserts a 403 in hearth's shape: one line of text under /api/v0, the JSON error elsewhere. */
function expectForbidden(label: string, path: string, r: Answer): void {
  expect([label, r.status]).toEqual([label, 403]);
  if (path.startsWith('/api/v0')) {
    expect([label, r.type]).toEqual([label, TEXT]);
    expect(r.body).toMatch(/^[^\n]{10,}\n$/);
  } else {
    expect([label, r.type]).toEqual([label, 'application/json; charset=utf-8']);
    const { error } = JSON.parse(r.body);
    expect(error.code).toBe('HEARTH_ERR_FORBIDDEN');
    expect(error.message.length).toBeGreaterThan(10);
    expect(error.hint.length).toBeGreaterThan(10);
  }
}

const STATUS_GETS = [
  '/',
  '/api/v1/entities',
  '/api/v1/entities/',
  '/api/v1/entities/lamp',
  '/api/v1/entities/bedside/',
  '/healthz',
  '/readyz',
];

const WRITE_PATHS = [
  '/',
  '/api/v1/entities',
  '/api/v1/entities/lamp',
  '/api/v1/entities/lamp/commands/on',
  '/api/v1/entities/bedside/commands/on',
  '/api/v1/events',
  '/api/v0/switches/lamp/on/',
  '/api/v0/switches/lamp/toggle',
  '/api/v0/buttons/bedside/on/',
  '/api/v0/buttons/x/on/',
  '/api/v1/session',
  '/healthz',
];

const CONTROL_GETS = [
  '/metrics',
  '/api/v0/clocktime',
  '/api/v0/clocktime/',
  '/api/v0/buttons/x',
  '/api/v0/buttons/bedside/',
  '/api/v0/buttontimes/bedside/',
  '/api/v0/switches/lamp/on/',
  '/api/v1/entities/lamp/commands/on',
  '/api/v1/nothing',
  '/favicon.ico',
  '/metrics?format=json',
  // The dashboard's: its files, log-in, device groups and chime list are the control listener's.
  '/app/assets/app-ABCDEFGH.js',
  '/api/v1/session',
  '/api/v1/devices',
  '/api/v1/media',
];

describe('two listeners: public (read-only status) and control', () => {
  let lamp: WemoSimulator;
  let h: TestHearth;
  let pub: string;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    h = await startTestHearth(
      `switches:
  - { id: lamp, kind: wemo/v1, name: Living room <lamp>, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
buttons:
  - { id: bedside, name: Bedside button }
`,
      { http: '{ host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }' },
    );
    if (!h.publicUrl) throw new Error('hearth started no public listener');
    pub = h.publicUrl;
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  it('starts both listeners on their own ports', () => {
    expect(h.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(pub).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(pub).not.toBe(h.url);
  });

  it('public listener answers every status route with 200, for GET and HEAD', async () => {
    for (const path of STATUS_GETS) {
      const r = await http(pub + path);
      expect([path, r.status]).toEqual([path, 200]);
      const head = await http(pub + path, { method: 'HEAD' });
      expect([path, head.status]).toEqual([path, 200]);
    }
    const { entities } = JSON.parse((await http(`${pub}/api/v1/entities`)).body);
    expect(entities.map((e: { id: string }) => e.id).sort()).toEqual(['bedside', 'lamp']);
    const events = await openEvents(`${pub}/api/v1/events`);
    expect(events).toMatchObject({ status: 200, type: 'text/event-stream; charset=utf-8' });
    expect(events.first).toMatch(/^retry: \d+/);
    const headEvents = await http(`${pub}/api/v1/events`, { method: 'HEAD' });
    expect([headEvents.status, headEvents.type]).toEqual([200, 'text/event-stream; charset=utf-8']);
  });

  it('the status page is self-contained HTML with every entity and no controls', async () => {
    const r = await http(`${pub}/`);
    expect(r.type).toBe('text/html; charset=utf-8');
    expect(r.body).toMatch(/^<!doctype html>/);
    expect(r.body).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    // Names are escaped, not markup.
    expect(r.body).toContain('Living room &lt;lamp&gt;');
    expect(r.body).not.toContain('<lamp>');
    expect(r.body).toContain('data-id="bedside"');
    expect(r.body).toContain("new EventSource('api/v1/events'");
    // Nothing on the page controls anything, and nothing loads from elsewhere.
    expect(r.body).not.toMatch(/<(button|form|input|select|textarea)\b/i);
    expect(r.body).not.toMatch(/method:\s*'(POST|PUT|DELETE|PATCH)'/i);
    expect(r.body).not.toMatch(/\b(src|href)="(https?:)?\/\//i);
    const csp = r.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    // The inline script parses, and the policy lets exactly it (and the inline style) run.
    const script = /<script>([\s\S]*)<\/script>/.exec(r.body)?.[1] ?? '';
    const style = /<style>([\s\S]*)<\/style>/.exec(r.body)?.[1] ?? '';
    expect(() => new Function(script)).not.toThrow();
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    expect(csp).toContain(`script-src ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
  });

  it('public listener refuses every write and every control route with 403, counted in /metrics', async () => {
    const before = (await http(`${h.url}/metrics`)).body;
    const startCount = sample(before, 'hearth_http_forbidden_total', {
      listener: 'public',
      reason: 'read-only',
    });
    let refused = 0;
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of WRITE_PATHS) {
        const r = await http(pub + path, {
          method,
          body: '{"minutes": 5}',
          headers: { 'content-type': 'application/json' },
        });
        expectForbidden(`${method} ${path}`, path, r);
        refused++;
      }
    }
    for (const path of CONTROL_GETS) {
      expectForbidden(`GET ${path}`, path, await http(pub + path));
      expect([`HEAD ${path}`, (await http(pub + path, { method: 'HEAD' })).status]).toEqual([
        `HEAD ${path}`,
        403,
      ]);
      refused += 2;
    }
    expectForbidden(
      'OPTIONS',
      '/api/v1/entities',
      await http(`${pub}/api/v1/entities`, { method: 'OPTIONS' }),
    );
    refused++;
    // Even with the control token, the public listener controls nothing.
    const withToken = await post(`${pub}/api/v0/switches/lamp/on/`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expectForbidden('POST with a token', '/api/v0/switches/lamp/on/', withToken);
    refused++;

    // Nothing happened: the plug was never switched, the button never pressed.
    expect(lamp.on).toBe(false);
    expect((await http(`${h.url}/api/v0/buttons/bedside/`)).status).toBe(404);
    const one = await post(`${pub}/api/v0/switches/lamp/on/`);
    expect(one.body).toBe(
      "this listener is read-only: it serves hearth's status (GET /, /api/v1/entities, /api/v1/events, /healthz, /readyz), not POST /api/v0/switches/lamp/on/\n",
    );
    refused++;

    const after = (await http(`${h.url}/metrics`)).body;
    expect(sample(after, 'hearth_http_forbidden_total', { listener: 'public', reason: 'read-only' })).toBe(
      startCount + refused,
    );
    expect(sample(after, 'hearth_http_forbidden_total', { listener: 'control' })).toBe(0);
  });

  it('control listener (loopback is in the default allow-list) serves everything', async () => {
    expect(await post(`${h.url}/api/v0/switches/lamp/on/`)).toMatchObject({ status: 200, body: 'OK' });
    expect(lamp.on).toBe(true);
    expect((await post(`${h.url}/api/v1/entities/bedside/commands/on`)).status).toBe(200);
    expect((await http(`${h.url}/api/v0/clocktime/`)).body).toMatch(/^\d{4}$/);
    expect((await http(`${h.url}/metrics`)).body).toContain('hearth_ready 1');
    for (const path of STATUS_GETS) expect([path, (await http(h.url + path)).status]).toEqual([path, 200]);
  });

  it('the public page and stream show a change made on the control listener, live', async () => {
    const { opened, states } = collectStates(`${pub}/api/v1/events`, 1);
    await opened;
    await post(`${h.url}/api/v0/switches/lamp/off/`);
    const [change] = (await states) as Array<{ id: string; state: string; updatedAt: string }>;
    expect(change).toMatchObject({ id: 'lamp', state: 'off', available: true });
    expect(Date.parse(change?.updatedAt ?? '')).toBeGreaterThan(Date.now() - 5000);
    const page = (await http(`${pub}/`)).body;
    expect(page).toMatch(/data-id="lamp">.*data-state="off">off<.*data-available="true">available</s);
  });
});

describe('control listener with an allow-list that leaves loopback out', () => {
  let lamp: WemoSimulator;
  let h: TestHearth;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    h = await startTestHearth(
      `switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
`,
      { http: '{ host: 127.0.0.1, port: 0, allow: [10.0.0.0/8] }' },
    );
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  it('refuses control routes from 127.0.0.1 with 403, while status routes still answer', async () => {
    const control: Array<[string, string]> = [
      ['POST', '/api/v0/switches/lamp/on/'],
      ['POST', '/api/v0/buttons/bedside/on/'],
      ['GET', '/api/v0/clocktime/'],
      ['GET', '/api/v0/buttons/x/'],
      ['POST', '/api/v1/entities/lamp/commands/on'],
      ['DELETE', '/api/v1/entities/lamp'],
      ['GET', '/metrics'],
      ['GET', '/no/such/route'],
    ];
    for (const [method, path] of control) {
      const r = await http(h.url + path, { method });
      expectForbidden(`${method} ${path}`, path, r);
      expect(r.headers.get('www-authenticate')).toBeNull();
    }
    const v0 = await http(`${h.url}/api/v0/clocktime/`);
    expect(v0.body).toBe('control requests from 127.0.0.1 are not allowed\n');
    const v1 = JSON.parse((await post(`${h.url}/api/v1/entities/lamp/commands/on`)).body).error;
    expect(v1.message).toBe('control requests from 127.0.0.1 are not allowed');
    expect(v1.hint).toContain('http.allow');
    expect(lamp.on).toBe(false);

    for (const path of STATUS_GETS.filter((p) => !p.includes('bedside'))) {
      expect([path, (await http(h.url + path)).status]).toEqual([path, 200]);
    }
    expect((await openEvents(`${h.url}/api/v1/events`)).status).toBe(200);
  });

  it('admits a client from an allowed network and counts the refusals by reason', async () => {
    // fastify's inject() runs the real hooks with the client address set, as from the LAN.
    const fromLan = await h.server.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3' });
    expect(fromLan.statusCode).toBe(200);
    expect(
      sample(fromLan.body, 'hearth_http_forbidden_total', { listener: 'control', reason: 'address' }),
    ).toBe(10);
    const mapped = await h.server.inject({
      method: 'POST',
      url: '/api/v0/switches/lamp/on/',
      remoteAddress: '::ffff:10.9.8.7',
    });
    expect([mapped.statusCode, mapped.body]).toEqual([200, 'OK']);
    expect(lamp.on).toBe(true);
    const outside = await h.server.inject({ method: 'GET', url: '/metrics', remoteAddress: '192.168.1.5' });
    expect(outside.statusCode).toBe(403);
  });

  it('serves / as the read-only status page to a client that may not control, the dashboard to one that may', async () => {
    const outside = await http(`${h.url}/`);
    expect(outside.status).toBe(200);
    expect(outside.body).toContain("new EventSource('api/v1/events'");
    expect(outside.body).not.toContain('/app/assets/');
    const fromLan = await h.server.inject({ method: 'GET', url: '/', remoteAddress: '10.1.2.3' });
    expect(fromLan.statusCode).toBe(200);
    expect(fromLan.headers['content-security-policy']).toContain("script-src 'self'");
    expect(fromLan.body).toMatch(/<script type="module" src="\/app\/assets\/app-\w+\.js">/);
    // A LAN client that names the box by a name it does not know (DNS rebinding) gets the status page.
    const rebound = await h.server.inject({
      method: 'GET',
      url: '/',
      remoteAddress: '10.1.2.3',
      headers: { host: 'evil.example' },
    });
    expect(rebound.body).not.toContain('/app/assets/');
    // The log-in routes are control routes: refused from an address outside the allow-list.
    expectForbidden('GET /api/v1/session', '/api/v1/session', await http(`${h.url}/api/v1/session`));
  });
});

describe('control listener on :: (dual-stack), allow 127.0.0.0/8', () => {
  let h: TestHearth;
  let port: string;

  beforeAll(async () => {
    h = await startTestHearth('', { http: '{ host: "::", port: 0, allow: [127.0.0.0/8] }' });
    port = new URL(h.url).port;
  });

  afterAll(async () => {
    await h?.close();
  });

  it('matches an IPv4 client seen as ::ffff:127.0.0.1, and refuses ::1', async () => {
    expect((await http(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    const v6 = await http(`http://[::1]:${port}/api/v0/clocktime/`);
    expect([v6.status, v6.body]).toEqual([403, 'control requests from ::1 are not allowed\n']);
    expect((await http(`http://[::1]:${port}/healthz`)).status).toBe(200);
  });
});

describe('AllowList', () => {
  it('matches IPv4, IPv6, IPv4-mapped IPv6 and link-local addresses with a zone', () => {
    const list = new AllowList(defaultAllow);
    const cases: Array<[string | undefined, boolean]> = [
      ['127.0.0.1', true],
      ['10.200.1.1', true],
      ['172.16.0.1', true],
      ['172.31.255.255', true],
      ['172.32.0.1', false],
      ['192.168.1.20', true],
      ['192.169.0.1', false],
      ['8.8.8.8', false],
      ['::1', true],
      ['::2', false],
      ['fd12:3456::1', true],
      ['fe80::1%eth0', true],
      ['2001:db8::1', false],
      ['::ffff:192.168.1.20', true],
      ['::FFFF:8.8.8.8', false],
      ['::ffff:c0a8:0114', true],
      ['not-an-address', false],
      ['', false],
      [undefined, false],
    ];
    for (const [address, allowed] of cases)
      expect([address, list.allows(address)]).toEqual([address, allowed]);
    expect(new AllowList([]).allows('127.0.0.1')).toBe(false);
    expect(new AllowList(['10.0.0.5']).allows('10.0.0.5')).toBe(true);
    expect(new AllowList(['10.0.0.5']).allows('10.0.0.6')).toBe(false);
    expect(new AllowList(['0.0.0.0/0']).allows('203.0.113.9')).toBe(true);
  });
});

describe('control listener with a bearer token', () => {
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

  it('refuses a missing or wrong token with 403 and WWW-Authenticate: Bearer', async () => {
    const wrong: Array<Record<string, string>> = [
      {},
      { authorization: '' },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Bearer ${TOKEN.toUpperCase()}` },
      { authorization: `Basic ${Buffer.from(`hearth:${TOKEN}`).toString('base64')}` },
      { authorization: TOKEN },
      { authorization: `Bearer ${TOKEN} ${TOKEN}` },
    ];
    for (const [i, headers] of wrong.entries()) {
      for (const [method, path] of [
        ['POST', '/api/v0/switches/lamp/on/'],
        ['POST', '/api/v1/entities/lamp/commands/on'],
        ['GET', '/metrics'],
      ] as const) {
        // Each kind of wrong token from its own address: 10 wrong tokens from one address
        // within a minute get it 429s for a while (the guess throttle, sessions.test.ts).
        const raw = await rawRequest(h.url + path, { method, headers, localAddress: `127.0.0.${20 + i}` });
        const r: Answer = {
          ...raw,
          type: raw.type ?? null,
          headers: new Headers(raw.headers as Record<string, string>),
        };
        const label = `${method} ${path} ${JSON.stringify(headers)}`;
        expectForbidden(label, path, r);
        expect([label, r.headers.get('www-authenticate')]).toEqual([label, 'Bearer realm="hearth"']);
        // The answer never echoes what was sent.
        expect(r.body).not.toContain(TOKEN.slice(0, 8));
      }
    }
    expect(lamp.on).toBe(false);
    const missing = JSON.parse((await post(`${h.url}/api/v1/entities/lamp/commands/on`)).body).error;
    expect(missing.message).toBe('control requests need the header Authorization: Bearer <token>');
    expect(missing.hint).toContain('http.token');
  });

  it('accepts the right token, and status routes need none', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect(await post(`${h.url}/api/v0/switches/lamp/on/`, { headers: auth })).toMatchObject({
      status: 200,
      body: 'OK',
    });
    expect(lamp.on).toBe(true);
    const v1 = await post(`${h.url}/api/v1/entities/lamp/commands/off`, {
      headers: { authorization: `bearer  ${TOKEN}` },
    });
    expect(v1.status).toBe(200);
    expect(lamp.on).toBe(false);
    for (const path of ['/', '/api/v1/entities', '/api/v1/entities/lamp', '/healthz', '/readyz']) {
      expect([path, (await http(h.url + path)).status]).toEqual([path, 200]);
    }
    const metrics = await http(`${h.url}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(
      sample(metrics.body, 'hearth_http_forbidden_total', { listener: 'control', reason: 'token' }),
    ).toBe(28);
  });
});

describe('the metrics listener (http.metrics): /metrics for a scraper, without the token', () => {
  let h: TestHearth;
  let scrape: string;

  beforeAll(async () => {
    // The control listener takes only the LAN and the token, as in a pod; the scraper is on loopback.
    h = await startTestHearth('buttons: [{ id: bedside }]\n', {
      http: `{ host: 127.0.0.1, port: 0, allow: [192.168.1.0/24], token: ${TOKEN}, metrics: { host: 127.0.0.1, port: 0 } }`,
    });
    if (!h.metricsUrl) throw new Error('hearth started no metrics listener');
    scrape = h.metricsUrl;
  });

  afterAll(async () => {
    await h?.close();
  });

  it('serves /metrics to an address of its allow-list with no token, where the control listener refuses it', async () => {
    expect(scrape).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(scrape).not.toBe(h.url);
    const r = await http(`${scrape}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    expect(r.body).toContain('hearth_http_forbidden_total');
    expect((await http(`${scrape}/metrics`, { method: 'HEAD' })).status).toBe(200);
    expect((await http(`${h.url}/metrics`)).status).toBe(403);
  });

  it('serves nothing else: no status, no control, no write', async () => {
    for (const path of ['/', '/healthz', '/api/v1/entities', '/api/v0/clocktime/', '/api/v1/cluster']) {
      const r = await http(scrape + path, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect([path, r.status]).toEqual([path, 404]);
    }
    expect((await post(`${scrape}/api/v0/buttons/bedside/on/`)).status).toBe(404);
    expect((await post(`${scrape}/metrics`)).status).toBe(404);
  });

  it('refuses an address outside http.metrics.allow and a Host that does not name the box, counted by listener', async () => {
    const lan = await h.server.inject({ method: 'GET', url: '/metrics', remoteAddress: '192.168.1.20' });
    expect(lan.statusCode).toBe(403);
    const metricsServer = await startTestHearth('', {
      http: '{ host: 127.0.0.1, port: 0, metrics: { host: 127.0.0.1, port: 0, allow: [10.42.0.0/16] } }',
    });
    try {
      const url = metricsServer.metricsUrl as string;
      const refused = await http(`${url}/metrics`);
      expect(refused.status).toBe(403);
      const error = JSON.parse(refused.body).error;
      expect(error.message).toBe('metrics requests from 127.0.0.1 are not allowed');
      expect(error.hint).toContain('http.metrics.allow');
      const rebound = await rawRequest(`${scrape}/metrics`, { headers: { host: 'evil.example:80' } });
      expect(rebound.status).toBe(403);
      const counted = (await http(`${scrape}/metrics`)).body;
      expect(sample(counted, 'hearth_http_forbidden_total', { listener: 'metrics', reason: 'host' })).toBe(1);
      expect(
        sample((await http(`${metricsServer.url}/metrics`)).body, 'hearth_http_forbidden_total', {
          listener: 'metrics',
          reason: 'address',
        }),
      ).toBe(1);
    } finally {
      await metricsServer.close();
    }
  });
});

describe('listener config', () => {
  const dir = tempDir('hearth-listeners-config-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function load(name: string, text: string, env: NodeJS.ProcessEnv = {}) {
    const file = join(dir, name);
    writeFileSync(file, text);
    return { file, load: () => loadConfigFile(file, { drivers, env }) };
  }

  function errorOf(run: () => unknown): ConfigError {
    try {
      run();
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected a ConfigError');
  }

  it('defaults: control on 0.0.0.0:8000, no public listener, loopback and private ranges, no token', () => {
    const cfg = load('defaults.yaml', 'timezone: UTC\n').load();
    expect(cfg.http).toEqual({
      host: '0.0.0.0',
      port: 8000,
      allow: [...defaultAllow],
      hostNames: [],
      maxStreams: 100,
      maxStreamsPerClient: 10,
      maxConnectionsPerClient: 64,
      headersTimeout: 10,
      requestTimeout: 30,
      keepAliveTimeout: 5,
      trustProxy: false,
    });
    const pub = load('public.yaml', 'http:\n  public: {}\n').load();
    expect(pub.http.public).toEqual({ host: '0.0.0.0', port: 8080 });
    const metrics = load('metrics.yaml', 'http:\n  metrics: {}\n').load();
    expect(metrics.http.metrics).toEqual({ host: '0.0.0.0', port: 9464, allow: [...defaultAllow] });
  });

  it('reads every key, the token from the environment', () => {
    const { load: run } = load(
      'full.yaml',
      `http:
  host: 127.0.0.1
  port: 8000
  public: { host: 0.0.0.0, port: 8080 }
  allow: [192.168.1.0/24, "fd00::/8", 10.0.0.7]
  token: \${HEARTH_TOKEN}
  hostNames: [hearth.home.arpa, Kitchen-Pi.local]
  maxStreams: 20
  maxStreamsPerClient: 4
  maxConnectionsPerClient: 32
  headersTimeout: 5
  requestTimeout: 20
  keepAliveTimeout: 2.5
  trustProxy: [10.0.0.2, "fd00::/64"]
`,
      { HEARTH_TOKEN: TOKEN },
    );
    expect(run().http).toEqual({
      host: '127.0.0.1',
      port: 8000,
      public: { host: '0.0.0.0', port: 8080 },
      allow: ['192.168.1.0/24', 'fd00::/8', '10.0.0.7'],
      token: TOKEN,
      hostNames: ['hearth.home.arpa', 'Kitchen-Pi.local'],
      maxStreams: 20,
      maxStreamsPerClient: 4,
      maxConnectionsPerClient: 32,
      headersTimeout: 5,
      requestTimeout: 20,
      keepAliveTimeout: 2.5,
      trustProxy: ['10.0.0.2', 'fd00::/64'],
    });
    const optional = load('optional.yaml', `http:\n  token: \${HEARTH_TOKEN:-}\n`).load();
    expect(optional.http.token).toBeUndefined();
  });

  it('a bad CIDR is an error at its line', () => {
    const { file, load: run } = load(
      'bad-cidr.yaml',
      `http:
  port: 8000
  allow:
    - 192.168.1.0/24
    - 10.0.0.0/33
    - 300.1.1.1/8
    - fd00::/129
`,
    );
    const err = errorOf(run);
    const hint =
      'must be a network in CIDR notation, like 192.168.1.0/24 or fd00::/8 (an address alone is that one address)';
    expect(err.message.split('\n')).toEqual([
      `${file}:5:7: http.allow[1]: ${hint} (got "10.0.0.0/33")`,
      `${file}:6:7: http.allow[2]: ${hint} (got "300.1.1.1/8")`,
      `${file}:7:7: http.allow[3]: ${hint} (got "fd00::/129")`,
    ]);
  });

  it('a short token is an error at its line that says why, and does not show the token', () => {
    const { file, load: run } = load('short.yaml', `http:\n  port: 8000\n  token: \${HEARTH_TOKEN}\n`, {
      HEARTH_TOKEN: 'hunter2-secret',
    });
    const err = errorOf(run);
    expect(err.message).toBe(
      `${file}:3:10: http.token: is too short: use at least 16 characters, because a short token can be guessed (\`openssl rand -hex 32\` makes a good one)`,
    );
    expect(err.message).not.toContain('hunter2');
    const spaced = errorOf(load('spaced.yaml', 'http:\n  token: "this token has spaces"\n').load);
    expect(spaced.message).toContain('http.token: must be printable ASCII without spaces');
    expect(spaced.message).not.toContain('has spaces');
  });

  it('the public listener on the control port is an error', () => {
    const { file, load: run } = load('same-port.yaml', 'http:\n  port: 8000\n  public: { port: 8000 }\n');
    expect(errorOf(run).message).toBe(
      `${file}:3:19: http.public.port: is the control listener's port too; pick another one (e.g. 8080), or leave \`public\` out to serve status on port 8000 only (got 8000)`,
    );
    const other = load(
      'other-host.yaml',
      'http:\n  host: 127.0.0.1\n  public: { host: 192.0.2.1, port: 8000 }\n',
    );
    expect(other.load().http.public).toEqual({ host: '192.0.2.1', port: 8000 });
  });

  it('the metrics listener on the port of another listener is an error', () => {
    const { file, load: run } = load('metrics-port.yaml', 'http:\n  port: 8000\n  metrics: { port: 8000 }\n');
    expect(errorOf(run).message).toBe(
      `${file}:3:20: http.metrics.port: is the control listener's port too; pick another one (e.g. 9464), or leave \`metrics\` out to serve /metrics on port 8000 (a control route) (got 8000)`,
    );
    const { load: pub } = load(
      'metrics-public.yaml',
      'http:\n  public: { port: 8080 }\n  metrics: { port: 8080 }\n',
    );
    expect(errorOf(pub).message).toContain("http.metrics.port: is the public listener's port too");
  });
});
