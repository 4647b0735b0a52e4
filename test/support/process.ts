import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth did not get ready:\n${out}`)), 15_000);
    const check = () => {
      const m = /hearth is ready on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    // The banner is on stderr (stdout carries only JSON log lines); either stream will do.
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`hearth exited with ${code} before it was ready:\n${out}`));
    });
  });
  return { child, url, output: () => out, exited };
}
