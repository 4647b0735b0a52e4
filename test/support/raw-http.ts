import { request } from 'node:http';
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  type: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTP request with exactly the headers given, `Host` included (fetch will not send a
 * foreign Host, nor leave out the headers it adds): what a rebound browser or an old device sends.
 */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        // Another client: any address of 127/8 reaches loopback (Linux).
        ...(opts.localAddress ? { localAddress: opts.localAddress, agent: false } : {}),
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        setHost: !(opts.headers && 'host' in opts.headers),
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

/** One sample of a metric from the Prometheus text (0 when the series does not exist yet). */
export function metricSample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}

/** Sends `bytes` as they are on a new connection and resolves with all that comes back. */
export function rawExchange(url: string, bytes: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const socket = connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({
        status: Number(head[0]?.split(' ')[1] ?? 0),
        type: headers['content-type'],
        headers,
        body: text.slice(split + 4),
      });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer from ${url} within 10 s`)));
    socket.end(bytes);
  });
}
