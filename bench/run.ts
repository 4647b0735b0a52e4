// `npm run bench`: hearth against the floor (bare node:http) and the anchor (Node-RED), with
// the ratios of DESIGN.md §5. See bench/README.md for what is measured and how.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { mosquittoMissing, TestMosquitto } from '../test/support/mosquitto.js';
import { type AutomationResult, BUTTON_PATH, buttonToDevice, DIRECT_PATH } from './lib/automation.js';
import { type BackupResult, backupBench, backupBudgets, backupReport } from './lib/backup.js';
import { type ClusterResult, clusterBench, clusterBudgets, clusterReport } from './lib/cluster.js';
import { hearthBuilt, type Sim, simState, startHearth, startSim, writeConfig } from './lib/hearth.js';
import { historyBench } from './lib/history.js';
import { type IngestResult, ingestBench, ingestBudgets, ingestReport } from './lib/ingest.js';
import {
  concurrent,
  interleaved,
  median,
  merge,
  quantile,
  type Sample,
  send,
  type Target,
  waitFor200,
} from './lib/load.js';
import { type MqttRoundTripResult, mqttReport, mqttRoundTrip } from './lib/mqtt.js';
import { ensureNodeRed, nodeRedScript, writeNodeRedConfig } from './lib/node-red.js';
import {
  freePort,
  installCleanup,
  memoryOf,
  type Proc,
  sleep,
  start,
  stop,
  stopAll,
  waitForLine,
} from './lib/procs.js';
import { type Budget, budget, budgetTable, int, ms, ratio, table } from './lib/report.js';
import { type HeaterOffResult, heaterOff, type RoundTripResult, roundTrip } from './lib/serial.js';
import { storeWrites } from './lib/store.js';
import { type WebResult, webBench, webBudgets, webReport } from './lib/web.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = path.join(root, '.bench');
const execFileP = promisify(execFile);

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    requests: { type: 'string' },
    seconds: { type: 'string' },
    clients: { type: 'string', default: '16' },
    'no-build': { type: 'boolean', default: false },
    'no-node-red': { type: 'boolean', default: false },
    'no-serial': { type: 'boolean', default: false },
    'serial-runs': { type: 'string' },
    exchanges: { type: 'string' },
    'no-automation': { type: 'boolean', default: false },
    presses: { type: 'string' },
    'no-mqtt': { type: 'boolean', default: false },
    'no-sse': { type: 'boolean', default: false },
    'sse-streams': { type: 'string' },
    'no-cluster': { type: 'boolean', default: false },
    kills: { type: 'string' },
    'no-ingest': { type: 'boolean', default: false },
    'ingest-messages': { type: 'string' },
    'no-web': { type: 'boolean', default: false },
    'no-backup': { type: 'boolean', default: false },
  },
});
const num = (v: string | undefined, dflt: number, quick: number) =>
  v ? Number(v) : opts.quick ? quick : dflt;
const P = {
  rounds: num(opts.rounds, 6, 2),
  /** Sequential requests per contender, spread over the rounds. */
  requests: num(opts.requests, 1200, 300),
  /** Seconds of concurrent load per contender per round. */
  seconds: num(opts.seconds, 1.5, 1),
  clients: Number(opts.clients),
  warmupRequests: opts.quick ? 100 : 300,
  warmupSeconds: 1,
  startupRuns: opts.quick ? 3 : 5,
  idleEntities: { switches: 50, buttons: 50 },
  idleWaitMs: 3000,
  serial: {
    /** hearth started, brewing, then silenced: this many times. */
    runs: num(opts['serial-runs'], 20, 6),
    /** Every 5th run hangs hearth (SIGSTOP) instead of killing it. */
    stopEvery: 5,
    /** How long the brew runs before the host goes silent, spread over the runs. */
    brewMs: [500, 850] as [number, number],
    /** `S+?` exchanges per contender (LinePort, bare serialport), after warm-up. */
    exchanges: num(opts.exchanges, 2000, 500),
    /** Blocks per contender, alternating, each opening the port afresh. */
    rounds: opts.quick ? 2 : 8,
    warmup: opts.quick ? 100 : 150,
  },
  automation: {
    /** Measured presses per path (button → automation, direct toggle), interleaved. */
    presses: num(opts.presses, 300, 100),
    warmup: opts.quick ? 10 : 30,
    /** Pause after each press, so the automation run's own record is written before the next. */
    gapMs: 5,
  },
  sse: {
    /** Idle event streams held open while buttons are pressed. */
    streams: num(opts['sse-streams'], 2000, 2000),
    /** Seconds of presses per measurement (with and without the streams, alternating). */
    seconds: opts.quick ? 2 : 3,
    rounds: opts.quick ? 1 : 3,
  },
  ingest: {
    /** MQTT sensor messages per round (QoS 0, round-robin over 20 topics). */
    messages: num(opts['ingest-messages'], 50_000, 20_000),
    /** Rounds per contender (hearth, floor), alternating, after one warm-up round each. */
    rounds: opts.quick ? 3 : 5,
  },
};

const TOGGLE_PATH = '/api/v0/switches/lamp/toggle/';
/**
 * Under concurrent load each client toggles its own switch (all on the contender's one
 * simulator): hearth runs the commands of one device one at a time, so that two presses of
 * one button are two toggles, while the floor and Node-RED would race them. One switch per
 * client compares the same work; the one-switch figure is reported beside it.
 */
const SPREAD = Array.from({ length: 16 }, (_, i) => `/api/v0/switches/lamp${i}/toggle/`);
const CLOCK_PATH = '/api/v0/clocktime/';
const toggleOk = (status: number, body: string) => status === 200 && body === 'OK';
const clockOk = (status: number, body: string) => status === 200 && /^\d{4}$/.test(body);

interface Contender {
  name: string;
  port: number;
  proc: Proc;
  sim?: Sim;
}

