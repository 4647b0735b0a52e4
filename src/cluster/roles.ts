import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { AutomationEngine } from '../automation/engine.js';
import type { BackupStatus } from '../backup/scheduler.js';
import { MqttLink, openTlsFiles } from '../bus/mqtt/link.js';
import { refuseOpenBroker } from '../bus/mqtt/probe.js';
import { MqttRpc, RpcError } from '../bus/mqtt/rpc.js';
import type { HearthConfig } from '../config/load.js';
import { backupStatusSchema } from '../contract/views.js';
import { LocalBus } from '../core/bus.js';
import { Buttons } from '../core/buttons.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type ErrorCode, errorCatalogue, HearthError, reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EntityView } from '../core/runtime-api.js';
import { MediaLibrary } from '../media/library.js';
import { Metrics } from '../metrics/metrics.js';
import { AllowList } from '../server/allow-list.js';
import { storeStatus } from '../server/api-cluster.js';
import { buildControlServer, buildHealthServer, buildPublicServer, deviceLayout } from '../server/app.js';
import { listen } from '../server/listen.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { AgentRole } from './agent.js';
import { CONTROLLER_LEASE, ControllerRole } from './controller.js';
import { feedMirror } from './feed.js';
import { Leadership } from './leadership.js';
import { type DeclaredEntity, type DynamicSource, EntityMirror } from './mirror.js';
import { RemoteAutomations } from './remote-automations.js';
import { RemoteRuntime } from './remote-runtime.js';
import { agentLease, type EntityEvent } from './wire.js';

export type Role = 'all' | 'api' | 'controller' | 'agent';

export interface RoleOptions {
  role: Exclude<Role, 'all'>;
  /** For `agent`: which agent name this process may run; default `main`. */
  agent?: string;
  log: Logger;
  clock?: Clock;
}

/** A running role process, as the CLI and tests see it. */
export interface RoleProcess {
  role: Role;
  /** Base URL of its HTTP listener (health and metrics for every role; the APIs for `api`). */
  url: string;
  publicUrl?: string;
  store: Store;
  link: MqttLink;
  /** What this process leads now, for `hearth_leader` and `/api/v1/cluster`. */
  leases(): Array<{ lease: string; leading: boolean }>;
  stop(): Promise<void>;
}

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
 * Starts one role of a cluster: PostgreSQL for the store, MQTT for the bus, leases for the
 * singletons. `hearth start --role all` never comes here (src/hearth.ts runs it on SQLite
 * with no broker), so this module and everything it imports load only in a cluster.
 */
