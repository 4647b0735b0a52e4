import { performance } from 'node:perf_hooks';
import { reasonOf } from '../core/errors.js';
import type { LeaseGrant, LeaseStore } from '../store/store.js';

/** How often a standby asks for the lease at most, in ms. */
export const STANDBY_RETRY_MS = 500;

export interface LeaderOptions {
  leases: LeaseStore;
  /** The singleton: `controller`, `agent:kitchen`. */
  name: string;
  /** Unique per process: two processes never share a holder. */
  holder: string;
  /** Lease length (cluster.leaseSeconds × 1000). */
  ttlMs: number;
  /**
   * How long before the lease could expire the holder stops acting: max(1 s, ttl/5), at most
   * half the lease. It covers a stalled event loop and the time between the database's check
   * and this process hearing of it.
   */
  safetyMarginMs?: number;
  /** This process now leads with `token`; every action it takes as leader carries the token. */
  onLead?: (token: number) => void;
  /** This process must stop acting as leader at once. */
  onLose?: (reason: string) => void;
  /** An attempt found the lease held by another holder (this process stands by). */
  onStandby?: () => void;
  /** A renewal or acquisition failed (the database unreachable, a timeout); for logs. */
  onError?: (reason: string) => void;
}

/**
 * Leader election over a LeaseStore. It tries to acquire (or renew) every third of the lease,
 * with jitter, and follows one rule: **a holder that cannot renew stops acting before its lease
 * can expire.** Leadership is valid until `sent + ttl - margin`, where `sent` is when the last
 * successful acquire was sent (not answered: the database may have granted it at any moment in
 * between), measured on this process's monotonic clock. `isLeader` checks that deadline every
 * time it is read, so even a process resumed from a long pause never acts on a stale lease, and
 * the lease's fencing token stops whatever slips through (see ClaimStore).
 */
export class LeaderElector {
  private readonly opts: LeaderOptions;
  private readonly margin: number;
  private readonly period: number;
  private running = false;
  private leading = false;
  private validUntil = 0;
  private grant: LeaseGrant | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private lossTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(opts: LeaderOptions) {
    if (!(opts.ttlMs > 0)) throw new RangeError(`ttlMs must be positive (got ${opts.ttlMs})`);
    this.opts = opts;
    this.margin = opts.safetyMarginMs ?? Math.min(Math.max(1000, opts.ttlMs / 5), opts.ttlMs / 2);
    this.period = opts.ttlMs / 3;
  }

  /** True only while the lease is certainly still ours (checked against the clock on every read). */
  get isLeader(): boolean {
    return this.leading && performance.now() < this.validUntil;
  }

  /** The fencing token while leading. */
  get token(): number | undefined {
    return this.isLeader ? this.grant?.token : undefined;
  }

  /** The last grant (token and the database's expiry, epoch ms) while leading. */
  get lease(): LeaseGrant | undefined {
    return this.isLeader ? this.grant : undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops acting first, then lets the lease go so a standby takes over without waiting for expiry. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.tickTimer);
    const wasLeading = this.leading;
    this.lose('stopped');
    await this.inFlight?.catch(() => {});
    // A release after a renewal that was in flight: the lease may be ours again until expiry.
    if (wasLeading || this.grant) {
      await this.opts.leases.release(this.opts.name, this.opts.holder).catch((err: unknown) => {
        this.opts.onError?.(`cannot release the lease ${this.opts.name}: ${reasonOf(err)}`);
      });
    }
    this.grant = undefined;
  }

  private tick(): void {
    if (!this.running) return;
    const sent = performance.now();
    // The call's own deadline: no later than the next attempt, and, while leading, no later than
    // the end of the validity we have: an answer after that could not keep us leading anyway.
    const deadline = this.leading ? Math.max(0, Math.min(this.period, this.validUntil - sent)) : this.period;
    const attempt = withDeadline(
      this.opts.leases.acquire(this.opts.name, this.opts.holder, this.opts.ttlMs),
      deadline,
    )
      .then(
        (grant) => this.settle(sent, grant),
        (err: unknown) => this.opts.onError?.(`cannot acquire the lease ${this.opts.name}: ${reasonOf(err)}`),
      )
      .finally(() => {
        this.inFlight = undefined;
        if (!this.running) return;
        // A leader renews every third of the lease. A standby asks more often, at most every
        // STANDBY_RETRY_MS, so it takes a dead leader's lease within that much of its expiry
        // (failover ≤ leaseSeconds + about half a second). Jitter keeps standbys out of step.
        const every = this.leading ? this.period : Math.min(this.period, STANDBY_RETRY_MS);
        const next = every * (0.8 + Math.random() * 0.2) - (performance.now() - sent);
        this.tickTimer = setTimeout(() => this.tick(), Math.max(0, next));
      });
    this.inFlight = attempt;
  }

  private settle(sent: number, grant: LeaseGrant | undefined): void {
    if (!this.running) {
      // Stopped meanwhile: remember the grant so stop() releases it.
      this.grant = grant;
      return;
    }
    if (grant === undefined) {
      if (this.leading) this.lose(`the lease ${this.opts.name} is held by another holder`);
      else this.opts.onStandby?.();
      return;
    }
    const until = sent + this.opts.ttlMs - this.margin;
    if (performance.now() >= until) {
      // Granted, but too late to act on: treat as not renewed (the next attempt renews it).
      if (this.leading) this.lose(`the lease ${this.opts.name} was renewed too late to act on`);
      return;
    }
    if (this.leading && this.grant?.token !== grant.token) {
      this.lose(`the lease ${this.opts.name} expired and was taken again with a new token`);
    }
    this.grant = grant;
    this.validUntil = until;
    this.armLoss();
    if (!this.leading) {
      this.leading = true;
      this.opts.onLead?.(grant.token);
    }
  }

  /** Reports the loss the moment validity ends (`isLeader` is already false by then). */
  private armLoss(): void {
    clearTimeout(this.lossTimer);
    const left = this.validUntil - performance.now();
    if (left > 0) {
      // Timers run on a coarser clock and may fire a fraction of a millisecond early: re-arm.
      this.lossTimer = setTimeout(() => this.armLoss(), Math.ceil(left));
      return;
    }
    this.lose(`the lease ${this.opts.name} could not be renewed in time`);
  }

  private lose(reason: string): void {
    clearTimeout(this.lossTimer);
    if (!this.leading) return;
    this.leading = false;
    this.validUntil = 0;
    this.opts.onLose?.(reason);
  }
}

/** Rejects after `ms`; the call itself goes on, and its late answer is ignored. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms)} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
