import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/hearth.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { metricSample, type RawAnswer, rawExchange } from './support/raw-http.js';

/*
 * Points 3 and 4 of issue 15 ("safe to expose"), through the built CLI: connections are
 * bounded (timeouts, a cap per client address, CONNECT answered), and sessions and tokens
 * behave as a browser-facing product's should (Secure behind a trusted proxy, token guesses
 * throttled, a foreign Referer refused). Every loopback client is 127.0.0.1 unless it binds
 * another address of 127/8 (Linux routes all of it to lo): that is "another client".
 */

const TEXT = 'text/plain; charset=utf-8';
const TOKEN = 'correct-horse-battery-staple-42';

/** One request from `from` (a loopback address), with exactly these headers, on its own connection. */
function from(
  address: string,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        localAddress: address,
        agent: false,
        headers: {
          ...(opts.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(opts.body)) }),
          ...opts.headers,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: res.headers['content-type'],
            headers: res.headers,
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.end(opts.body);
  });
}

/** Opens a socket from `address` and resolves once it is connected; `closed` resolves when the server closes it. */
function idleSocket(url: string, address: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const socket = connect({ port: Number(u.port), host: u.hostname, localAddress: address });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => undefined);
    // Reads (and drops) what comes, so the server's close is seen.
    socket.resume();
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('close', () => reject(new Error('closed before it connected')));
  });
}

/** Starts the built CLI on a config of `http` (flow YAML) and a button. */
async function start(http: string, dir: string, name: string): Promise<HearthProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `http: ${http}\nstorage: { sqlite: ${name}.db }\nbuttons:\n  - { id: desk }\n`);
  return spawnHearth(file);
}

