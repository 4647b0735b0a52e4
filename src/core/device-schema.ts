import { z } from 'zod/v3';
import { idSchema } from '../contract/kinds.js';

/**
 * The fields every device entry shares. A driver extends this with its own (address, port ...)
 * so that defaults and error messages are the same for every device type.
 */
export const deviceBaseSchema = z.object({
  id: idSchema,
  kind: z.string(),
  name: z.string().min(1).optional(),
  /** Where it is (`Kitchen`): the dashboard groups devices by room. */
  room: z.string().min(1).max(64).optional(),
  simulate: z.boolean().default(false),
  /**
   * In a cluster, the agent process that runs this device (`hearth start --role agent --agent
   * NAME`): for a serial device, the one on the machine it is plugged into. Default `main`.
   * Ignored on one box, where one process runs every device.
   */
  agent: idSchema.optional(),
  /** Deadline of every call to the device. */
  timeoutMs: z.number().int().min(50).max(60_000).default(2000),
  /** How often the device's state is read; 0 turns polling off. */
  pollSeconds: z.number().min(0).max(86_400).default(10),
});

/** An MQTT topic (prefix) a device publishes or listens under: no wildcards, no empty levels. */
export const topicSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^#+/\s][^#+\s]*$/, 'must be an MQTT topic without wildcards (+, #), spaces or a leading /')
  .refine((t) => !t.endsWith('/') && !t.includes('//'), 'must have no empty level (no trailing / or //)');

export const hostSchema = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9.:_-]+$/, 'must be an IP address or a host name');

/** A port; a string of digits (a quoted `"${PORT}"` in a one-line entry) is taken as the number. */
export const portSchema = z.preprocess(
  (v) => (typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v),
  z.number().int().min(0).max(65_535),
);

/** Fills `name` from `id` when it was left out. */
export function withName<T extends { id: string; name?: string | undefined }>(c: T): T & { name: string } {
  return { ...c, name: c.name ?? c.id };
}
