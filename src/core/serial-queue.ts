/**
 * Runs async work one at a time, in the order it was given: the commands of one entity, the
 * exchanges on one serial line, the chimes of one speaker. Work that fails does not stop the
 * work behind it. How much may wait is bounded, so a flood of requests to a hung device fails
 * fast instead of piling up promises without end.
 *
 * Imports nothing from hearth, so transports and drivers can share it.
 */
export class SerialQueue {
  readonly #name: string;
  readonly #limit: number;
  #tail: Promise<void> = Promise.resolve();
  /** Running plus waiting. */
  #size = 0;

  /**
   * @param name what the queue serves, for the error message: `commands for lamp`
   * @param limit how many may be queued at once, the running one included
   */
  constructor(name: string, limit = 100) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`SerialQueue ${name}: limit must be a positive integer`);
    this.#name = name;
    this.#limit = limit;
  }

  /** How many are running or waiting now. */
  get size(): number {
    return this.#size;
  }

  /** Runs `fn` after everything queued before it has settled; rejects at once when the queue is full. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#size >= this.#limit) return Promise.reject(new QueueFullError(this.#name, this.#limit));
    this.#size++;
    const result = this.#tail.then(fn);
    const settled = () => {
      this.#size--;
    };
    this.#tail = result.then(settled, settled);
    return result;
  }

  /** Resolves once everything queued so far has settled (never rejects). */
  idle(): Promise<void> {
    return this.#tail;
  }
}

export class QueueFullError extends Error {
  readonly code = 'EQUEUEFULL';

  constructor(name: string, limit: number) {
    super(`${name}: ${limit} are already waiting; try again once the earlier ones have finished`);
    this.name = 'QueueFullError';
  }
}
