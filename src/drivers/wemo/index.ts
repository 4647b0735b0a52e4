/**
 * The Wemo driver: one Belkin Wemo plug becomes one `switch` entity. The config entry is in
 * config.ts, the protocol in client.ts, the mapping onto hearth in setup.ts; this file is what
 * every start loads.
 */
import { type Driver, lazySimulator } from '../../core/driver.js';
import { type WemoConfig, wemoConfigSchema } from './config.js';

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

export { type WemoConfig, wemoConfigSchema } from './config.js';
