import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import { SONOS_PORT } from './port.js';

/** A `kind: sonos/v1` entry of `speakers:`. Unknown keys are errors, so typos do not pass silently. */
export const sonosConfigSchema = deviceBaseSchema
  .extend({
    kind: z.literal('sonos/v1'),
    /** IP address or host name of the zone player (discovery does not work from a pod). */
    address: hostSchema,
    port: portSchema.default(SONOS_PORT),
    /** The volume chimes play at, 0-100; a `play` command's `volume` overrides it. */
    volume: z.number().int().min(0).max(100).default(40),
    /** A chime is cut off after this long, and the music restored. */
    maxChimeSeconds: z.number().positive().max(600).default(30),
  })
  .strict()
  .transform(withName);

export type SonosConfig = z.output<typeof sonosConfigSchema>;
