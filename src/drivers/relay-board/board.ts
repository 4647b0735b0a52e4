/**
 * One relay board: its port, its zones and the rules listed at the top of index.ts, each marked
 * here with [rule n].
 */
import type { Clock, Timer } from '../../core/clock.js';
import type { DriverContext, EntityHandle } from '../../core/driver.js';
import { reasonOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { SerialQueue } from '../../core/serial-queue.js';
import { LinePort } from '../../transport/line-port.js';
import { type RelayBoardConfig, type ZoneConfig, zoneEntityId } from './config.js';
import { confirms, formatCommand, LINE_END, parseAnswer } from './protocol.js';

type ValveState = 'open' | 'closed';
/** Why a zone closed, shown as its `closedBy` attribute. */
type ClosedBy = 'duration' | 'command' | 'limit' | 'failure' | 'port' | 'stop';

/** First and longest wait before hearth retries an off the board did not confirm. */
const RECHECK_MIN_MS = 2000;
const RECHECK_MAX_MS = 30_000;
/** The longest Running.stop waits for the board's answers to its offs. */
const STOP_MAX_MS = 8000;

interface Zone {
  readonly name: string;
  readonly relay: number;
  readonly handle: EntityHandle<'valve'>;
  open: boolean;
  /** The board confirmed this relay's last command (for a closed zone: its off). */
  sure: boolean;
  /** Bumped on every open, so timers of an earlier opening do nothing. */
  session: number;
  /** When it was opened, in opening order: the zone open longest has the lowest. */
  openedSeq: number;
  /** performance.now() past which the refresh loop closes it, whatever the clock says. */
  realEnd: number;
  refreshTimer: NodeJS.Timeout | undefined;
  endTimer: Timer | undefined;
}

/** The exchange was not sent because it is no longer wanted; not a failure. */
class Skipped extends Error {}

const clip = (line: string) => JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line);

/** One board: its port, its zones and the rules above. */
export class RelayBoard {
  readonly #config: RelayBoardConfig;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #port: LinePort;
  readonly #zones: Zone[];
  /** Decisions (open, close, end of duration, the off sweep) run one at a time. */
  readonly #decisions: SerialQueue;
  /** Exchanges with the board run one at a time, in the order they were asked for. */
  readonly #wire: SerialQueue;
  #stopping = false;
  #seq = 0;
  #portReason = 'not opened yet';
  #recheckTimer: NodeJS.Timeout | undefined;
  #recheckMs = RECHECK_MIN_MS;
  /** Set while the board is misbehaving, so that is logged once, not on every retry. */
  #troubled = false;

