import type { FastifyInstance } from 'fastify';
import { reasonOf } from '../core/errors.js';

/** Listens and answers the URL to reach it from this box (0.0.0.0 and :: are not addresses to call). */
export async function listen(
  server: FastifyInstance,
  at: { host: string; port: number },
  key: string,
): Promise<string> {
  let url: string;
  try {
    url = await server.listen({ host: at.host, port: at.port });
  } catch (err) {
    throw new Error(`${key}: cannot listen on ${at.host}:${at.port}: ${reasonOf(err)}`, { cause: err });
  }
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}
