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
  outcome: 'running' | 'ok' | 'failed' | 'skipped';
  /** Why it failed or was skipped; null when ok. */
  error: string | null;
}

export interface AutomationStore {
  /** Records a run as started; resolves with its id. */
  start(automation: string, trigger: string, startedAt: number): Promise<number>;
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