  constructor(ctx: DriverContext, config: RelayBoardConfig) {
    this.#config = config;
    // Far above what the runtime's per-entity queues can send, so a timer's close always gets in.
    this.#decisions = new SerialQueue(`decisions for relay board ${config.id}`, 10_000);
    this.#wire = new SerialQueue(`exchanges with relay board ${config.id}`);
    this.#log = ctx.log;
    this.#clock = ctx.clock;
    this.#zones = config.zones.map((z: ZoneConfig) => {
      const zone: Zone = {
        name: z.name,
        relay: z.relay,
        handle: ctx.entities.bind(zoneEntityId(config.id, z.name), 'valve', {
          open: ({ seconds }, { signal }) => this.#open(zone, seconds, signal),
          close: (_args, { signal }) => this.#close(zone, signal),
        }),
        open: false,
        sure: false,
        session: 0,
        openedSeq: 0,
        realEnd: 0,
        refreshTimer: undefined,
        endTimer: undefined,
      };
      zone.handle.setUnavailable(`connecting to the relay board at ${config.path}`);
      return zone;
    });
    this.#port = new LinePort({
      path: config.path,
      baudRate: config.baudRate,
      eol: LINE_END,
      settleMs: config.settleMs,
      log: ctx.log,
    });
    this.#port.on('open', () => this.#onPortOpen());
    this.#port.on('close', (reason) => this.#onPortClosed(reason));
    this.#port.on('line', (line) => this.#onUnasked(line));
    this.#port.on('garbage', (what) => this.#onUnasked(undefined, what));
    ctx.signal.addEventListener('abort', () => {
      this.#stopping = true;
    });
  }

  /** Starts opening the port; does not wait for it. */
  start(): void {
    this.#port.start();
  }

  // ---- commands -------------------------------------------------------------------------

  #open(zone: Zone, requested: number, signal: AbortSignal): Promise<ValveState> {
    return this.#locked(async (): Promise<ValveState> => {
      this.#checkUsable(signal);
      const maxSeconds = this.#config.maxOpenMinutes * 60;
      const seconds = Math.min(requested, maxSeconds);
      if (requested > maxSeconds) {
        this.#log.info(
          { zone: zone.name, requestedSeconds: requested, seconds },
          `open cut to maxOpenMinutes (${this.#config.maxOpenMinutes})`,
        );
      }
      const wasOpen = zone.open;
      if (!wasOpen) await this.#makeRoom(zone, signal);
      try {
        await this.#exchange(zone.relay, true, () => {
          this.#checkUsable(signal);
          // From this moment until the board answers, the relay may be on.
          if (!zone.open) zone.sure = false;
        });
      } catch (err) {
        if (err instanceof Skipped) throw err;
        const reason = reasonOf(err);
        if (wasOpen) this.#zoneFailed(zone, reason);
        else await this.#offAfterFailure(zone, reason);
        throw err;
      }
      zone.sure = true;
      if (signal.aborted || this.#stopping) {
        // [rule 9] The caller was told it failed: a zone it did not find open is closed again.
        // (One that was open keeps its old end; a stop closes it anyway.)
        if (!wasOpen) await this.#offAfterFailure(zone, 'the command was given up before the board answered');
        throw new Error('the command was given up before the board answered');
      }
      if (!wasOpen) {
        zone.open = true;
        zone.session++;
        zone.openedSeq = ++this.#seq;
        this.#scheduleRefresh(zone, zone.session, this.#config.refreshMs);
      }
      const ms = seconds * 1000;
      const until = this.#clock.now() + ms;
      zone.realEnd = performance.now() + ms + this.#config.refreshMs;
      if (zone.endTimer) this.#clock.clearTimeout(zone.endTimer);
      const session = zone.session;
      zone.endTimer = this.#clock.setTimeout(() => {
        this.#later(() => this.#endOfDuration(zone, session));
      }, ms);
      zone.handle.setAttributes({
        until: new Date(until).toISOString(),
        seconds,
        requestedSeconds: requested > maxSeconds ? requested : null,
        closedBy: null,
        failure: null,
      });
      zone.handle.setState('open');
      this.#log.info(
        { zone: zone.name, relay: zone.relay, seconds },
        wasOpen ? 'zone kept open' : 'zone open',
      );
      return 'open';
    });
  }

  #close(zone: Zone, signal: AbortSignal): Promise<ValveState> {
    return this.#locked(async (): Promise<ValveState> => {
      // Closing is always allowed while the port works, even if the zone looks closed: it
      // confirms the relay is off.
      this.#checkUsable(signal, true);
      await this.#closeZone(zone, 'command');
      return 'closed';
    });
  }

  /** [rule 5] Closes zones (open longest first, those in doubt before) until one more fits. */
  async #makeRoom(target: Zone, signal: AbortSignal): Promise<void> {
    for (;;) {
      const others = this.#zones.filter((z) => z !== target);
      const doubtful = others.filter((z) => !z.open && !z.sure);
      const open = others.filter((z) => z.open).sort((a, b) => a.openedSeq - b.openedSeq);
      if (open.length + doubtful.length < this.#config.maxZonesOpen) return;
      this.#checkUsable(signal);
      const doubt = doubtful[0];
      if (doubt) {
        try {
          await this.#exchange(doubt.relay, false, () => this.#checkUsable(signal));
        } catch (err) {
          if (err instanceof Skipped) throw err;
          throw new Error(
            `zone ${doubt.name} may still be open (${reasonOf(err)}); not opening ${target.name} beside it`,
          );
        }
        this.#confirmedOff(doubt);
        continue;
      }
      const longest = open[0];
      if (!longest) return;
      try {
        await this.#closeZone(longest, 'limit');
      } catch (err) {
        throw new Error(
          `could not close zone ${longest.name} first (${reasonOf(err)}); not opening ${target.name} beside it`,
        );
      }
    }
  }

  async #endOfDuration(zone: Zone, session: number): Promise<void> {
    if (!zone.open || zone.session !== session) return;
    await this.#closeZone(zone, 'duration').catch(() => {
      // Logged and marked by #closeZone; the dead-man closes the relay anyway.
    });
  }

  /** Stops a zone and sends its off; throws if the board does not confirm it. */
  async #closeZone(zone: Zone, by: ClosedBy): Promise<void> {
    const wasOpen = zone.open;
    this.#stopZone(zone);
    zone.sure = false;
    try {
      await this.#exchange(zone.relay, false);
    } catch (err) {
      const reason = reasonOf(err);
      this.#markClosed(zone, by, reason);
      this.#doubt(zone, reason);
      throw err;
    }
    this.#confirmedOff(zone);
    this.#markClosed(zone, by, null);
    if (wasOpen) this.#log.info({ zone: zone.name, relay: zone.relay, by }, 'zone closed');
  }

  // ---- refresh ----------------------------------------------------------------------------

  #scheduleRefresh(zone: Zone, session: number, delayMs: number): void {
    clearTimeout(zone.refreshTimer);
    if (this.#stopping) return;
    zone.refreshTimer = setTimeout(() => void this.#refresh(zone, session), delayMs);
  }

  /** [rule 3] One refresh of an open zone; schedules the next. */
  async #refresh(zone: Zone, session: number): Promise<void> {
    const current = () => zone.open && zone.session === session;
    if (!current()) return;
    const started = performance.now();
    if (started >= zone.realEnd) {
      // The end-of-duration timer should have fired by now: do not keep the water running.
      this.#later(() => this.#endOfDuration(zone, session));
      return;
    }
    try {
      await this.#exchange(zone.relay, true, () => {
        if (!current() || this.#stopping) throw new Skipped('the zone was closed meanwhile');
      });
    } catch (err) {
      if (!(err instanceof Skipped) && current()) this.#zoneFailed(zone, reasonOf(err));
      return;
    }
    if (current()) {
      this.#scheduleRefresh(
        zone,
        session,
        Math.max(0, this.#config.refreshMs - (performance.now() - started)),
      );
    }
  }

  // ---- failures -----------------------------------------------------------------------------

  /** [rule 6] An open zone can no longer be trusted: closed now, off sent in the background. */
  #zoneFailed(zone: Zone, reason: string): void {
    if (!zone.open) return;
    this.#stopZone(zone);
    zone.sure = false;
    this.#markClosed(zone, 'failure', reason);
    this.#log.warn({ zone: zone.name, relay: zone.relay, reason }, 'zone taken as closed; sending off');
    void this.#offAfterFailure(zone, reason);
  }

  /** Sends an off for a zone in doubt, if the port works; a failure leaves it in doubt. */
  async #offAfterFailure(zone: Zone, reason: string): Promise<void> {
    zone.sure = false;
    if (!zone.open) this.#markClosed(zone, 'failure', reason);
    if (!this.#port.ready) return;
    try {
      await this.#exchange(zone.relay, false, () => {
        if (zone.open) throw new Skipped('the zone was opened again');
      });
      this.#confirmedOff(zone);
    } catch (err) {
      if (!(err instanceof Skipped)) this.#doubt(zone, reasonOf(err));
    }
  }

  /** A line the board sent that answers nothing hearth asked (or input too long to be a line). */
  #onUnasked(line: string | undefined, what?: string): void {
    // While the port settles the board boots: its banner and noise are expected.
    if (!this.#port.ready || this.#stopping) return;
    const answer = line === undefined ? undefined : parseAnswer(line);
    if (answer?.type === 'info') {
      this.#log.debug({ line }, 'late answer from the relay board ignored');
      return;
    }
    const reason =
      answer?.type === 'error'
        ? `the relay board said ${clip(line ?? '')} unasked`
        : `the relay board sent garbage: ${line === undefined ? what : clip(line)}`;
    const open = this.#zones.filter((z) => z.open);
    if (open.length === 0) {
      this.#log.debug({ reason }, 'unexpected input from the relay board while no zone is open');
      return;
    }
    for (const zone of open) this.#zoneFailed(zone, reason);
  }

  /** The board did not confirm an off: the zone is unavailable until it does. */
  #doubt(zone: Zone, reason: string): void {
    zone.sure = false;
    // A lost port has said so already (rule 7), and the sweep after reconnecting retries.
    if (!this.#port.ready) return;
    zone.handle.setUnavailable(`the relay board did not confirm relay ${zone.relay} off: ${reason}`);
    if (!this.#troubled) {
      this.#troubled = true;
      this.#log.warn(
        { zone: zone.name, relay: zone.relay, reason },
        'relay board did not confirm an off; retrying',
      );
    }
    this.#scheduleRecheck();
  }

  #confirmedOff(zone: Zone): void {
    zone.sure = true;
    zone.handle.setAvailable();
    if (!zone.open) zone.handle.setState('closed');
  }

  #scheduleRecheck(): void {
    if (this.#recheckTimer || this.#stopping || !this.#port.ready) return;
    if (!this.#zones.some((z) => !z.open && !z.sure)) return;
    const delay = this.#recheckMs;
    this.#recheckMs = Math.min(RECHECK_MAX_MS, delay * 2);
    this.#recheckTimer = setTimeout(() => {
      this.#recheckTimer = undefined;
      this.#later(() => this.#sweep(false));
    }, delay);
  }

  /** [rule 1, 6] Sends off for every zone (`all`) or for those in doubt, one at a time. */
  async #sweep(all: boolean): Promise<void> {
    for (const zone of this.#zones) {
      if (this.#stopping || !this.#port.ready) return;
      if (zone.open || (!all && zone.sure)) continue;
      zone.sure = false;
      try {
        await this.#exchange(zone.relay, false);
      } catch (err) {
        this.#doubt(zone, reasonOf(err));
        continue;
      }
      this.#confirmedOff(zone);
    }
    if (this.#zones.every((z) => z.sure)) {
      this.#recheckMs = RECHECK_MIN_MS;
      if (this.#troubled)
        this.#log.info({ path: this.#config.path }, 'relay board confirms every relay again');
      this.#troubled = false;
    }
  }

  // ---- the port -------------------------------------------------------------------------------

  #onPortOpen(): void {
    this.#log.info({ path: this.#config.path }, 'relay board connected; turning every relay off');
    this.#recheckMs = RECHECK_MIN_MS;
    this.#later(() => this.#sweep(true));
  }

  /** [rule 7] */
  #onPortClosed(reason: string): void {
    this.#portReason = reason;
    clearTimeout(this.#recheckTimer);
    this.#recheckTimer = undefined;
    const unavailable = `relay board port ${this.#config.path}: ${reason}; reconnecting (the board closes a valve left open within 30 s)`;
    for (const zone of this.#zones) {
      if (zone.open) {
        this.#stopZone(zone);
        this.#markClosed(zone, 'port', reason);
        this.#log.warn({ zone: zone.name, relay: zone.relay, reason }, 'zone taken as closed: port lost');
      }
      zone.sure = false;
      zone.handle.setUnavailable(unavailable);
    }
  }

  // ---- plumbing -------------------------------------------------------------------------------

  /** Throws if no command should go to the board now; `closing` lets an off through while stopping. */
  #checkUsable(signal: AbortSignal, closing = false): void {
    if (signal.aborted) throw new Skipped('the command was given up (its deadline passed)');
    if (this.#stopping && !closing) throw new Skipped('the relay board driver is stopping');
    if (!this.#port.ready) {
      throw new Skipped(`the relay board at ${this.#config.path} is not connected (${this.#portReason})`);
    }
  }

  #stopZone(zone: Zone): void {
    zone.open = false;
    clearTimeout(zone.refreshTimer);
    zone.refreshTimer = undefined;
    if (zone.endTimer) this.#clock.clearTimeout(zone.endTimer);
    zone.endTimer = undefined;
  }

  #markClosed(zone: Zone, by: ClosedBy, failure: string | null): void {
    zone.handle.setAttributes({ until: null, seconds: null, requestedSeconds: null, closedBy: by, failure });
    zone.handle.setState('closed');
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.#decisions.run(fn);
  }

  /** A decision a timer asked for: nobody awaits it, so a failure is logged here. */
  #later(fn: () => Promise<unknown>): void {
    this.#locked(fn).catch((err: unknown) =>
      this.#log.error({ err: reasonOf(err) }, 'relay board decision failed'),
    );
  }

  /**
   * [rule 2] Sends `<relay>,on|off` after the exchanges asked for before it and resolves once
   * the board confirmed it. `beforeSend` runs just before the line goes out and may throw
   * Skipped to send nothing.
   */
  #exchange(relay: number, on: boolean, beforeSend?: () => void): Promise<void> {
    const command = formatCommand(relay, on);
    const run = async () => {
      beforeSend?.();
      if (on && this.#stopping) throw new Skipped('the relay board driver is stopping');
      if (!this.#port.ready) {
        throw new Error(`the relay board at ${this.#config.path} is not connected (${this.#portReason})`);
      }
      const line = await this.#port.request(command, {
        timeoutMs: this.#config.timeoutMs,
        // An INFO for another relay or state is a late answer to an earlier exchange: not ours.
        accept: (l) => {
          const a = parseAnswer(l);
          return a.type !== 'info' || confirms(a, relay, on);
        },
      });
      const answer = parseAnswer(line);
      if (answer.type === 'error') throw new Error(`the relay board answered ${clip(line)} to "${command}"`);
      if (answer.type === 'garbage') {
        throw new Error(`the relay board answered "${command}" with garbage: ${clip(line)}`);
      }
    };
    return this.#wire.run(run);
  }

  /** [rule 8] */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#recheckTimer);
    this.#recheckTimer = undefined;
    const wasOpen = new Set(this.#zones.filter((z) => z.open));
    // Open zones first: they are the ones running water.
    const toClose = this.#zones
      .filter((z) => z.open || !z.sure)
      .sort((a, b) => Number(b.open) - Number(a.open));
    for (const zone of this.#zones) this.#stopZone(zone);
    if (this.#port.ready && toClose.length > 0) {
      const offs = toClose.map((zone) =>
        this.#exchange(zone.relay, false).then(
          () => {
            zone.sure = true;
            if (wasOpen.has(zone))
              this.#log.info({ zone: zone.name, relay: zone.relay }, 'zone closed on stop');
          },
          (err: unknown) =>
            this.#log.warn(
              { zone: zone.name, relay: zone.relay, err: reasonOf(err) },
              'relay board did not confirm an off on stop; its dead-man closes the relay',
            ),
        ),
      );
      let timer: NodeJS.Timeout | undefined;
      const bound = Math.min(STOP_MAX_MS, this.#config.timeoutMs * (toClose.length + 1));
      await Promise.race([
        Promise.all(offs),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, bound);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const zone of wasOpen) this.#markClosed(zone, 'stop', null);
    await this.#port.close();
  }
}
