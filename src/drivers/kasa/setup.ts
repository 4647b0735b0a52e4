import type { DriverContext, Running } from '../../core/driver.js';
import { addPlugSwitch } from '../plug.js';
import { KasaClient } from './client.js';
import type { KasaConfig } from './config.js';

export async function setupKasa(ctx: DriverContext, config: KasaConfig): Promise<Running> {
  // No device contact here: an unplugged lamp must still get its entity, which the
  // runtime marks unavailable until a read succeeds.
  const client = new KasaClient({ host: config.address, port: config.port });
  addPlugSwitch(ctx, config, {
    get: (signal) => client.getState(signal),
    set: (on, signal) => client.setState(on, signal),
  });
  ctx.log.debug({ id: config.id, address: config.address, port: config.port }, 'kasa device added');

  // Nothing is held open between calls, so there is nothing to close.
  return { stop: async () => {} };
}
