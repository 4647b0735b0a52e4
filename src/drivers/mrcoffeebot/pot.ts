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
import { type CoffeeConfig, coffeeEntityIds } from './index.js';
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
 * How long a command may take: one exchange already on the wire, then its own. Doubled, so
 * a `stop` queued behind a `brew` (which settles within two exchanges, one way or the other)
 * still runs instead of expiring in the queue.
 */
export function commandTimeoutMs(config: Pick<CoffeeConfig, 'timeoutMs'>): number {
  return 4 * config.timeoutMs + 250;
}

const clip = (line: string) => JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line);

export class CoffeePot {
  readonly #config: CoffeeConfig;
  readonly #log: Logger;
  readonly #port: LinePort;
  readonly #heater: EntityHandle<'heater'>;
  readonly #water: EntityHandle<'sensor'>;
  readonly #temperature: EntityHandle<'sensor'>;
  readonly #lastStatus: EntityHandle<'sensor'>;
  /** Running.stop was called: nothing but the final B+0 is sent. */
  #stopped = false;
  #stopping: Promise<void> | undefined;
  /** The port is open and the pot has confirmed B+0 since it opened: brews may start. */
  #ready = false;
  /** Why the pot is not ready, for the message of a refused command. */
  #notReady: string;
  #brew: Brew | undefined;
  /** The last B+0 was answered B+0 and nothing since says the heater is on. */
  #offConfirmed = false;
  /** Stop commands waiting for a B+0 answered B+0. */
  #offWaiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** An exchange of the loop is on the wire. */
  #busy = false;
  /** Something changed during that exchange: run the loop again at once after it. */
  #again = false;
  /** Why hearth does not trust the pot now; logged when it starts and when it ends. */
  #trouble: string | undefined;
  /** What was wrong with the sensors in the last status; no brew starts while there is something. */
  #sensorFault: string | undefined;
  /** Why the last exchange failed; no brew starts until the pot answers well again. */
  #notAnswering: string | undefined;

