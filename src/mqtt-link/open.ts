import type { MqttSettings } from '../bus/mqtt/bridge.js';
import { MqttLink, openTlsFiles } from '../bus/mqtt/link.js';
import { refuseOpenBroker } from '../bus/mqtt/probe.js';
import type { HearthConfig } from '../config/load.js';
import type { Logger } from '../core/log.js';
import { MqttHouseLink } from './link.js';

/**
 * Opens the link of one cluster process: reads the TLS files once (a leading controller's
 * bridge connection, made whenever it comes to lead, uses what was read now), refuses a broker
 * that lets anyone speak as hearth (src/bus/mqtt/probe.ts), and connects as the role's own
 * broker user. This module and what it imports load only in a cluster, never on one box.
 */
export async function openClusterLink(
  config: HearthConfig,
  opts: { role: 'api' | 'controller' | 'agent'; agent: string; log: Logger },
): Promise<MqttHouseLink & { mqttSettings: MqttSettings }> {
  const { role, log } = opts;
  if (!config.mqtt) throw new Error('a cluster process needs mqtt:');
  const mqttSettings: MqttSettings = { ...config.mqtt, tls: openTlsFiles(config.mqtt) };
  await refuseOpenBroker(mqttSettings, { role, agent: opts.agent, log });
  // A process takes only the other processes' words: its own it has taken already.
  const link = new MqttLink({ ...mqttSettings, role, log, noLocal: true }).start();
  return Object.assign(new MqttHouseLink(link, { log }), { mqttSettings });
}
