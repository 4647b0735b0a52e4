/**
 * A chime on one zone player: snapshot what it is doing, pause, play the clip at the chime
 * volume, wait for the clip to end, put everything back. Protocol only: imports nothing from
 * hearth, so it is tested against the simulator alone.
 */
import { type PositionInfo, type SonosClient, SonosError } from './client.js';
import { parseDuration } from './soap.js';

/** Transport states in which the speaker is (about to be) making sound. */
const PLAYING_STATES: ReadonlySet<string> = new Set(['PLAYING', 'TRANSITIONING']);

export interface ChimeRequest {
  /** The URL the speaker fetches the clip from. */
  uri: string;
  /** DIDL-Lite for the clip (what the Sonos app shows); may be empty. */
  metadata: string;
  /** 0-100, for the clip only. */
  volume: number;
  /** The clip is cut off after this long. */
  maxMs: number;
  /** How often the transport state is read while the clip plays; default 200 ms. */
  pollMs?: number;
  /** A clip not playing after this long never will (the speaker could not fetch it); default 3000 ms. */
  startMs?: number;
  /**
   * Aborts the calls before the clip and cuts the wait short (a deadline, or hearth stopping).
   * The restore does not listen to it: whatever happens, the speaker gets its music back, each
   * call bounded by the client's own timeout.
   */
  signal: AbortSignal;
}

/** What was playing before the chime, as the speaker reported it. */
export interface SpeakerSnapshot {
  transportState: string;
  uri: string;
  metadata: string;
  nrTracks: number;
  volume: number;
  /** Read after the pause, so the resume point is where the music stopped. */
  position: PositionInfo | undefined;
}

export interface ChimeOutcome {
  snapshot: SpeakerSnapshot;
  /** How long the clip played, from Play to the end of the wait. */
  playedMs: number;
  /** True when the clip was cut off by maxMs or by the signal. */
  cut: boolean;
}

/** A group member plays what its coordinator plays: its URI is `x-rincon:<coordinator uuid>`. */
export const isGroupMember = (uri: string) => uri.startsWith('x-rincon:');
const isQueue = (uri: string) => uri.startsWith('x-rincon-queue:');

/** A track with a length can be sought in; streams (radio, line-in, TV) report 0:00:00 or none. */
function seekable(position: PositionInfo): boolean {
  return (parseDuration(position.trackDuration) ?? 0) > 0;
}

/**
 * Plays one chime and restores the speaker. Resolves once the music is back; rejects with the
 * first failure (a restore failure included), after restoring whatever the chime changed.
 */
export async function playChime(client: SonosClient, req: ChimeRequest): Promise<ChimeOutcome> {
  const { signal } = req;
  const transport = await client.getTransportInfo(signal);
  const media = await client.getMediaInfo(signal);
  const volume = await client.getVolume(signal);
  const snapshot: SpeakerSnapshot = {
    transportState: transport.state,
    uri: media.uri,
    metadata: media.metadata,
    nrTracks: media.nrTracks,
    volume,
    position: undefined,
  };
  const wasPlaying = PLAYING_STATES.has(transport.state);
  // Pausing a group member would pause the whole group; the chime URI takes it out of the
  // group by itself, and restoring its x-rincon URI puts it back, in step with the others.
  const member = isGroupMember(media.uri);
  // What may have changed on the speaker, marked before each call: a call that timed out may
  // still have reached it, and restoring something unchanged is harmless.
  const changed = { paused: false, volume: false, uri: false };
  let failure: unknown;
  let outcome: ChimeOutcome | undefined;
  try {
    if (wasPlaying && !member) {
      changed.paused = true;
      await client.pause(signal).catch((err: unknown) => {
        // Line-in and TV sources cannot pause (701); loading the chime stops them anyway.
        if (!(err instanceof SonosError && err.upnpError === 701)) throw err;
      });
    }
    snapshot.position = await client.getPositionInfo(signal);
    changed.volume = true;
    await client.setVolume(req.volume, signal);
    changed.uri = true;
    await client.setAVTransportURI(req.uri, req.metadata, signal);
    await client.play(signal);
    const { playedMs, cut } = await waitForEnd(client, req);
    outcome = { snapshot, playedMs, cut };
  } catch (err) {
    failure = err;
  }
  const restoreFailure = await restore(client, snapshot, changed, wasPlaying && !member);
  if (failure !== undefined) throw failure;
  if (restoreFailure !== undefined) throw restoreFailure;
  return outcome as ChimeOutcome;
}

