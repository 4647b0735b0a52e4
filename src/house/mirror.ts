import { commandNames } from '../contract/kinds.js';
import { type Bus, type BusEvents, LocalBus } from '../core/bus.js';
import type { EntityDecl } from '../core/driver.js';
import { BUTTON_DRIVER, type EntityView } from '../core/runtime-api.js';

/** A device entity of the config: what it is, which agent runs it, which driver. */
export interface DeclaredEntity {
  decl: EntityDecl;
  agent: string;
  driver: string;
}

/**
 * A device of the config whose entities are found at run time (a zigbee2mqtt bridge): entities
 * published with its driver's name are taken, as they come and go.
 */
export interface DynamicSource {
  driver: string;
  agent: string;
  /** The deadline of a command to one of its entities, in ms. */
  timeoutMs: number;
}

/**
 * What this process knows of entities that other processes run: the last view each agent
 * published (retained on MQTT), overlaid with what this process knows of the path to them (the
 * broker is unreachable, or no agent of that name is leading). Reads are in memory, so an api
 * replica answers at once; changes are announced on a local bus with the same events as the
 * one-box runtime, so automations and SSE streams do not know the difference.
 *
 * Views are fenced (src/mqtt-link/fence.ts): each carries the token of the agent's lease term that
 * published it, and one of an older term than the view shown is ignored. A view of an older term
 * than the agent's current leader (all there is until the leader's own arrives) still says the
 * entity exists and what its state was, but not whether it is available: the current leader's
 * liveness says that.
 */
export class EntityMirror {
  readonly bus: Bus;
  readonly #reported = new Map<string, EntityView>();
  readonly #declared: ReadonlyMap<string, DeclaredEntity>;
  readonly #sources: ReadonlyMap<string, DynamicSource>;
  /** Entities of a dynamic source seen so far, with that source. */
  readonly #found = new Map<string, DynamicSource>();
  readonly #agentDown = new Map<string, string>();
  /** The token of each agent's newest lease term seen in its leader records. */
  readonly #terms = new Map<string, number>();
  /** The fence of the view shown, per entity an agent runs (none for a declared one never seen). */
  readonly #fences = new Map<string, number>();
  /** The fence of the last view of each entity found at run time and then gone: no older view brings it back. */
  readonly #gone = new Map<string, { agent: string; fence: number }>();
  #linkDown: string | null = 'not yet connected to the message broker';
  readonly #maxEntities: number;

