import type { IncomingMessage, Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { HearthError } from '../core/errors.js';
import { AllowList } from './allow-list.js';
import { isV0 } from './http-errors.js';

/*
 * What one listener lets a client hold: a connection must send its request in time, may rest
 * between requests only so long, and one address may hold only so many at once. Without these,
 * a few hundred idle sockets from one box use up a 1 024-descriptor hearth and no one else is
 * answered.
 */

/** The `http:` settings that bound a listener's connections (config/schema.ts documents each). */
export interface ListenerLimits {
  /** Seconds to send the request line and headers. */
  headersTimeout: number;
  /** Seconds to send the whole request. */
  requestTimeout: number;
  /** Seconds an idle keep-alive connection is kept. */
  keepAliveTimeout: number;
  maxConnectionsPerClient: number;
  maxStreamsPerClient: number;
  /** `false`, `true` (a proxy on this box) or the proxies' networks. */
  trustProxy: boolean | readonly string[];
}

export const defaultLimits: ListenerLimits = {
  headersTimeout: 10,
  requestTimeout: 30,
  keepAliveTimeout: 5,
  maxConnectionsPerClient: 64,
  maxStreamsPerClient: 10,
  trustProxy: false,
};

/** `trustProxy: true`: a proxy on this box. */
const loopback = ['127.0.0.0/8', '::1/128'];

/** The networks of the trusted proxies; empty when none is trusted. */
export function proxyNetworks(trustProxy: ListenerLimits['trustProxy']): string[] {
  if (trustProxy === true) return [...loopback];
  return trustProxy === false ? [] : [...trustProxy];
}

/** The options fastify passes on to Node's HTTP server for these limits. */
export function serverOptions(limits: ListenerLimits): {
  requestTimeout: number;
  keepAliveTimeout: number;
  http: ServerOptions;
} {
  const headersTimeout = Math.round(limits.headersTimeout * 1000);
  const requestTimeout = Math.round(limits.requestTimeout * 1000);
  const keepAliveTimeout = Math.round(limits.keepAliveTimeout * 1000);
  // Node looks for requests past their deadline on this beat (default 30 s, which would let a
  // slow client keep its socket three times as long as a 10 s deadline says); a quarter of the
  // shorter deadline, so none is overrun by more than that. Each beat walks only the
  // connections with a request under way.
  const connectionsCheckingInterval = Math.min(5000, Math.max(50, Math.floor(headersTimeout / 4)));
  return {
    requestTimeout,
    keepAliveTimeout,
    http: { headersTimeout, requestTimeout, keepAliveTimeout, connectionsCheckingInterval },
  };
}

const mappedV4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** A socket's peer as one key per client: `::ffff:10.0.0.5` and `10.0.0.5` are one client. */
function clientKey(address: string): string {
  return mappedV4.exec(address)?.[1] ?? address;
}

/**
 * Holds each client address to `max` open connections on `server`: one more is closed as soon
 * as it is accepted (its descriptor is freed at once), and `refused` is called. Trusted proxies
 * are not counted: every client behind them shares their address.
 */
export function capConnectionsPerClient(
  server: Server,
  max: number,
  refused: () => void,
  proxies: AllowList | undefined,
): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    if (proxies?.allows(address)) return;
    const key = clientKey(address);
    const count = open.get(key) ?? 0;
    if (count >= max) {
      refused();
      socket.destroy();
      return;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
    });
  });
}

/** The trusted proxies as an allow-list, or undefined when none is trusted. */
export function proxyList(trustProxy: ListenerLimits['trustProxy']): AllowList | undefined {
  const networks = proxyNetworks(trustProxy);
  return networks.length === 0 ? undefined : new AllowList(networks);
}

/**
 * `CONNECT` (a proxy's method) never reaches fastify: Node hands it to the server's 'connect'
 * listeners and, with none, drops the socket without a word. hearth is no proxy: it answers
 * 405 in its own shape, like every other request it will not serve, and closes.
 */
export function refuseConnect(server: Server): void {
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    const err = new HearthError(
      'HEARTH_ERR_METHOD_NOT_ALLOWED',
      `${req.method ?? 'CONNECT'} is not a method hearth serves: it is not a proxy`,
      { hint: 'Send requests to hearth itself, with the methods of its API (GET, POST, ...).' },
    );
    const url = req.url ?? '';
    const [type, body] = isV0(url)
      ? ['text/plain; charset=utf-8', `${err.message}\n`]
      : ['application/json; charset=utf-8', JSON.stringify({ error: err.toJSON() })];
    if (!socket.writable) return void socket.destroy();
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });
}

/** The address a request comes from, as hearth judges it (http.allow, throttles, stream caps). */
export type AddressOf = (req: FastifyRequest) => string;

/**
 * The client address of a request: its socket's peer; but when that peer is a trusted proxy,
 * the address the proxy forwards (`X-Forwarded-For`, read from the right past every trusted
 * proxy, so what a client writes in it itself is never believed). With no trusted proxy the
 * header is never read, so no client on the LAN can name another address.
 */
export function addressOf(proxies: AllowList | undefined): AddressOf {
  if (!proxies) return (req) => clientKey(req.socket.remoteAddress ?? '');
  // fastify computes req.ip from the same list of proxies (its trustProxy option).
  const viaProxy = new WeakMap<Socket, boolean>();
  return (req) => {
    const socket = req.socket;
    let proxied = viaProxy.get(socket);
    if (proxied === undefined) {
      proxied = proxies.allows(socket.remoteAddress);
      viaProxy.set(socket, proxied);
    }
    return clientKey((proxied ? req.ip : socket.remoteAddress) ?? '');
  };
}
