import { mqttAccess } from '../bus/mqtt/access.js';
import { type LinkStats, MqttLink } from '../bus/mqtt/link.js';
import type { MqttTlsMaterial } from '../bus/mqtt/tls.js';
import type { HearthConfig } from '../config/load.js';
import type { MqttAccess } from '../core/driver.js';
import type { Logger } from '../core/log.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { hearthVersion } from '../version.js';
import { type Discovery, startDiscovery } from './discovery.js';
import { bridgeTopic, type Gateway, startGateway } from './gateway.js';

/**
 * What starts hearth's own MQTT topics and Home Assistant discovery, the same way on one box
 * (src/hearth.ts, for as long as the process runs) and in a cluster (the leading controller,
 * for as long as it holds the `controller` lease: src/cluster/controller.ts).
 *
 * Both publish over a connection whose last will sets `<base>/bridge/state` to `offline`, so
 * Home Assistant shows hearth's entities unavailable whenever no process serves them: one box
 * that died, or a leading controller that died (until the next one leads and says `online`).
 */

/** The `mqtt:` section; with `tls`, the contents of its TLS files, read once for the process. */
export type MqttSettings = NonNullable<HearthConfig['mqtt']> & { tls?: MqttTlsMaterial };

/** What of the config the topics and discovery use: `mqtt.baseTopic`, `homeassistant:`, the devices. */
export type HomeAssistantConfig = Pick<HearthConfig, 'mqtt' | 'homeassistant' | 'devices'>;

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

export interface HomeAssistantOptions {
  config: HomeAssistantConfig;
  /** Every entity: the one-box Runtime, or a controller's RemoteRuntime (commands go to the owning agent). */
  runtime: RuntimeApi;
  mqtt: MqttAccess;
  log: Logger;
}

export interface HomeAssistant {
  gateway: Gateway;
  /** Absent with `homeassistant: { discovery: false }`. */
  discovery?: Discovery;
  /** Stops publishing and taking commands. Safe to call twice. */
  stop(): void;
}

/** hearth's own topics (`mqtt.baseTopic`), and discovery unless `homeassistant.discovery` is false. */
export function startHomeAssistant({ config, runtime, mqtt, log }: HomeAssistantOptions): HomeAssistant {
  const baseTopic = config.mqtt?.baseTopic ?? 'hearth';
  const ha = config.homeassistant;
  const gateway = startGateway({ runtime, mqtt, baseTopic, log: log.child({ part: 'mqtt-gateway' }) });
  const discovery = ha.discovery
    ? startDiscovery({
        runtime,
        mqtt,
        devices: config.devices,
        baseTopic,
        prefix: ha.prefix,
        nodeId: ha.nodeId,
        version: hearthVersion,
        log: log.child({ part: 'homeassistant' }),
      })
    : undefined;
  return {
    gateway,
    ...(discovery ? { discovery } : {}),
    stop: () => {
      discovery?.stop();
      gateway.stop();
    },
  };
}
