/**
 * MQTT things: devices of the mqtt_things firmware (switches, sensors, aircons) spoken to by
 * topic over the process's `mqtt:` connection. The topic handling lives in setup.ts; this file is
 * what every start loads.
 */
import { z } from 'zod/v3';
import { deviceBaseSchema, topicSchema, withName } from '../../core/device-schema.js';
import type { Driver } from '../../core/driver.js';
import type { Kind } from '../../core/kinds.js';

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

const entityKind = {
  'mqtt-switch/v1': 'switch',
  'mqtt-sensor/v1': 'sensor',
  'mqtt-climate/v1': 'climate',
} as const;

/** Devices of the mqtt_things firmware under `things:`, one entity each. */
export const mqttThingsDriver: Driver<MqttThingConfig> = {
  name: 'mqtt-things',
  configKinds: ['mqtt-switch/v1', 'mqtt-sensor/v1', 'mqtt-climate/v1'],
  section: 'things',
  configSchema: mqttThingConfigSchema,
  entities: (c) => [
    {
      id: c.id,
      kind: entityKind[c.kind] as Kind,
      name: c.name,
      timeoutMs: c.timeoutMs,
      ...(c.kind === 'mqtt-sensor/v1' && c.unit ? { attributes: { unit: c.unit } } : {}),
    },
  ],
  setup: async (ctx, config) => (await import('./setup.js')).setupMqttThing(ctx, config),
};