interface LoadFigures {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  seqErrors: number;
  rps: number;
  rpsRounds: number[];
  p99Rounds: number[];
  loadP50: number;
  loadP99: number;
  loadErrors: number;
  errorKinds: string[];
  actuates?: boolean;
}

const notes: string[] = [];
const failures: string[] = [];

function note(msg: string): void {
  notes.push(msg);
  console.log(`bench: ${msg}`);
}

function fail(what: string, err: unknown): void {
  const msg = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  failures.push(msg);
  console.error(`bench: FAILED ${msg}`);
}

/** The 1-minute load average: other work on the machine skews every figure. */
function loadavg(): string {
  return (os.loadavg()[0] ?? 0).toFixed(2);
}

/** For a budget's note: which contenders had failed requests, as a ratio over them is suspect. */
function errorNote(
  figs: (LoadFigures | undefined)[],
  names: string[],
  which: 'seq' | 'load',
): string | undefined {
  const parts = figs.flatMap((f, i) => {
    const n = f ? (which === 'seq' ? f.seqErrors : f.loadErrors) : 0;
    return n > 0 ? [`${names[i]} ${n}`] : [];
  });
  return parts.length ? `errors: ${parts.join(', ')}` : undefined;
}

async function build(): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  try {
    await execFileP('npm', ['run', '--silent', 'build'], {
      cwd: root,
      timeout: 300_000,
      maxBuffer: 20_000_000,
    });
    return { ok: true, ms: performance.now() - t0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(0, 15).join('\n    ');
    fail('npm run build', new Error(`failed; hearth figures come from whatever dist/ holds\n    ${out}`));
    return { ok: false, ms: performance.now() - t0 };
  }
}

/** Node-RED with the toggle flow, on its own port, pointed at its own simulator. */
async function startNodeRed(sim: Sim): Promise<Contender> {
  const dir = path.join(benchDir, 'node-red');
  const version = await ensureNodeRed(dir);
  const port = await freePort();
  const settings = writeNodeRedConfig(path.join(benchDir, 'node-red-user'), port, sim.port);
  const proc = start('node-red', process.execPath, [nodeRedScript(dir), '--settings', settings], root);
  try {
    await waitFor200(port, '/bench-ready', 30_000, 20, () => !proc.hasExited());
  } catch (err) {
    await stop(proc);
    throw new Error(`${(err as Error).message}\n    ${proc.tail.join('\n    ')}`);
  }
  note(`node-red ${version} on 127.0.0.1:${port}`);
  return { name: 'node-red', port, proc, sim };
}

async function startFloor(sim: Sim): Promise<Contender> {
  const proc = start(
    'floor',
    process.execPath,
    [path.join(root, 'bench', 'floor-forwarder.mjs'), '127.0.0.1', String(sim.port)],
    root,
  );
  const m = await waitForLine(proc, /listening on 127\.0\.0\.1:(\d+)/, 10_000);
  return { name: 'floor', port: Number(m[1]), proc, sim };
}

async function startHearthContender(sim: Sim, tmp: string): Promise<Contender> {
  const port = await freePort();
  const config = writeConfig(tmp, 'toggle.yaml', {
    port,
    dbPath: path.join(tmp, 'toggle.db'),
    switches: [
      { id: 'lamp', simPort: sim.port, pollSeconds: 0 },
      ...SPREAD.map((_, i) => ({ id: `lamp${i}`, simPort: sim.port, pollSeconds: 0 })),
    ],
    buttons: ['bedside'],
  });
  const h = await startHearth(root, 'hearth', config, port);
  return { name: 'hearth', port, proc: h.proc, sim };
}

/** One toggle through the contender must flip its simulator's state. */
async function actuates(c: Contender): Promise<boolean> {
  if (!c.sim) return false;
  const before = await simState(c.sim.port);
  const o = await send(false, { port: c.port, method: 'POST', path: TOGGLE_PATH, ok: toggleOk });
  if (!o.ok) throw new Error(`${c.name}: first toggle failed: ${o.error}`);
  const after = await simState(c.sim.port);
  return before !== after;
}

function figures(seqRounds: Sample[], load: Sample[]): LoadFigures {
  const seq = merge(seqRounds);
  const l = merge(load);
  const lat = seq.latencies;
  return {
    n: lat.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    mean: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : Number.NaN,
    seqErrors: seq.errors,
    rps: l.elapsedMs > 0 ? (l.okCount * 1000) / l.elapsedMs : Number.NaN,
    rpsRounds: load.map((s) => (s.okCount * 1000) / s.elapsedMs),
    p99Rounds: seqRounds.map((s) => quantile(s.latencies, 0.99)),
    loadP50: quantile(l.latencies, 0.5),
    loadP99: quantile(l.latencies, 0.99),
    loadErrors: l.errors,
    errorKinds: [...new Set([...seq.errorKinds, ...l.errorKinds])].slice(0, 5),
  };
}

/**
 * Warm-up, then `rounds` rounds. In each: a share of the sequential requests, interleaved
 * across contenders, then one concurrent slice per contender, in an order that rotates so
 * no contender always goes first. Short slices spread outside noise over every contender.
 */
async function measure(contenders: Contender[], pathName: string, ok: Target['ok'], spread?: string[]) {
  const method = pathName === TOGGLE_PATH ? 'POST' : 'GET';
  const targets = contenders.map((c): Target => ({ port: c.port, method, path: pathName, ok, spread }));
  await interleaved(targets, P.warmupRequests, 30_000);
  for (const t of targets) await concurrent(t, P.clients, P.warmupSeconds * 1000, 1_000_000);
  const seq: Sample[][] = contenders.map(() => []);
  const load: Sample[][] = contenders.map(() => []);
  const perRound = Math.ceil(P.requests / P.rounds);
  for (let r = 0; r < P.rounds; r++) {
    const samples = await interleaved(targets, perRound, 60_000);
    samples.forEach((s, i) => {
      seq[i]?.push(s);
    });
    for (let j = 0; j < targets.length; j++) {
      const i = (j + r) % targets.length;
      load[i]?.push(await concurrent(targets[i] as Target, P.clients, P.seconds * 1000, 2_000_000));
    }
    process.stdout.write(`  round ${r + 1}/${P.rounds} done\n`);
  }
  const out: Record<string, LoadFigures> = {};
  contenders.forEach((c, i) => {
    out[c.name] = figures(seq[i] ?? [], load[i] ?? []);
  });
  return out;
}

