/**
 * A Sonos zone player over real HTTP: the peer of tests, the demo and `hearth sim sonos`. It
 * answers the AVTransport and RenderingControl actions hearth calls (and only those), keeps the
 * transport state, the loaded URI and the track position, and plays a chime the way a speaker
 * does: it fetches the URL over HTTP, plays for the clip's length, then stops. It records every
 * call, what was played at which volume, and whether the music was put back afterwards.
 */

import { createServer, get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Simulator } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';
import { readBody } from '../../transport/http-body.js';
import {
  AV_TRANSPORT,
  AV_TRANSPORT_ACTIONS,
  actionArgs,
  faultEnvelope,
  formatDuration,
  parseDuration,
  RENDERING_CONTROL,
  RENDERING_CONTROL_ACTIONS,
  responseEnvelope,
  type SoapArgs,
  type SonosAction,
  type SonosService,
} from './soap.js';

/** How many calls the simulator remembers; older ones are dropped. */
export const MAX_CALLS = 1000;
const MAX_REQUEST_BYTES = 256 * 1024;
/** A clip whose length is taken from its size is assumed to be 128 kbit/s. */
const ASSUMED_BYTES_PER_SECOND = 128_000 / 8;
const MAX_CLIP_BYTES = 50 * 1024 * 1024;

export type TransportState = 'STOPPED' | 'PLAYING' | 'PAUSED_PLAYBACK' | 'TRANSITIONING' | 'NO_MEDIA_PRESENT';

/** One SOAP call the simulator received, with its arguments (unescaped) and the headers sent. */
export interface SonosCall {
  service: 'AVTransport' | 'RenderingControl';
  action: string;
  args: Record<string, string>;
  /** Epoch ms when it arrived. */
  at: number;
  headers: { soapaction?: string | undefined; contentType?: string | undefined };
}

/** What the speaker got when it fetched a clip. */
export interface Fetched {
  /** HTTP status; 0 when the request failed. */
  status: number;
  contentType: string | null;
  contentRange: string | null;
  acceptRanges: string | null;
  bytes: number;
  /** Why the fetch failed, when it did. */
  error?: string;
}

/** The parts of a speaker's state a chime must put back. */
export interface SpeakerState {
  uri: string;
  metadata: string;
  /** Track number in a queue; 1 for a single track or stream; 0 when nothing is loaded. */
  track: number;
  /** Whole seconds into the track; null when the track has no position to return to (a stream, a group member). */
  position: number | null;
  volume: number;
  /** PLAYING or TRANSITIONING. (A paused track comes back STOPPED on a real speaker too.) */
  playing: boolean;
}

/** One clip played, with the state before the chime started and after it was restored. */
export interface ChimeRecord {
  uri: string;
  /** The volume when Play was sent. */
  volume: number;
  /** Set once the fetch has ended. */
  fetched: Fetched | undefined;
  /** True once the clip has played to its end (or failed to load). */
  ended: boolean;
  /** The state when the first change for this chime arrived (the pause, or the volume). */
  before: SpeakerState;
  /** The state after the last change that followed the clip; undefined while the clip plays. */
  readonly after: SpeakerState | undefined;
  /** True when `after` equals `before`: URI, metadata, track, position, volume and playing. */
  readonly restored: boolean;
}

/**
 * `ok` answers like a speaker; `hang` accepts a call and never answers; `error` answers every
 * call with a UPnP fault 501; `down` is off the network: nothing listens, connections are refused.
 */
export type SonosSimulatorMode = 'ok' | 'hang' | 'error' | 'down';

/** What a test loads on the speaker before a chime, as if someone had started music. */
export interface LoadOptions {
  uri: string;
  metadata?: string;
  /** Tracks in a queue (`x-rincon-queue:...`); default 1. */
  nrTracks?: number;
  /** 1-based; default 1. */
  track?: number;
  /** Seconds; 0 for a stream or a group member, which cannot be sought in. Default 240. */
  trackDuration?: number;
  /** Seconds into the track; default 0. */
  position?: number;
  transport?: 'PLAYING' | 'PAUSED_PLAYBACK' | 'STOPPED';
  volume?: number;
}

