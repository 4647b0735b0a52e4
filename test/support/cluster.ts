import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { type AclInput, aclFile, agentUser, brokerUsers } from '../../src/bus/mqtt/acl.js';
import { passwordFile } from '../../src/bus/mqtt/passwd.js';
import { tempDir } from './hearth.js';
import { TestMosquitto } from './mosquitto.js';
import { type HearthProcess, spawnReady } from './process.js';

/** A role process of the built CLI: `node bin/hearth.js start --role ROLE --config FILE`. */
export interface RoleProcess extends HearthProcess {
  role: string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts one role from the built CLI on a free port and waits for its ready line. It connects
 * to the broker as its own user (`HEARTH_MQTT_USERNAME`/`PASSWORD`, which writeClusterConfig's
 * config reads), as docs/mqtt.md sets a cluster up.
 */
export async function startRole(
  config: string,
  role: 'api' | 'controller' | 'agent',
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<RoleProcess> {
  const agent = extra.includes('--agent') ? extra[extra.indexOf('--agent') + 1] : undefined;
  const username = role === 'agent' ? agentUser(agent ?? 'main') : `hearth-${role}`;
  const p = await spawnReady(['bin/hearth.js', 'start', '--config', config, '--role', role, ...extra], {
    ...brokerEnv(username),
    ...env,
  });
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

/** A broker user's password in these tests: made up for this run, known to the broker and the role. */
const runSecret = randomBytes(8).toString('hex');
export function brokerPassword(username: string): string {
  return createHash('sha256').update(`${runSecret}:${username}`).digest('hex');
}

/** The environment that makes writeClusterConfig's config connect as `username` (any CLI command reading it needs one). */
export function brokerEnv(username: string): { HEARTH_MQTT_USERNAME: string; HEARTH_MQTT_PASSWORD: string } {
  return { HEARTH_MQTT_USERNAME: username, HEARTH_MQTT_PASSWORD: brokerPassword(username) };
}

/**
 * A Mosquitto locked as docs/mqtt.md says: a password file and the ACL hearth renders
 * (src/bus/mqtt/acl.ts), a user per role (agents `main` unless `agents` says more), and Home
 * Assistant's and zigbee2mqtt's when `clients` names them; every password is brokerPassword's.
 * TestMosquitto ends its config with `allow_anonymous true`, so an anonymous client connects
 * here and only the ACL stops it: harder than the documented `allow_anonymous false`.
 */
export async function startLockedBroker(acl: Partial<AclInput> = {}): Promise<TestMosquitto> {
  const input: AclInput = { agents: ['main'], ...acl };
  const dir = tempDir('hearth-broker-');
  const users = new Map(brokerUsers(input).map((u) => [u.username, brokerPassword(u.username)]));
  writeFileSync(join(dir, 'passwd'), passwordFile(users), { mode: 0o600 });
  writeFileSync(join(dir, 'acl'), aclFile(input));
  const broker = await TestMosquitto.start({
    // Started as root, Mosquitto would drop to the user `mosquitto`, who cannot read a temp folder.
    extraConfig: [`user ${userInfo().username}`, `password_file ${dir}/passwd`, `acl_file ${dir}/acl`],
  });
  const stop = broker.stop.bind(broker);
  return Object.assign(broker, {
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** `mqtt://USER:PASSWORD@host:port` of a locked broker, for a client that takes only a URL (the simulators). */
export function brokerUrlAs(broker: TestMosquitto, username: string): string {
  const u = new URL(broker.url);
  u.username = username;
  u.password = brokerPassword(username);
  return u.toString().replace(/\/$/, '');
}

/**
 * Writes a cluster config into `dir` and returns its path. Each role's broker user comes from
 * its environment (startRole sets it); `mqtt` adds keys to the `mqtt:` section (`insecure: true`).
 */
export function writeClusterConfig(
  dir: string,
  opts: { pgUrl: string; mqttUrl: string; leaseSeconds?: number; body: string; mqtt?: string },
): string {
  const file = join(dir, 'hearth.yaml');
  writeFileSync(
    file,
    [
      'timezone: UTC',
      'http: { host: 127.0.0.1, port: 0 }',
      `storage: { postgres: { url: "${opts.pgUrl}" } }`,
      `mqtt: { url: "${opts.mqttUrl}", username: "\${HEARTH_MQTT_USERNAME}", password: "\${HEARTH_MQTT_PASSWORD}"${opts.mqtt ? `, ${opts.mqtt}` : ''} }`,
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