function loadTable(figs: Record<string, LoadFigures>, withActuation: boolean): string {
  const rows = Object.entries(figs).map(([name, f]) => [
    name,
    ms(f.p50),
    ms(f.p99),
    `${ms(Math.min(...f.p99Rounds))}-${ms(Math.max(...f.p99Rounds))}`,
    ms(f.mean),
    int(f.rps),
    `${int(Math.min(...f.rpsRounds))}-${int(Math.max(...f.rpsRounds))}`,
    ms(f.loadP50),
    ms(f.loadP99),
    String(f.seqErrors + f.loadErrors),
    ...(withActuation ? [f.actuates === undefined ? 'n/a' : f.actuates ? 'yes' : 'NO'] : []),
  ]);
  return table(
    [
      'contender',
      'p50 ms',
      'p99 ms',
      'p99 rounds',
      'mean ms',
      `req/s @${P.clients}`,
      'req/s rounds',
      `p50@${P.clients} ms`,
      `p99@${P.clients} ms`,
      'errors',
      ...(withActuation ? ['actuates'] : []),
    ],
    rows,
  );
}

async function startToReady(sim: Sim, tmp: string): Promise<number[]> {
  const runs: number[] = [];
  const dbPath = path.join(tmp, 'startup.db');
  for (let i = 0; i < P.startupRuns; i++) {
    const port = await freePort();
    const config = writeConfig(tmp, `startup-${i}.yaml`, {
      port,
      dbPath,
      switches: [
        { id: 'lamp', simPort: sim.port },
        { id: 'fan', simPort: sim.port },
      ],
      buttons: ['bedside'],
    });
    const h = await startHearth(root, `hearth-startup-${i}`, config, port, 10_000);
    runs.push(h.readyMs);
    await stop(h.proc);
  }
  return runs;
}

async function idleMemory(sim: Sim, tmp: string) {
  const port = await freePort();
  const switches = Array.from({ length: P.idleEntities.switches }, (_, i) => ({
    id: `plug${i + 1}`,
    simPort: sim.port,
  }));
  const buttons = Array.from({ length: P.idleEntities.buttons }, (_, i) => `button${i + 1}`);
  const config = writeConfig(tmp, 'idle.yaml', {
    port,
    dbPath: path.join(tmp, 'idle.db'),
    switches,
    buttons,
  });
  const h = await startHearth(root, 'hearth-idle', config, port);
  await sleep(P.idleWaitMs);
  const mem = memoryOf(h.proc.pid);
  await stop(h.proc);
  if (!mem) throw new Error('could not read /proc/<pid>/status');
  return { entities: switches.length + buttons.length, ...mem };
}

const us = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? 'n/a' : (v * 1000).toFixed(0));

function serialReport(silence: HeaterOffResult | null, rt: RoundTripResult | null): string {
  const out: string[] = [];
  out.push(
    '\n=== 5. heartbeat → heater off (hearth start against the simulated board; brew, then the host goes silent) ===',
  );
  if (silence?.runs.length) {
    const rows = (['SIGKILL', 'SIGSTOP', 'all'] as const).flatMap((k) => {
      const s = silence.bySignal[k];
      if (!s) return [];
      return [
        [
          k === 'SIGKILL' ? 'kill -9' : k === 'SIGSTOP' ? 'SIGSTOP (hung)' : 'all',
          String(s.runs),
          ms(s.offAfterBeat.p50),
          ms(s.offAfterBeat.p99),
          ms(s.offAfterBeat.max),
          ms(s.offAfterSilence.p50),
          ms(s.offAfterSilence.p99),
          ms(s.offAfterSilence.max),
          ms(s.silenceAfterBeatMax),
          String(s.linesAfterSilenceMax),
          Object.entries(s.causes)
            .map(([c, n]) => `${c} ${n}`)
            .join(', '),
        ],
      ];
    });
    out.push(
      table(
        [
          'host',
          'runs',
          'off−B+1 p50',
          'p99',
          'max ms',
          'off−signal p50',
          'p99',
          'max ms',
          'signal−B+1 max',
          'lines after',
          'causes',
        ],
        rows,
      ),
    );
    out.push(
      `off−B+1: from the last B+1 the board received to its heater off (the firmware's rule: 1000 ms; ` +
        'above it, the simulator timer in the bench process firing late); off−signal: from kill -9 / SIGSTOP ' +
        'to heater off, 1000 ms minus signal−B+1 (where in the 300 ms heartbeat the host stopped) plus that ' +
        `lateness; lines after: lines the board received after the signal; brews of ${P.serial.brewMs.join('-')} ms; ` +
        `start to pot ready median ${int(median(silence.runs.map((r) => r.startMs)))} ms; ` +
        `${(silence.elapsedMs / 1000).toFixed(0)} s`,
    );
    if (silence.resumedRuns)
      out.push(
        `after SIGCONT (the hung host wakes, its brew still running) the heater came back on in ` +
          `${silence.resumedHeaterOn} of ${silence.resumedRuns} runs, before hearth was stopped (SIGTERM)`,
      );
  } else out.push('n/a');
  if (silence?.errors.length) out.push(`runs not measured:\n  ${silence.errors.join('\n  ')}`);

  out.push(`\n=== 6. serial round trip: one S+? → status line (${rt?.simulator ?? 'hearth sim coffee'}) ===`);
  if (rt) {
    const row = (name: string, f: RoundTripResult['lineport'], r?: RoundTripResult['ratio']) => [
      name,
      String(f.n),
      us(f.p50),
      us(f.p99),
      us(f.mean),
      us(f.max),
      f.p50Rounds.map(us).join(' '),
      String(f.errors),
      r ? ratio(r.p50) : '1.00',
      r ? ratio(r.p99) : '1.00',
    ];
    out.push(
      table(
        [
          'path',
          'exchanges',
          'p50 µs',
          'p99 µs',
          'mean µs',
          'max µs',
          'p50 rounds µs',
          'errors',
          '/bare p50',
          'p99',
        ],
        [row('LinePort.request', rt.lineport, rt.ratio), row('bare serialport', rt.bare)],
      ),
    );
    out.push(
      `${P.serial.rounds} blocks per path, alternating, each opening the port and dropping ${P.serial.warmup} ` +
        `warm-up exchanges; ${(rt.elapsedMs / 1000).toFixed(0)} s`,
    );
    const kinds = [...rt.lineport.errorKinds, ...rt.bare.errorKinds];
    if (kinds.length) out.push(`errors seen: ${kinds.join('; ')}`);
  } else out.push('n/a');
  return out.join('\n');
}

