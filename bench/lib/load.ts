import http from 'node:http';

/** What to send and how to tell a good answer. */
export interface Target {
  port: number;
  method: 'GET' | 'POST';
  path: string;
  /**
   * For concurrent load: client i uses `spread[i % length]` instead of `path`, e.g. one switch
   * per client, as when many buttons each toggle their own lamp.
   */
  spread?: string[];
  /** Whether the answer counts as a success (status 200 and the expected body). */
  ok: (status: number, body: string) => boolean;
}

export interface Outcome {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface Sample {
  /** Latencies of successful requests, in milliseconds. */
  latencies: number[];
  okCount: number;
  errors: number;
  /** Up to five distinct error descriptions. */
  errorKinds: string[];
  elapsedMs: number;
}

const REQUEST_TIMEOUT_MS = 5000;

/** One request on `agent`; never rejects. Host is always 127.0.0.1. */
export function send(
  agent: http.Agent | false,
  target: Target,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Outcome> {
  const t0 = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: Outcome) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method: target.method,
        path: target.path,
        agent,
        headers: target.method === 'POST' ? { 'content-length': '0' } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (target.ok(status, body)) finish({ ok: true, ms: ms() });
          else finish({ ok: false, ms: ms(), error: `status ${status}: ${body.slice(0, 80).trim()}` });
        });
        res.on('error', (err) => finish({ ok: false, ms: ms(), error: err.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => finish({ ok: false, ms: ms(), error: err.message }));
    req.end();
  });
}

function emptySample(): Sample {
  return { latencies: [], okCount: 0, errors: 0, errorKinds: [], elapsedMs: 0 };
}

function record(s: Sample, o: Outcome): void {
  if (o.ok) {
    s.okCount++;
    s.latencies.push(o.ms);
    return;
  }
  s.errors++;
  const kind = o.error ?? 'error';
  if (s.errorKinds.length < 5 && !s.errorKinds.includes(kind)) s.errorKinds.push(kind);
}

/**
 * One client per target, each with one keep-alive connection, requests one after another and
 * interleaved across targets (A B C A B C ...), so a burst of outside noise hits every target
 * alike: `count` requests per target or `maxMs`, whichever ends first. One sample per target.
 */
export async function interleaved(targets: Target[], count: number, maxMs: number): Promise<Sample[]> {
  const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const samples = targets.map(emptySample);
  const t0 = performance.now();
  try {
    for (let i = 0; i < count && performance.now() - t0 < maxMs; i++) {
      for (let j = 0; j < targets.length; j++) {
        // Rotate who goes first, so none always follows the same neighbour.
        const k = (i + j) % targets.length;
        const s = samples[k] as Sample;
        // A target that fails every request is not worth waiting for.
        if (s.errors >= 50 && s.okCount === 0) continue;
        record(s, await send(agents[k] as http.Agent, targets[k] as Target));
      }
    }
  } finally {
    for (const a of agents) a.destroy();
  }
  const elapsedMs = performance.now() - t0;
  for (const s of samples) s.elapsedMs = elapsedMs;
  return samples;
}

/**
 * `clients` concurrent clients, each with its own keep-alive connection, sending back to back
 * for `durationMs` (and at most `maxCount` requests in all).
 */
export async function concurrent(
  target: Target,
  clients: number,
  durationMs: number,
  maxCount: number,
): Promise<Sample> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const s = emptySample();
  const t0 = performance.now();
  const end = t0 + durationMs;
  let issued = 0;
  const worker = async (_: unknown, i: number) => {
    const own = target.spread?.length
      ? { ...target, path: target.spread[i % target.spread.length] as string }
      : target;
    while (performance.now() < end && issued < maxCount) {
      issued++;
      record(s, await send(agent, own));
      if (s.errors >= 200 && s.okCount === 0) return;
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, worker));
  } finally {
    agent.destroy();
  }
  s.elapsedMs = performance.now() - t0;
  return s;
}

/** Merges samples of the same contender taken in several rounds. */
export function merge(samples: Sample[]): Sample {
  const out = emptySample();
  for (const s of samples) {
    for (const ms of s.latencies) out.latencies.push(ms);
    out.okCount += s.okCount;
    out.errors += s.errors;
    out.elapsedMs += s.elapsedMs;
    for (const k of s.errorKinds)
      if (out.errorKinds.length < 5 && !out.errorKinds.includes(k)) out.errorKinds.push(k);
  }
  return out;
}

/** The `q` quantile (0..1) by nearest rank; NaN for no data. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/** Polls `GET path` every `everyMs` until it answers 200; resolves with the ms it took. */
export async function waitFor200(
  port: number,
  path: string,
  timeoutMs: number,
  everyMs = 5,
  isAlive: () => boolean = () => true,
): Promise<number> {
  const t0 = performance.now();
  const target: Target = { port, method: 'GET', path, ok: (status) => status === 200 };
  let last = '';
  while (performance.now() - t0 < timeoutMs) {
    if (!isAlive())
      throw new Error(`process exited before ${path} answered 200 (last: ${last || 'nothing'})`);
    const o = await send(false, target, 1000);
    if (o.ok) return performance.now() - t0;
    last = o.error ?? '';
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `GET 127.0.0.1:${port}${path} was not 200 within ${timeoutMs} ms (last: ${last || 'nothing'})`,
  );
}
