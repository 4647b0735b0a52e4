/**
 * A protocol client for Sonos zone players: the few UPnP SOAP actions of AVTransport and
 * RenderingControl (port 1400) that a chime needs. Imports nothing from hearth's core: node
 * built-ins, the shared SOAP transport and the SOAP texts beside it only.
 */
import { SoapPostError, soapHeaders, soapPost } from '../../transport/soap.js';
import { SONOS_PORT } from './port.js';
import {
  AV_TRANSPORT,
  elementText,
  RENDERING_CONTROL,
  requestEnvelope,
  type SoapArgs,
  type SonosAction,
  type SonosService,
  soapAction,
  upnpErrors,
} from './soap.js';

export { SONOS_PORT };

/** Answers are a few kB (metadata is the largest part); anything far larger is not a speaker. */
export const MAX_REPLY_BYTES = 256 * 1024;

/** `PLAYING`, `PAUSED_PLAYBACK`, `STOPPED`, `TRANSITIONING`, `NO_MEDIA_PRESENT`. */
export type TransportState = string;

export interface TransportInfo {
  state: TransportState;
  /** `OK`, or `ERROR_OCCURRED` when the last URI could not be played. */
  status: string;
}

export interface MediaInfo {
  /** What is loaded: a queue (`x-rincon-queue:RINCON_...#0`), a stream, a group (`x-rincon:RINCON_...`). */
  uri: string;
  /** DIDL-Lite text, as the speaker gave it; empty when none. */
  metadata: string;
  nrTracks: number;
  /** `H:MM:SS`, `0:00:00` or `NOT_IMPLEMENTED`. */
  mediaDuration: string;
}

export interface PositionInfo {
  /** 1-based number of the track in the queue; 0 when nothing is loaded. */
  track: number;
  trackUri: string;
  /** `H:MM:SS`; `0:00:00` or `NOT_IMPLEMENTED` for a stream. */
  trackDuration: string;
  /** Position in the track, `H:MM:SS`. */
  relTime: string;
}

/**
 * A failed call. `code` is the socket error's (`ECONNREFUSED` ...) or `ETIMEDOUT` when the speaker
 * did not answer within the client's timeout; a SOAP fault has `upnpError` instead.
 */
export class SonosError extends Error {
  readonly code: string | undefined;
  readonly action: SonosAction;
  /** The UPnP error code of a SOAP fault, e.g. 701. */
  readonly upnpError: number | undefined;

  constructor(
    message: string,
    action: SonosAction,
    opts: { code?: string | undefined; upnpError?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SonosError';
    this.action = action;
    this.code = opts.code;
    this.upnpError = opts.upnpError;
  }
}

export interface SonosClientOptions {
  host: string;
  /** Default 1400. */
  port?: number;
  /** Deadline of each call, in ms; default 2000. The signal passed to a call can cut it shorter. */
  timeoutMs?: number;
}

/**
 * Talks to one zone player. Every call has its own connection (`agent: false`: no pool holds a
 * socket to a speaker that went away), its own deadline, and takes an AbortSignal that destroys
 * the socket at once.
 */
export class SonosClient {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;

