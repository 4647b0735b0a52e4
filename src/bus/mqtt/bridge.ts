import type { MqttAccess } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';
import { mqttAccess } from './access.js';
import { type LinkStats, MqttLink, type MqttLinkOptions } from './link.js';

/**
 * The broker connection of hearth's public topics: its last will says `offline` on
 * `<base>/bridge/state`, so Home Assistant (and any tool) sees hearth's entities unavailable
 * whenever no process serves them: one box that died, or a leading controller that died (until
 * the next one leads and says `online`).
 */

/** The `mqtt:` section as a connection takes it; with `tls`, the TLS files' contents, read once. */
export type MqttSettings = Omit<MqttLinkOptions, 'role' | 'log' | 'will' | 'clientId'> & {
  baseTopic: string;
};

/** `<base>/bridge/state`: `online` while hearth serves its public topics, else `offline`. */
export function bridgeTopic(base: string): string {
  return `${base}/bridge/state`;
}

/** A connection whose last will says `offline` on `<base>/bridge/state`. */
export interface BridgeLink {
  link: MqttLink;
  access: MqttAccess;
  stats: Readonly<LinkStats>;
  /** Says `offline` itself (if connected; waits at most 1 s), then disconnects. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Opens (in the background) the connection Home Assistant's availability rests on. One box uses
 * it for everything (MQTT devices too); a leading controller opens one of its own for its term,
 * beside its cluster connection, because a will is fixed at connect and the cluster
 * connection's will speaks for the process, not for whoever leads.
 */
export function openBridgeLink(
  mqtt: MqttSettings,
  opts: { role: string; clientId?: string; log: Logger },
): BridgeLink {
  const bridge = bridgeTopic(mqtt.baseTopic);
  const link = new MqttLink({
    ...mqtt,
    role: opts.role,
    ...(opts.clientId === undefined ? {} : { clientId: opts.clientId }),
    log: opts.log,
    will: { topic: bridge, payload: 'offline', retain: true },
  }).start();
  let stopping: Promise<void> | undefined;
  return {
    link,
    access: mqttAccess(link),
    stats: link.stats,
    stop: () => {
      stopping ??= (async () => {
        // A clean stop says offline itself, and waits (briefly) for the broker to have it.
        if (link.connected) {
          await Promise.race([
            link.publishNow(bridge, 'offline', { retain: true }).catch(() => {}),
            new Promise((r) => setTimeout(r, 1000)),
          ]);
        }
        await link.stop();
      })();
      return stopping;
    },
  };
}

/** The client id of a controller's bridge connection: its cluster id with `-ha`, within 64 characters. */
export function bridgeClientId(clientId: string): string {
  return `${clientId.slice(0, 61)}-ha`;
}
