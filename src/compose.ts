import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { AutomationEngine } from './automation/engine.js';
import type { BackupStatus } from './backup/scheduler.js';
import type { BridgeLink } from './bus/mqtt/bridge.js';
import type { LinkStats } from './bus/mqtt/link.js';
import type { HearthConfig } from './config/load.js';
import { LocalBus } from './core/bus.js';
import { Buttons } from './core/buttons.js';
import { type Clock, systemClock } from './core/clock.js';
import type { MqttAccess } from './core/driver.js';
import { HearthError, reasonOf } from './core/errors.js';
import type { Logger } from './core/log.js';
import type { RuntimeApi } from './core/runtime-api.js';
import type { HistoryRecorder } from './history/recorder.js';
import type { HomeAssistant } from './homeassistant/start.js';
import { AgentService } from './house/agent.js';
import { AutomationsView } from './house/automations.js';
import { CONTROLLER_LEASE, ControllerService } from './house/controller.js';
import { Leadership } from './house/leadership.js';
import { agentLease, type HouseLink } from './house/link.js';
import { LocalLink } from './house/local-link.js';
import { type DeclaredEntity, type DynamicSource, EntityMirror } from './house/mirror.js';
import { HouseRuntime } from './house/runtime.js';
import { MediaLibrary } from './media/library.js';
import { Metrics } from './metrics/metrics.js';
import { AllowList } from './server/allow-list.js';
import { storeStatus } from './server/api-cluster.js';
import {
  buildControlServer,
  buildHealthServer,
  buildMetricsServer,
  buildPublicServer,
  deviceLayout,
} from './server/app.js';
import { listen } from './server/listen.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { hearthVersion } from './version.js';

export { hearthVersion };

/** What a process runs: every service (one box), or one role of a cluster. */
export type Role = 'all' | 'api' | 'controller' | 'agent';

export interface StartOptions {
  log: Logger;
  clock?: Clock;
  /** Default `all`: one box, every service in this process over the in-process link. */
  role?: Role;
  /** For `agent`: which agent name this process may run; default `main`. */
  agent?: string;
}

export interface HomeAssistantParts extends HomeAssistant {
  /** The MQTT connection's counters (garbage among them). */
  mqtt: Readonly<LinkStats>;
}

