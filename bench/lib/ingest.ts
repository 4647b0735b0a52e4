/**
 * MQTT sensor messages per second ingested by hearth (`things:` of kind mqtt-sensor/v1) against
 * the floor, a bare mqtt.js subscriber doing the same parse (`floor-ingest.mjs`). One Mosquitto
 * of the bench's own; one publisher process per round (`ingest-publisher.mjs`, QoS 0, as fast
 * as the socket takes them); hearth and the floor each on their own topic prefix, both running
 * for the whole measurement, rounds alternating. See bench/README.md, section 14.
 *
 * Alone: `node --import tsx bench/lib/ingest.ts [--quick] [--messages N] [--rounds N] [--no-build]`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import mqtt from 'mqtt';
import { mosquittoBinary, mosquittoMissing } from '../../test/support/mosquitto.js';
import { hearthBuilt, startHearth } from './hearth.js';
import { median } from './load.js';
import {
  describe,
  freePort,
  installCleanup,
  memoryOf,
  type Proc,
  sleep,
  start,
  stop,
  stopAll,
  waitForLine,
} from './procs.js';
import { type Budget, budget, budgetTable, int, ms, ratio, table } from './report.js';

/** One sensor: its topic under a contender's prefix and the JSON field read (null: a plain number). */
interface SensorSpec {
  id: string;
  topic: string;
  field: string | null;
}

type Name = 'hearth' | 'floor';

export interface IngestRound {
  contender: Name;
  messages: number;
  /** From the publisher's start signal to the last message applied. */
  ms: number;
  rate: number;
  /** How long the publisher took to hand every message to its socket. */
  publishMs: number;
  /** Messages the broker counted as dropped ($SYS/broker/publish/messages/dropped) in this round. */
  dropped: number;
  /**
   * floor: messages it applied (parsed and stored), in every round. hearth: its state publishes
   * counted by an observer, only in the untimed check round (NaN in the timed ones).
   */
  applied: number;
}

export interface IngestFigures {
  rates: number[];
  median: number;
  min: number;
  max: number;
}

export interface IngestResult {
  messages: number;
  topics: number;
  rounds: IngestRound[];
  hearth: IngestFigures;
  floor: IngestFigures;
  /** Median hearth msgs/s over median floor msgs/s. */
  ratio: number;
  publisherRate: IngestFigures;
  dropped: number;
  /** The untimed hearth round with an observer on `hearth/+/state`: state publishes seen of `messages`. */
  check: { applied: number; messages: number; rate: number } | null;
  discovery: boolean;
  hearthMemory: { afterStartMiB: number; afterRunMiB: number; hwmMiB: number };
  floorRssMiB: number;
  /** The longest one GET /api/v1/entities/<id> took while hearth worked through a burst. */
  slowestPollMs: number;
  /** hearth_mqtt_reconnects_total after the timed rounds and after the check round. */
  hearthReconnects: { timed: number; check: number };
  /** hearth_mqtt_garbage_total after the run: payloads hearth could not use. */
  hearthGarbage: number;
  loadAverage: { start: string; end: string };
  errors: string[];
}

const loadavg = () => (os.loadavg()[0] ?? 0).toFixed(2);

function specs(prefix: string, n: number): SensorSpec[] {
  // Half plain numbers; the other half a field of a JSON object, temperature or humidity.
  return Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    topic: `${prefix}/s${i}`,
    field: i % 2 === 0 ? null : i % 4 === 1 ? 'temperature' : 'humidity',
  }));
}

