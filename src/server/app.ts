import Fastify, { type FastifyInstance, type FastifyRequest, type onRequestAsyncHookHandler } from 'fastify';
import type { AutomationsApi } from '../automation/engine.js';
import type { DeviceEntry } from '../config/load.js';
import type { BackupStatus, DeviceLayout } from '../contract/views.js';
import { HearthError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import type { HistoryReader } from '../history/query.js';
import type { MediaLibrary } from '../media/library.js';
import type { Metrics } from '../metrics/metrics.js';
import type { SessionStore } from '../store/store.js';
import {
  type ControlAccess,
  ControlChecks,
  controlGuard,
  type ListenerName,
  metricsGuard,
  readOnlyGuard,
  statusRoute,
} from './access.js';
import type { AllowList } from './allow-list.js';
import { registerAutomationRoutes } from './api-automations.js';
import { type ClusterStatus, oneBoxStatus, registerClusterRoute } from './api-cluster.js';
import { registerApiV0 } from './api-v0.js';
import { registerApiV1Control, registerApiV1Status } from './api-v1.js';
import { registerBodyParsers } from './body.js';
import {
  type AddressOf,
  addressOf,
  capConnectionsPerClient,
  defaultLimits,
  type ListenerLimits,
  proxyList,
  proxyNetworks,
  refuseConnect,
  serverOptions,
} from './connections.js';
import { EventStreams } from './events.js';
import {
  clientErrorHandler,
  errorHandler,
  frameworkErrors,
  methodNotAllowed,
  notFoundHandler,
} from './http-errors.js';
import { registerMediaRoutes } from './media-routes.js';
import { publicView } from './public-view.js';
import { LoginThrottle, registerSessionRoutes, Sessions } from './sessions.js';
import { renderStatusPage, statusPageHeaders } from './status-page.js';
import { appPageHeaders, registerAppAssets, sendAsset, WebApp } from './web-app.js';

function noRouteSchemas(): () => never {
  return () => {
    throw new Error(
      'hearth routes take no JSON schema: validate with the zod schemas of src/contract/kinds.ts',
    );
  };
}

export interface ServerOptions {
  runtime: RuntimeApi;
  metrics: Metrics;
  log: Logger;
  /** Event streams open at once on this listener (`http.maxStreams`); default 100. */
  maxStreams?: number | undefined;
  /** Timeouts, per-client caps and trusted proxies (the `http:` config); defaultLimits when left out. */
  limits?: ListenerLimits | undefined;
  /** GET /api/v1/entities/<id>/history; left out when history is off. */
  history?: HistoryReader | undefined;
}

export interface ControlServerOptions extends ServerOptions, ControlAccess {
  /** Where the dashboard's sessions are kept: the store, shared by every api replica. */
  sessions: SessionStore;
  automations?: AutomationsApi;
  /** `GET /api/v1/cluster`; one box when left out. */
  cluster?: () => Promise<ClusterStatus>;
  /** The chime folder, served to speakers at /api/v0/chime/<file> (control listener only). */
  media?: MediaLibrary;
  /** The configured devices, for the dashboard's groups (`GET /api/v1/devices`). */
  devices?: readonly DeviceLayout[];
  /** `GET /api/v1/backups`: the newest archive and the schedule; unknown (null) when left out. */
  backups?: () => Promise<BackupStatus | null>;
}

/** The dashboard's groups for `devices` (a config's device entries). */
export function deviceLayout(devices: readonly DeviceEntry[]): DeviceLayout[] {
  return devices.map(({ driver, config }) => ({
    id: config.id,
    name: typeof config.name === 'string' ? config.name : config.id,
    room: typeof config.room === 'string' ? config.room : null,
    entities: driver.entities(config).map((e) => e.id),
  }));
}

/** What the dashboard shows at `/`, and who sees it instead of the status page. */
interface Home {
  web: WebApp;
  shows: (req: FastifyRequest) => boolean;
}

/** Whether a status request sees the detail of failures, or the generic public reason. */
export type SeesDetail = (req: FastifyRequest) => boolean;

/**
 * The control listener: every route. Status routes are open to anyone (failure detail only for
 * trusted clients, see ControlChecks.trusted); the rest need an address in `allow`, a Host that
 * names this box, no other site's Origin and, when set, the bearer token (see access.ts).
 */
export function buildControlServer(opts: ControlServerOptions): FastifyInstance {
  const proxies = proxyList((opts.limits ?? defaultLimits).trustProxy);
  const clientAddress = addressOf(proxies);
  const checks = new ControlChecks(opts, clientAddress, proxies);
  const sessions = new Sessions(opts.sessions);
  // Wrong logins and wrong bearer tokens share one tally per client address.
  const throttle = new LoginThrottle();
  const web = WebApp.load();
  if (!web)
    opts.log.warn(
      'the dashboard is not built (dist/web is missing; run npm run build): / serves the status page',
    );
  // The app is for the LAN clients that may control (an address in http.allow, a Host naming
  // this box); anyone else who reaches this listener gets the read-only status page.
  const home = web ? { web, shows: (req: FastifyRequest) => checks.trusted(req) } : undefined;
  const { app, finish } = baseServer(
    opts,
    'control',
    controlGuard(opts.metrics, checks, throttle, opts.token, sessions),
    (req) => checks.trusted(req),
    clientAddress,
    home,
  );
  registerControlRoutes(app, opts);
  registerSessionRoutes(
    app,
    sessions,
    opts.token,
    () => opts.metrics.forbidden.inc({ listener: 'control', reason: 'token' }),
    throttle,
    clientAddress,
  );
  if (web) registerAppAssets(app, web);
  const devices = opts.devices ?? [];
  app.get('/api/v1/devices', async () => ({ devices }));
  const backups = opts.backups ?? (async () => null);
  app.get('/api/v1/backups', async () => ({ backups: await backups() }));
  if (opts.media) {
    const media = opts.media;
    registerMediaRoutes(app, media, opts.log);
    // The dashboard's choice of chimes.
    app.get('/api/v1/media', async () => ({ files: await media.list() }));
  }
  finish();
  return app;
}

/** The public listener: status routes only, with generic failure reasons; anything else is a counted 403. */
export function buildPublicServer(opts: ServerOptions): FastifyInstance {
  const clientAddress = addressOf(proxyList((opts.limits ?? defaultLimits).trustProxy));
  const { app, finish } = baseServer(opts, 'public', readOnlyGuard(opts.metrics), () => false, clientAddress);
  finish();
  return app;
}

/** The read-only routes, the same on both listeners: the status page, entities, events, health. */
function registerStatusRoutes(
  app: FastifyInstance,
  runtime: RuntimeApi,
  detail: SeesDetail,
  events: EventStreams,
  history: HistoryReader | undefined,
  home: Home | undefined,
): void {
  app.get('/', statusRoute, async (req, reply) => {
    if (home?.shows(req)) return sendAsset(req, reply.headers(appPageHeaders), home.web.index);
    // The page shows no reason today; it gets the same views as the API, so it never can.
    const entities = detail(req) ? runtime.list() : runtime.list().map(publicView);
    return reply.headers(statusPageHeaders).send(renderStatusPage(entities, runtime.timezone, events.mark()));
  });
  app.get('/healthz', statusRoute, async () => ({ status: 'ok' }));
  app.get('/readyz', statusRoute, async (_req, reply) => {
    if (runtime.ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting' });
  });
  registerApiV1Status(app, runtime, detail, events, history);
}

/** Everything that changes something or tells more than status: /api/v0, commands, /metrics. */
function registerControlRoutes(
  app: FastifyInstance,
  { runtime, metrics, automations, cluster }: ControlServerOptions,
): void {
  registerMetricsRoute(app, metrics);
  registerApiV0(app, runtime);
  registerApiV1Control(app, runtime);
  if (automations) registerAutomationRoutes(app, automations);
  registerClusterRoute(app, cluster ?? oneBoxStatus(Date.now() - performance.now()));
}

export interface HealthServerOptions extends ControlAccess {
  log: Logger;
  metrics: Metrics;
  /** /readyz answers 200 while this is true. */
  ready: () => boolean;
  cluster: () => Promise<ClusterStatus>;
  /** An agent's: the chime files its speakers fetch (device reads, as on the control listener). */
  media?: MediaLibrary;
  /** Timeouts, per-client caps and trusted proxies (the `http:` config); defaultLimits when left out. */
  limits?: ListenerLimits | undefined;
}

/**
 * The listener of a cluster role that serves no API (controller, agent): /healthz and /readyz
 * for anyone (probes), /metrics and /api/v1/cluster guarded like every control route.
 */
export function buildHealthServer(opts: HealthServerOptions): FastifyInstance {
  const limits = opts.limits ?? defaultLimits;
  const proxies = proxyList(limits.trustProxy);
  const checks = new ControlChecks(opts, addressOf(proxies), proxies);
  const app = Fastify(listenerOptions(limits));
  boundConnections(app, limits, opts.metrics, 'control', proxies);
  const finish = methodNotAllowed(app);
  app.addHook('onRequest', controlGuard(opts.metrics, checks, new LoginThrottle(), opts.token));
  app.get('/healthz', statusRoute, async () => ({ status: 'ok' }));
  // A standby is ready: healthy and waiting; a rolling update must not stall on it.
  app.get('/readyz', statusRoute, async (_req, reply) =>
    opts.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'starting' }),
  );
  registerMetricsRoute(app, opts.metrics);
  registerClusterRoute(app, opts.cluster);
  if (opts.media) registerMediaRoutes(app, opts.media, opts.log);
  app.setErrorHandler(errorHandler(opts.log));
  app.setNotFoundHandler(notFoundHandler);
  finish();
  return app;
}

