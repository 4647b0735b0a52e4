import type { Launched } from '../automation/engine.js';
import type { BackupStatus } from '../backup/scheduler.js';
import type { MqttLink } from '../bus/mqtt/link.js';
import { MqttRpc, RpcError } from '../bus/mqtt/rpc.js';
import { type ErrorCode, errorCatalogue, HearthError, reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EntityView } from '../core/runtime-api.js';
import type {
  CommandRequest,
  HouseLink,
  RunRequest,
  Serve,
  LeaderTerm as Term,
  TermOptions,
} from '../house/link.js';
import type { EntityMirror } from '../house/mirror.js';
import { feedMirror } from './feed.js';
import { LeaderTerm } from './fence.js';
import { backupMessageSchema, commandRequestSchema, type EntityEvent, runRequestSchema } from './wire.js';

/** How long an api service waits for the controller to start a run it asked for. */
const RUN_TIMEOUT_MS = 5000;
/** Time beyond a request's own deadline for its reply to go out. */
const REPLY_SLACK_MS = 1000;

/**
 * The link between the processes of a cluster, over MQTT (topics under `<base>/cluster/`,
 * src/bus/mqtt/topics.ts; payloads in ./wire.ts): views and events retained and live, fenced by
 * lease terms (./fence.ts); commands and run requests as MQTT requests with deadlines
 * (src/bus/mqtt/rpc.ts). What arrives is parsed with the wire's schemas, and anything else on
 * hearth's topics is counted as garbage, never thrown. The broker's ACL decides who may say
 * what (src/bus/mqtt/acl.ts).
 */
export class MqttHouseLink implements HouseLink {
  readonly mqtt: MqttLink;
  readonly #rpc: MqttRpc;

  constructor(link: MqttLink, opts: { log: Logger }) {
    this.mqtt = link;
    this.#rpc = new MqttRpc(link, { log: opts.log }).start();
  }

  get connected(): boolean {
    return this.mqtt.connected;
  }

  onConnection(listener: (down: string | null) => void): () => void {
    const up = () => listener(null);
    const down = (reason: string) => listener(reason);
    this.mqtt.on('up', up);
    this.mqtt.on('down', down);
    return () => {
      this.mqtt.off('up', up);
      this.mqtt.off('down', down);
    };
  }

  term(opts: TermOptions): Term {
    const term = new LeaderTerm(this.mqtt, opts);
    return {
      view: (v) => term.view(v),
      event: (id, e) => term.event(id, e as EntityEvent),
      removed: (id) => term.removed(id),
      backups: (status) => term.backups(status),
      announce: () => term.announce(),
      end: (last, reason) => term.end(last, reason),
    };
  }

  feed(mirror: EntityMirror, agents: readonly string[]): () => void {
    return feedMirror(this.mqtt, mirror, agents);
  }

  async command(agent: string, request: CommandRequest, timeoutMs: number): Promise<EntityView> {
    try {
      return (await this.#rpc.request(this.mqtt.topics.cmd(agent), request, { timeoutMs })) as EntityView;
    } catch (err) {
      throw toHearthError(err);
    }
  }

  serveCommands(
    agent: string,
    handler: Serve<CommandRequest, EntityView>,
    maxMs: (id: string | undefined) => number,
  ): () => void {
    return this.#rpc.serve(
      this.mqtt.topics.cmd(agent),
      async (body, ctx) => {
        const req = commandRequestSchema.safeParse(body);
        if (!req.success) throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'not a command request');
        return handler(req.data, ctx.deadline);
      },
      { maxMs: (body) => maxMs(commandRequestSchema.safeParse(body).data?.id) },
    );
  }

  async run(request: RunRequest): Promise<Launched> {
    try {
      return (await this.#rpc.request(this.mqtt.topics.ctl('run'), request, {
        timeoutMs: RUN_TIMEOUT_MS,
      })) as Launched;
    } catch (err) {
      throw toHearthError(err);
    }
  }

  serveRuns(handler: Serve<RunRequest, Launched>): () => void {
    return this.#rpc.serve(
      this.mqtt.topics.ctl('run'),
      async (body, ctx) => {
        const req = runRequestSchema.safeParse(body);
        if (!req.success) throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'not a run request');
        return handler(req.data, ctx.deadline);
      },
      // A request that says "a day from now" is held no longer than an api service would wait.
      { maxMs: () => RUN_TIMEOUT_MS + REPLY_SLACK_MS },
    );
  }

  button(id: string, change: { view: EntityView; previous: unknown } | null): void {
    const { mqtt } = this;
    // Not remembered for re-sending: after a reconnect the store, not this replica's memory, is
    // the truth of a button (another replica may have pressed it since). An empty retained
    // message deletes the retained state at the broker.
    if (change === null) {
      mqtt.publish(mqtt.topics.state(id), '', { retain: true, remember: false });
      return;
    }
    mqtt.publish(mqtt.topics.state(id), change.view, { retain: true, remember: false });
    const e: EntityEvent = { type: 'state', view: change.view, previous: change.previous };
    mqtt.publish(mqtt.topics.event(id), e, { qos: 1 });
  }

  onBackups(listener: (status: BackupStatus) => void): () => void {
    // Of the newest controller term seen: a deposed leader's late word is ignored (./fence.ts).
    let newest = -1;
    return this.mqtt.subscribeJson(
      this.mqtt.topics.backup,
      backupMessageSchema,
      ({ fence, ...status }) => {
        const term = fence ?? 0;
        if (term < newest) return;
        newest = term;
        listener(status as BackupStatus);
      },
      'backups',
    );
  }

  /** Stops answering requests and closes the connection (its will says this process went away). */
  async stop(): Promise<void> {
    this.#rpc.stop();
    await this.mqtt.stop();
  }
}

/** What an MQTT request failure means to an HTTP caller: 503 nothing ran, 504 outcome unknown. */
function toHearthError(err: unknown): HearthError {
  if (err instanceof HearthError) return err;
  if (err instanceof RpcError) {
    const code = (
      Object.hasOwn(errorCatalogue, err.code)
        ? err.code
        : err.status === 504
          ? 'HEARTH_ERR_DEVICE_TIMEOUT'
          : 'HEARTH_ERR_NOT_READY'
    ) as ErrorCode;
    return new HearthError(code, err.message, { hint: err.hint, cause: err });
  }
  return new HearthError('HEARTH_ERR_NOT_READY', reasonOf(err), { cause: err });
}
