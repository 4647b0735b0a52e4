import type { Kind } from '../contract/kinds.js';

/** The typed map of everything that travels on the bus. */
export interface BusEvents {
  /** An entity's state changed (or was reported again: `previous` equals `state`). */
  'entity.state': { id: string; kind: Kind; state: unknown; previous: unknown; at: number };
  /** An entity became available or unavailable. */
  'entity.availability': { id: string; kind: Kind; available: boolean; reason: string | null; at: number };
  /** A new entity: a device found at run time (a zigbee2mqtt device joining), a button first pressed. */
  'entity.added': { id: string; kind: Kind; at: number };
  /** An entity went away: a device removed from zigbee2mqtt, a pressed button deleted. */
  'entity.removed': { id: string; kind: Kind; at: number };
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
  /**
   * A run of an automation ended as recorded (`ok`, `failed`, `cancelled`), or was recorded as
   * `skipped`: the source of `hearth_automation_runs_total`.
   */
  'automation.run': { automation: string; outcome: 'ok' | 'failed' | 'skipped' | 'cancelled'; at: number };
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
  event: BusEvent;
  listener: (payload: unknown) => void;
  owner: string | undefined;
}

/**
 * The in-process bus. Subscribing and unsubscribing are O(1) (a Set per event, an index per
 * owner), because an SSE stream or an automation comes and goes at any time and thousands may
 * be subscribed. Listeners run in the order they subscribed.
 */
export class LocalBus implements Bus {
  readonly #listeners = new Map<BusEvent, Set<Registration>>();
  readonly #byOwner = new Map<string, Set<Registration>>();
  readonly #onListenerError: (err: unknown, event: BusEvent) => void;

  constructor(onListenerError: (err: unknown, event: BusEvent) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<E extends BusEvent>(event: E, listener: Listener<E>, owner?: string): () => void {
    const reg: Registration = { event, listener: listener as (payload: unknown) => void, owner };
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(reg);
    if (owner !== undefined) {
      let owned = this.#byOwner.get(owner);
      if (!owned) {
        owned = new Set();
        this.#byOwner.set(owner, owned);
      }
      owned.add(reg);
    }
    return () => this.#remove(reg);
  }

  emit<E extends BusEvent>(event: E, payload: BusEvents[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    // A snapshot: a listener that subscribes during the emit is not called for this payload (a
    // listener that re-subscribes itself would otherwise loop), as before.
    for (const reg of Array.from(set)) {
      try {
        reg.listener(payload);
      } catch (err) {
        // One broken listener must not stop the others or the emitter.
        this.#onListenerError(err, event);
      }
    }
  }

  offOwner(owner: string): void {
    const owned = this.#byOwner.get(owner);
    if (!owned) return;
    for (const reg of owned) this.#listeners.get(reg.event)?.delete(reg);
    this.#byOwner.delete(owner);
  }

  /** How many listeners `event` has: for metrics and tests. */
  listenerCount(event: BusEvent): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  #remove(reg: Registration): void {
    this.#listeners.get(reg.event)?.delete(reg);
    if (reg.owner === undefined) return;
    const owned = this.#byOwner.get(reg.owner);
    owned?.delete(reg);
    if (owned?.size === 0) this.#byOwner.delete(reg.owner);
  }
}
