import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EntityView } from '../contract/views.js';
import { HearthError } from '../core/errors.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { type HistoryReader, readHistory } from '../history/query.js';
import { statusRoute } from './access.js';
import type { EventStreams } from './events.js';
import { publicView } from './public-view.js';

/*
 * The JSON API: entities, commands and a stream of changes. Errors are `{ error: {code, message, hint} }`.
 * Reading is a status route (served on both listeners, to anyone); commands are control.
 */

/**
 * GET /api/v1/entities, /api/v1/entities/:id, its /history (when recorded) and the
 * /api/v1/events stream. A reader that
 * `detail` refuses sees generic failure reasons (public-view.ts).
 */
export function registerApiV1Status(
  app: FastifyInstance,
  runtime: RuntimeApi,
  detail: (req: FastifyRequest) => boolean,
  events: EventStreams,
  history?: HistoryReader,
): void {
  const shown = (req: FastifyRequest, entity: EntityView) => (detail(req) ? entity : publicView(entity));

  app.get('/api/v1/entities', statusRoute, async (req) => ({
    entities: runtime.list().map((e) => shown(req, e)),
  }));

  app.get('/api/v1/entities/:id', statusRoute, async (req) => {
    const { id } = req.params as { id: string };
    const entity = runtime.get(id);
    if (!entity) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
    return { entity: shown(req, entity) };
  });

  // History is status too: the public listener already shows every state as it changes.
  if (history) {
    app.get('/api/v1/entities/:id/history', statusRoute, async (req) => {
      const { id } = req.params as { id: string };
      return readHistory(history, runtime, id, req.query as Record<string, unknown>);
    });
  }

  app.get('/api/v1/events', statusRoute, (req, reply) => events.serve(req, reply, detail(req)));
}

/** POST /api/v1/entities/:id/commands/:name: a control route. */
export function registerApiV1Control(app: FastifyInstance, runtime: RuntimeApi): void {
  app.post('/api/v1/entities/:id/commands/:name', async (req) => {
    const { id, name } = req.params as { id: string; name: string };
    const body = req.body;
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
      throw new HearthError(
        'HEARTH_ERR_BAD_ARGUMENTS',
        'the body must be a JSON object of arguments, or empty',
      );
    }
    return { entity: await runtime.command(id, name, body ?? {}) };
  });
  registerEntityDelete(app, runtime);
}

/** DELETE /api/v1/entities/:id: removes a button a press created (204); what the config declares is 409. */
function registerEntityDelete(app: FastifyInstance, runtime: RuntimeApi): void {
  app.delete('/api/v1/entities/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await runtime.removeButton(id);
    return reply.code(204).send();
  });
}
