/**
 * A TP-Link Kasa plug (HS103, HS105, KP115 ...) or bulb (KL110 ...) as one `switch` entity.
 * The config entry is in config.ts, the protocol in client.ts, the mapping to hearth in
 * setup.ts; this file is what every start loads.
 */
import { type Driver, lazySimulator } from '../../core/driver.js';
import { type KasaConfig, kasaConfigSchema } from './config.js';

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

export { type KasaConfig, kasaConfigSchema } from './config.js';
