/**
 * The Wemo driver: one Belkin Wemo plug becomes one `switch` entity. The protocol lives in
 * client.ts, the mapping onto hearth in setup.ts; this file is what every start loads.
 */
import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import { type Driver, lazySimulator } from '../../core/driver.js';

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

/** Belkin Wemo plugs (`kind: wemo/v1`), one `switch` entity each. */
export const wemoDriver: Driver<WemoConfig> = {
  name: 'wemo',
  configKinds: ['wemo/v1'],
  section: 'switches',
  configSchema: wemoConfigSchema,
  entities: (c) => [{ id: c.id, kind: 'switch', name: c.name, timeoutMs: c.timeoutMs }],
  simulator: lazySimulator(
    { transport: 'network', defaultPort: 49153 },
    async () => (await import('./simulator.js')).simulator,
  ),
  setup: async (ctx, config) => (await import('./setup.js')).setupWemo(ctx, config),
};
