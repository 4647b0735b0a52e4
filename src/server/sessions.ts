import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../core/errors.js';
import type { SessionStore } from '../store/store.js';
import type { AddressOf } from './connections.js';
import { isV0 } from './http-errors.js';

/*
 * Browser sessions of the dashboard. With `http.token` set, the app asks for the token once
 * and POSTs it to /api/v1/session; the answer sets a session cookie (HttpOnly, SameSite=Strict)
 * that authorises control requests as the bearer token does. The token never goes into a URL
 * or the page's storage. Sessions live in the store (only the digest of each id, its creation
 * and expiry), so every api replica of a cluster knows them and they survive a restart.
 */

export const SESSION_COOKIE = 'hearth_session';
/** How long a session lasts without a new login. */
export const SESSION_DAYS = 30;
const SESSION_MS = SESSION_DAYS * 24 * 60 * 60 * 1000;
/** Sessions kept at once; a new one past this drops the oldest. */
export const MAX_SESSIONS = 1000;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Session ids, kept in the store as their digests, with when each expires. */
export class Sessions {
  readonly #store: SessionStore;
  readonly #now: () => number;

  constructor(store: SessionStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** A new session; returns its id, to be sent once in the cookie. */
  async create(): Promise<string> {
    const now = this.#now();
    const id = randomBytes(32).toString('base64url');
    await this.#store.create(
      { hash: sha256(id).toString('hex'), createdAt: now, expiresAt: now + SESSION_MS },
      MAX_SESSIONS,
    );
    return id;
  }

  /** True when `id` is a live session. */
  async valid(id: string | undefined): Promise<boolean> {
    // A real id is 43 characters of base64url; anything else is not looked up.
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return false;
    return (await this.#store.find(sha256(id).toString('hex'), this.#now())) !== undefined;
  }

  async end(id: string | undefined): Promise<void> {
    if (id) await this.#store.delete(sha256(id).toString('hex'));
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
  authorises(req: FastifyRequest): Promise<boolean> {
    return this.valid(Sessions.idOf(req));
  }
}

/** Wrong logins from one address within a window before it is refused for a while. */
export const LOGIN_FAILURES = 10;
const LOGIN_WINDOW_MS = 60_000;
/** How long an address that guessed too often is refused (every login, right or wrong). */
export const LOGIN_BLOCK_MS = 60_000;
/** Addresses tracked at once; past this the longest-tracked is forgotten, so memory stays bounded. */
const TRACKED_ADDRESSES = 10_000;

interface Tally {
  /** Failures since `since`. */
  failures: number;
  since: number;
  blockedUntil: number;
}

/**
 * Throttles wrong logins and wrong bearer tokens per client address, in this process (one tally
 * per listener for both): after LOGIN_FAILURES wrong tokens within a minute, the address is answered 429 for LOGIN_BLOCK_MS, right token or not, so the
 * token cannot be guessed at speed. Other addresses are not affected.
 */
export class LoginThrottle {
  // Insertion order is the order addresses were first tracked: the first key goes first.
  readonly #tallies = new Map<string, Tally>();
  readonly #now: () => number;
  readonly #cap: number;

  constructor(now: () => number = Date.now, cap = TRACKED_ADDRESSES) {
    this.#now = now;
    this.#cap = cap;
  }

  /** Seconds until `address` may try again; 0 when it may now. */
  retryAfter(address: string): number {
    const tally = this.#tallies.get(address);
    if (!tally) return 0;
    const left = tally.blockedUntil - this.#now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  failed(address: string): void {
    const now = this.#now();
    let tally = this.#tallies.get(address);
    if (!tally || now - tally.since >= LOGIN_WINDOW_MS) {
      if (tally) this.#tallies.delete(address);
      while (this.#tallies.size >= this.#cap) {
        const oldest = this.#tallies.keys().next().value;
        if (oldest === undefined) break;
        this.#tallies.delete(oldest);
      }
      tally = { failures: 0, since: now, blockedUntil: 0 };
      this.#tallies.set(address, tally);
    }
    tally.failures++;
    if (tally.failures >= LOGIN_FAILURES) {
      tally.blockedUntil = now + LOGIN_BLOCK_MS;
      // A new window starts when the block ends.
      tally.since = tally.blockedUntil;
      tally.failures = 0;
    }
  }

  succeeded(address: string): void {
    this.#tallies.delete(address);
  }

  get tracked(): number {
    return this.#tallies.size;
  }
}

/** 429 with Retry-After for an address that guessed the token too often: one line under /api/v0. */
export function tooManyGuesses(
  req: FastifyRequest,
  reply: FastifyReply,
  address: string,
  wait: number,
): FastifyReply {
  const err = new HearthError(
    'HEARTH_ERR_TOO_MANY_LOGINS',
    `too many wrong tokens from ${address}: try again in ${wait} s`,
  );
  void reply.code(429).header('retry-after', String(wait)).header('cache-control', 'no-store');
  if (isV0(req.url)) return reply.type('text/plain; charset=utf-8').send(`${err.message}\n`);
  return reply.send({ error: err.toJSON() });
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
  // Plain HTTP on the LAN is the usual case; over TLS the cookie is never sent in clear. A
  // request came over TLS when its socket is encrypted or, only when `http.trustProxy` names
  // the proxy it came through, when that proxy says so (X-Forwarded-Proto: https).
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
  throttle: LoginThrottle,
  clientAddress: AddressOf,
): void {
  const expected = token === undefined ? undefined : sha256(token);

  app.get('/api/v1/session', sessionRoute, async (req, reply) => {
    void reply.header('cache-control', 'no-store');
    return { tokenRequired: expected !== undefined, authenticated: await sessions.authorises(req) };
  });

  app.post('/api/v1/session', sessionRoute, async (req, reply) => {
    const given = loginBody(req.body);
    if (expected === undefined) {
      return reply.header('cache-control', 'no-store').send({ tokenRequired: false, authenticated: false });
    }
    const address = clientAddress(req);
    const wait = throttle.retryAfter(address);
    if (wait > 0) return tooManyGuesses(req, reply, address, wait);
    // Digests of equal length, compared in constant time, as for the bearer token.
    if (!timingSafeEqual(sha256(given), expected)) {
      throttle.failed(address);
      refused();
      const err = new HearthError('HEARTH_ERR_FORBIDDEN', 'that is not the token of http.token', {
        hint: 'Enter the token set as http.token in the config.',
      });
      return reply.code(403).header('cache-control', 'no-store').send({ error: err.toJSON() });
    }
    throttle.succeeded(address);
    await sessions.end(Sessions.idOf(req));
    const id = await sessions.create();
    return reply
      .header('set-cookie', cookie(req, id, SESSION_MS / 1000))
      .header('cache-control', 'no-store')
      .send({ tokenRequired: true, authenticated: true });
  });

  app.delete('/api/v1/session', sessionRoute, async (req, reply) => {
    await sessions.end(Sessions.idOf(req));
    return reply
      .header('set-cookie', cookie(req, '', 0))
      .header('cache-control', 'no-store')
      .code(204)
      .send();
  });
}
