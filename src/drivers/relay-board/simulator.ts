/**
 * The Arduino relay board as a real serial peer over a pseudo-terminal: the device of tests,
 * benchmarks, the demo and `hearth sim sprinklers`. hearth opens `path` as if it were
 * /dev/ttyACM0; the simulator answers like the firmware, keeps its dead-man, and records what
 * every relay did and when, so tests assert on the valves rather than on hearth's word.
 *
 * What it models: answers to `<n>,on|off`; ERROR for a relay the board lacks or a line it
 * cannot read; a relay drops `deadmanMs` after its last `on`; a banner line when it boots.
 * What it cannot: a pty does not show the host opening the port, so the board "boots" (all
 * relays off, banner) when the simulator starts, when it is plugged back, and on `reset()`, not
 * on every open; a banner written while no host has the port open is lost, as on a real board.
 * Unplugging only pulls the USB cable: the board is powered on its own, as relay boards driving
 * 24 V valves are, so relays stay as they are until the dead-man drops them.
 */
import { EventEmitter } from 'node:events';
import type { SerialPort } from 'serialport';
import type { Simulator } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';
import { PtyPair } from '../../transport/pty.js';
import { openSerialPort } from '../../transport/serial-port.js';
import {
  BAUD_RATE,
  BOARD_DEADMAN_MS,
  formatError,
  formatInfo,
  isRelayNumber,
  LINE_END,
  MAX_RELAY,
  parseCommand,
} from './protocol.js';

/** Why a relay changed: a command, the dead-man, or the board booting. */
export type RelayCause = 'on' | 'off' | 'deadman' | 'reset';

/** One change of one relay; refreshes of a relay that is already on are not events. */
export interface RelayEvent {
  /** Epoch ms. */
  at: number;
  relay: number;
  on: boolean;
  cause: RelayCause;
}

/** One line the host sent, line end removed. */
export interface ReceivedLine {
  at: number;
  line: string;
}

export interface RelayBoardSimulatorOptions {
  /** Where the device end of the pty goes; hearth's config `path` points here. */
  path: string;
  /** How many relays the board has; default 8. */
  relays?: number;
  /** A relay drops this long after its last `on`; default 30000 like the board. */
  deadmanMs?: number;
  log?: Logger;
}

export interface RelayBoardSimulator {
  /** The device end, for hearth to open. */
  readonly path: string;
  readonly relays: number;
  readonly deadmanMs: number;
  /** Reads and obeys commands but answers nothing, as a board with a broken TX line. */
  silent: boolean;
  /** Every relay change, oldest first (the oldest are dropped past 10000). */
  readonly events: readonly RelayEvent[];
  /** Every line the host sent, oldest first (the oldest are dropped past 10000). */
  readonly received: readonly ReceivedLine[];
  /** True while the cable is in. */
  readonly plugged: boolean;
  isOn(relay: number): boolean;
  /** The relays that are on now, ascending. */
  onRelays(): number[];
  /** Writes text to the host as it is, line ends included or not: garbage, partial lines, fake answers. */
  sendRaw(text: string): Promise<void>;
  /**
   * Resolves with the first event from index `since` on (default 0: any recorded so far) that
   * `match` takes; rejects after `timeoutMs` (default 5000).
   */
  waitForEvent(
    match: (e: RelayEvent) => boolean,
    opts?: { since?: number; timeoutMs?: number },
  ): Promise<RelayEvent>;
  /** Resolves with the event that turned `relay` off: the last one if it is off now, else the next. */
  waitForOff(relay: number, timeoutMs?: number): Promise<RelayEvent>;
  /** Pulls the cable: the pty vanishes, hearth's port fails; the board keeps running. */
  unplug(): Promise<void>;
  /** Plugs it back: the pty comes back at the same path, the board boots (relays off, banner). */
  plug(): Promise<void>;
  /** The board reboots (a brown-out, the reset button): every relay off, then the banner. */
  reset(): void;
  /** Stops everything and removes the pty. */
  close(): Promise<void>;
}

/** The board's boot banner; not an answer, so hearth must ignore it while the port settles. */
export const BANNER = 'relay board ready';
const MAX_RECORDS = 10_000;
const MAX_LINE = 64;

function printable(text: string): string {
  return JSON.stringify(text.length > 32 ? `${text.slice(0, 32)}...` : text).slice(1, -1);
}

