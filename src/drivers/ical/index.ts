/**
 * The iCal driver: one feed (a `calendars:` entry; `kind: ical/v1` is the default there) becomes
 * one `calendar` entity, `on` while one of its events is in progress, firing `start` and `end`
 * at each occurrence's instants for calendar triggers of automations. Reading and expanding the
 * feed is feed.ts; polling and timing is calendar.ts; setup.ts starts one.
 */
import { z } from 'zod/v3';
import { withName } from '../../core/device-schema.js';
import type { Driver } from '../../core/driver.js';
import { idSchema } from '../../core/kinds.js';

/**
 * A `calendars:` entry. Unknown keys are errors. The URL is never echoed in an error or a log
 * line: a Google Calendar "secret address" is a password in all but name.
 */
export const icalConfigSchema = z
  .object({
    id: idSchema,
    kind: z.literal('ical/v1'),
    name: z.string().min(1).optional(),
    /** An http:// or https:// address, e.g. `"${COFFEE_ICAL_URL}"` or `!secret coffee_ical_url`. */
    url: z.string().min(1).optional(),
    /** A local .ics file, relative to the working directory or absolute. */
    file: z.string().min(1).optional(),
    /** How often the feed is read again. */
    pollSeconds: z.number().min(10).max(86_400).default(300),
    /** How far ahead occurrences are expanded and scheduled. */
    lookaheadDays: z.number().int().min(1).max(366).default(7),
    /** Deadline of one fetch of the feed. */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Reported on the entry, not on `url`, so the config error does not quote the value.
    if ((c.url === undefined) === (c.file === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'give exactly one of url (an http:// or https:// address) or file (a path to an .ics file)',
      });
    } else if (c.url !== undefined && !isHttpUrl(c.url)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message:
          'url must be an http:// or https:// address, e.g. the secret address of a Google calendar (the value is not shown: it may be secret)',
      });
    }
  })
  .transform((c) => ({ ...withName(c), simulate: false }));

export type IcalConfig = z.output<typeof icalConfigSchema>;

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** iCal feeds (`kind: ical/v1`), one `calendar` entity each. */
export const icalDriver: Driver<IcalConfig> = {
  name: 'ical',
  configKinds: ['ical/v1'],
  section: 'calendars',
  configSchema: icalConfigSchema,
  entities: (c) => [{ id: c.id, kind: 'calendar', name: c.name, timeoutMs: c.timeoutMs }],

  // calendar.ts and feed.ts bring node-ical and its Temporal polyfills (≈ 350 kB): only a
  // config with a calendar loads them.
  setup: async (ctx, config) => (await import('./setup.js')).setupIcal(ctx, config),
};
