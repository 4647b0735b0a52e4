import { z } from 'zod/v3';
import { kindNames } from '../contract/kinds.js';
import {
  backupStatusSchema,
  type EntityView,
  entityViewSchema,
  entityViewShape,
  idSchema,
} from '../contract/views.js';

/*
 * What the roles send each other on MQTT, beside src/bus/mqtt/topics.ts (the topic names).
 * Every payload is parsed with these schemas: anything else on our topics is garbage, counted
 * and ignored, never thrown. What HTTP clients see as well (an entity's view, the backup
 * status) is src/contract/views.ts; what is the cluster's alone (fences, leader records,
 * requests) is here.
 */

/**
 * The fencing token of the lease term a message was published in: an agent leader puts its
 * lease's token beside every view and event it publishes, and a consumer never lets a message of
 * an older term overwrite one of a newer (src/mqtt-link/fence.ts). Cluster wire only: the views
 * HTTP clients see never carry it.
 */
const fenceSchema = z.number().int().nonnegative().optional();

/**
 * `<base>/cluster/state/<entity>`, retained: the entity's whole view, with beside its fields the
 * `fence` of the agent leader that published it (absent on a button, which no lease owns).
 */
export const stateSchema = z.object({ ...entityViewShape, fence: fenceSchema });

/** A state message's view (what HTTP clients see) and its fence, apart. */
export function splitFence(message: z.infer<typeof stateSchema>): { view: EntityView; fence?: number } {
  const { fence, ...view } = message;
  return { view: view as EntityView, ...(fence === undefined ? {} : { fence }) };
}

/**
 * `<base>/cluster/event/<entity>`, not retained: a state the entity reported (`state`, with the state
 * before it: a press of the same state again is still a press), or something it announced
 * (`event`, a calendar event starting). State changes travel here as well as in the retained
 * state, because a retained message is re-sent after every reconnect and must never look like
 * a new press. Each carries the publishing leader's `fence`, as a state message does.
 */
export const entityEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), view: entityViewSchema, previous: z.unknown(), fence: fenceSchema }),
  z.object({
    type: z.literal('event'),
    id: idSchema,
    kind: z.enum(kindNames),
    event: z.string().min(1).max(64),
    data: z.record(z.unknown()),
    at: z.number().finite(),
    fence: fenceSchema,
  }),
]);
export type EntityEvent = z.infer<typeof entityEventSchema>;

/**
 * `<base>/cluster/leader/<lease>`, retained: who leads a lease now, with the lease's fencing
 * token; `holder: null` with the token of the term that ended once its holder stepped down. A
 * record of an older term than one already seen is ignored (src/mqtt-link/fence.ts).
 */
export const leaderSchema = z.object({
  holder: z.string().max(128).nullable(),
  token: z.number().int().nonnegative(),
});
export type LeaderRecord = z.infer<typeof leaderSchema>;

/** A request on `<base>/cluster/cmd/<agent>`. */
export const commandRequestSchema = z.object({
  id: idSchema,
  name: z.string().min(1).max(64),
  args: z.unknown(),
});

/** A request on `<base>/cluster/ctl/run`: run an automation now. */
export const runRequestSchema = z.object({
  automation: idSchema,
  trigger: z.string().min(1).max(200),
});

/** The topic level of a lease: `controller`, or `agent-NAME` (a `:` is not topic-safe everywhere). */
export function leaseTopicId(lease: string): string {
  return lease.replace(':', '-');
}

/**
 * `<base>/cluster/backup`, retained: how backups stand, as the leading controller last said,
 * with its term's `fence`; an api service shows the newest term's.
 */
export const backupMessageSchema = z.intersection(backupStatusSchema, z.object({ fence: fenceSchema }));