async function stop(p: HearthProcess | undefined): Promise<void> {
  if (!p) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

describe('connections are bounded: timeouts, a cap per client, CONNECT answered', () => {
  let dir: string;
  /** Short deadlines. */
  let h: HearthProcess;
  /** Small caps, default deadlines (so idle sockets stay while the test looks at them). */
  let capped: HearthProcess;

  beforeAll(async () => {
    dir = tempDir();
    [h, capped] = await Promise.all([
      start(
        '{ host: 127.0.0.1, port: 0, headersTimeout: 1, requestTimeout: 2, keepAliveTimeout: 1 }',
        dir,
        'quick',
      ),
      start(
        '{ host: 127.0.0.1, port: 0, maxConnectionsPerClient: 5, maxStreams: 20, maxStreamsPerClient: 2 }',
        dir,
        'capped',
      ),
    ]);
  });

  afterAll(async () => {
    await stop(h);
    await stop(capped);
    rmSync(dir, { recursive: true, force: true });
  });

  it('closes a connection that dribbles its headers (slowloris) with a 408, and one that sends nothing', async () => {
    const u = new URL(h.url);
    const slow = connect(Number(u.port), u.hostname);
    let answer = '';
    slow.setEncoding('utf8').on('data', (s: string) => {
      answer += s;
    });
    slow.on('error', () => undefined);
    slow.write('GET /api/v0/clocktime/ HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // One header line every 100 ms, for ever: each byte is news, so only a deadline for the
    // whole head ends it (Node's default waits a minute, this test's limit is 20 s).
    let lines = 0;
    const dribble = setInterval(() => {
      if (slow.writable) slow.write(`X-Slow-${lines++}: ${'a'.repeat(10)}\r\n`);
    }, 100);
    const silent = await idleSocket(h.url, '127.0.0.1');
    try {
      await new Promise((resolve) => slow.once('close', resolve));
      await silent.closed;
    } finally {
      clearInterval(dribble);
      slow.destroy();
      silent.socket.destroy();
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('HEARTH_ERR_REQUEST_TIMEOUT');
  });

  it('closes an idle keep-alive connection after http.keepAliveTimeout', async () => {
    const { socket, closed } = await idleSocket(h.url, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (s: string) => {
      answer += s;
    });
    socket.write('GET /api/v0/clocktime/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await closed; // the server closes it: the client never does
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.toLowerCase()).toContain('keep-alive');
  });

  it('holds one address to http.maxConnectionsPerClient; another address is still served', async () => {
    const sockets: Array<{ socket: Socket; closed: Promise<void> }> = [];
    try {
      // Three times the cap of idle sockets from 127.0.0.1, all connected at once.
      for (let i = 0; i < 15; i++) sockets.push(await idleSocket(capped.url, '127.0.0.1'));
      let refused = 0;
      await Promise.all(
        sockets.slice(5).map(async (s) => {
          await s.closed;
          refused++;
        }),
      );
      expect(refused).toBe(10);
      // The first five are still open: the cap closes the extra ones, not the ones it holds.
      expect(sockets.slice(0, 5).every((s) => !s.socket.destroyed)).toBe(true);
      // Another client is served, /api/v0 as it always was.
      const other = await from('127.0.0.2', `${capped.url}/api/v0/buttons/desk/on/`, { method: 'POST' });
      expect([other.status, other.type, other.body]).toEqual([200, TEXT, 'OK']);
      const m = await from('127.0.0.2', `${capped.url}/metrics`);
      expect(metricSample(m.body, 'hearth_http_connections_refused_total', { listener: 'control' })).toBe(10);
    } finally {
      for (const s of sockets) s.socket.destroy();
    }
    // Closing them gives the address its places back.
    await expect
      .poll(async () => (await from('127.0.0.1', `${capped.url}/healthz`).catch(() => null))?.status)
      .toBe(200);
  });

  it('a hearth of 200 descriptors still answers another client while one address opens 300 idle sockets', async () => {
    // The default cap (64) and few descriptors: without the cap, the idle sockets of one box
    // take them all and hearth answers no one (issue 15: 1 100 sockets and a 1 024-descriptor hearth).
    const low = await start('{ host: 127.0.0.1, port: 0 }', dir, 'few-descriptors');
    const sockets: Array<{ socket: Socket; closed: Promise<void> }> = [];
    try {
      // As `ulimit -n 200` would, on the running process (util-linux's prlimit).
      const failed = await new Promise<Error | null>((resolve) =>
        execFile('prlimit', ['--pid', String(low.child.pid), '--nofile=200:200'], resolve),
      );
      expect(failed, 'prlimit could not lower the descriptor limit').toBeNull();
      for (let i = 0; i < 300; i++) sockets.push(await idleSocket(low.url, '127.0.0.1'));
      const other = await from('127.0.0.2', `${low.url}/api/v0/clocktime/`);
      expect([other.status, other.type]).toEqual([200, TEXT]);
      expect(other.body).toMatch(/^\d{4}$/);
      const m = await from('127.0.0.2', `${low.url}/metrics`);
      expect(metricSample(m.body, 'hearth_http_connections_refused_total', { listener: 'control' })).toBe(
        236,
      );
    } finally {
      for (const s of sockets) s.socket.destroy();
      await stop(low);
    }
  });

  it('answers CONNECT with one line, a 405 in the shape of the path, like every other bad request', async () => {
    const json = await rawExchange(h.url, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n');
    expect(json.status).toBe(405);
    const { error } = JSON.parse(json.body);
    expect(error.code).toBe('HEARTH_ERR_METHOD_NOT_ALLOWED');
    expect(error.message).toContain('CONNECT');
    const v0 = await rawExchange(h.url, 'CONNECT /api/v0/clocktime/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect([v0.status, v0.type]).toEqual([405, TEXT]);
    expect(v0.body).toMatch(/^CONNECT [^\n]+\n$/);
  });

  it('caps event streams per client (http.maxStreamsPerClient), so another client still gets one', async () => {
    const open: Socket[] = [];
    const stream = (address: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const u = new URL(`${capped.url}/api/v1/events`);
        const req = request(
          { host: u.hostname, port: u.port, path: u.pathname, localAddress: address, agent: false },
          (res) => {
            if (res.statusCode === 200) {
              open.push(res.socket);
              return resolve({ status: 200, body: '' });
            }
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => {
              body += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      expect((await stream('127.0.0.1')).status).toBe(200);
      expect((await stream('127.0.0.1')).status).toBe(200);
      const third = await stream('127.0.0.1');
      expect(third.status).toBe(503);
      const { error } = JSON.parse(third.body);
      expect(error.code).toBe('HEARTH_ERR_TOO_MANY_STREAMS');
      expect(error.message).toContain('http.maxStreamsPerClient 2');
      expect((await stream('127.0.0.2')).status).toBe(200);
    } finally {
      for (const s of open) s.destroy();
    }
  });
});

describe('sessions and tokens: Secure behind a trusted proxy, guesses throttled, foreign Referer refused', () => {
  let dir: string;
  let direct: HearthProcess;
  let proxied: HearthProcess;

  beforeAll(async () => {
    dir = tempDir();
    // No proxy trusted (the default); 127.0.0.4 is not allowed to control.
    direct = await start(
      `{ host: 127.0.0.1, port: 0, token: ${TOKEN}, allow: [127.0.0.1/32, 127.0.0.2/32, 127.0.0.3/32] }`,
      dir,
      'direct',
    );
    // A reverse proxy at 127.0.0.1 is trusted; only 127.0.0.2 may control.
    proxied = await start(
      `{ host: 127.0.0.1, port: 0, token: ${TOKEN}, allow: [127.0.0.2/32], trustProxy: [127.0.0.1/32] }`,
      dir,
      'proxied',
    );
  });

  afterAll(async () => {
    await stop(direct);
    await stop(proxied);
    rmSync(dir, { recursive: true, force: true });
  });

  const login = (url: string, address: string, headers: Record<string, string> = {}) =>
    from(address, `${url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ token: TOKEN }),
    });

  it('sets the session cookie Secure when a trusted proxy says the request came over TLS, and only then', async () => {
    const viaProxy = await login(proxied.url, '127.0.0.1', {
      'x-forwarded-for': '127.0.0.2',
      'x-forwarded-proto': 'https',
    });
    expect(viaProxy.status).toBe(200);
    expect(String(viaProxy.headers['set-cookie'])).toMatch(/; Secure/);
    // The same request over plain HTTP through the proxy: no Secure, or the browser would drop it.
    const plain = await login(proxied.url, '127.0.0.1', {
      'x-forwarded-for': '127.0.0.2',
      'x-forwarded-proto': 'http',
    });
    expect(plain.status).toBe(200);
    expect(String(plain.headers['set-cookie'])).not.toMatch(/Secure/);
    // A client that is not the proxy cannot claim TLS.
    const claimed = await login(proxied.url, '127.0.0.2', { 'x-forwarded-proto': 'https' });
    expect(claimed.status).toBe(200);
    expect(String(claimed.headers['set-cookie'])).not.toMatch(/Secure/);
    const untrusted = await login(direct.url, '127.0.0.1', { 'x-forwarded-proto': 'https' });
    expect(untrusted.status).toBe(200);
    expect(String(untrusted.headers['set-cookie'])).not.toMatch(/Secure/);
  });

  it('judges http.allow by the address a trusted proxy forwards, and never by one a client writes', async () => {
    const press = (url: string, address: string, xff?: string) =>
      from(address, `${url}/api/v0/buttons/desk/on/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, ...(xff ? { 'x-forwarded-for': xff } : {}) },
      });
    expect((await press(proxied.url, '127.0.0.1', '127.0.0.2')).status).toBe(200);
    // The proxy forwards an outsider: refused, as the outsider would be.
    const outsider = await press(proxied.url, '127.0.0.1', '127.0.0.9');
    expect([outsider.status, outsider.body]).toEqual([
      403,
      'control requests from 127.0.0.9 are not allowed\n',
    ]);
    // The outsider wrote an allowed address itself; the proxy appended the real one.
    expect((await press(proxied.url, '127.0.0.1', '127.0.0.2, 127.0.0.9')).status).toBe(403);
    // Not through the proxy: the header is the client's word, and not believed.
    expect((await press(proxied.url, '127.0.0.3', '127.0.0.2')).status).toBe(403);
    // trustProxy off: no client on the LAN gets past http.allow by naming an allowed address.
    const spoof = await press(direct.url, '127.0.0.4', '127.0.0.1');
    expect([spoof.status, spoof.body]).toEqual([403, 'control requests from 127.0.0.4 are not allowed\n']);
  });

  it('throttles bearer-token guesses like wrong logins: 429 after 10, right token or not, that address only', async () => {
    const guess = (address: string, token: string) =>
      from(address, `${direct.url}/api/v0/buttons/desk/off/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
    for (let i = 0; i < 10; i++) {
      expect((await guess('127.0.0.3', `wrong-guess-number-${i}-of-many`)).status).toBe(403);
    }
    const blocked = await guess('127.0.0.3', TOKEN);
    expect([blocked.status, blocked.type]).toEqual([429, TEXT]);
    expect(blocked.body).toMatch(/^too many wrong tokens from 127\.0\.0\.3: try again in \d+ s\n$/);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // The same tally as logins: the address cannot switch to guessing there.
    const loginBlocked = await login(direct.url, '127.0.0.3');
    expect(loginBlocked.status).toBe(429);
    expect(JSON.parse(loginBlocked.body).error.code).toBe('HEARTH_ERR_TOO_MANY_LOGINS');
    // Another address is not affected.
    const other = await guess('127.0.0.2', TOKEN);
    expect([other.status, other.body]).toEqual([200, 'OK']);
  });

  it('refuses a foreign Referer without Origin or Sec-Fetch-Site on control routes; old devices send none and work', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const foreign = { ...auth, referer: 'http://evil.example/page?x=1' };
    const v0 = await from('127.0.0.1', `${direct.url}/api/v0/buttons/desk/on/`, {
      method: 'POST',
      headers: foreign,
    });
    expect([v0.status, v0.type]).toEqual([403, TEXT]);
    expect(v0.body).toMatch(
      /^control requests from another site's page are refused: [^\n]*evil\.example[^\n]*\n$/,
    );
    expect(v0.body).not.toContain('page?x=1');
    const v1 = await from('127.0.0.1', `${direct.url}/api/v1/entities/desk/commands/on`, {
      method: 'POST',
      headers: foreign,
    });
    expect(v1.status).toBe(403);
    expect(JSON.parse(v1.body).error.code).toBe('HEARTH_ERR_FORBIDDEN');
    // Its own pages' Referer passes, and so does a browser that says where it is.
    const own = await from('127.0.0.1', `${direct.url}/api/v0/buttons/desk/on/`, {
      method: 'POST',
      headers: { ...auth, referer: `${direct.url}/` },
    });
    expect([own.status, own.body]).toEqual([200, 'OK']);
    const fetchMeta = await from('127.0.0.1', `${direct.url}/api/v0/buttons/desk/on/`, {
      method: 'POST',
      headers: { ...foreign, 'sec-fetch-site': 'none' },
    });
    expect(fetchMeta.status).toBe(200);
    // Status routes are for anyone, linked from anywhere.
    expect(
      (
        await from('127.0.0.1', `${direct.url}/api/v1/entities`, {
          headers: { referer: 'http://evil.example/' },
        })
      ).status,
    ).toBe(200);
    // An old device: no Origin, no Referer, no Sec-Fetch-Site, no Host even (HTTP/1.0); the
    // /api/v0 answers exactly as before.
    const u = new URL(direct.url);
    const device = await rawExchange(
      direct.url,
      `POST /api/v0/buttons/desk/off/ HTTP/1.0\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`,
    );
    expect([device.status, device.type, device.body]).toEqual([200, TEXT, 'OK']);
    const state = await rawExchange(
      direct.url,
      `GET /api/v0/buttons/desk/ HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    expect([state.status, state.type, state.body]).toEqual([200, TEXT, 'OFF\n']);
  });
});
