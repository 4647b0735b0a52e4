import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { missing } from './services.js';
import { until } from './wait.js';

/** The Debian package's binary; `.ci/run` installs it. */
export const mosquittoBinary = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

/**
 * Why the MQTT tests are skipped, or undefined when they can run; where the run requires
 * mosquitto (HEARTH_TEST_REQUIRE, CI), importing this fails instead (services.ts).
 */
export const mosquittoMissing = missing(
  'mosquitto',
  mosquittoBinary ? undefined : 'mosquitto is not installed (apt-get install mosquitto; .ci/run does it)',
);

export interface TestMosquittoOptions {
  /**
   * A TLS listener instead of the plain one (the url is then `mqtts://127.0.0.1:PORT`): paths of
   * the broker's CA (for client certificates), certificate and key, all PEM.
   */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
  /** More lines for mosquitto.conf, after the listener's own (so they apply to it). */
  extraConfig?: string[];
}

/**
 * A Mosquitto of the test's own, on a free loopback port (never the shared one on 1883), so a
 * test can kill it and start it again on the same port.
 */
export class TestMosquitto {
  readonly port: number;
  readonly url: string;
  readonly #dir: string;
  readonly #conf: string;
  #child: ChildProcess | undefined;
  #output = '';

  private constructor(port: number, options: TestMosquittoOptions) {
    const { tls, extraConfig = [] } = options;
    this.port = port;
    this.url = `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'hearth-mosquitto-'));
    this.#conf = path.join(this.#dir, 'mosquitto.conf');
    writeFileSync(
      this.#conf,
      [
        `listener ${port} 127.0.0.1`,
        ...(tls
          ? [
              `cafile ${tls.ca}`,
              `certfile ${tls.cert}`,
              `keyfile ${tls.key}`,
              `require_certificate ${tls.requireCertificate ? 'true' : 'false'}`,
              // Started as root, Mosquitto drops to the user `mosquitto` before it loads these,
              // and that user cannot read the test's private temp folders: stay the test's user.
              `user ${os.userInfo().username}`,
            ]
          : []),
        ...extraConfig,
        'allow_anonymous true',
        'persistence false',
        'set_tcp_nodelay true',
        'log_type error',
        '',
      ].join('\n'),
    );
  }

  static async start(options: TestMosquittoOptions = {}): Promise<TestMosquitto> {
    if (!mosquittoBinary) throw new Error(mosquittoMissing);
    const m = new TestMosquitto(await freePort(), options);
    await m.#spawn();
    return m;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** SIGKILL: the broker dies without a word, as on a power cut. */
  async kill(): Promise<void> {
    await this.#end('SIGKILL');
  }

  /** Starts the broker again on the same port (kills it first if it still runs). */
  async restart(): Promise<void> {
    if (this.running) await this.kill();
    await this.#spawn();
  }

  async stop(): Promise<void> {
    await this.#end('SIGTERM');
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    this.#output = '';
    const child = spawn(mosquittoBinary as string, ['-c', this.#conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    child.stdout?.on('data', (d) => {
      this.#output += String(d);
    });
    child.stderr?.on('data', (d) => {
      this.#output += String(d);
    });
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`mosquitto exited (${signal ?? code})`)),
    );
    await until(() => accepts(this.port), {
      what: () => `mosquitto to accept connections on port ${this.port}; its output:\n${this.#output}`,
      failOn: exited,
    });
  }

  async #end(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
