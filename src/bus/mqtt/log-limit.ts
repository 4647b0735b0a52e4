/**
 * Warnings keyed by MQTT topic, bounded per interval however many topics there are: at most one
 * line per topic and at most `maxTopics` topics per interval; whatever else came in that interval
 * is told in one summary line at its end. O(1) per call, and memory bounded by `maxTopics`: a
 * publisher that sends garbage to a million topics costs 20 lines and a summary per 10 s.
 */
export class TopicLogLimit {
  readonly #warn: (msg: string) => void;
  readonly #intervalMs: number;
  readonly #maxTopics: number;
  readonly #what: string;
  #windowStart = Number.NEGATIVE_INFINITY;
  /** Topics that had their line in the current interval (at most maxTopics). */
  readonly #logged = new Set<string>();
  /** Not logged: their topic already had its line this interval. */
  #repeats = 0;
  /** Not logged: past maxTopics topics this interval. */
  #overflow = 0;
  #example = '';
  #timer: NodeJS.Timeout | undefined;

  /**
   * `what` names the lines in the summary (`ignored MQTT messages`); `warn` writes one line.
   * Defaults: 20 topics per 10 s.
   */
  constructor(
    warn: (msg: string) => void,
    what: string,
    opts: { intervalMs?: number; maxTopics?: number } = {},
  ) {
    this.#warn = warn;
    this.#what = what;
    this.#intervalMs = opts.intervalMs ?? 10_000;
    this.#maxTopics = opts.maxTopics ?? 20;
  }

  /** Logs `msg` unless `topic` (or too many topics) had a line in this interval. */
  warn(topic: string, msg: string): void {
    const now = Date.now();
    if (now - this.#windowStart >= this.#intervalMs) this.#roll(now);
    if (this.#logged.has(topic)) {
      this.#repeats += 1;
      return;
    }
    if (this.#logged.size >= this.#maxTopics) {
      if (this.#overflow === 0) this.#example = msg;
      this.#overflow += 1;
      // The summary comes at the end of the interval even if nothing else is logged by then.
      this.#timer ??= setTimeout(() => this.#roll(Date.now()), this.#windowStart + this.#intervalMs - now);
      this.#timer.unref?.();
      return;
    }
    this.#logged.add(topic);
    this.#warn(msg);
  }

  /** Drops the pending summary (the connection is stopping). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #roll(now: number): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#overflow > 0) {
      const seconds = Math.round(this.#intervalMs / 1000);
      this.#warn(
        `MQTT: ${this.#overflow + this.#repeats} more ${this.#what} in the last ${seconds} s were not logged one by one ` +
          `(${this.#overflow} on topics past the first ${this.#maxTopics}, ${this.#repeats} on topics already logged); ` +
          `the first of them: ${this.#example}`,
      );
    }
    this.#logged.clear();
    this.#repeats = 0;
    this.#overflow = 0;
    this.#example = '';
    this.#windowStart = now;
  }
}
