import type { DeviceEntry } from '../config/load.js';
import { type Bus, LocalBus } from '../core/bus.js';
import type { Clock } from '../core/clock.js';
import { DeviceHost } from '../core/device-host.js';
import type { MediaAccess, MqttAccess } from '../core/driver.js';
import { HearthError, reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EntityView } from '../core/runtime-api.js';
import type { Leadership } from './leadership.js';
import { agentLease, type HouseLink, type LeaderTerm } from './link.js';

export interface AgentOptions {
  name: string;
  /** The devices whose config entry says `agent: <name>` (or none, for `main`). */
  devices: readonly DeviceEntry[];
  timezone: string;
  link: HouseLink;
  leadership: Leadership;
  /** The process's bus: the devices' calls are counted there (hearth_device_call_*). */
  events: Bus;
  clock: Clock;
  log: Logger;
  media?: MediaAccess;
  /** The process's MQTT connection, for drivers that speak MQTT (zigbee2mqtt, mqtt_things). */
  mqtt?: MqttAccess;
}

/**
 * The agent service: while this process holds the lease of its agent name, it runs that name's
 * devices on a device host, says their state on the link and answers the commands for them. It
 * stops the devices (heaters off, valves closed: the drivers' safety rules) the moment it loses
 * the lease or the link; a standby of the same name then takes over. On one box the link is
 * in-process and the lease is in SQLite, so the one process leads at once.
 */
export class AgentService {
  readonly #o: AgentOptions;
  #host: DeviceHost | undefined;
  #term: LeaderTerm | undefined;
  #stopServing: (() => void) | undefined;
  #offConnection: (() => void) | undefined;
  #stopped = false;
  /** Settles once this process first leads, stands by, or stops. */
  readonly #firstTerm: Promise<void>;
  #settleFirst: () => void = () => {};
  #started = false;

  constructor(opts: AgentOptions) {
    this.#o = opts;
    this.#firstTerm = new Promise((resolve) => {
      this.#settleFirst = resolve;
    });
  }

  /** Settles once this process has first led (its devices started), found another holder leading, or stopped. */
  get firstTerm(): Promise<void> {
    return this.#firstTerm;
  }

  get name(): string {
    return this.#o.name;
  }

  /** True while this process runs the devices. */
  get leading(): boolean {
    return this.#host !== undefined;
  }

  /** True once this process has led and given every device its first start attempt. */
  get started(): boolean {
    return this.#started;
  }

  /** The running device host, while leading. */
  get host(): DeviceHost | undefined {
    return this.#host;
  }

  start(): void {
    const { leadership, link } = this.#o;
    // Without the link nobody can reach the devices or see their state: make them safe and let
    // a standby that still has the broker lead.
    this.#offConnection = link.onConnection((down) => {
      if (down === null) leadership.resume();
      else leadership.pause();
    });
    if (!link.connected) leadership.pause();
    leadership.start({
      lead: async (token) => {
        try {
          await this.#lead(token);
        } finally {
          this.#settleFirst();
        }
      },
      lose: (reason) => this.#lose(reason),
      standby: () => this.#settleFirst(),
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#settleFirst();
    this.#offConnection?.();
    await this.#o.leadership.stop();
  }

  async #lead(token: number): Promise<void> {
    if (this.#host || this.#stopped) return;
    const { name, link, log } = this.#o;
    log.info({ agent: name, fencingToken: token }, 'agent leads: starting its devices');
    // The host's own bus carries its entities' changes to this service, which says them on the
    // link; the process's bus hears them back from the mirror, and the devices' calls from here.
    const bus = new LocalBus((err, event) => log.error({ err: reasonOf(err), event }, 'bus listener failed'));
    bus.on('device.call', (e) => this.#o.events.emit('device.call', e));
    const host = new DeviceHost({
      timezone: this.#o.timezone,
      devices: this.#o.devices,
      bus,
      clock: this.#o.clock,
      log,
      media: this.#o.media,
      ...(this.#o.mqtt ? { mqtt: this.#o.mqtt } : {}),
    });
    this.#host = host;
    const term = link.term({ lease: agentLease(name), token, views: (id) => host.get(id) });
    this.#term = term;
    bus.on('entity.state', (e) => {
      const v = host.get(e.id);
      if (!v) return;
      term.view(v);
      term.event(e.id, { type: 'state', view: v, previous: e.previous });
    });
    const sayCurrent = (e: { id: string }) => {
      const v = host.get(e.id);
      if (v) term.view(v);
    };
    bus.on('entity.availability', sayCurrent);
    // Devices found at run time (zigbee2mqtt): a new one is said; one gone is forgotten everywhere.
    bus.on('entity.added', sayCurrent);
    bus.on('entity.removed', (e) => term.removed(e.id));
    bus.on('entity.event', (e) => term.event(e.id, { type: 'event', ...e }));
    await host.start();
    for (const v of host.list()) term.view(v);
    // A request's deadline is the caller's, but never longer than the entity's own (its device's
    // timeoutMs): one that says "a day from now" is held no longer than a real one.
    const deadlineOf = entityDeadlines(this.#o.devices);
    this.#stopServing = link.serveCommands(
      name,
      async (req, deadline): Promise<EntityView> => {
        const running = this.#host;
        if (!running) throw new HearthError('HEARTH_ERR_NOT_READY', `agent "${name}" is stepping down`);
        return running.command(req.id, req.name, req.args, {
          timeoutMs: Math.min(deadline - Date.now(), deadlineOf(req.id)),
        });
      },
      (id) => deadlineOf(id) + replySlackMs,
    );
    term.announce();
    this.#started = true;
  }

  async #lose(reason: string): Promise<void> {
    const host = this.#host;
    if (!host) return;
    const { name, log } = this.#o;
    // A stop is said plainly; losing the lease while running is worth a warning.
    if (this.#stopped) log.info({ agent: name }, 'agent stopping its devices');
    else log.warn({ agent: name, reason }, 'agent no longer leads: stopping its devices');
    this.#stopServing?.();
    this.#stopServing = undefined;
    this.#host = undefined;
    // Stopping the host stops every driver, which leaves heaters off and valves closed.
    await host.stop();
    // Its last word, with this term's token, so it never overwrites a successor's.
    const term = this.#term;
    this.#term = undefined;
    term?.end(host.list(), `the hearth agent "${name}" stepped down: ${reason}`);
  }
}

/** Time beyond an entity's deadline for its reply (an error at the deadline) to go out. */
const replySlackMs = 1000;

/**
 * Each entity's deadline by id (its device's `timeoutMs`, as its driver declares it); for an id
 * the config does not declare (a zigbee2mqtt device found at run time, or none), the longest
 * of this agent's devices.
 */
function entityDeadlines(devices: readonly DeviceEntry[]): (id: string | undefined) => number {
  const byId = new Map<string, number>();
  let longest = 0;
  for (const d of devices) {
    for (const e of d.driver.entities(d.config)) byId.set(e.id, e.timeoutMs);
    if (typeof d.config.timeoutMs === 'number') longest = Math.max(longest, d.config.timeoutMs);
  }
  for (const ms of byId.values()) longest = Math.max(longest, ms);
  return (id) => (id === undefined ? undefined : byId.get(id)) ?? (longest || 5000);
}