export interface SonosSimulator {
  readonly host: string;
  readonly port: number;
  readonly mode: SonosSimulatorMode;
  /** Changes the mode; resolves once the listener is closed (`down`) or open again. */
  setMode(mode: SonosSimulatorMode): Promise<void>;
  /** How long a fetched clip plays, in ms; undefined: from its size at 128 kbit/s. */
  clipMs: number | undefined;
  /** Answer these actions with this UPnP error code instead (e.g. `{ Seek: 711 }`). */
  readonly faults: Partial<Record<SonosAction, number>>;
  /** The last {@link MAX_CALLS} calls, oldest first. */
  readonly calls: SonosCall[];
  /**
   * Every clip played (an http(s) URI), in order. A chime is judged from the snapshot read
   * (GetMediaInfo) before it to the next one: `before` is the state at the first change after
   * that read, `after` the state after the last change once the clip had ended.
   */
  readonly chimes: ChimeRecord[];
  /** Whether the last chime's restore put everything back; undefined before any chime. */
  readonly restored: boolean | undefined;
  /** What the speaker is doing now. */
  readonly state: SpeakerState & { transport: TransportState };
  /** Loads music as if someone had started it from the Sonos app. */
  load(opts: LoadOptions): void;
  /** Sockets open now, including the ones of hung calls. */
  readonly connections: number;
  /** Stops listening and destroys every socket, hung ones included; stops any clip. */
  close(): Promise<void>;
}

export interface SonosSimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** See SonosSimulator.clipMs. */
  clipMs?: number;
  /** Volume at start; default 20. */
  volume?: number;
  log?: Logger;
}

interface MediaEntry {
  metadata: string;
  nrTracks: number;
  /** Seconds; 0 cannot be sought in. */
  trackDuration: number;
  /** A group member (`x-rincon:`) plays when its coordinator does: what it was loaded with. */
  groupTransport?: TransportState;
}

/** A chime's session: from the snapshot read (GetMediaInfo) to the next one. */
interface Session {
  before: SpeakerState | undefined;
  /** The state after the last change in this session. */
  last: SpeakerState | undefined;
  chime: InternalChime | undefined;
}

interface InternalChime extends ChimeRecord {
  session: Session;
  /** Frozen when the session ends. */
  frozenAfter: SpeakerState | undefined;
  closed: boolean;
}

const isHttp = (uri: string) => /^https?:\/\//i.test(uri);
const isGroupMember = (uri: string) => uri.startsWith('x-rincon:');
const isQueue = (uri: string) => uri.startsWith('x-rincon-queue:');

function sameState(a: SpeakerState, b: SpeakerState): boolean {
  return (
    a.uri === b.uri &&
    a.metadata === b.metadata &&
    a.track === b.track &&
    a.position === b.position &&
    a.volume === b.volume &&
    a.playing === b.playing
  );
}

class UpnpFault extends Error {
  constructor(readonly code: number) {
    super(`UPnP error ${code}`);
  }
}

