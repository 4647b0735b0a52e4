import { z } from 'zod/v3';

/**
 * The closed catalogue of entity kinds: one entry per kind, the single source of truth for
 * the shape of its state and the commands it takes with their arguments. The HTTP API, the
 * dashboard, MQTT discovery and automations are derived from it and never know drivers.
 */
const noArgs = z.object({}).strict();
const onOff = z.enum(['on', 'off']);

export const kinds = {
  /** A relay or plug: a lamp, a fan. */
  switch: {
    description: 'An on/off relay or plug',
    state: onOff,
    commands: { on: noArgs, off: noArgs, toggle: noArgs },
  },
  /**
   * A wall button or any client that reports a state: hearth holds the state itself, durably,
   * so other devices can read it back.
   */
  button: {
    description: 'A button whose state hearth keeps',
    state: onOff,
    commands: { on: noArgs, off: noArgs },
  },
  /**
   * A heating element (a coffee pot's): on only while hearth is alive, brewing and sure of what
   * the device reports. `brew` runs for `minutes`, capped by the device's configured maximum.
   */
  heater: {
    description: 'A heater that is on only while brewing',
    state: onOff,
    commands: {
      brew: z.object({ minutes: z.number().positive().max(1440).optional() }).strict(),
      stop: noArgs,
    },
  },
  /** A water valve (a sprinkler zone): `open` for `seconds`, capped by the configured maximum. */
  valve: {
    description: 'A valve that opens for a set time',
    state: z.enum(['open', 'closed']),
    commands: {
      open: z.object({ seconds: z.number().positive().max(86_400) }).strict(),
      close: noArgs,
    },
  },
  /**
   * A speaker zone that plays chimes: `play` snapshots what is playing, plays the clip at the
   * chime volume, and restores what was playing. `attributes.clips` (`[{ media, name }]`) are the
   * clips it offers by name, as buttons in Home Assistant.
   */
  chime: {
    description: 'A speaker that plays chimes',
    state: z.enum(['idle', 'playing']),
    commands: {
      play: z
        .object({
          /** A file in the media folder, e.g. `swed.mp3`. */
          media: z.string().min(1).max(255),
          /** 0-100; the speaker's configured chime volume when left out. */
          volume: z.number().int().min(0).max(100).optional(),
        })
        .strict(),
    },
  },
  /**
   * An iCal feed: `on` while one of its events is in progress. It fires `start` and `end`
   * events (see EntityHandle.fire) that calendar triggers of automations listen to.
   */
  calendar: {
    description: 'A calendar feed',
    state: onOff,
    commands: {},
  },
  /**
   * An air conditioner or heat pump: whether it runs, its mode and its target temperature
   * (°C, 18–30). `set` changes any of the three; `on`/`off` switch its power.
   */
  climate: {
    description: 'An air conditioner or heat pump',
    state: z
      .object({
        power: onOff,
        mode: z.enum(['off', 'cool', 'heat', 'fan_only']),
        target: z.number().min(18).max(30),
      })
      .strict(),
    commands: {
      set: z
        .object({
          power: onOff.optional(),
          mode: z.enum(['off', 'cool', 'heat', 'fan_only']).optional(),
          temperature: z.number().int().min(18).max(30).optional(),
        })
        .strict(),
      on: noArgs,
      off: noArgs,
    },
  },
  /**
   * Something detected or not: motion, a door open, water. `on` means detected (the door is
   * open); `attributes.deviceClass` says what it senses (occupancy, door, moisture ...).
   */
  binary_sensor: {
    description: 'A detector: on when it detects (motion, an open door, water)',
    state: onOff,
    commands: {},
  },
  /**
   * A reading: a number with a unit in `attributes.unit`, or a time as an ISO string.
   * `attributes.deviceClass` may say what it measures (./sensor-classes.ts: `battery`,
   * `distance`, `timestamp` ...), where the unit alone does not.
   */
  sensor: {
    description: 'A measurement',
    state: z.union([z.number(), z.string()]).nullable(),
    commands: {},
  },
} as const;

export type Kind = keyof typeof kinds;
export type KindSpec = (typeof kinds)[Kind];
export type StateOf<K extends Kind> = z.infer<(typeof kinds)[K]['state']>;
export type CommandName<K extends Kind> = keyof (typeof kinds)[K]['commands'] & string;
export type CommandArgs<K extends Kind, C extends CommandName<K>> = z.infer<
  (typeof kinds)[K]['commands'][C] & z.ZodType
>;

/** Every kind's name, for schemas of payloads that name a kind. */
export const kindNames = Object.keys(kinds) as [Kind, ...Kind[]];

export function isKind(value: string): value is Kind {
  return Object.hasOwn(kinds, value);
}

export function commandNames(kind: Kind): string[] {
  return Object.keys(kinds[kind].commands);
}

/** The argument schema of a command, or undefined if the kind has no such command. */
export function commandSchema(kind: Kind, command: string): z.ZodType | undefined {
  const commands = kinds[kind].commands as Record<string, z.ZodType>;
  return Object.hasOwn(commands, command) ? commands[command] : undefined;
}

/** Ids of entities, buttons and devices: safe in URLs, MQTT topics and metric labels. */
export const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
export const idSchema = z.string().regex(idPattern, 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -');
