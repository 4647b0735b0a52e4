import type { HearthConfig } from '../config/load.js';
import type { MqttAccess } from '../core/driver.js';
import type { Logger } from '../core/log.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { hearthHomepage, hearthVersion } from '../version.js';
import { type Discovery, startDiscovery } from './discovery.js';
import { type Gateway, startGateway } from './gateway.js';

/**
 * What starts hearth's own MQTT topics and Home Assistant discovery: the controller service, for
 * as long as it holds the `controller` lease (src/house/controller.ts), on one box and in a
 * cluster alike, over a connection whose last will sets `<base>/bridge/state` to `offline`
 * (src/bus/mqtt/bridge.ts).
 */

/** What of the config the topics and discovery use: `mqtt.baseTopic`, `homeassistant:`, the devices. */
export type HomeAssistantConfig = Pick<HearthConfig, 'mqtt' | 'homeassistant' | 'devices'>;

export interface HomeAssistantOptions {
  config: HomeAssistantConfig;
  /** Every entity, as the controller sees them (commands go to the agent that runs the device). */
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
        supportUrl: hearthHomepage,
        dashboardUrl: ha.dashboardUrl,
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
