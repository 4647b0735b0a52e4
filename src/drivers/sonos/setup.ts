import type { DriverContext, Running } from '../../core/driver.js';
import { HearthError } from '../../core/errors.js';
import { SerialQueue } from '../../core/serial-queue.js';
import { playChime } from './chime.js';
import { SonosClient, SonosError } from './client.js';
import type { SonosConfig } from './config.js';
import { escapeXml } from './soap.js';

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

// Nothing here touches the network: a speaker that is away at start still gets its entity,
// which the runtime marks unavailable on the first failed read.
export async function setupSonos(ctx: DriverContext, config: SonosConfig): Promise<Running> {
  const client = new SonosClient({ host: config.address, port: config.port, timeoutMs: config.timeoutMs });
  const device = { host: config.address, port: config.port };
  const media = ctx.media;
  // Chimes on one speaker run one at a time. The runtime queues commands too, but a chime it
  // gave up on (its deadline passed) may still be restoring the music: the next one waits.
  const chimes = new SerialQueue(`chimes on ${config.id}`);
  let playing = 0;

  const handle = ctx.entities.bind(
    config.id,
    'chime',
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
        return chimes.run(async () => {
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
      },
    },
    {
      pollMs: config.pollSeconds * 1000,
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
  );
  return {
    // The signal has cut any chime short; wait for its music to be restored.
    stop: async () => {
      await chimes.idle();
    },
  };
}