  constructor(opts: SonosClientOptions) {
    this.host = opts.host;
    this.port = opts.port ?? SONOS_PORT;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** `host:port` for messages; IPv6 in brackets. */
  get address(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  async getTransportInfo(signal?: AbortSignal): Promise<TransportInfo> {
    const xml = await this.#call(AV_TRANSPORT, 'GetTransportInfo', [['InstanceID', 0]], signal);
    return {
      state: this.#required(xml, 'GetTransportInfo', 'CurrentTransportState'),
      status: elementText(xml, 'CurrentTransportStatus') ?? '',
    };
  }

  async getMediaInfo(signal?: AbortSignal): Promise<MediaInfo> {
    const xml = await this.#call(AV_TRANSPORT, 'GetMediaInfo', [['InstanceID', 0]], signal);
    return {
      uri: this.#required(xml, 'GetMediaInfo', 'CurrentURI'),
      metadata: notImplementedAsEmpty(elementText(xml, 'CurrentURIMetaData')),
      nrTracks: toInt(elementText(xml, 'NrTracks')),
      mediaDuration: elementText(xml, 'MediaDuration') ?? '',
    };
  }

  async getPositionInfo(signal?: AbortSignal): Promise<PositionInfo> {
    const xml = await this.#call(AV_TRANSPORT, 'GetPositionInfo', [['InstanceID', 0]], signal);
    return {
      track: toInt(elementText(xml, 'Track')),
      trackUri: elementText(xml, 'TrackURI') ?? '',
      trackDuration: elementText(xml, 'TrackDuration') ?? '',
      relTime: this.#required(xml, 'GetPositionInfo', 'RelTime'),
    };
  }

  /** Loads `uri` (escaped on the wire, like `metadata`, a DIDL-Lite document or empty). */
  async setAVTransportURI(uri: string, metadata: string, signal?: AbortSignal): Promise<void> {
    const args: SoapArgs = [
      ['InstanceID', 0],
      ['CurrentURI', uri],
      ['CurrentURIMetaData', metadata],
    ];
    await this.#call(AV_TRANSPORT, 'SetAVTransportURI', args, signal);
  }

  async play(signal?: AbortSignal): Promise<void> {
    await this.#call(
      AV_TRANSPORT,
      'Play',
      [
        ['InstanceID', 0],
        ['Speed', 1],
      ],
      signal,
    );
  }

  async pause(signal?: AbortSignal): Promise<void> {
    await this.#call(AV_TRANSPORT, 'Pause', [['InstanceID', 0]], signal);
  }

  /** `TRACK_NR` with a 1-based track number, or `REL_TIME` with `H:MM:SS`. */
  async seek(unit: 'TRACK_NR' | 'REL_TIME', target: string | number, signal?: AbortSignal): Promise<void> {
    const args: SoapArgs = [
      ['InstanceID', 0],
      ['Unit', unit],
      ['Target', target],
    ];
    await this.#call(AV_TRANSPORT, 'Seek', args, signal);
  }

  /** The master volume, 0-100. */
  async getVolume(signal?: AbortSignal): Promise<number> {
    const args: SoapArgs = [
      ['InstanceID', 0],
      ['Channel', 'Master'],
    ];
    const xml = await this.#call(RENDERING_CONTROL, 'GetVolume', args, signal);
    const text = this.#required(xml, 'GetVolume', 'CurrentVolume');
    const volume = Number(text);
    if (!/^\d{1,3}$/.test(text.trim()) || volume > 100) {
      throw new SonosError(
        `sonos ${this.address} sent an unreadable volume ${JSON.stringify(text.slice(0, 20))}`,
        'GetVolume',
      );
    }
    return volume;
  }

  async setVolume(volume: number, signal?: AbortSignal): Promise<void> {
    const args: SoapArgs = [
      ['InstanceID', 0],
      ['Channel', 'Master'],
      ['DesiredVolume', Math.round(Math.min(100, Math.max(0, volume)))],
    ];
    await this.#call(RENDERING_CONTROL, 'SetVolume', args, signal);
  }

  #required(xml: string, action: SonosAction, element: string): string {
    const text = elementText(xml, element);
    if (text === undefined) {
      throw new SonosError(`sonos ${this.address} sent no <${element}> in its ${action} answer`, action);
    }
    return text;
  }

  #call(service: SonosService, action: SonosAction, args: SoapArgs, signal?: AbortSignal): Promise<string> {
    return post({
      host: this.host,
      port: this.port,
      address: this.address,
      service,
      action,
      body: requestEnvelope(service, action, args),
      timeoutMs: this.timeoutMs,
      signal,
    });
  }
}

function toInt(text: string | undefined): number {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) ? n : 0;
}

function notImplementedAsEmpty(text: string | undefined): string {
  return text === undefined || text === 'NOT_IMPLEMENTED' ? '' : text;
}

interface Exchange {
  host: string;
  port: number;
  address: string;
  service: SonosService;
  action: SonosAction;
  body: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/**
 * One POST on its own connection; resolves with the body of a 200 answer, rejects with a
 * one-line SonosError otherwise, or with `signal.reason` when the signal aborts.
 */
async function post(x: Exchange): Promise<string> {
  const { action, address } = x;
  const fail = (message: string, code?: string, cause?: unknown): SonosError =>
    new SonosError(`sonos ${address} ${message}`, action, { code, cause });
  let reply: { status: number; body: string };
  try {
    reply = await soapPost({
      host: x.host,
      port: x.port,
      path: x.service.path,
      headers: soapHeaders(soapAction(x.service, action), x.body),
      body: x.body,
      maxReplyBytes: MAX_REPLY_BYTES,
      encoding: 'utf8',
      timeoutMs: x.timeoutMs,
      signal: x.signal,
    });
  } catch (err) {
    if (!(err instanceof SoapPostError)) throw err;
    switch (err.failure) {
      case 'timeout':
        throw fail(
          `did not answer ${action} within ${x.timeoutMs} ms; is the speaker on and on the network?`,
          'ETIMEDOUT',
        );
      case 'connect': {
        const reason =
          err.code === 'ECONNREFUSED'
            ? 'refused the connection; is it a Sonos speaker, at this address?'
            : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH'
              ? 'is not reachable on the network; is it on?'
              : err.code === 'ECONNRESET'
                ? `closed the connection before answering ${action}`
                : `could not be reached: ${err.message}`;
        throw fail(reason, err.code, err.cause);
      }
      case 'too-large':
        throw fail(`sent a ${action} answer larger than ${MAX_REPLY_BYTES} bytes`);
      case 'cut':
        throw fail(`closed the connection in the middle of its ${action} answer`);
      default:
        throw fail(`failed while answering ${action}: ${err.message}`, undefined, err.cause);
    }
  }
  if (reply.status === 200) return reply.body;
  const code = Number(elementText(reply.body, 'errorCode'));
  if (Number.isInteger(code) && code > 0) {
    const what = upnpErrors[code] ?? elementText(reply.body, 'errorDescription') ?? 'unknown error';
    throw new SonosError(`sonos ${address} ${action} failed: UPnP error ${code} (${what})`, action, {
      upnpError: code,
    });
  }
  throw fail(`answered ${action} with HTTP ${reply.status}`);
}
