import type { DeviceEntry } from '../config/load.js';
import type { Kind } from '../contract/kinds.js';
import type { MqttAccess, MqttMessage } from '../core/driver.js';
import type { Logger } from '../core/log.js';
import type { EntityView, RuntimeApi } from '../core/runtime-api.js';
import { bridgeTopic, reservedId, setTopic, stateTopic } from './gateway.js';

/**
 * Home Assistant MQTT discovery: one retained config per entity on
 * `<prefix>/<component>/<nodeId>/<id>/config`, pointing at hearth's own topics (gateway.ts), so
 * a command from Home Assistant is a command on `<base>/<id>/set` like any other tool's.
 *
 * | hearth kind | component     | notes                                                        |
 * | ----------- | ------------- | ------------------------------------------------------------ |
 * | switch      | switch        | on / off                                                     |
 * | button      | switch        | hearth keeps its state; on / off                             |
 * | heater      | switch        | on = `brew` (the pot's default minutes), off = `stop`        |
 * | valve       | valve         | open = `open` for 600 s (capped by the zone's maximum)       |
 * | chime       | sensor        | `idle` / `playing` (enum); play through `<base>/<id>/set`    |
 * | calendar    | binary_sensor | on while an event is in progress                             |
 * | binary_sensor | binary_sensor | `device_class` from `attributes.deviceClass`               |
 * | climate     | climate       | modes off/cool/heat/fan_only, 18-30 °C in steps of 1, power  |
 * | sensor      | sensor        | `unit_of_measurement` from the unit; °C/°F temperature, ...  |
 */
export const componentOf: Record<Kind, string> = {
  switch: 'switch',
  button: 'switch',
  heater: 'switch',
  valve: 'valve',
  chime: 'sensor',
  calendar: 'binary_sensor',
  binary_sensor: 'binary_sensor',
  climate: 'climate',
  sensor: 'sensor',
};

/** How long to collect the retained configs the broker holds before deleting stale ones. */
export const settleMs = 1000;
/** Seconds a valve opened from Home Assistant stays open (the zone's own maximum caps it). */
export const valveOpenSeconds = 600;
/** Retained configs remembered while sweeping; anyone may publish under our node id, so it is capped. */
export const maxHeld = 10_000;
/**
 * Home Assistant's `online` makes hearth publish every config again at most once per this long:
 * anyone may publish `online`, and a flood must not become a flood of configs. One that comes
 * sooner is folded into a single republish at the end of the wait, so the last `online` is never
 * left unanswered.
 */
export const republishEveryMs = 5000;

export interface DiscoveryOptions {
  runtime: RuntimeApi;
  mqtt: MqttAccess;
  devices: readonly DeviceEntry[];
  baseTopic: string;
  prefix: string;
  nodeId: string;
  version: string;
  log: Logger;
}

export interface Discovery {
  /** Stale configs emptied so far (entities no longer in the config). */
  readonly removed: string[];
  stop(): void;
}

const deviceClasses: Record<string, string> = {
  '°C': 'temperature',
  '°F': 'temperature',
  K: 'temperature',
  '%': 'humidity',
  mm: 'precipitation',
  W: 'power',
  kWh: 'energy',
  hPa: 'pressure',
};

type Payload = Record<string, unknown>;

