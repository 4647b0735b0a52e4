import type { z } from 'zod/v3';
import type { CommandArgs, CommandName, Kind, StateOf } from '../contract/kinds.js';
import type { Clock } from './clock.js';
import { HearthError } from './errors.js';
import type { Logger } from './log.js';

/** What a device call receives: abort it when the signal fires (deadline or shutdown). */
export interface CallContext {
  signal: AbortSignal;
}

/** One handler per command of the kind; each resolves with the device's state afterwards. */
export type CommandHandlers<K extends Kind> = {
  [C in CommandName<K>]: (args: CommandArgs<K, C>, call: CallContext) => Promise<StateOf<K>>;
};

export interface EntitySpec<K extends Kind> {
  id: string;
  kind: K;
  name: string;
  /** Deadline of every call to the device for this entity, in ms. */
  timeoutMs: number;
  /** How often the runtime reads the device's state, in ms; 0 never. */
  pollMs: number;
  /** Fixed facts shown with the entity, e.g. `{ unit: '°C' }`. */
  attributes?: Record<string, unknown>;
  /** Reads the device's state; used by polling and to recover an unavailable entity. */
  read?: (call: CallContext) => Promise<StateOf<K>>;
}

export interface EntityHandle<K extends Kind> {
  readonly id: string;
  /**
   * Reports a state the device pushed or the driver learnt some other way. A state equal to the
   * last one is announced only with `always` (a remote's second "single" press is a press).
   */
  setState(state: StateOf<K>, options?: { always?: boolean }): void;
  /** Merges facts that change with the state, e.g. `{ until: '2026-11-22T07:15:00Z' }`; null removes one. */
  setAttributes(attributes: Record<string, unknown>): void;
  setUnavailable(reason: string): void;
  setAvailable(): void;
  /**
   * Announces something that happened, beside state: a calendar event starting (`start`,
   * `{ summary, start, end }`). Automations trigger on these; nothing is stored.
   */
  fire(event: string, data: Record<string, unknown>): void;
}

/** The media folder that hearth serves at `/api/v0/chime/<file>`, for drivers that play its files. */
export interface MediaAccess {
  /** Where the folder is, for messages. */
  readonly dir: string;
  /** True if `file` is a plain file name of a file in the media folder. */
  has(file: string): Promise<boolean>;
  /**
   * The URL a device at `device` fetches `file` from: `media.baseUrl` when configured, else this
   * box's address on the network that reaches the device, with the control listener's port.
   */
  url(file: string, device: { host: string; port: number }): Promise<string>;
  /** The Content-Type the file is served with, e.g. `audio/mpeg`. */
  contentType(file: string): string;
}

/** How the runtime reaches a bound entity's device beside its commands. */
export interface EntityBinding<K extends Kind> {
  /** How often the runtime reads the device's state, in ms; 0 (the default) never. */
  pollMs?: number;
  /** Reads the device's state; used by polling and to recover an unavailable entity. */
  read?: (call: CallContext) => Promise<StateOf<K>>;
}

/** One object, so the contract can grow without breaking drivers. */
export interface DriverContext {
  entities: {
    /**
     * Binds the device's commands to `id`, an entity that the driver's `entities(config)`
     * declared: its kind, name, deadline and fixed attributes are the declaration's, so every
     * process sees the same entity whether or not it runs the device. Binding again after a
     * restart of the driver takes the entity back (its state is kept). Throws
     * HEARTH_ERR_CONFIG for an id the driver did not declare, or declared as another kind.
     */
    bind<K extends Kind>(
      id: string,
      kind: K,
      handlers: CommandHandlers<K>,
      binding?: EntityBinding<K>,
    ): EntityHandle<K>;
    /**
     * Adds an entity found at run time: only a driver with `dynamic: true` (a zigbee2mqtt
     * bridge, whose devices are known once it runs) may; any other throws HEARTH_ERR_CONFIG.
     * Throws HEARTH_ERR_CONFIG too when another driver (or a pressed button) has the id.
     */
    add<K extends Kind>(spec: EntitySpec<K>, handlers: CommandHandlers<K>): EntityHandle<K>;
    /**
     * Removes an entity this device added; for devices found at run time (a zigbee device
     * removed or renamed in zigbee2mqtt). Entities of other devices are never touched.
     */
    remove(id: string): void;
    /** The ids this device has bound or added and not removed, across restarts of the driver. */
    ids(): string[];
  };
  log: Logger;
  clock: Clock;
  /** hearth's `timezone:` (IANA), for drivers that reason in local time; UTC when absent. */
  timezone?: string;
  /** Aborts when the device is stopped. */
  signal: AbortSignal;
  /** The chime media folder (`media:` in the config); absent where no runtime set one (driver unit tests). */
  media?: MediaAccess;
  /** The process's MQTT connection (`mqtt:` in the config); absent without one. */
  mqtt?: MqttAccess;
}

/** One message from the broker. */
export interface MqttMessage {
  topic: string;
  payload: Buffer;
  /** A retained copy delivered on subscribing, not a live message. */
  retain: boolean;
}

/**
 * The process's one MQTT connection, for drivers that speak MQTT (zigbee2mqtt, mqtt_things) and
 * for Home Assistant discovery. One connection per process, shared with the cluster's bus.
 */
export interface MqttAccess {
  /**
   * Calls `handler` for each message on topics matching `filter` (MQTT wildcards `+` and `#`),
   * again after every reconnect; a handler that throws is logged and counted, never fatal.
   * Returns the function that stops it; `owner` names the caller in logs.
   */
  subscribe(filter: string, handler: (message: MqttMessage) => void, owner: string): () => void;
  /** Publishes, or keeps it for the reconnect (bounded); never throws. Retained ones are re-sent after a reconnect. */
  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: 0 | 1 }): void;
  /** Counts and logs (rate-limited) a payload that was not what the topic should carry. */
  garbage(topic: string, why: string): void;
  readonly connected: boolean;
  /** Calls `listener` with true on every (re)connect and false on every loss; returns the unsubscribe. */
  onConnection(listener: (up: boolean) => void): () => void;
}

