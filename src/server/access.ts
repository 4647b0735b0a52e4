import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { HearthError } from '../core/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AllowList } from './allow-list.js';
import type { AddressOf } from './connections.js';
import { isV0 } from './http-errors.js';
import { crossSite, HostNames } from './origin.js';
import { type LoginThrottle, type Sessions, tooManyGuesses } from './sessions.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `status`: a read-only route that anyone may GET, on either listener. `device`: a read-only
     * route that devices on the LAN GET (a speaker fetching a chime): control listener only, an
     * address in `http.allow` needed, but never the token, which such devices cannot send.
     * `session`: the dashboard's log-in routes (sessions.ts): every control check but the token.
     * Left out: control.
     */
    access?: 'status' | 'device' | 'session';
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

export type ListenerName = 'public' | 'control' | 'metrics';
export type ForbiddenReason = 'read-only' | 'address' | 'host' | 'origin' | 'token';

/**
 * A status request is a GET or HEAD that matched a route registered as a status route. The
 * class comes from the route the router picked, never from the URL text, so no spelling of a
 * path (trailing slash, encoding, a method the route lacks) turns a control route into one.
 * An unmatched request is control: the 404 it would get is for trusted clients only.
 */
export function isStatusRequest(req: FastifyRequest): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.routeOptions.config?.access === 'status';
}

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

/**
 * The metrics listener's guard: a client address in its `allow` and a `Host` that names this box
 * (so a page rebound to it cannot read the metrics), nothing more: no token, which a scraper
 * would hold only to read what it may read anyway. Only /metrics is routed there.
 */
export function metricsGuard(metrics: Metrics, checks: ControlChecks): onRequestAsyncHookHandler {
  return async (req, reply) => {
    if (!checks.addressAllowed(req)) {
      const address = checks.clientAddress(req);
      return refuse(
        req,
        reply,
        metrics,
        'metrics',
        'address',
        `metrics requests from ${address || 'an unknown address'} are not allowed`,
        "Add the scraper's network to http.metrics.allow in the config and restart hearth.",
      );
    }
    if (!checks.hostAllowed(req)) {
      return refuse(
        req,
        reply,
        metrics,
        'metrics',
        'host',
        `metrics requests must name this server in the Host header (an IP address, localhost, this machine's name or one in http.hostNames), not ${JSON.stringify((req.headers.host ?? '').slice(0, 100))}`,
        'Scrape hearth by its address or one of its names; to use another name, add it to http.hostNames in the config.',
      );
    }
  };
}

export interface ControlAccess {
  allow: AllowList;
  /** When set, control requests must carry `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** `http.hostNames`: `Host` names accepted besides IP literals, localhost and this machine's names. */
  hostNames?: readonly string[] | undefined;
}

/**
 * The checks of a control request that do not depend on the route: the client's address (in
 * `http.allow`) and the `Host` it asked for (one of this box's names). Status routes of the
 * control listener also use them, to decide who sees the detail of an unavailable entity.
 */
export class ControlChecks {
  readonly #allow: AllowList;
  readonly hosts: HostNames;
  /** The client address of a request: the socket's peer, or what a trusted proxy forwards. */
  readonly clientAddress: AddressOf;
  readonly #proxies: AllowList | undefined;
  // A socket's peer never changes, and matching costs microseconds (BlockList parses the address
  // for every rule): decide once per connection, not per request of a keep-alive client. Not for
  // a trusted proxy's connection, which carries the requests of many clients.
  readonly #verdicts = new WeakMap<Socket, boolean>();

  constructor({ allow, hostNames }: ControlAccess, clientAddress: AddressOf, proxies?: AllowList) {
    this.#allow = allow;
    this.hosts = new HostNames(hostNames);
    this.clientAddress = clientAddress;
    this.#proxies = proxies;
  }

  addressAllowed(req: FastifyRequest): boolean {
    let allowed = this.#verdicts.get(req.socket);
    if (allowed === undefined) {
      const peer = req.socket.remoteAddress;
      allowed = this.#allow.allows(this.clientAddress(req));
      if (peer !== undefined && !this.#proxies?.allows(peer)) this.#verdicts.set(req.socket, allowed);
    }
    return allowed;
  }

  hostAllowed(req: FastifyRequest): boolean {
    return this.hosts.allows(req.headers.host);
  }

  /** A client trusted with the detail of failures (device addresses, paths): a LAN client that asked for this box by one of its names. */
  trusted(req: FastifyRequest): boolean {
    return this.addressAllowed(req) && this.hostAllowed(req);
  }
}

/**
 * The control listener's guard: status requests pass; other requests need a client address in
 * `http.allow`, a `Host` that names this box (not a name rebound to it), no sign of coming from
 * another site's page (`Origin`, `Sec-Fetch-Site`) and, when a token is configured, the bearer
 * token or a dashboard session cookie (device reads, which speakers make with no browser and no
 * token, need the address only; the session routes, where a browser logs in, need no token).
 */
export function controlGuard(
  metrics: Metrics,
  checks: ControlChecks,
  throttle: LoginThrottle,
  token?: string,
  sessions?: Sessions,
): onRequestAsyncHookHandler {
  // Only the token's digest is kept, and every check compares two digests of equal length in
  // constant time, so neither the token nor its length can be learnt from response times.
  const expected = token === undefined ? undefined : digest(token);
  return async (req, reply) => {
    if (isStatusRequest(req)) return;
    if (!checks.addressAllowed(req)) {
      const address = checks.clientAddress(req);
      return refuse(
        req,
        reply,
        metrics,
        'control',
        'address',
        `control requests from ${address || 'an unknown address'} are not allowed`,
        "Add the client's network to http.allow in the config (e.g. 192.168.1.0/24) and restart hearth.",
      );
    }
    if (isDeviceReadRequest(req)) return;
    if (!checks.hostAllowed(req)) {
      return refuse(
        req,
        reply,
        metrics,
        'control',
        'host',
        // The names are not listed: a page rebound to this box reads this answer.
        `control requests must name this server in the Host header (an IP address, localhost, this machine's name or one in http.hostNames), not ${JSON.stringify((req.headers.host ?? '').slice(0, 100))}`,
        'Call hearth by its address or one of its names; to use another name (a DNS name, a proxy), add it to http.hostNames in the config.',
      );
    }
    const cross = crossSite(req.headers);
    if (cross) {
      return refuse(
        req,
        reply,
        metrics,
        'control',
        'origin',
        `control requests from another site's page are refused: ${cross.why}`,
        "Send control requests from hearth's own pages, or from a script or device (they send no Origin header).",
      );
    }
    if (req.routeOptions.config?.access === 'session') return;
    if (expected) {
      const given = req.headers.authorization;
      // Token guesses are throttled as wrong logins are, in the same tally: an address that
      // guessed too often is refused for a while, right token or not, and so cannot guess at
      // speed. A request without the header is no guess (a dashboard with its cookie).
      const address = given === undefined ? undefined : checks.clientAddress(req);
      if (address !== undefined) {
        const wait = throttle.retryAfter(address);
        if (wait > 0) return tooManyGuesses(req, reply, address, wait);
      }
      if (bearerMatches(given, expected)) return;
      if (sessions && (await sessions.authorises(req))) return;
      if (address !== undefined) throttle.failed(address);
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