function hearthYaml(o: {
  port: number;
  dbPath: string;
  brokerPort: number;
  sensors: SensorSpec[];
  discovery: boolean;
}): string {
  const lines = [
    'timezone: America/Los_Angeles',
    `http: { port: ${o.port}, host: 127.0.0.1 }`,
    `storage: { sqlite: ${JSON.stringify(o.dbPath)} }`,
    `mqtt: { url: "mqtt://127.0.0.1:${o.brokerPort}" }`,
    // Left at its default (on) unless asked: a user with `mqtt:` has it on.
    ...(o.discovery ? [] : ['homeassistant: { discovery: false }']),
    'things:',
    ...o.sensors.map((s) => {
      const unit = s.field === 'humidity' ? '"%"' : '"°C"';
      const field = s.field ? `, field: ${s.field}` : '';
      return `  - { id: ${s.id}, kind: mqtt-sensor/v1, topic: ${s.topic}${field}, unit: ${unit} }`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * A Mosquitto of the bench's own. `max_queued_messages 0` (no limit; the default 1000 drops
 * QoS 0 messages for a subscriber that falls 1000 packets behind) and `sys_interval 1`, so the
 * broker's own counters say within a second whether it dropped anything.
 */
async function startBroker(dir: string): Promise<{ proc: Proc; port: number; url: string }> {
  if (!mosquittoBinary) throw new Error(mosquittoMissing);
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto-ingest.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'set_tcp_nodelay true',
      'max_queued_messages 0',
      'sys_interval 1',
      'log_dest stdout',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const proc = start('mosquitto-ingest', mosquittoBinary, ['-c', conf], dir);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.hasExited()) throw new Error(`mosquitto exited at start\n${describe(proc)}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) throw new Error(`mosquitto did not accept on ${port} in 10 s`);
    await sleep(25);
  }
  return { proc, port, url: `mqtt://127.0.0.1:${port}` };
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

interface SysCounters {
  received: number;
  sent: number;
  dropped: number;
}

/** The broker's publish counters, from its retained $SYS topics (updated every second). */
async function readSys(url: string): Promise<SysCounters> {
  const c = await mqtt.connectAsync(url, { clientId: `bench-ingest-sys-${process.pid}`, reconnectPeriod: 0 });
  const got: SysCounters = { received: 0, sent: 0, dropped: 0 };
  c.on('message', (topic, payload) => {
    const key = topic.slice('$SYS/broker/publish/messages/'.length);
    if (key === 'received' || key === 'sent' || key === 'dropped') got[key] = Number(payload.toString());
  });
  await c.subscribeAsync('$SYS/broker/publish/messages/+', { qos: 0 });
  // Retained: they arrive with the SUBACK or right after it.
  await sleep(200);
  await c.endAsync(true);
  return got;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function getJson(port: number, urlPath: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? JSON.parse(body) : undefined);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** A busy hearth may answer late (its event loop is reading the burst); the caller retries. */
async function entityState(port: number, id: string): Promise<unknown> {
  const r = (await getJson(port, `/api/v1/entities/${id}`, 15_000)) as
    | { entity?: { state?: unknown } }
    | undefined;
  return r?.entity?.state;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m?.[1] === undefined ? Number.NaN : Number(m[1]);
}

function summary(rates: number[]): IngestFigures {
  return {
    rates,
    median: rates.length ? median(rates) : Number.NaN,
    min: rates.length ? Math.min(...rates) : Number.NaN,
    max: rates.length ? Math.max(...rates) : Number.NaN,
  };
}

export async function ingestBench(opts: {
  root: string;
  tmp: string;
  messages: number;
  rounds: number;
  topics?: number;
  warmupMessages?: number;
  /** Home Assistant discovery; default true, hearth's own default. */
  discovery?: boolean;
  log?: (line: string) => void;
}): Promise<IngestResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const topics = opts.topics ?? 20;
  const loadStart = loadavg();
  const errors: string[] = [];
  const broker = await startBroker(opts.tmp);
  const sensors: Record<Name, SensorSpec[]> = {
    hearth: specs('bench/hearth', topics),
    floor: specs('bench/floor', topics),
  };
  const procs: Proc[] = [broker.proc];
  try {
    const port = await freePort();
    const configFile = path.join(opts.tmp, 'ingest.yaml');
    writeFileSync(
      configFile,
      hearthYaml({
        port,
        dbPath: path.join(opts.tmp, 'ingest.db'),
        brokerPort: broker.port,
        sensors: sensors.hearth,
        discovery: opts.discovery ?? true,
      }),
    );
    const h = await startHearth(opts.root, 'hearth-ingest', configFile, port);
    procs.push(h.proc);
    const deadline = Date.now() + 10_000;
    while ((await metric(port, 'hearth_mqtt_connected')) !== 1) {
      if (Date.now() > deadline) throw new Error('hearth did not connect to the broker in 10 s');
      await sleep(20);
    }
    const afterStartMiB = memoryOf(h.proc.pid)?.rssMiB ?? Number.NaN;

    const floor = start(
      'floor-ingest',
      process.execPath,
      [path.join(opts.root, 'bench', 'floor-ingest.mjs'), broker.url, JSON.stringify(sensors.floor)],
      opts.root,
    );
    procs.push(floor);
    await waitForLine(floor, /^subscribed$/m, 10_000);

    let sentinel = -1000;
    /** The longest a poll of hearth's API took in a timed round: how busy its event loop was. */
    let slowestPoll = 0;
    /**
     * One round: a new publisher sends `messages` to `who`'s topics. With `observe` (hearth
     * only, never timed for the figures), the bench process also counts hearth's state
     * publishes on `hearth/+/state`: one per applied message, since every message changes a value.
     */
    const round = async (who: Name, messages: number, observe = false): Promise<IngestRound> => {
      sentinel -= 1;
      const s = sentinel;
      const spec = sensors[who];
      const before = await readSys(broker.url);
      let observed = 0;
      /** Topics whose state publish carried this round's sentinel. */
      const observedEnds = new Set<string>();
      const observer = observe
        ? await mqtt.connectAsync(broker.url, {
            clientId: `bench-ingest-observer-${process.pid}`,
            reconnectPeriod: 0,
          })
        : undefined;
      if (observer) {
        observer.on('message', (topic, payload) => {
          // hearth/bridge/state (online/offline) matches the filter too.
          if (topic === 'hearth/bridge/state') return;
          const state = (JSON.parse(payload.toString('utf8')) as { state?: unknown }).state;
          // The retained states of the round before end in its sentinel: not this round's.
          if (typeof state === 'number' && (state >= 0 || state === s)) observed += 1;
          if (state === s) observedEnds.add(topic);
        });
        await observer.subscribeAsync('hearth/+/state', { qos: 0 });
      }
      const pub = start(
        'ingest-publisher',
        process.execPath,
        [
          path.join(opts.root, 'bench', 'ingest-publisher.mjs'),
          broker.url,
          JSON.stringify(spec.map(({ topic, field }) => ({ topic, field }))),
          String(messages),
          String(s),
        ],
        opts.root,
      );
      await waitForLine(pub, /^ready$/m, 10_000);
      const timeoutMs = 60_000 + messages;
      const published = waitForLine(pub, /^published ([\d.]+)$/m, timeoutMs);
      // The floor says when it has applied every sentinel; stamped as its line arrives.
      const floorDone =
        who === 'floor'
          ? waitForLine(floor, new RegExp(`^done ${s} (\\d+) (\\d+)$`, 'm'), timeoutMs).then((m) => ({
              at: performance.now(),
              applied: Number(m[1]),
              bad: Number(m[2]),
            }))
          : undefined;
      const t0 = performance.now();
      pub.child.kill('SIGUSR2');
      const p = await published;
      const publishMs = Number(p[1]);
      let end: number;
      let applied = Number.NaN;
      if (floorDone) {
        const d = await floorDone;
        end = d.at;
        applied = d.applied;
        if (d.bad) errors.push(`floor: ${d.bad} payloads it could not parse`);
      } else {
        // hearth cannot have applied the last message before the publisher sent it: poll only
        // from then on, every 2 ms, the entity of the very last message (one connection to the
        // broker delivers in order, and hearth applies each message as it is read).
        const lastId = spec[(messages - 1) % spec.length]?.id ?? '';
        const pollDeadline = performance.now() + timeoutMs;
        let lastError = '';
        for (;;) {
          const q0 = performance.now();
          const state = await entityState(port, lastId).catch((err: unknown) => {
            lastError = (err as Error).message;
            return undefined;
          });
          slowestPoll = Math.max(slowestPoll, performance.now() - q0);
          if (state === s) break;
          if (performance.now() > pollDeadline) {
            const reconnects = await metric(port, 'hearth_mqtt_reconnects_total').catch(() => Number.NaN);
            throw new Error(
              `hearth: ${lastId} never showed ${s} (MQTT reconnects: ${reconnects}${lastError ? `; last error: ${lastError}` : ''})\n${describe(h.proc)}`,
            );
          }
          if (h.proc.hasExited()) throw new Error(`hearth exited\n${describe(h.proc)}`);
          await sleep(2);
        }
        end = performance.now();
        const all = (await getJson(port, '/api/v1/entities')) as {
          entities: { id: string; state: unknown }[];
        };
        const missing = spec.filter((x) => all.entities.find((e) => e.id === x.id)?.state !== s);
        if (missing.length) errors.push(`hearth: ${missing.map((x) => x.id).join(', ')} not at ${s}`);
      }
      await pub.exited;
      // $SYS is refreshed every second; the observer gets the last state publishes meanwhile.
      await sleep(1100);
      const after = await readSys(broker.url);
      if (observer) {
        // The broker may still be delivering hearth's state publishes to the observer.
        const deadline = performance.now() + 60_000;
        while (observedEnds.size < spec.length && performance.now() < deadline) await sleep(20);
        applied = observed;
        await observer.endAsync(true);
      }
      const ms = end - t0;
      const dropped = after.dropped - before.dropped;
      return { contender: who, messages, ms, rate: (messages * 1000) / ms, publishMs, dropped, applied };
    };

    const warm = opts.warmupMessages ?? Math.min(10_000, opts.messages);
    for (const who of ['floor', 'hearth'] as const) {
      const r = await round(who, warm);
      log(`  warm-up ${who}: ${int(r.rate)} msgs/s`);
    }
    const rounds: IngestRound[] = [];
    for (let i = 0; i < opts.rounds; i++) {
      const order: Name[] = i % 2 === 0 ? ['floor', 'hearth'] : ['hearth', 'floor'];
      for (const who of order) {
        const r = await round(who, opts.messages);
        rounds.push(r);
        log(
          `  round ${i + 1}/${opts.rounds} ${who}: ${int(r.rate)} msgs/s (${int(r.ms)} ms; publisher ${int(r.publishMs)} ms; dropped ${r.dropped}; applied ${int(r.applied)})`,
        );
      }
    }
    const mem = memoryOf(h.proc.pid);
    const reconnectsTimed = await metric(port, 'hearth_mqtt_reconnects_total');
    if (reconnectsTimed > 0)
      errors.push(`hearth's MQTT connection was lost ${reconnectsTimed} times in the timed rounds`);
    let check: IngestResult['check'] = null;
    try {
      const c = await round('hearth', opts.messages, true);
      check = { applied: c.applied, messages: c.messages, rate: c.rate };
      log(`  check round hearth, observed: ${c.applied} state publishes of ${c.messages} messages`);
      if (c.dropped > 0) errors.push(`broker dropped ${c.dropped} messages in the check round`);
    } catch (err) {
      errors.push(`check round: ${(err as Error).message}`);
    }
    const hearthGarbage = await metric(port, 'hearth_mqtt_garbage_total');
    const of = (who: Name) => summary(rounds.filter((r) => r.contender === who).map((r) => r.rate));
    const hf = of('hearth');
    const ff = of('floor');
    for (const r of rounds) {
      if (r.dropped > 0) errors.push(`broker dropped ${r.dropped} messages in a ${r.contender} round`);
      if (r.contender === 'floor' && r.applied !== r.messages)
        errors.push(`${r.contender} applied ${int(r.applied)} of ${r.messages} messages in a round`);
    }
    if (check && check.applied !== check.messages)
      errors.push(
        `hearth published ${check.applied} states for ${check.messages} messages in the check round`,
      );
    return {
      messages: opts.messages,
      topics,
      rounds,
      hearth: hf,
      floor: ff,
      ratio: hf.median / ff.median,
      publisherRate: summary(rounds.map((r) => (r.messages * 1000) / r.publishMs)),
      dropped: rounds.reduce((a, r) => a + r.dropped, 0),
      check,
      discovery: opts.discovery ?? true,
      hearthMemory: {
        afterStartMiB,
        afterRunMiB: mem?.rssMiB ?? Number.NaN,
        hwmMiB: mem?.hwmMiB ?? Number.NaN,
      },
      floorRssMiB: memoryOf(floor.pid)?.rssMiB ?? Number.NaN,
      hearthGarbage,
      hearthReconnects: {
        timed: reconnectsTimed,
        check: (await metric(port, 'hearth_mqtt_reconnects_total')) - reconnectsTimed,
      },
      slowestPollMs: slowestPoll,
      loadAverage: { start: loadStart, end: loadavg() },
      errors: [...new Set(errors)],
    };
  } finally {
    for (const p of procs.reverse()) await stop(p);
  }
}

export function ingestReport(r: IngestResult | null): string {
  if (!r) return '\n=== 14. MQTT sensor messages ingested ===\nn/a';
  const row = (name: string, f: IngestFigures) => [
    name,
    int(f.median),
    `${int(f.min)}-${int(f.max)}`,
    f.rates.map(int).join(' '),
  ];
  return [
    `\n=== 14. MQTT sensor messages ingested (${r.messages} QoS 0 messages per round over ${r.topics} topics, mqtt-sensor/v1, Home Assistant discovery ${r.discovery ? 'on' : 'off'}) ===`,
    table(
      ['contender', 'msgs/s median', 'range', 'rounds'],
      [
        row('hearth (things:, republishes <base>/<id>/state)', r.hearth),
        row('bare mqtt.js parse → Map (floor)', r.floor),
        row('publisher alone (upper bound)', r.publisherRate),
      ],
    ),
    `hearth/floor ${ratio(r.ratio)} (medians); broker dropped ${r.dropped}; floor applied every message: ` +
      `${r.rounds.every((x) => x.contender !== 'floor' || x.applied === x.messages) ? 'yes' : 'NO'}; ` +
      (r.check
        ? `hearth, untimed check round with an observer on hearth/+/state: ${r.check.applied} state publishes for ${r.check.messages} messages (${int(r.check.rate)} msgs/s); `
        : 'hearth check round: n/a; ') +
      `hearth MQTT reconnects ${int(r.hearthReconnects.timed)} in the timed rounds, ${int(r.hearthReconnects.check)} in the check round; ` +
      `hearth garbage ${int(r.hearthGarbage)}; slowest answer of hearth's API during a burst ${int(r.slowestPollMs)} ms; ` +
      `hearth VmRSS ${ms(r.hearthMemory.afterStartMiB)} MiB after start, ${ms(r.hearthMemory.afterRunMiB)} MiB after the run ` +
      `(VmHWM ${ms(r.hearthMemory.hwmMiB)}), floor ${ms(r.floorRssMiB)} MiB; load average ${r.loadAverage.start} → ${r.loadAverage.end}`,
    ...(r.errors.length ? [`errors: ${r.errors.join('; ')}`] : []),
  ].join('\n');
}

export function ingestBudgets(r: IngestResult | null): Budget[] {
  return [
    budget(
      'MQTT sensor msgs/s: hearth / floor',
      r?.ratio,
      '>=',
      0.7,
      'x',
      r ? `hearth ${int(r.hearth.median)}, floor ${int(r.floor.median)} msgs/s` : undefined,
    ),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      messages: { type: 'string' },
      rounds: { type: 'string' },
      'no-discovery': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  installCleanup();
  if (!values['no-build']) {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: root, timeout: 300_000 });
  }
  if (!hearthBuilt(root)) throw new Error('dist/hearth.mjs is missing: run npm run build');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-ingest-'));
  try {
    console.log(`14. MQTT sensor messages ingested (load average ${loadavg()})`);
    const r = await ingestBench({
      root,
      tmp,
      messages: Number(values.messages ?? (values.quick ? 20_000 : 50_000)),
      rounds: Number(values.rounds ?? (values.quick ? 3 : 5)),
      discovery: !values['no-discovery'],
    });
    console.log(ingestReport(r));
    console.log(`\n${budgetTable(ingestBudgets(r))}`);
  } finally {
    await stopAll();
    agent.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}
