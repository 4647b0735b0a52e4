import type { Launched } from '../automation/engine.js';
import type { BackupStatus } from '../backup/scheduler.js';
import type { Kind } from '../contract/kinds.js';
import type { EntityView } from '../core/runtime-api.js';
import type { EntityMirror } from './mirror.js';

/*
 * The link: what the services of a house say to each other. An agent publishes its entities and
 * answers commands; an api service asks agents to run commands, asks the controller to run
 * automations and tells the others of a button's press; the controller says how backups stand.
 * Two implementations carry it: calls within one process (./local-link.ts, one box) and MQTT
 * between processes (src/mqtt-link/link.ts, a cluster). The services never know which.
 */

/** The lease an agent name leads by. */
export function agentLease(name: string): string {
  return `agent:${name}`;
}

/** The agent name a lease is led by (`agent:main` → `main`); undefined for another lease. */
export function agentOfLease(lease: string): string | undefined {
  return lease.startsWith('agent:') ? lease.slice('agent:'.length) : undefined;
}

/** Something an agent's entity did: reported a state (with the one before it), or announced an event. */
export type AgentEvent =
  | { type: 'state'; view: EntityView; previous: unknown }
  | {
      type: 'event';
      id: string;
      kind: Kind;
      event: string;
      data: Record<string, unknown>;
      at: number;
    };

/** A command request for an agent: which entity, which command, its arguments. */
export interface CommandRequest {
  id: string;
  name: string;
  args?: unknown;
}

/** A request to the controller to run an automation now. */
export interface RunRequest {
  automation: string;
  trigger: string;
}

/**
 * What one leader says during one term of its lease, each word with the term's fencing token, so
 * nothing of an older term overwrites a newer (src/mqtt-link/fence.ts says why it matters on MQTT).
 */
export interface LeaderTerm {
  /** The entity's whole view, as consumers keep it. */
  view(v: EntityView): void;
  /** A state reported or an event announced: what fires automations. */
  event(id: string, e: AgentEvent): void;
  /** The entity is gone (a device removed from a zigbee2mqtt bridge). */
  removed(id: string): void;
  /** The term's leader is in place: said once its views are out. */
  announce(): void;
  /** How backups stand (the controller's term): every api service shows the newest term's. */
  backups(status: BackupStatus): void;
  /** The term is over; `last` are its views as it leaves them (unavailable, with `reason`). */
  end(last?: readonly EntityView[], reason?: string): void;
}

export interface TermOptions {
  /** `controller`, `agent:main`. */
  lease: string;
  token: number;
  /** The views this leader publishes, by id; omitted for a leader of no entities (the controller). */
  views?: (id: string) => EntityView | undefined;
}

/** Who serves a kind of request: its handler gets the request and its deadline (epoch ms). */
export type Serve<Req, Res> = (request: Req, deadline: number) => Promise<Res>;

export interface HouseLink {
  /** True while the services can hear each other (the broker is reachable); always in one process. */
  readonly connected: boolean;
  /** Calls `listener` when the link goes down (with why) and comes back (null); returns the unsubscribe. */
  onConnection(listener: (down: string | null) => void): () => void;
  /** Starts a leader's term on this link. */
  term(opts: TermOptions): LeaderTerm;
  /** Keeps `mirror` in step with what the agents `agents` publish; returns the function that stops it. */
  feed(mirror: EntityMirror, agents: readonly string[]): () => void;
  /**
   * Asks the leading agent `agent` to run a command within `timeoutMs`. Rejects with HearthError:
   * 503 when no such agent answers, 504 at the deadline, or what the agent answered.
   */
  command(agent: string, request: CommandRequest, timeoutMs: number): Promise<EntityView>;
  /** Serves agent `agent`'s commands; `maxMs` caps a request's deadline by its entity's own. */
  serveCommands(
    agent: string,
    handler: Serve<CommandRequest, EntityView>,
    maxMs: (id: string | undefined) => number,
  ): () => void;
  /** Asks the leading controller to run an automation now. */
  run(request: RunRequest): Promise<Launched>;
  serveRuns(handler: Serve<RunRequest, Launched>): () => void;
  /** Tells every other process that a button changed (after the store committed it), or was deleted (null). */
  button(id: string, change: { view: EntityView; previous: unknown } | null): void;
  /** What the leading controller last said of backups (LeaderTerm.backups), and each time it says it again. */
  onBackups(listener: (status: BackupStatus) => void): () => void;
}
