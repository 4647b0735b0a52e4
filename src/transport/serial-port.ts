/**
 * The one way hearth opens a serial port: serialport's `SerialPort` over the platform binding,
 * with the binding's poller made to wake the event loop.
 *
 * Why: on Linux and macOS the binding reads a port with `fs.read` and, when that says EAGAIN,
 * waits for its native poller's "readable" and retries in a promise continuation. The poller
 * calls into JavaScript without a callback scope, so nothing drains the microtask queue after
 * it; since Node 26.4 (nodejs/node#62969) no later step does either, and the retry waits for
 * whatever next wakes the loop: an answer from the board arrives 200 ms late, or at the next
 * refresh, or never (serialport/bindings-cpp#239, open upstream). Each poller event here also
 * schedules an empty immediate, whose turn of the loop runs the pending continuations. On older
 * Node, and on Windows (no poller), it changes nothing.
 */
import type { EventEmitter } from 'node:events';
import { SerialPort } from 'serialport';

export interface SerialPortOptions {
  path: string;
  baudRate: number;
  /** Default true, as serialport's. */
  autoOpen?: boolean;
}

const detected = SerialPort.binding;
const POLLER_EVENTS = ['readable', 'writable', 'disconnect'] as const;

function wake(): void {
  setImmediate(() => {});
}

type OpenOptions = Parameters<typeof detected.open>[0];

const binding = {
  ...detected,
  list: () => detected.list(),
  async open(options: OpenOptions) {
    const port = await detected.open(options as never);
    const poller = (port as { poller?: EventEmitter }).poller;
    if (poller) for (const event of POLLER_EVENTS) poller.on(event, wake);
    return port;
  },
} as typeof detected;

/** A serial port whose reads and writes finish as soon as the device has answered, on every Node. */
export function openSerialPort(options: SerialPortOptions, onOpen?: (err: Error | null) => void): SerialPort {
  // serialport's types leave `binding` out of SerialPort's options; its constructor takes one.
  return new SerialPort({ ...options, binding } as ConstructorParameters<typeof SerialPort>[0], onOpen);
}
