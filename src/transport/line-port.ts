import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import type { SerialPort } from 'serialport';
import { SerialQueue } from '../core/serial-queue.js';
import { openSerialPort } from './serial-port.js';

/** Requests that may wait for the line; every one has its own deadline too. */
const EXCHANGE_QUEUE_LIMIT = 100;

/** The few logger methods the transport uses; hearth's pino logger fits. */
export interface PortLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LinePortOptions {
  /** Device path; prefer /dev/serial/by-id/..., which survives replugging into another USB port. */
  path: string;
  baudRate: number;
  /** What ends a line the host writes; input is split on \n with any \r stripped. */
  eol: '\n' | '\r\n';
  /** Wait after opening before talking: an Arduino resets when its port is opened. */
  settleMs: number;
  /** First reconnect delay; doubles up to maxBackoffMs while the device stays away. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longer input lines are dropped (and reported as garbage): noise must not eat memory. */
  maxLineLength?: number;
  /**
   * How often the open port checks that its device file is still there (and the same device);
   * 0 never. On Linux a vanished tty (USB unplug, pty gone) only reads end-of-file, which
   * serialport neither reports nor waits on, so without this an idle port never sees the loss.
   */
  presenceCheckMs?: number;
  log?: PortLog;
}

export interface RequestOptions {
  timeoutMs: number;
  /** Which incoming line answers this request; others are passed on as `line` events. */
  accept: (line: string) => boolean;
}

interface Events {
  /** The port is open and settled: requests may be sent. */
  open: [];
  /** The port closed or failed; it is being reopened. */
  close: [reason: string];
  /** Every complete input line that did not answer a pending request. */
  line: [line: string];
  /** Input that is not a line: too long. */
  garbage: [description: string];
}

interface Pending {
  accept: (line: string) => boolean;
  resolve: (line: string) => void;
}

/**
 * A line-oriented serial port that reopens itself. One request/answer exchange runs at a
 * time, each with a deadline, because the devices answer in order and tag nothing.
 * Knows nothing of hearth: drivers build their protocol on it.
 */
export class LinePort extends EventEmitter<Events> {
  readonly #opts: Required<Omit<LinePortOptions, 'log'>> & { log: PortLog | undefined };
  #port: SerialPort | undefined;
  #ready = false;
  #stopped = true;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #presence: NodeJS.Timeout | undefined;
  #buffer = '';
  #pending: Pending | undefined;
  readonly #queue: SerialQueue;

