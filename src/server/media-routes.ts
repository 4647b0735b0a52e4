/**
 * `GET /api/v0/chime/<file>`: the chime media folder (src/media/library.ts) served to speakers.
 *
 * Access: the route is a device-read route (see access.ts), not a status route. Speakers fetch
 * the URL themselves and cannot send `Authorization: Bearer`, so the token is not asked for;
 * but it is served on the control listener only, to addresses in `http.allow` (the LAN), and
 * never on the public status listener, which may face the internet.
 */
import { basename, dirname } from 'node:path';
import send from '@fastify/send';
import type { FastifyInstance, FastifyReply, HTTPMethods } from 'fastify';
import type { Logger } from '../core/log.js';
import { CHIME_PATH, contentTypeOf, isPlainFileName, type MediaLibrary } from '../media/library.js';
import { deviceReadRoute } from './access.js';

const TEXT = 'text/plain; charset=utf-8';
const METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
/** Headers of @fastify/send's HTML error pages, which /api/v0 answers in plain text instead. */
const PAGE_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-security-policy',
  'x-content-type-options',
]);

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type(TEXT).send(body);
}

/**
 * `GET /api/v0/chime/<file>` (trailing slash optional): the file with its audio content type,
 * `Accept-Ranges: bytes`, `206` for a satisfiable `Range`, `416` for one that is not, `304` for a
 * fresh conditional request; `400` for a name that is not a plain file name (`..`, an encoded
 * slash, an absolute path), `404` for a file that is not there. Ranges, validators and
 * conditional requests are @fastify/send's; the name checks are ours, before it sees the path.
 */
export function registerMediaRoutes(app: FastifyInstance, media: MediaLibrary, log: Logger): void {
  app.route({
    method: METHODS,
    url: `${CHIME_PATH}/:file`,
    ...deviceReadRoute,
    handler: async (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return text(reply.header('allow', 'GET, HEAD'), 405, 'method not allowed; use GET\n');
      }
      const { file } = req.params as { file: string };
      if (!isPlainFileName(file)) {
        return text(
          reply,
          400,
          `bad chime name ${JSON.stringify(file.slice(0, 80))}: use a plain file name in the media folder\n`,
        );
      }
      const path = await media.resolve(file);
      if (!path) return text(reply, 404, `no chime "${file}" in the media folder\n`);
      const result = await send(req.raw, `/${encodeURIComponent(basename(path))}`, {
        root: dirname(path),
        dotfiles: 'deny',
        index: false,
        acceptRanges: true,
        etag: true,
        lastModified: true,
        // Ours: mime's table says audio/x-flac and audio/x-aac; speakers expect the registered types.
        contentType: false,
      });
      if (result.type === 'file') {
        reply.code(result.statusCode).headers(result.headers);
        if (result.statusCode !== 304) reply.type(contentTypeOf(file));
        return reply.send(result.stream);
      }
      result.stream.destroy();
      for (const [name, value] of Object.entries(result.headers)) {
        if (!PAGE_HEADERS.has(name.toLowerCase())) reply.header(name, value);
      }
      const status = result.type === 'directory' ? 404 : result.statusCode;
      if (status === 416) {
        return text(reply, 416, `range ${JSON.stringify(req.headers.range ?? '')} is outside the file\n`);
      }
      if (status === 404) return text(reply, 404, `no chime "${file}" in the media folder\n`);
      if (status >= 500) log.warn({ file, status }, 'serving a chime failed');
      return text(reply, status, `could not serve chime "${file}" (HTTP ${status})\n`);
    },
  });
}
