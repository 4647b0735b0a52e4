import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/**
 * The largest config or secrets file hearth reads. A real one is a few kB; anything near this is
 * a wrong path (a log, a disk image), and YAML parsing costs tens of times a file's size in memory.
 */
export const maxFileBytes = 1024 * 1024;

/** The path names something hearth will not read: a FIFO, a device, a directory, a huge file. */
export class FileRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileRefused';
  }
}

/**
 * Reads a small regular file as UTF-8. The path is opened non-blocking and checked with fstat on
 * that descriptor before any byte is read, so a FIFO cannot hang the open, /dev/zero cannot fill
 * memory, and the check is about the file actually read, not one swapped in after a stat.
 * Throws FileRefused, or the system's error (ENOENT, EACCES) as it is.
 */
export function readSmallFile(path: string, limit = maxFileBytes): string {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FileRefused(`it is ${typeOf(stat)}, not a regular file`);
    if (stat.size > limit) {
      throw new FileRefused(`it is ${stat.size} bytes; hearth reads at most ${megabytes(limit)}`);
    }
    // One byte more than fstat said: a file that grew while being read is refused, not cut short.
    const buf = Buffer.alloc(stat.size + 1);
    let length = 0;
    while (length < buf.length) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > stat.size) throw new FileRefused('it grew while hearth read it; try again');
    return buf.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function typeOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a named pipe';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

function megabytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MB` : `${bytes} bytes`;
}
