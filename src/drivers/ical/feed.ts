/**
 * Reading an iCal feed and turning it into the occurrences of a time window. Knows nothing of
 * hearth: the driver (index.ts) schedules from what this returns.
 *
 * Recurrences are expanded by node-ical's `expandRecurringEvent`, which applies RRULE, EXDATE
 * and RECURRENCE-ID overrides in the event's own zone (so 09:00 stays 09:00 across DST, and
 * Windows zone names such as `Pacific Standard Time` are mapped to IANA ones). What it leaves
 * to us, and this file adds: instances moved *into* the window from outside it, cancelled
 * instances (STATUS:CANCELLED), and all-day events anchored to hearth's timezone rather than
 * the host's.
 */
import { readFile } from 'node:fs/promises';
import ical, { type CalendarResponse, type EventInstance, type VEvent } from 'node-ical';

/** One occurrence of an event: a single event, or one instance of a recurring one. */
export interface Occurrence {
  /** The event's UID; the instances of a recurring event share it. */
  uid: string;
  summary: string;
  start: Date;
  /** Exclusive: an all-day event of 10 March ends at local midnight starting 11 March. */
  end: Date;
  /** A DATE (not DATE-TIME) event: starts at local midnight of the configured timezone. */
  allDay: boolean;
}

/** Where a feed comes from: exactly one of the two. */
export type FeedSource = { url: string } | { file: string };

/**
 * Why a feed could not be used. `message` is a reason for a person, safe to show and log: it
 * never contains the feed's URL (a secret address for Google calendars).
 */
export class FeedError extends Error {
  override readonly name = 'FeedError';
}

/** A parsed feed. */
export interface Feed {
  calendar: CalendarResponse;
  /** VEVENTs in the feed, overrides of a recurring event counted with it. */
  events: number;
}

/** Bodies larger than this are refused rather than parsed (a busy Google calendar is ~1 MB). */
const MAX_BYTES = 20 * 1024 * 1024;

/**
 * Fetches (http/https, with a deadline) or reads the feed and returns its text. Throws
 * FeedError with a reason such as `fetch failed: HTTP 404` or `fetch failed: no answer within 10000 ms`.
 */
