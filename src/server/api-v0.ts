import type { FastifyInstance, FastifyReply, HTTPMethods } from 'fastify';
import { idPattern } from '../contract/kinds.js';
import { HearthError, reasonOf } from '../core/errors.js';
import type { RuntimeApi } from '../core/runtime-api.js';

/**
 * The device API that old buttons, clocks and lamps depend on: plain text, byte for byte what
 * the homeslice services answered, except that a device failure is a 502, not a false OK.
 * A trailing slash is optional on every path (the server is built with ignoreTrailingSlash).
 */
const TEXT = 'text/plain; charset=utf-8';
const ALL_METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const SWITCH_OPS = new Set(['on', 'off', 'toggle']);

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type(TEXT).send(body);
}

function notAllowed(reply: FastifyReply, allow: string): FastifyReply {
  return text(reply.header('allow', allow), 405, `method not allowed; use ${allow}\n`);
}

export function registerApiV0(app: FastifyInstance, runtime: RuntimeApi): void {
  app.route({
    method: ALL_METHODS,
    url: '/api/v0/switches/:id/:op',
    handler: async (req, reply) => {
      if (req.method !== 'POST') return notAllowed(reply, 'POST');
      const { id, op } = req.params as { id: string; op: string };
      const entity = runtime.get(id);
      if (entity?.kind !== 'switch') return text(reply, 404, `no switch "${id}"\n`);
      if (!SWITCH_OPS.has(op)) return text(reply, 400, `bad operation "${op}"; use on, off or toggle\n`);
      try {
        await runtime.command(id, op);
        return text(reply, 200, 'OK');
      } catch (err) {
        // The old service answered OK even when the plug did not switch; devices must know.
        // 503: nothing ran (starting, stopping, no agent answering). A device (or its agent)
        // that failed or did not answer in time is a 502, as this API always said.
        if (err instanceof HearthError && err.status === 503)
          return text(reply, err.status, `${err.message}\n`);
        return text(reply, 502, `${reasonOf(err)}\n`);
      }
    },
  });

  app.route({
    method: ALL_METHODS,
    url: '/api/v0/buttons/:id/:op',
    handler: async (req, reply) => {
      if (req.method !== 'POST') return notAllowed(reply, 'POST');
      const { id, op } = req.params as { id: string; op: string };
      if (!idPattern.test(id)) return text(reply, 400, 'bad button id; use 1 to 64 of A-Z a-z 0-9 _ -\n');
      if (op !== 'on' && op !== 'off') return text(reply, 400, `bad operation "${op}"; use on or off\n`);
      try {
        await runtime.setButton(id, op);
      } catch (err) {
        return text(reply, err instanceof HearthError ? err.status : 500, `${reasonOf(err)}\n`);
      }
      return text(reply, 200, 'OK');
    },
  });

  const buttonRead =
    (withTime: boolean) => async (req: { method: string; params: unknown }, reply: FastifyReply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(reply, 'GET');
      const { id } = req.params as { id: string };
      // Read through to the store where several processes share it, so a press acknowledged by
      // one api replica reads back from every other at once.
      let entity: Awaited<ReturnType<RuntimeApi['button']>>;
      try {
        entity = await runtime.button(id);
      } catch (err) {
        return text(reply, err instanceof HearthError ? err.status : 503, `${reasonOf(err)}\n`);
      }
      if (entity?.kind !== 'button' || (entity.state !== 'on' && entity.state !== 'off')) {
        return text(reply, 404, `no button "${id}" has been pressed\n`);
      }
      const state = entity.state === 'on' ? 'ON' : 'OFF';
      return text(reply, 200, withTime ? `${state}:${runtime.clocktime()}\n` : `${state}\n`);
    };
  app.route({ method: ALL_METHODS, url: '/api/v0/buttons/:id', handler: buttonRead(false) });
  app.route({ method: ALL_METHODS, url: '/api/v0/buttontimes/:id', handler: buttonRead(true) });

  app.route({
    method: ALL_METHODS,
    url: '/api/v0/clocktime',
    handler: async (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return notAllowed(reply, 'GET');
      return text(reply, 200, runtime.clocktime());
    },
  });
}
