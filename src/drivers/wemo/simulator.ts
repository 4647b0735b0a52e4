/**
 * A Wemo plug over real HTTP on loopback (or any address): the peer of tests, benchmarks, the
 * demo and `hearth sim wemo`. It answers like a plug, including its faults and quirks, so the
 * client is tested against the wire, not against a mock.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Simulator } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';
import { readBody } from '../../transport/http-body.js';
import {
  binaryStateText,
  CONTROL_PATH,
  envelope,
  faultEnvelope,
  SERVICE_TYPE,
  type WemoAction,
} from './soap.js';

/** How many calls the simulator remembers; older ones are dropped. */
export const MAX_CALLS = 1000;

const MAX_REQUEST_BYTES = 64 * 1024;
const ACTION_PREFIX = `${SERVICE_TYPE}#`;
const QUOTES = /^"|"$/g;

/** One SOAP call the simulator received, with the headers a real plug is picky about. */
export interface WemoCall {
  action: WemoAction;
  /** The state asked for by SetBinaryState. */
  value?: boolean;
  /** Epoch ms when the request arrived. */
  at: number;
  headers: { soapaction?: string; contentType?: string; connection?: string };
}

/**
 * How the simulated plug behaves: `ok` answers like a plug; `hang` accepts and never answers;
 * `garbage` answers 200 with a body that is not SOAP; `error` answers HTTP 500.
 */
export type WemoSimulatorMode = 'ok' | 'hang' | 'garbage' | 'error';

export interface WemoSimulator {
  readonly host: string;
  /** The port it listens on (the real one when 0 was asked for). */
  readonly port: number;
  /** The relay; tests set it to play a person switching the plug by hand. */
  on: boolean;
  /** Answer like an Insight plug: `1|since|on-for|...` instead of `1`. */
  insight: boolean;
  /** Answer `Error` to a SetBinaryState that asks for the state the relay is already in, as plugs do. */
  errorWhenUnchanged: boolean;
  mode: WemoSimulatorMode;
  /** The last {@link MAX_CALLS} calls, oldest first. */
  readonly calls: WemoCall[];
  /** Sockets open now; a client that aborted must leave none behind. */
  readonly connections: number;
  /** Stops listening and destroys every socket, hung ones included. */
  close(): Promise<void>;
}

export interface WemoSimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** The relay at start; default off. */
  initial?: boolean;
  insight?: boolean;
  errorWhenUnchanged?: boolean;
  /** Relay changes are logged at debug. */
  log?: Logger;
}

const GARBAGE = '<html><body>It works!</body></html>\n';

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function insightState(on: boolean, since: number): string {
  // state|lastchange|onfor|ontoday|ontotal|timeperiod|x|currentmw|todaymw|totalmw|powerthreshold
  return `${on ? 1 : 0}|${Math.floor(since / 1000)}|0|0|0|1209600|8|0|0|0|8000`;
}

/** Starts a simulated Wemo plug; resolves once it is listening. */
export async function startWemoSimulator(opts: WemoSimulatorOptions = {}): Promise<WemoSimulator> {
  const sockets = new Set<Socket>();
  const calls: WemoCall[] = [];
  let changedAt = Date.now();
  const log = opts.log;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.warn({ err }, 'wemo simulator failed to answer');
      res.destroy();
    });
  });

  const sim = {
    host: opts.host ?? '127.0.0.1',
    port: 0,
    on: opts.initial ?? false,
    insight: opts.insight ?? false,
    errorWhenUnchanged: opts.errorWhenUnchanged ?? false,
    mode: 'ok' as WemoSimulatorMode,
    calls,
    get connections(): number {
      return sockets.size;
    },
    async close(): Promise<void> {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      // Waits for each socket's own 'close' too, so `connections` is 0 once this resolves.
      const gone = [...sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
      for (const socket of sockets) socket.destroy();
      await Promise.all([closing, ...gone]);
    },
  } satisfies WemoSimulator;

  function send(res: ServerResponse, status: number, body: string, type = 'text/xml; charset="utf-8"'): void {
    // Plugs close after every reply; the client must not rely on keep-alive.
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      Connection: 'close',
      Server: 'Unspecified, UPnP/1.0, Unspecified',
    });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url?.split('?')[0];
    if (path !== CONTROL_PATH) {
      req.resume();
      send(res, 404, '<html><body><h1>404 Not Found</h1></body></html>', 'text/html');
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      res.setHeader('Allow', 'POST');
      send(res, 405, '<html><body><h1>405 Method Not Allowed</h1></body></html>', 'text/html');
      return;
    }
    const body = await readBody(req, MAX_REQUEST_BYTES, 'latin1');
    if (body === undefined) {
      send(res, 413, '<html><body><h1>413 Request Entity Too Large</h1></body></html>', 'text/html');
      return;
    }

    const soapaction = headerText(req.headers.soapaction);
    const bare = soapaction?.replace(QUOTES, '');
    const name = bare?.startsWith(ACTION_PREFIX) ? bare.slice(ACTION_PREFIX.length) : undefined;
    if (name !== 'GetBinaryState' && name !== 'SetBinaryState') {
      send(res, 500, faultEnvelope(401, 'Invalid Action'));
      return;
    }

    let value: boolean | undefined;
    if (name === 'SetBinaryState') {
      const text = binaryStateText(body);
      if (text !== '0' && text !== '1') {
        send(res, 500, faultEnvelope(402, 'Invalid Args'));
        return;
      }
      value = text === '1';
    }
    const call: WemoCall = {
      action: name,
      at: Date.now(),
      headers: {
        soapaction,
        contentType: headerText(req.headers['content-type']),
        connection: headerText(req.headers.connection),
      },
    };
    if (value !== undefined) call.value = value;
    calls.push(call);
    if (calls.length > MAX_CALLS) calls.splice(0, calls.length - MAX_CALLS);

    // The faults come after the request is read and recorded: the plug got the call, then failed.
    switch (sim.mode) {
      case 'hang':
        return;
      case 'garbage':
        send(res, 200, GARBAGE, 'text/html');
        return;
      case 'error':
        send(res, 500, '<html><body><h1>500 Internal Server Error</h1></body></html>', 'text/html');
        return;
      case 'ok':
        break;
    }

    let answer: string;
    if (value === undefined) {
      answer = sim.insight ? insightState(sim.on, changedAt) : sim.on ? '1' : '0';
    } else if (value === sim.on && sim.errorWhenUnchanged) {
      answer = 'Error';
    } else {
      if (value !== sim.on) {
        sim.on = value;
        changedAt = Date.now();
        log?.debug({ on: value }, 'wemo simulator relay switched');
      }
      answer = value ? '1' : '0';
    }
    send(res, 200, envelope(`${name}Response`, answer));
  }

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, sim.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  sim.port = (server.address() as AddressInfo).port;
  return sim;
}

/** The simulator as the runtime and `hearth sim wemo` start it. */
export const simulator: Simulator = {
  transport: 'network',
  defaultPort: 49153,
  start: ({ host, port, log }) => startWemoSimulator({ host, port, log }),
};
