/**
 * The Arduino sprinkler relay board's serial protocol. Pure: knows nothing of hearth or of ports.
 *
 * - 9600 baud; every line ends in `\r\n` both ways.
 * - host → board: `<n>,on` or `<n>,off`, n the relay number, 1-based.
 * - board → host: `INFO: requesting relay <n> change to state on|off`, or `ERROR: <text>`.
 * - The board drops a relay after ~30 s without an `on` for it (its dead-man), so the host
 *   resends `on` every second while a zone must stay open.
 * - Opening the port resets the board; it boots for ~2 s and may print a banner line.
 */

export const BAUD_RATE = 9600;
export const LINE_END = '\r\n';
/** How long the board keeps a relay on without a refresh. */
export const BOARD_DEADMAN_MS = 30_000;
/** The highest relay number hearth sends or accepts: boards have 1 to 16 relays; 99 leaves room. */
export const MAX_RELAY = 99;

/** What the board said, read strictly: anything not exactly INFO or ERROR is garbage. */
export type Answer =
  | { type: 'info'; relay: number; on: boolean }
  | { type: 'error'; text: string }
  | { type: 'garbage'; line: string };

/** A line the host sent, as the board reads it. */
export type Command = { type: 'set'; relay: number; on: boolean } | { type: 'bad'; line: string };

const INFO = /^INFO: requesting relay ([1-9][0-9]?) change to state (on|off)$/;
// Printable ASCII only: a line with noise in it is garbage, even if it starts with ERROR.
const ERROR = /^ERROR: ([\x20-\x7e]+)$/;
const COMMAND = /^([1-9][0-9]?),(on|off)$/;

export function isRelayNumber(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_RELAY;
}

/** The line (without its line end) that switches `relay`. */
export function formatCommand(relay: number, on: boolean): string {
  if (!isRelayNumber(relay)) throw new RangeError(`relay must be an integer 1-${MAX_RELAY}, got ${relay}`);
  return `${relay},${on ? 'on' : 'off'}`;
}

/** The line (without its line end) the board answers a good command with. */
export function formatInfo(relay: number, on: boolean): string {
  return `INFO: requesting relay ${relay} change to state ${on ? 'on' : 'off'}`;
}

export function formatError(text: string): string {
  return `ERROR: ${text}`;
}

/** Reads one line from the board, its line end already removed. */
export function parseAnswer(line: string): Answer {
  const info = INFO.exec(line);
  if (info) return { type: 'info', relay: Number(info[1]), on: info[2] === 'on' };
  const error = ERROR.exec(line);
  if (error?.[1] !== undefined) return { type: 'error', text: error[1] };
  return { type: 'garbage', line };
}

/** True if `answer` confirms the command that switches `relay` to `on`. */
export function confirms(answer: Answer, relay: number, on: boolean): boolean {
  return answer.type === 'info' && answer.relay === relay && answer.on === on;
}

/** Reads one line from the host as the board does, its line end already removed. */
export function parseCommand(line: string): Command {
  const m = COMMAND.exec(line);
  if (!m) return { type: 'bad', line };
  return { type: 'set', relay: Number(m[1]), on: m[2] === 'on' };
}
