import { mqttAccess } from '../bus/mqtt/access.js';
import type { MqttLink } from '../bus/mqtt/link.js';
import type { MqttRpc } from '../bus/mqtt/rpc.js';
import type { DeviceEntry } from '../config/load.js';
import type { Bus } from '../core/bus.js';
import type { Clock } from '../core/clock.js';
import type { MediaAccess } from '../core/driver.js';
import { HearthError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Runtime } from '../core/runtime.js';
import type { EntityView } from '../core/runtime-api.js';
import type { Store } from '../store/store.js';
import { LeaderTerm } from './fence.js';
import type { Leadership } from './leadership.js';
import { agentLease, commandRequestSchema, type EntityEvent } from './wire.js';

export interface AgentOptions {
  name: string;
  /** The devices whose config entry says `agent: <name>` (or none, for `main`). */
  devices: readonly DeviceEntry[];
  timezone: string;
  store: Store;
  link: MqttLink;
  rpc: MqttRpc;
  leadership: Leadership;
  /** The process's bus: each term's devices announce their state and calls on it. */
  bus: Bus;
  clock: Clock;
  log: Logger;
  media?: MediaAccess;
}

/**
 * The agent role: while this process holds the lease of its agent name, it runs that name's
 * devices, publishes their state (retained) and answers command requests. It stops the devices
 * (heaters off, valves closed: the drivers' safety rules) the moment it loses the lease, the
 * broker or the database; a standby of the same name then takes over.
 */
export class AgentRole {
  readonly #o: AgentOptions;
  #runtime: Runtime | undefined;
  /** What this process publishes as leader, fenced with its lease term's token. */
  #term: LeaderTerm | undefined;
  #stopServing: (() => void) | undefined;
  #stopped = false;

  constructor(opts: AgentOptions) {
    this.#o = opts;
  }

  /** True while this process runs the devices. */
  get leading(): boolean {
    return this.#runtime !== undefined;
  }

  /** The running runtime, while leading (tests and metrics). */
  get runtime(): Runtime | undefined {
    return this.#runtime;
  }

  start(): void {
    const { leadership, link } = this.#o;
    // Without the broker nobody can reach the devices or see their state: make them safe and
    // let a standby that still has the broker lead.
    link.on('down', () => leadership.pause());
    link.on('up', () => leadership.resume());
    if (!link.connected) leadership.pause();
    leadership.start({ lead: (token) => this.#lead(token), lose: (reason) => this.#lose(reason) });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#o.leadership.stop();
  }

  async #lead(token: number): Promise<void> {
    if (this.#runtime || this.#stopped) return;
    const { name, link, rpc, log } = this.#o;
    log.info({ agent: name, fencingToken: token }, 'agent leads: starting its devices');
    const bus = this.#o.bus;
    const runtime = new Runtime({
      timezone: this.#o.timezone,
      devices: this.#o.devices,
      buttons: [],
      ownsButtons: false,
      store: this.#o.store,
      bus,
      clock: this.#o.clock,
      log,
      media: this.#o.media,
      // Drivers that speak MQTT (zigbee2mqtt, mqtt_things) share this process's connection.
      mqtt: mqttAccess(link),
    });
    this.#runtime = runtime;
    const topics = link.topics;
    const term = new LeaderTerm(link, { lease: agentLease(name), token, views: (id) => runtime.get(id) });
    this.#term = term;
    const publishView = (v: EntityView) => term.view(v);
    const publishEvent = (id: string, e: EntityEvent) => term.event(id, e);
    bus.on(
      'entity.state',
      (e) => {
        const v = runtime.get(e.id);
        if (!v) return;
        publishView(v);
        publishEvent(e.id, { type: 'state', view: v, previous: e.previous });
      },
      'agent',
    );
    const publishCurrent = (e: { id: string }) => {
      const v = runtime.get(e.id);
      if (v) publishView(v);
    };
    bus.on('entity.availability', publishCurrent, 'agent');
    // Devices found at run time (zigbee2mqtt): a new one is published; one gone is deleted, with
    // an empty retained state that every api replica and controller takes as "forget it".
    bus.on('entity.added', publishCurrent, 'agent');
    bus.on('entity.removed', (e) => term.removed(e.id), 'agent');
    bus.on('entity.event', (e) => publishEvent(e.id, { type: 'event', ...e }), 'agent');
    await runtime.start();
    for (const v of runtime.list()) publishView(v);
    // A request's deadline is the caller's, but never longer than the entity's own (its device's
    // timeoutMs): one that says "a day from now" is held no longer than a real one.
    const deadlineOf = entityDeadlines(this.#o.devices);
    this.#stopServing = rpc.serve(
      topics.cmd(name),
      async (body, ctx) => {
        const req = commandRequestSchema.safeParse(body);
        if (!req.success) throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'not a command request');
        if (!this.#runtime) throw new HearthError('HEARTH_ERR_NOT_READY', `agent "${name}" is stepping down`);
        return this.#runtime.command(req.data.id, req.data.name, req.data.args, {
          timeoutMs: Math.min(ctx.deadline - Date.now(), deadlineOf(req.data.id)),
        });
      },
      { maxMs: (body) => deadlineOf(commandRequestSchema.safeParse(body).data?.id) + replySlackMs },
    );
    term.announce();
  }

  async #lose(reason: string): Promise<void> {
    const runtime = this.#runtime;
    if (!runtime) return;
    const { name, log } = this.#o;
    log.warn({ agent: name, reason }, 'agent no longer leads: stopping its devices');
    this.#stopServing?.();
    this.#stopServing = undefined;
    this.#runtime = undefined;
    // Stopping the runtime stops every driver, which leaves heaters off and valves closed.
    await runtime.stop();
    this.#o.bus.offOwner('agent');
    // What this process published as leader must not be re-sent after a reconnect over what
    // its successor publishes; the last word is said once, now, if the broker is there, with
    // this term's token, so it never overwrites a successor's (src/cluster/fence.ts).
    const term = this.#term;
    this.#term = undefined;
    term?.end(runtime.list(), `the hearth agent "${name}" stepped down: ${reason}`);
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
