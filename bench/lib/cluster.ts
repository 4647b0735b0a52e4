/**
 * Sections 11-13: hearth on several boxes (issue 8), every role a process of the built CLI on
 * loopback, meeting through a fresh PostgreSQL database (127.0.0.1:5432, dropped afterwards)
 * and a Mosquitto of the bench's own (TestMosquitto: `set_tcp_nodelay true`).
 *
 * 11. Toggle through api → MQTT → agent → plug, beside a one-box hearth measured the same way
 *     in the same run (each with its own `hearth sim wemo` process), interleaved request by
 *     request, then 16 clients in rotating slices.
 * 12. Failover: kill -9 of the leading controller and of the leading agent, two of each running,
 *     the killed one started again each time so there is always a standby. Failover = kill to
 *     the standby's `hearth_leader{lease="..."} 1` on /metrics (polled every 20 ms); for the
 *     agent also kill to the first toggle through the api that works again.
 * 13. Button presses per second through the api role (PostgreSQL) against one box (SQLite).
 *
 * Alone: `node --import tsx bench/lib/cluster.ts [--quick] [--kills N] [--no-build]`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { agentUser } from '../../src/bus/mqtt/acl.js';
import { brokerEnv, startLockedBroker } from '../../test/support/cluster.js';
import { mosquittoMissing, type TestMosquitto } from '../../test/support/mosquitto.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { hearthBin, hearthBuilt, type Sim, startHearth, startSim, writeConfig } from './hearth.js';
import { concurrent, interleaved, median, merge, quantile, type Sample, send, type Target } from './load.js';
import { freePort, installCleanup, type Proc, sleep, start, stop, stopAll } from './procs.js';
import { type Budget, budget, budgetTable, int, ms, ratio, table } from './report.js';

export interface ClusterOptions {
  root: string;
  tmp: string;
  quick: boolean;
  /** Concurrent clients for throughput; 16 by default. */
  clients?: number;
  /** Kills of each leader in 12; 10 by default, 3 with quick. */
  kills?: number;
  log?: (line: string) => void;
}

/** Latency of one client in sequence and throughput of `clients`, for one contender. */
export interface PathFigures {
  n: number;
  p50: number;
  p99: number;
  seqErrors: number;
  rps: number;
  loadP50: number;
  loadP99: number;
  loadErrors: number;
  errorKinds: string[];
}

export interface Spread {
  n: number;
  min: number;
  median: number;
  max: number;
  all: number[];
}

export interface ClusterResult {
  leaseSeconds: number;
  clients: number;
  /** 11: toggle through the cluster and through one box. */
  toggle: { cluster: PathFigures; oneBox: PathFigures } | null;
  /** 13: button presses through the api role (PostgreSQL) and one box (SQLite). */
  presses: { postgres: PathFigures; sqlite: PathFigures } | null;
  /** 12: ms from kill -9 to the standby leading, and (agent) to a command working again. */
  failover: { controller: Spread; agent: Spread; agentCommand: Spread; errors: string[] } | null;
  loadAverage: { start: string; end: string; perSection: Record<string, string> };
  errors: string[];
}

const LEASE_S = 5;
const TOGGLE = '/api/v0/switches/lamp/toggle/';
const SPREAD = Array.from({ length: 16 }, (_, i) => `/api/v0/switches/lamp${i}/toggle/`);
const PRESS = '/api/v0/buttons/bedside/on/';
const PRESS_SPREAD = Array.from({ length: 16 }, (_, i) => `/api/v0/buttons/b${i}/${i % 2 ? 'off' : 'on'}/`);
const okBody = (status: number, body: string) => status === 200 && body === 'OK';
const READY = /hearth is ready on (http:\/\/\S+)/;

const loadavg = () => (os.loadavg()[0] ?? 0).toFixed(2);

/** A role process of the built CLI and the URL its ready line gave. */
interface Role {
  proc: Proc;
  url: string;
  port: number;
}

