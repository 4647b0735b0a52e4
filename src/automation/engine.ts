import { Cron } from 'croner';
import {
  type Action,
  type AutomationConfig,
  type Condition,
  defaultMaxRuns,
  durationMs,
  type Trigger,
} from '../config/sections/automations.js';
import type { AutomationRun, AutomationView } from '../contract/views.js';
import type { BusEvents } from '../core/bus.js';
import type { Clock, Timer } from '../core/clock.js';
import { clocktime } from '../core/clock.js';
import { HearthError, reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { redactText } from '../store/redact.js';
import type { AutomationStore } from '../store/store.js';

export interface EngineOptions {
  automations: readonly AutomationConfig[];
  /** Entities to read and command, and the events triggers listen to (`runtime.events`). */
  runtime: RuntimeApi;
  store: AutomationStore;
  clock: Clock;
  timezone: string;
  log: Logger;
  /**
   * Claims a scheduled instant before it runs; false means another process ran it (or this
   * one no longer leads), and it is not run here. In a cluster, a claim in the shared store
   * with the controller lease's fencing token, so an instant fires once across failovers. Left
   * out (one box): every instant is this process's.
   */
  claim?: (automation: string, instant: number) => Promise<boolean>;
}

/** What the HTTP API needs of automations: the engine on one box, a remote view in an api replica. */
export interface AutomationsApi {
  list(): Promise<AutomationView[]>;
  view(id: string): Promise<AutomationView | undefined>;
  runs(id: string, limit?: number): Promise<AutomationRun[]>;
  /** Runs it now (the run button, a webhook); the run goes on by itself. */
  trigger(id: string, trigger?: string): Promise<Launched>;
}

/** An automation as the API shows it: src/contract/views.ts. */
export type { AutomationView };

/** What a trigger came to: the run as recorded, and whether the automation's mode refused it. */
export interface Launched {
  run: AutomationRun;
  /** True when the run was skipped because the automation was already running (its mode). */
  busy: boolean;
}

/** One run of an automation under way or waiting its turn. */
interface Slot {
  /** Aborted to cancel this run (mode: restart). */
  readonly abort: AbortController;
  /** Resolves when a queued run may start. */
  readonly turn: Promise<void>;
  readonly begin: () => void;
}

/** The runs of one automation: at most `max` in all, whatever the trigger rate. */
interface Slots {
  active: Set<Slot>;
  /** mode: queued only. */
  waiting: Slot[];
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
export class AutomationEngine implements AutomationsApi {
  readonly #opts: EngineOptions;
  readonly #byId: Map<string, AutomationConfig>;
  readonly #schedules = new Map<string, Schedule[]>();
  readonly #stopping = new AbortController();
  readonly #running = new Set<Promise<unknown>>();
  readonly #slots = new Map<string, Slots>();

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.#byId = new Map(opts.automations.map((a) => [a.id, a]));
    // Paused croner objects only compute times; nothing runs until start(). An engine that is
    // never started (an api replica's) still answers views with the next run.
    for (const a of opts.automations) {
      const schedules: Schedule[] = [];
      for (const t of a.triggers) {
        const expr = 'cron' in t ? t.cron : 'at' in t ? atToCron(t.at) : undefined;
        if (!expr) continue;
        const cron = new Cron(expr, { timezone: opts.timezone, paused: true });
        schedules.push({ trigger: describeTrigger(t), cron, last: 0 });
      }
      if (schedules.length > 0) this.#schedules.set(a.id, schedules);
    }
  }

  async start(): Promise<void> {
    const bus = this.#opts.runtime.events;
    bus.on('entity.state', (e) => this.#onState(e), 'automations');
    bus.on('entity.event', (e) => this.#onEntityEvent(e), 'automations');
    for (const a of this.#opts.automations) {
      const schedules = this.#schedules.get(a.id);
      if (!schedules) continue;
      await this.#catchUp(a, schedules);
      for (const s of schedules) this.#arm(a, s);
    }
  }

  /** Runs a scheduled instant once it is claimed (always, on one box). */
  async #fireInstant(a: AutomationConfig, trigger: string, instant: number): Promise<void> {
    const { claim, log } = this.#opts;
    if (claim) {
      let mine: boolean;
      try {
        mine = await claim(a.id, instant);
      } catch (err) {
        // Unclaimed is unrun: a double chime is worse than a missed one, which the next
        // leader's missed-run policy accounts for.
        log.warn(
          { automation: a.id, instant, err: reasonOf(err) },
          'could not claim a scheduled instant; not run',
        );
        return;
      }
      if (!mine) {
        log.debug({ automation: a.id, instant }, 'scheduled instant already claimed; not run here');
        return;
      }
    }
    await this.#launch(a, trigger);
  }

  /** Stops scheduling, cuts delays short and waits for runs in progress to end. */
  async stop(): Promise<void> {
    this.#stopping.abort(new HearthError('HEARTH_ERR_NOT_READY', 'hearth is stopping'));
    this.#opts.runtime.events.offOwner('automations');
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
    const slots = this.#slots.get(id);
    return {
      id,
      name: a.name ?? id,
      triggers: a.triggers.map(describeTrigger),
      mode: a.mode,
      max: a.mode === 'queued' || a.mode === 'parallel' ? (a.max ?? defaultMaxRuns) : null,
      running: slots?.active.size ?? 0,
      queued: slots?.waiting.length ?? 0,
      nextRunAt: next === undefined ? null : new Date(next).toISOString(),
      lastRun: lastRun ?? null,
    };
  }

  async runs(id: string, limit = 50): Promise<AutomationRun[]> {
    if (!this.#byId.has(id)) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return this.#opts.store.runs(id, limit);
  }

  /**
   * Triggers a run now (a webhook, or the API's run button), under the automation's mode;
   * resolves with the run as recorded once it has started, is waiting (queued), or was skipped.
   * The run goes on by itself: an automation with delays takes minutes.
   */
  async trigger(id: string, trigger = 'webhook'): Promise<Launched> {
    const a = this.#byId.get(id);
    if (!a) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return this.#launch(a, trigger);
  }

  /**
   * Conditions are checked when the trigger comes (as in Home Assistant), then the mode decides:
   * run now, wait, cancel the run under way, or skip. Everything up to taking a slot is
   * synchronous, so two triggers at once cannot both take the last slot.
   */
  async #launch(a: AutomationConfig, trigger: string): Promise<Launched> {
    const { store, clock, log } = this.#opts;
    const unmet = this.#unmetOf(a);
    if (unmet) {
      log.debug({ automation: a.id, trigger, reason: unmet }, 'automation skipped: a condition is not met');
      const run = await store.record(a.id, trigger, clock.now(), 'skipped', unmet);
      this.#ended(a.id, 'skipped');
      return { run, busy: false };
    }
    let slots = this.#slots.get(a.id);
    if (!slots) {
      slots = { active: new Set(), waiting: [] };
      this.#slots.set(a.id, slots);
    }
    const busy = busyReason(a, slots);
    if (busy) {
      log.debug({ automation: a.id, trigger, reason: busy }, 'automation skipped: already running');
      const run = await store.record(a.id, trigger, clock.now(), 'skipped', busy);
      this.#ended(a.id, 'skipped');
      return { run, busy: true };
    }
    if (a.mode === 'restart') {
      for (const other of slots.active) other.abort.abort(new Error(`restarted by ${trigger}`));
    }
    let begin!: () => void;
    const turn = new Promise<void>((resolve) => {
      begin = resolve;
    });
    const slot: Slot = { abort: new AbortController(), turn, begin };
    const queued = a.mode === 'queued' && slots.active.size > 0;
    if (queued) slots.waiting.push(slot);
    else slots.active.add(slot);

    const startedAt = clock.now();
    let id: number;
    try {
      id = await store.start(a.id, trigger, startedAt, queued ? 'queued' : 'running');
    } catch (err) {
      this.#release(a, slots, slot);
      log.error({ automation: a.id, err: reasonOf(err) }, 'automation run could not be recorded');
      throw err;
    }
    const run: AutomationRun = {
      id,
      automation: a.id,
      trigger,
      startedAt,
      endedAt: null,
      outcome: queued ? 'queued' : 'running',
      error: null,
    };
    const done = this.#runInSlot(a, slots, slot, run, queued)
      .catch((err) => {
        log.error({ automation: a.id, err: reasonOf(err) }, 'automation run could not be recorded');
      })
      .finally(() => this.#running.delete(done));
    this.#running.add(done);
    return { run: { ...run }, busy: false };
  }

  async #runInSlot(
    a: AutomationConfig,
    slots: Slots,
    slot: Slot,
    run: AutomationRun,
    queued: boolean,
  ): Promise<void> {
    const signal = AbortSignal.any([this.#stopping.signal, slot.abort.signal]);
    try {
      if (queued) {
        try {
          await untilAborted(slot.turn, signal);
        } catch {
          await this.#opts.store.finish(run.id, 'cancelled', this.#opts.clock.now(), reasonOf(signal.reason));
          this.#ended(a.id, 'cancelled');
          return;
        }
        await this.#opts.store.begin(run.id, this.#opts.clock.now());
      }
      await this.#perform(a, run.id, run.trigger, 0, signal);
    } finally {
      this.#release(a, slots, slot);
    }
  }

  /** Tells the bus (metrics) how a run ended, once it is recorded. */
  #ended(automation: string, outcome: BusEvents['automation.run']['outcome']): void {
    this.#opts.runtime.events.emit('automation.run', { automation, outcome, at: this.#opts.clock.now() });
  }

  /** Frees a run's slot and starts the next queued run, if any. */
  #release(a: AutomationConfig, slots: Slots, slot: Slot): void {
    slots.active.delete(slot);
    const waiting = slots.waiting.indexOf(slot);
    if (waiting >= 0) slots.waiting.splice(waiting, 1);
    if (a.mode !== 'queued' || slots.active.size > 0 || this.#stopping.signal.aborted) return;
    const next = slots.waiting.shift();
    if (!next) return;
    slots.active.add(next);
    next.begin();
  }

  /**
   * Runs the actions of a run already recorded, and records how it ended. An abort (a restart,
   * hearth stopping) lets the action under way finish and runs no more: `cancelled`.
   */
  async #perform(
    a: AutomationConfig,
    id: number,
    trigger: string,
    depth: number,
    signal: AbortSignal,
  ): Promise<AutomationRun['outcome']> {
    const { store, clock, log } = this.#opts;
    try {
      for (const action of a.actions) {
        signal.throwIfAborted();
        await this.#act(a, action, depth, signal);
      }
      await store.finish(id, 'ok', clock.now(), null);
      this.#ended(a.id, 'ok');
      return 'ok';
    } catch (err) {
      if (signal.aborted) {
        const reason = reasonOf(signal.reason);
        await store.finish(id, 'cancelled', clock.now(), reason);
        this.#ended(a.id, 'cancelled');
        log.info({ automation: a.id, trigger, reason }, 'automation run cancelled');
        return 'cancelled';
      }
      const reason = reasonOf(err);
      await store.finish(id, 'failed', clock.now(), reason);
      this.#ended(a.id, 'failed');
      log.warn({ automation: a.id, trigger, err: reason }, 'automation failed');
      return 'failed';
    }
  }

  async #act(a: AutomationConfig, action: Action, depth: number, signal: AbortSignal): Promise<void> {
    if ('delay' in action) return this.#sleep(durationMs(action.delay), signal);
    if ('automation' in action) {
      const target = this.#byId.get(action.automation);
      if (!target)
        throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${action.automation}"`);
      if (depth >= MAX_NESTING) throw new Error(`automations call each other more than ${MAX_NESTING} deep`);
      // Part of this run, outside the target's mode: a queued target waiting for the run that
      // calls it would wait forever.
      const trigger = `automation ${a.id}`;
      const unmet = this.#unmetOf(target);
      if (unmet) {
        await this.#opts.store.record(target.id, trigger, this.#opts.clock.now(), 'skipped', unmet);
        this.#ended(target.id, 'skipped');
        return;
      }
      const id = await this.#opts.store.start(target.id, trigger, this.#opts.clock.now());
      const outcome = await this.#perform(target, id, trigger, depth + 1, signal);
      if (outcome === 'failed') throw new Error(`automation ${target.id} failed`);
      signal.throwIfAborted();
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
          await httpAction(action.http, signal);
        }
        return;
      } catch (err) {
        if (attempt >= retry.attempts || signal.aborted) throw err;
        this.#opts.log.info(
          { automation: a.id, attempt, of: retry.attempts, err: reasonOf(err) },
          'automation action failed; retrying',
        );
        await this.#sleep(retry.delaySeconds * 1000, signal);
      }
    }
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
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

  /** Null if every condition of `a` holds, else why not. */
  #unmetOf(a: AutomationConfig): string | null {
    for (const c of a.conditions) {
      const why = this.#unmet(c);
      if (why !== null) return why;
    }
    return null;
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
        this.#soon(a, describeTrigger(t));
      }
    }
  }

  /**
   * Launches after the emitter's work is done: a trigger's run record is a store write, and a
   * button's `200` (or an agent's reply) must not wait for the records of what it triggers.
   */
  #soon(a: AutomationConfig, trigger: string): void {
    setImmediate(() => {
      // A trigger that came in just before stop() is dropped: this process no longer runs automations.
      if (this.#stopping.signal.aborted) return;
      void this.#launch(a, trigger).catch(() => {});
    });
  }

  #onEntityEvent(e: BusEvents['entity.event']): void {
    for (const a of this.#opts.automations) {
      for (const t of a.triggers) {
        if (!('calendar' in t) || t.calendar !== e.id || t.on !== e.event) continue;
        const summary = typeof e.data.summary === 'string' ? e.data.summary : '';
        if (t.summary !== undefined && !summaryMatches(t.summary, summary)) continue;
        this.#soon(a, `${describeTrigger(t)}: ${summary}`);
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
      void this.#fireInstant(a, `missed ${which} at ${at}`, latest).catch(() => {});
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
    await store.record(
      a.id,
      `missed ${which} at ${at}`,
      now,
      'skipped',
      `${count} run(s) missed while hearth was down, the latest at ${at}; ${why}`,
    );
    this.#ended(a.id, 'skipped');
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
          void this.#fireInstant(a, s.trigger, next).catch(() => {});
        }
        this.#arm(a, s);
      },
      Math.min(Math.max(0, next - now), MAX_WAIT_MS),
    );
    s.timer.unref?.();
  }
}

/** Why the automation's mode refuses one more run now, or null if it takes it. */
function busyReason(a: AutomationConfig, slots: Slots): string | null {
  const max = a.max ?? defaultMaxRuns;
  switch (a.mode) {
    case 'single':
      return slots.active.size > 0 ? 'already running (mode: single)' : null;
    case 'restart':
      return null;
    case 'queued':
      return slots.active.size + slots.waiting.length >= max
        ? `already running or waiting ${max} times (mode: queued, max: ${max})`
        : null;
    case 'parallel':
      return slots.active.size >= max ? `already running ${max} times (mode: parallel, max: ${max})` : null;
  }
}

/** Resolves with `p`, or rejects with the signal's reason once it aborts. */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
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
    // A fetch error may quote the URL; whatever it quotes loses its credentials.
    throw new Error(`HTTP ${h.method} to ${where} failed: ${redactText(reasonOf(err))}`);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`HTTP ${h.method} to ${where} answered ${res.status}`);
}
