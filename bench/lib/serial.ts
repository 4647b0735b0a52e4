/**
 * The serial part of the bench: the coffee pot's heater against a host that goes silent, and
 * the cost of one exchange through hearth's LinePort against a bare serialport loop.
 * Everything talks over real pseudo-terminals (socat), as hearth does to a board on USB.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { SerialPort } from 'serialport';
import { BAUD_RATE, parseStatus } from '../../src/drivers/mrcoffeebot/protocol.js';
import {
  type CoffeeSimulator,
  type HeaterCause,
  startCoffeeSimulator,
} from '../../src/drivers/mrcoffeebot/simulator.js';
import { LinePort } from '../../src/transport/line-port.js';
import { openSerialPort } from '../../src/transport/serial-port.js';
import { startHearth } from './hearth.js';
import { quantile } from './load.js';
import { freePort, onStopAll, type Proc, sleep, start, stop, waitForLine } from './procs.js';

// ---------------------------------------------------------------------------------------------
// Heartbeat → heater off.

/** How the host goes silent: killed (`kill -9`), or hung (SIGSTOP) and killed after. */
export type Silence = 'SIGKILL' | 'SIGSTOP';

export interface SilenceRun {
  run: number;
  signal: Silence;
  /** How long the brew ran (heater on, hearth beating) before the host went silent. */
  brewMs: number;
  /** Heater off (simulator's event) minus the last B+1 the simulator received. */
  offAfterBeatMs: number;
  /** Heater off minus the signal. */
  offAfterSilenceMs: number;
  /** The signal minus the last B+1 before it: where in the heartbeat period the host died. */
  silenceAfterBeatMs: number;
  cause: HeaterCause;
  /** Lines the board received after the signal (a line already on the wire may arrive). */
  linesAfterSilence: number;
  /** SIGSTOP only: after SIGCONT, did hearth's heartbeat turn the heater back on? */
  heaterOnAfterResume?: boolean;
  /** spawn → pot ready (readyz, port settled, first B+0 answered). */
  startMs: number;
}

export interface SilenceStats {
  runs: number;
  offAfterBeat: { p50: number; p99: number; max: number; min: number };
  offAfterSilence: { p50: number; p99: number; max: number; min: number };
  silenceAfterBeatMax: number;
  causes: Record<string, number>;
  linesAfterSilenceMax: number;
}

export interface HeaterOffResult {
  runs: SilenceRun[];
  bySignal: Partial<Record<Silence | 'all', SilenceStats>>;
  /** Runs that could not be measured, with why. */
  errors: string[];
  resumedHeaterOn: number;
  resumedRuns: number;
  elapsedMs: number;
}

export interface HeaterOffParams {
  root: string;
  tmp: string;
  runs: number;
  /** Every `stopEvery`-th run SIGSTOPs instead of kill -9 (0: never). */
  stopEvery: number;
  /** Brew length before the host goes silent, spread evenly over this range across the runs. */
  brewMs: [number, number];
  log?: (line: string) => void;
}

function coffeeYaml(port: number, dbPath: string, device: string): string {
  return [
    'timezone: America/Los_Angeles',
    `http: { host: 127.0.0.1, port: ${port} }`,
    `storage: { sqlite: ${JSON.stringify(dbPath)} }`,
    'log: { level: warn }',
    'coffee:',
    `  - { id: coffee, kind: mrcoffeebot/v1, path: ${JSON.stringify(device)}, settleMs: 100 }`,
    '',
  ].join('\n');
}

/** One HTTP exchange with a JSON body, `agent: false`; never rejects. */
function call(
  port: number,
  method: 'GET' | 'POST',
  urlPath: string,
  body?: object,
  timeoutMs = 3000,
): Promise<{ status: number; json: unknown; error?: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: false,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // Not JSON: keep the text.
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on('error', (err) => resolve({ status: 0, json: null, error: err.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 0, json: null, error: err.message }));
    req.end(payload);
  });
}

/** Polls `cond` every 10 ms until it holds; rejects after `timeoutMs`. */
async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

