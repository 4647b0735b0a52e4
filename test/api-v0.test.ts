import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KasaSimulator } from '../src/drivers/kasa/simulator.js';
import { startKasaSimulator } from '../src/drivers/kasa/simulator.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { http, post, startTestHearth, type TestHearth } from './support/hearth.js';
import { rawExchange } from './support/raw-http.js';

const TEXT = 'text/plain; charset=utf-8';

describe('/api/v0 against simulated devices over loopback', () => {
  let lamp: WemoSimulator;
  let fan: KasaSimulator;
  let h: TestHearth;
  let base: string;

  beforeAll(async () => {
    lamp = await startWemoSimulator({ initial: false });
    fan = await startKasaSimulator({ initial: false });
    h = await startTestHearth(`
timezone: America/Los_Angeles
switches:
  - { id: lamp, kind: wemo/v1, name: Lamp, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
  - { id: fan, kind: kasa/v1, name: Fan, address: 127.0.0.1, port: ${fan.port}, pollSeconds: 0 }
buttons:
  - { id: bedside, name: Bedside button }
buttonLimits: { maxUndeclared: 1000 } # more than the old LRU's 128 ids are pressed below
`);
    base = `${h.url}/api/v0`;
  });

  afterAll(async () => {
    await h?.close();
    await lamp?.close();
    await fan?.close();
  });

  describe('switches', () => {
    for (const slash of ['/', '']) {
      it(`switches a Wemo plug on, off and toggles it (${slash ? 'with' : 'without'} trailing slash)`, async () => {
        let r = await post(`${base}/switches/lamp/on${slash}`);
        expect([r.status, r.type, r.body]).toEqual([200, TEXT, 'OK']);
        expect(lamp.on).toBe(true);
        r = await post(`${base}/switches/lamp/off${slash}`);
        expect([r.status, r.body]).toEqual([200, 'OK']);
        expect(lamp.on).toBe(false);
        r = await post(`${base}/switches/lamp/toggle${slash}`);
        expect([r.status, r.body]).toEqual([200, 'OK']);
        expect(lamp.on).toBe(true);
        r = await post(`${base}/switches/lamp/toggle${slash}`);
        expect(lamp.on).toBe(false);
      });
    }

    it('toggles a Kasa plug both ways (homeslice always turned it on)', async () => {
      fan.on = false;
      expect((await post(`${base}/switches/fan/toggle/`)).body).toBe('OK');
      expect(fan.on).toBe(true);
      expect((await post(`${base}/switches/fan/toggle/`)).body).toBe('OK');
      expect(fan.on).toBe(false);
      // Switched by hand at the plug: toggle reads first, so it turns it off.
      fan.on = true;
      await post(`${base}/switches/fan/toggle`);
      expect(fan.on).toBe(false);
    });

    it('answers 404 for an unknown switch, 400 for a bad operation, 405 for another method', async () => {
      const unknown = await post(`${base}/switches/nosuch/on/`);
      expect([unknown.status, unknown.type]).toEqual([404, TEXT]);
      expect(unknown.body).toBe('no switch "nosuch"\n');
      const bad = await post(`${base}/switches/lamp/explode/`);
      expect([bad.status, bad.type]).toEqual([400, TEXT]);
      expect(bad.body).toContain('explode');
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const r = await http(`${base}/switches/lamp/on/`, { method });
        expect(r.status).toBe(405);
        expect(r.headers.get('allow')).toBe('POST');
      }
      // A button is not a switch.
      expect((await post(`${base}/switches/bedside/on/`)).status).toBe(404);
    });

    it('accepts whatever body and content type an old device sends', async () => {
      const form = await post(`${base}/switches/lamp/on/`, {
        body: 'x=1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect([form.status, form.body]).toEqual([200, 'OK']);
      const json = await post(`${base}/switches/lamp/off/`, {
        body: '',
        headers: { 'content-type': 'application/json' },
      });
      expect([json.status, json.body]).toEqual([200, 'OK']);
    });
  });

  describe('buttons', () => {
    for (const slash of ['/', '']) {
      it(`records a press and reads it back (${slash ? 'with' : 'without'} trailing slash)`, async () => {
        let r = await post(`${base}/buttons/bedside/on${slash}`);
        expect([r.status, r.type, r.body]).toEqual([200, TEXT, 'OK']);
        r = await http(`${base}/buttons/bedside${slash}`);
        expect([r.status, r.type, r.body]).toEqual([200, TEXT, 'ON\n']);
        await post(`${base}/buttons/bedside/off${slash}`);
        expect((await http(`${base}/buttons/bedside${slash}`)).body).toBe('OFF\n');
      });
    }

    it('accepts any id it has never seen, and 404s a read of one never pressed', async () => {
      const id = `hall_${'x'.repeat(59)}`;
      expect(id).toHaveLength(64);
      expect((await http(`${base}/buttons/${id}/`)).status).toBe(404);
      expect((await post(`${base}/buttons/${id}/on/`)).body).toBe('OK');
      expect((await http(`${base}/buttons/${id}/`)).body).toBe('ON\n');
    });

    it('refuses bad ids and operations, and other methods', async () => {
      expect((await post(`${base}/buttons/${'x'.repeat(65)}/on/`)).status).toBe(400);
      expect((await post(`${base}/buttons/bad.id/on/`)).status).toBe(400);
      const op = await post(`${base}/buttons/bedside/toggle/`);
      expect([op.status, op.type]).toEqual([400, TEXT]);
      expect((await http(`${base}/buttons/bedside/on/`)).status).toBe(405);
      expect((await post(`${base}/buttons/bedside/`)).status).toBe(405);
    });

    it('keeps more than the 128 ids the old LRU held', async () => {
      for (let i = 0; i < 200; i++) {
        expect((await post(`${base}/buttons/b${i}/${i % 2 ? 'on' : 'off'}`)).status).toBe(200);
      }
      expect((await http(`${base}/buttons/b0/`)).body).toBe('OFF\n');
      expect((await http(`${base}/buttons/b199/`)).body).toBe('ON\n');
    });

    it('answers buttontimes as STATE:HHMM with the current clocktime', async () => {
      await post(`${base}/buttons/bedside/on/`);
      const r = await http(`${base}/buttontimes/bedside/`);
      expect([r.status, r.type]).toEqual([200, TEXT]);
      expect(r.body).toMatch(/^ON:\d{4}\n$/);
      const clock = (await http(`${base}/clocktime`)).body;
      expect(r.body.slice(3, 7)).toBe(clock); // same minute unless the test straddles one
      expect((await http(`${base}/buttontimes/never-pressed/`)).status).toBe(404);
    });
  });

  it('answers clocktime as HHMM in the configured zone, no newline', async () => {
    for (const path of ['/clocktime', '/clocktime/']) {
      const r = await http(base + path);
      expect([r.status, r.type]).toEqual([200, TEXT]);
      expect(r.body).toMatch(/^([01]\d|2[0-3])[0-5]\d$/);
      expect(r.body).toBe(h.runtime.clocktime());
    }
    expect((await post(`${base}/clocktime/`)).status).toBe(405);
  });

  it('answers the errors of fastify and of the HTTP parser as one line of plain text too', async () => {
    const host = `Host: ${new URL(h.url).host}\r\nConnection: close\r\n`;
    const cases: Array<[string, string, number]> = [
      ['a URL that cannot be decoded', `GET /api/v0/buttons/%zz/ HTTP/1.1\r\n${host}\r\n`, 400],
      [
        'an id longer than the router takes',
        `POST /api/v0/switches/${'a'.repeat(150)}/on HTTP/1.1\r\n${host}\r\n`,
        414,
      ],
      [
        'a body over 64 KiB',
        `POST /api/v0/buttons/bedside/on HTTP/1.1\r\n${host}Content-Type: text/plain\r\nContent-Length: 70000\r\n\r\n${'x'.repeat(70_000)}`,
        413,
      ],
      [
        'headers over 16 KiB',
        `GET /api/v0/clocktime HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        431,
      ],
      ['a URL over 16 KiB', `GET /api/v0/buttons/${'a'.repeat(20_000)} HTTP/1.1\r\n${host}\r\n`, 431],
    ];
    for (const [label, bytes, status] of cases) {
      const r = await rawExchange(h.url, bytes);
      expect([label, r.status, r.type]).toEqual([label, status, TEXT]);
      expect([label, r.body]).toEqual([label, expect.stringMatching(/^[^\n{]{10,}\n$/)]);
    }
  });
});
