import { z } from 'zod/v3';
import { deviceBaseSchema, withName } from '../../core/device-schema.js';
import { BAUD_RATE, HEATER_DEADMAN_MS, REBOOT_AFTER_MS } from './protocol.js';

/** A `kind: mrcoffeebot/v1` entry of `coffee:`. Unknown keys are errors, so typos do not pass silently. */
export const coffeeConfigSchema = deviceBaseSchema
  .omit({ timeoutMs: true, pollSeconds: true })
  .extend({
    kind: z.literal('mrcoffeebot/v1'),
    /** The board's serial device; prefer /dev/serial/by-id/..., which survives replugging. */
    path: z.string().min(1),
    baudRate: z.number().int().positive().default(BAUD_RATE),
    /** The longest brew; a `brew` asking for more gets this. Fractions are fine (0.5 = 30 s). */
    maxBrewMinutes: z.number().positive().max(120).default(20),
    /** Wait after opening the port before talking: opening it resets the board. */
    settleMs: z.number().int().min(0).max(10_000).default(2000),
    /** How often B+1 is resent while brewing; the firmware drops the heater after 1000 ms. */
    heartbeatMs: z
      .number()
      .int()
      .min(50)
      .max(900, `must be below the firmware's ${HEATER_DEADMAN_MS} ms heater window, with room to spare`)
      .default(300),
    /** How often status is read while idle; the firmware reboots after 5000 ms without a command. */
    pollMs: z
      .number()
      .int()
      .min(100)
      .max(4000, `must leave room inside the firmware's ${REBOOT_AFTER_MS} ms watchdog`)
      .default(2000),
    /** Deadline of one command/answer exchange with the board. */
    timeoutMs: z.number().int().min(20).max(900).default(250),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Said only when each is in range on its own, so one mistake gives one message.
    if (c.heartbeatMs <= 900 && c.timeoutMs <= 900 && c.heartbeatMs + c.timeoutMs >= HEATER_DEADMAN_MS) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['timeoutMs'],
        message: `heartbeatMs + timeoutMs (${c.heartbeatMs} + ${c.timeoutMs}) must be below the firmware's ${HEATER_DEADMAN_MS} ms heater window`,
      });
    }
  })
  .transform(withName);

/** One `kind: mrcoffeebot/v1` entry of the config, after defaults. */
export type CoffeeConfig = z.output<typeof coffeeConfigSchema>;

/** The ids of a pot's entities. */
export function coffeeEntityIds(id: string) {
  return {
    heater: id,
    water: `${id}-water`,
    temperature: `${id}-temperature`,
    lastStatus: `${id}-last-status`,
  } as const;
}
