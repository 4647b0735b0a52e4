/**
 * The chime media folder: the files speakers fetch at `GET /api/v0/chime/<file>`, the URL a
 * speaker is given for one, and the checks that keep every request inside the folder.
 *
 * The HTTP route that serves it is src/server/media-routes.ts.
 */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readdir, realpath, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { sep } from 'node:path';
import type { MediaAccess } from '../core/driver.js';
import { reasonOf } from '../core/errors.js';

export const CHIME_PATH = '/api/v0/chime';

/** What speakers play, by extension; anything else is served as application/octet-stream. */
export const audioTypes: Readonly<Record<string, string>> = {
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  oga: 'audio/ogg',
  opus: 'audio/ogg',
  flac: 'audio/flac',
  aac: 'audio/aac',
  m4a: 'audio/mp4',
  mp4: 'audio/mp4',
  aif: 'audio/aiff',
  aiff: 'audio/aiff',
  wma: 'audio/x-ms-wma',
};

export function contentTypeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  const ext = dot < 0 ? '' : file.slice(dot + 1).toLowerCase();
  return audioTypes[ext] ?? 'application/octet-stream';
}

/**
 * A name that can only mean a file directly in the media folder: no separators (`/`, `\`), no
 * leading dot (no `..`, no hidden files), no control characters, at most 255 bytes.
 */
export function isPlainFileName(name: string): boolean {
  if (name.length === 0 || Buffer.byteLength(name) > 255 || name.startsWith('.') || name.trim() !== name) {
    return false;
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x2f /* / */ || c === 0x5c /* \ */) return false;
  }
  return true;
}

export interface MediaLibraryOptions {
  /** Absolute path of the folder. */
  dir: string;
  /** `media.baseUrl`, without a trailing slash. */
  baseUrl?: string | undefined;
  /** Where the control listener listens, once it does (its port may be 0 in the config). */
  listener?: () => { host: string; port: number } | undefined;
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** The media folder, as the runtime hands it to drivers and the HTTP route serves it. */
export class MediaLibrary implements MediaAccess {
  readonly dir: string;
  readonly baseUrl: string | undefined;
  readonly #listener: MediaLibraryOptions['listener'];

  constructor(opts: MediaLibraryOptions) {
    this.dir = opts.dir;
    this.baseUrl = opts.baseUrl;
    this.#listener = opts.listener;
  }

  /**
   * The real path of `file` if it is a plain name of a regular file that really is in the folder
   * (a symlink pointing out of it is not); undefined otherwise.
   */
  async resolve(file: string): Promise<string | undefined> {
    if (!isPlainFileName(file)) return undefined;
    try {
      const [dir, path] = await Promise.all([realpath(this.dir), realpath(`${this.dir}${sep}${file}`)]);
      if (!path.startsWith(dir + sep)) return undefined;
      return (await stat(path)).isFile() ? path : undefined;
    } catch {
      return undefined;
    }
  }

  contentType(file: string): string {
    return contentTypeOf(file);
  }

  /**
   * The audio files directly in the folder (plain names, a known audio extension), sorted, at
   * most `limit`; none when the folder is missing.
   */
  async list(limit = 500): Promise<string[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir, { withFileTypes: true }))
        .filter((d) => (d.isFile() || d.isSymbolicLink()) && isPlainFileName(d.name))
        .map((d) => d.name)
        .filter((name) => contentTypeOf(name) !== 'application/octet-stream');
    } catch {
      return [];
    }
    return names.sort((a, b) => a.localeCompare(b)).slice(0, limit);
  }

  async has(file: string): Promise<boolean> {
    return (await this.resolve(file)) !== undefined;
  }

  /** The path part of a file's URL. */
  static pathOf(file: string): string {
    return `${CHIME_PATH}/${encodeURIComponent(file)}`;
  }

  async url(file: string, device: { host: string; port: number }): Promise<string> {
    if (this.baseUrl) return this.baseUrl + MediaLibrary.pathOf(file);
    const listener = this.#listener?.();
    if (!listener)
      throw new Error('hearth is not listening for HTTP yet, so it has no URL to give the speaker');
    const host = isWildcard(listener.host) ? await localAddressFor(device.host, device.port) : listener.host;
    return `http://${bracket(host)}:${listener.port}${MediaLibrary.pathOf(file)}`;
  }
}

/**
 * This box's address on the network that reaches `host`: the source address the kernel picks for
 * a UDP socket connected to it (connecting a UDP socket sends nothing).
 */
export async function localAddressFor(host: string, port: number): Promise<string> {
  const family = isIP(host);
  const address = family === 0 ? (await lookup(host)).address : host;
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, address, () => resolve(socket.address().address));
    });
  } catch (err) {
    throw new Error(`no route from this box to ${host}: ${reasonOf(err)}`, { cause: err });
  } finally {
    socket.close();
  }
}

/**
 * A URL to show a person (`hearth media add`): `baseUrl`, else the listener's own host, else this
 * box's first LAN address. Speakers get a URL made for each of them (MediaLibrary.url).
 */
export function exampleUrl(
  file: string,
  baseUrl: string | undefined,
  http: { host: string; port: number },
): string {
  if (baseUrl) return baseUrl + MediaLibrary.pathOf(file);
  let host = http.host;
  if (isWildcard(host)) {
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === 'IPv4');
    host = lan?.address ?? '127.0.0.1';
  }
  return `http://${bracket(host)}:${http.port}${MediaLibrary.pathOf(file)}`;
}
