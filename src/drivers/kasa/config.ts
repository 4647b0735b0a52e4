import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';

/** A `kind: kasa/v1` entry of `switches:`. Unknown keys are errors, so typos do not pass silently. */
export const kasaConfigSchema = deviceBaseSchema
  .extend({
    kind: z.literal('kasa/v1'),
    /** IP address or host name of the device. */
    address: hostSchema,
    port: portSchema.default(9999),
  })
  .strict()
  .transform(withName);

/** One `kind: kasa/v1` entry of the config, after defaults. */
export type KasaConfig = z.output<typeof kasaConfigSchema>;