/** The config Home Assistant gets for one entity, and the topic it goes to. */
export function discoveryConfig(
  e: EntityView,
  o: Pick<DiscoveryOptions, 'baseTopic' | 'prefix' | 'nodeId' | 'version'>,
  device: Payload,
): { topic: string; payload: Payload } {
  const component = componentOf[e.kind];
  const state = stateTopic(o.baseTopic, e.id);
  const command = setTopic(o.baseTopic, e.id);
  const p: Payload = {
    unique_id: `hearth_${o.nodeId}_${e.id}`,
    object_id: e.id,
    name: e.name,
    availability: [
      { topic: bridgeTopic(o.baseTopic), payload_available: 'online', payload_not_available: 'offline' },
      { topic: state, value_template: '{{ "online" if value_json.available else "offline" }}' },
    ],
    availability_mode: 'all',
    json_attributes_topic: state,
    json_attributes_template: '{{ value_json.attributes | tojson }}',
    device,
    origin: { name: 'hearth', sw_version: o.version },
  };
  const plain = { state_topic: state, value_template: '{{ value_json.state }}' };
  switch (e.kind) {
    case 'switch':
    case 'button':
      Object.assign(p, plain, {
        command_topic: command,
        payload_on: 'on',
        payload_off: 'off',
        state_on: 'on',
        state_off: 'off',
      });
      break;
    case 'heater':
      Object.assign(p, plain, {
        command_topic: command,
        payload_on: 'brew',
        payload_off: 'stop',
        state_on: 'on',
        state_off: 'off',
      });
      break;
    case 'valve':
      Object.assign(p, plain, {
        command_topic: command,
        payload_open: JSON.stringify({ command: 'open', args: { seconds: valveOpenSeconds } }),
        payload_close: 'close',
        state_open: 'open',
        state_closed: 'closed',
        reports_position: false,
      });
      break;
    case 'chime':
      Object.assign(p, plain, { device_class: 'enum', options: ['idle', 'playing'] });
      break;
    case 'calendar':
      Object.assign(p, plain, { payload_on: 'on', payload_off: 'off' });
      break;
    case 'binary_sensor': {
      Object.assign(p, plain, { payload_on: 'on', payload_off: 'off' });
      const dc = e.attributes.deviceClass;
      if (typeof dc === 'string' && dc !== '') p.device_class = dc;
      break;
    }
    case 'sensor': {
      Object.assign(p, plain);
      const unit = e.attributes.unit;
      if (typeof unit === 'string' && unit !== '') {
        p.unit_of_measurement = unit;
        const dc = deviceClasses[unit];
        if (dc) p.device_class = dc;
        p.state_class = dc === 'energy' ? 'total_increasing' : 'measurement';
      }
      break;
    }
    case 'climate':
      Object.assign(p, {
        modes: ['off', 'cool', 'heat', 'fan_only'],
        mode_state_topic: state,
        // Powered off reads as mode off in Home Assistant, whatever mode the unit keeps.
        mode_state_template:
          "{{ value_json.state.mode if value_json.state and value_json.state.power == 'on' else 'off' }}",
        mode_command_topic: command,
        mode_command_template: '{"command": "set", "args": {"mode": "{{ value }}"}}',
        temperature_state_topic: state,
        temperature_state_template: '{{ value_json.state.target }}',
        temperature_command_topic: command,
        temperature_command_template: '{"command": "set", "args": {"temperature": {{ value | int }}}}',
        power_command_topic: command,
        payload_on: 'on',
        payload_off: 'off',
        min_temp: 18,
        max_temp: 30,
        temp_step: 1,
        precision: 1,
        temperature_unit: 'C',
      });
      break;
  }
  return { topic: `${o.prefix}/${component}/${o.nodeId}/${e.id}/config`, payload: p };
}

/** One Home Assistant device per configured device entry; buttons share one "hearth buttons" device. */
function deviceBlocks(devices: readonly DeviceEntry[], nodeId: string): (entityId: string) => Payload {
  const byEntity = new Map<string, Payload>();
  for (const d of devices) {
    const block = {
      identifiers: [`hearth_${nodeId}_${d.config.id}`],
      name: d.config.name,
      manufacturer: 'hearth',
      model: `${d.driver.name} (${d.config.kind})`,
    };
    for (const decl of d.driver.entities(d.config)) byEntity.set(decl.id, block);
  }
  const buttons = {
    identifiers: [`hearth_${nodeId}_buttons`],
    name: 'hearth buttons',
    manufacturer: 'hearth',
    model: 'buttons',
  };
  return (id) => byEntity.get(id) ?? buttons;
}

/** Drivers whose devices Home Assistant already has from elsewhere: zigbee2mqtt announces its own. */
const announcedElsewhere: ReadonlySet<string> = new Set(['zigbee2mqtt']);

/** Whether hearth announces this entity to Home Assistant. */
function announceable(e: EntityView): boolean {
  return e.id !== reservedId && !announcedElsewhere.has(e.driver);
}