export async function loadFeedText(
  source: FeedSource,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  if ('file' in source) {
    try {
      const text = await readFile(source.file, { encoding: 'utf8', signal: options.signal });
      if (text.length > MAX_BYTES) throw new FeedError(`read failed: larger than ${MAX_BYTES} bytes`);
      return text;
    } catch (err) {
      if (err instanceof FeedError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new FeedError(`read failed: ${code === 'ENOENT' ? `no file ${source.file}` : messageOf(err)}`);
    }
  }
  // One controller per fetch, released in `finally`: AbortSignal.any on the driver's
  // long-lived signal would hang a dependent signal on it at every poll. The deadline is real
  // time (a network wait), not the runtime's clock.
  if (options.signal?.aborted) throw new FeedError('fetch failed: stopped');
  const controller = new AbortController();
  const onStop = () => controller.abort();
  options.signal?.addEventListener('abort', onStop, { once: true });
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  try {
    const res = await fetch(source.url, {
      signal: controller.signal,
      headers: { accept: 'text/calendar, text/plain;q=0.5, */*;q=0.1', 'user-agent': 'hearth' },
      redirect: 'follow',
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new FeedError(`fetch failed: HTTP ${res.status}`);
    }
    const length = Number(res.headers.get('content-length'));
    if (length > MAX_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new FeedError(`fetch failed: larger than ${MAX_BYTES} bytes`);
    }
    const text = await res.text();
    if (text.length > MAX_BYTES) throw new FeedError(`fetch failed: larger than ${MAX_BYTES} bytes`);
    return text;
  } catch (err) {
    if (err instanceof FeedError) throw err;
    if (timedOut) throw new FeedError(`fetch failed: no answer within ${options.timeoutMs} ms`);
    if (options.signal?.aborted) throw new FeedError('fetch failed: stopped');
    // undici says only "fetch failed" and puts what happened in `cause` (ECONNREFUSED ...).
    const cause = (err as { cause?: unknown }).cause;
    throw new FeedError(`fetch failed: ${scrub(messageOf(cause ?? err), source.url)}`);
  } finally {
    clearTimeout(deadline);
    options.signal?.removeEventListener('abort', onStop);
  }
}

/** Parses iCal text. Throws FeedError `not iCal: ...` for anything that is not a whole VCALENDAR. */
export function parseFeed(text: string): Feed {
  const body = text.replace(/^\uFEFF/, '');
  const head = body.trimStart();
  if (!/^BEGIN:VCALENDAR\r?\n/i.test(head)) {
    // A login page, an error page, a captive portal: say what came instead.
    const start = head.slice(0, 40).replace(/\s+/g, ' ');
    throw new FeedError(
      head.length === 0
        ? 'not iCal: the body is empty'
        : `not iCal: it does not start with BEGIN:VCALENDAR (it starts ${JSON.stringify(start)})`,
    );
  }
  if (!/^END:VCALENDAR\s*$/im.test(body)) {
    throw new FeedError('not iCal: no END:VCALENDAR, the feed was cut short');
  }
  let calendar: CalendarResponse;
  try {
    calendar = ical.sync.parseICS(body);
  } catch (err) {
    throw new FeedError(`not iCal: ${messageOf(err)}`);
  }
  let events = 0;
  for (const [key, c] of Object.entries(calendar)) {
    if (key !== 'vcalendar' && c?.type === 'VEVENT') events++;
  }
  return { calendar, events };
}

/**
 * The occurrences that overlap [from, to): those in progress at `from` and those starting
 * before `to`, sorted by start (then end, then uid). `timeZone` (IANA) places all-day events:
 * they run from local midnight to local midnight there.
 */
export function expandOccurrences(
  feed: Feed,
  window: { from: Date; to: Date; timeZone: string },
): Occurrence[] {
  const { from, to, timeZone } = window;
  // node-ical compares all-day dates in the host's zone and pushes `to` to the end of the
  // host's day; a margin of two days on each side covers any host zone, and the exact
  // window is applied below on the real instants.
  const wide = { from: new Date(from.getTime() - 2 * DAY), to: new Date(to.getTime() + 2 * DAY) };
  const seen = new Set<string>();
  const out: Occurrence[] = [];
  const add = (o: Occurrence | undefined) => {
    if (!o || !overlaps(o, from, to)) return;
    const key = `${o.uid}\u0000${o.start.toISOString()}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(o);
  };

  for (const [key, component] of Object.entries(feed.calendar)) {
    if (key === 'vcalendar' || component?.type !== 'VEVENT') continue;
    const event = component as VEvent;
    if (!(event.start instanceof Date) || Number.isNaN(event.start.getTime())) continue;
    // A cancelled series (or single event): none of its instances happen.
    if (isCancelled(event)) continue;
    const uid = event.uid ?? key;
    let instances: EventInstance[];
    try {
      instances = ical.expandRecurringEvent(event, { ...wide, expandOngoing: true });
    } catch {
      // One event node-ical cannot expand (a broken RRULE) must not hide the others.
      continue;
    }
    const used = new Set<EventData>();
    for (const instance of instances) {
      used.add(instance.event);
      // A cancelled override: that one instance does not happen.
      if (isCancelled(instance.event)) continue;
      add(fromInstance(uid, instance, timeZone));
    }
    // An override whose original instant lies outside the searched range is never produced
    // by the expansion, though it may have been moved into the window: add those directly.
    if (event.rrule && event.recurrences) {
      for (const override of new Set(Object.values(event.recurrences))) {
        if (used.has(override) || isCancelled(override) || isExcluded(event, override)) continue;
        add(fromOverride(uid, event, override, timeZone));
      }
    }
  }
  return out.sort(
    (a, b) =>
      a.start.getTime() - b.start.getTime() ||
      a.end.getTime() - b.end.getTime() ||
      (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0),
  );
}

const DAY = 86_400_000;

/** A VEVENT as node-ical gives it, or one of its RECURRENCE-ID overrides. */
type EventData = Omit<VEvent, 'recurrences'>;

function overlaps(o: Occurrence, from: Date, to: Date): boolean {
  const start = o.start.getTime();
  const end = o.end.getTime();
  if (start >= to.getTime()) return false;
  // A zero-length event is "in" the window only if it starts in it.
  return end > from.getTime() || (end === start && start >= from.getTime());
}

function isCancelled(event: EventData): boolean {
  return String(event.status ?? '').toUpperCase() === 'CANCELLED';
}

/** True if the override's RECURRENCE-ID is also an EXDATE (the instance was deleted). */
function isExcluded(event: VEvent, override: EventData): boolean {
  const id = override.recurrenceid;
  if (!(id instanceof Date) || !event.exdate) return false;
  const exdate = event.exdate as Record<string, Date | undefined>;
  return Boolean(exdate[id.toISOString()] ?? (isDateOnly(id) ? exdate[localDayKey(id)] : undefined));
}

function fromInstance(uid: string, instance: EventInstance, timeZone: string): Occurrence {
  const summary = text(instance.summary) || text(instance.event.summary);
  if (!instance.isFullDay) {
    return { uid, summary, start: new Date(instance.start), end: new Date(instance.end), allDay: false };
  }
  // node-ical puts an all-day instance at the host's local midnight of its calendar day.
  const days = Math.max(1, Math.round((instance.end.getTime() - instance.start.getTime()) / DAY));
  return allDay(uid, summary, localDay(instance.start), days, timeZone);
}

function fromOverride(
  uid: string,
  base: VEvent,
  override: EventData,
  timeZone: string,
): Occurrence | undefined {
  const start = override.start;
  if (!(start instanceof Date) || Number.isNaN(start.getTime())) return undefined;
  const summary = text(override.summary) || text(base.summary);
  const baseLength =
    base.end instanceof Date && base.start instanceof Date ? base.end.getTime() - base.start.getTime() : 0;
  const end = override.end instanceof Date ? override.end : new Date(start.getTime() + baseLength);
  if (override.datetype === 'date' || isDateOnly(start)) {
    const days = Math.max(1, Math.round((end.getTime() - start.getTime()) / DAY));
    return allDay(uid, summary, localDay(start), days, timeZone);
  }
  return { uid, summary, start: new Date(start), end: new Date(end), allDay: false };
}

function allDay(uid: string, summary: string, day: CalendarDay, days: number, timeZone: string): Occurrence {
  const start = zonedMidnight(day, timeZone);
  // Counted in calendar days, not 24-hour spans: a day at a DST change is 23 or 25 hours.
  const end = zonedMidnight({ y: day.y, m: day.m, d: day.d + days }, timeZone);
  return { uid, summary, start, end, allDay: true };
}

/** node-ical marks DATE values (no time) with a `dateOnly` flag on the Date. */
function isDateOnly(d: Date): boolean {
  return (d as Date & { dateOnly?: boolean }).dateOnly === true;
}

interface CalendarDay {
  y: number;
  /** 0-11 */
  m: number;
  /** May overflow the month; Date.UTC normalises it. */
  d: number;
}

/** node-ical creates DATE values at the host's local midnight: read the day back the same way. */
function localDay(d: Date): CalendarDay {
  return { y: d.getFullYear(), m: d.getMonth(), d: d.getDate() };
}

function localDayKey(d: Date): string {
  const { y, m, d: day } = localDay(d);
  return `${y}-${String(m + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at `epochMs`, in ms (e.g. -7 h for PDT). */
function offsetAt(epochMs: number, timeZone: string): number {
  let fmt = offsetFormats.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormats.set(timeZone, fmt);
  }
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(epochMs)) p[part.type] = Number(part.value);
  const asUtc = Date.UTC(
    p.year ?? 1970,
    (p.month ?? 1) - 1,
    p.day ?? 1,
    p.hour ?? 0,
    p.minute ?? 0,
    p.second ?? 0,
  );
  return asUtc - Math.floor(epochMs / 1000) * 1000;
}

/**
 * The instant of 00:00 of `day` in `timeZone`. Where midnight does not exist (a DST change at
 * midnight, as in Santiago), the first instant of the day.
 */
export function zonedMidnight(day: CalendarDay, timeZone: string): Date {
  const wall = Date.UTC(day.y, day.m, day.d);
  let t = wall - offsetAt(wall, timeZone);
  // Once more with the offset at the first guess: right unless a change lies between them.
  t = wall - offsetAt(t, timeZone);
  return new Date(t);
}

/** node-ical gives a property with parameters (`SUMMARY;LANGUAGE=en:...`) as `{ params, val }`. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'val' in value) return String((value as { val: unknown }).val);
  return '';
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message || err.name;
  }
  return String(err);
}

/** Never let the secret address into a reason, whatever an error message quotes. */
function scrub(message: string, url: string): string {
  let out = message.split(url).join('<the calendar URL>');
  try {
    const { pathname, search } = new URL(url);
    if (pathname.length > 1) out = out.split(pathname + search).join('<path>');
  } catch {
    // The config only lets valid URLs through; nothing more to hide.
  }
  return out;
}
