/**
 * A protocol client for Belkin Wemo plugs (UPnP SOAP over HTTP). Imports nothing from hearth's
 * core: node built-ins, the shared SOAP transport and the SOAP texts beside it only.
 */
import { SoapPostError, soapHeaders, soapPost } from '../../transport/soap.js';
import {
  binaryStateText,
  CONTROL_PATH,
  GET_REQUEST,
  isDigits,
  SERVICE_TYPE,
  SET_OFF_REQUEST,
  SET_ON_REQUEST,
} from './soap.js';

/** The ports real plugs move between, after a reboot or a firmware update. */
export const WEMO_PORTS: readonly number[] = [49152, 49153, 49154, 49155];

/** Replies are a few hundred bytes; anything far larger is not a plug talking. */
export const MAX_REPLY_BYTES = 64 * 1024;

const headersFor = (action: string, body: string) => soapHeaders(`"${SERVICE_TYPE}#${action}"`, body);

// Built once: set and get are on the wall-button-to-lamp path.
const GET = { body: GET_REQUEST, headers: headersFor('GetBinaryState', GET_REQUEST) };
const SET_ON = { body: SET_ON_REQUEST, headers: headersFor('SetBinaryState', SET_ON_REQUEST) };
const SET_OFF = { body: SET_OFF_REQUEST, headers: headersFor('SetBinaryState', SET_OFF_REQUEST) };
type Exchange = typeof GET;

/** The connection was refused: the one failure after which another port of the range is tried. */
function isRefused(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
}

/** An Error whose message names the plug, keeping the socket error's code for callers. */
function deviceError(addr: string, message: string, cause?: unknown): Error {
  const err: NodeJS.ErrnoException = new Error(
    `wemo ${addr} ${message}`,
    cause === undefined ? undefined : { cause },
  );
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined) err.code = code;
  return err;
}

/**
 * One POST on its own connection; resolves with the body of a 200 reply. Rejects with
 * `signal.reason` when the signal aborts, after destroying the socket.
 */
async function post(host: string, port: number, exchange: Exchange, signal: AbortSignal): Promise<string> {
  const addr = `${host}:${port}`;
  let reply: { status: number; body: string };
  try {
    reply = await soapPost({
      host,
      port,
      path: CONTROL_PATH,
      headers: exchange.headers,
      body: exchange.body,
      maxReplyBytes: MAX_REPLY_BYTES,
      encoding: 'latin1',
      signal,
    });
  } catch (err) {
    if (!(err instanceof SoapPostError)) throw err;
    throw deviceError(addr, failureText(err), err.failure === 'connect' ? err.cause : err);
  }
  if (reply.status !== 200) throw deviceError(addr, `answered HTTP ${reply.status}`);
  return reply.body;
}

function failureText(err: SoapPostError): string {
  switch (err.failure) {
    case 'connect':
      return err.code === 'ECONNREFUSED'
        ? 'refused the connection'
        : err.code === 'ECONNRESET'
          ? 'closed the connection before replying'
          : `could not be reached: ${err.message}`;
    case 'too-large':
      return `sent a reply larger than ${MAX_REPLY_BYTES} bytes`;
    case 'cut':
      return 'closed the connection in the middle of its reply';
    default:
      return `failed while replying: ${err.message}`;
  }
}

/**
 * Talks to one Wemo plug. Every call opens its own connection (`Connection: close`), takes an
 * AbortSignal that destroys the socket at once, and follows the plug when it moves to another
 * port of 49152–49155.
 */
export class WemoClient {
  readonly #host: string;
  #port: number;

  constructor(opts: { host: string; port: number }) {
    this.#host = opts.host;
    this.#port = opts.port;
  }

  /** The port that last answered, or the configured one before any plug answered. */
  get port(): number {
    return this.#port;
  }

  /** Reads the relay: true is on. */
  async getBinaryState(signal: AbortSignal): Promise<boolean> {
    const reply = await this.#call(GET, signal);
    const text = binaryStateText(reply);
    if (text === undefined || !isDigits(text)) throw this.#noState(text);
    return text !== '0';
  }

  /** Switches the relay; resolves with the state the plug reports afterwards. */
  async setBinaryState(on: boolean, signal: AbortSignal): Promise<boolean> {
    const reply = await this.#call(on ? SET_ON : SET_OFF, signal);
    const text = binaryStateText(reply);
    // Plugs answer `Error` when the relay already was in the state asked for.
    if (text === 'Error') return on;
    if (text === undefined || !isDigits(text)) throw this.#noState(text);
    return text !== '0';
  }

  #noState(text: string | undefined): Error {
    return deviceError(
      `${this.#host}:${this.#port}`,
      text === undefined
        ? 'sent no <BinaryState> in its reply'
        : `sent an unreadable <BinaryState> ${JSON.stringify(text.slice(0, 40))}`,
    );
  }

  async #call(exchange: Exchange, signal: AbortSignal): Promise<string> {
    const first = this.#port;
    let refused: unknown;
    try {
      return await post(this.#host, first, exchange, signal);
    } catch (err) {
      if (!isRefused(err) || !WEMO_PORTS.includes(first)) throw err;
      refused = err;
    }
    // Refusals on a LAN come back in a round trip, so walking the range costs little.
    for (const port of WEMO_PORTS) {
      if (port === first) continue;
      try {
        const reply = await post(this.#host, port, exchange, signal);
        this.#port = port;
        return reply;
      } catch (err) {
        if (!isRefused(err)) throw err;
      }
    }
    throw deviceError(
      `${this.#host}:${first}`,
      `refused the connection, and so did every other port of ${WEMO_PORTS[0]}-${WEMO_PORTS.at(-1)}`,
      refused,
    );
  }
}
