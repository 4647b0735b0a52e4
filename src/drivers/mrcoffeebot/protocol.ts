/**
 * The MrCoffeeBot v2.0 serial protocol: 115200 baud, `\n`-terminated lines. The host sends
 * `S+?`, `B+1`, `B+0` or `RESET`; every command answers one status line `W+%.2f,T+%.1f,B+%d`.
 * Pure: imports nothing, so the simulator, the driver and other programs share it unchanged.
 */

export const BAUD_RATE = 115_200;

/** What the firmware prints when it boots (power-on, `RESET`, or its own 5 s watchdog). */
export const BANNER = 'MrCoffeeBot v2.0 Booted.';

/** The firmware turns the heater off when this long passes without `B+1`. */
export const HEATER_DEADMAN_MS = 1000;

/** The firmware reboots when this long passes without a valid command. */
export const REBOOT_AFTER_MS = 5000;

/** The temperature the firmware reports when its sensor fails the CRC check. */
export const CRC_ERROR_TEMPERATURE = -1000;

export type Command = 'S+?' | 'B+1' | 'B+0' | 'RESET';

export const COMMANDS: readonly Command[] = ['S+?', 'B+1', 'B+0', 'RESET'];

/** The line for a heater command. */
export function heaterCommand(on: boolean): Command {
  return on ? 'B+1' : 'B+0';
}

export function isCommand(line: string): line is Command {
  return (COMMANDS as readonly string[]).includes(line);
}

/** One status line, decoded. */
export interface Status {
  /** Inches from the sensor down to the water: it grows as the pot empties. */
  waterIn: number;
  /** Degrees C; {@link CRC_ERROR_TEMPERATURE} when the sensor failed its CRC. */
  temperatureC: number;
  heater: boolean;
}

/**
 * Exactly `W+%.2f,T+%.1f,B+%d` as the firmware's printf makes it: two decimals for W, one for
 * T, B 0 or 1, nothing before or after. A line cut short, two lines run together or noise on
 * the wire do not match, so they can never be taken for a status.
 */
const STATUS = /^W\+(-?\d{1,4}\.\d{2}),T\+(-?\d{1,4}\.\d),B\+([01])$/;

/** Decodes a status line; undefined for anything else. */
export function parseStatus(line: string): Status | undefined {
  const m = STATUS.exec(line);
  if (!m) return undefined;
  return { waterIn: Number(m[1]), temperatureC: Number(m[2]), heater: m[3] === '1' };
}

/** The line the firmware sends for `status`, byte for byte. */
export function formatStatus(status: Status): string {
  return `W+${status.waterIn.toFixed(2)},T+${status.temperatureC.toFixed(1)},B+${status.heater ? 1 : 0}`;
}

export function isBanner(line: string): boolean {
  return line === BANNER;
}

/** Readings outside these ranges mean a broken sensor or a misread line, never a real pot. */
export const PLAUSIBLE = {
  /** °C: a kitchen is above -20, and water at sea level boils below 110. */
  temperatureC: { min: -20, max: 110 },
  /** Inches from the sensor to the water: a coffee pot is far shallower than 30. */
  waterIn: { min: 0, max: 30 },
} as const;

/** Why a temperature cannot be trusted, or undefined when it can. */
export function temperatureProblem(t: number): string | undefined {
  if (t === CRC_ERROR_TEMPERATURE) return 'the temperature sensor failed its CRC check (T+-1000.0)';
  if (t < PLAUSIBLE.temperatureC.min || t > PLAUSIBLE.temperatureC.max) {
    return `implausible temperature ${t.toFixed(1)} °C`;
  }
  return undefined;
}

/** Why a water level cannot be trusted, or undefined when it can. */
export function waterProblem(w: number): string | undefined {
  if (w < PLAUSIBLE.waterIn.min || w > PLAUSIBLE.waterIn.max)
    return `implausible water level ${w.toFixed(2)} in`;
  return undefined;
}
