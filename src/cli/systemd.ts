/**
 * systemd's notify protocol (sd_notify(3)) for `hearth start` under a `Type=notify` unit with a
 * watchdog (contrib/systemd/hearth.service): READY=1 once hearth serves, WATCHDOG=1 every half
 * watchdog period from the event loop (a loop that blocks stops the pings, and systemd restarts
 * hearth), STOPPING=1 when a signal starts the safe stop.
 *
 * The messages are datagrams on the unix socket systemd names in $NOTIFY_SOCKET. Node has no
 * unix datagram sockets, so they go through unix-dgram, a small native addon (the one
 * zigbee2mqtt uses for the same). It is an optional dependency: an install without a C compiler
 * skips it, and hearth runs as before wherever $NOTIFY_SOCKET is unset (a shell, Docker,
 * Kubernetes, a `Type=simple` unit). Under a notify unit without it, hearth stops at once and
 * says what to do, rather than being killed 90 s later for a READY=1 it could never send.
 */
import { createRequire } from 'node:module';
import type { Logger } from '../core/log.js';

/** What unix-dgram's socket offers that hearth uses. */
interface DatagramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}

export interface SystemdNotifier {
  /** True when systemd is listening ($NOTIFY_SOCKET set). */
  readonly active: boolean;
  /** The watchdog period systemd asked for, in ms, or undefined without one. */
  readonly watchdogMs: number | undefined;
  /** READY=1, with a one-line status for `systemctl status`. */
  ready(status: string): void;
  /** STOPPING=1: the stop has begun (it may take TimeoutStopSec while devices are made safe). */
  stopping(): void;
  /** Stops the pings and closes the socket. */
  close(): void;
}

/** The environment systemd gives a notify service; `process.env` in production. */
export interface SystemdEnv {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

/** Why hearth cannot speak to systemd although systemd waits for it: the message to print. */
export class SystemdNotifyError extends Error {}

const inactive: SystemdNotifier = {
  active: false,
  watchdogMs: undefined,
  ready() {},
  stopping() {},
  close() {},
};

/**
 * The notifier for this process: inactive without $NOTIFY_SOCKET, else connected and already
 * pinging the watchdog if systemd set one for this process. Throws SystemdNotifyError when
 * systemd waits for messages hearth cannot send.
 */
export function connectSystemd(env: SystemdEnv, log: Logger, pid = process.pid): SystemdNotifier {
  const path = env.NOTIFY_SOCKET;
  if (!path) return inactive;
  if (path.startsWith('@')) {
    throw new SystemdNotifyError(
      `NOTIFY_SOCKET is the abstract socket ${path}; hearth can send to a socket path only (systemd's own is /run/systemd/notify). Run hearth under the system manager, or use Type=simple and no WatchdogSec.`,
    );
  }
  let socket: DatagramSocket;
  try {
    const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
      createSocket(type: 'unix_dgram'): DatagramSocket;
    };
    socket = unixDgram.createSocket('unix_dgram');
  } catch (err) {
    throw new SystemdNotifyError(
      `systemd runs hearth as Type=notify (NOTIFY_SOCKET is set), but the optional module unix-dgram could not be loaded (${(err as Error).message.split('\n')[0]}). Install python3, make and g++ and run \`npm ci\` again, or use Type=simple and remove WatchdogSec from the unit.`,
    );
  }
  // A send that fails is logged once per kind; systemd may be restarting, and a missed ping is
  // only a missed ping.
  const failed = new Set<string>();
  socket.on('error', (err) => log.warn({ err: err.message }, 'systemd notify socket failed'));
  const send = (message: string) => {
    const buf = Buffer.from(message);
    const kind = message.slice(0, message.indexOf('='));
    socket.send(buf, 0, buf.length, path, (err) => {
      if (!err || failed.has(kind)) return;
      failed.add(kind);
      log.warn({ err: err.message, socket: path }, 'could not notify systemd');
    });
  };

  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  const watchdogMs = forUs && Number.isFinite(usec) && usec > 0 ? usec / 1000 : undefined;
  let ping: NodeJS.Timeout | undefined;
  if (watchdogMs !== undefined) {
    // Half the period, as sd_watchdog_enabled(3) advises: one late turn of the loop is not yet
    // a restart. The timer runs on the event loop, so a loop that blocks stops the pings.
    ping = setInterval(() => send('WATCHDOG=1'), Math.max(1, Math.floor(watchdogMs / 2)));
    ping.unref();
    send('WATCHDOG=1');
  }
  log.debug({ socket: path, watchdogMs }, 'systemd notify');
  return {
    active: true,
    watchdogMs,
    ready(status) {
      send(`READY=1\nSTATUS=${status.replaceAll('\n', ' ')}`);
    },
    stopping() {
      send('STOPPING=1\nSTATUS=stopping: making heaters and valves safe');
    },
    close() {
      clearInterval(ping);
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    },
  };
}
