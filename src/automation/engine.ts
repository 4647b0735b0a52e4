import { Cron } from 'croner';
import type { Bus, BusEvents } from '../core/bus.js';
import type { Clock, Timer } from '../core/clock.js';
import { clocktime } from '../core/clock.js';
import { HearthError, reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Runtime } from '../core/runtime.js';
import type { AutomationRun, AutomationStore } from '../store/store.js';
import { type Action, type AutomationConfig, type Condition, durationMs, type Trigger } from './schema.js';

export interface EngineOptions {
  automations: readonly AutomationConfig[];
  runtime: Runtime;
  bus: Bus;
  store: AutomationStore;
  clock: Clock;
  timezone: string;
  log: Logger;
}

/** An automation as the API shows it. */
export interface AutomationView {
  id: string;
  name: string;
  triggers: string[];
  /** ISO time of the next scheduled run, if it has a schedule. */
  nextRunAt: string | null;
  lastRun: AutomationRun | null;
}

interface Schedule {
  trigger: string;
  cron: Cron;
  timer?: Timer;
  /** The fire time last run, so one instant never runs twice. */
  last: number;
  /** The fire time being waited for. */
  next?: number | undefined;
}

/** Long waits are cut into pieces, so a clock change or a sleeping host is noticed. */
const MAX_WAIT_MS = 60 * 60 * 1000;
const MAX_NESTING = 5;
const WEEKDAY = new Map<string, Intl.DateTimeFormat>();

/**
 * Runs the automations of the config: triggers (schedules, state changes, calendar events,
 * webhooks) → conditions → actions, each run recorded in the store. Runs are independent: a
 * slow or failing one never holds up another. It knows entity kinds and commands through the
 * runtime API, never drivers.
 */
