import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { repoRoot, spawnHearth, spawnReady } from './support/process.js';
import { letTimePass, until } from './support/wait.js';

/*
 * hearth under contrib/systemd/hearth.service (Type=notify, WatchdogSec). This machine's
 * systemd is not PID 1, so the unit cannot be run here; what can be: systemd's own checks of
 * the unit file (`systemd-analyze verify` and `security --offline`), and the built CLI speaking
 * the notify protocol to a real unix datagram socket, as systemd's /run/systemd/notify is.
 */
const run = promisify(execFile);
const unit = join(repoRoot, 'contrib/systemd/hearth.service');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function analyze(...args: string[]): Promise<{ stdout: string; stderr: string } | undefined> {
  try {
    return await run('systemd-analyze', args);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

describe('the systemd unit', () => {
  it('is Type=notify with a watchdog that only hearth itself may feed', async () => {
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^NotifyAccess=main$/m);
    expect(text).toMatch(/^WatchdogSec=\d+$/m);
    expect(text).toMatch(/^EnvironmentFile=-\/etc\/hearth\/hearth\.env$/m);
  });

  it("passes systemd-analyze verify, and systemd's security review scores it 2.0 or less", async (ctx) => {
    // The unit names /opt/hearth/bin/hearth.js and user hearth; verify checks the file itself.
    const verified = await analyze('verify', unit);
    if (!verified) ctx.skip('systemd-analyze is not installed (Debian: systemd)');
    expect(`${verified?.stdout}${verified?.stderr}`.trim()).toBe('');
    const review = await analyze('security', '--offline=yes', '--no-pager', unit);
    const overall = /Overall exposure level for hearth\.service: ([\d.]+)/.exec(review?.stdout ?? '');
    expect(overall, review?.stdout).not.toBeNull();
    expect(Number(overall?.[1])).toBeLessThanOrEqual(2.0);
  });
});

/** A bound unix datagram socket, as systemd's notify socket: every message it got, in order. */
function notifySocket(path: string): { messages: string[]; close(): void } {
  const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
    createSocket(
      type: 'unix_dgram',
      listener: (buf: Buffer) => void,
    ): { bind(path: string): void; close(): void; on(e: 'error', l: (err: Error) => void): void };
  };
  const messages: string[] = [];
  const socket = unixDgram.createSocket('unix_dgram', (buf) => messages.push(String(buf)));
  socket.on('error', (err) => messages.push(`error: ${err.message}`));
  socket.bind(path);
  return { messages, close: () => socket.close() };
}