/** A running hearth process, as the CLI and tests see it. */
export interface Hearth {
  role: Role;
  /** The runtime API of this process's api and controller services (none in an agent-only process). */
  runtime: RuntimeApi;
  /** Automations as the API shows them and runs them. */
  automations: AutomationsView;
  /** This process's listener: every route with an api service, else health, metrics and the cluster view. */
  server: FastifyInstance;
  /** The read-only status listener, when this process has an api service and `http.public` is configured. */
  publicServer?: FastifyInstance;
  store: Store;
  /** Base URL of the listener, e.g. http://127.0.0.1:8000. */
  url: string;
  /** Base URL of the public status listener, e.g. http://127.0.0.1:8080; only when configured. */
  publicUrl?: string;
  /** Base URL of the metrics listener (`http.metrics`), e.g. http://127.0.0.1:9464; only when configured. */
  metricsUrl?: string;
  /** hearth's MQTT topics and Home Assistant discovery, while this process's controller leads them. */
  readonly homeassistant: HomeAssistantParts | undefined;
  /** The recorder of entity history, while this process's controller leads (unless `history: { enabled: false }`). */
  readonly history: HistoryRecorder | undefined;
  /** Backups as the API shows them: the newest archive, the schedule, the last error. */
  backups(): Promise<BackupStatus | null>;
  /** What this process leads now, for `hearth_leader` and `/api/v1/cluster`. */
  leases(): Array<{ lease: string; leading: boolean }>;
  /** Stops serving, leaves every device safe, closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * A one-box lease lasts 10 minutes and its holder is named for the box: the one process on its
 * SQLite file leads at once, again at once after a crash (the same holder renews), and renews
 * rarely enough not to wear out an SD card. A cluster's lease lasts `cluster.leaseSeconds`, held
 * by the process's own id, so a standby takes over within that.
 */
const ONE_BOX_LEASE_MS = 10 * 60_000;

/** Every device entity of the config, with the agent that runs it and its driver's name. */
export function declaredEntities(config: HearthConfig): Map<string, DeclaredEntity> {
  const map = new Map<string, DeclaredEntity>();
  for (const d of config.devices) {
    for (const decl of d.driver.entities(d.config))
      map.set(decl.id, { decl, agent: d.agent, driver: d.driver.name });
  }
  return map;
}

/**
 * Starts hearth: the services that `role` asks for, built once, here, over a link. One box
 * (`all`) runs the api, the controller and every agent in this process over the in-process link,
 * with its leases in SQLite; a cluster process runs one role over MQTT, with its leases in
 * PostgreSQL. The listeners open first, so /readyz says "starting" while devices come up.
 */
export async function startHearth(config: HearthConfig, opts: StartOptions): Promise<Hearth> {
  const { log } = opts;
  const clock = opts.clock ?? systemClock;
  const role = opts.role ?? 'all';
  const agentName = opts.agent ?? 'main';
  const oneBox = role === 'all';
  if (!oneBox) requireClusterConfig(config, role);

  const store = await openStore(config.storage);
  const undo: Array<() => Promise<void> | void> = [() => store.close()];
  const unwind = async () => {
    for (const u of undo.reverse()) await u();
  };

  // The link, and the MQTT connection drivers and Home Assistant use. One box opens a broker
  // connection only when the config has `mqtt:` (MQTT devices, Home Assistant), in the background:
  // drivers see it come and go. Its will says `<base>/bridge/state` `offline` if the process dies.
  let link: HouseLink;
  let clusterLink: Awaited<ReturnType<typeof import('./mqtt-link/open.js').openClusterLink>> | undefined;
  let bridge: BridgeLink | undefined;
  let mqttAccess: MqttAccess | undefined;
  let mqttStats: Readonly<LinkStats> | undefined;
  let mqttConnected: () => boolean = () => false;
  let ha: typeof import('./homeassistant/start.js') | undefined;
  let bridges: typeof import('./bus/mqtt/bridge.js') | undefined;
  try {
    if (config.mqtt) {
      ha = await import('./homeassistant/start.js');
      bridges = await import('./bus/mqtt/bridge.js');
    }
    if (oneBox) {
      link = new LocalLink();
      if (config.mqtt && bridges) {
        bridge = bridges.openBridgeLink(config.mqtt, { role: 'all', log });
        const opened = bridge;
        undo.push(() => opened.stop());
        mqttAccess = bridge.access;
        mqttStats = bridge.stats;
        mqttConnected = () => opened.link.connected;
      }
    } else {
      const { openClusterLink } = await import('./mqtt-link/open.js');
      clusterLink = await openClusterLink(config, { role, agent: agentName, log });
      const opened = clusterLink;
      undo.push(() => opened.stop());
      link = clusterLink;
      mqttStats = clusterLink.mqtt.stats;
      mqttConnected = () => opened.connected;
      const { mqttAccess: access } = await import('./bus/mqtt/access.js');
      mqttAccess = access(clusterLink.mqtt);
    }
  } catch (err) {
    // A TLS file (mqtt.ca, cert, key) that went missing since the config was checked; an open broker.
    await unwind();
    throw err;
  }
  const holder = oneBox ? `one-box@${hostname()}` : (clusterLink?.mqtt.clientId ?? `hearth-${process.pid}`);
  const ttlMs = oneBox ? ONE_BOX_LEASE_MS : config.cluster.leaseSeconds * 1000;
  const leadership = (name: string) => new Leadership({ leases: store.leases, name, holder, ttlMs, log });

  // Speakers fetch a chime from the process that tells them to play it (an agent serves the
  // media folder of its own box), unless media.baseUrl names another place.
  let listening: { host: string; port: number } | undefined;
  const media = new MediaLibrary({
    dir: config.media.dir,
    baseUrl: config.media.baseUrl,
    listener: () => listening,
  });

  // The process's one bus: the mirror announces entities on it, agents their devices' calls.
  const events = new LocalBus((err, event) =>
    log.error({ err: reasonOf(err), event }, 'bus listener failed'),
  );
  const declared = declaredEntities(config);
  // Bridges whose entities are found at run time (zigbee2mqtt): taken as their agent publishes them.
  const sources: DynamicSource[] = config.devices
    .filter((d) => d.driver.dynamic === true)
    .map((d) => ({
      driver: d.driver.name,
      agent: d.agent,
      timeoutMs: typeof d.config.timeoutMs === 'number' ? d.config.timeoutMs : 5000,
    }));
  const agentNames = [
    ...new Set([...[...declared.values()].map((d) => d.agent), ...sources.map((s) => s.agent)]),
  ];

  // The services this process runs.
  const agents =
    role === 'all' || role === 'agent'
      ? (oneBox ? (agentNames.length > 0 ? agentNames : ['main']) : [agentName]).map(
          (name) =>
            new AgentService({
              name,
              devices: config.devices.filter((d) => d.agent === name),
              timezone: config.timezone,
              link,
              leadership: leadership(agentLease(name)),
              events,
              clock,
              log: oneBox ? log : log.child({ role: 'agent', agent: name }),
              media,
              ...(mqttAccess ? { mqtt: mqttAccess } : {}),
            }),
        )
      : [];
  const hasApi = role === 'all' || role === 'api';
  const hasController = role === 'all' || role === 'controller';

  // What the api and controller services see of entities: the mirror of what agents say, with
  // commands over the link and buttons in the store. Fed from now on; ready once it knows.
  const mirror = new EntityMirror({ declared, sources, bus: events });
  let synced = false;
  const buttons = new Buttons({
    declared: config.buttons,
    maxUndeclared: config.buttonLimits.maxUndeclared,
    rows: store.states,
    clock,
    log,
    deviceOf: (id) => declared.get(id)?.driver,
  });
  const runtime = new HouseRuntime({
    timezone: config.timezone,
    clock,
    mirror,
    link,
    buttons,
    timeoutOf: (id) => declared.get(id)?.decl.timeoutMs,
    ready: () => synced,
  });
  const seedButtons = async () => {
    // A button under `buttons:` exists before its first press, with no state: listed, announced
    // to Home Assistant, and pressable on `<base>/<id>/set`.
    for (const view of await buttons.load()) {
      if (view.updatedAt !== null || !mirror.get(view.id)) mirror.apply(view);
    }
  };
  if (hasApi || hasController) {
    undo.push(link.feed(mirror, agentNames));
    try {
      await seedButtons();
    } catch (err) {
      await unwind();
      throw err;
    }
    // After a broker outage, the store (not this process's memory) is the truth of a button.
    if (!oneBox) {
      undo.push(
        link.onConnection((down) => {
          if (down !== null) return;
          void seedButtons().catch((err) =>
            log.warn({ err: reasonOf(err) }, 'cluster: could not load buttons'),
          );
        }),
      );
    }
  }

  const controller = hasController
    ? new ControllerService({
        automations: config.automations,
        timezone: config.timezone,
        runtime,
        store,
        link,
        leadership: leadership(CONTROLLER_LEASE),
        clock,
        log: oneBox ? log : log.child({ role: 'controller' }),
        ...(config.mqtt && ha && bridges
          ? {
              homeassistant: {
                config,
                // Always on with `mqtt:`; `homeassistant: { discovery: false }` keeps hearth's own
                // topics only. One box has its connection for the process; a leading controller
                // opens one for its term, with a will of its own.
                bridge: () => {
                  if (bridge) return { access: bridge.access, stop: async () => {} };
                  const open = bridges as NonNullable<typeof bridges>;
                  return open.openBridgeLink(
                    clusterLink ? clusterLink.mqttSettings : (config.mqtt as never),
                    {
                      role: 'controller',
                      clientId: open.bridgeClientId(holder),
                      log,
                    },
                  );
                },
                start: ha.startHomeAssistant,
              },
            }
          : {}),
        history: config.history,
        backup: { config: config.backup, configFile: config.file },
      })
    : undefined;

  const leases = () => [
    ...(controller ? [{ lease: CONTROLLER_LEASE, leading: controller.leading }] : []),
    ...agents.map((a) => ({ lease: agentLease(a.name), leading: a.leading })),
  ];
  const metrics = new Metrics(
    hasApi || hasController
      ? runtime
      : { list: () => agents.flatMap((a) => a.host?.list() ?? []), ready: true, events },
    leases,
  );
  if (mqttStats) {
    const stats = mqttStats;
    metrics.watchMqtt(() => ({
      connected: mqttConnected(),
      garbage: stats.garbage,
      dropped: stats.dropped,
      reconnects: stats.reconnects,
      oversize: stats.oversize,
    }));
  }
  // The dashboard's backup line: the controller of this process reads the folder at each answer
  // (an archive made by hand shows at once); an api replica has what the leading controller said.
  let said: BackupStatus | null = null;
  if (hasApi && !controller) {
    undo.push(
      link.onBackups((status) => {
        said = status;
      }),
    );
  }
  const backups = async () => (controller ? controller.refreshBackups() : said);
  if (controller) metrics.watchBackups(() => controller.backupStatus());

  const access = {
    allow: new AllowList(config.http.allow),
    token: config.http.token,
    hostNames: config.http.hostNames,
    limits: config.http,
  };
  const cluster = oneBox ? undefined : storeStatus(store);
  const ready = () => synced;
  const { http } = config;
  const history = config.history.enabled
    ? { store: store.history, config: config.history, now: () => clock.now() }
    : undefined;
  const automations = new AutomationsView({
    config: new AutomationEngine({
      automations: config.automations,
      runtime,
      store: store.automations,
      clock,
      timezone: config.timezone,
      log,
    }),
    link,
    live: () => controller?.automations,
  });
  const server = hasApi
    ? buildControlServer({
        ...access,
        sessions: store.sessions,
        runtime,
        automations,
        metrics,
        log,
        media,
        ...(cluster ? { cluster } : {}),
        maxStreams: http.maxStreams,
        devices: deviceLayout(config.devices),
        history,
        backups,
      })
    : buildHealthServer({
        ...access,
        log,
        metrics,
        ready,
        cluster: cluster ?? storeStatus(store),
        ...(agents.length > 0 ? { media } : {}),
      });
  const publicServer =
    hasApi && http.public
      ? buildPublicServer({ runtime, metrics, log, maxStreams: http.maxStreams, limits: http, history })
      : undefined;
  // Every role has it when configured: a scraper reads each process.
  const metricsServer = http.metrics
    ? buildMetricsServer({
        metrics,
        log,
        allow: new AllowList(http.metrics.allow),
        hostNames: http.hostNames,
        limits: http,
      })
    : undefined;
  let url: string;
  let publicUrl: string | undefined;
  let metricsUrl: string | undefined;
  try {
    url = await listen(server, http, 'http');
    const port = (server.server.address() as { port: number } | null)?.port;
    if (port !== undefined) listening = { host: http.host, port };
    if (publicServer && http.public) publicUrl = await listen(publicServer, http.public, 'http.public');
    if (metricsServer && http.metrics) metricsUrl = await listen(metricsServer, http.metrics, 'http.metrics');
  } catch (err) {
    await server.close();
    await publicServer?.close();
    await metricsServer?.close();
    await unwind();
    throw err;
  }

  // A cluster process says it is alive in the store, for /api/v1/cluster.
  let beats: NodeJS.Timeout | undefined;
  if (clusterLink) {
    const member = {
      id: clusterLink.mqtt.clientId,
      role,
      agent: role === 'agent' ? agentName : undefined,
      host: hostname(),
      pid: process.pid,
      startedAt: Date.now(),
    };
    const beat = () =>
      store.members
        .heartbeat(member)
        .catch((err) => log.warn({ err: reasonOf(err) }, 'cluster: heartbeat failed'));
    void beat();
    beats = setInterval(beat, Math.max(1000, ttlMs / 2));
    beats.unref();
  }

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(beats);
      // Devices are made safe (heaters off, valves closed) at once, not after the listeners have
      // closed: a listener slow to close must never keep a heater on. The controller stops after
      // the agents, so the history records the states the devices were left in.
      const closing = [server, publicServer, metricsServer].map((srv) =>
        srv?.close().catch((err) => log.warn({ err: reasonOf(err) }, 'closing an HTTP listener failed')),
      );
      await Promise.all([
        Promise.all(agents.map((a) => a.stop())).then(() => controller?.stop()),
        ...closing,
      ]);
      await unwind();
    })();
    return stopping;
  };

  try {
    if (oneBox) {
      // One process leads every lease at once (src/house/leadership.ts): the agents first, so
      // the devices' first readings are states the controller finds (the history records them)
      // rather than changes that fire automations; ready once every device has had its first
      // start attempt.
      const where = config.storage.sqlite ?? 'the store';
      await Promise.all(agents.map((a) => leadOnce(a, agentLease(a.name), where)));
      if (controller) await leadOnce(controller, CONTROLLER_LEASE, where);
      synced = true;
    } else {
      controller?.start();
      for (const a of agents) a.start();
      // Ready once it has known the broker's state: a broker that goes away later makes entities
      // unavailable (and commands fail fast), while buttons, which need only the store, go on.
      if (clusterLink?.connected) synced = true;
      else
        clusterLink?.mqtt.once('up', () => {
          synced = true;
        });
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    role,
    runtime,
    automations,
    server,
    ...(publicServer ? { publicServer } : {}),
    store,
    url,
    ...(publicUrl ? { publicUrl } : {}),
    ...(metricsUrl ? { metricsUrl } : {}),
    get homeassistant() {
      const parts = controller?.homeassistant;
      return parts && mqttStats ? { ...parts, mqtt: mqttStats } : undefined;
    },
    get history() {
      return controller?.history;
    },
    backups,
    leases,
    stop,
  };
}

/**
 * Starts a one-box service and waits for its first term to have begun: the one process on its
 * store leads at once. Another process leading it (a second hearth on the same SQLite file, from
 * another box) is refused, saying so.
 */
async function leadOnce(
  service: ControllerService | AgentService,
  lease: string,
  store: string,
): Promise<void> {
  service.start();
  await service.firstTerm;
  if (!service.leading) {
    throw new HearthError(
      'HEARTH_ERR_CONFIG',
      `another hearth process holds the lease ${lease} in ${store}: one box runs one hearth per store; stop the other, or give this one a storage of its own`,
    );
  }
}

function requireClusterConfig(config: HearthConfig, role: Role): void {
  if (!config.mqtt) {
    throw new HearthError(
      'HEARTH_ERR_CONFIG',
      `--role ${role} needs an \`mqtt:\` section (the broker the roles meet at)`,
    );
  }
  if (!('postgres' in config.storage)) {
    throw new HearthError(
      'HEARTH_ERR_CONFIG',
      `--role ${role} needs \`storage: { postgres: { url: ... } }\`: the roles share their state through PostgreSQL`,
    );
  }
}
