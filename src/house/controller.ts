import { AutomationEngine } from '../automation/engine.js';
import { BackupScheduler, type BackupStatus } from '../backup/scheduler.js';
import type { AutomationConfig } from '../config/sections/automations.js';
import type { BackupConfig } from '../config/sections/backup.js';
import type { HistoryConfig } from '../config/sections/history.js';
import type { Clock } from '../core/clock.js';
import type { MqttAccess } from '../core/driver.js';
import { HearthError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { HistoryRecorder } from '../history/recorder.js';
import type { HomeAssistant, HomeAssistantConfig } from '../homeassistant/start.js';
import type { Store } from '../store/store.js';
import type { Leadership } from './leadership.js';
import type { HouseLink, LeaderTerm } from './link.js';

export const CONTROLLER_LEASE = 'controller';

export interface ControllerOptions {
  automations: readonly AutomationConfig[];
  timezone: string;
  runtime: RuntimeApi;
  store: Store;
  link: HouseLink;
  leadership: Leadership;
  clock: Clock;
  log: Logger;
  /**
   * hearth's own MQTT topics and Home Assistant discovery: the leader runs them over `runtime`
   * (so a command on `<base>/<id>/set` goes to the agent that owns the entity), on a connection
   * whose will says `<base>/bridge/state` `offline`: one box's own, or in a cluster one opened
   * for each term (`bridge`).
   */
  homeassistant?: {
    config: HomeAssistantConfig;
    bridge: () => { access: MqttAccess; stop(): Promise<void> };
    start: (opts: {
      config: HomeAssistantConfig;
      runtime: RuntimeApi;
      mqtt: MqttAccess;
      log: Logger;
    }) => HomeAssistant;
  };
  /** The history of entity states: the leader alone records it (and compacts it), over `runtime`. */
  history?: HistoryConfig;
  /** Scheduled backups (`backup:`): the leader alone runs them, and says how they stand on `<base>/cluster/backup`. */
  backup?: { config: BackupConfig; configFile: string };
}

/**
 * The controller service: while this process holds the `controller` lease it runs automations
 * and schedules. Each scheduled instant is claimed in the store with the lease's fencing token
 * before it runs, so an instant fires once across failovers and restarts, and a deposed leader
 * (an older token) can never claim one. Requests to run an automation now (an api service's run
 * button or webhook) arrive over the link. The leader also serves hearth's own MQTT topics and
 * Home Assistant discovery (src/homeassistant/start.ts), records the history of entity states
 * (src/history/recorder.ts) and makes the scheduled backups.
 */
export class ControllerService {
  readonly #o: ControllerOptions;
  #engine: AutomationEngine | undefined;
  /** The leader record this process publishes while it leads, fenced with the term's token. */
  #term: LeaderTerm | undefined;
  #stopServing: (() => void) | undefined;
  #homeassistant: { bridge: { stop(): Promise<void> }; parts: HomeAssistant } | undefined;
  #recorder: HistoryRecorder | undefined;
  #backups: BackupScheduler | undefined;
  #stopped = false;
  /** Settles once this process first leads, stands by, or stops. */
  readonly #firstTerm: Promise<void>;
  #settleFirst: () => void = () => {};

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    this.#firstTerm = new Promise((resolve) => {
      this.#settleFirst = resolve;
    });
  }

  /** Settles once this process has first led, found another holder leading, or stopped. */
  get firstTerm(): Promise<void> {
    return this.#firstTerm;
  }

  get leading(): boolean {
    return this.#engine !== undefined;
  }

  /** How backups stand while this process leads; null while it stands by. */
  backupStatus(): BackupStatus | null {
    return this.#backups?.status() ?? null;
  }

  /** How backups stand, with the folder read again (an archive made by hand shows at once). */
  async refreshBackups(): Promise<BackupStatus | null> {
    await this.#backups?.refresh();
    return this.backupStatus();
  }

  /** hearth's MQTT topics and Home Assistant discovery, while this process leads them. */
  get homeassistant(): HomeAssistant | undefined {
    return this.#homeassistant?.parts;
  }

  /** The recorder of entity history, while this process leads. */
  get history(): HistoryRecorder | undefined {
    return this.#recorder;
  }

  /** The automation engine, while this process leads. */
  get automations(): AutomationEngine | undefined {
    return this.#engine;
  }

  start(): void {
    const { leadership } = this.#o;
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
    await this.#o.leadership.stop();
  }

  async #lead(token: number): Promise<void> {
    if (this.#engine || this.#stopped) return;
    const { store, link, log } = this.#o;
    log.info({ fencingToken: token }, 'controller leads: running automations');
    const engine = new AutomationEngine({
      automations: this.#o.automations,
      runtime: this.#o.runtime,
      store: store.automations,
      clock: this.#o.clock,
      timezone: this.#o.timezone,
      log: log.child({ part: 'automations' }),
      claim: (automation, instant) =>
        store.claims.claim({ automation, instant, lease: CONTROLLER_LEASE, token }),
    });
    this.#engine = engine;
    const history = this.#o.history;
    if (history?.enabled) {
      this.#recorder = new HistoryRecorder({
        runtime: this.#o.runtime,
        store: store.history,
        config: history,
        clock: this.#o.clock,
        log: log.child({ part: 'history' }),
      }).start();
    }
    await engine.start();
    this.#stopServing = link.serveRuns(async (req) => {
      if (!this.#engine) throw new HearthError('HEARTH_ERR_NOT_READY', 'the controller is stepping down');
      return this.#engine.trigger(req.automation, req.trigger);
    });
    this.#term = link.term({ lease: CONTROLLER_LEASE, token });
    this.#term.announce();
    const backup = this.#o.backup;
    if (backup) {
      const scheduler = new BackupScheduler({
        ...backup,
        timezone: this.#o.timezone,
        log: log.child({ part: 'backup' }),
        // After each backup, and every minute (ages and lateness change with time alone).
        onChange: (status) => this.#term?.backups(status),
      });
      this.#backups = scheduler;
      await scheduler.start();
    }
    const ha = this.#o.homeassistant;
    if (ha) {
      const bridge = ha.bridge();
      const parts = ha.start({ config: ha.config, runtime: this.#o.runtime, mqtt: bridge.access, log });
      this.#homeassistant = { bridge, parts };
    }
  }

  async #lose(reason: string): Promise<void> {
    const engine = this.#engine;
    if (!engine) return;
    if (this.#stopped) this.#o.log.info('controller stopping automations');
    else this.#o.log.warn({ reason }, 'controller no longer leads: automations stop here');
    this.#stopServing?.();
    this.#stopServing = undefined;
    this.#engine = undefined;
    // Its record is not re-sent after a reconnect; its step-down carries its term's token, which
    // a successor's record outranks wherever the two meet (src/mqtt-link/fence.ts).
    this.#term?.end();
    this.#term = undefined;
    // No more MQTT commands taken here; `offline` said (the next leader says `online`), and the
    // connection closed, so nothing this term published retained is sent again after a reconnect.
    const ha = this.#homeassistant;
    this.#homeassistant = undefined;
    ha?.parts.stop();
    // What the recorder holds is written before the next leader starts recording.
    const recorder = this.#recorder;
    this.#recorder = undefined;
    const backups = this.#backups;
    this.#backups = undefined;
    await Promise.all([engine.stop(), ha?.bridge.stop(), recorder?.stop(), backups?.stop()]);
  }
}
