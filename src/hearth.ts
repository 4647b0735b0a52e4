import type { FastifyInstance } from 'fastify';
import { AutomationEngine } from './automation/engine.js';
import { BackupScheduler } from './backup/scheduler.js';
import type { LinkStats } from './bus/mqtt/link.js';
import type { HearthConfig } from './config/load.js';
import { LocalBus } from './core/bus.js';
import { type Clock, systemClock } from './core/clock.js';
import { reasonOf } from './core/errors.js';
import type { Logger } from './core/log.js';
import { Runtime } from './core/runtime.js';
import { HistoryRecorder } from './history/recorder.js';
import type { BridgeLink, HomeAssistant } from './homeassistant/start.js';
import { MediaLibrary } from './media/library.js';
import { Metrics } from './metrics/metrics.js';
import { AllowList } from './server/allow-list.js';
import { buildControlServer, buildPublicServer, deviceLayout } from './server/app.js';
import { listen } from './server/listen.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { hearthVersion } from './version.js';

export { hearthVersion };

export interface HomeAssistantParts extends HomeAssistant {
  /** The MQTT connection's counters (garbage among them). */
  mqtt: Readonly<LinkStats>;
}

export interface Hearth {
  runtime: Runtime;
  automations: AutomationEngine;
  /** The control listener: every route. */
  server: FastifyInstance;
  /** The read-only status listener, when `http.public` is configured. */
  publicServer?: FastifyInstance;
  store: Store;
  /** Base URL of the control listener, e.g. http://127.0.0.1:8000. */
  url: string;
  /** Base URL of the public status listener, e.g. http://127.0.0.1:8080; only when configured. */
  publicUrl?: string;
  /** hearth's MQTT topics and Home Assistant discovery, when `mqtt:` is configured. */
  homeassistant?: HomeAssistantParts;
  /** The recorder of entity history, unless `history: { enabled: false }`. */
  history?: HistoryRecorder;
  /** Backups: the newest archive in `backup.dir`, and the schedule when `backup.every` is set. */
  backups: BackupScheduler;
  /** Stops serving, leaves every device safe, closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  clock?: Clock;
}

/**
 * Runs every role in this process: store, runtime with its drivers, the HTTP listeners (control,
 * and public when configured). The listeners open first so /readyz can say "starting" while
 * drivers come up.
 */
export async function startHearth(
  config: HearthConfig,
  { log, clock = systemClock }: StartOptions,
): Promise<Hearth> {
  const store = await openStore(config.storage);
  // The speakers' URL for a chime needs the control listener's port, known once it listens.
  let controlPort: number | undefined;
  const media = new MediaLibrary({
    dir: config.media.dir,
    baseUrl: config.media.baseUrl,
    listener: () => (controlPort === undefined ? undefined : { host: config.http.host, port: controlPort }),
  });
  const bus = new LocalBus((err, event) => log.error({ err: reasonOf(err), event }, 'bus listener failed'));
  // On one box MQTT is optional: only a config with `mqtt:` loads the client (MQTT devices, Home
  // Assistant). It connects in the background; drivers see it come and go.
  let link: BridgeLink | undefined;
  try {
    link = config.mqtt ? await openMqtt(config.mqtt, log) : undefined;
  } catch (err) {
    // A TLS file (mqtt.ca, cert, key) that went missing since the config was checked.
    await store.close();
    throw err;
  }
  const runtime = new Runtime({
    timezone: config.timezone,
    devices: config.devices,
    buttons: config.buttons,
    buttonLimits: config.buttonLimits,
    store,
    bus,
    clock,
    log,
    media,
    ...(link ? { mqtt: link.access } : {}),
  });
  const metrics = new Metrics(runtime);
  if (link) {
    const { access, stats } = link;
    metrics.watchMqtt(() => ({
      connected: access.connected,
      garbage: stats.garbage,
      dropped: stats.dropped,
      reconnects: stats.reconnects,
      oversize: stats.oversize,
    }));
  }
  const automations = new AutomationEngine({
    automations: config.automations,
    runtime,
    store: store.automations,
    clock,
    timezone: config.timezone,
    log: log.child({ part: 'automations' }),
  });
  const history = config.history.enabled
    ? {
        reader: { store: store.history, config: config.history, now: () => clock.now() },
        recorder: new HistoryRecorder({
          runtime,
          store: store.history,
          config: config.history,
          clock,
          log: log.child({ part: 'history' }),
        }),
      }
    : undefined;
  const backups = new BackupScheduler({
    config: config.backup,
    configFile: config.file,
    timezone: config.timezone,
    log: log.child({ part: 'backup' }),
  });
  metrics.watchBackups(() => backups.status());
  const { http } = config;
  const server = buildControlServer({
    // The folder is read again for each answer: an archive made by hand shows at once.
    backups: async () => {
      await backups.refresh();
      return backups.status();
    },
    sessions: store.sessions,
    history: history?.reader,
    runtime,
    automations,
    metrics,
    log,
    allow: new AllowList(http.allow),
    token: http.token,
    hostNames: http.hostNames,
    maxStreams: http.maxStreams,
    limits: http,
    media,
    devices: deviceLayout(config.devices),
  });
  const publicServer = http.public
    ? buildPublicServer({
        runtime,
        metrics,
        log,
        maxStreams: http.maxStreams,
        limits: http,
        history: history?.reader,
      })
    : undefined;
  let url: string;
  let publicUrl: string | undefined;
  try {
    url = await listen(server, http, 'http');
    controlPort = (server.server.address() as { port: number } | null)?.port;
    if (publicServer && http.public) publicUrl = await listen(publicServer, http.public, 'http.public');
  } catch (err) {
    await server.close();
    await publicServer?.close();
    await link?.stop();
    await store.close();
    throw err;
  }

  let homeassistant: HomeAssistantParts | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      // Devices are made safe (heaters off, valves closed) at once, not after the listeners
      // have closed: a listener slow to close must never keep a heater on.
      const closing = [server, publicServer].map((srv) =>
        srv?.close().catch((err) => log.warn({ err: reasonOf(err) }, 'closing an HTTP listener failed')),
      );
      // The recorder stops after the runtime, so the states devices were left in are written.
      await Promise.all([
        backups.stop(),
        automations
          .stop()
          .then(() => runtime.stop())
          .then(() => history?.recorder.stop()),
        ...closing,
      ]);
      homeassistant?.stop();
      await link?.stop();
      await store.close();
    })();
    return stopping;
  };
  try {
    history?.recorder.start();
    await runtime.start();
    await automations.start();
    await backups.start();
    if (link) {
      const { startHomeAssistant } = await import('./homeassistant/start.js');
      const ha = startHomeAssistant({ config, runtime, mqtt: link.access, log });
      homeassistant = { ...ha, mqtt: link.stats };
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    runtime,
    automations,
    server,
    publicServer,
    store,
    url,
    publicUrl,
    homeassistant,
    ...(history ? { history: history.recorder } : {}),
    backups,
    stop,
  };
}

/** The one MQTT connection of a one-box process, loaded only when the config has `mqtt:`. */
async function openMqtt(config: NonNullable<HearthConfig['mqtt']>, log: Logger): Promise<BridgeLink> {
  const { openBridgeLink } = await import('./homeassistant/start.js');
  // One box is its own bridge: tools (and Home Assistant's availability) watch
  // `<base>/bridge/state`, which the will turns `offline` if the process dies.
  return openBridgeLink(config, { role: 'all', log });
}
