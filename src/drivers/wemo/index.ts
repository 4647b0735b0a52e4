/**
 * The Wemo driver: one Belkin Wemo plug becomes one `switch` entity. The protocol lives in
 * client.ts; this file maps it onto hearth.
 */
import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import type { Driver } from '../../core/driver.js';
import { WemoClient } from './client.js';
import { simulator } from './simulator.js';

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

const toState = (on: boolean): 'on' | 'off' => (on ? 'on' : 'off');

/** Belkin Wemo plugs (`kind: wemo/v1`), one `switch` entity each. */
export const wemoDriver: Driver<WemoConfig> = {
  name: 'wemo',
  configKinds: ['wemo/v1'],
  section: 'switches',
  configSchema: wemoConfigSchema,
  simulator,

  // Nothing here touches the network: a plug that is away at start still gets its entity,
  // which the runtime marks unavailable on the first failed read.
  async setup(ctx, config) {
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
  },
};

export { WemoClient } from './client.js';
export { simulator as wemoSimulator, startWemoSimulator } from './simulator.js';
