/**
 * The dashboard (issue 11): what the control listener's `/` weighs as served, how soon
 * Debian's chromium paints it and shows the entity list on loopback, and how long a button
 * press takes to reach the last of 200 raw SSE streams, against a bare node:http fan-out
 * (`floor-fanout.mjs`). One hearth (`hearth start`, built dist) with 20 buttons serves all
 * three. See bench/README.md, section 16.
 *
 * Alone: `node --import tsx bench/lib/web.ts [--quick] [--loads N] [--presses N] [--streams N] [--no-build]`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { CHROMIUM, CHROMIUM_ARGS } from '../../test/support/chromium.js';
import { hearthBuilt, startHearth } from './hearth.js';
import { quantile } from './load.js';
import { freePort, installCleanup, type Proc, sleep, start, stop, stopAll, waitForLine } from './procs.js';
import { type Budget, budget, budgetTable, int, ms, ratio, table } from './report.js';

const BUTTON = 'x';
const BUTTONS = 20;
/** What the app renders for each entity (web/entity.tsx); the test drives the same selector. */
const ENTITY_SELECTOR = 'li.entity';

export interface WebOptions {
  root: string;
  tmp: string;
  /** Page loads, each in a fresh browser context: a cold one, then a warm one in the same context. */
  loads: number;
  /** Measured presses per contender, after 5 warm-up presses each. */
  presses: number;
  streams: number;
  log?: (line: string) => void;
}

export interface AssetWeight {
  path: string;
  type: string;
  raw: number;
  /** Bytes of the body as served to `accept-encoding: gzip` (hearth gzips only above 1 kB). */
  gzip: number;
  encoding: string;
}

export interface Weight {
  assets: AssetWeight[];
  raw: number;
  gzip: number;
  jsGzip: number;
  cssGzip: number;
}

export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface PaintFigures {
  /** first-contentful-paint, cold (new context, nothing cached) and warm (the same context again). */
  fcpCold: Spread;
  fcpWarm: Spread;
  /** performance.now() when the first `li.entity` is in the DOM. */
  entitiesCold: Spread;
  entitiesWarm: Spread;
  /** The index's first byte, cold: what of the time above is navigation and server. */
  ttfbCold: Spread;
  /** Bytes chromium received per cold and per warm load (responses' encoded body sizes). */
  coldTransfer: number;
  warmTransfer: number;
  chromium: string;
}

export interface FanoutFigures {
  streams: number;
  presses: number;
  /** Press sent → the last of the streams has the frame. */
  lastStream: Spread;
  /** Press sent → the first stream has it. */
  firstStream: Spread;
  /** Press sent → its HTTP answer. */
  answer: Spread;
  missed: number;
}

export interface WebResult {
  weight: Weight | null;
  paint: PaintFigures | null;
  /** Why the paint figures are missing (no chromium), when they are. */
  paintSkipped?: string;
  fanout: { hearth: FanoutFigures; floor: FanoutFigures } | null;
  loadAverage: { start: string; end: string };
  errors: string[];
}

const loadavg = () => (os.loadavg()[0] ?? 0).toFixed(2);

function spread(values: number[]): Spread {
  return {
    n: values.length,
    p50: quantile(values, 0.5),
    p99: quantile(values, 0.99),
    max: values.length ? Math.max(...values) : Number.NaN,
  };
}