/** The ready line goes to stderr (stdout carries JSON logs); watch both. */
function waitForReady(proc: Proc, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const streams = [proc.child.stdout, proc.child.stderr];
    const done = () => {
      clearTimeout(timer);
      for (const s of streams) s?.off('data', onData);
      proc.child.off('exit', onExit);
    };
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-20_000);
      const m = READY.exec(seen);
      if (m?.[1]) {
        done();
        resolve(m[1]);
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(
        new Error(`${proc.name} exited (code ${code}) before it was ready\n    ${proc.tail.join('\n    ')}`),
      );
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${proc.name} was not ready within ${timeoutMs} ms\n    ${proc.tail.join('\n    ')}`));
    }, timeoutMs);
    for (const s of streams) s?.on('data', onData);
    proc.child.on('exit', onExit);
  });
}

async function startRole(
  root: string,
  config: string,
  role: 'api' | 'controller' | 'agent',
  name: string,
): Promise<Role> {
  // Each role connects as its own broker user, as docs/mqtt.md locks a cluster's broker.
  const proc = start(
    name,
    process.execPath,
    [hearthBin(root), 'start', '--config', config, '--role', role],
    root,
    brokerEnv(role === 'agent' ? agentUser('main') : `hearth-${role}`),
  );
  try {
    const url = await waitForReady(proc, 20_000);
    return { proc, url, port: Number(new URL(url).port) };
  } catch (err) {
    await stop(proc);
    throw err;
  }
}

function clusterYaml(pgUrl: string, mqttUrl: string, simPort: number): string {
  const switches = ['lamp', ...SPREAD.map((_, i) => `lamp${i}`)];
  return [
    'timezone: America/Los_Angeles',
    'http: { host: 127.0.0.1, port: 0 }',
    `storage: { postgres: { url: ${JSON.stringify(pgUrl)} } }`,
    `mqtt: { url: ${JSON.stringify(mqttUrl)}, username: "\${HEARTH_MQTT_USERNAME}", password: "\${HEARTH_MQTT_PASSWORD}" }`,
    `cluster: { leaseSeconds: ${LEASE_S} }`,
    'switches:',
    ...switches.map(
      (id) => `  - { id: ${id}, kind: wemo/v1, address: 127.0.0.1, port: ${simPort}, pollSeconds: 0 }`,
    ),
    'buttons:',
    ...['bedside', ...PRESS_SPREAD.map((_, i) => `b${i}`)].map((id) => `  - { id: ${id} }`),
    '',
  ].join('\n');
}

/** `hearth_leader{lease="..."}` from a role's /metrics: 1, 0, or undefined (absent or no answer). */
async function leaderGauge(port: number, lease: string): Promise<number | undefined> {
  let text = '';
  const o = await send(
    false,
    {
      port,
      method: 'GET',
      path: '/metrics',
      ok: (status, body) => {
        text = body;
        return status === 200;
      },
    },
    1000,
  );
  if (!o.ok) return undefined;
  const line = text.split('\n').find((l) => l.startsWith(`hearth_leader{lease="${lease}"}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

function pathFigures(seqRounds: Sample[], load: Sample[]): PathFigures {
  const seq = merge(seqRounds);
  const l = merge(load);
  return {
    n: seq.latencies.length,
    p50: quantile(seq.latencies, 0.5),
    p99: quantile(seq.latencies, 0.99),
    seqErrors: seq.errors,
    rps: l.elapsedMs > 0 ? (l.okCount * 1000) / l.elapsedMs : Number.NaN,
    loadP50: quantile(l.latencies, 0.5),
    loadP99: quantile(l.latencies, 0.99),
    loadErrors: l.errors,
    errorKinds: [...new Set([...seq.errorKinds, ...l.errorKinds])].slice(0, 5),
  };
}

/** Section 1's method on two targets: warm-up, then rounds of interleaved requests and load slices. */
async function measurePair(
  targets: [Target, Target],
  p: { requests: number; rounds: number; seconds: number; clients: number; warmup: number },
  log: (line: string) => void,
): Promise<[PathFigures, PathFigures]> {
  await interleaved(targets, p.warmup, 30_000);
  for (const t of targets) await concurrent(t, p.clients, 1000, 1_000_000);
  const seq: Sample[][] = [[], []];
  const load: Sample[][] = [[], []];
  const perRound = Math.ceil(p.requests / p.rounds);
  for (let r = 0; r < p.rounds; r++) {
    const samples = await interleaved(targets, perRound, 60_000);
    samples.forEach((s, i) => {
      seq[i]?.push(s);
    });
    for (let j = 0; j < 2; j++) {
      const i = (j + r) % 2;
      load[i]?.push(await concurrent(targets[i] as Target, p.clients, p.seconds * 1000, 2_000_000));
    }
    log(`  round ${r + 1}/${p.rounds} done (load average ${loadavg()})`);
  }
  return [pathFigures(seq[0] ?? [], load[0] ?? []), pathFigures(seq[1] ?? [], load[1] ?? [])];
}

function spread(values: number[]): Spread {
  return {
    n: values.length,
    min: values.length ? Math.min(...values) : Number.NaN,
    median: median(values),
    max: values.length ? Math.max(...values) : Number.NaN,
    all: values,
  };
}

/** Polls `check` every `everyMs` until it is true; ms since `t0`, or throws after `timeoutMs`. */
async function pollUntil(
  t0: number,
  check: () => Promise<boolean>,
  everyMs: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/**
 * A toggle through the api every 20 ms, overlapping (a request to no agent may wait out its
 * deadline), at most 64 in flight: ms from `t0` to the first answer `200 OK`.
 */
async function firstCommand(apiPort: number, t0: number, timeoutMs: number): Promise<number> {
  const target: Target = { port: apiPort, method: 'POST', path: TOGGLE, ok: okBody };
  let inFlight = 0;
  let worked: number | undefined;
  const pending = new Set<Promise<void>>();
  while (worked === undefined) {
    if (performance.now() - t0 > timeoutMs) break;
    if (inFlight < 64) {
      inFlight++;
      const p: Promise<void> = send(false, target, 3000).then((o) => {
        inFlight--;
        pending.delete(p);
        if (o.ok && worked === undefined) worked = performance.now() - t0;
      });
      pending.add(p);
    }
    await sleep(20);
  }
  await Promise.all(pending);
  if (worked === undefined) throw new Error(`no toggle through the api worked within ${timeoutMs} ms`);
  return worked;
}

interface Group {
  role: 'controller' | 'agent';
  lease: string;
  members: Role[];
}

/** Kills the leader of `group` with SIGKILL, times the standby taking over, restarts the killed one. */
async function killLeader(
  root: string,
  config: string,
  group: Group,
  apiPort: number,
  seq: number,
): Promise<{ leadMs: number; commandMs?: number }> {
  const gauges = await Promise.all(group.members.map((m) => leaderGauge(m.port, group.lease)));
  const li = gauges.indexOf(1);
  const si = gauges.indexOf(0);
  if (li < 0 || si < 0)
    throw new Error(`${group.role}s: no leader and standby pair (gauges ${gauges.join(', ')})`);
  const leader = group.members[li] as Role;
  const standby = group.members[si] as Role;
  const t0 = performance.now();
  leader.proc.child.kill('SIGKILL');
  const [leadMs, commandMs] = await Promise.all([
    pollUntil(
      t0,
      async () => (await leaderGauge(standby.port, group.lease)) === 1,
      20,
      30_000,
      `the standby ${group.role} taking the lease ${group.lease}`,
    ),
    group.role === 'agent' ? firstCommand(apiPort, t0, 30_000) : Promise.resolve(undefined),
  ]);
  await leader.proc.exited;
  group.members[li] = await startRole(root, config, group.role, `${group.role}-${seq}`);
  const restarted = group.members[li] as Role;
  await pollUntil(
    performance.now(),
    async () => (await leaderGauge(restarted.port, group.lease)) === 0,
    50,
    10_000,
    `the restarted ${group.role} standing by`,
  );
  return { leadMs, ...(commandMs === undefined ? {} : { commandMs }) };
}

/** Runs 11-13, prints their tables, returns the figures. Stops every process it started. */
export async function clusterBench(opts: ClusterOptions): Promise<ClusterResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const clients = opts.clients ?? 16;
  const kills = opts.kills ?? (opts.quick ? 3 : 10);
  const P = {
    requests: opts.quick ? 300 : 1200,
    rounds: opts.quick ? 2 : 6,
    seconds: opts.quick ? 1 : 1.5,
    clients,
    warmup: opts.quick ? 100 : 300,
  };
  const result: ClusterResult = {
    leaseSeconds: LEASE_S,
    clients,
    toggle: null,
    presses: null,
    failover: null,
    loadAverage: { start: loadavg(), end: '', perSection: {} },
    errors: [],
  };
  if (mosquittoMissing) throw new Error(mosquittoMissing);
  let db: TestDatabase | undefined;
  let broker: TestMosquitto | undefined;
  const sims: Sim[] = [];
  try {
    db = await createTestDatabase();
    broker = await startLockedBroker();
    const clusterSim = await startSim(opts.root, 'sim-cluster');
    const oneSim = await startSim(opts.root, 'sim-one-box');
    sims.push(clusterSim, oneSim);
    const config = path.join(opts.tmp, 'cluster.yaml');
    writeFileSync(config, clusterYaml(db.url, broker.url, clusterSim.port));

    const agents = [await startRole(opts.root, config, 'agent', 'agent-a')];
    const controllers = [await startRole(opts.root, config, 'controller', 'controller-a')];
    const api = await startRole(opts.root, config, 'api', 'api');
    const onePort = await freePort();
    const oneConfig = writeConfig(opts.tmp, 'one-box.yaml', {
      port: onePort,
      dbPath: path.join(opts.tmp, 'one-box.db'),
      switches: [
        { id: 'lamp', simPort: oneSim.port, pollSeconds: 0 },
        ...SPREAD.map((_, i) => ({ id: `lamp${i}`, simPort: oneSim.port, pollSeconds: 0 })),
      ],
      buttons: ['bedside', ...PRESS_SPREAD.map((_, i) => `b${i}`)],
    });
    const oneBox = await startHearth(opts.root, 'one-box', oneConfig, onePort);
    // Ready once the agent leads and the lamp's state has reached the api.
    await pollUntil(
      performance.now(),
      async () => (await send(false, { port: api.port, method: 'POST', path: TOGGLE, ok: okBody }, 3000)).ok,
      100,
      20_000,
      'a first toggle through the api',
    );

    log(
      `\n11. toggle through api → MQTT → agent → plug vs one box: ${P.requests} sequential (interleaved) + ` +
        `${P.rounds} x ${P.seconds} s at ${clients} clients (load average ${loadavg()})`,
    );
    result.loadAverage.perSection.toggle = loadavg();
    try {
      const [cluster, one] = await measurePair(
        [
          { port: api.port, method: 'POST', path: TOGGLE, ok: okBody, spread: SPREAD },
          { port: oneBox.port, method: 'POST', path: TOGGLE, ok: okBody, spread: SPREAD },
        ],
        P,
        log,
      );
      result.toggle = { cluster, oneBox: one };
      log(toggleTable(result));
    } catch (err) {
      result.errors.push(`toggle through the cluster: ${(err as Error).message}`);
    }

    log(`\n13. button presses: api role on PostgreSQL vs one box on SQLite (load average ${loadavg()})`);
    result.loadAverage.perSection.presses = loadavg();
    try {
      const [pgFigs, sqlite] = await measurePair(
        [
          { port: api.port, method: 'POST', path: PRESS, ok: okBody, spread: PRESS_SPREAD },
          { port: oneBox.port, method: 'POST', path: PRESS, ok: okBody, spread: PRESS_SPREAD },
        ],
        P,
        log,
      );
      result.presses = { postgres: pgFigs, sqlite };
      log(pressTable(result));
    } catch (err) {
      result.errors.push(`button presses: ${(err as Error).message}`);
    }
    await stop(oneBox.proc);

    log(
      `\n12. failover: ${kills} kill -9 of the leading controller, then ${kills} of the leading agent, ` +
        `leaseSeconds ${LEASE_S} (load average ${loadavg()})`,
    );
    result.loadAverage.perSection.failover = loadavg();
    const errors: string[] = [];
    const lead: Record<'controller' | 'agent', number[]> = { controller: [], agent: [] };
    const command: number[] = [];
    try {
      agents.push(await startRole(opts.root, config, 'agent', 'agent-b'));
      controllers.push(await startRole(opts.root, config, 'controller', 'controller-b'));
      const groups: Group[] = [
        { role: 'controller', lease: 'controller', members: controllers },
        { role: 'agent', lease: 'agent:main', members: agents },
      ];
      for (const g of groups) {
        for (let i = 0; i < kills; i++) {
          // A random pause puts the kill anywhere in the leader's renewal period.
          await sleep(200 + Math.random() * ((LEASE_S * 1000) / 3));
          try {
            const r = await killLeader(opts.root, config, g, api.port, i);
            lead[g.role].push(r.leadMs);
            if (r.commandMs !== undefined) command.push(r.commandMs);
            log(
              `  ${g.role} kill ${i + 1}/${kills}: standby leads after ${int(r.leadMs)} ms` +
                (r.commandMs === undefined ? '' : `, a toggle works after ${int(r.commandMs)} ms`),
            );
          } catch (err) {
            errors.push(`${g.role} kill ${i + 1}: ${(err as Error).message}`);
            log(`  ${g.role} kill ${i + 1}/${kills}: FAILED ${(err as Error).message}`);
          }
        }
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
    result.failover = {
      controller: spread(lead.controller),
      agent: spread(lead.agent),
      agentCommand: spread(command),
      errors,
    };
    log(failoverTable(result));
  } finally {
    await stopAll();
    await broker?.stop();
    await db?.drop().catch(() => {});
  }
  result.loadAverage.end = loadavg();
  return result;
}

function pathRow(name: string, f: PathFigures): string[] {
  return [
    name,
    String(f.n),
    ms(f.p50),
    ms(f.p99),
    String(f.seqErrors),
    int(f.rps),
    ms(f.loadP50),
    ms(f.loadP99),
    String(f.loadErrors),
  ];
}

const PATH_HEADERS = (clients: number) => [
  'contender',
  'n',
  'p50 ms',
  'p99 ms',
  'errors',
  `req/s @${clients}`,
  `p50 @${clients}`,
  `p99 @${clients}`,
  'errors',
];

function toggleTable(r: ClusterResult): string {
  const t = r.toggle;
  if (!t) return 'n/a';
  return [
    table(PATH_HEADERS(r.clients), [
      pathRow('cluster: api → MQTT → agent', t.cluster),
      pathRow('one box', t.oneBox),
    ]),
    `cluster / one box: p50 ${ratio(t.cluster.p50 / t.oneBox.p50)}, p99 ${ratio(t.cluster.p99 / t.oneBox.p99)} ` +
      `(budget <= 1.5), req/s ${ratio(t.cluster.rps / t.oneBox.rps)}`,
  ].join('\n');
}

function pressTable(r: ClusterResult): string {
  const p = r.presses;
  if (!p) return 'n/a';
  return [
    table(PATH_HEADERS(r.clients), [
      pathRow('api role, PostgreSQL', p.postgres),
      pathRow('one box, SQLite', p.sqlite),
    ]),
    `PostgreSQL / SQLite presses per second: 1 client ${ratio(1000 / p.postgres.p50 / (1000 / p.sqlite.p50))} ` +
      `(by p50), @${r.clients} ${ratio(p.postgres.rps / p.sqlite.rps)}`,
  ].join('\n');
}

function failoverTable(r: ClusterResult): string {
  const f = r.failover;
  if (!f) return 'n/a';
  const row = (name: string, s: Spread) => [
    name,
    String(s.n),
    int(s.min),
    int(s.median),
    int(s.max),
    s.all.map(int).join(' '),
  ];
  return [
    table(
      ['kill -9 of the leader → ...', 'kills', 'min ms', 'median ms', 'max ms', 'all ms'],
      [
        row('controller: standby leads', f.controller),
        row('agent: standby leads', f.agent),
        row('agent: a toggle through the api works', f.agentCommand),
      ],
    ),
    `budget: <= leaseSeconds + 1 s = ${LEASE_S * 1000 + 1000} ms. A standby tries every leaseSeconds/3 ` +
      `(with jitter), so the takeover lands between lease expiry and one period later.`,
    ...(f.errors.length ? [`kills not measured:\n  ${f.errors.join('\n  ')}`] : []),
  ].join('\n');
}

/** Sections 11-13 as printed at the end of `npm run bench`. */
export function clusterReport(r: ClusterResult | null): string {
  if (!r) return '\n=== 11-13. several boxes ===\nn/a';
  return [
    `\n=== 11. toggle through api → MQTT → agent → plug vs one box (p50/p99: 1 client, sequential; @${r.clients}: one switch per client) ===`,
    toggleTable(r),
    `\n=== 12. failover after kill -9 (2 of each role running; leaseSeconds ${r.leaseSeconds}; /metrics polled every 20 ms) ===`,
    failoverTable(r),
    `\n=== 13. POST ${PRESS} and 16 buttons @${r.clients}: api role on PostgreSQL vs one box on SQLite ===`,
    pressTable(r),
    `load average: ${r.loadAverage.start} at start of 11-13, ${Object.entries(r.loadAverage.perSection)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}, ${r.loadAverage.end} at end`,
    ...(r.errors.length ? [`FAILED:\n  ${r.errors.join('\n  ')}`] : []),
  ].join('\n');
}

/** The DESIGN.md budgets of several boxes, for the budget table. */
export function clusterBudgets(r: ClusterResult | null): Budget[] {
  const t = r?.toggle;
  const f = r?.failover;
  const limit = LEASE_S * 1000 + 1000;
  const errs =
    t && t.cluster.seqErrors + t.oneBox.seqErrors > 0
      ? `errors: cluster ${t.cluster.seqErrors}, one box ${t.oneBox.seqErrors}`
      : undefined;
  const spreadNote = (s: Spread | undefined) =>
    s ? `${s.n} kills; min ${int(s.min)}, median ${int(s.median)} ms` : undefined;
  return [
    budget(
      'toggle p99: cluster / one box',
      t ? t.cluster.p99 / t.oneBox.p99 : undefined,
      '<=',
      1.5,
      'x',
      errs,
    ),
    budget(
      'controller failover (kill -9), max',
      f?.controller.max,
      '<=',
      limit,
      'ms',
      spreadNote(f?.controller),
    ),
    budget('agent failover (kill -9), max', f?.agent.max, '<=', limit, 'ms', spreadNote(f?.agent)),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      kills: { type: 'string' },
      clients: { type: 'string', default: '16' },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  installCleanup();
  if (!values['no-build']) {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: root, timeout: 300_000 });
  }
  if (!hearthBuilt(root)) throw new Error('dist/hearth.mjs is missing: run npm run build');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-cluster-'));
  try {
    const r = await clusterBench({
      root,
      tmp,
      quick: values.quick ?? false,
      clients: Number(values.clients),
      ...(values.kills ? { kills: Number(values.kills) } : {}),
    });
    if (r.errors.length) console.log(`FAILED:\n  ${r.errors.join('\n  ')}`);
    console.log(`load average: ${r.loadAverage.start} at start, ${r.loadAverage.end} at end`);
    console.log(`\n${budgetTable(clusterBudgets(r))}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
