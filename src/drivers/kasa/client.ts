import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, FrameTooLargeError, KASA_PORT } from './protocol.js';

/**
 * A client for one TP-Link Kasa plug or bulb. Pure: it knows nothing of hearth and imports only
 * node built-ins.
 *
 * One TCP connection per command, as the devices expect; nothing is kept open between calls,
 * so a plug that reboots or changes hands on the LAN costs nothing to recover from.
 */

const SYSTEM = 'system';
const LIGHTING = 'smartlife.iot.smartbulb.lightingservice';

/** Whether the device switches a relay (plugs, switches) or a light (bulbs, strips). */
export type KasaDeviceType = 'plug' | 'bulb';

type JsonObject = Record<string, unknown>;

export interface KasaClientOptions {
  host: string;
  /** Defaults to 9999, the port every Kasa device listens on. */
  port?: number;
}

export class KasaClient {
  readonly host: string;
  readonly port: number;
  /** Learnt from the first sysinfo; decides which command switches the device. */
  private type: KasaDeviceType | undefined;

  constructor(opts: KasaClientOptions) {
    this.host = opts.host;
    this.port = opts.port ?? KASA_PORT;
  }

  /** `kasa host:port`, the prefix of every error message. */
  get label(): string {
    return `kasa ${this.host}:${this.port}`;
  }

  /** The device type, once a sysinfo has been read; undefined before. */
  get deviceType(): KasaDeviceType | undefined {
    return this.type;
  }

  /** Reads the device's full sysinfo and learns from it whether it is a plug or a bulb. */
  async getSysinfo(signal: AbortSignal): Promise<JsonObject> {
    const reply = await this.request(SYSTEM, 'get_sysinfo', {}, signal);
    this.type = detectType(reply);
    return reply;
  }

  /** Reads whether the relay (plug) or light (bulb) is on. */
  async getState(signal: AbortSignal): Promise<boolean> {
    const info = await this.getSysinfo(signal);
    return this.stateFromSysinfo(info);
  }

  /**
   * Switches the device and resolves with its state afterwards. A bulb reports its new light
   * state in the reply; a plug's reply carries none, so an err_code of 0 means the requested
   * state holds (no second connection to re-read it).
   */
  async setState(on: boolean, signal: AbortSignal): Promise<boolean> {
    // The command differs by type and a plug cannot be told from a bulb by its address, so
    // the first set on a fresh client reads the sysinfo once.
    if (this.type === undefined) await this.getSysinfo(signal);
    const type = this.type;
    const value = on ? 1 : 0;
    if (type === 'bulb') {
      const reply = await this.request(LIGHTING, 'transition_light_state', { on_off: value }, signal);
      const reported = reply.on_off;
      if (reported === 0 || reported === 1) return reported === 1;
      return on;
    }
    await this.request(SYSTEM, 'set_relay_state', { state: value }, signal);
    return on;
  }

  private stateFromSysinfo(info: JsonObject): boolean {
    if (this.type === 'bulb') {
      const light = info.light_state;
      const onOff = isObject(light) ? light.on_off : undefined;
      if (onOff === 0 || onOff === 1) return onOff === 1;
      throw new Error(`${this.label} sent a sysinfo without light_state.on_off`);
    }
    const relay = info.relay_state;
    if (relay === 0 || relay === 1) return relay === 1;
    throw new Error(`${this.label} sent a sysinfo without relay_state`);
  }

  /** Sends `{module: {method: args}}` and returns the method's reply once its err_code is 0. */
  private async request(
    module: string,
    method: string,
    args: JsonObject,
    signal: AbortSignal,
  ): Promise<JsonObject> {
    const raw = await this.exchange(JSON.stringify({ [module]: { [method]: args } }), signal);
    let reply: unknown;
    try {
      reply = JSON.parse(raw);
    } catch {
      throw new Error(`${this.label} sent a reply that is not JSON: ${preview(raw)}`);
    }
    const moduleReply = isObject(reply) ? reply[module] : undefined;
    if (!isObject(moduleReply)) {
      throw new Error(`${this.label} sent a reply without ${module}: ${preview(raw)}`);
    }
    // An unknown module is refused at module level, an unknown method at method level.
    this.checkErrCode(moduleReply);
    const methodReply = moduleReply[method];
    if (!isObject(methodReply)) {
      throw new Error(`${this.label} sent a reply without ${module}.${method}: ${preview(raw)}`);
    }
    this.checkErrCode(methodReply);
    return methodReply;
  }

  private checkErrCode(reply: JsonObject): void {
    const code = reply.err_code;
    if (code === undefined || code === 0) return;
    const msg = typeof reply.err_msg === 'string' ? reply.err_msg : 'no err_msg';
    throw new Error(`${this.label} answered err_code ${String(code)}: ${msg}`);
  }

  /** One connection: write the request, read exactly one framed reply, close. */
  private exchange(payload: string, signal: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (signal.aborted) {
        reject(this.abortError(signal));
        return;
      }
      const decoder = new FrameDecoder();
      let settled = false;
      let socket: Socket | undefined;

      const finish = (err: Error | undefined, reply?: string): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        socket?.destroy();
        if (err) reject(err);
        else resolve(reply as string);
      };
      const onAbort = (): void => finish(this.abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });

      socket = connect({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      socket.on('connect', () => socket?.write(encodeFrame(payload)));
      socket.on('data', (chunk: Buffer) => {
        let frames: Buffer[];
        try {
          frames = decoder.push(chunk);
        } catch (err) {
          const what = err instanceof FrameTooLargeError ? err.message : String(err);
          finish(new Error(`${this.label} ${what}`, { cause: err }));
          return;
        }
        const first = frames[0];
        if (first) finish(undefined, first.toString('utf8'));
      });
      socket.on('error', (err: NodeJS.ErrnoException) => finish(this.socketError(err)));
      socket.on('close', () => finish(new Error(`${this.label} closed the connection before a whole reply`)));
    });
  }

  private abortError(signal: AbortSignal): Error {
    const reason: unknown = signal.reason;
    const why = reason instanceof Error && reason.name === 'TimeoutError' ? 'the deadline passed' : 'aborted';
    const err = new Error(`${this.label} did not answer: ${why}`, { cause: reason });
    // Keeps the standard name, so callers that test for a timeout or an abort still can.
    if (reason instanceof Error && (reason.name === 'TimeoutError' || reason.name === 'AbortError')) {
      err.name = reason.name;
    }
    return err;
  }

  private socketError(err: NodeJS.ErrnoException): Error {
    const what = SOCKET_ERRORS[err.code ?? ''] ?? `failed: ${err.message}`;
    const code = err.code && !what.includes(err.code) ? ` (${err.code})` : '';
    return new Error(`${this.label} ${what}${code}`, { cause: err });
  }
}

const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'refused the connection',
  ECONNRESET: 'reset the connection',
  EHOSTUNREACH: 'is unreachable',
  ENETUNREACH: 'is on a network this host cannot reach',
  ENOTFOUND: 'has a host name that does not resolve',
  EAI_AGAIN: 'has a host name that could not be resolved just now',
  ETIMEDOUT: 'did not accept the connection in time',
  EPIPE: 'closed the connection while the request was being sent',
};

function detectType(info: JsonObject): KasaDeviceType {
  const declared = [info.mic_type, info.type].filter((v): v is string => typeof v === 'string');
  if (declared.some((t) => t.toUpperCase().includes('BULB'))) return 'bulb';
  if (isObject(info.light_state)) return 'bulb';
  return 'plug';
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The start of a bad reply, on one line, so an error message stays readable. */
function preview(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
