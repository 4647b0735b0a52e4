import type { FastifyInstance } from 'fastify';
import { HearthError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import { statusRoute } from './access.js';

/*
 * The JSON API: entities, commands and a stream of changes. Errors are `{ error: {code, message, hint} }`.
 * Reading is a status route (served on both listeners, to anyone); commands are control.
 */

/** GET /api/v1/entities, /api/v1/entities/:id and the /api/v1/events stream. */
export function registerApiV1Status(app: FastifyInstance, runtime: Runtime): void {
  app.get('/api/v1/entities', statusRoute, async () => ({ entities: runtime.list() }));

  app.get('/api/v1/entities/:id', statusRoute, async (req) => {
    const { id } = req.params as { id: string };
    const entity = runtime.get(id);
    if (!entity) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no entity "${id}"`);
    return { entity };
  });

  app.get('/api/v1/events', statusRoute, (req, reply) => {
    const headers = {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    };
    if (req.method === 'HEAD') return reply.code(200).headers(headers).send();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, headers);
    res.write('retry: 2000\n\n');
    let seq = 0;
    const unsubscribe = runtime.subscribe((entity) => {
      seq++;
      res.write(`id: ${seq}\nevent: state\ndata: ${JSON.stringify(entity)}\n\n`);
    });
    // A comment now and then keeps proxies and idle-timeouts from closing the stream.
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    keepAlive.unref();
    req.raw.on('close', () => {
      clearInterval(keepAlive);
      unsubscribe();
    });
  });
}

/** POST /api/v1/entities/:id/commands/:name: a control route. */
export function registerApiV1Control(app: FastifyInstance, runtime: Runtime): void {
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
function registerEntityDelete(app: FastifyInstance, runtime: Runtime): void {
  app.delete('/api/v1/entities/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    await runtime.removeButton(id);
    return reply.code(204).send();
  });
}
