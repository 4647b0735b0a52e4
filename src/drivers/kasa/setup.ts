import type { CallContext, DriverContext, Running } from '../../core/driver.js';
import { KasaClient } from './client.js';
import type { KasaConfig } from './index.js';

type OnOff = 'on' | 'off';

export async function setupKasa(ctx: DriverContext, config: KasaConfig): Promise<Running> {
  // No device contact here: an unplugged lamp must still get its entity, which the
  // runtime marks unavailable until a read succeeds.
  const client = new KasaClient({ host: config.address, port: config.port });

  // Deadlines and shutdown reach each call through its signal: the runtime aborts it.
  const toState = (on: boolean): OnOff => (on ? 'on' : 'off');
  const set = (on: boolean, { signal }: CallContext): Promise<OnOff> =>
    client.setState(on, signal).then(toState);

  ctx.entities.add(
    {
      id: config.id,
      kind: 'switch',
      name: config.name,
      timeoutMs: config.timeoutMs,
      pollMs: config.pollSeconds * 1000,
      read: ({ signal }) => client.getState(signal).then(toState),
    },
    {
      on: (_args, c) => set(true, c),
      off: (_args, c) => set(false, c),
      // Read, then set the opposite: homeslice's toggle always sent "on".
      toggle: async (_args, { signal }) =>
        toState(await client.setState(!(await client.getState(signal)), signal)),
    },
  );
  ctx.log.debug({ id: config.id, address: config.address, port: config.port }, 'kasa device added');

  // Nothing is held open between calls, so there is nothing to close.
  return { stop: async () => {} };
}
