import { z } from 'zod/v3';
import { idPattern, type Kind, kindNames } from './kinds.js';

/*
 * What hearth sends its clients, in one place: the entity views, automations and their runs,
 * the backup status and the devices' layout, as the HTTP API answers them, the event streams
 * carry them and the cluster roles pass them on over MQTT (src/mqtt-link/wire.ts). Each type is
 * written out with its meaning; its schema beside it parses exactly it (the compiler holds one
 * to the other). The dashboard (web/) imports the types alone: no zod reaches the browser.
 */

/** An entity's or an automation's id: what the config allows (./kinds.ts idPattern). */
export const idSchema = z.string().regex(idPattern);

/** An entity as every transport shows it. */
export interface EntityView {
  id: string;
  kind: Kind;
  name: string;
  /** The driver that runs it, or `hearth` for state hearth keeps itself (buttons). */
  driver: string;
  /** The last known state; null until the device has been read. */
  state: unknown;
  available: boolean;
  /** Why it is unavailable; null when available. */
  reason: string | null;
  /** ISO time of the last state report; null if none yet. */
  updatedAt: string | null;
  commands: string[];
  /** Facts beside the state: a sensor's unit, when a brew or a valve ends. */
  attributes: Record<string, unknown>;
}

/** The fields of entityViewSchema, for messages that carry more beside them (a cluster state's fence). */
export const entityViewShape = {
  id: idSchema,
  kind: z.enum(kindNames),
  name: z.string().max(200),
  driver: z.string().max(64),
  state: z.unknown(),
  available: z.boolean(),
  reason: z.string().max(2000).nullable(),
  updatedAt: z.string().max(40).nullable(),
  commands: z.array(z.string().max(64)).max(32),
  attributes: z.record(z.unknown()),
};

/** An entity's whole view (`GET /api/v1/entities/<id>`). */
export const entityViewSchema: z.ZodType<EntityView, z.ZodTypeDef, unknown> = z.object(
  entityViewShape,
) as z.ZodType<EntityView, z.ZodTypeDef, unknown>;

/** What a trigger does while the automation is running, as in Home Assistant. */
export const automationModes = ['single', 'restart', 'queued', 'parallel'] as const;
export type AutomationMode = (typeof automationModes)[number];

export const runOutcomes = ['queued', 'running', 'ok', 'failed', 'skipped', 'cancelled'] as const;

/** One run of an automation, as recorded (`GET /api/v1/automations/<id>/runs`). */
export interface AutomationRun {
  id: number;
  automation: string;
  /** What started it: `cron 20 16 * * *`, `state bedside on`, `webhook`, `missed cron ...`. */
  trigger: string;
  startedAt: number;
  /** Null while running. */
  endedAt: number | null;
  /**
   * `queued`: waiting for the run before it (mode: queued); `cancelled`: stopped part-way (a
   * restart, or hearth stopping); `skipped`: a condition did not hold, or the mode refused it.
   */
  outcome: (typeof runOutcomes)[number];
  /** Why it failed, was skipped or cancelled; null when ok. */
  error: string | null;
}

export const automationRunSchema: z.ZodType<AutomationRun, z.ZodTypeDef, unknown> = z.object({
  id: z.number().int(),
  automation: idSchema,
  trigger: z.string(),
  startedAt: z.number(),
  endedAt: z.number().nullable(),
  outcome: z.enum(runOutcomes),
  error: z.string().nullable(),
});

/** An automation as the API shows it (`GET /api/v1/automations`). */
export interface AutomationView {
  id: string;
  name: string;
  triggers: string[];
  /** What a trigger does while a run is under way. */
  mode: AutomationMode;
  /** The limit of runs for queued and parallel; null for single and restart. */
  max: number | null;
  /** Runs under way now, and runs waiting their turn (queued). */
  running: number;
  queued: number;
  /** ISO time of the next scheduled run, if it has a schedule. */
  nextRunAt: string | null;
  lastRun: AutomationRun | null;
}

export const automationViewSchema: z.ZodType<AutomationView, z.ZodTypeDef, unknown> = z.object({
  id: idSchema,
  name: z.string(),
  triggers: z.array(z.string()),
  mode: z.enum(automationModes),
  max: z.number().int().nullable(),
  running: z.number().int().nonnegative(),
  queued: z.number().int().nonnegative(),
  nextRunAt: z.string().max(40).nullable(),
  lastRun: automationRunSchema.nullable(),
});

/** What GET /api/v1/backups and the dashboard show, and /metrics exports. */
export interface BackupStatus {
  /** The schedule (`backup.every`), or null when hearth makes no backups itself. */
  every: string | null;
  /** The newest archive in `backup.dir` (by the time in its name), whoever made it. */
  newest: { name: string; at: string; bytes: number } | null;
  /** The last scheduled backup that failed, until one succeeds again. */
  lastError: { at: string; message: string } | null;
  /** When the next scheduled backup runs (ISO), or null. */
  nextAt: string | null;
  running: boolean;
  /** The newest archive (or, with none, hearth's start) is older than twice the schedule. */
  stale: boolean;
}

/** A BackupStatus; in a cluster, `<base>/cluster/backup` carries the leading controller's. */
export const backupStatusSchema: z.ZodType<BackupStatus, z.ZodTypeDef, unknown> = z.object({
  every: z.string().max(200).nullable(),
  newest: z
    .object({ name: z.string().max(300), at: z.string().max(40), bytes: z.number().nonnegative() })
    .nullable(),
  lastError: z.object({ at: z.string().max(40), message: z.string().max(2000) }).nullable(),
  nextAt: z.string().max(40).nullable(),
  running: z.boolean(),
  stale: z.boolean(),
});

/** A configured device as the dashboard groups it (`GET /api/v1/devices`): its entities, and its room if the config names one. */
export interface DeviceLayout {
  id: string;
  name: string;
  room: string | null;
  entities: string[];
}

export const deviceLayoutSchema: z.ZodType<DeviceLayout, z.ZodTypeDef, unknown> = z.object({
  id: idSchema,
  name: z.string(),
  room: z.string().nullable(),
  entities: z.array(idSchema),
});
