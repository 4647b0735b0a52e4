import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { HearthError } from '../core/errors.js';
import type { AllowList } from './allow-list.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `status`: a read-only route that anyone may GET, on either listener. `device`: a read-only
     * route that devices on the LAN GET (a speaker fetching a chime): control listener only, an
     * address in `http.allow` needed, but never the token, which such devices cannot send.
     * Left out: control.
     */
    access?: 'status' | 'device';
  }
}

/** Route options that make a route a status route. */
export const statusRoute = { config: { access: 'status' } } as const;

/** Route options that make a route a device-read route (see FastifyContextConfig.access). */
export const deviceReadRoute = { config: { access: 'device' } } as const;

/** A GET or HEAD of a route registered as a device-read route; as for status, decided by the matched route. */
export function isDeviceReadRequest(req: FastifyRequest): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.routeOptions.config?.access === 'device';
}

export type ListenerName = 'public' | 'control';
export type ForbiddenReason = 'read-only' | 'address' | 'token';

/**
 * A status request is a GET or HEAD that matched a route registered as a status route. The
 * class comes from the route the router picked, never from the URL text, so no spelling of a
 * path (trailing slash, encoding, a method the route lacks) turns a control route into one.
 * An unmatched request is control: the 404 it would get is for trusted clients only.
 */
export function isStatusRequest(req: FastifyRequest): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.routeOptions.config?.access === 'status';
}

const isV0 = (url: string) => /^\/api\/v0(?:[/?]|$)/.test(url);

/**
 * Answers 403 and counts it. /api/v0 clients get one line of plain text, as they get for every
 * other error; everything else gets the JSON error shape.
 */
function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  metrics: Metrics,
  listener: ListenerName,
  reason: ForbiddenReason,
  message: string,
  hint: string,
): FastifyReply {
  metrics.forbidden.inc({ listener, reason });
  if (reason === 'token') void reply.header('www-authenticate', 'Bearer realm="hearth"');
  void reply.code(403).header('cache-control', 'no-store');
  if (isV0(req.url)) return reply.type('text/plain; charset=utf-8').send(`${message}\n`);
  return reply.send({ error: new HearthError('HEARTH_ERR_FORBIDDEN', message, { hint }).toJSON() });
}

const routeOf = (req: FastifyRequest) => `${req.method} ${req.url.split('?')[0] ?? ''}`;

/** The public listener's guard: status requests pass, anything else is refused. */
export function readOnlyGuard(metrics: Metrics): onRequestAsyncHookHandler {
  return async (req, reply) => {
    if (isStatusRequest(req)) return;
    return refuse(
      req,
      reply,
      metrics,
      'public',
      'read-only',
      `this listener is read-only: it serves hearth's status (GET /, /api/v1/entities, /api/v1/events, /healthz, /readyz), not ${routeOf(req)}`,
      'Send control requests to the control listener (http.port), from a network in http.allow.',
    );
  };
}

export interface ControlAccess {
  allow: AllowList;
  /** When set, control requests must carry `Authorization: Bearer <token>`. */
  token?: string | undefined;
}

/**
 * The control listener's guard: status requests pass; other requests need a client address in
 * `http.allow` and, when a token is configured, the bearer token (device reads excepted).
 */
export function controlGuard(metrics: Metrics, { allow, token }: ControlAccess): onRequestAsyncHookHandler {
  // Only the token's digest is kept, and every check compares two digests of equal length in
  // constant time, so neither the token nor its length can be learnt from response times.
  const expected = token === undefined ? undefined : digest(token);
  // A socket's peer never changes, and matching costs microseconds (BlockList parses the address
  // for every rule): decide once per connection, not per request of a keep-alive client.
  const verdicts = new WeakMap<Socket, boolean>();
  return async (req, reply) => {
    if (isStatusRequest(req)) return;
    const address = req.socket.remoteAddress;
    let allowed = verdicts.get(req.socket);
    if (allowed === undefined) {
      allowed = allow.allows(address);
      if (address !== undefined) verdicts.set(req.socket, allowed);
    }
    if (!allowed) {
      return refuse(
        req,
        reply,
        metrics,
        'control',
        'address',
        `control requests from ${address ?? 'an unknown address'} are not allowed`,
        "Add the client's network to http.allow in the config (e.g. 192.168.1.0/24) and restart hearth.",
      );
    }
    if (expected && !isDeviceReadRequest(req) && !bearerMatches(req.headers.authorization, expected)) {
      return refuse(
        req,
        reply,
        metrics,
        'control',
        'token',
        req.headers.authorization === undefined
          ? 'control requests need the header Authorization: Bearer <token>'
          : 'the Authorization header does not carry the right bearer token',
        'Send the header Authorization: Bearer <token>, with the token of http.token in the config.',
      );
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const given = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')?.[1];
  // Compared even when the header is missing or malformed, so every refusal takes as long.
  const same = timingSafeEqual(digest(given ?? ''), expected);
  return same && given !== undefined;
}