function automationReport(a: AutomationResult | null): string {
  const out: string[] = [
    '\n=== 7. button press → automation → device (issue 4): request sent → the plug has read SetBinaryState ===',
  ];
  if (!a) {
    out.push('n/a');
    return out.join('\n');
  }
  const row = (label: string, f: AutomationResult['paths']['direct']) => [
    label,
    String(f.n),
    ms(f.toSet.p50),
    ms(f.toSet.p99),
    ms(f.toSet.max),
    ms(f.toGet.p50),
    ms(f.answer.p50),
    ms(f.answer.p99),
    ms(f.setAfterAnswer.p50),
    `${f.flipped}/${f.n}`,
    String(f.errors),
  ];
  out.push(
    table(
      [
        'path',
        'presses',
        '→Set p50',
        'p99',
        'max ms',
        '→Get p50',
        'HTTP answer p50',
        'p99 ms',
        'Set−answer p50',
        'flipped',
        'errors',
      ],
      [
        row('button → automation', a.paths.automation),
        ...(a.paths.zigbee ? [row('zigbee remote → automation', a.paths.zigbee)] : []),
        row('direct toggle', a.paths.direct),
      ],
    ),
  );
  out.push(
    `automation / direct, to the device: p50 ${ratio(a.ratio.p50)}, p99 ${ratio(a.ratio.p99)}, max ${ratio(a.ratio.max)} ` +
      '(no budget in DESIGN.md: information)',
  );
  if (a.zigbeeRatio) {
    out.push(
      `zigbee remote → automation / direct, to the device: p50 ${ratio(a.zigbeeRatio.p50)}, p99 ${ratio(a.zigbeeRatio.p99)}, ` +
        `max ${ratio(a.zigbeeRatio.max)} (information). The remote's press is a zigbee2mqtt state message ` +
        '{"action":"single"} published QoS 1 by the simulated bridge (in the bench process) on a Mosquitto of ' +
        'the bench\'s own; its "answer" is the broker\'s PUBACK.',
    );
  } else out.push('zigbee remote → automation: not measured (no mosquitto binary)');
  out.push(
    [
      `button → automation: POST ${BUTTON_PATH} → automation bedside-lamp (state bedside to on) → lamp.toggle; ` +
        `direct toggle: POST ${DIRECT_PATH}. Both toggles are GetBinaryState then SetBinaryState.`,
      '→Set, →Get: from sending the request to the simulated plug (in the bench process) having read that SOAP ' +
        'call, both on performance.now() of the bench. The button is answered 200 once its state is stored, ' +
        'before the automation reaches the plug (Set−answer > 0); the direct call is answered after the Set (< 0).',
      `Sequential, interleaved, one keep-alive connection per path, ${P.automation.gapMs} ms pause after each; ` +
        `${P.automation.warmup} warm-up presses per path; cross-check on the simulator's own ms timestamps: →Set p50 ` +
        `automation ${int(a.paths.automation.toSetEpochMs.p50)} ms, direct ${int(a.paths.direct.toSetEpochMs.p50)} ms; ` +
        `stray SOAP calls ${a.strayCalls}; load average ${a.loadAverage.start.toFixed(2)} → ` +
        `${a.loadAverage.end.toFixed(2)}; ${(a.elapsedMs / 1000).toFixed(0)} s`,
    ].join('\n'),
  );
  const kinds = [
    ...a.paths.automation.errorKinds.map((k) => `automation: ${k}`),
    ...a.paths.direct.errorKinds.map((k) => `direct: ${k}`),
  ];
  if (kinds.length) out.push(`errors seen: ${kinds.join('; ')}`);
  return out.join('\n');
}

interface SseResult {
  streams: number;
  clients: number;
  /** Presses per second at `clients` concurrent clients, per round. */
  rpsWithout: number[];
  rpsWith: number[];
  /** Presses per second, one client, sequential. */
  seqWithout: number[];
  seqWith: number[];
  /** State events the streams received, against presses × streams. */
  eventsReceived: number;
  eventsExpected: number;
}

/**
 * 8. Button presses per second while `streams` idle clients hold /api/v1/events open (issue 7,
 * finding 6): hearth alone (`hearth start`, built dist, `maxStreams` raised to fit), the streams
 * as real sockets from this process, presses as `POST /api/v0/buttons/bedside/<on|off>/`.
 * Rounds alternate without and with the streams; the streams count the events they receive.
 */