/** One GET on its own connection; the body as it came over the wire (never decoded). */
function get(
  port: number,
  pathName: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; encoding: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          encoding: String(res.headers['content-encoding'] ?? 'identity'),
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${pathName}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** 1. The index and every script and style it names (and anything their CSS names with url()). */
async function pageWeight(port: number): Promise<Weight> {
  const gz = { 'accept-encoding': 'gzip, deflate, br' };
  const assets: AssetWeight[] = [];
  const queue = ['/'];
  const seen = new Set<string>();
  while (queue.length) {
    const p = queue.shift() as string;
    if (seen.has(p)) continue;
    seen.add(p);
    const raw = await get(port, p);
    const zipped = await get(port, p, gz);
    if (raw.status !== 200 || zipped.status !== 200)
      throw new Error(`GET ${p}: ${raw.status}/${zipped.status}`);
    assets.push({
      path: p,
      type: raw.type.split(';')[0] ?? '',
      raw: raw.body.length,
      gzip: zipped.body.length,
      encoding: zipped.encoding,
    });
    const text = raw.body.toString('utf8');
    const refs =
      p === '/'
        ? [...text.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
        : raw.type.startsWith('text/css')
          ? [...text.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g)].map((m) => m[1] as string)
          : [];
    for (const r of refs) {
      if (/^(data:|https?:|\/\/)/.test(r)) continue;
      queue.push(new URL(r, `http://127.0.0.1${p}`).pathname);
    }
  }
  const sum = (f: (a: AssetWeight) => boolean, k: 'raw' | 'gzip') =>
    assets.filter(f).reduce((s, a) => s + a[k], 0);
  return {
    assets,
    raw: sum(() => true, 'raw'),
    gzip: sum(() => true, 'gzip'),
    jsGzip: sum((a) => a.type.includes('javascript'), 'gzip'),
    cssGzip: sum((a) => a.type === 'text/css', 'gzip'),
  };
}

/** Records, in the page, when the first entity card enters the DOM. Runs before the app's script. */
const MARK_ENTITIES = `(() => {
  const seen = () => {
    if (window.__entitiesAt === undefined && document.querySelector(${JSON.stringify(ENTITY_SELECTOR)})) {
      window.__entitiesAt = performance.now();
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(seen);
  obs.observe(document, { childList: true, subtree: true });
})();`;

interface LoadFigures {
  /** The index's first byte (navigation responseStart). */
  ttfb: number;
  fcp: number;
  entities: number;
  transfer: number;
}

/** 2. `loads` times: a fresh context, a cold load, then a warm one (cached assets) in the same context. */
async function firstPaint(port: number, loads: number, log: (l: string) => void): Promise<PaintFigures> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const url = `http://127.0.0.1:${port}/`;
  const measureLoad = async (page: import('playwright-core').Page): Promise<LoadFigures> => {
    await page.goto(url, { waitUntil: 'load', timeout: 10_000 });
    // Polled from here: waitForFunction with a string compiles it in the page, which the CSP
    // (no 'unsafe-eval') refuses; a CDP evaluate is not the page's script.
    const ready = `window.__entitiesAt !== undefined && performance.getEntriesByName('first-contentful-paint').length > 0`;
    const until = performance.now() + 10_000;
    while (!(await page.evaluate(ready))) {
      if (performance.now() > until) throw new Error(`no entity card or no first paint in 10 s at ${url}`);
      await sleep(20);
    }
    return (await page.evaluate(`(() => {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const res = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));
      return {
        ttfb: performance.getEntriesByType('navigation')[0]?.responseStart ?? NaN,
        fcp: fcp ? fcp.startTime : NaN,
        entities: window.__entitiesAt,
        transfer: res.reduce((s, r) => s + (r.transferSize || 0), 0),
      };
    })()`)) as LoadFigures;
  };
  const cold: LoadFigures[] = [];
  const warm: LoadFigures[] = [];
  const version = browser.version();
  try {
    // One load first, not counted: chromium's own first-navigation costs (its processes) are not the page's.
    {
      const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
      await ctx.addInitScript(MARK_ENTITIES);
      await measureLoad(await ctx.newPage());
      await ctx.close();
    }
    for (let i = 0; i < loads; i++) {
      const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
      try {
        await ctx.addInitScript(MARK_ENTITIES);
        const first = await ctx.newPage();
        // Cold: a new context has an empty cache; say so to the network layer as well.
        const cdp = await ctx.newCDPSession(first);
        await cdp.send('Network.enable');
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        cold.push(await measureLoad(first));
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
        await first.close();
        // Warm: a new page of the same context, whose cache holds the immutable assets now.
        // One load to fill it (the disabled-cache load stored nothing), then the measured one.
        const fill = await ctx.newPage();
        await measureLoad(fill);
        await fill.close();
        warm.push(await measureLoad(await ctx.newPage()));
      } finally {
        await ctx.close();
      }
    }
  } finally {
    await browser.close();
  }
  log(
    `  ${loads} cold + ${loads} warm loads: FCP p50 ${ms(
      quantile(
        cold.map((l) => l.fcp),
        0.5,
      ),
    )} / ${ms(
      quantile(
        warm.map((l) => l.fcp),
        0.5,
      ),
    )} ms`,
  );
  return {
    fcpCold: spread(cold.map((l) => l.fcp)),
    fcpWarm: spread(warm.map((l) => l.fcp)),
    entitiesCold: spread(cold.map((l) => l.entities)),
    entitiesWarm: spread(warm.map((l) => l.entities)),
    ttfbCold: spread(cold.map((l) => l.ttfb)),
    coldTransfer: quantile(
      cold.map((l) => l.transfer),
      0.5,
    ),
    warmTransfer: quantile(
      warm.map((l) => l.transfer),
      0.5,
    ),
    chromium: version,
  };
}

