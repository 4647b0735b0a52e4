import type { IncomingMessage } from 'node:http';

/**
 * Reads a request body as text, up to `maxBytes`; resolves undefined for a longer one (the
 * rest is drained), so a peer sending junk cannot fill memory. For the device simulators.
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  encoding: BufferEncoding = 'utf8',
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding(encoding);
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > maxBytes) {
        resolve(undefined);
        req.removeAllListeners('data');
        req.resume();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}
