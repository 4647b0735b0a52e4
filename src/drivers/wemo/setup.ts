import type { DriverContext, Running } from '../../core/driver.js';
import { addPlugSwitch } from '../plug.js';
import { WemoClient } from './client.js';
import type { WemoConfig } from './config.js';

// Nothing here touches the network: a plug that is away at start still gets its entity,
// which the runtime marks unavailable on the first failed read.
export async function setupWemo(ctx: DriverContext, config: WemoConfig): Promise<Running> {
  const client = new WemoClient({ host: config.address, port: config.port });
  let knownPort = config.port;
  // Said once per move, so the person can fix the config; the client already follows it.
  const notePort = <T>(result: T): T => {
    if (client.port !== knownPort) {
      knownPort = client.port;
      ctx.log.info(
        { id: config.id, configured: config.port, port: knownPort },
        'wemo plug answered on another port; set this port in the config',
      );
    }
    return result;
  };
  addPlugSwitch(ctx, config, {
    get: (signal) => client.getBinaryState(signal).then(notePort),
    set: (on, signal) => client.setBinaryState(on, signal).then(notePort),
  });
  // One connection per call, closed after it: nothing stays open to close.
  return { stop: async () => {} };
}
