import { z } from 'zod/v3';
import { segmentPattern } from '../../bus/mqtt/topics.js';

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
    /**
     * PEM file of the CA that signed the broker's certificate (a private CA, as a home Mosquitto
     * with its own certificates has), relative to the config file's folder; with `mqtts://` only.
     * Left out, the system's CAs are trusted. The broker's certificate is always verified.
     */
    ca: z.string().min(1).optional(),
    /** PEM client certificate, for a broker that asks for one (`require_certificate`); needs `key`. */
    cert: z.string().min(1).optional(),
    /** PEM private key of `cert`, unencrypted; keep it readable by hearth's user only. */
    key: z.string().min(1).optional(),
    /**
     * A role of a cluster refuses to start on a broker that lets a client without a user name
     * publish on the cluster topics (src/bus/mqtt/probe.ts); `true` starts it anyway, for a
     * broker on a network trusted as it is. The long name is on purpose: nobody sets it by accident.
     */
    insecure: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    // Each issue is on one field (see above): a path, never the password, is echoed.
    const files = (['ca', 'cert', 'key'] as const).filter((f) => m[f] !== undefined);
    if (m.url.startsWith('mqtt://')) {
      for (const f of files) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [f],
          message: `is for TLS only, and mqtt.url is mqtt:// (plain TCP); use mqtts://HOST:8883 (the broker's TLS listener), or leave mqtt.${f} out`,
        });
      }
      return;
    }
    if (m.cert !== undefined && m.key === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['cert'],
        message:
          'needs mqtt.key too: a client certificate is sent with its private key (give both, or neither)',
      });
    }
    if (m.key !== undefined && m.cert === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['key'],
        message:
          'needs mqtt.cert too: a private key is sent with its client certificate (give both, or neither)',
      });
    }
  });

export type MqttConfig = z.infer<typeof mqttConfigSchema>;
