/**
 * The one persistence interface. SQLite sits behind it on one box; PostgreSQL in a cluster.
 * Callers never see which. Every method resolves only once its write is durable.
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
  /** Insert or replace; durable (committed) when the promise resolves. */
  put(state: StoredState): Promise<void>;
  list(kind?: string): Promise<StoredState[]>;
}

export interface Store {
  /** State that hearth itself owns (buttons): device-backed state lives on the device. */
  readonly states: StateStore;
  /** Runs `fn` in one transaction: all of its writes commit, or none. */
  transaction<T>(fn: (tx: Omit<Store, 'transaction' | 'close'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