function describeErr(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A simulated board in this process, closed by `stopAll` too (Ctrl-C, errors). */
async function boardAt(devicePath: string): Promise<{ sim: CoffeeSimulator; close(): Promise<void> }> {
  const sim = await startCoffeeSimulator({ path: devicePath });
  const hook = onStopAll(() => sim.close());
  return {
    sim,
    close: async () => {
      hook.remove();
      await sim.close();
    },
  };
}

/**
 * `runs` times: start hearth (`hearth start`, built dist) against the simulated board in this
 * process, brew, let it beat for a while, then make it go silent for real (SIGKILL, or SIGSTOP
 * for a hung host) and watch the board's own rule turn the heater off. One board for every
 * run; hearth restarted for each.
 */
export async function heaterOff(p: HeaterOffParams): Promise<HeaterOffResult> {
  const t0 = performance.now();
  const device = path.join(p.tmp, 'ttyCOFFEE');
  const dbPath = path.join(p.tmp, 'coffee.db');
  let board = await boardAt(device);
  const runs: SilenceRun[] = [];
  const errors: string[] = [];
  let resumedRuns = 0;
  let resumedHeaterOn = 0;
  try {
    for (let i = 0; i < p.runs; i++) {
      const signal: Silence = p.stopEvery > 0 && i % p.stopEvery === p.stopEvery - 1 ? 'SIGSTOP' : 'SIGKILL';
      const [lo, hi] = p.brewMs;
      const brewMs = p.runs > 1 ? lo + ((hi - lo) * i) / (p.runs - 1) : lo;
      if (!board.sim.plugged) {
        await board.close();
        board = await boardAt(device);
      }
      try {
        const r = await silenceRun(p, board.sim, i, signal, brewMs, dbPath);
        runs.push(r);
        if (r.heaterOnAfterResume !== undefined) {
          resumedRuns++;
          if (r.heaterOnAfterResume) resumedHeaterOn++;
        }
        p.log?.(
          `  run ${i + 1}/${p.runs} ${signal}: off ${r.offAfterSilenceMs.toFixed(1)} ms after the signal, ` +
            `${r.offAfterBeatMs.toFixed(1)} ms after the last B+1 (${r.cause})`,
        );
      } catch (err) {
        errors.push(`run ${i + 1} (${signal}): ${describeErr(err)}`);
        p.log?.(`  run ${i + 1}/${p.runs} ${signal}: FAILED ${describeErr(err)}`);
        // Whatever state the board is in, the next run starts from a fresh one.
        await board.close();
        board = await boardAt(device);
      }
    }
  } finally {
    await board.close();
  }
  const bySignal: HeaterOffResult['bySignal'] = {};
  for (const s of ['SIGKILL', 'SIGSTOP'] as const) {
    const of = runs.filter((r) => r.signal === s);
    if (of.length) bySignal[s] = stats(of);
  }
  if (runs.length) bySignal.all = stats(runs);
  return { runs, bySignal, errors, resumedHeaterOn, resumedRuns, elapsedMs: performance.now() - t0 };
}

async function silenceRun(
  p: HeaterOffParams,
  sim: CoffeeSimulator,
  i: number,
  signal: Silence,
  brewMs: number,
  dbPath: string,
): Promise<SilenceRun> {
  const port = await freePort();
  const config = path.join(p.tmp, `coffee-${i}.yaml`);
  writeFileSync(config, coffeeYaml(port, dbPath, sim.path));
  const t0 = performance.now();
  const h = await startHearth(p.root, `hearth-coffee-${i + 1}`, config, port, 15_000);
  const proc = h.proc;
  try {
    // [rule 1] The pot is ready once hearth's first B+0 was answered: the heater is available.
    await until(
      async () => {
        const r = await call(port, 'GET', '/api/v1/entities/coffee');
        return (r.json as { entity?: { available?: boolean } } | null)?.entity?.available === true;
      },
      5000,
      'the pot available in hearth',
    );
    const startMs = performance.now() - t0;
    let r = await call(port, 'POST', '/api/v1/entities/coffee/commands/brew', { minutes: 1 });
    const end = performance.now() + 2000;
    while (r.status !== 200 && performance.now() < end) {
      await sleep(50);
      r = await call(port, 'POST', '/api/v1/entities/coffee/commands/brew', { minutes: 1 });
    }
    if (r.status !== 200)
      throw new Error(`brew answered ${r.status}: ${JSON.stringify(r.json).slice(0, 200)}`);
    if (!sim.heater) throw new Error('brew answered 200 but the board says the heater is off');
    await sleep(brewMs);
    if (!sim.heater) {
      throw new Error(`the heater went off during the brew (cause ${sim.events.at(-1)?.cause ?? '?'})`);
    }
    if (proc.hasExited()) throw new Error(`hearth exited during the brew\n${proc.tail.join('\n    ')}`);

    const silentAt = performance.now();
    proc.child.kill(signal);
    const off = await sim.waitForHeater(false, 3000);
    const lastBeat = sim.lastHeartbeatT ?? Number.NaN;
    const beatBefore = lastBeatBefore(sim, silentAt);
    const linesAfterSilence = sim.received.filter((l) => l.t > silentAt && l.t <= off.t).length;
    let heaterOnAfterResume: boolean | undefined;
    if (signal === 'SIGSTOP') {
      // The hung host wakes up: what does it do to the pot? Then it is stopped for good.
      const resumedAt = performance.now();
      proc.child.kill('SIGCONT');
      // More than one heartbeat (300 ms) for it to show what it does.
      await sleep(400);
      heaterOnAfterResume = sim.events.some((e) => e.t > resumedAt && e.heater);
      await stop(proc, 2000);
      if (sim.heater) await sim.waitForHeater(false, 3000);
    } else {
      const exit = await withTimeout(proc.exited, 5000, 'hearth to exit after SIGKILL');
      if (exit !== null) throw new Error(`hearth exited with code ${exit}, not by SIGKILL`);
    }
    return {
      run: i + 1,
      signal,
      brewMs,
      offAfterBeatMs: off.t - lastBeat,
      offAfterSilenceMs: off.t - silentAt,
      silenceAfterBeatMs: silentAt - beatBefore,
      cause: off.cause,
      linesAfterSilence,
      ...(heaterOnAfterResume === undefined ? {} : { heaterOnAfterResume }),
      startMs,
    };
  } finally {
    if (!proc.hasExited()) {
      proc.child.kill('SIGKILL');
      await withTimeout(proc.exited, 5000, 'hearth to exit after SIGKILL').catch(() => undefined);
    }
  }
}

/** The time of the last B+1 the board received at or before `t`. */
function lastBeatBefore(sim: CoffeeSimulator, t: number): number {
  for (let i = sim.received.length - 1; i >= 0; i--) {
    const l = sim.received[i];
    if (l && l.t <= t && l.line === 'B+1') return l.t;
  }
  return Number.NaN;
}

function stats(runs: SilenceRun[]): SilenceStats {
  const sum = (xs: number[]) => ({
    p50: quantile(xs, 0.5),
    p99: quantile(xs, 0.99),
    max: Math.max(...xs),
    min: Math.min(...xs),
  });
  const causes: Record<string, number> = {};
  for (const r of runs) causes[r.cause] = (causes[r.cause] ?? 0) + 1;
  return {
    runs: runs.length,
    offAfterBeat: sum(runs.map((r) => r.offAfterBeatMs)),
    offAfterSilence: sum(runs.map((r) => r.offAfterSilenceMs)),
    silenceAfterBeatMax: Math.max(...runs.map((r) => r.silenceAfterBeatMs)),
    causes,
    linesAfterSilenceMax: Math.max(...runs.map((r) => r.linesAfterSilence)),
  };
}

// ---------------------------------------------------------------------------------------------
// Serial round trip: one `S+?` → status exchange.

export interface RoundTripFigures {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
  errors: number;
  errorKinds: string[];
  /** p50 of each round, to see the spread. */
  p50Rounds: number[];
}

export interface RoundTripResult {
  lineport: RoundTripFigures;
  bare: RoundTripFigures;
  ratio: { p50: number; p99: number };
  simulator: string;
  elapsedMs: number;
}

export interface RoundTripParams {
  root: string;
  tmp: string;
  /** Measured exchanges per contender, spread over the rounds. */
  exchanges: number;
  rounds: number;
  /** Exchanges thrown away each time a contender opens the port. */
  warmup: number;
  log?: (line: string) => void;
}

/** One contender: opens the port, does exchanges one at a time, closes. */
interface Exchanger {
  open(): Promise<void>;
  /** Resolves with the answer line; rejects on a deadline. */
  exchange(): Promise<string>;
  close(): Promise<void>;
}

const EXCHANGE_TIMEOUT_MS = 250;

/** hearth's transport, used as the coffee driver uses it (pot.ts). */
function linePortExchanger(device: string): Exchanger {
  let port: LinePort | undefined;
  return {
    async open() {
      const lp = new LinePort({ path: device, baudRate: BAUD_RATE, eol: '\n', settleMs: 100 });
      port = lp;
      // Lines nobody asked for (the banner) are events; nothing here needs them.
      lp.on('line', () => {});
      lp.on('garbage', () => {});
      const opened = new Promise<void>((resolve) => lp.once('open', () => resolve()));
      lp.start();
      await withTimeout(opened, 5000, `LinePort to open ${device}`);
    },
    exchange() {
      if (!port) return Promise.reject(new Error('not open'));
      return port.request('S+?', { timeoutMs: EXCHANGE_TIMEOUT_MS, accept: () => true });
    },
    async close() {
      await port?.close();
      port = undefined;
    },
  };
}

/** The floor: a SerialPort, a write, and the bytes gathered until '\n'. Nothing else. */
function bareExchanger(device: string): Exchanger {
  let port: SerialPort | undefined;
  let buffer = '';
  let waiting: ((line: string) => void) | undefined;
  const request = Buffer.from('S+?\n', 'latin1');
  return {
    async open() {
      const sp = openSerialPort({ path: device, baudRate: BAUD_RATE, autoOpen: false });
      sp.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        const nl = buffer.indexOf('\n');
        if (nl < 0) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const w = waiting;
        waiting = undefined;
        w?.(line);
      });
      sp.on('error', () => {});
      await new Promise<void>((resolve, reject) => sp.open((err) => (err ? reject(err) : resolve())));
      port = sp;
      // As LinePort's settle: let anything already in the line (the banner) pass.
      await sleep(100);
      buffer = '';
    },
    exchange() {
      const sp = port;
      if (!sp) return Promise.reject(new Error('not open'));
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting = undefined;
          reject(new Error(`no answer within ${EXCHANGE_TIMEOUT_MS} ms`));
        }, EXCHANGE_TIMEOUT_MS);
        waiting = (line) => {
          clearTimeout(timer);
          resolve(line);
        };
        sp.write(request);
      });
    },
    async close() {
      const sp = port;
      port = undefined;
      if (sp?.isOpen) await new Promise<void>((resolve) => sp.close(() => resolve()));
    },
  };
}

