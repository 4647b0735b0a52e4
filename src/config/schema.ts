import { z } from 'zod/v3';
import { segmentPattern } from '../bus/mqtt/topics.js';
import { idSchema } from '../contract/kinds.js';
import { isValidTimeZone } from '../core/clock.js';
import { hostSchema, portSchema } from '../core/device-schema.js';
import { parseCidr } from './cidr.js';
import { automationSchema } from './sections/automations.js';
import { backupSchema } from './sections/backup.js';
import { historySchema } from './sections/history.js';
import { kubernetesSchema } from './sections/kubernetes.js';
import { mqttConfigSchema } from './sections/mqtt.js';

const systemTimeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** Who may use the control routes when `http.allow` is left out: this box and the private ranges. */
export const defaultAllow: readonly string[] = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

/** A token shorter than this can be guessed by anyone on the network who tries long enough. */
export const minTokenLength = 16;

const cidrSchema = z
  .string()
  .refine(
    (s) => parseCidr(s) !== undefined,
    'must be a network in CIDR notation, like 192.168.1.0/24 or fd00::/8 (an address alone is that one address)',
  );

const tokenSchema = z
  .string()
  .refine(
    (t) => t.length >= minTokenLength,
    `is too short: use at least ${minTokenLength} characters, because a short token can be guessed (\`openssl rand -hex 32\` makes a good one)`,
  )
  .refine(
    (t) => /^[\x21-\x7e]*$/.test(t),
    'must be printable ASCII without spaces, because it is sent in an HTTP header',
  );

const hostNameSchema = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/,
    'must be a host name like hearth.home.arpa: letters, digits, hyphens and dots, no port or scheme',
  );

/** Both listeners would fight for one socket: same port on the same (or every) interface. */
function sameSocket(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  return a.host === b.host || any(a.host) || any(b.host);
}

/**
 * The HTTP listeners. The control listener serves every route; the optional public one serves
 * only read-only status (the status page, GET /api/v1/entities and /events, /healthz, /readyz).
 * Status routes are open to anyone on either listener; every other route needs an address in
 * `allow` and, when `token` is set, `Authorization: Bearer <token>`.
 */
const httpSchema = z
  .object({
    /** Interface of the control listener; default 0.0.0.0 (every interface). */
    host: hostSchema.default('0.0.0.0'),
    /** Port of the control listener; default 8000. */
    port: portSchema.default(8000),
    /** The read-only status listener, e.g. `{ port: 8080 }`; left out, there is none. */
    public: z
      .object({
        /** Default 0.0.0.0 (every interface). */
        host: hostSchema.default('0.0.0.0'),
        /** Default 8080. */
        port: portSchema.default(8080),
      })
      .strict()
      .optional(),
    /**
     * A listener for Prometheus, e.g. `{ port: 9464 }`: `GET /metrics` and nothing else, with no
     * token (a scraper holds no control credential), to clients in its own `allow` (default
     * loopback and the private ranges, which hold a cluster's pod network). Left out, there is
     * none, and /metrics is a control route of `port` (its `allow` and token).
     */
    metrics: z
      .object({
        /** Default 0.0.0.0 (every interface). */
        host: hostSchema.default('0.0.0.0'),
        /** Default 9464. */
        port: portSchema.default(9464),
        /** Networks (CIDR) that may scrape; default loopback and the private ranges. */
        allow: z.array(cidrSchema).default([...defaultAllow]),
      })
      .strict()
      .optional(),
    /** Networks (CIDR) whose clients may use control routes; default loopback and the private ranges. */
    allow: z.array(cidrSchema).default([...defaultAllow]),
    /**
     * A bearer token that control requests must also carry; usually `${HEARTH_TOKEN}`. Empty or
     * left out: no token, the allow-list alone guards control.
     */
    token: z.preprocess((v) => (v === null || v === '' ? undefined : v), tokenSchema.optional()),
    /**
     * Names by which clients call hearth, besides IP addresses, `localhost` and this machine's
     * own names: e.g. `[hearth.home.arpa]`. Control requests naming any other host are refused
     * (a defence against DNS rebinding).
     */
    hostNames: z.array(hostNameSchema).default([]),
    /** Event streams (GET /api/v1/events) open at once, per listener; one more is a 503. Default 100. */
    maxStreams: z.number().int().min(1).max(10_000).default(100),
    /**
     * Event streams one client address may hold open at once, per listener, so one client
     * cannot take every place of `maxStreams` and lock the dashboards out. Default 10.
     */
    maxStreamsPerClient: z.number().int().min(1).max(10_000).default(10),
    /**
     * Connections one client address may hold open at once, per listener; one more is closed at
     * once, so idle sockets from one address cannot use up hearth's file descriptors. Default 64
     * (a browser opens at most 6 per server). A proxy listed in `trustProxy` is not counted.
     */
    maxConnectionsPerClient: z.number().int().min(1).max(100_000).default(64),
    /** Seconds a client has to send a request's line and headers; default 10. */
    headersTimeout: z.number().positive().max(600).default(10),
    /** Seconds a client has to send a whole request, body included; default 30. */
    requestTimeout: z.number().positive().max(600).default(30),
    /** Seconds an idle keep-alive connection stays open between requests; default 5. */
    keepAliveTimeout: z.number().positive().max(600).default(5),
    /**
     * The reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` hearth believes:
     * `false` (the default) believes none, `true` one on this box (loopback), or a list of
     * their addresses or networks (CIDR). A request from a trusted proxy is judged by the
     * client address the proxy forwards (`http.allow`, login throttling) and counts as TLS
     * when the proxy says it came over https (the session cookie is then `Secure`).
     */
    trustProxy: z
      .union([z.boolean(), z.array(cidrSchema).min(1, 'must list at least one proxy, or be false')])
      .default(false),
  })
  .strict()
  .superRefine((http, ctx) => {
    if (http.headersTimeout > http.requestTimeout) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['headersTimeout'],
        message: `is longer than requestTimeout (${http.requestTimeout}); the headers are part of the request, so make it at most that`,
      });
    }
    if (http.public && sameSocket(http, http.public)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['public', 'port'],
        message: `is the control listener's port too; pick another one (e.g. 8080), or leave \`public\` out to serve status on port ${http.port} only`,
      });
    }
    if (http.metrics && sameSocket(http, http.metrics)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['metrics', 'port'],
        message: `is the control listener's port too; pick another one (e.g. 9464), or leave \`metrics\` out to serve /metrics on port ${http.port} (a control route)`,
      });
    }
    if (http.metrics && http.public && sameSocket(http.public, http.metrics)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['metrics', 'port'],
        message: `is the public listener's port too; pick another one (e.g. 9464)`,
      });
    }
  })
  .default({});

