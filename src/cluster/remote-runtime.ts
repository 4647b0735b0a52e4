import type { Bus, BusEvents } from '../core/bus.js';
import type { Buttons } from '../core/buttons.js';
import { type Clock, clocktime } from '../core/clock.js';
import { parseCommand } from '../core/command-args.js';
import { HearthError } from '../core/errors.js';
import { BUTTON_DRIVER, type CommandOptions, type EntityView, type RuntimeApi } from '../core/runtime-api.js';
import type { EntityMirror } from './mirror.js';

/** How a process that runs no device reaches the ones that do. */
export interface AgentChannel {
  /**
   * Asks the leading process of agent `agent` to run a command, within `timeoutMs`. Rejects
   * with HearthError: 503 when no such agent is answering, 504 at the deadline, or the error
   * the agent answered.
   */
  command(
    agent: string,
    request: { id: string; name: string; args: unknown },
    timeoutMs: number,
  ): Promise<EntityView>;
  /** Tells every other process that a button changed (after the store committed it). */
  publishButton(view: EntityView, previous: unknown): void;
  /** Tells every other process that a button was deleted. */
  forgetButton(id: string): void;
}

export interface RemoteRuntimeOptions {
  timezone: string;
  clock: Clock;
  mirror: EntityMirror;
  channel: AgentChannel;
  /** Buttons, in the shared store. */
  buttons: Buttons;
  /** Each entity's own deadline (its device's `timeoutMs`), by id. */
  timeoutOf: (id: string) => number | undefined;
  /** False until the mirror has had the broker's retained state. */
  ready: () => boolean;
}

/**
 * The runtime API of a process that runs no device (an api replica, the controller): entities
 * are read from the mirror of what agents publish, commands travel to the agent that owns the
 * device, and buttons are written to and read from the shared store.
 */
export class RemoteRuntime implements RuntimeApi {
  readonly #o: RemoteRuntimeOptions;

  constructor(opts: RemoteRuntimeOptions) {
    this.#o = opts;
  }

  get timezone(): string {
    return this.#o.timezone;
  }

  get events(): Bus {
    return this.#o.mirror.bus;
  }

  get ready(): boolean {
    return this.#o.ready();
  }

  list(): EntityView[] {
    return this.#o.mirror.list();
  }

  get(id: string): EntityView | undefined {
    return this.#o.mirror.get(id);
  }

  async button(id: string): Promise<EntityView | undefined> {
    return this.#o.buttons.read(id);
  }

  clocktime(): string {
    return clocktime(this.#o.clock.now(), this.#o.timezone);
  }

  async command(
    id: string,
    name: string,
    args: unknown = {},
    opts: CommandOptions = {},
  ): Promise<EntityView> {
    const known = this.#o.mirror.get(id);
    const agent = this.#o.mirror.agentOf(id);
    if (known?.driver === BUTTON_DRIVER || (!known && this.#o.buttons.isDeclared(id))) {
      return this.#buttonCommand(id, name, args);
    }
    if (agent === undefined) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
    // Checked here too, so a bad request is a 400 at once even when the agent is away.
    if (known) parseCommand(known.kind, id, name, args);
    const timeoutMs = opts.timeoutMs ?? this.#o.timeoutOf(id) ?? this.#o.mirror.timeoutOf(id) ?? 2000;
    return this.#o.channel.command(agent, { id, name, args: args ?? {} }, timeoutMs);
  }

  async setButton(id: string, state: 'on' | 'off'): Promise<EntityView> {
    const known = this.#o.mirror.get(id);
    if ((known && known.driver !== BUTTON_DRIVER) || this.#o.mirror.agentOf(id) !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_BAD_ID',
        `"${id}" is a ${known?.kind ?? 'device entity'}, not a button`,
      );
    }
    const { view, previous } = await this.#o.buttons.press(id, state);
    this.#o.mirror.apply(view, { previous });
    this.#o.channel.publishButton(view, previous);
    return view;
  }

  async removeButton(id: string): Promise<void> {
    const known = this.#o.mirror.get(id);
    if ((known && known.driver !== BUTTON_DRIVER) || this.#o.mirror.agentOf(id) !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_ENTITY_DECLARED',
        `"${id}" is a ${known?.kind ?? 'device entity'} of a device in the config; it cannot be deleted through the API`,
      );
    }
    if (!(await this.#o.buttons.remove(id)) && !known) {
      throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
    }
    this.#o.mirror.forget(id);
    this.#o.channel.forgetButton(id);
  }

  subscribe(listener: (e: EntityView) => void, owner?: string): () => void {
    const forward = (p: { id: string }) => {
      const v = this.#o.mirror.get(p.id);
      if (v) listener(v);
    };
    const offs = [
      this.#o.mirror.bus.on('entity.added', forward, owner),
      this.#o.mirror.bus.on('entity.state', forward, owner),
      this.#o.mirror.bus.on('entity.availability', forward, owner),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  onRemoved(listener: (e: BusEvents['entity.removed']) => void, owner?: string): () => void {
    return this.#o.mirror.bus.on('entity.removed', listener, owner);
  }

  onEvent(listener: (e: BusEvents['entity.event']) => void, owner?: string): () => void {
    return this.#o.mirror.bus.on('entity.event', listener, owner);
  }

  async #buttonCommand(id: string, name: string, args: unknown): Promise<EntityView> {
    parseCommand('button', id, name, args);
    return this.setButton(id, name as 'on' | 'off');
  }
}
