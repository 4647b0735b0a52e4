import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import { type Driver, lazySimulator } from '../../core/driver.js';

/**
 * A TP-Link Kasa plug (HS103, HS105, KP115 ...) or bulb (KL110 ...) as one `switch` entity.
 * The protocol lives in client.ts, the mapping to hearth in setup.ts; this file is what every
 * start loads.
 */
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

export const kasaDriver: Driver<KasaConfig> = {
  name: 'kasa',
  configKinds: ['kasa/v1'],
  section: 'switches',
  configSchema: kasaConfigSchema,
  entities: (c) => [{ id: c.id, kind: 'switch', name: c.name, timeoutMs: c.timeoutMs }],
  simulator: lazySimulator(
    { transport: 'network', defaultPort: 9999 },
    async () => (await import('./simulator.js')).simulator,
  ),
  setup: async (ctx, config) => (await import('./setup.js')).setupKasa(ctx, config),
};