async function ssePresses(tmp: string): Promise<SseResult> {
  const { streams, seconds, rounds } = P.sse;
  const port = await freePort();
  const file = path.join(tmp, 'hearth-sse.yaml');
  writeFileSync(
    file,
    // All the streams come from the bench's one address: the per-client caps are raised to fit.
    `timezone: UTC\nhttp: { host: 127.0.0.1, port: ${port}, maxStreams: ${streams + 10}, maxStreamsPerClient: ${streams + 10}, maxConnectionsPerClient: ${streams + 100} }\n` +
      `storage: { sqlite: ${JSON.stringify(path.join(tmp, 'sse.db'))} }\nbuttons:\n  - { id: bedside }\n`,
  );
  const h = await startHearth(root, 'hearth-sse', file, port);
  const open: Socket[] = [];
  let received = 0;
  let expected = 0;
  const subscribe = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      open.push(socket);
      let tail = '';
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        const text = tail + chunk.toString('latin1');
        if (text.includes('retry: ')) resolve();
        received += text.split('event: state\n').length - 1;
        tail = text.slice(-12); // shorter than the pattern: nothing is counted twice
      });
      socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    });
  const pressOk = (status: number, body: string) => status === 200 && body === 'OK';
  const spread = ['/api/v0/buttons/bedside/on/', '/api/v0/buttons/bedside/off/'];
  const target: Target = { port, method: 'POST', path: spread[0] as string, spread, ok: pressOk };
  const result: SseResult = {
    streams,
    clients: P.clients,
    rpsWithout: [],
    rpsWith: [],
    seqWithout: [],
    seqWith: [],
    eventsReceived: 0,
    eventsExpected: 0,
  };
  const measure = async (into: { rps: number[]; seq: number[] }, withStreams: boolean) => {
    const load = await concurrent(target, P.clients, seconds * 1000, 2_000_000);
    const seq = await concurrent(target, 1, seconds * 1000, 2_000_000);
    into.rps.push(load.okCount / (load.elapsedMs / 1000));
    into.seq.push(seq.okCount / (seq.elapsedMs / 1000));
    if (withStreams) expected += (load.okCount + seq.okCount) * streams;
  };
  try {
    await concurrent(target, P.clients, 1000, 1_000_000); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const s of open.splice(0)) s.destroy();
      await sleep(200);
      await measure({ rps: result.rpsWithout, seq: result.seqWithout }, false);
      for (let i = 0; i < streams; i += 200) {
        await Promise.all(Array.from({ length: Math.min(200, streams - i) }, subscribe));
      }
      await measure({ rps: result.rpsWith, seq: result.seqWith }, true);
      // Let the last fan-out arrive before counting.
      const until = performance.now() + 5000;
      while (received < expected && performance.now() < until) await sleep(50);
    }
  } finally {
    for (const s of open) s.destroy();
    await stop(h.proc);
  }
  result.eventsReceived = received;
  result.eventsExpected = expected;
  return result;
}

function sseReport(r: SseResult | null): string {
  if (!r) return '\n=== 8. button presses with idle SSE streams ===\nn/a';
  const row = (label: string, v: number[]) => [label, int(median(v)), v.map(int).join(' ')];
  return [
    `\n=== 8. POST /api/v0/buttons/bedside/<on|off>/ with ${r.streams} idle SSE streams (presses/s, median of rounds) ===`,
    table(
      ['', 'presses/s', 'rounds'],
      [
        row(`@${r.clients}, no streams`, r.rpsWithout),
        row(`@${r.clients}, ${r.streams} streams`, r.rpsWith),
        row('1 client, no streams', r.seqWithout),
        row(`1 client, ${r.streams} streams`, r.seqWith),
      ],
    ),
    `with/without: @${r.clients} ${ratio(median(r.rpsWith) / median(r.rpsWithout))}, 1 client ${ratio(median(r.seqWith) / median(r.seqWithout))}; ` +
      `events received by the streams ${r.eventsReceived} of ${r.eventsExpected}`,
  ].join('\n');
}

