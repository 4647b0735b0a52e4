import type { Bus, BusEvents } from '../core/bus.js';
import type { Buttons } from '../core/buttons.js';
import { type Clock, clocktime } from '../core/clock.js';
import { parseCommand } from '../core/command-args.js';
import { HearthError } from '../core/errors.js';
import { BUTTON_DRIVER, type CommandOptions, type EntityView, type RuntimeApi } from '../core/runtime-api.js';
import { QueueFullError, SerialQueue } from '../core/serial-queue.js';
import type { HouseLink } from './link.js';
import type { EntityMirror } from './mirror.js';

export interface HouseRuntimeOptions {
  timezone: string;
  clock: Clock;
  mirror: EntityMirror;
  link: HouseLink;
  /** Buttons, in the shared store. */
  buttons: Buttons;
  /** Each entity's own deadline (its device's `timeoutMs`), by id. */
  timeoutOf: (id: string) => number | undefined;
  /** False until the mirror knows what the agents run (the broker's retained state; the agents of this process started). */
  ready: () => boolean;
}

/**
 * The runtime API as the api and controller services use it, on one box and in a cluster alike:
 * entities are read from the mirror of what agents publish, commands travel over the link to the
 * agent that runs the device (in this process or another), and buttons are written to and read
 * from the store, which every process of a house shares. The button rules live here, once.
 */
export class HouseRuntime implements RuntimeApi {
  readonly #o: HouseRuntimeOptions;
  /** Presses and deletes of one button, in line: the mirror shows the last one the store committed. */
  readonly #lines = new Map<string, SerialQueue>();

  constructor(opts: HouseRuntimeOptions) {
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
    // A device the broker's absence has made unreachable fails at once, saying why.
    if (known && !known.available && known.reason !== null && !this.#o.link.connected) {
      throw new HearthError('HEARTH_ERR_NOT_READY', known.reason);
    }
    const timeoutMs = opts.timeoutMs ?? this.#o.timeoutOf(id) ?? this.#o.mirror.timeoutOf(id) ?? 2000;
    return this.#o.link.command(agent, { id, name, args: args ?? {} }, timeoutMs);
  }

  async setButton(id: string, state: 'on' | 'off'): Promise<EntityView> {
    const known = this.#o.mirror.get(id);
    if ((known && known.driver !== BUTTON_DRIVER) || this.#o.mirror.agentOf(id) !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_BAD_ID',
        `"${id}" is a ${known?.kind ?? 'device entity'}, not a button`,
      );
    }
    return this.#inLine(id, async () => {
      const { view, previous } = await this.#o.buttons.press(id, state);
      this.#o.mirror.apply(view, { previous });
      this.#o.link.button(id, { view, previous });
      return view;
    });
  }

  async removeButton(id: string): Promise<void> {
    const known = this.#o.mirror.get(id);
    if ((known && known.driver !== BUTTON_DRIVER) || this.#o.mirror.agentOf(id) !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_ENTITY_DECLARED',
        `"${id}" is a ${known?.kind ?? 'device entity'} of a device in the config; it cannot be deleted through the API`,
      );
    }
    await this.#inLine(id, async () => {
      if (!(await this.#o.buttons.remove(id)) && !known) {
        throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
      }
      this.#o.mirror.forget(id);
      this.#o.link.button(id, null);
    });
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

  /** Runs `fn` after the earlier presses and deletes of button `id` (at most 100 waiting). */
  #inLine<T>(id: string, fn: () => Promise<T>): Promise<T> {
    let line = this.#lines.get(id);
    if (!line) {
      line = new SerialQueue(`presses of button ${id}`, 100);
      this.#lines.set(id, line);
    }
    const queue = line;
    const done = () => {
      if (queue.size === 0 && this.#lines.get(id) === queue) this.#lines.delete(id);
    };
    return queue.run(fn).then(
      (v) => {
        done();
        return v;
      },
      (err: unknown) => {
        done();
        if (!(err instanceof QueueFullError)) throw err;
        throw new HearthError('HEARTH_ERR_STORE', err.message, { cause: err });
      },
    );
  }

  async #buttonCommand(id: string, name: string, args: unknown): Promise<EntityView> {
    parseCommand('button', id, name, args);
    return this.setButton(id, name as 'on' | 'off');
  }
}
