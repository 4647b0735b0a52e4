/**
 * A MrCoffeeBot v2.0 board over a real pseudo-terminal: the peer of tests, benchmarks, the
 * demo and `hearth sim coffee`. It keeps the firmware's rules itself, so a test sees what a
 * real pot would do when hearth crashes, hangs or talks nonsense:
 *
 * - the heater drops {@link HEATER_DEADMAN_MS} after the last `B+1` (each `B+1` restarts the
 *   count); `B+0` drops it at once;
 * - the board reboots (heater off, banner) {@link REBOOT_AFTER_MS} after the last valid command;
 * - `RESET` answers its status line, then reboots;
 * - anything that is not exactly a command is ignored: no answer, and it does not count as
 *   a valid command;
 * - the banner is printed at start and after every reboot.
 *
 * It records every heater change with its cause and time, and every line it received, so
 * tests can assert on them.
 */
import type { SerialPort } from 'serialport';
import type { Simulator } from '../../core/driver.js';
import { PtyPair } from '../../transport/pty.js';
import { openSerialPort } from '../../transport/serial-port.js';
import {
  BANNER,
  BAUD_RATE,
  CRC_ERROR_TEMPERATURE,
  formatStatus,
  HEATER_DEADMAN_MS,
  isCommand,
  REBOOT_AFTER_MS,
} from './protocol.js';

/** Why the heater changed: the command that did it, or the firmware's own rule. */
export type HeaterCause = 'boot' | 'B+1' | 'B+0' | 'deadman' | 'reboot' | 'RESET' | 'test';

export interface HeaterEvent {
  /** Epoch ms. */
  at: number;
  /** performance.now() of this process, for sub-millisecond intervals. */
  t: number;
  heater: boolean;
  cause: HeaterCause;
}

export interface ReceivedLine {
  at: number;
  t: number;
  line: string;
  /** A command the firmware knows; anything else is ignored. */
  valid: boolean;
}

/** The logger methods the simulator uses; hearth's pino logger fits. */
export interface SimLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CoffeeSimulatorOptions {
  /** Where the device end of the pseudo-terminal appears: what hearth opens. */
  path: string;
  /** Where the simulator's own end goes; default `${path}.sim`. */
  simPath?: string;
  /** Heater changes are logged at info, one JSON line each: a record for another process. */
  log?: SimLog;
  /** The firmware's rules; change them only to test the simulator itself. */
  deadmanMs?: number;
  rebootAfterMs?: number;
  /** Starting readings. */
  waterIn?: number;
  temperatureC?: number;
}

export interface CoffeeSimulator {
  /** The device end of the pseudo-terminal. */
  readonly path: string;
  readonly heater: boolean;
  /** Every heater change, oldest first; the first is the heater off at boot. */
  readonly events: readonly HeaterEvent[];
  /** Every line received, oldest first (the last {@link MAX_RECORDS}). */
  readonly received: readonly ReceivedLine[];
  /** Epoch ms and performance.now() of the last `B+1`; undefined before the first. */
  readonly lastHeartbeatAt: number | undefined;
  readonly lastHeartbeatT: number | undefined;
  /** Boots so far, the first included. */
  readonly boots: number;
  /** Answer `T+-1000.0`, as the firmware does when its sensor fails the CRC check. */
  crcError: boolean;
  /** Still obey commands, but send nothing back (a broken TX line). */
  silent: boolean;
  /** Answer this many ms after a command instead of at once (a slow board); default 0. */
  answerDelayMs: number;
  /** The readings; a test may set them (e.g. an implausible 150 °C). */
  waterIn: number;
  temperatureC: number;
  readonly plugged: boolean;
  /** Writes raw text to hearth: garbage, half a line, a stray status. */
  sendRaw(text: string): Promise<void>;
  /** Forces the heater, as a fault in the board would; the firmware rules still apply. */
  setHeater(on: boolean): void;
  /** Reboots as the watchdog does: heater off, banner. */
  reboot(): void;
  /**
   * Resolves with the heater event that put the heater in state `on`: the current one if it is
   * already so, else the next. Rejects after `timeoutMs`.
   */
  waitForHeater(on: boolean, timeoutMs?: number): Promise<HeaterEvent>;
  /** The USB cable is pulled: the pty disappears. The board keeps running its rules. */
  unplug(): Promise<void>;
  /** The cable is back: the pty reappears at the same path. */
  plug(): Promise<void>;
  close(): Promise<void>;
}

