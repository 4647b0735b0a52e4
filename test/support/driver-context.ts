import type { Kind } from '../../src/contract/kinds.js';
import type { Clock } from '../../src/core/clock.js';
import { systemClock } from '../../src/core/clock.js';
import {
  type CommandHandlers,
  type DeviceConfig,
  type Driver,
  type DriverContext,
  declaredEntity,
  type EntityBinding,
  type EntityHandle,
  type EntitySpec,
  type MediaAccess,
} from '../../src/core/driver.js';
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
 * simulator: it records what the driver registers and reports. As the runtime does, it lets the
 * driver bind only what its `entities(config)` declares for `configs` (one device entry, or
 * several sharing the context), and add at run time only when it is `dynamic`. Tests through the real runtime use test/support/hearth.ts instead.
 */
export function fakeDriverContext<C extends DeviceConfig>(
  driver: Driver<C>,
  configs: C | readonly C[],
  opts: { clock?: Clock; media?: MediaAccess } = {},
): FakeDriverContext {
  const entries = Array.isArray(configs) ? (configs as readonly C[]) : [configs as C];
  const device = {
    driver: driver.name,
    id: entries.map((c) => c.id).join(', '),
    declared: entries.flatMap((c) => driver.entities(c)),
  };
  const added: AddedEntity[] = [];
  const controller = new AbortController();
  const add = <K extends Kind>(spec: EntitySpec<K>, handlers: CommandHandlers<K>): EntityHandle<K> => {
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
  };
  const ctx: DriverContext = {
    entities: {
      bind<K extends Kind>(
        id: string,
        kind: K,
        handlers: CommandHandlers<K>,
        binding: EntityBinding<K> = {},
      ): EntityHandle<K> {
        const decl = declaredEntity(device, id, kind);
        return add(
          {
            id,
            kind,
            name: decl.name,
            timeoutMs: decl.timeoutMs,
            pollMs: binding.pollMs ?? 0,
            ...(decl.attributes ? { attributes: decl.attributes } : {}),
            ...(binding.read ? { read: binding.read } : {}),
          },
          handlers,
        );
      },
      add<K extends Kind>(spec: EntitySpec<K>, handlers: CommandHandlers<K>): EntityHandle<K> {
        if (driver.dynamic !== true)
          throw new Error(`${driver.name} is not dynamic: it must bind the entities it declares`);
        return add(spec, handlers);
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