  constructor(ctx: DriverContext, config: CoffeeConfig) {
    this.#config = config;
    this.#log = ctx.log;
    const ids = coffeeEntityIds(config.id);
    const spec = { timeoutMs: commandTimeoutMs(config), pollMs: 0 };
    this.#heater = ctx.entities.add(
      {
        ...spec,
        id: ids.heater,
        kind: 'heater',
        name: config.name,
        attributes: { maxBrewMinutes: config.maxBrewMinutes },
      },
      {
        brew: (args, call) => this.brew(args.minutes, call),
        stop: (_args, call) => this.stop(call),
      },
    );
    this.#water = ctx.entities.add(
      { ...spec, id: ids.water, kind: 'sensor', name: `${config.name} water`, attributes: { unit: 'in' } },
      {},
    );
    this.#temperature = ctx.entities.add(
      {
        ...spec,
        id: ids.temperature,
        kind: 'sensor',
        name: `${config.name} temperature`,
        attributes: { unit: '°C' },
      },
      {},
    );
    this.#lastStatus = ctx.entities.add(
      { ...spec, id: ids.lastStatus, kind: 'sensor', name: `${config.name} last status` },
      {},
    );
    this.#notReady = `connecting to ${config.path}`;
    this.#setUnavailable(this.#notReady);

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
    let brew = this.#brew;
    if (brew) {
      // A second brew sets a new end; the heater is already being kept on.
      clearTimeout(brew.timer);
      brew.until = until;
      brew.timer = this.#brewTimer(brew);
    } else {
      brew = { until, confirmed: false, waiters: [], timer: undefined as unknown as NodeJS.Timeout };
      brew.timer = this.#brewTimer(brew);
      this.#brew = brew;
      this.#kick();
    }
    this.#heater.setAttributes({ until: new Date(until).toISOString() });
    if (brew.confirmed) return 'on';
    const b = brew;
    await this.#wait(b.waiters, signal, () => {
      // [rule 7] The caller has been told it failed: the brew must not start late.
      if (this.#brew === b && !b.confirmed) this.#endBrew('the pot did not confirm B+1 in time', 'warn');
    });
    return 'on';
  }

  /** The `stop` command: ends any brew, sends B+0 and resolves once the pot answers B+0. */
  async stop({ signal }: CallContext): Promise<'off'> {
    this.#refuseUnlessConnected();
    this.#endBrew('stop command', 'info');
    this.#offConfirmed = false;
    const waiting = this.#wait(this.#offWaiters, signal);
    this.#kick();
    await waiting;
    return 'off';
  }

  /** [rule 3] Running.stop: no more B+1; B+0 and its answer (bounded); then the port closes. */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      clearTimeout(this.#timer);
      this.#endBrew('hearth is stopping', 'info');
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
    if (this.#stopped || !this.#port.ready) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#schedule(0);
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
    if (this.#stopped || !this.#port.ready || this.#busy) return;
    // [rule 4] The brew ends at its time even if its timer is late.
    if (this.#brew && Date.now() >= this.#brew.until) this.#endBrew('the brew time is up', 'info');
    // [rule 10] A gap of a whole heater window since the last B+1 means hearth was stalled
    // (paused, swapped out, a frozen event loop): the firmware has turned the heater off, and
    // nobody asked for it to come back on after a pause. The brew ends; it is never resumed.
    const gap = this.#brew?.lastSent === undefined ? 0 : performance.now() - this.#brew.lastSent;
    if (gap >= HEATER_DEADMAN_MS) {
      this.#endBrew(
        `hearth was stalled for ${Math.round(gap)} ms while brewing; a brew is never resumed after a gap`,
        'warn',
      );
    }
    // [rule 1, 2, 5] B+1 only while brewing; B+0 until the pot confirms it; else a status poll.
    const command: Command = this.#brew
      ? 'B+1'
      : !this.#offConfirmed || this.#offWaiters.length > 0
        ? 'B+0'
        : 'S+?';
    const started = performance.now();
    if (command === 'B+1' && this.#brew) this.#brew.lastSent = started;
    this.#busy = true;
    this.#again = false;
    try {
      await this.#exchange(command);
    } finally {
      this.#busy = false;
    }
    if (this.#stopped || !this.#port.ready) return;
    const { heartbeatMs, pollMs } = this.#config;
    let delay: number;
    if (this.#again) delay = 0;
    // [rule 2] The next B+1 goes heartbeatMs after the last one was sent, not after its answer.
    else if (this.#brew) delay = started + heartbeatMs - performance.now();
    // B+0 not confirmed yet: try again soon, but not in a tight loop.
    else if (!this.#offConfirmed) delay = heartbeatMs;
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
    if (command === 'S+?' && s.heater && !this.#brew)
      problems.push('the heater is on while hearth is not brewing');
    const problem = problems.length > 0 ? problems.join('; ') : undefined;

    if (s.heater) {
      const brew = this.#brew;
      if (brew && !problem && !brew.confirmed) {
        brew.confirmed = true;
        this.#log.info({ id: this.#config.id, until: new Date(brew.until).toISOString() }, 'brew started');
        this.#resolveAll(brew.waiters);
      }
    } else if (command === 'B+0') {
      this.#offConfirmed = true;
      if (!this.#ready) {
        this.#ready = true;
        this.#log.info({ id: this.#config.id, path: this.#config.path }, 'coffee pot ready, heater off');
      }
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
    if (!heaterOff && this.#offConfirmed) {
      this.#offConfirmed = false;
      this.#kick();
    }
  }

  #endBrew(reason: string, level: 'info' | 'warn'): void {
    const brew = this.#brew;
    if (!brew) return;
    this.#brew = undefined;
    clearTimeout(brew.timer);
    this.#offConfirmed = false;
    this.#heater.setAttributes({ until: null });
    if (brew.confirmed) this.#log[level]({ id: this.#config.id, reason }, 'brew ended');
    this.#rejectAll(brew.waiters, reason);
    this.#kick();
  }

  #brewTimer(brew: Brew): NodeJS.Timeout {
    // [rule 4] The brew's own end; setTimeout caps at 2^31-1 ms, far above maxBrewMinutes.
    return setTimeout(
      () => this.#guard(() => this.#brew === brew && this.#endBrew('the brew time is up', 'info')),
      Math.max(0, brew.until - Date.now()),
    );
  }

  // ---- port events ---------------------------------------------------------------------------

  #onOpen(): void {
    // [rule 1, 8] Whatever the pot was doing, the first word after the port settles is B+0.
    this.#offConfirmed = false;
    this.#ready = false;
    this.#notReady = `waiting for the pot at ${this.#config.path} to confirm B+0`;
    this.#kick();
  }

  #onClose(reason: string): void {
    // [rule 8] Never resumed: after a reconnect the pot starts with B+0 and waits for a command.
    const why = `serial port ${this.#config.path}: ${reason}`;
    this.#ready = false;
    this.#sensorFault = undefined;
    this.#notAnswering = undefined;
    this.#notReady = why;
    clearTimeout(this.#timer);
    this.#endBrew(why, 'warn');
    this.#offConfirmed = false;
    this.#rejectAll(this.#offWaiters, why);
    this.#setUnavailable(why);
  }

  /** A line nobody asked for, or input that is not a line. */
  #onStray(line: string | undefined, what?: string): void {
    // Before the first B+0 is confirmed, noise is the board booting (opening the port resets it).
    if (!this.#ready || this.#stopped) return;
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
    if (this.#stopped) throw new Error('the coffee pot driver is stopping');
    if (!this.#port.ready) {
      throw new Error(
        `the coffee pot is not connected (${this.#notReady}); hearth sends it no B+1, so its firmware keeps the heater off`,
      );
    }
  }

  #refuseUnlessReady(): void {
    this.#refuseUnlessConnected();
    if (!this.#ready) throw new Error(`the coffee pot is not ready (${this.#notReady})`);
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
