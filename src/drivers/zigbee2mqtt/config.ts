import { z } from 'zod/v3';
import { idSchema } from '../../contract/kinds.js';
import { topicSchema } from '../../core/device-schema.js';

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