export class AutomationEngine {
  readonly #opts: EngineOptions;
  readonly #byId: Map<string, AutomationConfig>;
  readonly #schedules = new Map<string, Schedule[]>();
  readonly #stopping = new AbortController();
  readonly #running = new Set<Promise<unknown>>();

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.#byId = new Map(opts.automations.map((a) => [a.id, a]));
  }

  async start(): Promise<void> {
    const { bus } = this.#opts;
    bus.on('entity.state', (e) => this.#onState(e), 'automations');
    bus.on('entity.event', (e) => this.#onEntityEvent(e), 'automations');
    for (const a of this.#opts.automations) {
      const schedules: Schedule[] = [];
      for (const t of a.triggers) {
        const expr = 'cron' in t ? t.cron : 'at' in t ? atToCron(t.at) : undefined;
        if (!expr) continue;
        const cron = new Cron(expr, { timezone: this.#opts.timezone, paused: true });
        schedules.push({ trigger: describeTrigger(t), cron, last: 0 });
      }
      if (schedules.length === 0) continue;
      this.#schedules.set(a.id, schedules);
      await this.#catchUp(a, schedules);
      for (const s of schedules) this.#arm(a, s);
    }
  }

  /** Stops scheduling, cuts delays short and waits for runs in progress to end. */
  async stop(): Promise<void> {
    this.#stopping.abort(new HearthError('HEARTH_ERR_NOT_READY', 'hearth is stopping'));
    this.#opts.bus.offOwner('automations');
    for (const list of this.#schedules.values()) {
      for (const s of list) if (s.timer) this.#opts.clock.clearTimeout(s.timer);
    }
    await Promise.allSettled([...this.#running]);
  }

  async list(): Promise<AutomationView[]> {
    return Promise.all(this.#opts.automations.map((a) => this.view(a.id) as Promise<AutomationView>));
  }

  async view(id: string): Promise<AutomationView | undefined> {
    const a = this.#byId.get(id);
    if (!a) return undefined;
    const now = this.#opts.clock.now();
    const next = (this.#schedules.get(id) ?? [])
      .map((s) => s.cron.nextRun(new Date(now))?.getTime())
      .filter((t): t is number => t !== undefined)
      .sort((x, y) => x - y)[0];
    const [lastRun] = await this.#opts.store.runs(id, 1);
    return {
      id,
      name: a.name ?? id,
      triggers: a.triggers.map(describeTrigger),
      nextRunAt: next === undefined ? null : new Date(next).toISOString(),
      lastRun: lastRun ?? null,
    };
  }

  async runs(id: string, limit = 50): Promise<AutomationRun[]> {
    if (!this.#byId.has(id)) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return this.#opts.store.runs(id, limit);
  }

  /**
   * Starts a run now (a webhook, or the API's run button); resolves with the run as recorded
   * once it has started. The run goes on by itself: an automation with delays takes minutes.
   */
  async trigger(id: string, trigger = 'webhook'): Promise<AutomationRun> {
    const a = this.#byId.get(id);
    if (!a) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    const started = await this.#launch(a, trigger);
    return started;
  }

  /** Resolves once the run has been recorded as started; the run itself goes on. */
  #launch(a: AutomationConfig, trigger: string, depth = 0): Promise<AutomationRun> {
    let recorded!: (run: AutomationRun) => void;
    let failed!: (err: unknown) => void;
    const started = new Promise<AutomationRun>((resolve, reject) => {
      recorded = resolve;
      failed = reject;
    });
    const done = this.#execute(a, trigger, depth, recorded).catch((err) => {
      this.#opts.log.error({ automation: a.id, err: reasonOf(err) }, 'automation run could not be recorded');
      failed(err);
    });
    this.#running.add(done);
    void done.finally(() => this.#running.delete(done));
    return started;
  }

  async #execute(
    a: AutomationConfig,
    trigger: string,
    depth: number,
    recorded: (run: AutomationRun) => void = () => {},
  ): Promise<AutomationRun['outcome']> {
    const { store, clock, log } = this.#opts;
    const startedAt = clock.now();
    const id = await store.start(a.id, trigger, startedAt);
    const run: AutomationRun = {
      id,
      automation: a.id,
      trigger,
      startedAt,
      endedAt: null,
      outcome: 'running',
      error: null,
    };
    recorded(run);
    const unmet = a.conditions.map((c) => this.#unmet(c)).find((r) => r !== null);
    if (unmet) {
      await store.finish(id, 'skipped', clock.now(), unmet);
      log.debug({ automation: a.id, trigger, reason: unmet }, 'automation skipped: a condition is not met');
      return 'skipped';
    }
    try {
      for (const action of a.actions) await this.#act(a, action, depth);
      await store.finish(id, 'ok', clock.now(), null);
      return 'ok';
    } catch (err) {
      const reason = reasonOf(err);
      await store.finish(id, 'failed', clock.now(), reason);
      log.warn({ automation: a.id, trigger, err: reason }, 'automation failed');
      return 'failed';
    }
  }

  async #act(a: AutomationConfig, action: Action, depth: number): Promise<void> {
    if ('delay' in action) return this.#sleep(durationMs(action.delay));
    if ('automation' in action) {
      const target = this.#byId.get(action.automation);
      if (!target)
        throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${action.automation}"`);
      if (depth >= MAX_NESTING) throw new Error(`automations call each other more than ${MAX_NESTING} deep`);
      const outcome = await this.#execute(target, `automation ${a.id}`, depth + 1);
      if (outcome === 'failed') throw new Error(`automation ${target.id} failed`);
      return;
    }
    const retry = action.retry ?? a.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        if ('command' in action) {
          const dot = action.command.lastIndexOf('.');
          await this.#opts.runtime.command(
            action.command.slice(0, dot),
            action.command.slice(dot + 1),
            action.args ?? {},
          );
        } else {
          await httpAction(action.http, this.#stopping.signal);
        }
        return;
      } catch (err) {
        if (attempt >= retry.attempts || this.#stopping.signal.aborted) throw err;
        this.#opts.log.info(
          { automation: a.id, attempt, of: retry.attempts, err: reasonOf(err) },
          'automation action failed; retrying',
        );
        await this.#sleep(retry.delaySeconds * 1000);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#stopping.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const timer = this.#opts.clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        this.#opts.clock.clearTimeout(timer);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Null if the condition holds, else why not. */
  #unmet(c: Condition): string | null {
    const { timezone, clock, runtime } = this.#opts;
    if ('state' in c) {
      const want = (Array.isArray(c.is) ? c.is : [c.is]).map((v) => String(v).toLowerCase());
      const state = runtime.get(c.state)?.state;
      const have = state === null || state === undefined ? '' : String(state).toLowerCase();
      return want.includes(have) ? null : `${c.state} is ${have || 'unknown'}, not ${want.join(' or ')}`;
    }
    if ('time' in c) {
      const now = clocktime(clock.now(), timezone);
      const after = c.time.after?.replace(':', '');
      const before = c.time.before?.replace(':', '');
      const inside =
        after !== undefined && before !== undefined && after > before
          ? now >= after || now < before // a window across midnight
          : (after === undefined || now >= after) && (before === undefined || now < before);
      return inside
        ? null
        : `it is ${now.slice(0, 2)}:${now.slice(2)}, outside ${c.time.after ?? ''}–${c.time.before ?? ''}`;
    }
    const day = weekday(clock.now(), timezone);
    return c.weekday.includes(day as never) ? null : `it is ${day}, not ${c.weekday.join('/')}`;
  }

  #onState(e: BusEvents['entity.state']): void {
    for (const a of this.#opts.automations) {
      for (const t of a.triggers) {
        if (!('state' in t) || t.state !== e.id) continue;
        if (t.to !== undefined && !same(e.state, t.to)) continue;
        if (t.from !== undefined && !same(e.previous, t.from)) continue;
        void this.#launch(a, describeTrigger(t)).catch(() => {});
      }
    }
  }

  #onEntityEvent(e: BusEvents['entity.event']): void {
    for (const a of this.#opts.automations) {
      for (const t of a.triggers) {
        if (!('calendar' in t) || t.calendar !== e.id || t.on !== e.event) continue;
        const summary = typeof e.data.summary === 'string' ? e.data.summary : '';
        if (t.summary !== undefined && !summaryMatches(t.summary, summary)) continue;
        void this.#launch(a, `${describeTrigger(t)}: ${summary}`).catch(() => {});
      }
    }
  }

  /** After downtime, a schedule that was missed is skipped or run once, per the automation. */
  async #catchUp(a: AutomationConfig, schedules: Schedule[]): Promise<void> {
    const { store, clock, log } = this.#opts;
    const now = clock.now();
    const mark = await store.getMark(a.id);
    await store.setMark(a.id, now);
    if (mark === undefined) return;
    let count = 0;
    let latest = 0;
    let which = '';
    for (const s of schedules) {
      let t = s.cron.nextRun(new Date(mark));
      for (let i = 0; t && t.getTime() <= now && i < 100_000; i++) {
        count++;
        if (t.getTime() > latest) {
          latest = t.getTime();
          which = s.trigger;
        }
        t = s.cron.nextRun(t);
      }
    }
    if (count === 0) return;
    const at = new Date(latest).toISOString();
    const policy = a.missed;
    const withinMs = policy === 'skip' ? -1 : policy.runOnceWithinMinutes * 60_000;
    if (withinMs >= 0 && now - latest <= withinMs) {
      log.info(
        { automation: a.id, missed: count, latest: at },
        'schedule missed while hearth was down; running it once now',
      );
      void this.#launch(a, `missed ${which} at ${at}`).catch(() => {});
      return;
    }
    const why =
      policy === 'skip'
        ? 'missed: skip'
        : `the latest was more than ${policy.runOnceWithinMinutes} min ago (missed: runOnceWithinMinutes)`;
    log.info(
      { automation: a.id, missed: count, latest: at },
      `schedule missed while hearth was down; skipped (${why})`,
    );
    const id = await store.start(a.id, `missed ${which} at ${at}`, now);
    await store.finish(
      id,
      'skipped',
      now,
      `${count} run(s) missed while hearth was down, the latest at ${at}; ${why}`,
    );
  }

  #arm(a: AutomationConfig, s: Schedule): void {
    if (this.#stopping.signal.aborted) return;
    const { clock } = this.#opts;
    const now = clock.now();
    // The target is computed once and kept across the capped waits: asked again from a later
    // instant, croner can skip a run that DST moved (02:30 on a spring-forward day runs at 03:30,
    // but from 03:00 it answers the next day).
    s.next ??= s.cron.nextRun(new Date(Math.max(now, s.last)))?.getTime();
    const next = s.next;
    if (next === undefined) return;
    s.timer = clock.setTimeout(
      () => {
        s.timer = undefined;
        if (clock.now() >= next) {
          s.last = next;
          s.next = s.cron.nextRun(new Date(next))?.getTime();
          void this.#opts.store.setMark(a.id, next).catch(() => {});
          void this.#launch(a, s.trigger).catch(() => {});
        }
        this.#arm(a, s);
      },
      Math.min(Math.max(0, next - now), MAX_WAIT_MS),
    );
    s.timer.unref?.();
  }
}

function atToCron(at: string): string {
  const [h, m] = at.split(':');
  return `${Number(m)} ${Number(h)} * * *`;
}

export function describeTrigger(t: Trigger): string {
  if ('cron' in t) return `cron ${t.cron}`;
  if ('at' in t) return `at ${t.at}`;
  if ('state' in t)
    return `state ${t.state}${t.from !== undefined ? ` from ${t.from}` : ''}${t.to !== undefined ? ` to ${t.to}` : ''}`;
  if ('calendar' in t) return `calendar ${t.calendar} ${t.on}${t.summary ? ` "${t.summary}"` : ''}`;
  return 'webhook';
}

function same(state: unknown, want: string | number): boolean {
  return state !== null && state !== undefined && String(state).toLowerCase() === String(want).toLowerCase();
}

/** A substring in any case, or `/regex/flags`. */
export function summaryMatches(pattern: string, summary: string): boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) {
    try {
      return new RegExp(re[1] as string, re[2]).test(summary);
    } catch {
      return false;
    }
  }
  return summary.toLowerCase().includes(pattern.toLowerCase());
}

function weekday(epochMs: number, timeZone: string): string {
  let fmt = WEEKDAY.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short' });
    WEEKDAY.set(timeZone, fmt);
  }
  return fmt.format(epochMs).slice(0, 3).toLowerCase();
}

async function httpAction(
  h: { url: string; method: string; headers?: Record<string, string>; body?: unknown; timeoutMs: number },
  stopping: AbortSignal,
): Promise<void> {
  const body =
    h.body === undefined ? undefined : typeof h.body === 'string' ? h.body : JSON.stringify(h.body);
  const headers: Record<string, string> = { ...h.headers };
  if (body !== undefined && typeof h.body !== 'string') headers['content-type'] ??= 'application/json';
  // The origin only: a URL's path or query may hold a secret.
  const where = new URL(h.url).origin;
  let res: Response;
  try {
    res = await fetch(h.url, {
      method: h.method,
      headers,
      body,
      signal: AbortSignal.any([AbortSignal.timeout(h.timeoutMs), stopping]),
    });
  } catch (err) {
    throw new Error(`HTTP ${h.method} to ${where} failed: ${reasonOf(err)}`);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`HTTP ${h.method} to ${where} answered ${res.status}`);
}