/**
 * Raw SSE streams on one contender: each keeps the state of button `x` from the last frame it
 * parsed and the time it arrived; `waitAll(v)` resolves when every stream has `v`.
 */
class Streams {
  readonly sockets: net.Socket[] = [];
  #waiting: { state: string; remaining: number; first: number; last: number; done: () => void } | null = null;
  readonly #states: string[] = [];

  constructor(readonly port: number) {}

  async open(n: number): Promise<void> {
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => this.#one()));
    }
  }

  #one(): Promise<void> {
    const index = this.sockets.length;
    this.#states.push('');
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1');
      this.sockets.push(socket);
      socket.setNoDelay(true);
      let buf = '';
      let open = false;
      const timer = setTimeout(() => reject(new Error('an event stream did not open in 10 s')), 10_000);
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        const now = performance.now();
        buf += chunk.toString('utf8');
        if (!open) {
          if (!buf.includes('\r\n\r\n')) return;
          if (!buf.startsWith('HTTP/1.1 200')) {
            reject(new Error(`GET /api/v1/events: ${buf.split('\r\n')[0]}`));
            return;
          }
          open = true;
          clearTimeout(timer);
          buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
          resolve();
        }
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          end = buf.indexOf('\n\n');
          if (!frame.includes('event: state\n') || !frame.includes(`"id":"${BUTTON}"`)) continue;
          const state = /"state":"([a-z]+)"/.exec(frame)?.[1] ?? '';
          const prev = this.#states[index];
          this.#states[index] = state;
          const w = this.#waiting;
          if (w && state === w.state && prev !== state) {
            if (w.first === 0) w.first = now;
            w.last = now;
            w.remaining -= 1;
            if (w.remaining === 0) w.done();
          }
        }
      });
      socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n\r\n`);
    });
  }

  /** Arms the wait before the press is sent, so no frame can come first. */
  expect(state: string, timeoutMs: number): Promise<{ first: number; last: number } | null> {
    return new Promise((resolve) => {
      const remaining = this.#states.filter((s) => s !== state).length;
      const timer = setTimeout(() => {
        this.#waiting = null;
        resolve(null);
      }, timeoutMs);
      const w = {
        state,
        remaining,
        first: 0,
        last: 0,
        done: () => {
          clearTimeout(timer);
          this.#waiting = null;
          resolve({ first: w.first, last: w.last });
        },
      };
      this.#waiting = w;
      if (remaining === 0) w.done();
    });
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
  }
}

function press(agent: http.Agent, port: number, state: string, id = BUTTON): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/api/v0/buttons/${id}/${state}/`,
        agent,
        headers: { 'content-length': '0' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () =>
          res.statusCode === 200 && body === 'OK'
            ? resolve(performance.now())
            : reject(new Error(`press answered ${res.statusCode}: ${body.slice(0, 80)}`)),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('press: no answer in 5 s')));
    req.on('error', reject);
    req.end();
  });
}

/** 3. Presses alternating on/off, hearth and the floor interleaved press by press. */
async function fanout(
  contenders: { name: 'hearth' | 'floor'; port: number }[],
  streams: number,
  presses: number,
  log: (l: string) => void,
): Promise<Record<'hearth' | 'floor', FanoutFigures>> {
  const opened = contenders.map((c) => ({
    ...c,
    s: new Streams(c.port),
    agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
  }));
  const figs = opened.map(() => ({
    last: [] as number[],
    first: [] as number[],
    answer: [] as number[],
    missed: 0,
  }));
  try {
    for (const o of opened) await o.s.open(streams);
    log(`  ${streams} streams open on each (load average ${loadavg()})`);
    const warmup = 5;
    for (let i = 0; i < warmup + presses; i++) {
      const state = i % 2 === 0 ? 'on' : 'off';
      for (const [j, o] of opened.entries()) {
        const arrived = o.s.expect(state, 5000);
        const t0 = performance.now();
        const answered = await press(o.agent, o.port, state);
        const got = await arrived;
        if (i < warmup) continue;
        const f = figs[j] as (typeof figs)[number];
        if (!got) {
          f.missed += 1;
          continue;
        }
        f.last.push(got.last - t0);
        f.first.push(got.first - t0);
        f.answer.push(answered - t0);
      }
    }
  } finally {
    for (const o of opened) {
      o.s.close();
      o.agent.destroy();
    }
  }
  const out = {} as Record<'hearth' | 'floor', FanoutFigures>;
  opened.forEach((o, j) => {
    const f = figs[j] as (typeof figs)[number];
    out[o.name] = {
      streams,
      presses,
      lastStream: spread(f.last),
      firstStream: spread(f.first),
      answer: spread(f.answer),
      missed: f.missed,
    };
  });
  return out;
}

