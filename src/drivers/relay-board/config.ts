import { z } from 'zod/v3';
import { deviceBaseSchema, withName } from '../../core/device-schema.js';
import { BAUD_RATE, MAX_RELAY } from './protocol.js';

const zoneName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,63}$/, 'a zone name must be 1 to 63 characters of A-Z, a-z, 0-9, _ and -');
const relayNumber = z.number().int().min(1).max(MAX_RELAY);

/** A zone is its name (zone i is relay i+1) or `{ name, relay }` for boards wired out of order. */
const zoneSchema = z.union([zoneName, z.object({ name: zoneName, relay: relayNumber }).strict()]);

/**
 * A `kind: relay-board/v1` entry of `sprinklers:`. Unknown keys are errors, so a typo (say
 * `maxOpenMinute`) never silently leaves the default in place.
 */
export const relayBoardConfigSchema = deviceBaseSchema
  .omit({ pollSeconds: true, timeoutMs: true })
  .extend({
    kind: z.literal('relay-board/v1'),
    /** Serial device; prefer /dev/serial/by-id/..., which survives replugging into another USB port. */
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(BAUD_RATE),
    zones: z.array(zoneSchema).min(1).max(MAX_RELAY),
    /** The longest a zone stays open; a longer `open` is cut to this. */
    maxOpenMinutes: z.number().positive().max(1440).default(30),
    /** How many zones may be open at once; opening one more closes the one open longest. */
    maxZonesOpen: z.number().int().min(1).max(MAX_RELAY).default(1),
    /** How often an open zone's `on` is resent; the board drops it after ~30 s without. */
    refreshMs: z.number().int().min(100).max(10_000).default(1000),
    /** Wait after opening the port: the Arduino resets and boots. */
    settleMs: z.number().int().min(0).max(10_000).default(2000),
    /** Deadline of one command/answer exchange with the board. */
    timeoutMs: z.number().int().min(50).max(10_000).default(500),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Map<string, number>();
    const relays = new Map<number, number>();
    c.zones.forEach((zone, i) => {
      const name = typeof zone === 'string' ? zone : zone.name;
      const relay = typeof zone === 'string' ? i + 1 : zone.relay;
      const path = ['zones', i];
      const prior = names.get(name);
      if (prior !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `zone "${name}" is also zone ${prior + 1}; names must be unique`,
        });
      } else names.set(name, i);
      const priorRelay = relays.get(relay);
      if (priorRelay !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `relay ${relay} is also zone ${priorRelay + 1}'s; each zone needs its own relay`,
        });
      } else relays.set(relay, i);
      if (c.id.length + 1 + name.length > 64) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `the entity id "${c.id}-${name}" is longer than 64 characters; shorten the id or the zone name`,
        });
      }
    });
  })
  .transform((c) => ({
    ...withName(c),
    zones: c.zones.map((zone, i) => (typeof zone === 'string' ? { name: zone, relay: i + 1 } : zone)),
  }));

export type RelayBoardConfig = z.output<typeof relayBoardConfigSchema>;
export type ZoneConfig = RelayBoardConfig['zones'][number];

/** The valve entity of a zone: `<board id>-<zone>`, e.g. `garden-front`. */
export function zoneEntityId(boardId: string, zone: string): string {
  return `${boardId}-${zone}`;
}
