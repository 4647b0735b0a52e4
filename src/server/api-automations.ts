import type { FastifyInstance } from 'fastify';
import type { AutomationsApi } from '../automation/engine.js';
import { HearthError } from '../core/errors.js';

/** Automations on the control side: list them, see their runs, run one now (the webhook). */
export function registerAutomationRoutes(app: FastifyInstance, engine: AutomationsApi): void {
  app.get('/api/v1/automations', async () => ({ automations: await engine.list() }));

  app.get('/api/v1/automations/:id', async (req) => {
    const { id } = req.params as { id: string };
    const automation = await engine.view(id);
    if (!automation) throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return { automation };
  });

  app.get('/api/v1/automations/:id/runs', async (req) => {
    const { id } = req.params as { id: string };
    const limit = Number((req.query as { limit?: string }).limit ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new HearthError('HEARTH_ERR_BAD_REQUEST', 'limit must be a whole number from 1 to 500');
    }
    return { runs: await engine.runs(id, limit) };
  });

  // 202: the run has started (or waits its turn) and is recorded; an automation with delays goes
  // on for minutes. 200: a condition did not hold, the run is recorded as skipped. 409: the
  // automation's mode refused the trigger; it is recorded as skipped too, and the answer says so.
  app.post('/api/v1/automations/:id/run', async (req, reply) => {
    const { id } = req.params as { id: string };
    const { run, busy } = await engine.trigger(id, 'webhook');
    if (busy) {
      const refused = new HearthError(
        'HEARTH_ERR_AUTOMATION_BUSY',
        `automation "${id}" is ${run.error ?? 'already running'}; this trigger was recorded as skipped`,
      );
      return reply.code(refused.status).send({ error: refused.toJSON(), run });
    }
    return reply.code(run.outcome === 'skipped' ? 200 : 202).send({ run });
  });
}
