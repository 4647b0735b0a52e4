/**
 * The archive file: a gzip-compressed tar (tar-stream and node:zlib), written and read as a
 * stream, so a table of a million rows or a media file of a gigabyte never sits in memory.
 * Every member's SHA-256 is computed as it passes; manifest.ts says what the members are.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { reasonOf } from '../core/errors.js';
import { BackupError } from './errors.js';
import type { FileEntry } from './manifest.js';

/** One member to write: its bytes, or a stream of exactly `size` bytes. */
export interface MemberSource {
  path: string;
  size: number;
  /** File mode in the archive; 0644 by default. */
  mode?: number;
  mtime: Date;
  data: Buffer | (() => Readable);
}

/**
 * Writes an archive to `path` (which must not exist): add members one after another, then
 * finish. Nothing is renamed here; the caller writes to `<name>.partial` and renames.
 */
export class ArchiveWriter {
  readonly #pack: tar.Pack;
  readonly #done: Promise<void>;
  readonly #failed: Promise<never>;
  #error: Error | undefined;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.#pack = tar.pack();
    const out = createWriteStream('', { fd });
    this.#done = pipeline(Readable.from(this.#pack), createGzip({ level: 6 }), out);
    this.#failed = this.#done.then(
      () => new Promise<never>(() => {}),
      (err: unknown) => {
        this.#error ??= err instanceof Error ? err : new Error(String(err));
        throw this.#error;
      },
    );
    // Observed here so a failure with no add() waiting is not an unhandled rejection.
    this.#failed.catch(() => {});
  }

  /**
   * Creates the file, which must not exist (throws EEXIST otherwise: another backup is writing
   * it), so whoever created it is the one to remove it.
   */
  static create(path: string): ArchiveWriter {
    // 0600: the config may hold a token, and secrets.enc is only as strong as its passphrase.
    const fd = openSync(path, 'wx', 0o600);
    try {
      return new ArchiveWriter(path, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Adds one member; resolves with its size and SHA-256. `onBytes` sees each chunk's length. */
  async add(member: MemberSource, onBytes?: (n: number) => void): Promise<FileEntry> {
    const hash = createHash('sha256');
    let written = 0;
    const entryDone = new Promise<void>((resolve, reject) => {
      const sink = this.#pack.entry(
        {
          name: member.path,
          size: member.size,
          mode: member.mode ?? 0o644,
          mtime: member.mtime,
          type: 'file',
        },
        (err) => (err ? reject(err) : resolve()),
      );
      const feed = async () => {
        if (Buffer.isBuffer(member.data)) {
          hash.update(member.data);
          written = member.data.length;
          sink.end(member.data);
          return;
        }
        for await (const chunk of member.data() as AsyncIterable<Buffer>) {
          hash.update(chunk);
          written += chunk.length;
          onBytes?.(chunk.length);
          if (written > member.size) break;
          if (!sink.write(chunk)) {
            await Promise.race([new Promise<void>((r) => sink.once('drain', () => r())), this.#failed]);
          }
        }
        if (written !== member.size) {
          throw new BackupError(
            `${member.path} changed while it was read (${member.size} bytes when the backup began, ${written} read); run the backup again`,
          );
        }
        // streamx's typing wants an argument; end() with none ends the entry.
        (sink as unknown as { end(): void }).end();
      };
      feed().catch((err: unknown) => {
        sink.destroy(err instanceof Error ? err : new Error(String(err)));
        reject(err);
      });
    });
    await Promise.race([entryDone, this.#failed]);
    return { path: member.path, size: written, sha256: hash.digest('hex') };
  }

  /** Ends the archive, waits until every byte is written, and fsyncs the file. */
  async finish(): Promise<void> {
    this.#pack.finalize();
    await this.#done;
    const fh = await open(this.path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Stops writing after a failure; the caller removes the file. */
  async abort(): Promise<void> {
    this.#pack.destroy();
    await this.#done.catch(() => {});
  }
}

/** A member as read: its header and a stream of its bytes, to be read to the end. */
export interface ArchiveEntry {
  path: string;
  type: string;
  size: number;
  stream: AsyncIterable<Buffer>;
}

/**
 * The most an archive may unpack to unless the user says more (`--max-unpacked-size`): far
 * more than a home's config, history and chimes, and a limit to a gzip bomb (a few kilobytes
 * that unpack to terabytes), which would otherwise fill the disk restore stages to.
 */
export const DEFAULT_MAX_UNPACKED = 16 * 1024 ** 3;

/** `16 GiB`, `512 MiB`, `700 B`: a byte count as the --max-unpacked-size option takes it. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} B`;
}

/** `64GiB`, `64G`, `500MB`, `1048576`: a size as a person writes it (binary units), or undefined. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = ' kmgt'.indexOf((m[2] ?? '').toLowerCase() || ' ');
  const bytes = Math.floor(Number(m[1]) * 1024 ** power);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

export interface ReadArchiveOptions {
  /** Stop with a BackupError once this many bytes have come out of gzip; default DEFAULT_MAX_UNPACKED. */
  maxUnpacked?: number;
}

/**
 * Reads an archive member by member and hands each to `onEntry`, which must consume its
 * stream. gzip and tar problems become BackupErrors that say what is wrong with the file; more
 * than `maxUnpacked` bytes out of gzip (tar headers and padding count) stop the read.
 */
export async function readArchive(
  path: string,
  label: string,
  onEntry: (entry: ArchiveEntry) => Promise<void>,
  opts: ReadArchiveOptions = {},
): Promise<void> {
  const maxUnpacked = opts.maxUnpacked ?? DEFAULT_MAX_UNPACKED;
  const file = createReadStream(path);
  const gunzip = createGunzip();
  const extract = tar.extract();
  const fail = (err: Error) => extract.destroy(err);
  file.on('error', fail);
  gunzip.on('error', fail);
  // Counted as gzip hands it on, a number added per chunk: no copy, no second pass.
  let unpacked = 0;
  const onData = (chunk: Buffer) => {
    unpacked += chunk.length;
    if (unpacked <= maxUnpacked) return;
    gunzip.off('data', onData);
    file.destroy();
    gunzip.destroy();
    fail(
      new BackupError(
        `${label} unpacks to more than ${formatSize(maxUnpacked)}, the limit (--max-unpacked-size, default ${formatSize(DEFAULT_MAX_UNPACKED)}): a gzip bomb, or an archive far bigger than a home's; nothing was written. If the archive is yours, raise the limit: --max-unpacked-size ${formatSize(maxUnpacked * 4).replace(' ', '')}`,
      ),
    );
  };
  gunzip.on('data', onData);
  file.pipe(gunzip).pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      await onEntry({
        path: entry.header.name,
        type: entry.header.type,
        size: entry.header.size,
        stream: entry as unknown as AsyncIterable<Buffer>,
      });
    }
  } catch (err) {
    throw describeReadError(err, label);
  } finally {
    file.destroy();
    gunzip.destroy();
    extract.destroy();
  }
}

/** What a read error means for the person holding the file. */
function describeReadError(err: unknown, label: string): Error {
  if (err instanceof BackupError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new BackupError(`${label} does not exist`);
  if (e.code === 'EISDIR') return new BackupError(`${label} is a folder, not an archive`);
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new BackupError(`cannot read ${label} (${e.code}); check its permissions`);
  }
  const message = e.message ?? '';
  if (e.code === 'Z_DATA_ERROR' && /incorrect header check|unknown compression method/.test(message)) {
    return new BackupError(`${label} is not a hearth backup: it is not a gzip file`);
  }
  if (e.code === 'Z_BUF_ERROR' || /unexpected end of file|Unexpected end of data/i.test(message)) {
    return new BackupError(
      `${label} is truncated: it ends in the middle (a copy or download cut short, or a full disk); use another copy`,
    );
  }
  if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return new BackupError(`${label} is damaged: its gzip data is corrupt (${message}); use another copy`);
  }
  if (/tar header|Invalid header|Header exceeds/i.test(message)) {
    return new BackupError(`${label} is damaged: the tar inside is not valid (${message}); use another copy`);
  }
  return new BackupError(`cannot read ${label}: ${reasonOf(err)}`, { cause: err });
}

/** Hashes a stream to the end: its size, its SHA-256, and how many newlines it had. */
export async function digest(
  stream: AsyncIterable<Buffer>,
  each?: (chunk: Buffer) => void | Promise<void>,
): Promise<{ size: number; sha256: string; lines: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let lines = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
    if (each) await each(chunk);
  }
  return { size, sha256: hash.digest('hex'), lines };
}

/** A stream of exactly the first `size` bytes of an open file (size 0: no bytes). */
export function fileSlice(fd: number, size: number): () => Readable {
  return () =>
    size === 0
      ? Readable.from([])
      : createReadStream('', { fd, start: 0, end: size - 1, autoClose: false, highWaterMark: 256 * 1024 });
}
