import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import { isPlainFileName } from '../../media/library.js';
import { SONOS_PORT } from './port.js';

/** Clips one speaker offers at most: each is a button in Home Assistant. */
export const maxClips = 20;

/** `doorbell.mp3` → `doorbell`; `front-door_2.mp3` → `front door 2`. */
export function clipName(file: string): string {
  const dot = file.lastIndexOf('.');
  const stem = dot > 0 ? file.slice(0, dot) : file;
  return stem.replace(/[_-]+/g, ' ').trim() || file;
}

/** A clip the speaker offers: `doorbell.mp3`, or `{ media: doorbell.mp3, name: Doorbell }`. */
const clipSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { media: v } : v),
  z
    .object({
      media: z
        .string()
        .refine(
          isPlainFileName,
          'must be the name of a file in the media folder, like doorbell.mp3 (no /, no leading .)',
        ),
      /** What Home Assistant's button says: "Play <name>". Default: the file's name without its extension. */
      name: z.string().min(1).max(64).optional(),
    })
    .strict()
    .transform((c) => ({ media: c.media, name: c.name ?? clipName(c.media) })),
);

/** A `kind: sonos/v1` entry of `speakers:`. Unknown keys are errors, so typos do not pass silently. */
export const sonosConfigSchema = deviceBaseSchema
  .extend({
    kind: z.literal('sonos/v1'),
    /** IP address or host name of the zone player (discovery does not work from a pod). */
    address: hostSchema,
    port: portSchema.default(SONOS_PORT),
    /** The volume chimes play at, 0-100; a `play` command's `volume` overrides it. */
    volume: z.number().int().min(0).max(100).default(40),
    /** A chime is cut off after this long, and the music restored. */
    maxChimeSeconds: z.number().positive().max(600).default(30),
    /**
     * Clips of the media folder this speaker offers by name: Home Assistant gets a button for
     * each ("Play doorbell"). Any file of the folder still plays with a `play` command.
     */
    clips: z
      .array(clipSchema)
      .max(maxClips, `lists more than ${maxClips} clips; each becomes a button in Home Assistant`)
      .default([])
      .superRefine((clips, ctx) => {
        const seen = new Set<string>();
        clips.forEach((c, i) => {
          if (seen.has(c.media))
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [i],
              message: `lists ${c.media} twice; name each clip once`,
            });
          seen.add(c.media);
        });
      }),
  })
  .strict()
  .transform(withName);

export type SonosConfig = z.output<typeof sonosConfigSchema>;
