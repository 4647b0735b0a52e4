/**
 * Section 7 of the bench (issue 4): button press → automation → device, against the direct
 * switch call. hearth runs as its built process; the Wemo plug it drives is simulated in the
 * bench process, so the moment the plug receives SetBinaryState is read on the same clock
 * (`performance.now()`) as the moment the request was sent.
 */
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startWemoSimulator, type WemoCall, type WemoSimulator } from '../../src/drivers/wemo/simulator.js';
import { ZigbeeSimulator } from '../../src/drivers/zigbee2mqtt/simulator.js';
import { startHearth, writeConfig } from './hearth.js';
import { type Outcome, quantile, send, type Target } from './load.js';
import { freePort, onStopAll, sleep, stop } from './procs.js';

export const BUTTON_PATH = '/api/v0/buttons/bedside/on/';
export const DIRECT_PATH = '/api/v0/switches/lamp/toggle/';

/**
 * `zigbee`: a zigbee2mqtt remote's `action` published on the broker (the simulated bridge, in
 * this process) → hearth's zigbee2mqtt entity → automation → lamp.toggle. Only with `mqttUrl`.
 */
export type PathName = 'automation' | 'direct' | 'zigbee';

export interface AutomationParams {
  root: string;
  tmp: string;
  /** Measured presses per path, after warm-up. */
  runs: number;
  /** Unmeasured presses per path first. */
  warmup: number;
  /** Pause after each measured press, so the rest of its work (the run's record) is done. */
  gapMs: number;
  /** A broker for the zigbee path (a Mosquitto of the bench's own); without it, two paths. */
  mqttUrl?: string;
  log?: (line: string) => void;
}

