import { z } from 'zod/v3';
import { deviceBaseSchema, topicSchema, withName } from '../../core/device-schema.js';

// Pushed, never polled: the firmware publishes its state retained.
const base = deviceBaseSchema.omit({ pollSeconds: true }).extend({ topic: topicSchema });

export const mqttThingConfigSchema = z
  .discriminatedUnion('kind', [
    /** A relay: `0`/`1` on `<topic>/state/set`, its real state retained on `<topic>/state/get`. */
    base.extend({ kind: z.literal('mqtt-switch/v1') }).strict(),
    /** A reading on `<topic>`: a plain number, or `field` of a JSON object. */
    base
      .extend({
        kind: z.literal('mqtt-sensor/v1'),
        unit: z.string().min(1).max(16).optional(),
        field: z.string().min(1).max(64).optional(),
      })
      .strict(),
    /** An aircon: `<topic>/{power,mode,temperature}/{set,get}`. */
    base.extend({ kind: z.literal('mqtt-climate/v1') }).strict(),
  ])
  .transform(withName);

export type MqttThingConfig = z.output<typeof mqttThingConfigSchema>;
