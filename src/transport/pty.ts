import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

/** Every socat this process started, to kill when it exits. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const socat of live) socat.kill('SIGTERM');
});

/**
 * A pair of linked pseudo-terminals made by socat: what one end writes, the other reads, as
 * on a USB serial cable. Simulators open `simPath`; hearth opens `devicePath` as if it were
 * /dev/ttyACM0. Killing the pair makes the device "unplugged"; `plug()` brings it back.
 */
export class PtyPair {
  readonly devicePath: string;
  readonly simPath: string;
  #socat: ChildProcess | undefined;

  constructor(devicePath: string, simPath = `${devicePath}.sim`) {
    this.devicePath = devicePath;
    this.simPath = simPath;
  }

  get plugged(): boolean {
    return this.#socat !== undefined;
  }

  /** Creates the pair and resolves once both links exist. */
  async plug(): Promise<void> {
    if (this.#socat) return;
    for (const p of [this.devicePath, this.simPath]) rmSync(p, { force: true });
    const socat = spawn(
      'socat',
      [`pty,raw,echo=0,link=${this.devicePath}`, `pty,raw,echo=0,link=${this.simPath}`],
      // Its own process group: a Ctrl-C or a `timeout` aimed at hearth must not unplug the
      // simulated device before hearth has made it safe. It is killed when this process exits.
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    this.#socat = socat;
    live.add(socat);
    socat.once('exit', () => live.delete(socat));
    let stderr = '';
    socat.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const failed = new Promise<never>((_, reject) => {
      socat.once('error', (err) =>
        reject(
          new Error(
            `cannot run socat (${err.message}); install it (Debian: apt-get install socat) to simulate serial devices`,
          ),
        ),
      );
      socat.once('exit', (code) => reject(new Error(`socat exited with ${code}: ${stderr.trim()}`)));
    });
    const ready = (async () => {
      const deadline = Date.now() + 5000;
      while (!(existsSync(this.devicePath) && existsSync(this.simPath))) {
        if (Date.now() > deadline) throw new Error(`socat made no ptys at ${this.devicePath} within 5 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await Promise.race([ready, failed]);
    } catch (err) {
      this.#socat = undefined;
      socat.kill('SIGKILL');
      throw err;
    }
    failed.catch(() => {});
    socat.once('exit', () => {
      if (this.#socat === socat) this.#socat = undefined;
    });
  }

  /** Removes the pair: both ends see the device vanish. */
  async unplug(): Promise<void> {
    const socat = this.#socat;
    if (!socat) return;
    this.#socat = undefined;
    const exited = new Promise<void>((resolve) => socat.once('exit', () => resolve()));
    socat.kill('SIGTERM');
    await exited;
    for (const p of [this.devicePath, this.simPath]) rmSync(p, { force: true });
  }
}
