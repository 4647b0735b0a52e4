/**
 * The last value a device reported on one topic, and the commands waiting for it to become
 * what they asked for. Commands of one entity run one at a time, so waiters stay few.
 */
export class Reported<T> {
  value: T | undefined;
  readonly #waiters = new Set<{ wanted: (v: T) => boolean; done: () => void }>();

  set(value: T): void {
    this.value = value;
    for (const w of [...this.#waiters]) if (w.wanted(value)) w.done();
  }

  /** Forgets the value (the broker went away: what it says next is the truth). */
  clear(): void {
    this.value = undefined;
  }

  /** Resolves when the reported value passes `wanted`; rejects when `signal` aborts (the call's deadline). */
  until(wanted: (v: T) => boolean, signal: AbortSignal): Promise<void> {
    if (this.value !== undefined && wanted(this.value)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        wanted,
        done: () => {
          this.#waiters.delete(w);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#waiters.delete(w);
        reject(signal.reason instanceof Error ? signal.reason : new Error('the call was aborted'));
      };
      if (signal.aborted) return onAbort();
      this.#waiters.add(w);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
