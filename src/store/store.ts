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
}

export interface Store {
  /** State that hearth itself owns (buttons): device-backed state lives on the device. */
  readonly states: StateStore;
  close(): Promise<void>;
}