export async function webBench(opts: WebOptions): Promise<WebResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const result: WebResult = {
    weight: null,
    paint: null,
    fanout: null,
    loadAverage: { start: loadavg(), end: '' },
    errors: [],
  };
  const port = await freePort();
  const config = path.join(opts.tmp, 'hearth-web.yaml');
  const buttons = [BUTTON, ...Array.from({ length: BUTTONS - 1 }, (_, i) => `b${i + 1}`)];
  writeFileSync(
    config,
    // All the streams come from the bench's one address: the per-client caps are raised to fit.
    `timezone: UTC\nhttp: { host: 127.0.0.1, port: ${port}, maxStreams: ${opts.streams + 20}, maxStreamsPerClient: ${opts.streams + 20}, maxConnectionsPerClient: ${opts.streams + 100} }\n` +
      `storage: { sqlite: ${JSON.stringify(path.join(opts.tmp, 'web.db'))} }\nbuttons:\n` +
      buttons.map((b) => `  - { id: ${b}, name: Button ${b} }\n`).join(''),
  );
  const h = await startHearth(opts.root, 'hearth-web', config, port);
  let floor: Proc | null = null;
  try {
    // The app lists buttons once they have a state: press each once.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (const b of buttons) await press(agent, port, 'off', b);
    agent.destroy();

    log('  page weight');
    try {
      result.weight = await pageWeight(port);
    } catch (err) {
      result.errors.push(`page weight: ${(err as Error).message}`);
    }

    if (!existsSync(CHROMIUM)) {
      result.paintSkipped = `${CHROMIUM} is missing (apt-get install chromium)`;
      log(`  first paint: skipped: ${result.paintSkipped}`);
    } else {
      log(`  first paint: ${opts.loads} cold and warm loads (load average ${loadavg()})`);
      try {
        result.paint = await firstPaint(port, opts.loads, log);
      } catch (err) {
        result.paintSkipped = `chromium failed: ${(err as Error).message.split('\n')[0]}`;
        result.errors.push(`first paint: ${(err as Error).message.split('\n')[0]}`);
      }
    }

    log(`  SSE fan-out: ${opts.presses} presses to ${opts.streams} streams, hearth and floor interleaved`);
    try {
      floor = start(
        'floor-fanout',
        process.execPath,
        [path.join(opts.root, 'bench', 'floor-fanout.mjs')],
        opts.root,
      );
      const m = await waitForLine(floor, /listening on 127\.0\.0\.1:(\d+)/, 10_000);
      const f = await fanout(
        [
          { name: 'hearth', port },
          { name: 'floor', port: Number(m[1]) },
        ],
        opts.streams,
        opts.presses,
        log,
      );
      result.fanout = f;
      for (const [name, v] of Object.entries(f))
        if (v.missed)
          result.errors.push(`SSE fan-out: ${name}: ${v.missed} presses did not reach every stream in 5 s`);
    } catch (err) {
      result.errors.push(`SSE fan-out: ${(err as Error).message}`);
    }
  } finally {
    if (floor) await stop(floor);
    await stop(h.proc);
  }
  result.loadAverage.end = loadavg();
  return result;
}

const kB = (n: number) => (Number.isFinite(n) ? (n / 1024).toFixed(1) : 'n/a');

