import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Simulator, SimulatorHandle } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';
import { encodeFrame, FrameDecoder } from './protocol.js';

/**
 * A Kasa plug or bulb on a real loopback socket, speaking the real framed XOR protocol, for
 * tests, benchmarks, the demo and `hearth sim kasa`.
 */

/**
 * How the simulated device behaves:
 * - `ok` answers like a real device;
 * - `hang` accepts and reads the request but never answers (a wedged device);
 * - `garbage` answers with a well-framed payload that is not JSON;
 * - `close` closes the connection without answering.
 */
export type KasaSimulatorMode = 'ok' | 'hang' | 'garbage' | 'close';

export interface KasaSimulatorOptions {
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port; read the real one from `port`. */
  port?: number;
  /** Whether the relay or light starts on; defaults to false. */
  initial?: boolean;
  /** Defaults to 'plug' (an HS103); 'bulb' is a KL110. */
  model?: 'plug' | 'bulb';
  /** Requests and replies are logged at debug. */
  log?: Logger;
}

/** One request the simulator received, decoded. */
export interface KasaSimulatorCall {
  /** The parsed JSON, or the raw text when it was not JSON. */
  request: unknown;
  /** Epoch ms. */
  at: number;
}

const MAX_CALLS = 1000;
const LIGHTING = 'smartlife.iot.smartbulb.lightingservice';

type JsonObject = Record<string, unknown>;

/** A running simulated device. `on` and `mode` may be changed at any time by the test. */
export class KasaSimulator implements SimulatorHandle {
  readonly host: string;
  readonly port: number;
  readonly model: 'plug' | 'bulb';
  /** The relay (plug) or light (bulb) state. */
  on: boolean;
  mode: KasaSimulatorMode = 'ok';
  /** The last {@link MAX_CALLS} requests, oldest first. */
  readonly calls: KasaSimulatorCall[] = [];

  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger | undefined;
  private readonly mac: string;
  private onSince: number;
  private closed: Promise<void> | undefined;

  /** @internal Use {@link startKasaSimulator}. */
  constructor(server: Server, host: string, port: number, options: KasaSimulatorOptions) {
    this.server = server;
    this.host = host;
    this.port = port;
    this.model = options.model ?? 'plug';
    this.on = options.initial ?? false;
    this.onSince = Date.now();
    this.log = options.log;
    // Derived from the port, so two simulators side by side look like two devices.
    const tail = [(port >> 8) & 0xff, port & 0xff, this.model === 'bulb' ? 2 : 1];
    this.mac = ['50', 'C7', 'BF', ...tail.map((b) => b.toString(16).padStart(2, '0').toUpperCase())].join(
      ':',
    );
  }