interface Block {
  latencies: number[];
  errors: number;
  errorKinds: string[];
}

/** Opens, warms up, does `count` timed exchanges (bounded by `maxMs`), closes. */
async function block(ex: Exchanger, warmup: number, count: number, maxMs: number): Promise<Block> {
  const out: Block = { latencies: [], errors: 0, errorKinds: [] };
  await ex.open();
  try {
    const t0 = performance.now();
    for (let i = 0; i < warmup + count && performance.now() - t0 < maxMs; i++) {
      const start = process.hrtime.bigint();
      let error: string | undefined;
      try {
        const line = await ex.exchange();
        if (!parseStatus(line)) error = `not a status: ${JSON.stringify(line.slice(0, 60))}`;
      } catch (err) {
        error = describeErr(err);
      }
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (i < warmup) continue;
      if (error === undefined) out.latencies.push(ms);
      else {
        out.errors++;
        if (out.errorKinds.length < 5 && !out.errorKinds.includes(error)) out.errorKinds.push(error);
        // A late answer must not be taken for the next one.
        await sleep(EXCHANGE_TIMEOUT_MS);
        if (out.errors >= 50 && out.latencies.length === 0) break;
      }
    }
  } finally {
    await ex.close();
  }
  return out;
}

function rtFigures(blocks: Block[]): RoundTripFigures {
  const lat = blocks.flatMap((b) => b.latencies);
  return {
    n: lat.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    mean: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : Number.NaN,
    max: lat.length ? Math.max(...lat) : Number.NaN,
    errors: blocks.reduce((a, b) => a + b.errors, 0),
    errorKinds: [...new Set(blocks.flatMap((b) => b.errorKinds))].slice(0, 5),
    p50Rounds: blocks.map((b) => quantile(b.latencies, 0.5)),
  };
}

