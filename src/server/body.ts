import type { FastifyInstance } from 'fastify';
import { HearthError } from '../core/errors.js';
import { isV0 } from './http-errors.js';

/**
 * Request bodies. `/api/v0`: old devices POST with whatever content type their HTTP library
 * picks, or none, and the API reads no body: anything is accepted. Elsewhere a body is JSON
 * or nothing: a body of another type is a 415, never silently dropped (a brew asked for 1
 * minute must not run the maximum because its arguments were sent as text/plain). A
 * non-JSON type is also what a page of another site can send without a CORS preflight.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = String(body).trim();
    if (text === '' || isV0(req.url)) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HearthError('HEARTH_ERR_BAD_REQUEST', 'the body is not valid JSON'), undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    if (isV0(req.url) || (body as Buffer).length === 0) return done(null, undefined);
    const type = req.headers['content-type'];
    done(
      new HearthError(
        'HEARTH_ERR_UNSUPPORTED_MEDIA_TYPE',
        type === undefined
          ? 'the body has no Content-Type; send JSON with Content-Type: application/json'
          : `a body of type ${JSON.stringify(type.slice(0, 100))} is not accepted; send JSON with Content-Type: application/json`,
      ),
      undefined,
    );
  });
}
