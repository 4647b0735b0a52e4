/**
 * The Sonos driver: one zone player becomes one `chime` entity. The protocol lives in client.ts,
 * the chime sequence in chime.ts; this file maps them onto hearth.
 */
import { z } from 'zod/v3';
import { deviceBaseSchema, hostSchema, portSchema, withName } from '../../core/device-schema.js';
import type { Driver } from '../../core/driver.js';
import { HearthError } from '../../core/errors.js';
import { playChime } from './chime.js';
import { SONOS_PORT, SonosClient, SonosError } from './client.js';
import { simulator } from './simulator.js';
import { escapeXml } from './soap.js';

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
  })
  .strict()
  .transform(withName);

export type SonosConfig = z.output<typeof sonosConfigSchema>;

/**
 * The most SOAP calls one chime makes outside the wait for the clip: 4 to snapshot, pause,
 * volume, URI, play, a last poll, and 5 to restore; 2 to spare.
 */
export const CALLS_PER_CHIME = 16;

/**
 * The deadline of a whole `play`, which the runtime enforces: the clip's cap plus every call at
 * its own deadline. `play` resolves when the music is back, so an automation's next action
 * comes after the chime, and a failed restore fails the command.
 */
export function chimeDeadlineMs(config: Pick<SonosConfig, 'maxChimeSeconds' | 'timeoutMs'>): number {
  return Math.ceil(config.maxChimeSeconds * 1000) + CALLS_PER_CHIME * config.timeoutMs;
}

/** What the Sonos app shows while the chime plays. */
function chimeMetadata(file: string, url: string, contentType: string): string {
  return (
    '<DIDL-Lite xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:upnp="urn:schemas-upnp-org:metadata-1-0/upnp/"' +
    ' xmlns:r="urn:schemas-rinconnetworks-com:metadata-1-0/" xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/">' +
    '<item id="hearth-chime" parentID="-1" restricted="true">' +
    `<dc:title>${escapeXml(file)}</dc:title><upnp:class>object.item.audioItem.musicTrack</upnp:class>` +
    `<res protocolInfo="http-get:*:${escapeXml(contentType)}:*">${escapeXml(url)}</res>` +
    '</item></DIDL-Lite>'
  );
}

/** A speaker that did not answer in time is a 504, with the client's one-line reason. */
function asHearthError(err: unknown): unknown {
  if (err instanceof SonosError && err.code === 'ETIMEDOUT') {
    return new HearthError('HEARTH_ERR_DEVICE_TIMEOUT', err.message, { cause: err });
  }
  return err;
}

/** Sonos zone players (`kind: sonos/v1`), one `chime` entity each. */
export const sonosDriver: Driver<SonosConfig> = {
  name: 'sonos',
  configKinds: ['sonos/v1'],
  section: 'speakers',
  configSchema: sonosConfigSchema,
  simulator,

  // Nothing here touches the network: a speaker that is away at start still gets its entity,
  // which the runtime marks unavailable on the first failed read.
  async setup(ctx, config) {
    const client = new SonosClient({ host: config.address, port: config.port, timeoutMs: config.timeoutMs });
    const device = { host: config.address, port: config.port };
    const media = ctx.media;
    // Chimes on one speaker run one at a time. The runtime queues commands too, but a chime it
    // gave up on (its deadline passed) may still be restoring the music: the next one waits.
    let queue: Promise<unknown> = Promise.resolve();
    let playing = 0;

    const handle = ctx.entities.add(
      {
        id: config.id,
        kind: 'chime',
        name: config.name,
        timeoutMs: chimeDeadlineMs(config),
        pollMs: config.pollSeconds * 1000,
        attributes: { volume: config.volume },
        // A cheap call that says whether the speaker is there; the state is hearth's own.
        read: async ({ signal }) => {
          try {
            await client.getTransportInfo(signal);
          } catch (err) {
            throw asHearthError(err);
          }
          return playing > 0 ? 'playing' : 'idle';
        },
      },
      {
        play: async (args, { signal }) => {
          if (!media) throw new HearthError('HEARTH_ERR_CONFIG', 'hearth was started without a media folder');
          if (!(await media.has(args.media))) {
            throw new HearthError(
              'HEARTH_ERR_BAD_ARGUMENTS',
              `no chime "${args.media}" in the media folder ${media.dir}`,
              { hint: 'Copy the file there with `hearth media add FILE`, or name a file that is there.' },
            );
          }
          const url = await media.url(args.media, device);
          const volume = args.volume ?? config.volume;
          const metadata = chimeMetadata(args.media, url, media.contentType(args.media));
          const run = queue.then(async () => {
            playing++;
            handle.setState('playing');
            try {
              const outcome = await playChime(client, {
                uri: url,
                metadata,
                volume,
                maxMs: config.maxChimeSeconds * 1000,
                signal: AbortSignal.any([signal, ctx.signal]),
              });
              if (outcome.cut) {
                ctx.log.info(
                  { media: args.media, playedMs: Math.round(outcome.playedMs) },
                  'chime cut short (maxChimeSeconds, or hearth stopping); music restored',
                );
              }
              return 'idle' as const;
            } catch (err) {
              throw asHearthError(err);
            } finally {
              playing--;
              if (playing === 0) handle.setState('idle');
            }
          });
          queue = run.catch(() => undefined);
          return run;
        },
      },
    );
    return {
      // The signal has cut any chime short; wait for its music to be restored.
      stop: async () => {
        await queue;
      },
    };
  },
};

export { playChime } from './chime.js';
export { SonosClient, SonosError } from './client.js';
export { simulator as sonosSimulator, startSonosSimulator } from './simulator.js';
