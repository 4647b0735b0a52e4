import { bridgeTopic } from '../bus/mqtt/bridge.js';
import type { MqttAccess, MqttMessage } from '../core/driver.js';
import { reasonOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EntityView, RuntimeApi } from '../core/runtime-api.js';

/**
 * hearth's own topics for other tools (Node-RED, scripts, Home Assistant's discovery configs
 * point here too), three levels under the base so they never meet `<base>/cluster/...`:
 *
 * - `<base>/<id>/state`: `{"state", "available", "attributes"}`, retained, on every change.
 * - `<base>/<id>/set`: `{"command": "on", "args": {...}}` or the bare command name.
 * - `<base>/bridge/state`: `online` while connected; the connection's last will says `offline`.
 *   Whoever runs the gateway owns that topic: an `offline` that arrives while it runs (the will
 *   of a controller that led before it, reaching the broker late, or its clean goodbye crossing
 *   this one's start) is answered with `online` again.
 */

/** An entity with this id would share its topics with the bridge's; it is left out. */
export const reservedId = 'bridge';
/** A command is a small JSON object; anything bigger is garbage, before it is parsed. */
export const maxCommandBytes = 4096;
/** Commands from MQTT running at once; past it one is refused, so a flood cannot queue without end. */
export const maxInFlight = 32;

export interface GatewayStats {
  /** Commands handed to the runtime. */
  commands: number;
  /** Commands the runtime refused or that failed (unknown command, bad arguments, device error). */
  commandErrors: number;
  /** Messages ignored: not JSON, wrong shape, too big, retained, unknown entity, too many at once. */
  garbage: number;
}

export interface GatewayOptions {
  runtime: RuntimeApi;
  mqtt: MqttAccess;
  baseTopic: string;
  log: Logger;
}

export interface Gateway {
  readonly stats: GatewayStats;
  stop(): void;
}

export function stateTopic(base: string, id: string): string {
  return `${base}/${id}/state`;
}
export function setTopic(base: string, id: string): string {
  return `${base}/${id}/set`;
}

const bareCommand = /^[A-Za-z_]{1,32}$/;

/** What a `set` payload asks for, or why it cannot be used. */
export function parseCommand(payload: Buffer): { command: string; args?: unknown } | { error: string } {
  if (payload.length > maxCommandBytes)
    return { error: `payload of ${payload.length} bytes (at most ${maxCommandBytes})` };
  const text = payload.toString('utf8').trim();
  if (bareCommand.test(text)) return { command: text };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'neither a command name nor JSON like {"command": "on"}' };
  }
  if (typeof value === 'string' && bareCommand.test(value)) return { command: value };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'JSON that is not an object like {"command": "on", "args": {}}' };
  }
  const { command, args, ...rest } = value as Record<string, unknown>;
  if (typeof command !== 'string' || !bareCommand.test(command)) {
    return { error: '"command" must be a command name like "on"' };
  }
  if (Object.keys(rest).length > 0)
    return { error: `unknown key "${Object.keys(rest)[0]}"; accepted: command, args` };
  return args === undefined ? { command } : { command, args };
}

function stateOf(e: EntityView): string {
  return JSON.stringify({ state: e.state, available: e.available, attributes: e.attributes });
}

/** Publishes every entity's state and takes commands, through the runtime like any other caller. */
export function startGateway({ runtime, mqtt, baseTopic, log }: GatewayOptions): Gateway {
  const stats: GatewayStats = { commands: 0, commandErrors: 0, garbage: 0 };
  let inFlight = 0;
  const warned = new Set<string>();
  const publishable = (e: EntityView) => {
    if (e.id !== reservedId) return true;
    if (!warned.has(e.id)) {
      warned.add(e.id);
      log.warn(
        { entity: e.id },
        `entity "${reservedId}" is not published on MQTT: ${bridgeTopic(baseTopic)} is hearth's own; rename it to publish it`,
      );
    }
    return false;
  };
  const publishState = (e: EntityView) => {
    if (publishable(e)) mqtt.publish(stateTopic(baseTopic, e.id), stateOf(e), { retain: true });
  };
  const garbage = (topic: string, why: string) => {
    stats.garbage += 1;
    mqtt.garbage(topic, why);
  };

  const onSet = (m: MqttMessage) => {
    const id = m.topic.slice(baseTopic.length + 1, -'/set'.length);
    // A retained command would run again on every reconnect (a valve opening hours later).
    if (m.retain) return garbage(m.topic, 'a retained command is ignored; publish commands without retain');
    if (id === reservedId || !runtime.get(id)) return garbage(m.topic, `no entity "${id}"`);
    const parsed = parseCommand(m.payload);
    if ('error' in parsed) return garbage(m.topic, parsed.error);
    if (inFlight >= maxInFlight) return garbage(m.topic, `more than ${maxInFlight} MQTT commands at once`);
    inFlight += 1;
    stats.commands += 1;
    runtime
      .command(id, parsed.command, parsed.args ?? {})
      .catch((err) => {
        stats.commandErrors += 1;
        log.debug({ entity: id, command: parsed.command, err: reasonOf(err) }, 'MQTT command failed');
      })
      .finally(() => {
        inFlight -= 1;
      });
  };

  const bridge = bridgeTopic(baseTopic);
  const offSet = mqtt.subscribe(`${baseTopic}/+/set`, onSet, 'mqtt-gateway');
  const offBridge = mqtt.subscribe(
    bridge,
    (m) => {
      if (m.payload.toString('utf8', 0, 16) !== 'online') mqtt.publish(bridge, 'online', { retain: true });
    },
    'mqtt-gateway',
  );
  const offState = runtime.subscribe(publishState, 'mqtt-gateway');
  // An entity gone (a zigbee device removed, a button deleted): its retained state goes too.
  const offRemoved = runtime.onRemoved((e) => {
    if (e.id !== reservedId) mqtt.publish(stateTopic(baseTopic, e.id), '', { retain: true });
  }, 'mqtt-gateway');
  mqtt.publish(bridge, 'online', { retain: true });
  for (const e of runtime.list()) publishState(e);
  return {
    stats,
    stop: () => {
      offSet();
      offBridge();
      offState();
      offRemoved();
    },
  };
}

export { bridgeTopic };