/**
 * `hearth sim coffee` in its own process, as a board is its own device; the bench process is
 * the host, alone on its end. Rounds alternate LinePort and the bare loop, in rotating order,
 * each opening the port afresh (one opener at a time: serialport locks the tty).
 */
export async function roundTrip(p: RoundTripParams): Promise<RoundTripResult> {
  const t0 = performance.now();
  const device = path.join(p.tmp, 'ttyRT');
  const proc: Proc = start(
    'sim-coffee',
    process.execPath,
    [path.join(p.root, 'bin', 'hearth.js'), 'sim', 'coffee', '--path', device],
    p.root,
  );
  try {
    await waitForLine(proc, /coffee simulator on serial device (\S+)/, 15_000);
    const contenders: [name: 'lineport' | 'bare', Exchanger][] = [
      ['lineport', linePortExchanger(device)],
      ['bare', bareExchanger(device)],
    ];
    const blocks: Record<'lineport' | 'bare', Block[]> = { lineport: [], bare: [] };
    const perRound = Math.ceil(p.exchanges / p.rounds);
    for (let r = 0; r < p.rounds; r++) {
      for (let j = 0; j < contenders.length; j++) {
        const [name, ex] = contenders[(j + r) % contenders.length] as [string, Exchanger];
        blocks[name as 'lineport' | 'bare'].push(await block(ex, p.warmup, perRound, 20_000));
        if (proc.hasExited()) throw new Error(`hearth sim coffee exited\n${proc.tail.join('\n    ')}`);
      }
      p.log?.(`  round ${r + 1}/${p.rounds} done`);
    }
    const lineport = rtFigures(blocks.lineport);
    const bare = rtFigures(blocks.bare);
    return {
      lineport,
      bare,
      ratio: { p50: lineport.p50 / bare.p50, p99: lineport.p99 / bare.p99 },
      simulator: 'hearth sim coffee (own process), socat pty pair',
      elapsedMs: performance.now() - t0,
    };
  } finally {
    // SIGTERM: the simulator closes its pty pair (its socat) before it exits.
    await stop(proc);
  }
}
