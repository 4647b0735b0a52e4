/**
 * The Sonos driver: one zone player becomes one `chime` entity. The config entry is in config.ts,
 * the protocol in client.ts, the chime sequence in chime.ts, the mapping onto hearth in
 * setup.ts; this file is what every start loads.
 */
import { type Driver, lazySimulator } from '../../core/driver.js';
import { type SonosConfig, sonosConfigSchema } from './config.js';
import { SONOS_PORT } from './port.js';

/**
 * The most SOAP calls one chime makes outside the wait for the clip: 4 to snapshot, pause,
 * volume, URI, play, a last poll, and 5 to restore; 2 to spare.
 */
export const CALLS_PER_CHIME = 16;

/**
 * The deadline of a whole `play`, which the runtime enforces: the clip's cap plus every call at
 * its own deadline. `play` resolves when the music is back, so an automation's next action
 * comes after the chime, and a failed restore fails the command.
 */
export function chimeDeadlineMs(config: Pick<SonosConfig, 'maxChimeSeconds' | 'timeoutMs'>): number {
  return Math.ceil(config.maxChimeSeconds * 1000) + CALLS_PER_CHIME * config.timeoutMs;
}

/** Sonos zone players (`kind: sonos/v1`), one `chime` entity each; its `clips` are in its attributes. */
export const sonosDriver: Driver<SonosConfig> = {
  name: 'sonos',
  configKinds: ['sonos/v1'],
  section: 'speakers',
  configSchema: sonosConfigSchema,
  entities: (c) => [
    {
      id: c.id,
      kind: 'chime',
      name: c.name,
      timeoutMs: chimeDeadlineMs(c),
      // The clips are what Home Assistant offers as buttons (src/homeassistant/discovery.ts).
      attributes: { volume: c.volume, ...(c.clips.length > 0 ? { clips: c.clips } : {}) },
    },
  ],
  simulator: lazySimulator(
    { transport: 'network', defaultPort: SONOS_PORT },
    async () => (await import('./simulator.js')).simulator,
  ),

  setup: async (ctx, config) => (await import('./setup.js')).setupSonos(ctx, config),
};

export { type SonosConfig, sonosConfigSchema } from './config.js';