/** Starts a simulated zone player; resolves once it is listening. */
export async function startSonosSimulator(opts: SonosSimulatorOptions = {}): Promise<SonosSimulator> {
  const log = opts.log;
  const sockets = new Set<Socket>();
  const calls: SonosCall[] = [];
  const chimes: InternalChime[] = [];
  const library = new Map<string, MediaEntry>();
  let mode: SonosSimulatorMode = 'ok';
  let host = opts.host ?? '127.0.0.1';
  let port = opts.port ?? 0;
  let closed = false;

  // The speaker.
  let transport: TransportState = 'STOPPED';
  let transportStatus = 'OK';
  let uri = '';
  let metadata = '';
  let media: MediaEntry = { metadata: '', nrTracks: 0, trackDuration: 0 };
  let track = 0;
  let positionMs = 0;
  let playingSince: number | undefined;
  let volume = opts.volume ?? 20;
  let clip: { timer?: NodeJS.Timeout; abort: AbortController; record: InternalChime } | undefined;
  let session: Session | undefined;

  const now = () => performance.now();
  const position = (): number => {
    const ms = positionMs + (playingSince === undefined ? 0 : now() - playingSince);
    return media.trackDuration > 0 ? Math.min(ms, media.trackDuration * 1000) : ms;
  };
  const playing = () => transport === 'PLAYING' || transport === 'TRANSITIONING';
  const seekable = () => media.trackDuration > 0 && !isGroupMember(uri);
  const speakerState = (): SpeakerState => ({
    uri,
    metadata,
    track,
    position: seekable() ? Math.floor(position() / 1000) : null,
    volume,
    playing: playing(),
  });

  function setTransport(next: TransportState): void {
    if (next === 'PLAYING') {
      if (playingSince === undefined) playingSince = now();
    } else if (playingSince !== undefined) {
      positionMs = position();
      playingSince = undefined;
    }
    transport = next;
  }

  /** Cuts the clip short (a pause, another URI): it counts as ended, so its restore is judged. */
  function stopClip(): void {
    if (!clip) return;
    clearTimeout(clip.timer);
    clip.abort.abort();
    clip.record.ended = true;
    clip = undefined;
  }

  function endSession(): void {
    const chime = session?.chime;
    if (chime && !chime.closed) {
      chime.frozenAfter = chime.ended ? session?.last : undefined;
      chime.closed = true;
    }
    session = undefined;
  }

  function loadUri(next: string, nextMetadata: string): void {
    stopClip();
    uri = next;
    metadata = nextMetadata;
    media = library.get(next) ?? {
      metadata: nextMetadata,
      nrTracks: next === '' ? 0 : 1,
      trackDuration: 0,
    };
    track = next === '' ? 0 : 1;
    positionMs = 0;
    playingSince = undefined;
    transportStatus = 'OK';
    transport = next === '' ? 'NO_MEDIA_PRESENT' : 'STOPPED';
    // Rejoining a group: the member plays along with the coordinator at once.
    if (isGroupMember(next)) setTransport(media.groupTransport ?? 'STOPPED');
  }

  /** Plays a clip like a speaker: fetch it, play it for its length, stop. */
  function startClip(record: InternalChime): void {
    const abort = new AbortController();
    clip = { abort, record };
    setTransport('TRANSITIONING');
    void fetchClip(record.uri, abort.signal).then((fetched) => {
      record.fetched = fetched;
      if (abort.signal.aborted) return;
      const ok = fetched.status === 200 || fetched.status === 206;
      log?.info({ uri: record.uri, volume: record.volume, ...fetched }, 'sonos simulator fetched a clip');
      if (!ok) {
        transportStatus = 'ERROR_OCCURRED';
        setTransport('STOPPED');
        record.ended = true;
        clip = undefined;
        return;
      }
      setTransport('PLAYING');
      const ms =
        sim.clipMs ??
        Math.min(60_000, Math.max(100, Math.round((fetched.bytes / ASSUMED_BYTES_PER_SECOND) * 1000)));
      const current = clip;
      if (current) {
        current.timer = setTimeout(() => {
          clip = undefined;
          setTransport('STOPPED');
          positionMs = 0;
          record.ended = true;
          log?.info({ uri: record.uri, ms }, 'sonos simulator finished a clip');
        }, ms);
      }
    });
  }

  function call(service: SonosService, action: SonosAction, args: Map<string, string>): SoapArgs {
    const arg = (name: string): string => {
      const v = args.get(name);
      if (v === undefined) throw new UpnpFault(402);
      return v;
    };
    if (arg('InstanceID') !== '0') throw new UpnpFault(718);
    const fault = sim.faults[action];
    if (fault !== undefined) throw new UpnpFault(fault);
    const mutating = !action.startsWith('Get');
    if (action === 'GetMediaInfo' && !(session?.chime && !session.chime.ended)) {
      // A snapshot read starts a new chime's session, and closes the last one.
      endSession();
      session = { before: undefined, last: undefined, chime: undefined };
    }
    if (mutating) {
      session ??= { before: undefined, last: undefined, chime: undefined };
      session.before ??= speakerState();
    }
    const answer = apply(service, action, arg);
    if (mutating && session) session.last = speakerState();
    return answer;
  }

  function apply(service: SonosService, action: SonosAction, arg: (name: string) => string): SoapArgs {
    if (service === RENDERING_CONTROL) {
      if (arg('Channel') !== 'Master') throw new UpnpFault(402);
      if (action === 'GetVolume') return [['CurrentVolume', volume]];
      const desired = arg('DesiredVolume');
      if (!/^\d{1,3}$/.test(desired) || Number(desired) > 100) throw new UpnpFault(402);
      volume = Number(desired);
      return [];
    }
    switch (action) {
      case 'GetTransportInfo':
        return [
          ['CurrentTransportState', transport],
          ['CurrentTransportStatus', transportStatus],
          ['CurrentSpeed', 1],
        ];
      case 'GetMediaInfo':
        return [
          ['NrTracks', media.nrTracks],
          [
            'MediaDuration',
            isQueue(uri) || uri === '' ? 'NOT_IMPLEMENTED' : formatDuration(media.trackDuration),
          ],
          ['CurrentURI', uri],
          ['CurrentURIMetaData', metadata],
          ['NextURI', ''],
          ['NextURIMetaData', ''],
          ['PlayMedium', uri === '' ? 'NONE' : 'NETWORK'],
          ['RecordMedium', 'NOT_IMPLEMENTED'],
          ['WriteStatus', 'NOT_IMPLEMENTED'],
        ];
      case 'GetPositionInfo':
        return [
          ['Track', track],
          ['TrackDuration', formatDuration(media.trackDuration)],
          ['TrackMetaData', media.metadata],
          ['TrackURI', isQueue(uri) ? `x-file-cifs://nas/music/track${track}.flac` : uri],
          ['RelTime', formatDuration(position() / 1000)],
          ['AbsTime', 'NOT_IMPLEMENTED'],
          ['RelCount', 2147483647],
          ['AbsCount', 2147483647],
        ];
      case 'SetAVTransportURI':
        loadUri(arg('CurrentURI'), arg('CurrentURIMetaData'));
        return [];
      case 'Play': {
        if (uri === '') throw new UpnpFault(701);
        if (playing()) return [];
        if (isHttp(uri)) {
          const record = newChime();
          startClip(record);
        } else setTransport('PLAYING');
        return [];
      }
      case 'Pause':
        if (isGroupMember(uri)) throw new UpnpFault(800);
        if (!playing()) throw new UpnpFault(701);
        stopClip();
        setTransport('PAUSED_PLAYBACK');
        return [];
      case 'Seek': {
        if (isGroupMember(uri)) throw new UpnpFault(800);
        const unit = arg('Unit');
        const target = arg('Target');
        if (unit === 'TRACK_NR') {
          const n = Number(target);
          if (!isQueue(uri) || !Number.isInteger(n) || n < 1 || n > media.nrTracks) throw new UpnpFault(711);
          track = n;
          positionMs = 0;
          if (playingSince !== undefined) playingSince = now();
          return [];
        }
        if (unit === 'REL_TIME') {
          const seconds = parseDuration(target);
          if (seconds === undefined || !seekable() || seconds > media.trackDuration) throw new UpnpFault(711);
          positionMs = seconds * 1000;
          if (playingSince !== undefined) playingSince = now();
          return [];
        }
        throw new UpnpFault(402);
      }
      default:
        throw new UpnpFault(401);
    }
  }

  function newChime(): InternalChime {
    const s = session ?? { before: undefined, last: undefined, chime: undefined };
    session = s;
    const record: InternalChime = {
      uri,
      volume,
      fetched: undefined,
      ended: false,
      before: s.before ?? speakerState(),
      session: s,
      frozenAfter: undefined,
      closed: false,
      get after(): SpeakerState | undefined {
        if (!this.ended) return undefined;
        return this.closed ? this.frozenAfter : this.session.last;
      },
      get restored(): boolean {
        const after = this.after;
        return after !== undefined && sameState(this.before, after);
      },
    };
    s.chime = record;
    chimes.push(record);
    return record;
  }

  function send(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, {
      'Content-Type': 'text/xml; charset="utf-8"',
      'Content-Length': Buffer.byteLength(body),
      Server: 'Linux UPnP/1.0 Sonos/80.1-55240 (ZPS1)',
    });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const service =
      req.url === AV_TRANSPORT.path
        ? AV_TRANSPORT
        : req.url === RENDERING_CONTROL.path
          ? RENDERING_CONTROL
          : undefined;
    if (!service || req.method !== 'POST') {
      req.resume();
      send(res, service ? 405 : 404, '');
      return;
    }
    const body = await readBody(req, MAX_REQUEST_BYTES, 'utf8');
    if (body === undefined) {
      send(res, 413, '');
      return;
    }
    const soapaction = headerText(req.headers.soapaction);
    const m = /^"?([^#"]+)#([A-Za-z]+)"?$/.exec(soapaction ?? '');
    const known: readonly string[] =
      service === AV_TRANSPORT ? AV_TRANSPORT_ACTIONS : RENDERING_CONTROL_ACTIONS;
    const action = m?.[2];
    const args = action === undefined ? undefined : actionArgs(body, action);
    const entry: SonosCall = {
      service: service.name,
      action: action ?? '',
      args: Object.fromEntries(args ?? []),
      at: Date.now(),
      headers: { soapaction, contentType: headerText(req.headers['content-type']) },
    };
    calls.push(entry);
    if (calls.length > MAX_CALLS) calls.splice(0, calls.length - MAX_CALLS);

    // The faults come after the call is read and recorded: the speaker got it, then failed.
    if (mode === 'hang') return;
    if (mode === 'error') {
      send(res, 500, faultEnvelope(501));
      return;
    }
    if (m?.[1] !== service.type || action === undefined || !known.includes(action)) {
      send(res, 500, faultEnvelope(401));
      return;
    }
    if (!args) {
      send(res, 500, faultEnvelope(402));
      return;
    }
    try {
      const answer = call(service, action as SonosAction, args);
      send(res, 200, responseEnvelope(service, action, answer));
    } catch (err) {
      if (!(err instanceof UpnpFault)) throw err;
      send(res, 500, faultEnvelope(err.code));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.warn({ err }, 'sonos simulator failed to answer');
      res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    port = address.port;
    host = address.address;
  }

  async function shut(): Promise<void> {
    const closing = new Promise<void>((resolve) => server.close(() => resolve()));
    const gone = [...sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    for (const socket of sockets) socket.destroy();
    await Promise.all([closing, ...gone]);
  }

  const sim: SonosSimulator = {
    get host() {
      return host;
    },
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    async setMode(next) {
      const wasDown = mode === 'down';
      mode = next;
      if (next === 'down' && !wasDown) await shut();
      else if (next !== 'down' && wasDown && !closed) await listen();
    },
    clipMs: opts.clipMs,
    faults: {},
    calls,
    chimes,
    get restored() {
      return chimes.at(-1)?.restored;
    },
    get state() {
      return { ...speakerState(), transport };
    },
    load(o) {
      endSession();
      const entry: MediaEntry = {
        metadata: o.metadata ?? '',
        nrTracks: o.nrTracks ?? 1,
        trackDuration: o.trackDuration ?? 240,
      };
      if (isGroupMember(o.uri)) entry.groupTransport = o.transport ?? 'STOPPED';
      library.set(o.uri, entry);
      loadUri(o.uri, entry.metadata);
      track = Math.max(1, Math.min(o.track ?? 1, entry.nrTracks));
      positionMs = (o.position ?? 0) * 1000;
      if (o.volume !== undefined) volume = o.volume;
      setTransport(o.transport ?? 'STOPPED');
    },
    get connections() {
      return sockets.size;
    },
    async close() {
      closed = true;
      stopClip();
      if (mode !== 'down') await shut();
    },
  };

  await listen();
  return sim;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Fetches a clip as a speaker does (from the start, as a range), counting the bytes. */
function fetchClip(uri: string, signal: AbortSignal): Promise<Fetched> {
  return new Promise((resolve) => {
    const get = uri.toLowerCase().startsWith('https:') ? httpsGet : httpGet;
    let bytes = 0;
    const failed = (error: string, status = 0): Fetched => ({
      status,
      contentType: null,
      contentRange: null,
      acceptRanges: null,
      bytes,
      error,
    });
    let req: ReturnType<typeof httpGet>;
    try {
      req = get(uri, {
        agent: false,
        headers: { Range: 'bytes=0-', 'User-Agent': 'Linux UPnP/1.0 Sonos/80.1-55240 (ZPS1)' },
        signal,
        timeout: 5000,
      });
    } catch (err) {
      resolve(failed(err instanceof Error ? err.message : String(err)));
      return;
    }
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve(failed(err.message)));
    req.on('response', (res) => {
      const header = (name: string) => headerText(res.headers[name]) ?? null;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_CLIP_BYTES) req.destroy(new Error('clip too large'));
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: header('content-type'),
          contentRange: header('content-range'),
          acceptRanges: header('accept-ranges'),
          bytes,
        }),
      );
      res.on('error', (err) => resolve(failed(err.message, res.statusCode ?? 0)));
    });
  });
}

/** The simulator as the runtime and `hearth sim sonos` start it. */
export const simulator: Simulator = {
  transport: 'network',
  defaultPort: 1400,
  start: ({ host, port, log }) => startSonosSimulator({ host, port, log }),
};
