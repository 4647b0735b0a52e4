import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { type HearthProcess, spawnReady } from './process.js';

/** A role process of the built CLI: `node bin/hearth.js start --role ROLE --config FILE`. */
export interface RoleProcess extends HearthProcess {
  role: string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts one role from the built CLI on a free port and waits for its ready line. */
export async function startRole(
  config: string,
  role: 'api' | 'controller' | 'agent',
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<RoleProcess> {
  const p = await spawnReady(['bin/hearth.js', 'start', '--config', config, '--role', role, ...extra], env);
  let ended = false;
  void p.exited.then(() => {
    ended = true;
  });
  return {
    ...p,
    role,
    kill9: async () => {
      if (ended) return;
      p.child.kill('SIGKILL');
      await p.exited;
    },
    stop: async () => {
      if (ended) return;
      p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(timer);
    },
  };
}

/** Writes a cluster config into `dir` and returns its path. */
export function writeClusterConfig(
  dir: string,
  opts: { pgUrl: string; mqttUrl: string; leaseSeconds?: number; body: string },
): string {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    [
      'timezone: UTC',
      'http: { host: 127.0.0.1, port: 0 }',
      `storage: { postgres: { url: "${opts.pgUrl}" } }`,
      `mqtt: { url: "${opts.mqttUrl}" }`,
      `cluster: { leaseSeconds: ${opts.leaseSeconds ?? 2} }`,
      opts.body,
    ].join('\n'),
  );
  return file;
}

/** An HTTP endpoint that records when it was called: what an automation's http action hits. */
export async function startRecorder(): Promise<{ url: string; hits: number[]; close(): Promise<void> }> {
  const hits: number[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(Date.now());
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}/hit`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** GET or POST with a body, answering status and text. */
export async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** Reads `hearth_leader{lease="..."}` from a role's /metrics: 1, 0, or undefined when absent. */
export async function leaderGauge(url: string, lease: string): Promise<number | undefined> {
  const { body } = await call(`${url}/metrics`);
  const line = body.split('\n').find((l) => l.startsWith(`hearth_leader{lease="${lease}"}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}
