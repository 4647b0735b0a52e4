/**
 * zigbee2mqtt: the zigbee devices of a zigbee2mqtt bridge become hearth entities, found at run
 * time from its retained `<baseTopic>/bridge/devices` list and following it as devices join,
 * are renamed or leave. The topic handling lives in setup.ts, the mapping of a device's
 * `exposes` to entities in exposes.ts; this file is what every start loads.
 */
import { z } from 'zod/v3';
import { topicSchema } from '../../core/device-schema.js';
import type { Driver } from '../../core/driver.js';
import { idSchema } from '../../core/kinds.js';

export const zigbee2mqttConfigSchema = z
  .object({
    /** The device's id in hearth (logs, metrics); its entities are named after the zigbee devices. */
    id: idSchema.default('zigbee2mqtt'),
    kind: z.literal('zigbee2mqtt/v1').default('zigbee2mqtt/v1'),
    name: z.string().min(1).max(200).default('zigbee2mqtt'),
    /** zigbee2mqtt's `mqtt.base_topic`. */
    baseTopic: topicSchema.default('zigbee2mqtt'),
    /** In a cluster, the agent that follows the bridge; `main` when left out. */
    agent: idSchema.optional(),
    /** How long a command waits for the device to report the state it asked for. */
    timeoutMs: z.number().int().min(50).max(60_000).default(5000),
    /** There is no in-process simulator: run `hearth sim zigbee2mqtt --mqtt URL` beside hearth. */
    simulate: z
      .literal(false, { errorMap: () => ({ message: 'run `hearth sim zigbee2mqtt --mqtt URL` instead' }) })
      .default(false),
  })
  .strict();

export type Zigbee2mqttConfig = z.output<typeof zigbee2mqttConfigSchema>;

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
