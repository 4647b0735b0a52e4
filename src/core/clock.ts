/** Time as the runtime sees it; tests pass a fake one for schedules. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

export interface Timer {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * The wall-clock time in a timezone as `HHMM`, zero-padded, 24-hour. Uses the IANA database
 * that ships with Node, so DST changes need no update of hearth.
 */
export function clocktime(epochMs: number, timeZone: string): string {
  let fmt = formatters.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, fmt);
  }
  let hh = '00';
  let mm = '00';
  for (const part of fmt.formatToParts(epochMs)) {
    if (part.type === 'hour') hh = part.value;
    else if (part.type === 'minute') mm = part.value;
  }
  return hh + mm;
}

/** True if `timeZone` is a zone the runtime knows. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
    return true;
  } catch {
    return false;
  }
}
