import { z } from 'zod';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import type { CallContext, Driver, DriverContext, Running } from '../../core/driver.js';
import { HearthError, reasonOf } from '../../core/errors.js';
import { KasaClient } from './client.js';
import { simulator } from './simulator.js';

/**
 * A TP-Link Kasa plug (HS103, HS105, KP115 ...) or bulb (KL110 ...) as one `switch` entity.
 * The protocol lives in client.ts; this file maps it to hearth.
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

type OnOff = 'on' | 'off';

export const kasaDriver: Driver<KasaConfig> = {
  name: 'kasa',
  configKinds: ['kasa/v1'],
  section: 'switches',
  configSchema: kasaConfigSchema,
  simulator,

  async setup(ctx: DriverContext, config: KasaConfig): Promise<Running> {
    // No device contact here: an unplugged lamp must still get its entity, which the
    // runtime marks unavailable until a read succeeds.
    const client = new KasaClient({ host: config.address, port: config.port });

    /** Runs one device call, aborted by the call's deadline or by the driver stopping. */
    const call = async <T>({ signal }: CallContext, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
      const both = AbortSignal.any([signal, ctx.signal]);
      try {
        return await fn(both);
      } catch (err) {
        if (signal.aborted) throw new HearthError('HEARTH_ERR_DEVICE_TIMEOUT', reasonOf(err), { cause: err });
        if (ctx.signal.aborted) throw new HearthError('HEARTH_ERR_NOT_READY', reasonOf(err), { cause: err });
        throw new HearthError('HEARTH_ERR_DEVICE_FAILED', reasonOf(err), { cause: err });
      }
    };
    const toState = (on: boolean): OnOff => (on ? 'on' : 'off');
    const set = (on: boolean, c: CallContext): Promise<OnOff> =>
      call(c, async (signal) => toState(await client.setState(on, signal)));

    ctx.entities.add(
      {
        id: config.id,
        kind: 'switch',
        name: config.name,
        timeoutMs: config.timeoutMs,
        pollMs: config.pollSeconds * 1000,
        read: (c) => call(c, async (signal) => toState(await client.getState(signal))),
      },
      {
        on: (_args, c) => set(true, c),
        off: (_args, c) => set(false, c),
        // Read, then set the opposite: homeslice's toggle always sent "on".
        toggle: (_args, c) =>
          call(c, async (signal) => toState(await client.setState(!(await client.getState(signal)), signal))),
      },
    );
    ctx.log.debug({ id: config.id, address: config.address, port: config.port }, 'kasa device added');

    // Nothing is held open between calls, so there is nothing to close; in-flight calls end
    // through ctx.signal.
    return { stop: async () => {} };
  },
};

export { KasaClient } from './client.js';
export { startKasaSimulator } from './simulator.js';
