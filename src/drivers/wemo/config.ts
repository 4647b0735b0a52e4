import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';

/** A `kind: wemo/v1` entry of `switches:`. Unknown keys are errors, so typos do not pass silently. */
export const wemoConfigSchema = deviceBaseSchema
  .extend({
    kind: z.literal('wemo/v1'),
    /** IP address or host name of the plug. */
    address: hostSchema,
    /** Plugs listen on one of 49152–49155; the client follows them when they move. */
    port: portSchema.default(49153),
  })
  .strict()
  .transform(withName);

export type WemoConfig = z.output<typeof wemoConfigSchema>;