async function main(): Promise<number> {
  installCleanup();
  mkdirSync(benchDir, { recursive: true });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-'));
  // Also on Ctrl-C, where `finally` does not run.
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  try {
    return await runAll(tmp);
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function runAll(tmp: string): Promise<number> {
  const startedAt = new Date();
  const loadStart = loadavg();
  const t0 = performance.now();
  console.log(
    `hearth bench: node ${process.version}, ${os.cpus().length} cores, load average ${loadStart}, ` +
      `per contender: ${P.requests} sequential requests (interleaved) + ${P.rounds} x ${P.seconds} s at ${P.clients} clients`,
  );

  if (Number(loadStart) > os.cpus().length) {
    note(
      `the machine is busy (load average ${loadStart} on ${os.cpus().length} cores): p99s gain the same ` +
        'scheduling delays for every contender, so ratios drift toward 1 and vary from run to run',
    );
  }
  const buildResult = opts['no-build'] ? null : await build();
  if (buildResult) note(`npm run build: ${buildResult.ok ? 'ok' : 'FAILED'} in ${int(buildResult.ms)} ms`);
  if (!hearthBuilt(root)) {
    fail('hearth', new Error('dist/hearth.mjs or bin/hearth.js is missing: hearth is not runnable'));
    return 1;
  }
  // The simulator is hearth's own (`hearth sim wemo`), one process per contender.
  const sims: Record<string, Sim> = {};
  for (const name of ['floor', 'hearth', 'node-red']) sims[name] = await startSim(root, `sim-${name}`);
  const simulator = 'hearth sim wemo, one process per contender';

  const contenders: Contender[] = [];
  const tryStart = async (name: string, fn: () => Promise<Contender>) => {
    try {
      contenders.push(await fn());
    } catch (err) {
      fail(`starting ${name}`, err);
    }
  };
  const simFor = (name: string) => sims[name] as Sim;
  await tryStart('floor', () => startFloor(simFor('floor')));
  await tryStart('hearth', () => startHearthContender(simFor('hearth'), tmp));
  if (!opts['no-node-red']) await tryStart('node-red', () => startNodeRed(simFor('node-red')));

  const startupRss: Record<string, number> = {};
  for (const c of contenders) {
    const m = memoryOf(c.proc.pid);
    if (m) startupRss[c.name] = m.rssMiB;
  }

  // 1. Button press → switch actuated.
  console.log(`\n1. POST ${TOGGLE_PATH} (Wemo simulator, Connection: close)`);
  const actuation: Record<string, boolean> = {};
  const live: Contender[] = [];
  for (const c of contenders) {
    try {
      actuation[c.name] = await actuates(c);
      live.push(c);
    } catch (err) {
      fail(`${c.name} toggle`, err);
    }
  }
  const toggle = live.length ? await measure(live, TOGGLE_PATH, toggleOk, SPREAD) : {};
  for (const [name, f] of Object.entries(toggle)) f.actuates = actuation[name];
  // For reference: every client on the one switch, where hearth serialises and the others race.
  const oneSwitch: Record<string, number> = {};
  for (const c of live) {
    const t: Target = { port: c.port, method: 'POST', path: TOGGLE_PATH, ok: toggleOk };
    const sample = await concurrent(t, P.clients, P.seconds * 1000, 2_000_000);
    oneSwitch[c.name] = (sample.okCount / sample.elapsedMs) * 1000;
  }

  // 2. GET /api/v0/clocktime/ — hearth's instance from 1 against a bare server.
  console.log(`\n2. GET ${CLOCK_PATH}`);
  const clockContenders: Contender[] = [];
  try {
    const proc = start(
      'floor-clocktime',
      process.execPath,
      [path.join(root, 'bench', 'floor-clocktime.mjs'), 'America/Los_Angeles'],
      root,
    );
    const m = await waitForLine(proc, /listening on 127\.0\.0\.1:(\d+)/, 10_000);
    clockContenders.push({ name: 'floor', port: Number(m[1]), proc });
    startupRss['floor-clocktime'] = memoryOf(proc.pid)?.rssMiB ?? Number.NaN;
  } catch (err) {
    fail('starting floor-clocktime', err);
  }
  const hearthToggle = live.find((c) => c.name === 'hearth');
  if (hearthToggle) clockContenders.push(hearthToggle);
  const clock = clockContenders.length ? await measure(clockContenders, CLOCK_PATH, clockOk) : {};

  const afterLoadRss: Record<string, number> = {};
  const loaded: [string, Proc][] = [
    ...contenders.map((c) => [c.name, c.proc] as [string, Proc]),
    ...clockContenders
      .filter((c) => c.name === 'floor')
      .map((c) => ['floor-clocktime', c.proc] as [string, Proc]),
  ];
  for (const [name, proc] of loaded) {
    const m = memoryOf(proc.pid);
    if (m) afterLoadRss[name] = m.rssMiB;
    await stop(proc);
  }
  for (const [name, sim] of Object.entries(sims)) if (name !== 'hearth') await stop(sim.proc);

  // 3 and 4 run alone, on hearth's simulator, with nothing else under load.
  let startup: { runsMs: number[]; medianMs: number; maxMs: number; firstMs: number } | null = null;
  let idle: { entities: number; rssMiB: number; hwmMiB: number } | null = null;
  const sim = sims.hearth;
  if (sim) {
    console.log('\n3. start to ready');
    try {
      const runsMs = await startToReady(sim, tmp);
      startup = {
        runsMs,
        medianMs: median(runsMs),
        maxMs: Math.max(...runsMs),
        firstMs: runsMs[0] ?? Number.NaN,
      };
    } catch (err) {
      fail('start to ready', err);
    }
    console.log(`\n4. idle memory with ${P.idleEntities.switches + P.idleEntities.buttons} entities`);
    try {
      idle = await idleMemory(sim, tmp);
    } catch (err) {
      fail('idle memory', err);
    }
  }
  await stopAll();

  // 5 and 6: the coffee pot over a pseudo-terminal, alone too.
  let silence: HeaterOffResult | null = null;
  let rt: RoundTripResult | null = null;
  if (!opts['no-serial']) {
    console.log(
      `\n5. heartbeat → heater off: ${P.serial.runs} runs, hearth killed (kill -9) or hung (SIGSTOP, every ${P.serial.stopEvery}th) mid-brew`,
    );
    try {
      silence = await heaterOff({
        root,
        tmp,
        runs: P.serial.runs,
        stopEvery: P.serial.stopEvery,
        brewMs: P.serial.brewMs,
        log: (line) => console.log(line),
      });
      for (const e of silence.errors) fail('heater off', new Error(e));
      if (silence.runs.length === 0) fail('heater off', new Error('no run could be measured'));
    } catch (err) {
      fail('heater off', err);
    }
    await stopAll();
    console.log(
      `\n6. serial round trip: ${P.serial.exchanges} S+? exchanges each, LinePort and bare serialport`,
    );
    try {
      rt = await roundTrip({
        root,
        tmp,
        exchanges: P.serial.exchanges,
        rounds: P.serial.rounds,
        warmup: P.serial.warmup,
        log: (line) => console.log(line),
      });
      if (rt.lineport.n === 0 || rt.bare.n === 0)
        fail('serial round trip', new Error('no exchange succeeded'));
    } catch (err) {
      fail('serial round trip', err);
    }
    await stopAll();
  }

  // 7. Button press → automation → device, against the direct switch call; alone too.
  let auto: AutomationResult | null = null;
  if (!opts['no-automation']) {
    console.log(
      `\n7. button press → automation → device: ${P.automation.presses} presses per path, interleaved (load average ${loadavg()})`,
    );
    const broker = mosquittoMissing ? undefined : await TestMosquitto.start();
    try {
      auto = await buttonToDevice({
        root,
        tmp,
        ...(broker ? { mqttUrl: broker.url } : {}),
        runs: P.automation.presses,
        warmup: P.automation.warmup,
        gapMs: P.automation.gapMs,
        log: (line) => console.log(line),
      });
      if (auto.paths.automation.n === 0 || auto.paths.direct.n === 0 || auto.paths.zigbee?.n === 0)
        fail('button → automation → device', new Error('a path had no successful press'));
    } catch (err) {
      fail('button → automation → device', err);
    }
    await broker?.stop();
    await stopAll();
  }

  // 8. A command over MQTT request/response against a bare mqtt.js echo; alone too.
  let mq: MqttRoundTripResult | null = null;
  if (!opts['no-mqtt']) {
    console.log(`\n8. MQTT command round trip, rpc vs bare mqtt.js echo (load average ${loadavg()})`);
    try {
      mq = await mqttRoundTrip({
        requests: opts.quick ? 500 : 2000,
        rounds: opts.quick ? 2 : 8,
        warmup: 100,
      });
    } catch (err) {
      fail('MQTT round trip', err);
    }
  }

  // 9. Store writes per second on SQLite and PostgreSQL; prints its own table.
  await storeWrites({ tmp, quick: opts.quick ?? false }).catch((err: unknown) => fail('store writes', err));

  // 10. Presses with thousands of idle event streams.
  let sse: SseResult | null = null;
  if (!opts['no-sse']) {
    console.log(`\n10. button presses with ${P.sse.streams} idle SSE streams (load average ${loadavg()})`);
    try {
      sse = await ssePresses(tmp);
    } catch (err) {
      fail('presses with SSE streams', err);
    }
    await stopAll();
  }

  // 11-13. Several boxes: toggle through the cluster, failover, presses on PostgreSQL; each prints its table.
  let cluster: ClusterResult | null = null;
  if (!opts['no-cluster']) {
    try {
      cluster = await clusterBench({
        root,
        tmp,
        quick: opts.quick ?? false,
        clients: P.clients,
        ...(opts.kills ? { kills: Number(opts.kills) } : {}),
      });
      for (const e of cluster.errors) fail('several boxes', new Error(e));
      for (const e of cluster.failover?.errors ?? []) fail('failover', new Error(e));
    } catch (err) {
      fail('several boxes', err);
    }
    await stopAll();
  }

  // 14. MQTT sensor messages ingested by hearth against a bare mqtt.js subscriber; alone too.
  let ingest: IngestResult | null = null;
  if (!opts['no-ingest']) {
    console.log(
      `\n14. MQTT sensor messages ingested: ${P.ingest.rounds} x ${P.ingest.messages} per contender (load average ${loadavg()})`,
    );
    try {
      ingest = await ingestBench({
        root,
        tmp,
        messages: P.ingest.messages,
        rounds: P.ingest.rounds,
        log: (line) => console.log(line),
      });
      for (const e of ingest.errors) fail('MQTT ingest', new Error(e));
    } catch (err) {
      fail('MQTT ingest', err);
    }
    await stopAll();
  }

  // 15. History: bytes written per day by the recorder on SQLite, a year read back; prints its own table.
  await historyBench({ tmp }).catch((err: unknown) => fail('history', err));

  // 16. The dashboard: page weight, first paint in chromium, SSE fan-out to 200 streams; alone too.
  let web: WebResult | null = null;
  if (!opts['no-web']) {
    console.log(`\n16. dashboard: page weight, first paint, SSE fan-out (load average ${loadavg()})`);
    try {
      web = await webBench({
        root,
        tmp,
        loads: opts.quick ? 5 : 10,
        presses: opts.quick ? 20 : 50,
        streams: 200,
        log: (line) => console.log(line),
      });
      for (const e of web.errors) fail('dashboard', new Error(e));
      if (web.paintSkipped) note(`dashboard first paint skipped: ${web.paintSkipped}`);
    } catch (err) {
      fail('dashboard', err);
    }
    await stopAll();
  }

  // 17. Backups: hearth backup / restore of 1 MB, 100 MB and 1 GB against tar, and the drill.
  let backup: BackupResult | null = null;
  if (!opts['no-backup']) {
    console.log(`\n17. backup and restore (load average ${loadavg()})`);
    try {
      backup = await backupBench({
        root,
        tmp,
        sizes: opts.quick ? [1_048_576, 104_857_600] : [1_048_576, 104_857_600, 1_073_741_824],
        log: (line) => console.log(line),
      });
      for (const e of backup.errors) fail('backup', new Error(e));
    } catch (err) {
      fail('backup', err);
    }
    await stopAll();
  }

  // Report.
  const out: string[] = [];
  out.push(
    `\n=== 1. POST ${TOGGLE_PATH} → Wemo simulator (p50/p99: 1 client, sequential, keep-alive; ` +
      `@${P.clients}: one switch per client) ===`,
  );
  out.push(loadTable(toggle, true));
  out.push(
    `all ${P.clients} clients on one switch (hearth runs one device's commands in turn, the others race them): ` +
      Object.entries(oneSwitch)
        .map(([n, rps]) => `${n} ${int(rps)} req/s`)
        .join(', '),
  );
  out.push(`\n=== 2. GET ${CLOCK_PATH} ===`);
  out.push(loadTable(clock, false));
  out.push(
    '\n=== 3. start to ready (spawn → first 200 of /readyz, built dist, 2 Wemo switches + 1 button) ===',
  );
  out.push(
    startup
      ? table(
          ['runs', 'median ms', 'max ms', 'first ms (new db)', 'all ms'],
          [
            [
              String(startup.runsMs.length),
              int(startup.medianMs),
              int(startup.maxMs),
              int(startup.firstMs),
              startup.runsMs.map(int).join(' '),
            ],
          ],
        )
      : 'n/a',
  );
  out.push(`\n=== 4. resident memory (MiB, VmRSS from /proc) ===`);
  const memRows: string[][] = [];
  if (idle)
    memRows.push([
      `hearth idle, ${idle.entities} entities, ${P.idleWaitMs / 1000} s after ready`,
      ms(idle.rssMiB),
      ms(idle.hwmMiB),
    ]);
  for (const [name, rss] of Object.entries(startupRss))
    memRows.push([`${name} just after start`, ms(rss), '']);
  for (const [name, rss] of Object.entries(afterLoadRss)) memRows.push([`${name} after load`, ms(rss), '']);
  out.push(table(['process', 'VmRSS', 'VmHWM'], memRows));
  if (!opts['no-serial']) out.push(serialReport(silence, rt));
  if (!opts['no-automation']) out.push(automationReport(auto));
  if (!opts['no-mqtt']) out.push(mqttReport(mq));
  if (!opts['no-sse']) out.push(sseReport(sse));
  if (!opts['no-cluster']) out.push(clusterReport(cluster));
  if (!opts['no-ingest']) out.push(ingestReport(ingest));
  if (!opts['no-web']) out.push(webReport(web));
  if (backup) out.push(backupReport(backup));

  const h = toggle.hearth;
  const f = toggle.floor;
  const nr = toggle['node-red'];
  const budgets: Budget[] = [
    budget(
      'toggle p99: hearth / floor',
      h && f ? h.p99 / f.p99 : undefined,
      '<=',
      1.25,
      'x',
      errorNote([h, f], ['hearth', 'floor'], 'seq'),
    ),
    budget(
      'toggle p99: hearth / node-red',
      h && nr ? h.p99 / nr.p99 : undefined,
      '<',
      0.6,
      'x',
      errorNote([h, nr], ['hearth', 'node-red'], 'seq'),
    ),
    budget(
      `toggle req/s @${P.clients}: hearth / floor`,
      h && f ? h.rps / f.rps : undefined,
      '>=',
      0.7,
      'x',
      errorNote([h, f], ['hearth', 'floor'], 'load'),
    ),
    budget(
      `clocktime req/s @${P.clients}: hearth / floor`,
      clock.hearth && clock.floor ? clock.hearth.rps / clock.floor.rps : undefined,
      '>=',
      0.8,
      'x',
      errorNote([clock.hearth, clock.floor], ['hearth', 'floor'], 'load'),
    ),
    budget(
      'start to ready, median',
      startup?.medianMs,
      '<',
      500,
      'ms',
      startup ? `max ${int(startup.maxMs)} ms` : undefined,
    ),
    budget(
      `idle RSS, ${P.idleEntities.switches + P.idleEntities.buttons} entities`,
      idle?.rssMiB,
      '<',
      60,
      'MiB',
    ),
    ...(opts['no-serial']
      ? []
      : [
          budget(
            'heater off after host silent, max',
            silence?.bySignal.all?.offAfterSilence.max,
            '<',
            1000,
            'ms',
            silence?.bySignal.all
              ? `${silence.runs.length} runs; off − last B+1 max ${ms(silence.bySignal.all.offAfterBeat.max)} ms (rule: 1000)`
              : undefined,
            2,
          ),
        ]),
    ...(opts['no-cluster'] ? [] : clusterBudgets(cluster)),
    ...(opts['no-ingest'] ? [] : ingestBudgets(ingest)),
    ...(opts['no-web'] ? [] : webBudgets(web)),
    ...(opts['no-backup'] ? [] : backupBudgets(backup)),
  ];
  out.push('\n=== budgets ===');
  out.push(budgetTable(budgets));
  const extra = [
    h && f ? `toggle p50 hearth/floor ${ratio(h.p50 / f.p50)}` : '',
    h && nr ? `toggle p50 hearth/node-red ${ratio(h.p50 / nr.p50)}` : '',
    h && nr ? `toggle req/s hearth/node-red ${ratio(h.rps / nr.rps)}` : '',
    rt ? `serial round trip LinePort/bare p50 ${ratio(rt.ratio.p50)}, p99 ${ratio(rt.ratio.p99)}` : '',
    auto
      ? `button → device automation/direct p50 ${ratio(auto.ratio.p50)}, p99 ${ratio(auto.ratio.p99)}`
      : '',
  ].filter(Boolean);
  if (extra.length) out.push(`other ratios: ${extra.join(', ')}`);
  const errorLines = [
    ...Object.entries(toggle),
    ...Object.entries(clock).map(([n, v]) => [`${n} (clocktime)`, v] as const),
  ]
    .filter(([, v]) => v.errorKinds.length)
    .map(([n, v]) => `  ${n}: ${v.errorKinds.join('; ')}`);
  if (errorLines.length) out.push(`errors seen:\n${errorLines.join('\n')}`);
  if (failures.length) out.push(`\nFAILURES:\n  ${failures.join('\n  ')}`);
  out.push(
    `\nsimulator: ${simulator}; load average ${loadStart} at start, ${loadavg()} at end; total ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log(out.join('\n'));

  const results = {
    version: 1,
    startedAt: startedAt.toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    params: P,
    build: buildResult,
    simulator,
    loadAverage: { start: loadStart, end: loadavg() },
    toggle,
    toggleOneSwitchRps: oneSwitch,
    clocktime: clock,
    startup,
    idleMemory: idle,
    heaterOff: silence,
    serialRoundTrip: rt,
    buttonToDevice: auto,
    mqttRoundTrip: mq,
    ssePresses: sse,
    cluster,
    mqttIngest: ingest,
    dashboard: web,
    rssMiB: { afterStart: startupRss, afterLoad: afterLoadRss },
    budgets,
    notes,
    failures,
  };
  const file = path.join(benchDir, 'results.json');
  writeFileSync(
    file,
    `${JSON.stringify(results, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  console.log(`figures written to ${path.relative(root, file)}`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    console.error('bench failed:', err);
    await stopAll();
    process.exitCode = 1;
  },
);
