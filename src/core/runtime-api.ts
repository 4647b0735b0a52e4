import type { EntityView } from '../contract/views.js';
import type { Bus, BusEvents } from './bus.js';

/** An entity as every transport shows it: src/contract/views.ts, what hearth sends its clients. */
export type { EntityView };

/** The `driver` of a button: hearth keeps its state itself. */
export const BUTTON_DRIVER = 'hearth';

/** Options of one command. */
export interface CommandOptions {
  /** The caller's deadline in ms; the entity's own `timeoutMs` when left out. */
  timeoutMs?: number;
}

/**
 * Entities as something that runs or knows them offers them: list, read, command, and hear of
 * changes. An agent's device host (src/core/device-host.ts) offers this much; the house's
 * runtime adds buttons (RuntimeApi).
 */
export interface DeviceApi {
  /** The configured IANA time zone. */
  readonly timezone: string;
  /**
   * This process's one event bus: entity changes, device calls, automation runs. Every
   * consumer (metrics, automations, SSE) listens here, keyed by its owner, so none can be
   * handed a bus that the entities it reads are not announced on.
   */
  readonly events: Bus;
  /** True once this process can answer for every entity it knows. */
  readonly ready: boolean;
  /** Every entity this process knows, with its last known state. */
  list(): EntityView[];
  get(id: string): EntityView | undefined;
  /** The current wall-clock time in the configured zone, `HHMM`. */
  clocktime(): string;
  /**
   * Sends a command and resolves with the entity's view afterwards. Throws HearthError: not
   * found, unknown command, bad arguments, device timeout or failure, no agent answering.
   */
  command(id: string, name: string, args?: unknown, opts?: CommandOptions): Promise<EntityView>;
  /**
   * Calls `listener` with the entity's view on every state or availability change, and when an
   * entity is added; returns the unsubscribe function.
   */
  subscribe(listener: (e: EntityView) => void, owner?: string): () => void;
  /** Calls `listener` when an entity goes away (a zigbee device removed, a button deleted). */
  onRemoved(listener: (e: BusEvents['entity.removed']) => void, owner?: string): () => void;
  /** Calls `listener` on every event an entity fires; returns the unsubscribe function. */
  onEvent(listener: (e: BusEvents['entity.event']) => void, owner?: string): () => void;
}

/**
 * The runtime API with no transport, as the HTTP server, automations, history, metrics and Home
 * Assistant see it, the same in every process of a house (src/house/runtime.ts): entities as the
 * agents say them over the link, commands sent to the agent that runs the device, buttons in the
 * store. Callers never know whether the devices run in this process or another.
 */
export interface RuntimeApi extends DeviceApi {
  /**
   * A button as the store has it, read through to the store where several processes share it,
   * so a press acknowledged by one api replica reads back from every other.
   */
  button(id: string): Promise<EntityView | undefined>;
  /** Records a button's state durably (committed before it resolves), creating it on first use. */
  setButton(id: string, state: 'on' | 'off'): Promise<EntityView>;
  /**
   * Deletes a button that a press created. Throws HearthError: not found, or
   * HEARTH_ERR_ENTITY_DECLARED for a declared button or a device's entity.
   */
  removeButton(id: string): Promise<void>;
}