export async function startRole(config: HearthConfig, opts: RoleOptions): Promise<RoleProcess> {
  const { role, log } = opts;
  const clock = opts.clock ?? systemClock;
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
  const agentName = opts.agent ?? 'main';
  // The TLS files are read once, before anything opens: the controller's bridge connection,
  // made whenever it comes to lead, uses what was read now.
  const mqtt = { ...config.mqtt, tls: openTlsFiles(config.mqtt) };
  const store = await openStore(config.storage);
  await refuseOpenBroker(mqtt, { role, agent: agentName, log, undo: () => store.close() });
  const link = new MqttLink({ ...mqtt, role, log }).start();
  const rpc = new MqttRpc(link, { log }).start();
  const declared = declaredEntities(config);
  // Bridges whose entities are found at run time (zigbee2mqtt): taken as their agent publishes them.
  const sources: DynamicSource[] = config.devices
    .filter((d) => d.driver.dynamic === true)
    .map((d) => ({
      driver: d.driver.name,
      agent: d.agent,
      timeoutMs: typeof d.config.timeoutMs === 'number' ? d.config.timeoutMs : 5000,
    }));
  const agents = [
    ...new Set([...[...declared.values()].map((d) => d.agent), ...sources.map((s) => s.agent)]),
  ];
  const ttlMs = config.cluster.leaseSeconds * 1000;
  const buttons = new Buttons({
    declared: config.buttons,
    maxUndeclared: config.buttonLimits.maxUndeclared,
    rows: store.states,
    clock,
    log,
    deviceOf: (id) => declared.get(id)?.driver,
  });
  // Speakers fetch a chime from the process that tells them to play it (an agent serves the
  // media folder of its own box), unless media.baseUrl names another place.
  let listening: { host: string; port: number } | undefined;
  const media = new MediaLibrary({
    dir: config.media.dir,
    baseUrl: config.media.baseUrl,
    listener: () => listening,
  });
  const startedAt = Date.now();
  const member = {
    id: link.clientId,
    role,
    agent: role === 'agent' ? agentName : undefined,
    host: hostname(),
    pid: process.pid,
    startedAt,
  };
  const beat = () =>
    store.members
      .heartbeat(member)
      .catch((err) => log.warn({ err: reasonOf(err) }, 'cluster: heartbeat failed'));
  void beat();
  const beats = setInterval(beat, Math.max(1000, ttlMs / 2));
  beats.unref();

  const stops: Array<() => Promise<void> | void> = [];
  const access = {
    allow: new AllowList(config.http.allow),
    token: config.http.token,
    hostNames: config.http.hostNames,
    limits: config.http,
  };
  const status = storeStatus(store);
  let leases: () => Array<{ lease: string; leading: boolean }> = () => [];
  let ready = () => link.connected;
  let server: FastifyInstance;
  let publicServer: FastifyInstance | undefined;

  let synced = false;
  // An api replica and the controller see devices through the mirror; an agent runs them.
  const mirror = new EntityMirror({ declared, sources });
  const seedButtons = async () => {
    // A button under `buttons:` exists before its first press, with no state, as on one box:
    // listed, announced to Home Assistant, and pressable on `<base>/<id>/set`.
    for (const view of await buttons.load()) {
      if (view.updatedAt !== null || !mirror.get(view.id)) mirror.apply(view);
    }
  };
  const runtime = new RemoteRuntime({
    timezone: config.timezone,
    clock,
    mirror,
    buttons,
    timeoutOf: (id) => declared.get(id)?.decl.timeoutMs,
    // Ready once it has known the broker's state: a broker that goes away later makes entities
    // unavailable (and commands fail fast), while buttons, which need only the store, go on.
    ready: () => synced,
    channel: {
      command: async (agent, request, timeoutMs) => {
        const down = mirror.get(request.id);
        if (down && !down.available && down.reason !== null && !link.connected) {
          throw new HearthError('HEARTH_ERR_NOT_READY', down.reason);
        }
        try {
          return (await rpc.request(link.topics.cmd(agent), request, { timeoutMs })) as EntityView;
        } catch (err) {
          throw toHearthError(err);
        }
      },
      publishButton: (view, previous) => {
        // Not remembered for re-sending: after a reconnect the store, not this replica's memory,
        // is the truth of a button (another replica may have pressed it since).
        link.publish(link.topics.state(view.id), view, { retain: true, remember: false });
        const e: EntityEvent = { type: 'state', view, previous };
        link.publish(link.topics.event(view.id), e, { qos: 1 });
      },
      // An empty retained message deletes the retained state at the broker.
      forgetButton: (id) => link.publish(link.topics.state(id), '', { retain: true, remember: false }),
    },
  });

  if (role === 'agent') {
    // One bus for the process: the devices of every term announce their calls on it, which
    // /metrics counts (hearth_device_call_*).
    const bus = new LocalBus((err, event) => log.error({ err: reasonOf(err), event }, 'bus listener failed'));
    const leadership = new Leadership({
      leases: store.leases,
      name: agentLease(agentName),
      holder: link.clientId,
      ttlMs,
      log,
    });
    const agent = new AgentRole({
      name: agentName,
      devices: config.devices.filter((d) => d.agent === agentName),
      timezone: config.timezone,
      store,
      link,
      rpc,
      leadership,
      bus,
      clock,
      log: log.child({ role: 'agent', agent: agentName }),
      media,
    });
    agent.start();
    stops.push(() => agent.stop());
    leases = () => [{ lease: agentLease(agentName), leading: agent.leading }];
    const metrics = watchLink(
      new Metrics({ list: () => agent.runtime?.list() ?? [], ready: true, events: bus }, () => leases()),
      link,
    );
    server = buildHealthServer({ ...access, log, metrics, ready: () => ready(), cluster: status, media });
  } else {
    stops.push(feedMirror(link, mirror, agents));
    link.on(
      'up',
      () =>
        void seedButtons().catch((err) =>
          log.warn({ err: reasonOf(err) }, 'cluster: could not load buttons'),
        ),
    );
    await seedButtons();
    if (role === 'controller') {
      const leadership = new Leadership({
        leases: store.leases,
        name: CONTROLLER_LEASE,
        holder: link.clientId,
        ttlMs,
        log,
      });
      const controller = new ControllerRole({
        automations: config.automations,
        timezone: config.timezone,
        runtime,
        mirror,
        store,
        link,
        rpc,
        leadership,
        clock,
        log: log.child({ role: 'controller' }),
        // Always on, as on one box with `mqtt:`; `homeassistant: { discovery: false }` keeps
        // hearth's own topics only.
        homeassistant: {
          mqtt,
          homeassistant: config.homeassistant,
          devices: config.devices,
        },
        history: config.history,
        backup: { config: config.backup, configFile: config.file },
      });
      controller.start();
      stops.push(() => controller.stop());
      leases = () => [{ lease: CONTROLLER_LEASE, leading: controller.leading }];
      const metrics = watchLink(new Metrics(runtime, () => leases()), link);
      metrics.watchBackups(() => controller.backupStatus());
      server = buildHealthServer({ ...access, log, metrics, ready: () => ready(), cluster: status });
    } else {
      const views = new AutomationEngine({
        automations: config.automations,
        runtime,
        store: store.automations,
        clock,
        timezone: config.timezone,
        log,
      });
      const automations = new RemoteAutomations(
        views,
        (automation, trigger) =>
          rpc.request(link.topics.ctl('run'), { automation, trigger }, { timeoutMs: 5000 }).catch((err) => {
            throw toHearthError(err);
          }) as ReturnType<AutomationEngine['trigger']>,
      );
      const metrics = watchLink(new Metrics(runtime, () => leases()), link);
      // The dashboard's backup line: what the leading controller last said.
      let backups: BackupStatus | null = null;
      link.subscribeJson(
        link.topics.backup,
        backupStatusSchema,
        (status) => {
          backups = status;
        },
        'backups',
      );
      const { http } = config;
      // The api role reads the history the leading controller records, from PostgreSQL.
      const historyReader = config.history.enabled
        ? { store: store.history, config: config.history, now: () => clock.now() }
        : undefined;
      server = buildControlServer({
        ...access,
        sessions: store.sessions,
        runtime,
        automations,
        metrics,
        log,
        media,
        cluster: status,
        maxStreams: http.maxStreams,
        devices: deviceLayout(config.devices),
        history: historyReader,
        backups: async () => backups,
      });
      publicServer = http.public
        ? buildPublicServer({
            runtime,
            metrics,
            log,
            maxStreams: http.maxStreams,
            limits: http,
            history: historyReader,
          })
        : undefined;
    }
  }
  link.once('up', () => {
    synced = true;
  });
  if (link.connected) synced = true;
  ready = () => synced;

  const url = await listen(server, config.http, 'http');
  const port = (server.server.address() as { port: number } | null)?.port;
  if (port !== undefined) listening = { host: config.http.host, port };
  const publicUrl =
    publicServer && config.http.public
      ? await listen(publicServer, config.http.public, 'http.public')
      : undefined;
  let stopping: Promise<void> | undefined;
  return {
    role,
    url,
    ...(publicUrl ? { publicUrl } : {}),
    store,
    link,
    leases: () => leases(),
    stop: () => {
      stopping ??= (async () => {
        clearInterval(beats);
        for (const s of stops.reverse()) await s();
        await Promise.all([server.close(), publicServer?.close()]);
        rpc.stop();
        await link.stop();
        await store.close();
      })();
      return stopping;
    },
  };
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

/** `hearth_mqtt_*` of this process's connection. */
function watchLink(metrics: Metrics, link: MqttLink): Metrics {
  metrics.watchMqtt(() => ({
    connected: link.connected,
    garbage: link.stats.garbage,
    dropped: link.stats.dropped,
    reconnects: link.stats.reconnects,
    oversize: link.stats.oversize,
  }));
  return metrics;
}
