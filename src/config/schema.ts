import { z } from 'zod/v3';
import { isValidTimeZone } from '../core/clock.js';
import { hostSchema, portSchema } from '../core/device-schema.js';
import { idSchema } from '../core/kinds.js';

const systemTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/**
 * The top level of hearth.yaml. Device lists hold entries whose `kind` names a driver; each
 * entry is validated by that driver's own schema afterwards, so errors still point at the line.
 */
export const configSchema = z
  .object({
    /** IANA zone for clocktime and schedules; the host's zone when left out. */
    timezone: z
      .string()
      .refine(isValidTimeZone, 'is not a known IANA time zone (e.g. America/Los_Angeles, Europe/Berlin)')
      .default(systemTimeZone),
    http: z
      .object({
        host: hostSchema.default('0.0.0.0'),
        port: portSchema.default(8000),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        /** Path of the SQLite file, relative to the config file's folder. */
        sqlite: z.string().min(1).default('data/hearth.db'),
      })
      .strict()
      .default({}),
    /** A YAML file of `name: value` pairs for `!secret name`, relative to the config file; keep it out of git. */
    secrets: z.string().min(1).optional(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({}),
    /** Each entry is checked by the driver its `kind` names (see load.ts). */
    switches: z.array(z.unknown()).default([]),
    coffee: z.array(z.unknown()).default([]),
    sprinklers: z.array(z.unknown()).default([]),
    buttons: z.array(z.object({ id: idSchema, name: z.string().min(1).optional() }).strict()).default([]),
  })
  .strict();

export type RawConfig = z.output<typeof configSchema>;