export function startDiscovery(o: DiscoveryOptions): Discovery {
  const { runtime, mqtt, prefix, nodeId, log } = o;
  const deviceOf = deviceBlocks(o.devices, nodeId);
  const announced = new Map<string, string>();
  /** What each config was made of: most state changes change none of it, and are skipped cheaply. */
  const madeOf = new Map<string, { name: string; attributes: Record<string, unknown> }>();
  const removed: string[] = [];
  const announce = (e: EntityView) => {
    if (!announceable(e)) return;
    const last = madeOf.get(e.id);
    // The runtime hands out the same attributes object until they change.
    if (last && last.name === e.name && last.attributes === e.attributes && announced.has(e.id)) return;
    madeOf.set(e.id, { name: e.name, attributes: e.attributes });
    const { topic, payload } = discoveryConfig(e, o, deviceOf(e.id));
    const text = JSON.stringify(payload);
    // A sensor's unit may arrive with its first reading: announce again when the config changes.
    if (announced.get(e.id) === text) return;
    announced.set(e.id, text);
    mqtt.publish(topic, text, { retain: true });
  };
  const announceAll = () => {
    announced.clear();
    for (const e of runtime.list()) announce(e);
  };

  let lastRepublish = Number.NEGATIVE_INFINITY;
  let republishTimer: NodeJS.Timeout | undefined;
  const republish = () => {
    republishTimer = undefined;
    lastRepublish = Date.now();
    log.info('Home Assistant is online: publishing discovery again');
    announceAll();
  };
  const offStatus = mqtt.subscribe(
    `${prefix}/status`,
    (m: MqttMessage) => {
      const text = m.payload.toString('utf8', 0, 64).trim();
      if (text === 'online') {
        if (republishTimer) return;
        const wait = lastRepublish + republishEveryMs - Date.now();
        if (wait <= 0) republish();
        else republishTimer = setTimeout(republish, wait);
      } else if (text !== 'offline') mqtt.garbage(m.topic, 'expected online or offline');
    },
    'homeassistant',
  );
  const offNew = runtime.subscribe((e) => announce(e), 'homeassistant');
  // A device removed from zigbee2mqtt, a pressed button deleted: Home Assistant deletes an
  // entity whose config is emptied.
  const offRemoved = runtime.onRemoved((e) => {
    madeOf.delete(e.id);
    if (!announced.delete(e.id)) return;
    mqtt.publish(`${prefix}/${componentOf[e.kind]}/${nodeId}/${e.id}/config`, '', { retain: true });
  }, 'homeassistant');

  // Configs of ours the broker still holds for entities no longer configured: empty them, so
  // Home Assistant deletes those entities. Only the retained copies sent on subscribing count.
  const held = new Set<string>();
  const configs = `${prefix}/+/${nodeId}/+/config`;
  let offHeld: (() => void) | undefined = mqtt.subscribe(
    configs,
    (m) => {
      if (m.retain && m.payload.length > 0 && held.size < maxHeld) held.add(m.topic);
    },
    'homeassistant',
  );
  let timer: NodeJS.Timeout | undefined;
  const sweep = () => {
    offHeld?.();
    offHeld = undefined;
    const current = new Set(
      runtime.list().flatMap((e) => (announceable(e) ? [discoveryConfig(e, o, {}).topic] : [])),
    );
    for (const topic of held) {
      if (current.has(topic)) continue;
      removed.push(topic);
      mqtt.publish(topic, '', { retain: true });
    }
    if (removed.length > 0)
      log.info({ removed: removed.length }, 'removed Home Assistant entities no longer configured');
  };
  const offConn = mqtt.onConnection((up) => {
    if (up && offHeld && !timer) timer = setTimeout(sweep, settleMs);
  });
  if (mqtt.connected) timer = setTimeout(sweep, settleMs);

  announceAll();
  return {
    removed,
    stop: () => {
      clearTimeout(timer);
      clearTimeout(republishTimer);
      offHeld?.();
      offConn();
      offStatus();
      offNew();
      offRemoved();
    },
  };
}
