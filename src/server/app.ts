import Fastify, { type FastifyInstance, type onRequestAsyncHookHandler } from 'fastify';
import type { AutomationEngine } from '../automation/engine.js';
import { errorCatalogue, HearthError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Runtime } from '../core/runtime.js';
import { type ControlAccess, controlGuard, readOnlyGuard, statusRoute } from './access.js';
import { registerAutomationRoutes } from './api-automations.js';
import { registerApiV0 } from './api-v0.js';
import { registerApiV1Control, registerApiV1Status } from './api-v1.js';
import { type MediaLibrary, registerMediaRoutes } from './media.js';
import type { Metrics } from './metrics.js';
import { renderStatusPage, statusPageHeaders } from './status-page.js';

function noRouteSchemas(): () => never {
  return () => {
    throw new Error('hearth routes take no JSON schema: validate with the zod schemas of src/core/kinds.ts');
  };
}

export interface ServerOptions {
  runtime: Runtime;
  metrics: Metrics;
  log: Logger;
}

export interface ControlServerOptions extends ServerOptions, ControlAccess {
  automations?: AutomationEngine;
  /** The chime folder, served to speakers at /api/v0/chime/<file> (control listener only). */
  media?: MediaLibrary;
}

/**
 * The control listener: every route. Status routes are open to anyone; the rest need an
 * address in `allow` and, when set, the bearer token (see access.ts).
 */
export function buildControlServer(opts: ControlServerOptions): FastifyInstance {
  const app = baseServer(opts, controlGuard(opts.metrics, opts));
  registerStatusRoutes(app, opts.runtime);
  registerControlRoutes(app, opts);
  if (opts.media) registerMediaRoutes(app, opts.media, opts.log);
  return app;
}

/** The public listener: status routes only; anything else is a counted 403. */
export function buildPublicServer(opts: ServerOptions): FastifyInstance {
  const app = baseServer(opts, readOnlyGuard(opts.metrics));
  registerStatusRoutes(app, opts.runtime);
  return app;
}

/** The read-only routes, the same on both listeners: the status page, entities, events, health. */
function registerStatusRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.get('/', statusRoute, async (_req, reply) =>
    reply.headers(statusPageHeaders).send(renderStatusPage(runtime.list(), runtime.timezone)),
  );
  app.get('/healthz', statusRoute, async () => ({ status: 'ok' }));
  app.get('/readyz', statusRoute, async (_req, reply) => {
    if (runtime.ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'starting' });
  });
  registerApiV1Status(app, runtime);
}

/** Everything that changes something or tells more than status: /api/v0, commands, /metrics. */
function registerControlRoutes(
  app: FastifyInstance,
  { runtime, metrics, automations }: ServerOptions & { automations?: AutomationEngine },
): void {
  app.get('/metrics', async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
  registerApiV0(app, runtime);
  registerApiV1Control(app, runtime);
  if (automations) registerAutomationRoutes(app, automations);
}

/**
 * What both listeners share: a thin adapter over the runtime API. Quiet: no log line per
 * request, so an SD card is not written to death; failures are counted in /metrics instead.
 * `guard` runs first on every request, before anything else looks at it.
 */
function baseServer(
  { runtime, metrics, log }: ServerOptions,
  guard: onRequestAsyncHookHandler,
): FastifyInstance {
  const app = Fastify({
    logger: false,
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 64 * 1024,
    forceCloseConnections: true,
    // Requests are validated by the kinds' zod schemas, never by route JSON schemas, so the
    // ajv and fast-json-stringify compilers are not loaded: that is a third of start-up time.
    schemaController: {
      compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas },
    },
  });

  // Old devices POST with whatever content type their HTTP library picks, or none: accept any
  // body (the v0 API reads none) rather than refuse with 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HearthError('HEARTH_ERR_BAD_REQUEST', 'the body is not valid JSON'), undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));

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

  app.setErrorHandler((err, req, reply) => {
    const hearth = err instanceof HearthError ? err : undefined;
    const status = hearth?.status ?? (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500 && !hearth) log.error({ err, url: req.url }, 'request failed');
    const body = hearth
      ? hearth.toJSON()
      : {
          code: status === 400 || status === 413 ? 'HEARTH_ERR_BAD_REQUEST' : 'HEARTH_ERR_INTERNAL',
          message: err instanceof Error ? err.message : String(err),
          hint: errorCatalogue.HEARTH_ERR_BAD_REQUEST.hint,
        };
    void reply.code(status).send({ error: body });
  });

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/api/v0/')) {
      return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    }
    return reply.code(404).send({
      error: {
        code: 'HEARTH_ERR_NOT_FOUND',
        message: `no route ${req.method} ${req.url.split('?')[0]}`,
        hint: 'See the README for the API.',
      },
    });
  });

  return app;
}
