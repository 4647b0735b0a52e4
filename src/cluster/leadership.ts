import { EventEmitter } from 'node:events';
import type { Logger } from '../core/log.js';
import type { LeaseStore } from '../store/store.js';
import { LeaderElector } from './leader.js';

export interface LeadershipOptions {
  leases: LeaseStore;
  /** `controller`, `agent:main`. */
  name: string;
  holder: string;
  ttlMs: number;
  log: Logger;
}

/**
 * A role's claim to one lease, which it can set aside and take up again: an agent that loses
 * the broker pauses (lets the lease go at once, so a standby that still has the broker leads)
 * and resumes when the broker is back. Events: `lead` (token), `lose` (reason).
 */
export class Leadership extends EventEmitter<{ lead: [token: number]; lose: [reason: string] }> {
  readonly name: string;
  readonly #o: LeadershipOptions;
  #elector: LeaderElector | undefined;
  #started = false;
  #paused = false;
  #lastError = '';

  constructor(opts: LeadershipOptions) {
    super();
    this.#o = opts;
    this.name = opts.name;
  }

  /** True only while the lease is certainly ours. */
  get leading(): boolean {
    return this.#elector?.isLeader ?? false;
  }

  get token(): number | undefined {
    return this.#elector?.token;
  }

  start(): void {
    this.#started = true;
    if (!this.#paused) this.#run();
  }

  /** Stops acting and lets the lease go until `resume`. */
  pause(): void {
    this.#paused = true;
    void this.#halt();
  }

  resume(): void {
    this.#paused = false;
    if (this.#started && !this.#elector) this.#run();
  }

  async stop(): Promise<void> {
    this.#started = false;
    await this.#halt();
  }

  #run(): void {
    const { log, name } = this.#o;
    const elector = new LeaderElector({
      leases: this.#o.leases,
      name,
      holder: this.#o.holder,
      ttlMs: this.#o.ttlMs,
      onLead: (token) => {
        this.#lastError = '';
        this.emit('lead', token);
      },
      onLose: (reason) => this.emit('lose', reason),
      // Said once per kind of failure, not every attempt: a database away for an hour is one line.
      onError: (reason) => {
        if (reason === this.#lastError) return;
        this.#lastError = reason;
        log.warn({ lease: name, reason }, 'lease: cannot reach the store');
      },
    });
    this.#elector = elector;
    elector.start();
  }

  async #halt(): Promise<void> {
    const elector = this.#elector;
    this.#elector = undefined;
    await elector?.stop();
  }
}
