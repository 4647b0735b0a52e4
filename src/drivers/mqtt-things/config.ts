import { z } from 'zod/v3';
import { sensorClasses, sensorClassNames, unitFits } from '../../contract/sensor-classes.js';
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
        /**
         * What it measures, as Home Assistant's sensor device classes name it (`battery`,
         * `humidity`, `distance` ...); left out, Home Assistant discovery reads it from the unit and
         * the id and name (a `%` of `attic-battery` is a battery's).
         */
        deviceClass: z.enum(sensorClassNames).optional(),
      })
      .strict(),
    /** An aircon: `<topic>/{power,mode,temperature}/{set,get}`. */
    base.extend({ kind: z.literal('mqtt-climate/v1') }).strict(),
  ])
  .superRefine((c, ctx) => {
    if (c.kind !== 'mqtt-sensor/v1' || c.deviceClass === undefined || unitFits(c.deviceClass, c.unit)) return;
    const units = sensorClasses[c.deviceClass].units;
    // Home Assistant refuses the whole discovery config of a unit its device class does not take.
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [c.unit === undefined ? 'deviceClass' : 'unit'],
      message:
        c.unit === undefined
          ? `needs a unit: Home Assistant takes ${units.join(', ')} for ${c.deviceClass}`
          : units.length === 0
            ? `must be left out for deviceClass ${c.deviceClass}: Home Assistant takes no unit for it`
            : `is not a unit Home Assistant takes for deviceClass ${c.deviceClass}; it takes ${units.join(', ')}`,
    });
  })
  .transform(withName);

export type MqttThingConfig = z.output<typeof mqttThingConfigSchema>;
