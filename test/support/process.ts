import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { untilOutput } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface HearthProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves with the exit code or signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs the built CLI (`node bin/hearth.js start --config FILE`, over the dist/ that the vitest
 * globalSetup builds) and waits for its ready line: what users run, bundling included.
 */
export function spawnHearth(config: string, env: NodeJS.ProcessEnv = {}): Promise<HearthProcess> {
  return spawnReady(['bin/hearth.js', 'start', '--config', config], env);
}

/** Runs `node <args>` in the repository and waits for hearth's ready line. */
export async function spawnReady(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HearthProcess> {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, HEARTH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // The banner is on stderr (stdout carries only JSON log lines); either stream will do.
  const ready = await untilOutput(() => out, /hearth is ready on (http:\/\/[^\s]+)/, {
    what: "hearth's ready line",
    timeoutMs: 20_000,
    failOn: exited.then(({ code, signal }) => `hearth exited (${signal ?? code}) before it was ready`),
  }).catch((err: unknown) => {
    // Not left running behind a failed test, to load the machine for the files after it.
    child.kill('SIGKILL');
    throw err;
  });
  const url = ready[1] as string;
  return { child, url, output: () => out, exited };
}
