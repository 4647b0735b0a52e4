import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclFile, brokerUsers } from '../src/bus/mqtt/acl.js';
import { passwordFile } from '../src/bus/mqtt/passwd.js';
import { type ProbeOptions, refuseOpenBroker } from '../src/bus/mqtt/probe.js';
import { silentLogger } from '../src/core/log.js';
import { runCli } from './support/cli-run.js';
import {
  brokerEnv,
  brokerPassword,
  type RoleProcess,
  startLockedBroker,
  startRole,
  writeClusterConfig,
} from './support/cluster.js';
import { tempDir } from './support/hearth.js';
import { freePort, mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';

/*
 * A role of a cluster refuses a broker on which a client without a user name may publish on
 * the cluster topics it acts on (src/bus/mqtt/probe.ts), unless `mqtt.insecure: true`. The probe
 * against real Mosquittos: open, locked by the ACL alone, refusing anonymous clients, and open
 * on one kind of topic only; then the built CLI's one-line refusal.
 */
const roles: ProbeOptions[] = [
  { role: 'api', log: silentLogger() },
  { role: 'controller', log: silentLogger() },
  { role: 'agent', agent: 'main', log: silentLogger() },
];
const userOf = (o: ProbeOptions) => (o.role === 'agent' ? `hearth-agent-${o.agent}` : `hearth-${o.role}`);
const settings = (broker: TestMosquitto, o: ProbeOptions, extra: { insecure?: boolean } = {}) => ({
  url: broker.url,
  username: userOf(o),
  password: brokerPassword(userOf(o)),
  baseTopic: 'hearth',
  ...extra,
});
const dirs: string[] = [];

/** A Mosquitto whose first listener has `lines` (the ACL and password file of hearth's users in `dir`). */
async function brokerWith(lines: (dir: string) => string[], anonymousAcl = ''): Promise<TestMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-probe-'));
  dirs.push(dir);
  const input = { agents: ['main'] };
  const users = new Map(brokerUsers(input).map((u) => [u.username, brokerPassword(u.username)]));
  writeFileSync(join(dir, 'passwd'), passwordFile(users), { mode: 0o600 });
  writeFileSync(join(dir, 'acl'), `${anonymousAcl}${aclFile(input)}`);
  return TestMosquitto.start({ extraConfig: [`user ${userInfo().username}`, ...lines(dir)] });
}

describe.skipIf(mosquittoMissing)('the broker probe of a cluster role', () => {
  const brokers: TestMosquitto[] = [];
  let open: TestMosquitto;
  let locked: TestMosquitto;
  beforeAll(async () => {
    open = await TestMosquitto.start();
    locked = await startLockedBroker();
    brokers.push(open, locked);
  });
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses an open broker for every role, naming the topic its anonymous message reached', async () => {
    for (const o of roles) {
      const err = await refuseOpenBroker(settings(open, o), o).then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code, o.role).toBe('HEARTH_ERR_CONFIG');
      expect(err?.message).toMatch(
        new RegExp(
          `^the MQTT broker at ${open.url} lets a client without a user name publish on hearth's cluster topics \\(a test message published anonymously reached this ${o.role} on hearth/cluster/`,
        ),
      );
      expect(err?.message).toContain('set mqtt.insecure: true');
      expect(err?.message).not.toContain(brokerPassword(userOf(o)));
    }
  });

  it('passes a broker that takes anonymous clients but whose ACL lets them publish nothing', async () => {
    for (const o of roles) await expect(refuseOpenBroker(settings(locked, o), o)).resolves.toBeUndefined();
  });

  it('passes a broker that refuses clients without a user name', async () => {
    // TestMosquitto ends with `allow_anonymous true`: per listener, it goes to a second listener.
    const port = await freePort();
    const strict = await brokerWith((dir) => [
      'per_listener_settings true',
      'allow_anonymous false',
      `password_file ${dir}/passwd`,
      `acl_file ${dir}/acl`,
      `listener ${port} 127.0.0.1`,
    ]);
    brokers.push(strict);
    for (const o of roles) await expect(refuseOpenBroker(settings(strict, o), o)).resolves.toBeUndefined();
  });

  it("probes each role's own topics: anonymous leader records stop the api and the controller, not an agent", async () => {
    const leaky = await brokerWith(
      (dir) => [`password_file ${dir}/passwd`, `acl_file ${dir}/acl`],
      'topic write hearth/cluster/leader/#\n',
    );
    brokers.push(leaky);
    const [api, controller, agent] = roles as [ProbeOptions, ProbeOptions, ProbeOptions];
    await expect(refuseOpenBroker(settings(leaky, api), api)).rejects.toThrow(/on hearth\/cluster\/leader\//);
    await expect(refuseOpenBroker(settings(leaky, controller), controller)).rejects.toThrow(
      /on hearth\/cluster\/leader\//,
    );
    await expect(refuseOpenBroker(settings(leaky, agent), agent)).resolves.toBeUndefined();
  });

  it('skips the check with mqtt.insecure: true, and names the user when the broker refuses it', async () => {
    const [api] = roles as [ProbeOptions];
    await expect(refuseOpenBroker(settings(open, api, { insecure: true }), api)).resolves.toBeUndefined();
    const wrong = { ...settings(locked, api), password: 'not-the-password' };
    await expect(refuseOpenBroker(wrong, { ...api, reachMs: 1000 })).rejects.toThrow(
      /cannot check the MQTT broker at .* before starting: .*check mqtt\.username and mqtt\.password/,
    );
  });
});

describe.skipIf(mosquittoMissing)('hearth start --role on an open broker', () => {
  let db: TestDatabase;
  let open: TestMosquitto;
  let dir: string;
  const procs: RoleProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    open = await TestMosquitto.start();
    dir = tempDir();
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await open?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exits 1 with one line that says why and how to fix it: no stack trace, no secret', async () => {
    const config = writeClusterConfig(dir, { pgUrl: db.url, mqttUrl: open.url, body: '' });
    const env = brokerEnv('hearth-api');
    const r = await runCli(['start', '--config', config, '--role', 'api'], { env });
    const output = `${r.stdout}${r.stderr}`.trim();
    expect(r.code, output).toBe(1);
    expect(output.split('\n'), output).toHaveLength(1);
    expect(output).toMatch(
      /^hearth could not start: HEARTH_ERR_CONFIG: the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+ lets a client without a user name publish on hearth's cluster topics .*docs\/mqtt\.md .*set mqtt\.insecure: true to run on this broker anyway$/,
    );
    expect(output).not.toContain(env.HEARTH_MQTT_PASSWORD);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('starts with mqtt.insecure: true, and says at warn level that it did not check', async () => {
    const sub = join(dir, 'insecure');
    mkdirSync(sub);
    const config = writeClusterConfig(sub, {
      pgUrl: db.url,
      mqttUrl: open.url,
      body: '',
      mqtt: 'insecure: true',
    });
    const api = await startRole(config, 'api');
    procs.push(api);
    expect(api.output()).toContain('mqtt.insecure is true');
  });
});
