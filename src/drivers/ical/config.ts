import { z } from 'zod/v3';
import { idSchema } from '../../contract/kinds.js';
import { withName } from '../../core/device-schema.js';

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