/** Polls the transport state until the clip has played and stopped, maxMs has passed, or the signal aborts. */
async function waitForEnd(
  client: SonosClient,
  req: ChimeRequest,
): Promise<{ playedMs: number; cut: boolean }> {
  const pollMs = req.pollMs ?? 200;
  const startMs = req.startMs ?? 3000;
  const started = performance.now();
  let seenPlaying = false;
  let lastState = '';
  for (let first = true; ; first = false) {
    const elapsed = performance.now() - started;
    if (elapsed >= req.maxMs) return { playedMs: elapsed, cut: true };
    // The first read comes at once: a speaker is TRANSITIONING or PLAYING right after Play.
    if (!first) {
      const aborted = await sleep(Math.min(pollMs, req.maxMs - elapsed), req.signal);
      if (aborted) return { playedMs: performance.now() - started, cut: true };
    }
    const info = await client.getTransportInfo(req.signal);
    lastState = info.state;
    if (PLAYING_STATES.has(info.state)) seenPlaying = true;
    else if (seenPlaying) return { playedMs: performance.now() - started, cut: false };
    else if (performance.now() - started >= startMs) {
      throw new Error(
        `sonos ${client.address} did not start playing ${req.uri} within ${startMs} ms (it is ${lastState}` +
          `${info.status && info.status !== 'OK' ? `, ${info.status}` : ''}); can the speaker reach that URL? ` +
          'When hearth runs behind NAT or in a pod, set media.baseUrl',
      );
    }
  }
}

/** Waits `ms`; resolves true early if `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Puts back what the chime changed, in this order: the URI with its metadata, the track and the
 * position in it, the volume, and Play if music was playing. Each step is tried even when an
 * earlier one failed (the volume matters even if the seek did not work), except that Play is not
 * sent when the URI could not be restored: it would play the chime again. Resolves with the
 * first failure, if any.
 */
async function restore(
  client: SonosClient,
  snap: SpeakerSnapshot,
  changed: { paused: boolean; volume: boolean; uri: boolean },
  resume: boolean,
): Promise<Error | undefined> {
  let first: Error | undefined;
  const attempt = async (what: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      first ??= new SonosError(
        `the chime played, but restoring the ${what} failed: ${reason}`,
        err instanceof SonosError ? err.action : 'SetAVTransportURI',
        { code: err instanceof SonosError ? err.code : undefined, cause: err },
      );
      return false;
    }
  };
  let uriBack = !changed.uri;
  // Nothing was loaded before: there is nothing to go back to, and Sonos refuses an empty URI.
  if (changed.uri && snap.uri !== '') {
    uriBack = await attempt('music', () => client.setAVTransportURI(snap.uri, snap.metadata));
    const pos = snap.position;
    if (uriBack && pos && !isGroupMember(snap.uri)) {
      if (isQueue(snap.uri) && pos.track > 1 && snap.nrTracks > 1) {
        await attempt(`track ${pos.track}`, () => client.seek('TRACK_NR', pos.track));
      }
      if (seekable(pos) && (parseDuration(pos.relTime) ?? 0) > 0) {
        await attempt(`position ${pos.relTime}`, () => client.seek('REL_TIME', pos.relTime));
      }
    }
  }
  if (changed.volume) await attempt(`volume ${snap.volume}`, () => client.setVolume(snap.volume));
  if (resume && uriBack && (changed.paused || changed.uri)) await attempt('playback', () => client.play());
  return first;
}
