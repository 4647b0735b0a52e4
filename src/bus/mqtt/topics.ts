import { z } from 'zod/v3';

/**
 * What travels on which topic (docs/mqtt.md is the reader's version of this file), under
 * `<base>/cluster/`:
 *
 * - `members/<clientId>`: `online` / `offline`, retained; `offline` is the last will.
 * - `state/<entity>`: the entity's view as retained JSON.
 * - `event/<entity>`: a reported state or an announcement, not retained.
 * - `leader/<lease>`: who leads, retained.
 * - `cmd/<agent>`, `ctl/<request>`: requests to one agent, to the controller (MQTT 5 request/response).
 * - `reply/<clientId>`: replies to the requests that process made.
 * - `backup`: the leading controller's backups (newest archive, schedule), retained.
 */

/** One topic level made from an id: entity ids, agent names and client ids are all of this form. */
export const segmentPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** An id that cannot be put into a topic: it would change the topic's levels or be a wildcard. */
export class TopicIdError extends Error {
  constructor(what: string, id: string) {
    super(
      `${what} ${JSON.stringify(id.slice(0, 80))} cannot be used in an MQTT topic: it must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -`,
    );
    this.name = 'TopicIdError';
  }
}

/** Returns `id` if it is one safe topic level; throws {@link TopicIdError} otherwise. */
export function topicId(id: string, what = 'id'): string {
  if (!segmentPattern.test(id)) throw new TopicIdError(what, id);
  return id;
}

/** The topics under one base, with every id checked before it becomes part of a topic. */
export class Topics {
  readonly base: string;

  /**
   * Where the processes of hearth talk among themselves: `<base>/cluster/...`, four levels
   * deep, so it never meets the three-level topics hearth offers other tools
   * (`<base>/<entity>/state`), whatever an entity is called.
   */
  readonly root: string;

  constructor(base: string) {
    for (const level of base.split('/')) topicId(level, 'baseTopic level');
    this.base = base;
    this.root = `${base}/cluster`;
  }

  member(clientId: string): string {
    return `${this.root}/members/${topicId(clientId, 'client id')}`;
  }
  get members(): string {
    return `${this.root}/members/+`;
  }
  state(entity: string): string {
    return `${this.root}/state/${topicId(entity, 'entity id')}`;
  }
  get states(): string {
    return `${this.root}/state/+`;
  }
  event(entity: string): string {
    return `${this.root}/event/${topicId(entity, 'entity id')}`;
  }
  get events(): string {
    return `${this.root}/event/+`;
  }
  cmd(agent: string): string {
    return `${this.root}/cmd/${topicId(agent, 'agent name')}`;
  }
  /** Who leads a lease: `controller`, `agent-<name>`. */
  leader(leaseId: string): string {
    return `${this.root}/leader/${topicId(leaseId, 'lease')}`;
  }
  get leaders(): string {
    return `${this.root}/leader/+`;
  }
  /** Requests to the leading controller, e.g. `run`. */
  ctl(name: string): string {
    return `${this.root}/ctl/${topicId(name, 'request')}`;
  }
  /** The leading controller's backups (src/backup/scheduler.ts BackupStatus), retained. */
  get backup(): string {
    return `${this.root}/backup`;
  }
  reply(clientId: string): string {
    return `${this.root}/reply/${topicId(clientId, 'client id')}`;
  }

  /**
   * The id in the last level of a topic under `<base>/<section>/`, or undefined when the topic
   * is not one of those (or its id is not a valid one: someone else published there).
   */
  idOf(
    section: 'members' | 'state' | 'event' | 'cmd' | 'reply' | 'leader',
    topic: string,
  ): string | undefined {
    const prefix = `${this.root}/${section}/`;
    if (!topic.startsWith(prefix)) return undefined;
    const id = topic.slice(prefix.length);
    return segmentPattern.test(id) ? id : undefined;
  }
}

/** The retained payload of `<base>/state/<entity>`. */
export const statePayloadSchema = z.object({
  state: z.unknown(),
  available: z.boolean(),
  reason: z.string().nullable(),
  /** Epoch milliseconds of the last change or report. */
  updatedAt: z.number().finite(),
  attributes: z.record(z.unknown()).default({}),
});
export type StatePayload = z.infer<typeof statePayloadSchema>;

/** The payload of `<base>/event/<entity>`. */
export const eventPayloadSchema = z.object({
  event: z.string().min(1).max(64),
  data: z.record(z.unknown()).default({}),
  at: z.number().finite(),
});
export type EventPayload = z.infer<typeof eventPayloadSchema>;

/** The payloads of `<base>/members/<clientId>`. */
export type MemberPayload = 'online' | 'offline';

/**
 * Parses a JSON payload against a schema; undefined for anything else (not UTF-8 JSON, wrong
 * shape), so a subscriber counts and ignores garbage instead of throwing on it.
 */
export function parseJson<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, payload: Buffer): T | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}