/** Starts a simulated relay board; resolves once its pty exists and it listens on it. */
export async function startRelayBoardSimulator(
  opts: RelayBoardSimulatorOptions,
): Promise<RelayBoardSimulator> {
  const relays = opts.relays ?? 8;
  const deadmanMs = opts.deadmanMs ?? BOARD_DEADMAN_MS;
  if (!isRelayNumber(relays)) throw new RangeError(`relays must be an integer 1-${MAX_RELAY}, got ${relays}`);
  if (!(deadmanMs > 0)) throw new RangeError(`deadmanMs must be positive, got ${deadmanMs}`);
  const log = opts.log;
  const pair = new PtyPair(opts.path);
  const state = new Array<boolean>(relays + 1).fill(false);
  const deadman = new Map<number, NodeJS.Timeout>();
  const events: RelayEvent[] = [];
  const received: ReceivedLine[] = [];
  const notify = new EventEmitter<{ event: [RelayEvent] }>();
  notify.setMaxListeners(0);
  let port: SerialPort | undefined;
  let buffer = '';
  let closed = false;

  function record<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > MAX_RECORDS) list.splice(0, list.length - MAX_RECORDS);
  }

  function change(relay: number, on: boolean, cause: RelayCause): void {
    if (state[relay] === on) return;
    state[relay] = on;
    const event: RelayEvent = { at: Date.now(), relay, on, cause };
    record(events, event);
    log?.info({ relay, on, cause }, 'simulated relay switched');
    notify.emit('event', event);
  }

  function stopDeadman(relay: number): void {
    clearTimeout(deadman.get(relay));
    deadman.delete(relay);
  }

  function set(relay: number, on: boolean): void {
    stopDeadman(relay);
    if (on) {
      // Each `on` restarts this relay's own dead-man, as the firmware does.
      deadman.set(
        relay,
        setTimeout(() => {
          deadman.delete(relay);
          change(relay, false, 'deadman');
        }, deadmanMs),
      );
    }
    change(relay, on, on ? 'on' : 'off');
  }

  function boot(): void {
    for (let r = 1; r <= relays; r++) {
      stopDeadman(r);
      change(r, false, 'reset');
    }
    write(BANNER + LINE_END);
  }

  function write(text: string): void {
    port?.write(text, (err) => {
      if (err) log?.debug({ err: err.message }, 'simulated relay board could not write');
    });
  }

  function answer(line: string): void {
    if (!sim.silent) write(line + LINE_END);
  }

  function onLine(raw: string): void {
    const line = raw.replace(/\r$/, '');
    record(received, { at: Date.now(), line });
    if (line === '') return;
    const cmd = parseCommand(line);
    if (cmd.type === 'bad') {
      answer(formatError(`cannot read "${printable(line)}"; send <relay>,on or <relay>,off`));
      return;
    }
    if (cmd.relay > relays) {
      answer(formatError(`no relay ${cmd.relay}; this board has relays 1-${relays}`));
      return;
    }
    // Switch first, then answer: when the host reads the answer the relay has changed.
    set(cmd.relay, cmd.on);
    answer(formatInfo(cmd.relay, cmd.on));
  }

  function onData(chunk: Buffer): void {
    buffer += chunk.toString('latin1');
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
    }
    if (buffer.length > MAX_LINE) {
      buffer = '';
      answer(formatError('line too long'));
    }
  }

  async function openPort(): Promise<void> {
    const p = openSerialPort({ path: pair.simPath, baudRate: BAUD_RATE, autoOpen: false });
    await new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(err) : resolve())));
    buffer = '';
    p.on('data', onData);
    p.on('error', (err) => log?.debug({ err: err.message }, 'simulated relay board port failed'));
    p.on('close', () => {
      if (port === p) port = undefined;
    });
    port = p;
  }

  async function closePort(): Promise<void> {
    const p = port;
    port = undefined;
    if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
  }

  function waitForEvent(
    match: (e: RelayEvent) => boolean,
    { since = 0, timeoutMs = 5000 }: { since?: number; timeoutMs?: number } = {},
  ): Promise<RelayEvent> {
    const found = events.slice(since).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onEvent = (e: RelayEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        notify.off('event', onEvent);
        resolve(e);
      };
      const timer = setTimeout(() => {
        notify.off('event', onEvent);
        reject(new Error(`no matching relay event within ${timeoutMs} ms; relays on: [${sim.onRelays()}]`));
      }, timeoutMs);
      notify.on('event', onEvent);
    });
  }

  const sim: RelayBoardSimulator = {
    path: pair.devicePath,
    relays,
    deadmanMs,
    silent: false,
    events,
    received,
    get plugged() {
      return pair.plugged && port !== undefined;
    },
    isOn: (relay) => state[relay] === true,
    onRelays: () => state.flatMap((on, r) => (on ? [r] : [])),
    async sendRaw(text) {
      const p = port;
      if (!p) throw new Error('the simulated relay board is unplugged');
      await new Promise<void>((resolve, reject) => p.write(text, (err) => (err ? reject(err) : resolve())));
      await new Promise<void>((resolve) => p.drain(() => resolve()));
    },
    waitForEvent,
    waitForOff(relay, timeoutMs = 5000) {
      if (!sim.isOn(relay)) {
        const last = events.findLast((e) => e.relay === relay);
        if (last && !last.on) return Promise.resolve(last);
        return Promise.reject(new Error(`relay ${relay} has not been on`));
      }
      return waitForEvent((e) => e.relay === relay && !e.on, { since: events.length, timeoutMs });
    },
    async unplug() {
      await closePort();
      await pair.unplug();
    },
    async plug() {
      if (closed) throw new Error('the simulated relay board is closed');
      await pair.plug();
      await openPort();
      boot();
    },
    reset: boot,
    async close() {
      closed = true;
      for (const r of [...deadman.keys()]) stopDeadman(r);
      await closePort();
      await pair.unplug();
    },
  };

  await sim.plug();
  return sim;
}

/** The simulator as the runtime (`simulate: true`) and `hearth sim sprinklers` start it. */
export const simulator: Simulator = {
  transport: 'serial',
  start: ({ path, log }) => startRelayBoardSimulator({ path, log }),
};