export interface Running {
  /** Close everything and leave the device safe. */
  stop(): Promise<void>;
}

/** Fields every device entry of the config has, whatever its driver. */
export interface DeviceConfig {
  id: string;
  kind: string;
  name: string;
  /** Start this driver's simulator in-process and point the device at it (the demo). */
  simulate: boolean;
  /** The agent that runs it in a cluster; `main` when left out. */
  agent?: string;
}

export interface SimulatorHandle {
  /** Where a network simulator listens. */
  host?: string;
  port?: number;
  /** The device end of a serial simulator's pseudo-terminal, for hearth to open. */
  path?: string;
  close(): Promise<void>;
}

export interface Simulator {
  /**
   * `network`: listens on host:port. `serial`: makes a pseudo-terminal whose device end is
   * `path`. `mqtt`: publishes as the device would on the broker at `mqttUrl`.
   */
  transport: 'network' | 'serial' | 'mqtt';
  /** The port the real device listens on; `hearth sim` uses it when no --port is given. */
  defaultPort?: number;
  start(options: {
    host: string;
    port: number;
    path: string;
    log: Logger;
    /** The broker of an `mqtt` simulator, e.g. mqtt://127.0.0.1:1883. */
    mqttUrl?: string;
    /** Its topic prefix (zigbee2mqtt's base topic). */
    baseTopic?: string;
  }): Promise<SimulatorHandle>;
}

/**
 * A simulator whose code loads the first time it is started, so `hearth start` with real
 * devices never parses it. `facts` are what `hearth sim` needs before starting one.
 */
export function lazySimulator(facts: Omit<Simulator, 'start'>, load: () => Promise<Simulator>): Simulator {
  return { ...facts, start: async (options) => (await load()).start(options) };
}

/** The lists of devices in the config, and what one entry of each is called in messages. */
export const deviceSections = {
  switches: 'switch',
  coffee: 'coffee pot',
  sprinklers: 'sprinkler board',
  speakers: 'speaker',
  calendars: 'calendar',
  things: 'MQTT thing',
  zigbee2mqtt: 'zigbee2mqtt bridge',
} as const;

/** Sections that hold one mapping, not a list (`zigbee2mqtt: { baseTopic: zigbee2mqtt }`). */
export const singleSections: ReadonlySet<DeviceSection> = new Set(['zigbee2mqtt']);

/** The `kind` an entry of a section gets when it names none (a calendar is a calendar). */
export const defaultKinds: Partial<Record<DeviceSection, string>> = {
  calendars: 'ical/v1',
  zigbee2mqtt: 'zigbee2mqtt/v1',
};
export type DeviceSection = keyof typeof deviceSections;

/** An entity as a device entry declares it (see Driver.entities). */
export interface EntityDecl {
  id: string;
  kind: Kind;
  name: string;
  /** The deadline of a command to it, in ms: what a caller on another box waits at most. */
  timeoutMs: number;
  /** Fixed facts shown with the entity before its device has been reached (a sensor's unit). */
  attributes?: Record<string, unknown>;
}

/** What a driver folder exports. Adding a device type touches its folder and one registry line. */
export interface Driver<C extends DeviceConfig = DeviceConfig> {
  /** 'wemo' */
  name: string;
  /** The `kind:` strings of config entries this driver serves, e.g. ['wemo/v1']. */
  configKinds: readonly string[];
  /** Which list of the config holds its devices. */
  section: DeviceSection;
  /**
   * The entities a device entry creates, from its config alone, without touching the device:
   * every process (an api replica, `hearth check`) knows every entity, its kind and its deadline
   * before any driver runs. The one place they are declared: `setup` binds its commands to
   * these ids (`ctx.entities.bind`) and cannot make others.
   */
  entities(config: C): EntityDecl[];
  /**
   * True for a bridge whose entities are found at run time (zigbee2mqtt): `entities` is empty,
   * `setup` adds and removes them as the bridge reports its devices.
   */
  dynamic?: boolean;
  /** Validates one config entry; issues point at the YAML. */
  configSchema: z.ZodType<C, z.ZodTypeDef, unknown>;
  /**
   * Starts one device. The registry is loaded at every start, so a driver's folder keeps its
   * protocol client and entity code behind a dynamic import() here: only devices in the config
   * cost start-up time and memory.
   */
  setup(ctx: DriverContext, config: C): Promise<Running>;
  /** A real network peer speaking the device's protocol, for tests, benchmarks and the demo. */
  simulator?: Simulator;
}

/**
 * The declaration of `id` among what a device entry declared (Driver.entities), checked to be
 * of `kind`: what `ctx.entities.bind` binds to. Throws HEARTH_ERR_CONFIG otherwise, naming the
 * driver, the device and what it does declare.
 */
export function declaredEntity(
  device: { driver: string; id: string; declared: readonly EntityDecl[] },
  id: string,
  kind: Kind,
): EntityDecl {
  const decl = device.declared.find((d) => d.id === id);
  const declares = device.declared.map((d) => `"${d.id}" (${d.kind})`).join(', ') || 'none';
  if (!decl || decl.kind !== kind) {
    throw new HearthError(
      'HEARTH_ERR_CONFIG',
      `the ${device.driver} driver binds ${kind} "${id}" for device "${device.id}", which its entities() does not declare (it declares ${declares})`,
      { hint: "Declare every entity in the driver's entities(config); setup binds only those." },
    );
  }
  return decl;
}
