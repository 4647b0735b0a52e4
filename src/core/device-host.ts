import { commandNames, type Kind } from '../contract/kinds.js';
import type { Bus, BusEvents } from './bus.js';
import type { Clock, Timer } from './clock.js';
import { clocktime } from './clock.js';
import { parseCommand } from './command-args.js';
import { withDeadline } from './deadline.js';
import {
  type CallContext,
  type DeviceConfig,
  type Driver,
  type DriverContext,
  declaredEntity,
  type EntityHandle,
  type EntitySpec,
  type MediaAccess,
  type MqttAccess,
  type SimulatorHandle,
} from './driver.js';
import { HearthError, reasonOf } from './errors.js';
import type { Logger } from './log.js';
import type { CommandOptions, DeviceApi, EntityView } from './runtime-api.js';
import { QueueFullError, SerialQueue } from './serial-queue.js';
import { Supervisor } from './supervisor.js';

export interface DeviceHostOptions {
  timezone: string;
  devices: ReadonlyArray<{ driver: Driver; config: DeviceConfig & Record<string, unknown> }>;
  /** Where the entities' changes and the devices' calls are announced. */
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** The chime media folder, handed to drivers that play its files. */
  media?: MediaAccess;
  /** The process's MQTT connection, handed to drivers that speak MQTT. */
  mqtt?: MqttAccess;
}

type Handler = (args: unknown, call: CallContext) => Promise<unknown>;

interface EntityRecord {
  id: string;
  kind: Kind;
  name: string;
  driver: string;
  state: unknown;
  available: boolean;
  reason: string | null;
  updatedAt: number | null;
  timeoutMs: number;
  pollMs: number;
  read: ((call: CallContext) => Promise<unknown>) | undefined;
  handlers: Record<string, Handler>;
  attributes: Record<string, unknown>;
  /** Commands and reads of one entity run one at a time, so a toggle's get-then-set is not interleaved. */
  queue: SerialQueue;
  pollTimer: Timer | undefined;
}

/** Commands and reads that may wait for one entity; each also has its own deadline. */
const ENTITY_QUEUE_LIMIT = 100;

/**
 * The device host, an agent's engine: it starts each configured device's driver under a
 * supervisor, keeps the table of their entities, polls them, and runs commands one at a time per
 * entity, each within its deadline. Every change is announced on its bus. It keeps no state of
 * hearth's own (buttons are the house's, src/house/runtime.ts).
 */
export class DeviceHost implements DeviceApi {
  readonly #opts: DeviceHostOptions;
  readonly #entities = new Map<string, EntityRecord>();
  readonly #supervisor: Supervisor;
  readonly #stopping = new AbortController();
  readonly #simulators: SimulatorHandle[] = [];
  #ready = false;

  constructor(opts: DeviceHostOptions) {
    this.#opts = opts;
    this.#supervisor = new Supervisor({ log: opts.log, clock: opts.clock });
  }

  /** True once every device has had its first start attempt. */
  get ready(): boolean {
    return this.#ready;
  }

  get timezone(): string {
    return this.#opts.timezone;
  }

  get events(): Bus {
    return this.#opts.bus;
  }

