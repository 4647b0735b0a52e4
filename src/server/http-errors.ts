import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { type ErrorCode, HearthError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/*
 * Every error, whoever raises it (a route, fastify, Node's HTTP parser), in hearth's two
 * shapes: one line of plain text under /api/v0 (old devices print or compare it), the JSON
 * error of the catalogue everywhere else.
 */

const TEXT = 'text/plain; charset=utf-8';

/** True for a URL of the device API, whose clients get plain text, one line, for every error. */
export const isV0 = (url: string) => /^\/api\/v0(?:[/?]|$)/.test(url);

/** The catalogue code for an HTTP status that fastify or Node chose. */
function codeFor(status: number): ErrorCode {
  switch (status) {
    case 404:
      return 'HEARTH_ERR_NOT_FOUND';
    case 405:
      return 'HEARTH_ERR_METHOD_NOT_ALLOWED';
    case 408:
      return 'HEARTH_ERR_REQUEST_TIMEOUT';
    case 413:
      return 'HEARTH_ERR_BODY_TOO_LARGE';
    case 414:
      return 'HEARTH_ERR_URL_TOO_LONG';
    case 415:
      return 'HEARTH_ERR_UNSUPPORTED_MEDIA_TYPE';
    case 431:
      return 'HEARTH_ERR_HEADERS_TOO_LARGE';
    default:
      return status < 500 ? 'HEARTH_ERR_BAD_REQUEST' : 'HEARTH_ERR_INTERNAL';
  }
}

/** Any thrown value as a HearthError; a 5xx that is not one says nothing of hearth's insides. */
export function toHearthError(err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  const status = (err as { statusCode?: number }).statusCode ?? 500;
  const code = codeFor(status);
  if (code === 'HEARTH_ERR_INTERNAL') return new HearthError(code, 'hearth failed to answer this request');
  const message = err instanceof Error ? err.message : String(err);
  return new HearthError(code, message.replace(/\s*\n\s*/g, ' '));
}

function send(req: FastifyRequest, reply: FastifyReply, err: HearthError): FastifyReply {
  void reply.code(err.status);
  if (isV0(req.url)) return reply.type(TEXT).send(`${err.message}\n`);
  return reply.send({ error: err.toJSON() });
}

/** The error handler of both listeners. */
export function errorHandler(log: Logger) {
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => {
    const hearth = toHearthError(err);
    if (hearth.code === 'HEARTH_ERR_INTERNAL' && !(err instanceof HearthError)) {
      log.error({ err, url: req.url }, 'request failed');
    }
    void send(req, reply, hearth);
  };
}

/** fastify's own refusals before routing: a URL it cannot decode (400), a too-long id (414). */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  void send(req, reply, toHearthError(err));
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isV0(req.url)) return reply.code(404).type(TEXT).send('not found\n');
  return send(
    req,
    reply,
    new HearthError('HEARTH_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
}

const statusText: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * Node's HTTP parser refuses a request before fastify sees it: headers (with the URL) over
 * 16 KiB (431), a request too slow to arrive (408), bytes that are not HTTP (400). The answer
 * is written on the socket; its shape follows the request line, when there is one.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const hearth = new HearthError(
    codeFor(status),
    status === 431
      ? 'the request line and headers are larger than 16 KiB'
      : status === 408
        ? 'the request did not arrive in time'
        : `the request is not valid HTTP (${err.code ?? 'parse error'})`,
  );
  // Node keeps the bytes it could not parse (typed loosely by fastify): the request line, if any.
  const raw: unknown = (err as { rawPacket?: unknown }).rawPacket;
  const start = Buffer.isBuffer(raw) ? raw.toString('latin1', 0, 80) : '';
  const line = /^[A-Z]{3,7} (\S{1,64})/.exec(start)?.[1] ?? '';
  const [type, body] = isV0(line)
    ? [TEXT, `${hearth.message}\n`]
    : ['application/json; charset=utf-8', JSON.stringify({ error: hearth.toJSON() })];
  if (!socket.writable) return void socket.destroy();
  // Destroyed once written: a client that reads nothing and never closes (a slowloris) must not
  // keep the descriptor of a half-closed socket.
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status]}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

const METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

/**
 * Makes a wrong method on a JSON route (`/api/v1`) a 405 with `Allow`, not a 404 that says the
 * path does not exist. Call before routes are added; call the returned function after the last.
 */
export function methodNotAllowed(app: FastifyInstance): () => void {
  const routes = new Map<string, Set<string>>();
  let adding = false;
  app.addHook('onRoute', (route) => {
    if (adding || !route.url.startsWith('/api/v1')) return;
    const methods = routes.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    routes.set(route.url, methods);
  });
  return () => {
    adding = true;
    for (const [url, methods] of routes) {
      if (methods.has('GET')) methods.add('HEAD');
      const others = METHODS.filter((m) => !methods.has(m));
      if (others.length === 0) continue;
      const allow = METHODS.filter((m) => methods.has(m)).join(', ');
      app.route({
        method: others,
        url,
        exposeHeadRoute: false,
        // Answered before the body is read: a PUT with a body is a 405, not a 415.
        onRequest: async (req, reply) =>
          send(
            req,
            reply.header('allow', allow),
            new HearthError(
              'HEARTH_ERR_METHOD_NOT_ALLOWED',
              `${req.method} is not a method of ${req.url.split('?')[0]}; it takes ${allow}`,
            ),
          ),
        handler: async () => undefined,
      });
    }
    adding = false;
  };
}