export const MAX_RECORDS = 10_000;

/** How often the water and temperature move. */
const PHYSICS_MS = 100;
const BOIL_TARGET_C = 95;
const ROOM_C = 21;
const EMPTY_IN = 8;

/** Starts a simulated board; resolves once its pty exists and its end is open. */
export async function startCoffeeSimulator(opts: CoffeeSimulatorOptions): Promise<CoffeeSimulator> {
  const deadmanMs = opts.deadmanMs ?? HEATER_DEADMAN_MS;
  const rebootAfterMs = opts.rebootAfterMs ?? REBOOT_AFTER_MS;
  const pair = new PtyPair(opts.path, opts.simPath);
  const events: HeaterEvent[] = [];
  const received: ReceivedLine[] = [];
  const waiters = new Set<{ on: boolean; resolve: (e: HeaterEvent) => void }>();
  let port: SerialPort | undefined;
  let buffer = '';
  let heater = false;
  let lastHeartbeatAt: number | undefined;
  let lastHeartbeatT: number | undefined;
  let boots = 0;
  let deadman: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let lastValidT = performance.now();
  let closed = false;

  const record = <T>(list: T[], item: T) => {
    list.push(item);
    if (list.length > MAX_RECORDS) list.splice(0, list.length - MAX_RECORDS);
  };

  function setHeater(on: boolean, cause: HeaterCause): void {
    if (on) armDeadman();
    else clearTimeout(deadman);
    if (on === heater && cause !== 'boot') return;
    heater = on;
    const event: HeaterEvent = { at: Date.now(), t: performance.now(), heater: on, cause };
    record(events, event);
    opts.log?.info({ heater: on, cause, at: event.at }, 'coffee simulator heater');
    for (const w of waiters) {
      if (w.on === on) {
        waiters.delete(w);
        w.resolve(event);
      }
    }
  }

  // Timers can fire a little early against performance.now(); the rule is checked against the
  // real time since the last B+1, so the heater never drops before the firmware would drop it.
  function armDeadman(): void {
    clearTimeout(deadman);
    const check = () => {
      const left = deadmanMs - (performance.now() - (lastHeartbeatT ?? 0));
      if (left > 0) deadman = setTimeout(check, Math.ceil(left));
      else setHeater(false, 'deadman');
    };
    deadman = setTimeout(check, deadmanMs);
  }

  function armWatchdog(): void {
    clearTimeout(watchdog);
    const check = () => {
      const left = rebootAfterMs - (performance.now() - lastValidT);
      if (left > 0) watchdog = setTimeout(check, Math.ceil(left));
      else boot('reboot');
    };
    watchdog = setTimeout(check, rebootAfterMs);
  }

  function boot(cause: 'boot' | 'reboot' | 'RESET'): void {
    boots++;
    lastHeartbeatT = undefined;
    setHeater(false, cause);
    lastValidT = performance.now();
    armWatchdog();
    write(`${BANNER}\n`);
  }

  function write(text: string): void {
    if (sim.silent || !port?.isOpen) return;
    port.write(Buffer.from(text, 'latin1'));
  }

  function answer(text: string): void {
    if (sim.answerDelayMs > 0) setTimeout(() => write(text), sim.answerDelayMs).unref();
    else write(text);
  }

  function status(): string {
    return formatStatus({
      waterIn: sim.waterIn,
      temperatureC: sim.crcError ? CRC_ERROR_TEMPERATURE : sim.temperatureC,
      heater,
    });
  }

  function onLine(line: string): void {
    const valid = isCommand(line);
    const t = performance.now();
    record(received, { at: Date.now(), t, line, valid });
    if (!valid) return;
    lastValidT = t;
    armWatchdog();
    switch (line) {
      case 'B+1':
        lastHeartbeatAt = Date.now();
        lastHeartbeatT = t;
        setHeater(true, 'B+1');
        break;
      case 'B+0':
        setHeater(false, 'B+0');
        break;
      case 'RESET':
        setHeater(false, 'RESET');
        write(`${status()}\n`);
        boot('RESET');
        return;
      case 'S+?':
        break;
    }
    answer(`${status()}\n`);
  }

  function onData(chunk: Buffer): void {
    buffer += chunk.toString('latin1');
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      onLine(line);
      nl = buffer.indexOf('\n');
    }
    // The firmware's input buffer is small: an endless line is dropped, not kept.
    if (buffer.length > 64) buffer = '';
  }

  async function openEnd(): Promise<void> {
    const p = openSerialPort({ path: pair.simPath, baudRate: BAUD_RATE, autoOpen: false });
    p.on('data', onData);
    p.on('error', (err) => opts.log?.warn({ err: err.message }, 'coffee simulator port error'));
    await new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(err) : resolve())));
    buffer = '';
    port = p;
  }

  async function closeEnd(): Promise<void> {
    const p = port;
    port = undefined;
    if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
  }

  const physics = setInterval(() => {
    if (heater) {
      sim.temperatureC += (BOIL_TARGET_C - sim.temperatureC) * 0.08;
      // Near the boil the pump lifts water over the grounds: the level sinks.
      if (sim.temperatureC > 85) sim.waterIn = Math.min(EMPTY_IN, sim.waterIn + 0.02);
    } else {
      sim.temperatureC += (ROOM_C - sim.temperatureC) * 0.005;
    }
  }, PHYSICS_MS);
  physics.unref();

  const sim: CoffeeSimulator = {
    path: pair.devicePath,
    get heater() {
      return heater;
    },
    events,
    received,
    get lastHeartbeatAt() {
      return lastHeartbeatAt;
    },
    get lastHeartbeatT() {
      return lastHeartbeatT;
    },
    get boots() {
      return boots;
    },
    crcError: false,
    silent: false,
    answerDelayMs: 0,
    waterIn: opts.waterIn ?? 1.5,
    temperatureC: opts.temperatureC ?? ROOM_C,
    get plugged() {
      return pair.plugged && port !== undefined;
    },
    async sendRaw(text) {
      const p = port;
      if (!p?.isOpen) throw new Error('the coffee simulator is unplugged');
      await new Promise<void>((resolve, reject) =>
        p.write(Buffer.from(text, 'latin1'), (err) => (err ? reject(err) : resolve())),
      );
    },
    setHeater(on) {
      setHeater(on, 'test');
    },
    reboot() {
      boot('reboot');
    },
    waitForHeater(on, timeoutMs = 5000) {
      const last = events.at(-1);
      if (heater === on && last) return Promise.resolve(last);
      return new Promise<HeaterEvent>((resolve, reject) => {
        const waiter = {
          on,
          resolve: (e: HeaterEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`the simulated heater did not turn ${on ? 'on' : 'off'} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async unplug() {
      await closeEnd();
      await pair.unplug();
    },
    async plug() {
      if (closed) throw new Error('the coffee simulator is closed');
      await pair.plug();
      await openEnd();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(physics);
      clearTimeout(deadman);
      clearTimeout(watchdog);
      await closeEnd();
      await pair.unplug();
    },
  };

  await pair.plug();
  try {
    await openEnd();
  } catch (err) {
    await sim.close();
    throw err;
  }
  boot('boot');
  return sim;
}

/** The simulator as the runtime (`simulate: true`) and `hearth sim coffee` start it. */
export const simulator: Simulator = {
  transport: 'serial',
  start: async ({ path, log }) => {
    const sim = await startCoffeeSimulator({ path, log });
    return { path: sim.path, close: () => sim.close() };
  },
};
