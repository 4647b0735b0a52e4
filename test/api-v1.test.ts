import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../src/core/errors.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { http, post, startTestHearth, type TestHearth } from './support/hearth.js';
import { rawExchange } from './support/raw-http.js';

const json = { 'content-type': 'application/json' };

/** Opens the SSE stream and collects parsed `state` events until `count` have arrived. */
function collectEvents(url: string, count: number): { events: Promise<unknown[]>; opened: Promise<void> } {
  let opened!: () => void;
  const openedP = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const events = new Promise<unknown[]>((resolve, reject) => {
    const got: unknown[] = [];
    const req = request(url, (res) => {
      expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.startsWith('retry:')) opened();
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.includes('event: state') && data) got.push(JSON.parse(data.slice(6)));
          end = buf.indexOf('\n\n');
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
    req.setTimeout(5000, () => {
      req.destroy();
      reject(new Error(`only ${got.length} of ${count} events arrived`));
    });
    req.end();
  });
  return { events, opened: openedP };
}

describe('/api/v1', () => {
  let lamp: WemoSimulator;
  let h: TestHearth;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    h = await startTestHearth(`
switches:
  - { id: lamp, kind: wemo/v1, name: Living room lamp, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
buttons:
  - { id: bedside, name: Bedside button }
`);
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
  });

  it('lists entities with kind, state, availability and commands', async () => {
    const r = await http(`${h.url}/api/v1/entities`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('application/json');
    const { entities } = JSON.parse(r.body);
    expect(entities.map((e: { id: string }) => e.id).sort()).toEqual(['bedside', 'lamp']);
    const lampView = entities.find((e: { id: string }) => e.id === 'lamp');
    expect(lampView).toEqual({
      id: 'lamp',
      kind: 'switch',
      name: 'Living room lamp',
      driver: 'wemo',
      state: null,
      available: true,
      reason: null,
      updatedAt: null,
      commands: ['on', 'off', 'toggle'],
      attributes: {},
    });
  });

  it('runs a command and answers with the entity afterwards', async () => {
    const r = await post(`${h.url}/api/v1/entities/lamp/commands/on`);
    expect(r.status).toBe(200);
    const { entity } = JSON.parse(r.body);
    expect(entity).toMatchObject({ id: 'lamp', state: 'on', available: true });
    expect(Date.parse(entity.updatedAt)).toBeGreaterThan(Date.now() - 5000);
    expect(lamp.on).toBe(true);
    const withBody = await post(`${h.url}/api/v1/entities/lamp/commands/toggle`, {
      body: '{}',
      headers: json,
    });
    expect(JSON.parse(withBody.body).entity.state).toBe('off');
    const button = await post(`${h.url}/api/v1/entities/bedside/commands/on`);
    expect(JSON.parse(button.body).entity).toMatchObject({ kind: 'button', state: 'on' });
    expect((await http(`${h.url}/api/v0/buttons/bedside/`)).body).toBe('ON\n');
  });

  it('answers errors as JSON with code, message and hint', async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/api/v1/entities/nosuch', {}, 404, 'HEARTH_ERR_ENTITY_NOT_FOUND'],
      ['/api/v1/entities/nosuch/commands/on', { method: 'POST' }, 404, 'HEARTH_ERR_ENTITY_NOT_FOUND'],
      ['/api/v1/entities/lamp/commands/explode', { method: 'POST' }, 400, 'HEARTH_ERR_UNKNOWN_COMMAND'],
      [
        '/api/v1/entities/lamp/commands/on',
        { method: 'POST', body: '{"brightness": 3}', headers: json },
        400,
        'HEARTH_ERR_BAD_ARGUMENTS',
      ],
      [
        '/api/v1/entities/lamp/commands/on',
        { method: 'POST', body: '{nope', headers: json },
        400,
        'HEARTH_ERR_BAD_REQUEST',
      ],
      [
        '/api/v1/entities/lamp/commands/on',
        { method: 'POST', body: '[1]', headers: json },
        400,
        'HEARTH_ERR_BAD_ARGUMENTS',
      ],
      ['/api/v1/nothing', {}, 404, 'HEARTH_ERR_NOT_FOUND'],
    ];
    for (const [path, init, status, code] of cases) {
      const r = await http(h.url + path, init);
      expect([path, r.status]).toEqual([path, status]);
      const { error } = JSON.parse(r.body);
      expect(error.code).toBe(code);
      expect(error.message.length).toBeGreaterThan(5);
      expect(error.hint.length).toBeGreaterThan(5);
    }
    const unknown = JSON.parse((await post(`${h.url}/api/v1/entities/lamp/commands/explode`)).body).error;
    expect(unknown.message).toBe('switch "lamp" has no command "explode"; it takes on, off, toggle');
  });

  it('streams state changes as server-sent events', async () => {
    const { events, opened } = collectEvents(`${h.url}/api/v1/events`, 2);
    await opened;
    await post(`${h.url}/api/v0/switches/lamp/on/`);
    await post(`${h.url}/api/v0/buttons/bedside/off/`);
    const got = (await events) as Array<{ id: string; state: string }>;
    expect(got.map((e) => [e.id, e.state])).toEqual([
      ['lamp', 'on'],
      ['bedside', 'off'],
    ]);
  });

  it('serves health, readiness and metrics', async () => {
    expect(JSON.parse((await http(`${h.url}/healthz`)).body)).toEqual({ status: 'ok' });
    expect(JSON.parse((await http(`${h.url}/readyz`)).body)).toEqual({ status: 'ready' });
    const m = await http(`${h.url}/metrics`);
    expect(m.type).toContain('text/plain');
    expect(m.body).toContain('hearth_ready 1');
    expect(m.body).toMatch(
      /hearth_http_requests_total\{method="POST",route="\/api\/v0\/switches\/:id\/:op",status="200"\} \d+/,
    );
    expect(m.body).toMatch(
      /hearth_device_call_duration_seconds_count\{driver="wemo",entity="lamp",op="on",outcome="ok"\} \d+/,
    );
    expect(m.body).toContain('process_resident_memory_bytes');
  });

  it('answers a wrong method with 405 and Allow, before reading the body', async () => {
    const cases: Array<[string, string, string]> = [
      ['PATCH', '/api/v1/entities/lamp', 'GET, HEAD, DELETE'],
      ['POST', '/api/v1/entities', 'GET, HEAD'],
      ['PUT', '/api/v1/entities/lamp/', 'GET, HEAD, DELETE'],
      ['GET', '/api/v1/entities/lamp/commands/on', 'POST'],
      ['PATCH', '/api/v1/events', 'GET, HEAD'],
    ];
    const was = lamp.on;
    for (const [method, path, allow] of cases) {
      // A text body, which a POST route would refuse with 415: the method is wrong first.
      const r = await http(h.url + path, { method, ...(method === 'GET' ? {} : { body: 'x' }) });
      expect([method, path, r.status, r.headers.get('allow')]).toEqual([method, path, 405, allow]);
      const { error } = JSON.parse(r.body);
      expect(error.code).toBe('HEARTH_ERR_METHOD_NOT_ALLOWED');
      expect(error.message).toBe(`${method} is not a method of ${path}; it takes ${allow}`);
    }
    expect(lamp.on).toBe(was);
    expect((await http(`${h.url}/api/v1/nothing`, { method: 'DELETE' })).status).toBe(404);
  });

  it('answers the errors of fastify and of the HTTP parser in the JSON shape, with catalogue codes', async () => {
    const host = `Host: ${new URL(h.url).host}\r\nConnection: close\r\n`;
    const cases: Array<[string, number, string]> = [
      [`GET /api/v1/entities/%zz HTTP/1.1\r\n${host}\r\n`, 400, 'HEARTH_ERR_BAD_REQUEST'],
      [`GET /api/v1/entities/${'a'.repeat(150)} HTTP/1.1\r\n${host}\r\n`, 414, 'HEARTH_ERR_URL_TOO_LONG'],
      [
        `POST /api/v1/entities/lamp/commands/on HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n{"a":"${'x'.repeat(69_990)}"}`,
        413,
        'HEARTH_ERR_BODY_TOO_LARGE',
      ],
      [
        `GET /api/v1/entities HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        431,
        'HEARTH_ERR_HEADERS_TOO_LARGE',
      ],
      ['NONSENSE\r\n\r\n', 400, 'HEARTH_ERR_BAD_REQUEST'],
    ];
    for (const [bytes, status, code] of cases) {
      const r = await rawExchange(h.url, bytes);
      expect([code, r.status, r.type]).toEqual([code, status, 'application/json; charset=utf-8']);
      const { error } = JSON.parse(r.body);
      expect(error.code).toBe(code);
      expect(error.hint).toBe(errorCatalogue[code as keyof typeof errorCatalogue].hint);
    }
  });

  it('every HEARTH_ERR_ code in the sources is in the catalogue, with its status', () => {
    const root = join(import.meta.dirname, '..', 'src');
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const used = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(join(root, f), 'utf8').matchAll(/HEARTH_ERR_[A-Z_]*[A-Z]/g))
        used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((c) => !(c in errorCatalogue));
    expect(missing).toEqual([]);
    for (const [code, entry] of Object.entries(errorCatalogue)) {
      expect([code, entry.status >= 400 && entry.status < 600]).toEqual([code, true]);
      expect([code, entry.hint.length > 10]).toEqual([code, true]);
    }
  });
});
