/**
 * The chime media route (`GET /api/v0/chime/<file>`) on a real hearth, and `hearth media add`
 * through the real CLI.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { http, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';

const TOKEN = 'media-test-token-0123456789abcdef';

/** 1000 bytes whose values say where they are, so a range can be checked byte for byte. */
const BODY = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request with the path exactly as given (fetch would resolve `..` and re-encode). */
function raw(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`no answer for ${path}`)));
    req.end();
  });
}

describe('GET /api/v0/chime/<file>', () => {
  let h: TestHearth;
  let media: string;
  const chime = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    raw(h.url, `/api/v0/chime/${path}`, headers, method);

  beforeAll(async () => {
    h = await startTestHearth('media: { dir: chimes }\n', {
      http: `{ host: 127.0.0.1, port: 0, token: ${TOKEN}, public: { host: 127.0.0.1, port: 0 } }`,
    });
    media = join(h.dir, 'chimes');
    mkdirSync(media);
    for (const name of [
      'ding.mp3',
      'bell.wav',
      'tone.ogg',
      'lossless.flac',
      'short.aac',
      'apple.m4a',
      'notes.txt',
    ]) {
      writeFileSync(join(media, name), BODY);
    }
    writeFileSync(join(media, 'Glocke Küche.mp3'), BODY);
    writeFileSync(join(media, '.hidden.mp3'), BODY);
    mkdirSync(join(media, 'folder.mp3'));
    // A link out of the folder: the file it points at must not be served through it.
    symlinkSync(join(h.dir, 'hearth.yaml'), join(media, 'escape.mp3'));
  });

  afterAll(async () => {
    await h?.close();
  });

  it('serves each file with its audio content type, its length and Accept-Ranges, with no token', async () => {
    const types: Record<string, string> = {
      'ding.mp3': 'audio/mpeg',
      'bell.wav': 'audio/wav',
      'tone.ogg': 'audio/ogg',
      'lossless.flac': 'audio/flac',
      'short.aac': 'audio/aac',
      'apple.m4a': 'audio/mp4',
      'notes.txt': 'application/octet-stream',
      [encodeURIComponent('Glocke Küche.mp3')]: 'audio/mpeg',
    };
    for (const [file, type] of Object.entries(types)) {
      const res = await chime(file);
      expect(res.status, file).toBe(200);
      expect(res.headers['content-type'], file).toBe(type);
      expect(res.headers['accept-ranges']).toBe('bytes');
      expect(res.headers['content-length']).toBe('1000');
      expect(res.body.equals(BODY)).toBe(true);
    }
    const slash = await chime('ding.mp3/');
    expect(slash.status).toBe(200);
    expect(slash.body.equals(BODY)).toBe(true);
  });

  it('answers HEAD with the headers and no body, and a fresh conditional GET with 304', async () => {
    const head = await chime('ding.mp3', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1000');
    expect(head.headers['content-type']).toBe('audio/mpeg');
    expect(head.body.length).toBe(0);
    const etag = String(head.headers.etag);
    expect(etag).toMatch(/^W\/"/);
    const again = await chime('ding.mp3', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('answers ranges with 206 and Content-Range, suffix and open-ended ones too', async () => {
    const first = await chime('ding.mp3', { range: 'bytes=0-99' });
    expect(first.status).toBe(206);
    expect(first.headers['content-range']).toBe('bytes 0-99/1000');
    expect(first.headers['content-length']).toBe('100');
    expect(first.headers['content-type']).toBe('audio/mpeg');
    expect(first.body.equals(BODY.subarray(0, 100))).toBe(true);

    const open = await chime('ding.mp3', { range: 'bytes=900-' });
    expect(open.status).toBe(206);
    expect(open.headers['content-range']).toBe('bytes 900-999/1000');
    expect(open.body.equals(BODY.subarray(900))).toBe(true);

    const suffix = await chime('ding.mp3', { range: 'bytes=-10' });
    expect(suffix.status).toBe(206);
    expect(suffix.headers['content-range']).toBe('bytes 990-999/1000');
    expect(suffix.body.equals(BODY.subarray(990))).toBe(true);

    // What speakers send: from the start, open-ended.
    const all = await chime('ding.mp3', { range: 'bytes=0-' });
    expect(all.status).toBe(206);
    expect(all.headers['content-range']).toBe('bytes 0-999/1000');
    expect(all.body.equals(BODY)).toBe(true);

    // An end past the file is cut to the file.
    const past = await chime('ding.mp3', { range: 'bytes=990-5000' });
    expect(past.status).toBe(206);
    expect(past.headers['content-range']).toBe('bytes 990-999/1000');
  });

  it('answers an unsatisfiable range with 416 and the file length', async () => {
    for (const range of ['bytes=1000-', 'bytes=5000-6000']) {
      const res = await chime('ding.mp3', { range });
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */1000');
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.body.toString()).toBe(`range "${range}" is outside the file\n`);
    }
  });

  it('answers a file that is not there (or is a folder) with 404 in plain text', async () => {
    for (const file of ['nope.mp3', 'folder.mp3', 'escape.mp3']) {
      const res = await chime(file);
      expect(res.status, file).toBe(404);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.body.toString()).toBe(`no chime "${file}" in the media folder\n`);
    }
  });

  it('never leaves the folder: dot-dot, encoded slashes and absolute paths are 400 or 404', async () => {
    const config = readFileSync(join(h.dir, 'hearth.yaml'));
    const attempts: Array<[string, number]> = [
      ['../hearth.yaml', 404],
      ['..%2Fhearth.yaml', 400],
      ['..%2fhearth.yaml', 400],
      ['%2E%2E%2Fhearth.yaml', 400],
      ['..%5Chearth.yaml', 400],
      ['%2Fetc%2Fpasswd', 400],
      ['%2E%2E', 400],
      ['..', 400],
      ['.hidden.mp3', 400],
      ['ding.mp3%00.txt', 400],
      ['chimes%2F..%2F..%2Fhearth.yaml', 400],
    ];
    // With the token, so that a path no route matches (control, by the guard's rule) reaches the router.
    const token = { authorization: `Bearer ${TOKEN}` };
    for (const [path, status] of attempts) {
      const res = await chime(path, token);
      expect(res.status, path).toBe(status);
      expect(res.body.includes(config), path).toBe(false);
      expect(res.headers['content-type'], path).toBe('text/plain; charset=utf-8');
      // A speaker (no token) is refused before the router, or gets the same answer.
      const speaker = await chime(path);
      expect([status, 403], path).toContain(speaker.status);
      expect(speaker.body.includes(config), path).toBe(false);
    }
    const rooted = await raw(h.url, '/api/v0/chime//etc/passwd', token);
    expect([400, 404]).toContain(rooted.status);
  });

  it('is for the LAN only: no token needed, but an address in http.allow, and not on the public listener', async () => {
    // Another method is control, and so needs the token.
    expect((await chime('ding.mp3', {}, 'DELETE')).status).toBe(403);
    const wrongMethod = await chime('ding.mp3', { authorization: `Bearer ${TOKEN}` }, 'DELETE');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, HEAD');

    const outside = await h.server.inject({
      method: 'GET',
      url: '/api/v0/chime/ding.mp3',
      remoteAddress: '203.0.113.9',
    });
    expect(outside.statusCode).toBe(403);
    expect(outside.body).toBe('control requests from 203.0.113.9 are not allowed\n');

    const pub = await raw(h.publicUrl ?? '', '/api/v0/chime/ding.mp3');
    expect(pub.status).toBe(403);
    expect(pub.body.includes(BODY)).toBe(false);

    // Other control routes still need the token.
    expect((await http(`${h.url}/metrics`)).status).toBe(403);
  });
});

describe('hearth media add', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('hearth-media-cli-');
    writeFileSync(join(dir, 'swed.mp3'), BODY);
    writeFileSync(join(dir, 'hearth.yaml'), 'http: { host: 0.0.0.0, port: 8123 }\nmedia: { dir: sounds }\n');
    writeFileSync(
      join(dir, 'pod.yaml'),
      `media: { dir: ${join(dir, 'pod-media')}, baseUrl: "http://192.168.1.10:30080/" }\n`,
    );
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies the file into the media folder, creating it, and says where it went and its URL', async () => {
    const res = await runCli(['media', 'add', join(dir, 'swed.mp3'), '--config', join(dir, 'hearth.yaml')]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const dest = join(dir, 'sounds', 'swed.mp3');
    expect(readFileSync(dest).equals(BODY)).toBe(true);
    expect(res.stdout).toContain(`added swed.mp3 (1000 bytes) to ${join(dir, 'sounds')}\n`);
    expect(res.stdout).toMatch(/served at http:\/\/[^/\s]+:8123\/api\/v0\/chime\/swed\.mp3\n/);
    expect(res.stdout).toContain('set media.baseUrl');

    // Another file of that name is refused without --force.
    writeFileSync(join(dir, 'other.mp3'), 'new');
    const clash = await runCli([
      'media',
      'add',
      join(dir, 'other.mp3'),
      '--config',
      join(dir, 'hearth.yaml'),
      '--name',
      'swed.mp3',
    ]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain(`hearth media add: ${dest} already exists; pass --force to replace it`);
    expect(readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('refuses a name that is not a plain file name, and writes nothing', async () => {
    const res = await runCli([
      'media',
      'add',
      join(dir, 'swed.mp3'),
      '--config',
      join(dir, 'hearth.yaml'),
      '--name',
      '../evil.mp3',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('hearth media add: "../evil.mp3" is not a plain file name');
    expect(existsSync(join(dir, 'evil.mp3'))).toBe(false);
  });

  it('prints the media.baseUrl URL when one is set', async () => {
    const res = await runCli(['media', 'add', join(dir, 'swed.mp3'), '--config', join(dir, 'pod.yaml')]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('served at http://192.168.1.10:30080/api/v0/chime/swed.mp3\n');
    expect(existsSync(join(dir, 'pod-media', 'swed.mp3'))).toBe(true);
  });
});
