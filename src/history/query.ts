import { formatDuration, parseDuration } from '../config/duration.js';
import type { HistoryConfig } from '../config/sections/history.js';
import { HearthError } from '../core/errors.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import type { HistoryStore } from '../store/store.js';

/** Points in one answer at most: a bigger range needs a bigger step. */
export const MAX_POINTS = 5000;
const DAY = 86_400_000;
/** The steps chosen when none is asked for: the smallest that fits. */
const STEPS = [
  1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000,
].map((s) => s * 1000);

/** What GET /api/v1/entities/<id>/history needs: the store and the retention it was kept with. */
export interface HistoryReader {
  store: HistoryStore;
  config: HistoryConfig;
  /** The time now (the process's clock), epoch ms. */
  now: () => number;
}

export type HistoryPoint =
  | { t: number; v: number | string | null }
  | { t: number; min: number; mean: number; max: number; count: number };

export interface HistoryAnswer {
  id: string;
  unit: string | null;
  /** Epoch ms; `from` included, `to` not. */
  from: number;
  to: number;
  /** Bucket size in ms; null for raw readings. */
  step: number | null;
  points: HistoryPoint[];
}

function timeParam(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const text = String(value);
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new HearthError('HEARTH_ERR_BAD_REQUEST', `${name} is not a time: use an ISO time or epoch ms`, {
      hint: 'e.g. ?from=2025-01-31T00:00:00Z&to=1738368000000',
    });
  }
  return ms;
}

function stepParam(value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined;
  const text = String(value);
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text);
  if (ms === undefined || ms < 1000) {
    throw new HearthError(
      'HEARTH_ERR_BAD_REQUEST',
      'step must be a duration of at least 1s, like 5m or 1h, or ms',
      {
        hint: 'e.g. ?step=5m',
      },
    );
  }
  return ms;
}

/** The smallest step of STEPS, at least `floor`, that fits the range in MAX_POINTS buckets. */
function fittingStep(range: number, floor: number): number | undefined {
  return STEPS.find((s) => s >= floor && Math.ceil(range / s) <= MAX_POINTS);
}

/**
 * Reads the history of `id`. Without `step`: raw readings when the range lies within raw
 * retention and they fit in MAX_POINTS; otherwise buckets of the smallest step (at least the
 * configured one) that fits. With `step`: buckets of that step, or 400 if too many. Numbers
 * come as {t, min, mean, max, count}; text as {t, v}, the last value of the bucket. An entity
 * that was removed answers while history of it is kept; one never seen is 404.
 */
export async function readHistory(
  reader: HistoryReader,
  runtime: RuntimeApi,
  id: string,
  query: Record<string, unknown>,
): Promise<HistoryAnswer> {
  const { store, config } = reader;
  const now = reader.now();
  const to = timeParam('to', query.to, now);
  const from = timeParam('from', query.from, to - DAY);
  if (from >= to) throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'from must be before to');
  let step = stepParam(query.step);
  const entity = runtime.get(id);
  if (!entity && !(await store.has(id)))
    throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}", and no history of one`);
  const unitAttr = entity?.attributes.unit;
  const unit = typeof unitAttr === 'string' ? unitAttr : null;
  const range = to - from;
  if (step !== undefined && Math.ceil(range / step) > MAX_POINTS) {
    const fits = fittingStep(range, step);
    throw new HearthError(
      'HEARTH_ERR_BAD_REQUEST',
      `${formatDuration(range)} in steps of ${formatDuration(step)} is more than ${MAX_POINTS} points`,
      {
        hint: fits
          ? `Ask for step=${formatDuration(fits)} or more, or a shorter range.`
          : 'Ask for a shorter range.',
      },
    );
  }
  if (step === undefined && from >= now - config.raw) {
    const n = await store.countRaw(id, from, to);
    if (n <= MAX_POINTS) {
      const rows = await store.raw(id, from, to, MAX_POINTS);
      return { id, unit, from, to, step: null, points: rows.map((r) => ({ t: r.at, v: r.num ?? r.text })) };
    }
  }
  if (step === undefined) {
    step = fittingStep(range, config.step);
    if (step === undefined)
      throw new HearthError('HEARTH_ERR_BAD_REQUEST', `${formatDuration(range)} is too long a range`, {
        hint: 'Ask for a shorter range.',
      });
  }
  const [numbers, texts] = await Promise.all([
    store.buckets(id, from, to, step),
    store.textBuckets(id, from, to, step),
  ]);
  const points = new Map<number, HistoryPoint>();
  for (const b of texts) points.set(b.at, { t: b.at, v: b.text });
  for (const b of numbers)
    points.set(b.at, { t: b.at, min: b.min, mean: b.mean, max: b.max, count: b.count });
  return { id, unit, from, to, step, points: [...points.values()].sort((a, b) => a.t - b.t) };
}
