/**
 * One coffee pot: the serial loop that keeps its heater on only while hearth is sure of it.
 * The rules it keeps are listed at the top of index.ts; each is marked here with [rule n].
 *
 * Everything the pot is told goes through one loop (#tick), one exchange at a time: commands
 * and faults only change what the loop wants (brewing or not) and wake it, so no two parts of
 * the driver ever race to write to the port. Timers here are real time on purpose: the
 * firmware's 1 s window is real time, whatever clock the runtime is given.
 */
import type { CallContext, DriverContext, EntityHandle } from '../../core/driver.js';
import { reasonOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { LinePort } from '../../transport/line-port.js';
import { type CoffeeConfig, coffeeEntityIds } from './config.js';
import {
  type Command,
  HEATER_DEADMAN_MS,
  isBanner,
  parseStatus,
  type Status,
  temperatureProblem,
  waterProblem,
} from './protocol.js';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Brew {
  /** Epoch ms when the brew ends. */
  until: number;
  timer: NodeJS.Timeout;
  /** The pot has answered a B+1 of this brew with B+1. */
  confirmed: boolean;
  /** performance.now() when the last B+1 of this brew went out. */
  lastSent?: number;
  /** Brew commands waiting for that answer. */
  waiters: Waiter[];
}

/**
 * Where the pot is, as one value: every flag that used to say it is a field of one phase, and
 * every change of phase goes through CoffeePot.#to, which checks it against NEXT.
 *
 * - connecting: the port is not open (or was lost); `reason` says why. No command is sent.
 * - securing:   the port is open; B+0 goes out until the pot answers it with B+0 [rule 1, 8].
 * - idle:       the pot confirmed B+0; `S+?` every pollMs [rule 5].
 * - turning-off: hearth wants the heater off and the pot has not confirmed B+0 yet [rule 6].
 * - brewing:    B+1 every heartbeatMs until the brew ends [rule 2, 4, 7, 10].
 * - stopped:    Running.stop was called: nothing but the final B+0 is sent [rule 3].
 */
type Phase =
  | { name: 'connecting'; reason: string }
  | { name: 'securing'; reason: string }
  | { name: 'idle' }
  | { name: 'turning-off' }
  | { name: 'brewing'; brew: Brew }
  | { name: 'stopped' };

export type PhaseName = Phase['name'];

/**
 * The transitions there are. Only idle and turning-off lead to brewing, so a brew starts only
 * after the pot has confirmed B+0 since the port opened [rule 1]; nothing leaves stopped.
 */
export const NEXT: Readonly<Record<PhaseName, readonly PhaseName[]>> = {
  connecting: ['connecting', 'securing', 'stopped'],
  securing: ['securing', 'connecting', 'idle', 'stopped'],
  idle: ['turning-off', 'brewing', 'securing', 'connecting', 'stopped'],
  'turning-off': ['idle', 'brewing', 'securing', 'connecting', 'stopped'],
  brewing: ['turning-off', 'securing', 'connecting', 'stopped'],
  stopped: [],
};

/** Entering these needs a command at once: B+1 for a brew, B+0 otherwise. */
const URGENT: ReadonlySet<PhaseName> = new Set(['securing', 'turning-off', 'brewing']);

const clip = (line: string) => JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line);

export class CoffeePot {
  readonly #config: CoffeeConfig;
  readonly #log: Logger;
  readonly #port: LinePort;
  readonly #heater: EntityHandle<'heater'>;
  readonly #water: EntityHandle<'sensor'>;
  readonly #temperature: EntityHandle<'sensor'>;
  readonly #lastStatus: EntityHandle<'sensor'>;
  #phase: Phase;
  #stopping: Promise<void> | undefined;
  /** Stop commands waiting for a B+0 answered B+0. */
  #offWaiters: Waiter[] = [];
  /** The loop: its next run, whether an exchange is on the wire, and whether to run again at once after it. */
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #again = false;
  /**
   * Doubts, beside the phase: why hearth does not trust the pot now (logged when it starts and
   * ends); what was wrong with the sensors in the last status; why the last exchange failed.
   * While either of the last two is set, no brew starts [rule 6].
   */
  #trouble: string | undefined;
  #sensorFault: string | undefined;
  #notAnswering: string | undefined;

