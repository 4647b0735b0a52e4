import type { FastifyInstance } from 'fastify';
import type { HearthConfig } from './config/load.js';
import { LocalBus } from './core/bus.js';
import { type Clock, systemClock } from './core/clock.js';
import { reasonOf } from './core/errors.js';
import type { Logger } from './core/log.js';
import { Runtime } from './core/runtime.js';
import { buildServer } from './server/app.js';
import { Metrics } from './server/metrics.js';
import { openSqliteStore } from './store/sqlite/open.js';
import type { Store } from './store/store.js';

export interface Hearth {
  runtime: Runtime;
  server: FastifyInstance;
  store: Store;
  /** Base URL of the HTTP listener, e.g. http://127.0.0.1:8000. */
  url: string;
  /** Stops serving, leaves every device safe, closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  clock?: Clock;
}

/**
 * Runs every role in this process: store, runtime with its drivers, HTTP server. The listener
 * opens first so /readyz can say "starting" while drivers come up.
 */
export async function startHearth(
  config: HearthConfig,
  { log, clock = systemClock }: StartOptions,
): Promise<Hearth> {
  const store = await openSqliteStore(config.storage.sqlite);
  const bus = new LocalBus((err, event) => log.error({ err: reasonOf(err), event }, 'bus listener failed'));
  const runtime = new Runtime({
    timezone: config.timezone,
    devices: config.devices,
    buttons: config.buttons,
    store,
    bus,
    clock,
    log,
  });
  const metrics = new Metrics(runtime, bus);
  const server = buildServer({ runtime, metrics, log });
  let url: string;
  try {
    url = await server.listen({ host: config.http.host, port: config.http.port });
  } catch (err) {
    await store.close();
    throw err;
  }
  if (config.http.host === '0.0.0.0') url = url.replace('0.0.0.0', '127.0.0.1');

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await server.close().catch((err) => log.warn({ err: reasonOf(err) }, 'closing the HTTP server failed'));
      await runtime.stop();
      await store.close();
    })();
    return stopping;
  };
  try {
    await runtime.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { runtime, server, store, url, stop };
}
