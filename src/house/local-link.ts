import type { Launched } from '../automation/engine.js';
import type { BackupStatus } from '../backup/scheduler.js';
import { HearthError } from '../core/errors.js';
import type { EntityView } from '../core/runtime-api.js';
import {
  type AgentEvent,
  agentOfLease,
  type CommandRequest,
  type HouseLink,
  type LeaderTerm,
  type RunRequest,
  type Serve,
  type TermOptions,
} from './link.js';
import type { EntityMirror } from './mirror.js';

/**
 * The link within one process (one box): every service's words are calls on the others, at once
 * and in order. The process's one mirror is fed directly, with the same fencing as on MQTT (a
 * term's words carry its token), so a term that ended never speaks over its successor's.
 */
export class LocalLink implements HouseLink {
  readonly connected = true;
  #mirror: EntityMirror | undefined;
  readonly #commands = new Map<string, Serve<CommandRequest, EntityView>>();
  #runs: Serve<RunRequest, Launched> | undefined;
  #backups: BackupStatus | undefined;
  readonly #backupListeners = new Set<(status: BackupStatus) => void>();

  onConnection(): () => void {
    return () => {};
  }

  feed(mirror: EntityMirror, agents: readonly string[]): () => void {
    this.#mirror = mirror;
    mirror.setLinkDown(null);
    for (const name of agents) mirror.setAgentLeader(name, 0, `no hearth agent "${name}" is running`);
    return () => {
      if (this.#mirror === mirror) this.#mirror = undefined;
    };
  }

  term({ lease, token }: TermOptions): LeaderTerm {
    const agent = agentOfLease(lease);
    let ended = false;
    return {
      view: (v) => {
        if (!ended) this.#mirror?.apply(v, undefined, token);
      },
      event: (_id, e: AgentEvent) => {
        if (ended) return;
        if (e.type === 'state') this.#mirror?.apply(e.view, { previous: e.previous }, token);
        else this.#mirror?.event({ id: e.id, kind: e.kind, event: e.event, data: e.data, at: e.at }, token);
      },
      removed: (id) => {
        if (!ended) this.#mirror?.forget(id);
      },
      backups: (status) => {
        if (ended) return;
        this.#backups = status;
        for (const listener of this.#backupListeners) listener(status);
      },
      announce: () => {
        if (!ended && agent !== undefined) this.#mirror?.setAgentLeader(agent, token, null);
      },
      end: (last = [], reason) => {
        if (ended) return;
        ended = true;
        const mirror = this.#mirror;
        if (!mirror || agent === undefined) return;
        for (const v of last)
          mirror.apply({ ...v, available: false, reason: reason ?? v.reason }, undefined, token);
        mirror.setAgentLeader(agent, token, `no hearth agent "${agent}" is running`);
      },
    };
  }

  async command(agent: string, request: CommandRequest, timeoutMs: number): Promise<EntityView> {
    const serve = this.#commands.get(agent);
    if (!serve) throw new HearthError('HEARTH_ERR_NOT_READY', `no hearth agent "${agent}" is running`);
    return serve(request, Date.now() + timeoutMs);
  }

  serveCommands(agent: string, handler: Serve<CommandRequest, EntityView>): () => void {
    this.#commands.set(agent, handler);
    return () => {
      if (this.#commands.get(agent) === handler) this.#commands.delete(agent);
    };
  }

  async run(request: RunRequest): Promise<Launched> {
    const serve = this.#runs;
    if (!serve) throw new HearthError('HEARTH_ERR_NOT_READY', 'no controller is running automations');
    return serve(request, Date.now() + 5000);
  }

  serveRuns(handler: Serve<RunRequest, Launched>): () => void {
    this.#runs = handler;
    return () => {
      if (this.#runs === handler) this.#runs = undefined;
    };
  }

  /** One process has one mirror, which the pressing service has already told. */
  button(): void {}

  onBackups(listener: (status: BackupStatus) => void): () => void {
    this.#backupListeners.add(listener);
    if (this.#backups) listener(this.#backups);
    return () => this.#backupListeners.delete(listener);
  }
}
