import type { Clock } from '../../src/core/clock.js';
import { systemClock } from '../../src/core/clock.js';
import type {
  CommandHandlers,
  DriverContext,
  EntityHandle,
  EntitySpec,
  MediaAccess,
} from '../../src/core/driver.js';
import type { Kind } from '../../src/core/kinds.js';
import { silentLogger } from '../../src/core/log.js';

/** What a driver added through the fake context, and what it reported on the handle since. */
export interface AddedEntity<K extends Kind = Kind> {
  spec: EntitySpec<K>;
  handlers: CommandHandlers<K>;
  /** Every setState, in order. */
  states: unknown[];
  /** The last setAvailable/setUnavailable; undefined before either. */
  available: boolean | undefined;
}

export interface FakeDriverContext {
  ctx: DriverContext;
  added: AddedEntity[];
  /** The entity with this id, typed as `kind`; throws if the driver added none. */
  entity<K extends Kind>(id: string, kind: K): AddedEntity<K>;
  /** Aborts ctx.signal, as the runtime does when it stops the driver. */
  controller: AbortController;
}

/**
 * A DriverContext standing in for the runtime, for testing one driver on its own against its
 * simulator: it records what the driver registers and reports. Tests through the real runtime
 * use test/support/hearth.ts instead.
 */
export function fakeDriverContext(opts: { clock?: Clock; media?: MediaAccess } = {}): FakeDriverContext {
  const added: AddedEntity[] = [];
  const controller = new AbortController();
  const ctx: DriverContext = {
    entities: {
      add<K extends Kind>(spec: EntitySpec<K>, handlers: CommandHandlers<K>): EntityHandle<K> {
        const record: AddedEntity<K> = { spec, handlers, states: [], available: undefined };
        added.push(record as unknown as AddedEntity);
        return {
          id: spec.id,
          setState: (state) => record.states.push(state),
          setAttributes() {},
          setUnavailable: () => {
            record.available = false;
          },
          setAvailable: () => {
            record.available = true;
          },
          fire() {},
        };
      },
      remove: (id) => {
        const i = added.findIndex((a) => a.spec.id === id);
        if (i >= 0) added.splice(i, 1);
      },
      ids: () => added.map((a) => a.spec.id),
    },
    log: silentLogger(),
    clock: opts.clock ?? systemClock,
    signal: controller.signal,
    ...(opts.media ? { media: opts.media } : {}),
  };
  const entity = <K extends Kind>(id: string, _kind: K): AddedEntity<K> => {
    const found = added.find((a) => a.spec.id === id);
    if (!found) throw new Error(`the driver added no entity "${id}"`);
    return found as unknown as AddedEntity<K>;
  };
  return { ctx, added, entity, controller };
}