  /**
   * `declared`: every device entity of the config. They are known from the start (unavailable
   * until their agent publishes them), and only they are taken from the broker besides
   * buttons: a stranger publishing on our topics cannot add devices. `maxEntities` bounds the
   * buttons such a stranger could make us hold.
   */
  constructor(opts: {
    declared: ReadonlyMap<string, DeclaredEntity>;
    /** Devices whose entities are found at run time, by driver name. */
    sources?: readonly DynamicSource[];
    maxEntities?: number;
    bus?: Bus;
  }) {
    this.#declared = opts.declared;
    this.#sources = new Map((opts.sources ?? []).map((s) => [s.driver, s]));
    this.#maxEntities = opts.maxEntities ?? 10_000;
    this.bus = opts.bus ?? new LocalBus();
    for (const [id, { decl, driver, agent }] of opts.declared) {
      this.#reported.set(id, {
        id,
        kind: decl.kind,
        name: decl.name,
        driver,
        state: null,
        available: false,
        reason: `no state from the hearth agent "${agent}" yet`,
        updatedAt: null,
        commands: commandNames(decl.kind),
        attributes: decl.attributes ?? {},
      });
    }
  }

  list(): EntityView[] {
    return [...this.#reported.keys()].map((id) => this.get(id) as EntityView);
  }

  get(id: string): EntityView | undefined {
    const v = this.#reported.get(id);
    if (!v) return undefined;
    const overlay = this.#overlay(id);
    if (overlay !== null) return { ...v, available: false, reason: overlay };
    // Published by an older term: its verdict (a stepped-down leader's "unavailable") is not the
    // current leader's, who is there (no overlay) and publishes its own.
    return this.#stale(id) && !v.available ? { ...v, available: true, reason: null } : v;
  }

  /** The agent that runs `id`, by the config; undefined for hearth's own (buttons) and unknown ids. */
  agentOf(id: string): string | undefined {
    return this.#declared.get(id)?.agent ?? this.#found.get(id)?.agent;
  }

  /** The command deadline of an entity found at run time; undefined for the rest. */
  timeoutOf(id: string): number | undefined {
    return this.#found.get(id)?.timeoutMs;
  }

  /**
   * Takes a view an agent (or an api replica, for a button) published. A state change is
   * announced only when `change` says the state was reported (a press of the same state again
   * is still a press) and the message is live: a retained copy delivered on subscribing
   * updates what we know silently, so a reconnect never replays presses into automations.
   *
   * `fence`: the lease token of the agent leader that published it (none is taken as older than
   * every term). A view of an older term than the one shown is ignored; one of an older term than
   * the agent's current leader is taken silently (it is all there is) but announces nothing.
   * Answers false for a view the config has no place for; true when it fits, taken or not.
   */
  apply(view: EntityView, change?: { previous: unknown }, fence?: number): boolean {
    const declared = this.#declared.get(view.id);
    const source = declared ? undefined : this.#sources.get(view.driver);
    const fits = declared
      ? declared.decl.kind === view.kind
      : source !== undefined || (view.kind === 'button' && view.driver === BUTTON_DRIVER);
    if (!fits) return false;
    const agent = declared?.agent ?? source?.agent;
    if (agent !== undefined) {
      const f = fence ?? 0;
      const gone = this.#gone.get(view.id);
      const shown = this.#fences.get(view.id) ?? (gone?.agent === agent ? gone.fence : undefined);
      if (shown !== undefined && f < shown) return true;
      if (f < (this.#terms.get(agent) ?? 0)) change = undefined;
    }
    const before = this.get(view.id);
    if (!before && this.#reported.size >= this.#maxEntities) return false;
    // An id that changes hands (a pressed button, then a zigbee device) is a new entity.
    if (before && (before.driver !== view.driver || before.kind !== view.kind)) this.forget(view.id);
    this.#gone.delete(view.id);
    const known = this.#reported.has(view.id);
    this.#reported.set(view.id, view);
    if (agent !== undefined) this.#fences.set(view.id, fence ?? 0);
    else this.#fences.delete(view.id);
    if (source) this.#found.set(view.id, source);
    else this.#found.delete(view.id);
    if (!known) this.bus.emit('entity.added', { id: view.id, kind: view.kind, at: Date.now() });
    this.#announce(view.id, known ? before : undefined, change);
    return true;
  }

  /** An entity the config no longer has, a device gone from zigbee2mqtt, or a button deleted: forget it. */
  forget(id: string): void {
    if (this.#declared.has(id)) return;
    const v = this.#reported.get(id);
    if (!v) return;
    const fence = this.#fences.get(id);
    const source = this.#found.get(id);
    if (fence !== undefined && source) this.#gone.set(id, { agent: source.agent, fence });
    this.#reported.delete(id);
    this.#found.delete(id);
    this.#fences.delete(id);
    this.bus.emit('entity.removed', { id, kind: v.kind, at: Date.now() });
  }

  /**
   * Something an entity announced (a calendar event starting); never retained. `fence` as for
   * `apply`: an announcement of an older term than the agent's current one is not passed on.
   */
  event(e: BusEvents['entity.event'], fence?: number): void {
    if (!this.#reported.has(e.id)) return;
    const agent = this.agentOf(e.id);
    if (agent !== undefined) {
      const newest = Math.max(this.#terms.get(agent) ?? 0, this.#fences.get(e.id) ?? 0);
      if ((fence ?? 0) < newest) return;
    }
    this.bus.emit('entity.event', e);
  }

  /** The broker went away (a reason) or came back (null): every entity's availability follows. */
  setLinkDown(reason: string | null): void {
    this.#around(() => {
      this.#linkDown = reason;
    });
  }

  /** No process leads agent `name` (a reason), or one does again (null). */
  setAgentDown(name: string, reason: string | null): void {
    this.#around(() => this.#setDown(name, reason));
  }

  /**
   * What the leader records say of agent `name`: the token of its newest lease term (never
   * lowered: the caller keeps only the newest record, see `supersedes`), and whether a process
   * leads it (null) or why not. One change, so availability flips are announced once.
   */
  setAgentLeader(name: string, term: number, down: string | null): void {
    this.#around(() => {
      this.#terms.set(name, Math.max(term, this.#terms.get(name) ?? 0));
      this.#setDown(name, down);
    });
  }

  #setDown(name: string, reason: string | null): void {
    if (reason === null) this.#agentDown.delete(name);
    else this.#agentDown.set(name, reason);
  }

  /** Whether the view shown of `id` was published by an older term of its agent's lease than the newest. */
  #stale(id: string): boolean {
    const fence = this.#fences.get(id);
    const agent = this.agentOf(id);
    return fence !== undefined && agent !== undefined && fence < (this.#terms.get(agent) ?? 0);
  }

  #overlay(id: string): string | null {
    if (this.#linkDown !== null) return this.#linkDown;
    const agent = this.agentOf(id);
    return agent === undefined ? null : (this.#agentDown.get(agent) ?? null);
  }

  /** Runs a change of the overlays and announces every availability it flipped. */
  #around(change: () => void): void {
    const before = new Map(this.list().map((v) => [v.id, v.available]));
    change();
    const at = Date.now();
    for (const v of this.list()) {
      if (before.get(v.id) === v.available) continue;
      this.bus.emit('entity.availability', {
        id: v.id,
        kind: v.kind,
        available: v.available,
        reason: v.reason,
        at,
      });
    }
  }

  #announce(id: string, before: EntityView | undefined, change: { previous: unknown } | undefined): void {
    const after = this.get(id) as EntityView;
    const at = after.updatedAt === null ? Date.now() : Date.parse(after.updatedAt);
    if (before && before.available !== after.available) {
      this.bus.emit('entity.availability', {
        id,
        kind: after.kind,
        available: after.available,
        reason: after.reason,
        at,
      });
    }
    if (!change) return;
    this.bus.emit('entity.state', {
      id,
      kind: after.kind,
      state: after.state,
      previous: change.previous,
      at,
    });
  }
}
