import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** A child process the bench started, with the tail of its output kept for error messages. */
export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Last lines of stdout and stderr, for diagnostics. */
  tail: string[];
  exited: Promise<number | null>;
  hasExited(): boolean;
}

const TAIL_LINES = 40;
const running = new Set<Proc>();
/** Things to end that are not `Proc`s: simulators inside this process (and their socat). */
const cleanups = new Set<() => Promise<void>>();

/** Runs `fn` in `stopAll` (at the end, on error, on Ctrl-C) unless `remove()` was called first. */
export function onStopAll(fn: () => Promise<void>): { remove(): void } {
  cleanups.add(fn);
  return { remove: () => cleanups.delete(fn) };
}

/** Spawns `node <args>` (or another command) and tracks it so `stopAll` can end it. */
export function start(
  name: string,
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Proc {
  const child = spawn(command, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production', ...env },
  });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      done = true;
      running.delete(proc);
      resolve(code);
    });
    child.on('error', () => {
      done = true;
      running.delete(proc);
      resolve(null);
    });
  });
  const proc: Proc = { name, child, pid: child.pid, tail, exited, hasExited: () => done };
  running.add(proc);
  return proc;
}

/** Waits until a line of the process's stdout matches `re`; rejects on exit or after `timeoutMs`. */
export function waitForLine(proc: Proc, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.stdout?.off('data', onData);
      proc.child.off('exit', onExit);
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const m = re.exec(buffered);
      if (m) {
        cleanup();
        resolve(m);
      }
      if (buffered.length > 1_000_000) buffered = buffered.slice(-10_000);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${proc.name} exited (code ${code}) before printing ${re}\n${describe(proc)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${proc.name} did not print ${re} within ${timeoutMs} ms\n${describe(proc)}`));
    }, timeoutMs);
    proc.child.stdout?.on('data', onData);
    proc.child.on('exit', onExit);
  });
}

export function describe(proc: Proc): string {
  return proc.tail.length ? `  last output of ${proc.name}:\n    ${proc.tail.join('\n    ')}` : '';
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stop(proc: Proc, graceMs = 2000): Promise<void> {
  if (proc.hasExited()) return;
  proc.child.kill('SIGTERM');
  // The bench may have stopped it (a hung host): let it see the SIGTERM.
  proc.child.kill('SIGCONT');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  const hooks = [...cleanups];
  cleanups.clear();
  await Promise.all([...hooks.map((fn) => fn().catch(() => undefined)), ...[...running].map((p) => stop(p))]);
}

/**
 * Last resort from an `exit` handler, where nothing asynchronous runs any more: every tracked
 * child, then any other direct child of this process still there (the socat of a simulator
 * that lives in this process), each by its pid.
 */
export function killAllNow(): void {
  for (const p of running) {
    if (!p.hasExited()) p.child.kill('SIGKILL');
  }
  for (const pid of childPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** Pids of this process's own children, from /proc (Linux only; empty elsewhere). */
function childPids(): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) out.push(Number(e));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Ends every child on Ctrl-C, SIGTERM, an uncaught error, or a plain exit. */
export function installCleanup(): void {
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`\nbench: ${sig}, stopping child processes`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resident and peak memory of a process, in MiB, from /proc (Linux only). */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
