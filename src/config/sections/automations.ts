import { Cron } from 'croner';
import { z } from 'zod/v3';
import { idSchema } from '../../contract/kinds.js';
import { type AutomationMode, automationModes } from '../../contract/views.js';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day as HH:MM, e.g. 06:30');

export const cronExpression = z.string().superRefine((expr, ctx) => {
  const fields = expr.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    ctx.addIssue({
      code: 'custom',
      message: `must have 5 fields (or 6 with seconds first); "${expr}" has ${fields}`,
    });
    return;
  }
  try {
    new Cron(expr, { paused: true });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `is not a cron expression: ${(err as Error).message}` });
  }
});

/** `{ state: bedside, to: on }`: fires when the entity reports that state (a repeated button press counts). */
const stateTrigger = z
  .object({
    state: idSchema,
    to: z.union([z.string(), z.number()]).optional(),
    from: z.union([z.string(), z.number()]).optional(),
  })
  .strict();
const cronTrigger = z.object({ cron: cronExpression }).strict();
const atTrigger = z.object({ at: hhmm }).strict();
/** `{ calendar: coffee-cal, on: start, summary: Brew }`: summary is a substring (any case) or `/regex/flags`. */
const calendarTrigger = z
  .object({
    calendar: idSchema,
    on: z.enum(['start', 'end']).default('start'),
    summary: z.string().min(1).optional(),
  })
  .strict();
/** Documents that the automation is run from outside: POST /api/v1/automations/<id>/run (any automation can be). */
const webhookTrigger = z.object({ webhook: z.literal(true) }).strict();

/** A union's own message names the shapes it takes; zod's would say only "Invalid input". */
const oneOf = (shapes: string) => ({
  errorMap: (issue: z.ZodIssueOptionalMessage, ctx: { defaultError: string }) =>
    issue.code === 'invalid_union' ? { message: `must be one of: ${shapes}` } : { message: ctx.defaultError },
});

export const triggerSchema = z.union(
  [stateTrigger, cronTrigger, atTrigger, calendarTrigger, webhookTrigger],
  oneOf(
    '{ state: <id>, to: <state> }, { cron: "<expr>" }, { at: "HH:MM" }, { calendar: <id>, on: start|end, summary: <text> }, { webhook: true }',
  ),
);

const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export const conditionSchema = z.union([
  z
    .object({
      state: idSchema,
      is: z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]),
    })
    .strict(),
  z.object({ time: z.object({ after: hhmm.optional(), before: hhmm.optional() }).strict() }).strict(),
  z.object({ weekday: z.array(z.enum(weekdays)).min(1) }).strict(),
]);

const retrySchema = z
  .object({
    /** Tries in all, the first included. */
    attempts: z.number().int().min(1).max(10).default(1),
    delaySeconds: z.number().min(0).max(3600).default(5),
  })
  .strict();

const duration = z
  .object({
    hours: z.number().min(0).optional(),
    minutes: z.number().min(0).optional(),
    seconds: z.number().min(0).optional(),
  })
  .strict()
  .refine(
    (d) => d.hours !== undefined || d.minutes !== undefined || d.seconds !== undefined,
    'give seconds, minutes or hours',
  );

/** `lamp.toggle`: an entity id, a dot, a command of its kind. */
const commandRef = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}\.[a-z_]+$/, 'must be <entity id>.<command>, e.g. lamp.toggle');

export const actionSchema = z.union(
  [
    z
      .object({ command: commandRef, args: z.record(z.unknown()).optional(), retry: retrySchema.optional() })
      .strict(),
    z.object({ delay: duration }).strict(),
    z
      .object({
        http: z
          .object({
            url: z
              .string()
              .url()
              .refine(
                (u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''),
                'must not hold user:password@ (a URL is shown in runs and logs); put the credentials in headers, e.g. `Authorization: !secret hook_auth` from the secrets file',
              ),
            method: z.enum(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']).default('POST'),
            headers: z.record(z.string()).optional(),
            body: z.unknown().optional(),
            timeoutMs: z.number().int().min(100).max(60_000).default(5000),
          })
          .strict(),
        retry: retrySchema.optional(),
      })
      .strict(),
    z.object({ automation: idSchema }).strict(),
  ],
  oneOf(
    '{ command: <id>.<command>, args: {...} }, { delay: { seconds: N } }, { http: { url: ... } }, { automation: <id> }',
  ),
);

/**
 * What to do about a schedule that passed while hearth was down (a power cut): `skip` (the
 * default), or `{ runOnceWithinMinutes: 15 }` to run once if the latest missed time is at
 * most that long ago.
 */
const missedSchema = z.union([
  z.literal('skip'),
  z
    .object({
      runOnceWithinMinutes: z
        .number()
        .positive()
        .max(7 * 24 * 60),
    })
    .strict(),
]);

/** What a trigger does while the automation is running (src/contract/views.ts: the API shows it). */
export { type AutomationMode, automationModes };
/** Runs at a time (parallel), or running and waiting (queued), when `max` is left out. */
export const defaultMaxRuns = 10;

export const automationSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1).optional(),
    triggers: z.array(triggerSchema).default([]),
    conditions: z.array(conditionSchema).default([]),
    actions: z.array(actionSchema).min(1),
    missed: missedSchema.default('skip'),
    /** The default retry policy of this automation's command and http actions. */
    retry: retrySchema.default({}),
    /**
     * A trigger while a run is under way: `single` (default) records it as skipped, `restart`
     * cancels the run and starts again, `queued` runs it after, `parallel` runs it beside.
     */
    mode: z.enum(automationModes).default('single'),
    /** queued: runs running and waiting; parallel: runs at once. Default 10; past it a trigger is skipped. */
    max: z.number().int().min(1).max(1000).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.max !== undefined && a.mode !== 'queued' && a.mode !== 'parallel') {
      ctx.addIssue({
        code: 'custom',
        path: ['max'],
        message: `applies only to mode: queued or parallel, and this automation's mode is ${a.mode}: remove max, or set the mode`,
      });
    }
  });

export type AutomationConfig = z.output<typeof automationSchema>;
export type Trigger = z.output<typeof triggerSchema>;
export type Condition = z.output<typeof conditionSchema>;
export type Action = z.output<typeof actionSchema>;

export function durationMs(d: { hours?: number; minutes?: number; seconds?: number }): number {
  return ((d.hours ?? 0) * 3600 + (d.minutes ?? 0) * 60 + (d.seconds ?? 0)) * 1000;
}
