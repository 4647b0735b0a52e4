import { reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { SerialQueue } from '../core/serial-queue.js';
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

/** What a role does as its lease comes and goes. */
export interface LeaderRole {
  /** This process leads with `token`: start acting. */
  lead(token: number): Promise<void>;
  /** Stop acting at once; called when the lease is lost or set aside, and on stop. Safe when not leading. */
  lose(reason: string): Promise<void>;
  /** Another holder has the lease: this process stands by (said on each attempt). */
  standby?(): void;
}

/**
 * A role's claim to one lease, which it can set aside and take up again: an agent that loses
 * the broker pauses (lets the lease go at once, so a standby that still has the broker leads)
 * and resumes when the broker is back. The role's `lead` and `lose` run one at a time, in
 * order, so a quick lose-lead-lose never runs two sets of work at once.
 */
export class Leadership {
  readonly name: string;
  readonly #o: LeadershipOptions;
  readonly #transitions: SerialQueue;
  #role: LeaderRole | undefined;
  #elector: LeaderElector | undefined;
  #started = false;
  #paused = false;
  #lastError = '';

  constructor(opts: LeadershipOptions) {
    this.#o = opts;
    this.name = opts.name;
    this.#transitions = new SerialQueue(`leadership of ${opts.name}`, 1000);
  }

  /** True only while the lease is certainly ours. */
  get leading(): boolean {
    return this.#elector?.isLeader ?? false;
  }

  get token(): number | undefined {
    return this.#elector?.token;
  }

  start(role: LeaderRole): void {
    this.#role = role;
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

  /** Lets the lease go and waits for the role to have stopped acting. */
  async stop(): Promise<void> {
    this.#started = false;
    await this.#halt();
    await this.#turn((role) => role.lose('hearth is stopping'));
  }

  #turn(step: (role: LeaderRole) => Promise<void>): Promise<void> {
    const role = this.#role;
    if (!role) return Promise.resolve();
    return this.#transitions
      .run(() => step(role))
      .catch((err: unknown) => {
        this.#o.log.error({ lease: this.name, err: reasonOf(err) }, 'a leadership change failed');
      });
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
        void this.#turn((role) => role.lead(token));
      },
      onLose: (reason) => void this.#turn((role) => role.lose(reason)),
      onStandby: () => this.#role?.standby?.(),
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
