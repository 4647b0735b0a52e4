/**
 * The wire format of TP-Link Kasa devices on TCP port 9999: each message is a 4-byte
 * big-endian length, then the payload XOR-autokey encrypted with an initial key of 0xAB.
 * Pure: imports only node built-ins, so it can be lifted out of hearth unchanged.
 */

/** The port Kasa plugs and bulbs listen on. */
export const KASA_PORT = 9999;

/** The autokey cipher's first key byte. */
export const INITIAL_KEY = 0xab;

/**
 * The largest payload a peer may announce. A real sysinfo is about 1 KiB; the cap keeps a
 * stray service on port 9999, or line noise, from making us buffer gigabytes.
 */
export const MAX_FRAME_BYTES = 64 * 1024;

const HEADER_BYTES = 4;

/** Encrypts a payload: each cipher byte is the key for the next one. */
export function encrypt(plain: string | Uint8Array): Buffer {
  const input = typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain;
  const out = Buffer.allocUnsafe(input.length);
  let key = INITIAL_KEY;
  for (let i = 0; i < input.length; i++) {
    key ^= input[i] as number;
    out[i] = key;
  }
  return out;
}

/** Decrypts a payload produced by {@link encrypt}. */
export function decrypt(cipher: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(cipher.length);
  let key = INITIAL_KEY;
  for (let i = 0; i < cipher.length; i++) {
    const c = cipher[i] as number;
    out[i] = key ^ c;
    key = c;
  }
  return out;
}

/** One whole message ready for the socket: length header, then the encrypted payload. */
export function encodeFrame(plain: string | Uint8Array): Buffer {
  const body = encrypt(plain);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Thrown by {@link FrameDecoder} when a peer announces a message larger than the cap. */
export class FrameTooLargeError extends Error {
  readonly length: number;
  readonly limit: number;

  constructor(length: number, limit: number) {
    super(`announced a message of ${length} bytes, more than the ${limit} accepted`);
    this.name = 'FrameTooLargeError';
    this.length = length;
    this.limit = limit;
  }
}

/**
 * Reassembles messages from TCP chunks, which may split a header or a payload anywhere or
 * carry several messages at once. Feed it every chunk; it returns the decrypted payloads that
 * became complete.
 */
export class FrameDecoder {
  private readonly limit: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Payload length of the message being received, once its header is complete. */
  private expected: number | undefined;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.limit = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Bytes received that do not yet make a whole message. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds a chunk and returns every payload it completed, in order.
   * @throws FrameTooLargeError as soon as a header announces more than the cap.
   */
  push(chunk: Uint8Array): Buffer[] {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected === undefined) {
        if (this.buffered < HEADER_BYTES) break;
        const first = this.chunks[0] as Buffer;
        const head = first.length >= HEADER_BYTES ? first : this.coalesce();
        const length = head.readUInt32BE(0);
        if (length > this.limit) throw new FrameTooLargeError(length, this.limit);
        this.expected = length;
      }
      const end = HEADER_BYTES + this.expected;
      if (this.buffered < end) break;
      const all = this.coalesce();
      frames.push(decrypt(all.subarray(HEADER_BYTES, end)));
      const rest = all.subarray(end);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = undefined;
    }
    return frames;
  }

  // Joins chunks only once a whole header or message is there, so a reply that arrives in
  // many small chunks is not copied again on every chunk.
  private coalesce(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] as Buffer;
  }
}
