import type { Kind } from './kinds.js';

/** The typed map of everything that travels on the bus. */
export interface BusEvents {
  /** An entity's state changed (or was reported again: `previous` equals `state`). */
  'entity.state': { id: string; kind: Kind; state: unknown; previous: unknown; at: number };
  /** An entity became available or unavailable. */
  'entity.availability': { id: string; kind: Kind; available: boolean; reason: string | null; at: number };
  /** Something an entity announced beside its state (EntityHandle.fire). */
  'entity.event': { id: string; kind: Kind; event: string; data: Record<string, unknown>; at: number };
  /** One call to a device finished: the source of device latency and error metrics. */
  'device.call': {
    driver: string;
    entity: string;
    op: string;
    durationMs: number;
    outcome: 'ok' | 'timeout' | 'error';
  };
}

export type BusEvent = keyof BusEvents;
export type Listener<E extends BusEvent> = (payload: BusEvents[E]) => void;

/**
 * Publish/subscribe between the parts of hearth. In one process it is this in-memory bus; in
 * a cluster an MQTT-backed bus implements the same interface, so callers do not change.
 * Listeners are keyed by owner, so `offOwner` removes everything one part registered.
 */
export interface Bus {
  on<E extends BusEvent>(event: E, listener: Listener<E>, owner?: string): () => void;
  emit<E extends BusEvent>(event: E, payload: BusEvents[E]): void;
  offOwner(owner: string): void;
}

interface Registration {
  listener: (payload: unknown) => void;
  owner: string | undefined;
}

export class LocalBus implements Bus {
  readonly #listeners = new Map<BusEvent, Registration[]>();
  readonly #onListenerError: (err: unknown, event: BusEvent) => void;

  constructor(onListenerError: (err: unknown, event: BusEvent) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<E extends BusEvent>(event: E, listener: Listener<E>, owner?: string): () => void {
    const reg: Registration = { listener: listener as (payload: unknown) => void, owner };
    const list = this.#listeners.get(event) ?? [];
    this.#listeners.set(event, [...list, reg]);
    return () => {
      const current = this.#listeners.get(event) ?? [];
      this.#listeners.set(
        event,
        current.filter((r) => r !== reg),
      );
    };
  }

  emit<E extends BusEvent>(event: E, payload: BusEvents[E]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const reg of list) {
      try {
        reg.listener(payload);
      } catch (err) {
        // One broken listener must not stop the others or the emitter.
        this.#onListenerError(err, event);
      }
    }
  }

  offOwner(owner: string): void {
    for (const [event, list] of this.#listeners) {
      this.#listeners.set(
        event,
        list.filter((r) => r.owner !== owner),
      );
    }
  }
}