  async start(): Promise<void> {
    await Promise.all(this.#opts.devices.map((d) => this.#startDevice(d.driver, d.config)));
    this.#ready = true;
  }

  async stop(): Promise<void> {
    this.#ready = false;
    this.#stopping.abort(new HearthError('HEARTH_ERR_NOT_READY', 'hearth is stopping'));
    for (const e of this.#entities.values()) if (e.pollTimer) this.#opts.clock.clearTimeout(e.pollTimer);
    await this.#supervisor.stop();
    await Promise.all(this.#simulators.map((s) => s.close()));
  }

  list(): EntityView[] {
    return [...this.#entities.values()].map(view);
  }

  get(id: string): EntityView | undefined {
    const e = this.#entities.get(id);
    return e ? view(e) : undefined;
  }

  /** The current wall-clock time in the configured zone, `HHMM`. */
  clocktime(): string {
    return clocktime(this.#opts.clock.now(), this.#opts.timezone);
  }

  /**
   * Sends a command to an entity and resolves with its view afterwards. Throws HearthError:
   * not found, unknown command, bad arguments, device timeout or device failure.
   */
  async command(
    id: string,
    name: string,
    args: unknown = {},
    opts: CommandOptions = {},
  ): Promise<EntityView> {
    const e = this.#entities.get(id);
    if (!e) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
    const parsed = parseCommand(e.kind, id, name, args);
    const handler = e.handlers[name];
    if (!handler) {
      throw new HearthError(
        'HEARTH_ERR_UNKNOWN_COMMAND',
        `driver ${e.driver} does not implement ${id}.${name}`,
      );
    }
    // The deadline runs from now, so a command queued behind a slow call still answers in time;
    // a caller's shorter deadline (a request from another box) wins.
    const deadline = performance.now() + Math.min(e.timeoutMs, opts.timeoutMs ?? Number.POSITIVE_INFINITY);
    await this.#serial(e, () => this.#call(e, name, (signal) => handler(parsed, { signal }), deadline));
    return view(e);
  }

  /** Calls `listener` on every state change; returns the unsubscribe function. */
  subscribe(listener: (e: EntityView) => void, owner?: string): () => void {
    const forward = (p: { id: string }) => {
      const e = this.#entities.get(p.id);
      if (e) listener(view(e));
    };
    const offs = [
      this.#opts.bus.on('entity.added', forward, owner),
      this.#opts.bus.on('entity.state', forward, owner),
      this.#opts.bus.on('entity.availability', forward, owner),
    ];
    return () => {
      for (const off of offs) off();
    };
  }

  /** Calls `listener` when an entity goes away; returns the unsubscribe function. */
  onRemoved(listener: (e: BusEvents['entity.removed']) => void, owner?: string): () => void {
    return this.#opts.bus.on('entity.removed', listener, owner);
  }

  /**
   * Calls `listener` on every event an entity fires (EntityHandle.fire: a calendar event's
   * `start` and `end`); returns the unsubscribe function.
   */
  onEvent(listener: (e: BusEvents['entity.event']) => void, owner?: string): () => void {
    return this.#opts.bus.on('entity.event', listener, owner);
  }

  #register(spec: EntitySpec<Kind>, handlers: Record<string, Handler>, driver: string): EntityRecord {
    const existing = this.#entities.get(spec.id);
    if (existing && existing.driver !== driver) {
      throw new HearthError(
        'HEARTH_ERR_CONFIG',
        `entity id "${spec.id}" is used by ${existing.driver} and ${driver}`,
      );
    }
    const e: EntityRecord = existing ?? {
      id: spec.id,
      kind: spec.kind,
      name: spec.name,
      driver,
      state: null,
      available: true,
      reason: null,
      updatedAt: null,
      timeoutMs: spec.timeoutMs,
      pollMs: spec.pollMs,
      read: undefined,
      handlers: {},
      attributes: {},
      queue: new SerialQueue(`commands for ${spec.id}`, ENTITY_QUEUE_LIMIT),
      pollTimer: undefined,
    };
    // A restarted driver registers again: keep the state, take the new handlers.
    e.name = spec.name;
    e.timeoutMs = spec.timeoutMs;
    e.pollMs = spec.pollMs;
    e.read = spec.read as EntityRecord['read'];
    e.handlers = handlers;
    e.attributes = { ...e.attributes, ...spec.attributes };
    this.#entities.set(e.id, e);
    if (!existing)
      this.#opts.bus.emit('entity.added', { id: e.id, kind: e.kind, at: this.#opts.clock.now() });
    return e;
  }

  /** Forgets an entity: its poll stops, a command waiting for it still ends by its deadline. */
  #remove(e: EntityRecord): void {
    if (this.#entities.get(e.id) !== e) return;
    if (e.pollTimer) this.#opts.clock.clearTimeout(e.pollTimer);
    e.pollTimer = undefined;
    e.read = undefined;
    this.#entities.delete(e.id);
    this.#opts.bus.emit('entity.removed', { id: e.id, kind: e.kind, at: this.#opts.clock.now() });
  }

  async #startDevice(driver: Driver, config: DeviceConfig & Record<string, unknown>): Promise<void> {
    const name = `${driver.name} ${config.id}`;
    const log = this.#opts.log.child({ driver: driver.name, device: config.id });
    let effective = config;
    if (config.simulate) {
      if (!driver.simulator)
        throw new HearthError('HEARTH_ERR_CONFIG', `driver ${driver.name} has no simulator`);
      try {
        const sim = await driver.simulator.start({
          host: '127.0.0.1',
          port: typeof config.port === 'number' ? config.port : 0,
          path: typeof config.path === 'string' ? config.path : `/tmp/hearth-sim-${config.id}`,
          log,
        });
        this.#simulators.push(sim);
        effective =
          driver.simulator.transport === 'serial'
            ? { ...config, path: sim.path }
            : { ...config, address: sim.host, port: sim.port };
        log.info({ at: sim.path ?? `${sim.host}:${sim.port}` }, 'simulated device started');
      } catch (err) {
        // The device still gets its entities; they stay unavailable and say why.
        log.warn({ err: reasonOf(err) }, 'the simulated device could not start');
      }
    }
    const owned: EntityRecord[] = [];
    // What the device's entry declares (from the config as written: a simulator moves the
    // device, never its entities) is all it may bind; only a dynamic bridge adds at run time.
    const device = { driver: driver.name, id: config.id, declared: driver.entities(config) };
    await this.#supervisor.add({
      name,
      start: async (signal) => {
        const take = (spec: EntitySpec<Kind>, handlers: Record<string, Handler>) => {
          const e = this.#register(spec, handlers, driver.name);
          if (!owned.includes(e)) owned.push(e);
          this.#schedulePoll(e, 0);
          return e;
        };
        const ctx: DriverContext = {
          entities: {
            bind: (id, kind, handlers, binding = {}) => {
              const decl = declaredEntity(device, id, kind);
              const spec: EntitySpec<Kind> = {
                id,
                kind,
                name: decl.name,
                timeoutMs: decl.timeoutMs,
                pollMs: binding.pollMs ?? 0,
                ...(decl.attributes ? { attributes: decl.attributes } : {}),
                ...(binding.read ? { read: binding.read as EntitySpec<Kind>['read'] } : {}),
              };
              return this.#handle(take(spec, handlers as Record<string, Handler>));
            },
            add: (spec, handlers) => {
              if (driver.dynamic !== true) {
                throw new HearthError(
                  'HEARTH_ERR_CONFIG',
                  `the ${driver.name} driver adds entity "${spec.id}" at run time for device "${config.id}", but only a driver with dynamic: true may; declare it in entities(config) and bind it`,
                );
              }
              return this.#handle(take(spec as EntitySpec<Kind>, handlers as Record<string, Handler>));
            },
            remove: (id) => {
              const i = owned.findIndex((e) => e.id === id);
              if (i < 0) return;
              const [e] = owned.splice(i, 1) as [EntityRecord];
              this.#remove(e);
            },
            ids: () => owned.map((e) => e.id),
          },
          log,
          clock: this.#opts.clock,
          timezone: this.#opts.timezone,
          signal,
          media: this.#opts.media,
          ...(this.#opts.mqtt ? { mqtt: this.#opts.mqtt } : {}),
        };
        const running = await driver.setup(ctx, effective);
        return () => running.stop();
      },
      onFailure: (reason) => {
        for (const e of owned) this.#markUnavailable(e, `driver failed to start: ${reason}`);
      },
    });
  }

  /** What a driver holds of one of its entities. */
  #handle<K extends Kind>(e: EntityRecord): EntityHandle<K> {
    return {
      id: e.id,
      setState: (s, o) => this.#applyState(e, s, this.#opts.clock.now(), o?.always === true),
      setAttributes: (attrs) => this.#setAttributes(e, attrs),
      fire: (event, data) =>
        this.#opts.bus.emit('entity.event', {
          id: e.id,
          kind: e.kind,
          event,
          data,
          at: this.#opts.clock.now(),
        }),
      setUnavailable: (reason) => this.#markUnavailable(e, reason),
      setAvailable: () => this.#markAvailable(e),
    };
  }

  #schedulePoll(e: EntityRecord, delayMs: number): void {
    if (!e.read || e.pollMs <= 0 || this.#stopping.signal.aborted) return;
    if (e.pollTimer) this.#opts.clock.clearTimeout(e.pollTimer);
    e.pollTimer = this.#opts.clock.setTimeout(() => {
      e.pollTimer = undefined;
      const read = e.read;
      if (!read) return;
      this.#serial(e, () =>
        this.#call(e, 'read', (signal) => read({ signal }), performance.now() + e.timeoutMs),
      )
        .catch(() => {
          // Already recorded as unavailable by #call; the next poll retries.
        })
        .finally(() => this.#schedulePoll(e, e.pollMs));
    }, delayMs);
    e.pollTimer.unref?.();
  }

  #serial<T>(e: EntityRecord, fn: () => Promise<T>): Promise<T> {
    return e.queue.run(fn).catch((err: unknown) => {
      if (!(err instanceof QueueFullError)) throw err;
      throw new HearthError('HEARTH_ERR_DEVICE_FAILED', err.message, {
        cause: err,
        hint: `The device behind ${e.id} is not keeping up; send fewer commands at once, or check the device.`,
      });
    });
  }

  async #call(
    e: EntityRecord,
    op: string,
    fn: (signal: AbortSignal) => Promise<unknown>,
    deadline: number,
  ): Promise<void> {
    if (this.#stopping.signal.aborted) throw new HearthError('HEARTH_ERR_NOT_READY', 'hearth is stopping');
    const started = performance.now();
    const what = `${e.driver} device for "${e.id}"`;
    try {
      const remaining = Math.round(deadline - started);
      if (remaining <= 0) {
        // Never send a command late: the person has already been told it failed.
        throw new HearthError(
          'HEARTH_ERR_DEVICE_TIMEOUT',
          `${what} did not answer within ${e.timeoutMs} ms (earlier calls to it were still waiting)`,
        );
      }
      const state = await withDeadline(fn, remaining, what, this.#stopping.signal, e.timeoutMs);
      this.#opts.bus.emit('device.call', {
        driver: e.driver,
        entity: e.id,
        op,
        durationMs: performance.now() - started,
        outcome: 'ok',
      });
      this.#markAvailable(e);
      this.#applyState(e, state, this.#opts.clock.now());
    } catch (err) {
      // A handler that refuses the arguments (a chime file that is not there) says so before
      // touching the device: the caller's mistake, not a device fault.
      if (err instanceof HearthError && err.status < 500) throw err;
      const timeout = err instanceof HearthError && err.code === 'HEARTH_ERR_DEVICE_TIMEOUT';
      this.#opts.bus.emit('device.call', {
        driver: e.driver,
        entity: e.id,
        op,
        durationMs: performance.now() - started,
        outcome: timeout ? 'timeout' : 'error',
      });
      if (err instanceof HearthError && err.code === 'HEARTH_ERR_NOT_READY') throw err;
      const reason = reasonOf(err);
      this.#markUnavailable(e, reason);
      if (timeout) throw err;
      throw new HearthError('HEARTH_ERR_DEVICE_FAILED', `${what} failed: ${reason}`, { cause: err });
    }
  }

  #applyState(e: EntityRecord, state: unknown, at: number, always = false): void {
    const previous = e.state;
    e.state = state;
    e.updatedAt = at;
    if (always || !sameState(previous, state)) {
      this.#opts.bus.emit('entity.state', { id: e.id, kind: e.kind, state, previous, at });
    }
  }

  #setAttributes(e: EntityRecord, attrs: Record<string, unknown>): void {
    const next = { ...e.attributes };
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    if (sameState(next, e.attributes)) return;
    e.attributes = next;
    this.#opts.bus.emit('entity.state', {
      id: e.id,
      kind: e.kind,
      state: e.state,
      previous: e.state,
      at: this.#opts.clock.now(),
    });
  }

  #markUnavailable(e: EntityRecord, reason: string): void {
    const was = e.available;
    const before = e.reason;
    e.available = false;
    e.reason = reason;
    if (!was) {
      // Still unavailable, for another reason now ("connecting" became "cannot open"): said on
      // the bus, so whoever shows the entity shows why, but not logged again.
      if (reason !== before) this.#announceAvailability(e);
      return;
    }
    // Logged once per outage, not once per poll; a device still being reached at start-up
    // (no state yet) is not yet a fault worth a warning.
    if (e.updatedAt === null)
      this.#opts.log.info({ entity: e.id, driver: e.driver, reason }, 'entity not yet available');
    else this.#opts.log.warn({ entity: e.id, driver: e.driver, reason }, 'entity unavailable');
    this.#announceAvailability(e);
  }

  #announceAvailability(e: EntityRecord): void {
    this.#opts.bus.emit('entity.availability', {
      id: e.id,
      kind: e.kind,
      available: e.available,
      reason: e.reason,
      at: this.#opts.clock.now(),
    });
  }

  #markAvailable(e: EntityRecord): void {
    if (e.available) return;
    e.available = true;
    e.reason = null;
    this.#opts.log.info({ entity: e.id, driver: e.driver }, 'entity available again');
    this.#announceAvailability(e);
  }
}

function sameState(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  return typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b);
}

function view(e: EntityRecord): EntityView {
  return {
    id: e.id,
    kind: e.kind,
    name: e.name,
    driver: e.driver,
    state: e.state,
    available: e.available,
    reason: e.reason,
    updatedAt: e.updatedAt === null ? null : new Date(e.updatedAt).toISOString(),
    commands: commandNames(e.kind),
    attributes: e.attributes,
  };
}
