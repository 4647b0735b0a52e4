import { commandNames, idPattern } from '../contract/kinds.js';
import type { Clock } from './clock.js';
import { HearthError, reasonOf } from './errors.js';
import type { Logger } from './log.js';
import { BUTTON_DRIVER, type EntityView } from './runtime-api.js';

/** How many buttons a press may create that the config does not declare. */
export const defaultMaxUndeclaredButtons = 100;

/** A button's stored row. */
interface ButtonRow {
  id: string;
  kind: string;
  state: unknown;
  updatedAt: number;
}

/** What the store must offer buttons (StateStore): their rows, durable on resolve. */
export interface ButtonRows {
  get(id: string): Promise<ButtonRow | undefined>;
  list(kind?: string): Promise<ButtonRow[]>;
  pressButton(
    press: { id: string; state: 'on' | 'off'; updatedAt: number },
    limit: { declared: readonly string[]; maxUndeclared: number },
  ): Promise<{ recorded: true; previous: ButtonRow | undefined } | { recorded: false; full: number }>;
  delete(id: string): Promise<boolean>;
}

export interface ButtonsOptions {
  /** `buttons:` of the config: never capped, never deletable, listed before their first press. */
  declared: ReadonlyArray<{ id: string; name: string }>;
  /**
   * How many button ids not under `buttons:` presses may create (`buttonLimits.maxUndeclared`,
   * default 100). Any LAN client can press a new id, and each one is an entity on every page.
   */
  maxUndeclared?: number;
  rows: ButtonRows;
  clock: Clock;
  log: Logger;
  /** The driver of the config's device entity `id`, if one has it: such an id is never a button. */
  deviceOf(id: string): string | undefined;
}

/** A press as recorded: the button's view now, and its state before (null: none). */
export interface Pressed {
  view: EntityView;
  previous: unknown;
  /** True when the press created the button. */
  created: boolean;
}

/**
 * Buttons: hearth-owned state that a wall button writes with `POST /api/v0/buttons/<id>/on`.
 * The store is their truth, so every process that answers for them (one box, each api replica)
 * gives the same answer, and the cap on buttons that presses create holds across all of them.
 * This says what a press, a read and a delete do; the caller applies the result to its
 * entities and tells its listeners.
 */
export class Buttons {
  readonly #o: ButtonsOptions;
  readonly #names: ReadonlyMap<string, string>;
  readonly #limit: { declared: readonly string[]; maxUndeclared: number };

