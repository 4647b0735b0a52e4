/**
 * zigbee2mqtt: the zigbee devices of a zigbee2mqtt bridge become hearth entities, found at run
 * time from its retained `<baseTopic>/bridge/devices` list and following it as devices join,
 * are renamed or leave. The config entry is in config.ts, the topic handling in setup.ts, the mapping of a device's
 * `exposes` to entities in exposes.ts; this file is what every start loads.
 */
import type { Driver } from '../../core/driver.js';
import { type Zigbee2mqttConfig, zigbee2mqttConfigSchema } from './config.js';

/** The zigbee2mqtt bridge under `zigbee2mqtt:`; its entities are found at run time. */
export const zigbee2mqttDriver: Driver<Zigbee2mqttConfig> = {
  name: 'zigbee2mqtt',
  configKinds: ['zigbee2mqtt/v1'],
  section: 'zigbee2mqtt',
  configSchema: zigbee2mqttConfigSchema,
  entities: () => [],
  dynamic: true,
  setup: async (ctx, config) => (await import('./setup.js')).setupZigbee2mqtt(ctx, config),
  simulator: {
    transport: 'mqtt',
    start: async (options) => (await import('./simulator.js')).startZigbeeSimulator(options),
  },
};

export { type Zigbee2mqttConfig, zigbee2mqttConfigSchema } from './config.js';
