import type { Clock, Timer } from './clock.js';
import { reasonOf } from './errors.js';
import type { Logger } from './log.js';

export interface SupervisedTask {
  /** Name for logs, e.g. `wemo lamp`. */
  name: string;
  /** Starts the task; resolves with its stop function. Receives a signal that aborts on stop. */
  start(signal: AbortSignal): Promise<() => Promise<void>>;
  /** Called when a start fails, with the reason: the owner marks its entities unavailable. */
  onFailure(reason: string): void;
}

export interface SupervisorOptions {
  log: Logger;
  clock: Clock;
  /** Deadline of one start, in ms. */
  startTimeoutMs?: number;
  /** First retry delay; doubles up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Slot {
  task: SupervisedTask;
  controller: AbortController;
  stop?: () => Promise<void>;
  timer?: Timer;
  attempt: number;
}

/**
 * Starts tasks (one per configured device) so that one that throws or hangs is retried with
 * backoff and never takes hearth or another device down.
 */
export class Supervisor {
  readonly #opts: Required<SupervisorOptions>;
  readonly #slots: Slot[] = [];
  #stopping = false;

  constructor(opts: SupervisorOptions) {
    this.#opts = { startTimeoutMs: 10_000, minBackoffMs: 1000, maxBackoffMs: 60_000, ...opts };
  }

  /** Starts the task; resolves once the first attempt has finished, whether or not it worked. */
  add(task: SupervisedTask): Promise<void> {
    const slot: Slot = { task, controller: new AbortController(), attempt: 0 };
    this.#slots.push(slot);
    return this.#attempt(slot);
  }

  async #attempt(slot: Slot): Promise<void> {
    if (this.#stopping) return;
    slot.attempt++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const started = slot.task.start(slot.controller.signal);
      const stop = await Promise.race([
        started,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`start did not finish within ${this.#opts.startTimeoutMs} ms`)),
            this.#opts.startTimeoutMs,
          );
        }),
      ]);
      slot.stop = stop;
      slot.attempt = 0;
    } catch (err) {
      const reason = reasonOf(err);
      const delay = Math.min(this.#opts.maxBackoffMs, this.#opts.minBackoffMs * 2 ** (slot.attempt - 1));
      this.#opts.log.warn(
        { task: slot.task.name, err: reason, retryInMs: delay },
        'start failed; will retry',
      );
      slot.task.onFailure(reason);
      if (this.#stopping) return;
      slot.timer = this.#opts.clock.setTimeout(() => void this.#attempt(slot), delay);
      slot.timer.unref?.();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every task, each with a deadline, all at once. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.timer) this.#opts.clock.clearTimeout(slot.timer);
        slot.controller.abort(new Error('hearth is stopping'));
        if (!slot.stop) return;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            slot.stop(),
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, this.#opts.startTimeoutMs);
            }),
          ]);
        } catch (err) {
          this.#opts.log.warn({ task: slot.task.name, err: reasonOf(err) }, 'stop failed');
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }
}
