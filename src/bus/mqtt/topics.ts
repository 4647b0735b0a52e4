import { z } from 'zod/v3';

/**
 * What travels on which topic (docs/mqtt.md is the reader's version of this file):
 *
 * - `<base>/members/<clientId>`: `online` / `offline`, retained; `offline` is the last will.
 * - `<base>/state/<entity>`: the entity's state as retained JSON ({@link StatePayload}).
 * - `<base>/event/<entity>`: what an entity announced (a button press), not retained.
 * - `<base>/cmd/<agent>`: command requests to one agent (MQTT 5 request/response).
 * - `<base>/reply/<clientId>`: replies to the requests that process made.
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

  constructor(base: string) {
    for (const level of base.split('/')) topicId(level, 'baseTopic level');
    this.base = base;
  }

  member(clientId: string): string {
    return `${this.base}/members/${topicId(clientId, 'client id')}`;
  }
  get members(): string {
    return `${this.base}/members/+`;
  }
  state(entity: string): string {
    return `${this.base}/state/${topicId(entity, 'entity id')}`;
  }
  get states(): string {
    return `${this.base}/state/+`;
  }
  event(entity: string): string {
    return `${this.base}/event/${topicId(entity, 'entity id')}`;
  }
  get events(): string {
    return `${this.base}/event/+`;
  }
  cmd(agent: string): string {
    return `${this.base}/cmd/${topicId(agent, 'agent name')}`;
  }
  reply(clientId: string): string {
    return `${this.base}/reply/${topicId(clientId, 'client id')}`;
  }

  /**
   * The id in the last level of a topic under `<base>/<section>/`, or undefined when the topic
   * is not one of those (or its id is not a valid one: someone else published there).
   */
  idOf(section: 'members' | 'state' | 'event' | 'cmd' | 'reply', topic: string): string | undefined {
    const prefix = `${this.base}/${section}/`;
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
