/**
 * MQTT things: devices of the mqtt_things firmware (switches, sensors, aircons) spoken to by
 * topic over the process's `mqtt:` connection. The config entry is in config.ts, the topic
 * handling in setup.ts; this file is what every start loads.
 */

import type { Kind } from '../../contract/kinds.js';
import type { Driver } from '../../core/driver.js';
import { type MqttThingConfig, mqttThingConfigSchema } from './config.js';

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
      ...(c.kind === 'mqtt-sensor/v1' && (c.unit || c.deviceClass)
        ? {
            attributes: {
              ...(c.unit ? { unit: c.unit } : {}),
              ...(c.deviceClass ? { deviceClass: c.deviceClass } : {}),
            },
          }
        : {}),
    },
  ],
  setup: async (ctx, config) => (await import('./setup.js')).setupMqttThing(ctx, config),
};

export { type MqttThingConfig, mqttThingConfigSchema } from './config.js';