export function webReport(r: WebResult | null): string {
  const out = ['\n=== 16. dashboard: page weight, first paint, SSE fan-out ==='];
  if (!r) return `${out[0]}\nn/a`;
  out.push(`load average ${r.loadAverage.start} at start, ${r.loadAverage.end} at end`);
  if (r.weight) {
    out.push(
      table(
        ['asset (as served)', 'type', 'raw kB', 'gzip kB', 'encoding'],
        [
          ...r.weight.assets.map((a) => [a.path, a.type, kB(a.raw), kB(a.gzip), a.encoding]),
          ['total', '', kB(r.weight.raw), kB(r.weight.gzip), ''],
        ],
      ),
    );
  } else out.push('page weight: n/a');
  if (r.paint) {
    const p = r.paint;
    const row = (label: string, s: Spread) => [label, String(s.n), ms(s.p50), ms(s.max)];
    out.push(
      `\nchromium ${p.chromium}, headless, loopback; each load in a fresh context, cold (cache disabled) then warm ` +
        `(immutable assets cached); ms from navigation start`,
    );
    out.push(
      table(
        ['', 'loads', 'p50 ms', 'max ms'],
        [
          row('first-contentful-paint, cold', p.fcpCold),
          row('first-contentful-paint, warm', p.fcpWarm),
          row(`entity list (${ENTITY_SELECTOR}) in DOM, cold`, p.entitiesCold),
          row(`entity list (${ENTITY_SELECTOR}) in DOM, warm`, p.entitiesWarm),
          row('index first byte (responseStart), cold', p.ttfbCold),
        ],
      ),
    );
    out.push(`bytes over the wire per load: cold ${int(p.coldTransfer)}, warm ${int(p.warmTransfer)}`);
  } else out.push(`\nfirst paint: skipped: ${r.paintSkipped ?? 'n/a'}`);
  if (r.fanout) {
    const { hearth, floor } = r.fanout;
    const row = (name: string, f: FanoutFigures) => [
      name,
      String(f.lastStream.n),
      ms(f.lastStream.p50),
      ms(f.lastStream.p99),
      ms(f.lastStream.max),
      ms(f.firstStream.p50),
      ms(f.answer.p50),
      String(f.missed),
    ];
    out.push(
      `\nPOST /api/v0/buttons/${BUTTON}/<on|off>/ → its frame on the last of ${hearth.streams} raw SSE streams (sequential presses, hearth and floor interleaved)`,
    );
    out.push(
      table(
        [
          'contender',
          'presses',
          'last p50 ms',
          'last p99 ms',
          'last max ms',
          'first p50 ms',
          'answer p50 ms',
          'missed',
        ],
        [row('hearth', hearth), row('floor', floor)],
      ),
    );
    out.push(
      `hearth/floor last-stream p50 ${ratio(hearth.lastStream.p50 / floor.lastStream.p50)}, p99 ${ratio(hearth.lastStream.p99 / floor.lastStream.p99)}`,
    );
  } else out.push('\nSSE fan-out: n/a');
  if (r.errors.length) out.push(`errors:\n  ${r.errors.join('\n  ')}`);
  return out.join('\n');
}

export function webBudgets(r: WebResult | null): Budget[] {
  return [
    budget(
      'dashboard JS, gzip as served',
      r?.weight ? r.weight.jsGzip / 1024 : undefined,
      '<',
      60,
      'kB',
      r?.weight ? `page total ${kB(r.weight.gzip)} kB gzip, ${kB(r.weight.raw)} kB raw` : undefined,
      1,
    ),
    budget(
      'dashboard first paint, cold, p50',
      r?.paint?.fcpCold.p50,
      '<',
      300,
      'ms',
      r?.paint
        ? `max ${int(r.paint.fcpCold.max)} ms; entity list p50 ${int(r.paint.entitiesCold.p50)} ms`
        : r?.paintSkipped,
    ),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      loads: { type: 'string' },
      presses: { type: 'string' },
      streams: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  installCleanup();
  if (!values['no-build']) {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: root, timeout: 300_000 });
  }
  if (!hearthBuilt(root)) throw new Error('dist/hearth.mjs is missing: run npm run build');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-web-'));
  const t0 = performance.now();
  try {
    console.log(`16. dashboard (load average ${loadavg()})`);
    const r = await webBench({
      root,
      tmp,
      loads: Number(values.loads ?? (values.quick ? 5 : 10)),
      presses: Number(values.presses ?? (values.quick ? 20 : 50)),
      streams: Number(values.streams ?? 200),
    });
    console.log(webReport(r));
    console.log(`\n${budgetTable(webBudgets(r))}`);
    console.log(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    if (r.errors.length) process.exitCode = 1;
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}
