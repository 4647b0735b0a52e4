/**
 * The one persistence interface. SQLite sits behind it on one box; PostgreSQL in a cluster.
 * Callers never see which. Every write resolves only once it is durable.
 */
export interface StoredState {
  /** Entity id. */
  id: string;
  kind: string;
  /** The state as the kind defines it; JSON-serialisable. */
  state: unknown;
  /** Epoch ms of the change. */
  updatedAt: number;
}

export interface StateStore {
  get(id: string): Promise<StoredState | undefined>;
  /** Insert or replace; committed to disk when the promise resolves. */
  put(state: StoredState): Promise<void>;
  list(kind?: string): Promise<StoredState[]>;
  /** Removes the state of `id`, if any; committed to disk when the promise resolves. */
  delete(id: string): Promise<void>;
}

/** One run of an automation, as recorded. */
export interface AutomationRun {
  id: number;
  automation: string;
  /** What started it: `cron 20 16 * * *`, `state bedside on`, `webhook`, `missed cron ...`. */
  trigger: string;
  startedAt: number;
  /** Null while running. */
  endedAt: number | null;
  /**
   * `queued`: waiting for the run before it (mode: queued); `cancelled`: stopped part-way (a
   * restart, or hearth stopping); `skipped`: a condition did not hold, or the mode refused it.
   */
  outcome: 'queued' | 'running' | 'ok' | 'failed' | 'skipped' | 'cancelled';
  /** Why it failed, was skipped or cancelled; null when ok. */
  error: string | null;
}

export interface AutomationStore {
  /**
   * Records a run as started (or as waiting, `queued`); resolves with its id. Runs are kept per
   * automation up to a limit, the oldest dropped first, so no trigger rate can fill the disk.
   */
  start(
    automation: string,
    trigger: string,
    startedAt: number,
    outcome?: 'running' | 'queued',
  ): Promise<number>;
  /** A queued run starts: it becomes `running` from `startedAt`. */
  begin(id: number, startedAt: number): Promise<void>;
  /** Records a run that is over as soon as it is triggered (skipped), in one write. */
  record(
    automation: string,
    trigger: string,
    at: number,
    outcome: AutomationRun['outcome'],
    error: string | null,
  ): Promise<AutomationRun>;
  finish(id: number, outcome: AutomationRun['outcome'], endedAt: number, error: string | null): Promise<void>;
  /** The newest runs first. */
  runs(automation: string, limit: number): Promise<AutomationRun[]>;
  /** When the scheduler last accounted for this automation's schedule (epoch ms), for missed runs after downtime. */
  getMark(automation: string): Promise<number | undefined>;
  setMark(automation: string, at: number): Promise<void>;
}

export interface Store {
  /** State that hearth itself owns (buttons): device-backed state lives on the device. */
  readonly states: StateStore;
  readonly automations: AutomationStore;
  close(): Promise<void>;
}
