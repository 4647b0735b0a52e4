import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../test/support/wait.js';
import {
  elementText,
  escapeXml,
  faultEnvelope,
  SoapPostError,
  soapHeaders,
  soapPost,
  unescapeXml,
} from './soap.js';

/** A real HTTP peer whose behaviour each test picks by path. */
let server: Server;
let port: number;
const seen: { headers: Record<string, unknown>; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      if (req.url === '/ok') res.end('<r><Value>a &amp; b</Value></r>');
      else if (req.url === '/fault') {
        res.statusCode = 500;
        res.end(faultEnvelope(401, 'Invalid <Action>'));
      } else if (req.url === '/big') res.end('x'.repeat(5000));
      else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        // Half the body on the wire, then the connection dies.
        res.write('half', () => res.socket?.destroy());
      }
      // '/hang': never answers.
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const call = (path: string, extra: Partial<Parameters<typeof soapPost>[0]> = {}) =>
  soapPost({
    host: '127.0.0.1',
    port,
    path,
    headers: soapHeaders('"urn:test#Do"', '<x/>'),
    body: '<x/>',
    maxReplyBytes: 1000,
    encoding: 'utf8',
    ...extra,
  });

describe('soapPost', () => {
  it('posts the body with the SOAP headers and Connection: close, and returns the reply', async () => {
    const reply = await call('/ok');
    expect(reply.status).toBe(200);
    expect(elementText(reply.body, 'Value')).toBe('a & b');
    const req = seen.at(-1);
    expect(req?.body).toBe('<x/>');
    expect(req?.headers.soapaction).toBe('"urn:test#Do"');
    expect(req?.headers.connection).toBe('close');
  });

  it('returns a fault reply with its status, for the client to read', async () => {
    const reply = await call('/fault');
    expect(reply.status).toBe(500);
    expect(elementText(reply.body, 'errorCode')).toBe('401');
    expect(elementText(reply.body, 'errorDescription')).toBe('Invalid <Action>');
  });

  it('fails a reply larger than maxReplyBytes', async () => {
    const err = await call('/big').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SoapPostError);
    expect((err as SoapPostError).failure).toBe('too-large');
  });

  it('fails a reply cut in the middle', async () => {
    const err = await call('/cut').catch((e: unknown) => e);
    expect((err as SoapPostError).failure).toBe('cut');
  });

  it('fails at its own deadline with ETIMEDOUT', async () => {
    const t0 = performance.now();
    const err = await call('/hang', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect((err as SoapPostError).failure).toBe('timeout');
    expect((err as SoapPostError).code).toBe('ETIMEDOUT');
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('rejects with the signal’s reason when aborted', async () => {
    const ac = new AbortController();
    const asked = seen.length;
    const pending = call('/hang', { signal: ac.signal });
    // Given up while the peer holds the request.
    await until(() => seen.length > asked, { what: 'the request at the peer' });
    ac.abort(new Error('given up'));
    await expect(pending).rejects.toThrow('given up');
  });

  it('says connect and keeps the socket code when nobody listens', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await call('/ok', { port: free }).catch((e: unknown) => e);
    expect((err as SoapPostError).failure).toBe('connect');
    expect((err as SoapPostError).code).toBe('ECONNREFUSED');
  });
});

describe('XML text helpers', () => {
  it('escape and unescape are inverses, numeric references included', () => {
    const text = `<a href="x?y=1&z='2'">`;
    expect(unescapeXml(escapeXml(text))).toBe(text);
    expect(unescapeXml('&#x41;&#66;')).toBe('AB');
  });
});
