import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HearthError } from '../core/errors.js';

/*
 * Browser sessions of the dashboard. With `http.token` set, the app asks for the token once
 * and POSTs it to /api/v1/session; the answer sets a session cookie (HttpOnly, SameSite=Strict)
 * that authorises control requests as the bearer token does. The token never goes into a URL
 * or the page's storage. Sessions live in this process's memory: a restart (or another api
 * replica) asks for the token again.
 */

export const SESSION_COOKIE = 'hearth_session';
/** How long a session lasts without a new login. */
export const SESSION_DAYS = 30;
const SESSION_MS = SESSION_DAYS * 24 * 60 * 60 * 1000;
/** Sessions kept at once; a new one past this drops the oldest. */
const MAX_SESSIONS = 1000;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Session ids, kept as their digests, with when each expires. */
export class Sessions {
  // Insertion order is creation order: the first key is the oldest session.
  readonly #expiry = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A new session; returns its id, to be sent once in the cookie. */
  create(): string {
    const now = this.#now();
    for (const [key, expires] of this.#expiry) if (expires <= now) this.#expiry.delete(key);
    while (this.#expiry.size >= MAX_SESSIONS) {
      const oldest = this.#expiry.keys().next().value;
      if (oldest === undefined) break;
      this.#expiry.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    this.#expiry.set(sha256(id).toString('hex'), now + SESSION_MS);
    return id;
  }

  /** True when `id` is a live session. */
  valid(id: string | undefined): boolean {
    if (!id) return false;
    const key = sha256(id).toString('hex');
    const expires = this.#expiry.get(key);
    if (expires === undefined) return false;
    if (expires > this.#now()) return true;
    this.#expiry.delete(key);
    return false;
  }

  end(id: string | undefined): void {
    if (id) this.#expiry.delete(sha256(id).toString('hex'));
  }

  /** The session id of the request's cookie, if it sends one. */
  static idOf(req: FastifyRequest): string | undefined {
    const header = req.headers.cookie;
    if (!header) return undefined;
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
    }
    return undefined;
  }

  /** True when the request carries a live session cookie. */
  authorises(req: FastifyRequest): boolean {
    return this.valid(Sessions.idOf(req));
  }
}

/** Route options of the session routes: the control checks apply, except the token. */
export const sessionRoute = { config: { access: 'session' } } as const;

function cookie(req: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const parts = [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  // Plain HTTP on the LAN is the usual case; behind TLS the cookie is never sent in clear.
  if (req.protocol === 'https') parts.push('Secure');
  return parts.join('; ');
}

const loginBody = (body: unknown): string => {
  if (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { token?: unknown }).token === 'string' &&
    Object.keys(body).length === 1
  ) {
    return (body as { token: string }).token;
  }
  throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'send {"token": "<the token of http.token>"} as JSON');
};

/**
 * GET /api/v1/session (whether a login is needed and whether this browser has one), POST (log
 * in with the token: sets the cookie) and DELETE (log out: ends the session, clears the cookie).
 */
export function registerSessionRoutes(
  app: FastifyInstance,
  sessions: Sessions,
  token: string | undefined,
  refused: () => void,
): void {
  const expected = token === undefined ? undefined : sha256(token);

  app.get('/api/v1/session', sessionRoute, async (req, reply) => {
    void reply.header('cache-control', 'no-store');
    return { tokenRequired: expected !== undefined, authenticated: sessions.authorises(req) };
  });

  app.post('/api/v1/session', sessionRoute, async (req, reply) => {
    const given = loginBody(req.body);
    if (expected === undefined) {
      return reply.header('cache-control', 'no-store').send({ tokenRequired: false, authenticated: false });
    }
    // Digests of equal length, compared in constant time, as for the bearer token.
    if (!timingSafeEqual(sha256(given), expected)) {
      refused();
      const err = new HearthError('HEARTH_ERR_FORBIDDEN', 'that is not the token of http.token', {
        hint: 'Enter the token set as http.token in the config.',
      });
      return reply.code(403).header('cache-control', 'no-store').send({ error: err.toJSON() });
    }
    sessions.end(Sessions.idOf(req));
    const id = sessions.create();
    return reply
      .header('set-cookie', cookie(req, id, SESSION_MS / 1000))
      .header('cache-control', 'no-store')
      .send({ tokenRequired: true, authenticated: true });
  });

  app.delete('/api/v1/session', sessionRoute, async (req, reply) => {
    sessions.end(Sessions.idOf(req));
    return reply
      .header('set-cookie', cookie(req, '', 0))
      .header('cache-control', 'no-store')
      .code(204)
      .send();
  });
}