  constructor(ctx: DriverContext, config: CoffeeConfig) {
    this.#config = config;
    this.#log = ctx.log;
    const ids = coffeeEntityIds(config.id);
    this.#heater = ctx.entities.bind(ids.heater, 'heater', {
      brew: (args, call) => this.brew(args.minutes, call),
      stop: (_args, call) => this.stop(call),
    });
    this.#water = ctx.entities.bind(ids.water, 'sensor', {});
    this.#temperature = ctx.entities.bind(ids.temperature, 'sensor', {});
    this.#lastStatus = ctx.entities.bind(ids.lastStatus, 'sensor', {});
    this.#phase = { name: 'connecting', reason: `connecting to ${config.path}` };
    this.#setUnavailable(this.#phase.reason);

    this.#port = new LinePort({
      path: config.path,
      baudRate: config.baudRate,
      eol: '\n',
      settleMs: config.settleMs,
      log: ctx.log,
    });
    // A throw inside a port event would escape into serialport and end the process: guard them.
    this.#port.on('open', () => this.#guard(() => this.#onOpen()));
    this.#port.on('close', (reason) => this.#guard(() => this.#onClose(reason)));
    this.#port.on('line', (line) => this.#guard(() => this.#onStray(line)));
    this.#port.on('garbage', (what) => this.#guard(() => this.#onStray(undefined, what)));
  }

  /** Starts opening the port; does not wait for it (an unplugged pot must not block start). */
  start(): void {
    this.#port.start();
  }

  /** The `brew` command: resolves once the pot has answered B+1 with B+1. */
  async brew(minutes: number | undefined, { signal }: CallContext): Promise<'on'> {
    this.#refuseUnlessReady();
    // [rule 6] Not even one B+1 on a pot whose last status could not be trusted.
    if (this.#sensorFault) throw new Error(`the coffee pot cannot brew: ${this.#sensorFault}`);
    if (this.#notAnswering) throw new Error(`the coffee pot cannot brew: ${this.#notAnswering}`);
    const max = this.#config.maxBrewMinutes;
    const until = Date.now() + Math.min(minutes ?? max, max) * 60_000;
    let brew: Brew;
    if (this.#phase.name === 'brewing') {
      // A second brew sets a new end; the heater is already being kept on.
      brew = this.#phase.brew;
      clearTimeout(brew.timer);
      brew.until = until;
      brew.timer = this.#brewTimer(brew);
    } else {
      brew = { until, confirmed: false, waiters: [], timer: undefined as unknown as NodeJS.Timeout };
      brew.timer = this.#brewTimer(brew);
      this.#to({ name: 'brewing', brew });
    }
    this.#heater.setAttributes({ until: new Date(until).toISOString() });
    if (brew.confirmed) return 'on';
    const b = brew;
    await this.#wait(b.waiters, signal, () => {
      // [rule 7] The caller has been told it failed: the brew must not start late.
      if (this.#brewOf() === b && !b.confirmed) this.#endBrew('the pot did not confirm B+1 in time', 'warn');
    });
    return 'on';
  }

  /** The `stop` command: ends any brew, sends B+0 and resolves once the pot answers B+0. */
  async stop({ signal }: CallContext): Promise<'off'> {
    this.#refuseUnlessConnected();
    if (this.#phase.name === 'brewing') this.#endBrew('stop command', 'info');
    else if (this.#phase.name === 'idle') this.#to({ name: 'turning-off' });
    const waiting = this.#wait(this.#offWaiters, signal);
    this.#kick();
    await waiting;
    return 'off';
  }

  /** [rule 3] Running.stop: no more B+1; B+0 and its answer (bounded); then the port closes. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#timer);
      this.#to({ name: 'stopped' }, { reason: 'hearth is stopping', level: 'info' });
      this.#rejectAll(this.#offWaiters, 'hearth is stopping');
      if (this.#port.ready) {
        let confirmed = false;
        // Queued behind at most one exchange on the wire; two tries at most.
        for (let attempt = 0; attempt < 2 && !confirmed && this.#port.ready; attempt++) {
          try {
            const line = await this.#port.request('B+0', {
              timeoutMs: this.#config.timeoutMs,
              accept: () => true,
            });
            confirmed = parseStatus(line)?.heater === false;
          } catch {
            // Tried again below, or left to the firmware.
          }
        }
        if (confirmed) this.#heater.setState('off');
        else {
          this.#log.warn(
            { id: this.#config.id },
            "B+0 at shutdown was not confirmed; the firmware's own rule turns the heater off 1 s after the last B+1",
          );
        }
      }
      await this.#port.close();
    })();
    return this.#stopping;
  }

  // ---- the loop ------------------------------------------------------------------------------

  /** Wakes the loop now (or right after the exchange on the wire). */
  #kick(): void {
    if (!this.#live()) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
  }

  /** The loop may talk to the pot: not stopped, and the port open. */
  #live(): boolean {
    return this.#phase.name !== 'stopped' && this.#port.ready;
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#tick().catch((err: unknown) => {
          // A bug, not a device fault; still, the heater goes off and the loop goes on.
          this.#busy = false;
          this.#loseConfidence(`internal error: ${reasonOf(err)}`);
          this.#schedule(this.#config.heartbeatMs);
        });
      },
      Math.max(0, delayMs),
    );
  }

  async #tick(): Promise<void> {
    if (!this.#live() || this.#busy) return;
    // [rule 4] The brew ends at its time even if its timer is late.
    const due = this.#brewOf();
    if (due && Date.now() >= due.until) this.#endBrew('the brew time is up', 'info');
    // [rule 10] A gap of a whole heater window since the last B+1 means hearth was stalled
    // (paused, swapped out, a frozen event loop): the firmware has turned the heater off, and
    // nobody asked for it to come back on after a pause. The brew ends; it is never resumed.
    const lastSent = this.#brewOf()?.lastSent;
    const gap = lastSent === undefined ? 0 : performance.now() - lastSent;
    if (gap >= HEATER_DEADMAN_MS) {
      this.#endBrew(
        `hearth was stalled for ${Math.round(gap)} ms while brewing; a brew is never resumed after a gap`,
        'warn',
      );
    }
    // [rule 1, 2, 5] B+1 only while brewing; B+0 until the pot confirms it; else a status poll.
    const phase = this.#phase.name;
    const brew = this.#brewOf();
    const command: Command = brew ? 'B+1' : phase !== 'idle' || this.#offWaiters.length > 0 ? 'B+0' : 'S+?';
    const started = performance.now();
    if (brew) brew.lastSent = started;
    this.#busy = true;
    this.#again = false;
    try {
      await this.#exchange(command);
    } finally {
      this.#busy = false;
    }
    if (!this.#live()) return;
    const { heartbeatMs, pollMs } = this.#config;
    let delay: number;
    if (this.#again) delay = 0;
    // [rule 2] The next B+1 goes heartbeatMs after the last one was sent, not after its answer.
    else if (this.#phase.name === 'brewing') delay = started + heartbeatMs - performance.now();
    // B+0 not confirmed yet: try again soon, but not in a tight loop.
    else if (this.#phase.name !== 'idle') delay = heartbeatMs;
    // [rule 5] Idle: a poll every pollMs keeps the firmware from rebooting.
    else delay = started + pollMs - performance.now();
    this.#schedule(delay);
  }

  /** One command and its answer, judged. */
  async #exchange(command: Command): Promise<void> {
    let line: string;
    try {
      // Any line answers: a banner or noise in its place is a fault, not something to skip.
      line = await this.#port.request(command, { timeoutMs: this.#config.timeoutMs, accept: () => true });
    } catch (err) {
      // [rule 6] A timeout, a failed write, the port closing.
      this.#failed(reasonOf(err));
      return;
    }
    if (isBanner(line)) {
      // [rule 6] The firmware rebooted: whatever hearth thought it knew is stale.
      this.#failed(`the pot rebooted: it answered ${command} with its boot banner`);
      return;
    }
    const status = parseStatus(line);
    if (!status) {
      // [rule 6] Garbage, half a line, two lines run together.
      this.#failed(`the pot answered ${command} with a line that is not a status: ${clip(line)}`);
      return;
    }
    this.#onStatus(command, status);
  }

  #onStatus(command: Command, s: Status): void {
    this.#notAnswering = undefined;
    this.#lastStatus.setState(new Date().toISOString());
    this.#lastStatus.setAvailable();
    this.#heater.setState(s.heater ? 'on' : 'off');
    this.#heater.setAvailable();
    const tProblem = temperatureProblem(s.temperatureC);
    this.#sensor(this.#temperature, s.temperatureC, tProblem);
    const wProblem = waterProblem(s.waterIn);
    this.#sensor(this.#water, s.waterIn, wProblem);

    const sensorProblems = [tProblem, wProblem].filter((p) => p !== undefined);
    this.#sensorFault = sensorProblems.length > 0 ? sensorProblems.join('; ') : undefined;
    const problems = [...sensorProblems];
    // [rule 6] B must say what was asked.
    if (command === 'B+1' && !s.heater) problems.push('asked for B+1, the pot answered B+0');
    if (command === 'B+0' && s.heater) problems.push('asked for B+0, the pot answered B+1');
    // [rule 5] A heater on that hearth did not ask for.
    if (command === 'S+?' && s.heater && this.#phase.name !== 'brewing')
      problems.push('the heater is on while hearth is not brewing');
    const problem = problems.length > 0 ? problems.join('; ') : undefined;

    if (s.heater) {
      const brew = this.#brewOf();
      if (brew && !problem && !brew.confirmed) {
        brew.confirmed = true;
        this.#log.info({ id: this.#config.id, until: new Date(brew.until).toISOString() }, 'brew started');
        this.#resolveAll(brew.waiters);
      }
    } else if (command === 'B+0') {
      // A brew asked for while this B+0 was on the wire stays: its B+1 goes next.
      if (this.#phase.name === 'securing' || this.#phase.name === 'turning-off') this.#to({ name: 'idle' });
      this.#resolveAll(this.#offWaiters);
    }

    if (problem) this.#loseConfidence(problem, !s.heater);
    else if (this.#trouble !== undefined) {
      this.#trouble = undefined;
      this.#log.info({ id: this.#config.id }, 'coffee pot answers normally again');
    }
  }

  #sensor(entity: EntityHandle<'sensor'>, value: number, problem: string | undefined): void {
    if (problem) entity.setUnavailable(problem);
    else {
      entity.setState(value);
      entity.setAvailable();
    }
  }

  /** An exchange failed: heater off, entities unavailable until a good status. */
  #failed(reason: string): void {
    this.#notAnswering = reason;
    this.#loseConfidence(reason);
    this.#rejectAll(this.#offWaiters, reason);
    // A closed port has said so already, with its own reason.
    if (this.#port.ready) this.#setUnavailable(reason);
  }

  /**
   * [rule 6] Lose confidence, heater off: the brew ends and B+0 goes out until it is answered.
   * `heaterOff`: the very status that showed the fault also showed B+0 (a sensor fault while
   * idle), so no B+0 is needed for it.
   */
  #loseConfidence(reason: string, heaterOff = false): void {
    if (this.#trouble === undefined)
      this.#log.warn({ id: this.#config.id, reason }, 'coffee pot: lost confidence, heater off');
    this.#trouble = reason;
    // Ends a brew and wakes the loop for B+0 at once.
    this.#endBrew(reason, 'warn');
    // B+0 at once if hearth thought the heater was off; if it was already waiting for a B+0
    // answer, the loop's retry pace stands, so a pot that answers garbage is not flooded.
    if (!heaterOff && this.#phase.name === 'idle') this.#to({ name: 'turning-off' });
  }

  /** Ends a brew, if one runs: heater off wanted, B+0 at once. */
  #endBrew(reason: string, level: 'info' | 'warn'): void {
    if (this.#phase.name === 'brewing') this.#to({ name: 'turning-off' }, { reason, level });
  }

  #brewOf(): Brew | undefined {
    return this.#phase.name === 'brewing' ? this.#phase.brew : undefined;
  }

  /**
   * Every change of phase, and what leaving or entering one does. `ending` says why a brew
   * that is running ends, for the log and for the commands waiting on it.
   */
  #to(next: Phase, ending?: { reason: string; level: 'info' | 'warn' }): void {
    const from = this.#phase;
    if (!NEXT[from.name].includes(next.name)) {
      throw new Error(`coffee pot ${this.#config.id}: no transition from ${from.name} to ${next.name}`);
    }
    this.#phase = next;
    if (from.name === 'brewing') {
      const { brew } = from;
      const reason = ending?.reason ?? 'the brew ended';
      clearTimeout(brew.timer);
      this.#heater.setAttributes({ until: null });
      if (brew.confirmed) this.#log[ending?.level ?? 'info']({ id: this.#config.id, reason }, 'brew ended');
      this.#rejectAll(brew.waiters, reason);
    }
    if (from.name === 'securing' && next.name === 'idle') {
      this.#log.info({ id: this.#config.id, path: this.#config.path }, 'coffee pot ready, heater off');
    }
    if (URGENT.has(next.name)) this.#kick();
  }

  #brewTimer(brew: Brew): NodeJS.Timeout {
    // [rule 4] The brew's own end; setTimeout caps at 2^31-1 ms, far above maxBrewMinutes.
    return setTimeout(
      () => this.#guard(() => this.#brewOf() === brew && this.#endBrew('the brew time is up', 'info')),
      Math.max(0, brew.until - Date.now()),
    );
  }

  // ---- port events ---------------------------------------------------------------------------

  #onOpen(): void {
    // [rule 1, 8] Whatever the pot was doing, the first word after the port settles is B+0.
    if (this.#phase.name === 'stopped') return;
    this.#to(
      { name: 'securing', reason: `waiting for the pot at ${this.#config.path} to confirm B+0` },
      { reason: 'the serial port reopened', level: 'warn' },
    );
  }

  #onClose(reason: string): void {
    // [rule 8] Never resumed: after a reconnect the pot starts with B+0 and waits for a command.
    const why = `serial port ${this.#config.path}: ${reason}`;
    this.#sensorFault = undefined;
    this.#notAnswering = undefined;
    clearTimeout(this.#timer);
    if (this.#phase.name !== 'stopped')
      this.#to({ name: 'connecting', reason: why }, { reason: why, level: 'warn' });
    this.#rejectAll(this.#offWaiters, why);
    this.#setUnavailable(why);
  }

  /** A line nobody asked for, or input that is not a line. */
  #onStray(line: string | undefined, what?: string): void {
    // Before the first B+0 is confirmed, noise is the board booting (opening the port resets it).
    const { name } = this.#phase;
    if (name === 'connecting' || name === 'securing' || name === 'stopped') return;
    if (line !== undefined && isBanner(line)) {
      // [rule 6] It rebooted by itself (its 5 s watchdog, a brown-out).
      this.#loseConfidence('the pot rebooted: it sent its boot banner unasked');
    } else {
      this.#loseConfidence(
        line === undefined ? `the pot sent ${what}` : `the pot sent a line nobody asked for: ${clip(line)}`,
      );
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  #refuseUnlessConnected(): void {
    if (this.#phase.name === 'stopped') throw new Error('the coffee pot driver is stopping');
    if (!this.#port.ready) {
      throw new Error(
        `the coffee pot is not connected (${this.#notReady()}); hearth sends it no B+1, so its firmware keeps the heater off`,
      );
    }
  }

  #refuseUnlessReady(): void {
    this.#refuseUnlessConnected();
    const { name } = this.#phase;
    if (name === 'connecting' || name === 'securing') {
      throw new Error(`the coffee pot is not ready (${this.#notReady()})`);
    }
  }

  /** Why commands are refused now, for the message. */
  #notReady(): string {
    const p = this.#phase;
    // Otherwise the port is going away and its close event, with the reason, is on its way.
    return p.name === 'connecting' || p.name === 'securing' ? p.reason : 'the serial port is closing';
  }

  /** Waits until a waiter in `list` is settled; on abort, leaves the list and runs `onAbort`. */
  #wait(list: Waiter[], signal: AbortSignal, onAbort?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbortSignal = () => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        onAbort?.();
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbortSignal);
          resolve();
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbortSignal);
          reject(err);
        },
      };
      if (signal.aborted) {
        onAbortSignal();
        return;
      }
      signal.addEventListener('abort', onAbortSignal, { once: true });
      list.push(waiter);
    });
  }

  #resolveAll(list: Waiter[]): void {
    for (const w of list.splice(0)) w.resolve();
  }

  #rejectAll(list: Waiter[], reason: string): void {
    const err = new Error(reason);
    for (const w of list.splice(0)) w.reject(err);
  }

  #setUnavailable(reason: string): void {
    for (const e of [this.#heater, this.#water, this.#temperature, this.#lastStatus])
      e.setUnavailable(reason);
  }

  #guard(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ id: this.#config.id, err: reasonOf(err) }, 'coffee pot event handler failed');
      try {
        this.#loseConfidence(`internal error: ${reasonOf(err)}`);
      } catch {
        // Nothing more to do; the firmware's rule turns the heater off.
      }
    }
  }
}
