import { z } from 'zod/v3';
import { segmentPattern } from './topics.js';

/**
 * The `mqtt:` section: one connection per process, shared by the bus and the MQTT drivers.
 * Every check is on a single field, never on the whole object: a config error echoes the value
 * it is about, and an object-level error would echo the password with it.
 */
export const mqttConfigSchema = z
  .object({
    /** `mqtt://host:1883` or `mqtts://host:8883`; credentials go in username/password. */
    url: z
      .string()
      .refine(
        (u) => /^mqtts?:\/\/[^/@\s]+(:\d+)?\/?$/.test(u) && URL.canParse(u),
        'must be mqtt://HOST[:PORT] or mqtts://HOST[:PORT], without a path or user:password@ (put those in mqtt.username and mqtt.password)',
      ),
    username: z.string().min(1).optional(),
    /** Usually `${MQTT_PASSWORD}` or `!secret mqtt_password`; never logged or echoed. */
    password: z.string().min(1).optional(),
    /** Default `hearth-<role>-<hostname>-<pid>`: unique per process, as MQTT requires. */
    clientId: z
      .string()
      .regex(
        segmentPattern,
        'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -, because it is part of topics',
      )
      .optional(),
    /** The first topic level(s) of everything hearth publishes; default `hearth`. */
    baseTopic: z
      .string()
      .refine(
        (b) => b.split('/').length <= 4 && b.split('/').every((s) => segmentPattern.test(s)),
        'must be 1 to 4 levels of A-Z, a-z, 0-9, _ and - separated by /, like hearth or home/hearth (no wildcards + #, no leading or trailing /)',
      )
      .default('hearth'),
  })
  .strict();

export type MqttConfig = z.infer<typeof mqttConfigSchema>;