export interface Dist {
  p50: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

export interface PathFigures {
  n: number;
  /** Request sent → the simulator has read the whole SetBinaryState request. */
  toSet: Dist;
  /** Request sent → the simulator has read the GetBinaryState the toggle starts with. */
  toGet: Dist;
  /** Request sent → the HTTP answer read by the bench (for the button: before the device). */
  answer: Dist;
  /** Set − answer: > 0 when the device is reached after the HTTP answer (the automation path). */
  setAfterAnswer: Dist;
  /** Cross-check on the simulator's own `at` (Date.now(), whole ms) − Date.now() at send. */
  toSetEpochMs: Dist;
  /** Presses whose Set flipped the plug. */
  flipped: number;
  errors: number;
  errorKinds: string[];
}

export interface AutomationResult {
  paths: Record<'automation' | 'direct', PathFigures> & { zigbee?: PathFigures };
  ratio: { p50: number; p99: number; max: number };
  /** zigbee remote → automation against the direct toggle, to the device. */
  zigbeeRatio?: { p50: number; p99: number; max: number };
  /** SOAP calls that arrived while no press was waiting (polling, start-up): should be 0. */
  strayCalls: number;
  loadAverage: { start: number; end: number };
  elapsedMs: number;
  startMs: number;
}

interface Pending {
  getAt?: number;
  setAt?: number;
  setEpoch?: number;
  resolve: () => void;
}

interface Press {
  ok: boolean;
  error?: string;
  toSet: number;
  toGet: number;
  answer: number;
  toSetEpoch: number;
  flipped: boolean;
}

function dist(values: number[]): Dist {
  return {
    p50: quantile(values, 0.5),
    p99: quantile(values, 0.99),
    max: values.length ? Math.max(...values) : Number.NaN,
    min: values.length ? Math.min(...values) : Number.NaN,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN,
  };
}

/**
 * The simulator records each call (`calls.push`) as soon as it has read the request, with an
 * epoch-ms `at`; to time it to the microsecond on the bench's clock, this wraps `push` on that
 * one array. Nothing in src/ changes: the simulator offers no finer timestamp of its own.
 */
function watch(sim: WemoSimulator, onCall: (call: WemoCall, at: number) => void): void {
  const calls = sim.calls;
  const push = calls.push;
  calls.push = (...items: WemoCall[]) => {
    const at = performance.now();
    for (const c of items) onCall(c, at);
    return push.apply(calls, items);
  };
}

export async function buttonToDevice(p: AutomationParams): Promise<AutomationResult> {
  const t0 = performance.now();
  const loadStart = os.loadavg()[0] ?? 0;
  const sim = await startWemoSimulator({ host: '127.0.0.1', port: 0 });
  const closeSim = onStopAll(() => sim.close());
  let pending: Pending | undefined;
  let strayCalls = 0;
  watch(sim, (call, at) => {
    if (!pending) {
      strayCalls++;
      return;
    }
    if (call.action === 'GetBinaryState') pending.getAt ??= at;
    else if (pending.setAt === undefined) {
      pending.setAt = at;
      pending.setEpoch = call.at;
      pending.resolve();
    }
  });

  const port = await freePort();
  const config = writeConfig(p.tmp, 'automation.yaml', {
    port,
    dbPath: path.join(p.tmp, 'automation.db'),
    switches: [{ id: 'lamp', simPort: sim.port, pollSeconds: 0 }],
    buttons: ['bedside'],
    automations: [
      { id: 'bedside-lamp', state: 'bedside', to: 'on', command: 'lamp.toggle' },
      ...(p.mqttUrl
        ? [{ id: 'remote-lamp', state: 'hall-remote', to: 'single', command: 'lamp.toggle' }]
        : []),
    ],
  });
  // The automations list ends the file: the broker and the bridge go after it.
  if (p.mqttUrl)
    appendFileSync(config, `mqtt: { url: "${p.mqttUrl}" }\nzigbee2mqtt: { baseTopic: zigbee2mqtt }\n`);
  const z2m = p.mqttUrl ? await ZigbeeSimulator.start({ mqttUrl: p.mqttUrl }) : undefined;
  const agents: Record<'automation' | 'direct', http.Agent> = {
    automation: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    direct: new http.Agent({ keepAlive: true, maxSockets: 1 }),
  };
  const targets: Record<'automation' | 'direct', Target> = {
    automation: { port, method: 'POST', path: BUTTON_PATH, ok: (s, b) => s === 200 && b === 'OK' },
    direct: { port, method: 'POST', path: DIRECT_PATH, ok: (s, b) => s === 200 && b === 'OK' },
  };
  let hearth: Awaited<ReturnType<typeof startHearth>> | undefined;
  try {
    hearth = await startHearth(p.root, 'hearth-automation', config, port);
    if (z2m) await zigbeeReady(port);
    // Whatever hearth sends the plug on its own at start is done by now, or counted as stray.
    await sleep(200);
    strayCalls = 0;

    /** One press, sequential: resolves once both the HTTP answer and the plug's Set are in. */
    const press = async (name: PathName): Promise<Press> => {
      const wasOn = sim.on;
      let resolve!: () => void;
      const reached = new Promise<void>((r) => {
        resolve = r;
      });
      const pend: Pending = { resolve };
      pending = pend;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), 5000);
      });
      const epoch = Date.now();
      const sent = performance.now();
      const answered: Promise<Outcome> =
        name === 'zigbee'
          ? (z2m as ZigbeeSimulator).press('Hall Remote', 'single').then(
              () => ({ ok: true, ms: performance.now() - sent }),
              (err: unknown) => ({ ok: false, ms: performance.now() - sent, error: String(err) }),
            )
          : send(agents[name], targets[name]);
      const [o, device] = await Promise.all([answered, Promise.race([reached, timeout])]);
      clearTimeout(timer);
      pending = undefined;
      const flipped = sim.on !== wasOn;
      const base = {
        toSet: (pend.setAt ?? Number.NaN) - sent,
        toGet: (pend.getAt ?? Number.NaN) - sent,
        answer: o.ms,
        toSetEpoch: (pend.setEpoch ?? Number.NaN) - epoch,
        flipped,
      };
      if (!o.ok) return { ok: false, error: o.error ?? 'error', ...base };
      if (device === 'timeout')
        return { ok: false, error: 'the plug got no SetBinaryState within 5 s', ...base };
      return { ok: true, ...base };
    };

    const order: PathName[] = z2m ? ['direct', 'automation', 'zigbee'] : ['direct', 'automation'];
    for (let i = 0; i < p.warmup; i++) for (const name of order) await press(name);
    const got: Record<PathName, Press[]> = { automation: [], direct: [], zigbee: [] };
    const errors: Record<PathName, { n: number; kinds: string[] }> = {
      automation: { n: 0, kinds: [] },
      direct: { n: 0, kinds: [] },
      zigbee: { n: 0, kinds: [] },
    };
    for (let i = 0; i < p.runs; i++) {
      // Interleaved, and who goes first alternates.
      for (let j = 0; j < order.length; j++) {
        const name = order[(i + j) % order.length] as PathName;
        const r = await press(name);
        if (r.ok) got[name].push(r);
        else {
          const e = errors[name];
          e.n++;
          if (r.error && e.kinds.length < 5 && !e.kinds.includes(r.error)) e.kinds.push(r.error);
          if (e.n >= 20 && got[name].length === 0)
            throw new Error(`${name}: every press fails: ${e.kinds.join('; ')}`);
        }
        await sleep(p.gapMs);
      }
      if ((i + 1) % Math.max(1, Math.ceil(p.runs / 4)) === 0)
        p.log?.(`  ${i + 1}/${p.runs} presses per path`);
      if (hearth.proc.hasExited()) throw new Error(`hearth exited\n    ${hearth.proc.tail.join('\n    ')}`);
    }
    const figures = (name: PathName): PathFigures => {
      const rs = got[name];
      return {
        n: rs.length,
        toSet: dist(rs.map((r) => r.toSet)),
        toGet: dist(rs.map((r) => r.toGet).filter((v) => !Number.isNaN(v))),
        answer: dist(rs.map((r) => r.answer)),
        setAfterAnswer: dist(rs.map((r) => r.toSet - r.answer)),
        toSetEpochMs: dist(rs.map((r) => r.toSetEpoch)),
        flipped: rs.filter((r) => r.flipped).length,
        errors: errors[name].n,
        errorKinds: errors[name].kinds,
      };
    };
    const automation = figures('automation');
    const direct = figures('direct');
    const zigbee = z2m ? figures('zigbee') : undefined;
    const against = (f: PathFigures) => ({
      p50: f.toSet.p50 / direct.toSet.p50,
      p99: f.toSet.p99 / direct.toSet.p99,
      max: f.toSet.max / direct.toSet.max,
    });
    return {
      paths: { automation, direct, ...(zigbee ? { zigbee } : {}) },
      ratio: against(automation),
      ...(zigbee ? { zigbeeRatio: against(zigbee) } : {}),
      strayCalls,
      loadAverage: { start: loadStart, end: os.loadavg()[0] ?? 0 },
      elapsedMs: performance.now() - t0,
      startMs: hearth.readyMs,
    };
  } finally {
    for (const a of Object.values(agents)) a.destroy();
    if (hearth) await stop(hearth.proc);
    await z2m?.close().catch(() => {});
    closeSim.remove();
    await sim.close();
  }
}

/** Waits until hearth has made the remote an entity from the simulated bridge's device list. */
async function zigbeeReady(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const found = await new Promise<boolean>((resolve) => {
      http
        .get({ host: '127.0.0.1', port, path: '/api/v1/entities/hall-remote' }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (found) return;
    await sleep(50);
  }
  throw new Error('hearth made no entity hall-remote of the simulated zigbee2mqtt bridge within 10 s');
}
