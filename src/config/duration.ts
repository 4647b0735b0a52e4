import { z } from 'zod/v3';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** `7d`, `5m`, `1h30m`, `500ms` in ms; undefined if it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!DURATION.test(s)) return undefined;
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)(ms|s|m|h|d)/g))
    ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
  return ms;
}

/** The shortest way to write `ms`: `5m`, `1h30m`, `365d`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms']) {
    const size = UNIT_MS[unit] as number;
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/** A duration in the config: `7d`, `5m`, `10s`, `1h30m`; parsed to ms. */
export const durationSchema = z.string().transform((s, ctx) => {
  const ms = parseDuration(s);
  if (ms === undefined || ms === 0) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: 'must be a duration like 10s, 5m, 7d or 1h30m (units ms, s, m, h, d)',
    });
    return z.NEVER;
  }
  return ms;
});