export interface MetricsServerOptions {
  metrics: Metrics;
  log: Logger;
  /** `http.metrics.allow`: who may scrape. */
  allow: AllowList;
  /** `http.hostNames`: the names a scraper may call this box by, besides addresses and its own names. */
  hostNames?: readonly string[] | undefined;
  /** Timeouts, per-client caps and trusted proxies (the `http:` config); defaultLimits when left out. */
  limits?: ListenerLimits | undefined;
}

/**
 * The metrics listener (`http.metrics`): GET /metrics for a scraper in its allow-list, without
 * the token; every other path is a 404. A Prometheus in the cluster scrapes the pods here, so the
 * control listener's allow-list and token stay the LAN's.
 */
export function buildMetricsServer(opts: MetricsServerOptions): FastifyInstance {
  const limits = opts.limits ?? defaultLimits;
  const proxies = proxyList(limits.trustProxy);
  const checks = new ControlChecks(
    { allow: opts.allow, hostNames: opts.hostNames },
    addressOf(proxies),
    proxies,
  );
  const app = Fastify(listenerOptions(limits));
  boundConnections(app, limits, opts.metrics, 'metrics', proxies);
  const finish = methodNotAllowed(app);
  app.addHook('onRequest', metricsGuard(opts.metrics, checks));
  registerMetricsRoute(app, opts.metrics);
  app.setErrorHandler(errorHandler(opts.log));
  app.setNotFoundHandler(notFoundHandler);
  finish();
  return app;
}