/** `media:`: where chime files live and the URL speakers fetch them from. */
const mediaSchema = z
  .object({
    /** The folder, relative to the config file's folder. */
    dir: z.string().min(1).default('data/media'),
    /**
     * Where speakers reach hearth, e.g. `http://192.168.1.10:30080` (a NodePort, a reverse proxy):
     * needed when hearth runs behind NAT or in a pod, where the address it sees for itself is not
     * one the speakers can reach. Left out: this box's address on the speaker's network and the
     * control listener's port.
     */
    baseUrl: z
      .string()
      .url('must be a URL like http://192.168.1.10:8000')
      .refine((u) => /^https?:\/\//i.test(u), 'must start with http:// or https://')
      .refine((u) => !/[?#]/.test(u), 'must not have a query or a fragment')
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
  })
  .strict()
  .default({});

/**
 * `storage:`: exactly one of `sqlite` (one box; the default) or `postgres` (several boxes). The
 * PostgreSQL URL holds the password, so it is never echoed in an error (see isSecretField).
 */
const storageSchema = z
  .object({
    /** Path of the SQLite file, relative to the config file's folder. */
    sqlite: z.string().min(1).optional(),
    postgres: z
      .object({
        /** Usually `${HEARTH_PG_URL}`: postgres://user:password@host:5432/database. */
        url: z
          .string()
          .regex(
            /^postgres(ql)?:\/\/[^/]+\/[^/?#]+/i,
            'must be a URL like postgres://hearth:PASSWORD@db.lan:5432/hearth (host and database name required)',
          ),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.sqlite !== undefined && s.postgres !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['postgres'],
        message: 'give either sqlite (one box) or postgres (several boxes), not both',
      });
    }
  })
  .transform(
    (s): { sqlite: string; postgres?: undefined } | { postgres: { url: string }; sqlite?: undefined } =>
      s.postgres ? { postgres: { url: s.postgres.url } } : { sqlite: s.sqlite ?? 'data/hearth.db' },
  )
  .default({});

/** `cluster:`: how roles on several boxes share singletons. */
const clusterSchema = z
  .object({
    /**
     * Lease length: a controller or agent that dies is replaced within about this long (plus 1 s).
     * Shorter fails over faster but renews more often (every third of it).
     */
    leaseSeconds: z.number().int().min(2).max(60).default(5),
    /** Only for `hearth kube render`: the Kubernetes manifests of the roles (src/config/sections/kubernetes.ts). */
    kubernetes: kubernetesSchema.optional(),
  })
  .strict()
  .default({});

/** Entries per configstack at most: a stack is one entry per replica, and a home has few. */
export const maxStackEntries = 1000;

/**
 * `configstacks:`: per-replica configs. Each stack is a list of mappings; each replica of a
 * Deployment or StatefulSet claims one entry (`hearth configstack claim`), which becomes its file.
 */
const configStacksSchema = z
  .record(
    idSchema,
    z
      .array(
        z
          .unknown()
          .refine(
            (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
            "must be a mapping (key: value lines, or { key: value }): it becomes the replica's YAML file",
          )
          .transform((v) => v as Record<string, unknown>),
      )
      .max(maxStackEntries, `has more than ${maxStackEntries} entries`),
  )
  .default({});

/**
 * The top level of hearth.yaml. Device lists hold entries whose `kind` names a driver; each
 * entry is validated by that driver's own schema afterwards, so errors still point at the line.
 */
export const configSchema = z
  .object({
    /** IANA zone for clocktime and schedules; the host's zone when left out. */
    timezone: z
      .string()
      .refine(isValidTimeZone, 'is not a known IANA time zone (e.g. America/Los_Angeles, Europe/Berlin)')
      .default(systemTimeZone),
    http: httpSchema,
    storage: storageSchema,
    cluster: clusterSchema,
    /** Per-replica configs: stack name → entries; see `hearth configstack claim`. */
    configstacks: configStacksSchema,
    /**
     * The MQTT broker (Mosquitto) the roles of a cluster meet at; later also Home Assistant
     * discovery and MQTT devices. Optional on one box.
     */
    mqtt: mqttConfigSchema.optional(),
    /** Home Assistant MQTT discovery over the `mqtt:` broker; on by default when `mqtt:` is set. */
    homeassistant: z
      .object({
        discovery: z.boolean().default(true),
        /** Home Assistant's `discovery_prefix`. */
        prefix: z
          .string()
          .refine(
            (b) => b.split('/').length <= 4 && b.split('/').every((s) => segmentPattern.test(s)),
            'must be 1 to 4 levels of A-Z, a-z, 0-9, _ and - separated by /, like homeassistant (no wildcards, no leading or trailing /)',
          )
          .default('homeassistant'),
        /** The `<node_id>` level of discovery topics and part of every `unique_id`: one per hearth on a broker. */
        nodeId: idSchema.default('hearth'),
        /**
         * Where people open hearth's dashboard, e.g. `http://hearth.home.arpa:8000`: Home Assistant
         * links every hearth device to it (`configuration_url`). Left out: no link, as hearth
         * cannot know the address others reach it at (a proxy, a NodePort).
         */
        dashboardUrl: z
          .string()
          .url('must be a URL like http://hearth.home.arpa:8000')
          .refine((u) => /^https?:\/\//i.test(u), 'must start with http:// or https://')
          .refine(
            (u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''),
            'must not hold user:password@: every client of the broker reads it in the discovery configs',
          )
          .optional(),
      })
      .strict()
      .default({}),
    /** A YAML file of `name: value` pairs for `!secret name`, relative to the config file; keep it out of git. */
    secrets: z.string().min(1).optional(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .default({}),
    /** Chime files, served to speakers at /api/v0/chime/<file>; `hearth media add FILE` puts one there. */
    media: mediaSchema,
    /** Each entry is checked by the driver its `kind` names (see load.ts). */
    switches: z.array(z.unknown()).default([]),
    coffee: z.array(z.unknown()).default([]),
    sprinklers: z.array(z.unknown()).default([]),
    speakers: z.array(z.unknown()).default([]),
    calendars: z.array(z.unknown()).default([]),
    /** Devices spoken to over the `mqtt:` broker by topic (mqtt_things firmware); they need `mqtt:`. */
    things: z.array(z.unknown()).default([]),
    /** A zigbee2mqtt bridge on the `mqtt:` broker; its devices become entities (needs `mqtt:`). */
    zigbee2mqtt: z.unknown().optional(),
    automations: z.array(automationSchema).default([]),
    /** The history of entity states: how long raw and downsampled rows are kept (see src/history/). */
    history: historySchema,
    /** Backup archives: where they go and, with `every:`, when hearth makes them itself. */
    backup: backupSchema,
    buttons: z.array(z.object({ id: idSchema, name: z.string().min(1).optional() }).strict()).default([]),
    /**
     * Any client on the LAN may press a new button id, and each one becomes an entity; this caps
     * how many ids not under `buttons:` may exist. Past it, a press of a new id is refused (409).
     */
    buttonLimits: z
      .object({
        /** Default 100; 0 allows only the declared buttons. */
        maxUndeclared: z.number().int().min(0).max(10_000).default(100),
      })
      .strict()
      .default({}),
  })
  .strict();

export type RawConfig = z.output<typeof configSchema>;
