import type { DriverContext, Running } from '../../core/driver.js';
import { WemoClient } from './client.js';
import type { WemoConfig } from './index.js';

const toState = (on: boolean): 'on' | 'off' => (on ? 'on' : 'off');

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
  const set = (on: boolean, signal: AbortSignal) =>
    client.setBinaryState(on, signal).then((state) => toState(notePort(state)));
  const get = (signal: AbortSignal) => client.getBinaryState(signal).then(notePort);

  ctx.entities.add(
    {
      id: config.id,
      kind: 'switch',
      name: config.name,
      timeoutMs: config.timeoutMs,
      pollMs: config.pollSeconds * 1000,
      read: ({ signal }) => get(signal).then(toState),
    },
    {
      on: (_args, { signal }) => set(true, signal),
      off: (_args, { signal }) => set(false, signal),
      // Read first: the plug may have been switched by hand since hearth last saw it.
      toggle: async (_args, { signal }) => set(!(await get(signal)), signal),
    },
  );
  // One connection per call, closed after it: nothing stays open to close.
  return { stop: async () => {} };
}