function config(): { dir: string; file: string } {
  const dir = tempDir();
  dirs.push(dir);
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: ${join(dir, 'hearth.db')} }\nbuttons: [{ id: bedside }]\n`,
  );
  return { dir, file };
}

describe('hearth start under a notify unit', () => {
  it('says READY=1 once it serves, pings WATCHDOG=1 from its loop, goes quiet while stopped, and says STOPPING=1 on SIGTERM', async () => {
    const { dir, file } = config();
    const socket = notifySocket(join(dir, 'notify'));
    // 600 ms: a ping every 300 ms, so a stopped process is seen within a second.
    const h = await spawnHearth(file, { NOTIFY_SOCKET: join(dir, 'notify'), WATCHDOG_USEC: '600000' });
    try {
      const ready = await until(() => socket.messages.find((m) => m.startsWith('READY=1')), {
        what: () => `READY=1 (got ${JSON.stringify(socket.messages)})`,
      });
      expect(ready).toBe(`READY=1\nSTATUS=ready on ${h.url}`);
      expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
      const pings = () => socket.messages.filter((m) => m === 'WATCHDOG=1').length;
      const before = pings();
      await until(() => pings() >= before + 3, { what: 'three more watchdog pings' });

      // A hung hearth (here: stopped outright) sends nothing, so systemd would restart it.
      h.child.kill('SIGSTOP');
      const frozen = pings();
      // The promise: no ping while hung. Two watchdog periods, from the stop.
      await letTimePass(1200);
      expect(pings()).toBe(frozen);
      h.child.kill('SIGCONT');
      await until(() => pings() > frozen, { what: 'pings again after SIGCONT' });

      h.child.kill('SIGTERM');
      expect(await h.exited).toEqual({ code: 0, signal: null });
      expect(socket.messages.some((m) => m.startsWith('STOPPING=1'))).toBe(true);
      expect(socket.messages.filter((m) => !['WATCHDOG=1'].includes(m)).map((m) => m.split('\n')[0])).toEqual(
        ['READY=1', 'STOPPING=1'],
      );
    } finally {
      h.child.kill('SIGKILL');
      socket.close();
    }
  });

  it('pings no watchdog that systemd set for another process (WATCHDOG_PID), and is ready all the same', async () => {
    const { dir, file } = config();
    const socket = notifySocket(join(dir, 'notify'));
    const h = await spawnHearth(file, {
      NOTIFY_SOCKET: join(dir, 'notify'),
      WATCHDOG_USEC: '200000',
      WATCHDOG_PID: '1',
    });
    try {
      await until(() => socket.messages.some((m) => m.startsWith('READY=1')), { what: 'READY=1' });
      // The promise: no ping for a watchdog that is not ours. Ten of its periods; one that took
      // it for its own would have pinged at once and every 100 ms.
      await letTimePass(1000);
      expect(socket.messages.filter((m) => m === 'WATCHDOG=1')).toEqual([]);
    } finally {
      h.child.kill('SIGKILL');
      socket.close();
    }
  });

  it('starts as ever where nothing listens on NOTIFY_SOCKET (systemd gone), saying so in its log', async () => {
    const { dir, file } = config();
    const h = await spawnReady(['bin/hearth.js', 'start', '--config', file], {
      NOTIFY_SOCKET: join(dir, 'nobody-listens'),
      WATCHDOG_USEC: '200000',
    });
    try {
      expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
      expect(h.output()).toMatch(/could not notify systemd/);
    } finally {
      h.child.kill('SIGKILL');
    }
  });

  it('refuses an abstract NOTIFY_SOCKET at once, saying what to do', async () => {
    const { file } = config();
    const r = await runCli(['start', '--config', file], { env: { NOTIFY_SOCKET: '@hearth-test' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/abstract socket @hearth-test.*Type=simple/);
  });

  it('without the optional module unix-dgram, refuses to start under a notify unit and names the fix', async () => {
    // A copy of the product whose node_modules lacks unix-dgram, as after an install without
    // a C compiler: the bundle and bin copied, every other package linked.
    const { dir, file } = config();
    const copy = join(dir, 'hearth');
    mkdirSync(join(copy, 'node_modules'), { recursive: true });
    cpSync(join(repoRoot, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(repoRoot, 'dist'), join(copy, 'dist'), { recursive: true });
    cpSync(join(repoRoot, 'package.json'), join(copy, 'package.json'));
    for (const name of readdirSync(join(repoRoot, 'node_modules'))) {
      if (name !== 'unix-dgram')
        symlinkSync(join(repoRoot, 'node_modules', name), join(copy, 'node_modules', name));
    }
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(copy, 'bin/hearth.js'), 'start', '--config', file],
        { env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify') }, timeout: 30_000 },
        (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/optional module unix-dgram could not be loaded/);
    expect(r.stderr).toMatch(/python3, make and g\+\+ and run `npm ci` again, or use Type=simple/);
    // Without NOTIFY_SOCKET the same copy runs: the module is needed under systemd only.
    const plain = await spawnReady([join(copy, 'bin/hearth.js'), 'start', '--config', file]);
    plain.child.kill('SIGTERM');
    expect(await plain.exited).toEqual({ code: 0, signal: null });
  });
});