  constructor(opts: LinePortOptions) {
    super();
    this.#opts = {
      minBackoffMs: 250,
      maxBackoffMs: 5000,
      maxLineLength: 256,
      presenceCheckMs: 500,
      log: undefined,
      ...opts,
    };
    this.#queue = new SerialQueue(`exchanges on ${opts.path}`, EXCHANGE_QUEUE_LIMIT);
  }

  /** True when the port is open and settled. */
  get ready(): boolean {
    return this.#ready;
  }

  get path(): string {
    return this.#opts.path;
  }

  /** Opens the port, and keeps reopening it until `close()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#open();
  }

  /** Writes one line; rejects if the port is not ready or the write fails. */
  async send(line: string): Promise<void> {
    const port = this.#port;
    if (!port || !this.#ready) throw new Error(`serial port ${this.#opts.path} is not open`);
    await new Promise<void>((resolve, reject) => {
      port.write(line + this.#opts.eol, (err) => {
        if (err) {
          this.#lost(`write failed: ${err.message}`);
          reject(new Error(`writing to ${this.#opts.path} failed: ${err.message}`));
        } else resolve();
      });
    });
  }

  /**
   * Sends `line` and resolves with the first input line that `accept` takes, after the
   * exchanges queued before it. Rejects at the deadline, or if the port closes meanwhile.
   */
  request(line: string, opts: RequestOptions): Promise<string> {
    const run = async () => {
      let timer: NodeJS.Timeout | undefined;
      let onClose: ((reason: string) => void) | undefined;
      const answer = new Promise<string>((resolve, reject) => {
        this.#pending = { accept: opts.accept, resolve };
        timer = setTimeout(
          () => reject(new Error(`no answer to ${JSON.stringify(line)} within ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
        onClose = (reason) => reject(new Error(`serial port closed: ${reason}`));
        this.on('close', onClose);
      });
      answer.catch(() => {});
      try {
        await this.send(line);
        return await answer;
      } finally {
        clearTimeout(timer);
        if (onClose) this.off('close', onClose);
        this.#pending = undefined;
      }
    };
    return this.#queue.run(run);
  }

  /** Stops reopening and closes the port. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#settle);
    clearInterval(this.#presence);
    const port = this.#port;
    this.#port = undefined;
    this.#ready = false;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  #open(): void {
    if (this.#stopped) return;
    const port = openSerialPort({ path: this.#opts.path, baudRate: this.#opts.baudRate, autoOpen: false });
    this.#port = port;
    port.on('data', (chunk: Buffer) => this.#onData(chunk));
    port.on('close', (err?: Error) => {
      if (this.#port === port) this.#lost(err ? err.message : 'closed');
    });
    port.on('error', (err) => {
      if (this.#port === port) this.#lost(err.message);
    });
    port.open((err) => {
      if (this.#port !== port) return;
      if (err) {
        this.#lost(`cannot open: ${err.message}`);
        return;
      }
      this.#buffer = '';
      this.#watchPresence(port);
      this.#settle = setTimeout(() => {
        if (this.#port !== port) return;
        this.#attempt = 0;
        this.#ready = true;
        this.#opts.log?.info({ path: this.#opts.path }, 'serial port open');
        this.emit('open');
      }, this.#opts.settleMs);
    });
  }

  #lost(reason: string): void {
    const port = this.#port;
    if (!port) return;
    this.#port = undefined;
    clearTimeout(this.#settle);
    clearInterval(this.#presence);
    const wasReady = this.#ready;
    this.#ready = false;
    if (port.isOpen) port.close(() => {});
    // Said once per outage; retries are quiet.
    if (wasReady || this.#attempt === 0) {
      this.#opts.log?.warn({ path: this.#opts.path, reason }, 'serial port lost; reopening');
    }
    this.emit('close', reason);
    if (this.#stopped) return;
    const delay = Math.min(this.#opts.maxBackoffMs, this.#opts.minBackoffMs * 2 ** this.#attempt);
    this.#attempt++;
    this.#retry = setTimeout(() => this.#open(), delay);
  }

  #watchPresence(port: SerialPort): void {
    const every = this.#opts.presenceCheckMs;
    if (every <= 0) return;
    const path = this.#opts.path;
    let device: number | undefined;
    const check = async () => {
      const now = await stat(path).then(
        (s) => s.rdev,
        () => undefined,
      );
      if (this.#port !== port) return;
      if (now === undefined) this.#lost('the device is gone (unplugged?)');
      else if (device !== undefined && now !== device) this.#lost('the device was replaced (replugged?)');
      else device = now;
    };
    clearInterval(this.#presence);
    this.#presence = setInterval(() => void check(), every);
    this.#presence.unref();
    void check();
  }

  #onData(chunk: Buffer): void {
    this.#buffer += chunk.toString('latin1');
    let nl = this.#buffer.indexOf('\n');
    while (nl >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#onLine(line);
      nl = this.#buffer.indexOf('\n');
    }
    if (this.#buffer.length > this.#opts.maxLineLength) {
      this.emit('garbage', `${this.#buffer.length} bytes without a line end`);
      this.#buffer = '';
    }
  }

  #onLine(line: string): void {
    if (line.length > this.#opts.maxLineLength) {
      this.emit('garbage', `a line of ${line.length} bytes`);
      return;
    }
    const pending = this.#pending;
    if (pending?.accept(line)) {
      this.#pending = undefined;
      pending.resolve(line);
      return;
    }
    this.emit('line', line);
  }
}