  /** @internal */
  accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // A client that resets mid-request is not the simulator's problem.
    socket.on('error', () => socket.destroy());
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) this.handle(socket, frame.toString('utf8'));
    });
  }

  /** Stops listening and destroys every connection, hung ones included. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    return this.closed;
  }

  private handle(socket: Socket, text: string): void {
    let request: unknown;
    try {
      request = JSON.parse(text);
    } catch {
      request = text;
    }
    this.calls.push({ request, at: Date.now() });
    if (this.calls.length > MAX_CALLS) this.calls.splice(0, this.calls.length - MAX_CALLS);
    this.log?.debug({ port: this.port, mode: this.mode, request }, 'kasa simulator request');

    switch (this.mode) {
      case 'hang':
        return;
      case 'close':
        socket.destroy();
        return;
      case 'garbage':
        socket.write(encodeFrame(Buffer.concat([Buffer.from('<html>'), randomBytes(16)])));
        return;
      case 'ok':
        break;
    }
    // A real device drops a connection whose request it cannot parse.
    if (!isObject(request)) {
      socket.destroy();
      return;
    }
    const reply = this.answer(request);
    this.log?.debug({ port: this.port, reply }, 'kasa simulator reply');
    socket.write(encodeFrame(JSON.stringify(reply)));
  }

  /** Answers every module and method of a request, as a real device does. */
  private answer(request: JsonObject): JsonObject {
    const reply: JsonObject = {};
    for (const [module, methods] of Object.entries(request)) {
      if (!this.hasModule(module) || !isObject(methods)) {
        reply[module] = { err_code: -1, err_msg: 'module not support' };
        continue;
      }
      const out: JsonObject = {};
      for (const [method, args] of Object.entries(methods)) {
        out[method] = this.call(module, method, isObject(args) ? args : {});
      }
      reply[module] = out;
    }
    return reply;
  }

  private hasModule(module: string): boolean {
    return module === 'system' || (module === LIGHTING && this.model === 'bulb');
  }

  private call(module: string, method: string, args: JsonObject): JsonObject {
    if (module === 'system' && method === 'get_sysinfo') return this.sysinfo();
    if (module === 'system' && method === 'set_relay_state' && this.model === 'plug') {
      if (args.state !== 0 && args.state !== 1) return { err_code: -3, err_msg: 'invalid argument' };
      this.setOn(args.state === 1);
      return { err_code: 0 };
    }
    if (module === LIGHTING && method === 'transition_light_state') {
      if (args.on_off === 0 || args.on_off === 1) this.setOn(args.on_off === 1);
      return { ...this.lightState(), err_code: 0 };
    }
    if (module === LIGHTING && method === 'get_light_state') return { ...this.lightState(), err_code: 0 };
    return { err_code: -2, err_msg: 'member not support' };
  }

  private setOn(on: boolean): void {
    if (on !== this.on) this.onSince = Date.now();
    this.on = on;
  }

  private lightState(): JsonObject {
    const look = { mode: 'normal', hue: 0, saturation: 0, color_temp: 2700, brightness: 100 };
    // A real bulb that is off reports its look under dft_on_state.
    return this.on ? { on_off: 1, ...look } : { on_off: 0, dft_on_state: look };
  }

  private sysinfo(): JsonObject {
    const id = this.mac.replaceAll(':', '');
    const common = {
      alias: `hearth sim ${this.model} ${this.port}`,
      deviceId: `8006${id}`.padEnd(40, '0'),
      oemId: 'FFF22CFF774A0B89F7624BFC6F50D5DE',
      hwId: '60FF6B258734EA6880E186F8C96DDC61',
      rssi: -52,
      latitude_i: 0,
      longitude_i: 0,
      active_mode: 'none',
      err_code: 0,
    };
    if (this.model === 'bulb') {
      return {
        sw_ver: '1.8.11 Build 191113 Rel.105336',
        hw_ver: '1.0',
        model: 'KL110(US)',
        description: 'Kasa Smart Bulb',
        mic_type: 'IOT.SMARTBULB',
        dev_state: 'normal',
        mic_mac: id,
        is_factory: false,
        disco_ver: '1.0',
        ctrl_protocols: { name: 'Linkie', version: '1.0' },
        light_state: this.lightState(),
        is_dimmable: 1,
        is_color: 0,
        is_variable_color_temp: 0,
        heapsize: 302_452,
        ...common,
      };
    }
    return {
      sw_ver: '1.0.8 Build 210121 Rel.171209',
      hw_ver: '5.0',
      model: 'HS103(US)',
      dev_name: 'Smart Wi-Fi Plug Mini',
      mic_type: 'IOT.SMARTPLUGSWITCH',
      type: 'IOT.SMARTPLUGSWITCH',
      feature: 'TIM',
      mac: this.mac,
      status: 'new',
      updating: 0,
      led_off: 0,
      relay_state: this.on ? 1 : 0,
      on_time: this.on ? Math.floor((Date.now() - this.onSince) / 1000) : 0,
      icon_hash: '',
      next_action: { type: -1 },
      ntc_state: 0,
      ...common,
    };
  }
}

/** Starts a simulated Kasa device listening on `host:port` (defaults 127.0.0.1, a free port). */
export async function startKasaSimulator(opts: KasaSimulatorOptions = {}): Promise<KasaSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);
  const sim = new KasaSimulator(server, host, port, opts);
  server.on('connection', (socket) => sim.accept(socket));
  return sim;
}

/** The driver's simulator entry, for the registry, the demo and `hearth sim kasa`. */
export const simulator: Simulator = {
  transport: 'network',
  defaultPort: 9999,
  start: ({ host, port, log }) => startKasaSimulator({ host, port, log }),
};

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