  constructor(opts: ButtonsOptions) {
    this.#o = opts;
    this.#names = new Map(opts.declared.map((b) => [b.id, b.name]));
    this.#limit = {
      declared: opts.declared.map((b) => b.id),
      maxUndeclared: opts.maxUndeclared ?? defaultMaxUndeclaredButtons,
    };
  }

  /** True for an id under `buttons:` in the config. */
  isDeclared(id: string): boolean {
    return this.#names.has(id);
  }

  /**
   * Every button: the declared ones (with no state until pressed) and those the store has. A
   * stored button whose id a device of the config now has is deleted: the config wins, or the
   * device could never register ("used by hearth and wemo", retried forever).
   */
  async load(): Promise<EntityView[]> {
    const stored = new Map<string, EntityView>();
    for (const row of await this.#o.rows.list('button')) {
      const device = this.#o.deviceOf(row.id);
      if (device !== undefined) {
        await this.#dropShadowed(row.id, device);
        continue;
      }
      stored.set(row.id, this.#view(row.id, row.state, row.updatedAt));
    }
    const views = this.#o.declared.map((b) => stored.get(b.id) ?? this.#view(b.id, null, null));
    for (const [id, v] of stored) if (!this.#names.has(id)) views.push(v);
    const undeclared = views.length - this.#o.declared.length;
    if (undeclared > this.#limit.maxUndeclared) {
      // Kept, not dropped: each one is a press someone was told was recorded.
      this.#o.log.warn(
        { undeclared, maxUndeclared: this.#limit.maxUndeclared },
        'more pressed buttons are stored than buttonLimits.maxUndeclared allows; presses of new ids are refused until some are deleted with DELETE /api/v1/entities/<id> or declared under buttons:',
      );
    }
    return views;
  }

  /** A button as the store has it now; undefined for an id never pressed (or deleted). */
  async read(id: string): Promise<EntityView | undefined> {
    if (!idPattern.test(id)) return undefined;
    const row = await this.#o.rows.get(id);
    if (row?.kind !== 'button') return undefined;
    return this.#view(id, row.state, row.updatedAt);
  }

  /**
   * Records a press durably, creating the button on first use; resolves only once the store
   * has committed it, so an acknowledged press survives a crash or a power cut. Throws
   * HearthError: a bad id, a device's id, the cap reached (409), the store unavailable.
   */
  async press(id: string, state: 'on' | 'off'): Promise<Pressed> {
    if (!idPattern.test(id)) {
      throw new HearthError('HEARTH_ERR_BAD_ID', `bad button id ${JSON.stringify(id.slice(0, 80))}`);
    }
    // A device that has not registered yet (still starting, or failing) still owns its ids.
    const device = this.#o.deviceOf(id);
    if (device !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_BAD_ID',
        `"${id}" is an entity of a ${device} device in the config, not a button`,
      );
    }
    const at = this.#o.clock.now();
    let result: Awaited<ReturnType<ButtonRows['pressButton']>>;
    try {
      result = await this.#o.rows.pressButton({ id, state, updatedAt: at }, this.#limit);
    } catch (err) {
      // The store's own error says 503 when the database is away: never a 200 that is lost.
      if (err instanceof HearthError) throw err;
      throw new HearthError('HEARTH_ERR_STORE', `could not record button ${id}: ${reasonOf(err)}`, {
        cause: err,
      });
    }
    if (!result.recorded) {
      const max = this.#limit.maxUndeclared;
      throw new HearthError(
        'HEARTH_ERR_TOO_MANY_BUTTONS',
        `button "${id}" was not created: ${result.full} buttons that are not under buttons: in the config exist already, the most buttonLimits.maxUndeclared allows (${max}); delete unused ones with DELETE /api/v1/entities/<id>, or declare "${id}" under buttons:`,
      );
    }
    const before = result.previous?.kind === 'button' ? result.previous : undefined;
    return { view: this.#view(id, state, at), previous: before?.state ?? null, created: !before };
  }

  /**
   * Deletes a button that a press created; resolves true if the store had it. A declared
   * button or a device's id is the config's to remove: HEARTH_ERR_ENTITY_DECLARED.
   */
  async remove(id: string): Promise<boolean> {
    const device = this.#o.deviceOf(id);
    if (device !== undefined) {
      throw new HearthError(
        'HEARTH_ERR_ENTITY_DECLARED',
        `"${id}" is an entity of the ${device} device in the config; it cannot be deleted through the API`,
      );
    }
    if (this.#names.has(id)) {
      throw new HearthError(
        'HEARTH_ERR_ENTITY_DECLARED',
        `button "${id}" is declared under buttons: in the config; it cannot be deleted through the API`,
      );
    }
    try {
      return await this.#o.rows.delete(id);
    } catch (err) {
      if (err instanceof HearthError) throw err;
      throw new HearthError('HEARTH_ERR_STORE', `could not delete button ${id}: ${reasonOf(err)}`, {
        cause: err,
      });
    }
  }

  #view(id: string, state: unknown, updatedAt: number | null): EntityView {
    return buttonView(id, this.#names.get(id) ?? id, state, updatedAt);
  }

  async #dropShadowed(id: string, driver: string): Promise<void> {
    this.#o.log.warn(
      { entity: id, driver },
      `a stored button has the id "${id}" of a ${driver} device in the config; the config wins: the button is deleted`,
    );
    try {
      await this.#o.rows.delete(id);
    } catch (err) {
      // Not fatal: the button is not loaded either way, and the next start tries again.
      this.#o.log.warn({ entity: id, err: reasonOf(err) }, 'could not delete the stored button');
    }
  }
}

/** A button as every transport shows it. */
export function buttonView(id: string, name: string, state: unknown, updatedAt: number | null): EntityView {
  return {
    id,
    kind: 'button',
    name,
    driver: BUTTON_DRIVER,
    state,
    available: true,
    reason: null,
    updatedAt: updatedAt === null ? null : new Date(updatedAt).toISOString(),
    commands: commandNames('button'),
    attributes: {},
  };
}