/**
 * What both listeners share: a thin adapter over the runtime API, with the status routes.
 * Quiet: no log line per request, so an SD card is not written to death; failures are counted
 * in /metrics instead. `guard` runs first on every request, before anything else looks at it.
 * Call `finish` after the last route: it adds what depends on every route (405 for wrong methods).
 */
function baseServer(
  { runtime, metrics, log, maxStreams = 100, history, limits = defaultLimits }: ServerOptions,
  listener: ListenerName,
  guard: onRequestAsyncHookHandler,
  detail: SeesDetail,
  clientAddress: AddressOf,
  home?: Home,
): { app: FastifyInstance; finish: () => void } {
  const app = Fastify({
    ...listenerOptions(limits),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 64 * 1024,
  });
  boundConnections(app, limits, metrics, listener, proxyList(limits.trustProxy));
  const finish = methodNotAllowed(app);
  registerBodyParsers(app);

  app.addHook('onRequest', guard);

  // Until drivers are up an entity could look unknown; say "starting" instead of a false 404.
  app.addHook('onRequest', async (req, reply) => {
    if (runtime.ready || !req.url.startsWith('/api/')) return;
    if (req.url.startsWith('/api/v0/')) {
      return reply.code(503).type('text/plain; charset=utf-8').send('hearth is starting\n');
    }
    throw new HearthError('HEARTH_ERR_NOT_READY', 'hearth is starting');
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: reply.statusCode });
    metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler(notFoundHandler);

  const events = new EventStreams({
    runtime,
    metrics,
    listener,
    maxStreams,
    maxStreamsPerClient: limits.maxStreamsPerClient,
    clientAddress,
  });
  app.addHook('onClose', async () => events.close());
  registerStatusRoutes(app, runtime, detail, events, history, home);
  return { app, finish };
}

/** fastify's options for a listener's timeouts and trusted proxies. */
/** GET /metrics: the Prometheus text of this process's registry. Who may ask is the listener's guard's business. */
function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}

/**
 * What every listener is built with: its limits, no logger of fastify's own, connections closed
 * on stop, one-line answers to framework and client errors. Requests are validated by the kinds'
 * zod schemas, never by route JSON schemas, so the ajv and fast-json-stringify compilers are not
 * loaded: that is a third of start-up time.
 */
function listenerOptions(limits: ListenerLimits) {
  const proxies = proxyNetworks(limits.trustProxy);
  // Without trusted proxies fastify never reads X-Forwarded-*: req.ip and req.protocol are the socket's.
  return {
    ...serverOptions(limits),
    trustProxy: proxies.length > 0 ? proxies : false,
    logger: false,
    forceCloseConnections: true,
    schemaController: {
      compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas },
    },
    frameworkErrors,
    clientErrorHandler,
  } as const;
}

/** The per-client connection cap, and a one-line answer to CONNECT, on the listener's server. */
function boundConnections(
  app: FastifyInstance,
  limits: ListenerLimits,
  metrics: Metrics,
  listener: ListenerName,
  proxies: ReturnType<typeof proxyList>,
): void {
  capConnectionsPerClient(
    app.server,
    limits.maxConnectionsPerClient,
    () => metrics.connectionsRefused.inc({ listener }),
    proxies,
  );
  refuseConnect(app.server);
}
