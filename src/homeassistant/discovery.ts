import type { DeviceEntry } from '../config/load.js';
import type { Kind } from '../contract/kinds.js';
import type { MqttAccess, MqttMessage } from '../core/driver.js';
import type { Logger } from '../core/log.js';
import type { EntityView, RuntimeApi } from '../core/runtime-api.js';
import { bridgeTopic, reservedId, setTopic, stateTopic } from './gateway.js';
import { defaultEntityId, nameInDevice, slugOf } from './names.js';
import { describeSensor } from './sensor-class.js';

/**
 * Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
 * one retained config per Home Assistant entity on `<prefix>/<component>/<nodeId>/<object id>/config`,
 * pointing at hearth's own topics (gateway.ts), so a command from Home Assistant is a command on
 * `<base>/<id>/set` like any other tool's. Every config has `unique_id` `hearth_<nodeId>_<id>`,
 * `default_entity_id` `<component>.<slug of the entity's name>` (`object_id` is gone from Home
 * Assistant since 2026.4), its device, and `origin`. Kept in step with docs/mqtt.md ("Home
 * Assistant discovery").
 *
 * | hearth kind   | component     | notes                                                                |
 * | ------------- | ------------- | -------------------------------------------------------------------- |
 * | switch        | switch        | on / off                                                             |
 * | button        | switch        | hearth keeps its state; on / off                                     |
 * | heater        | switch        | on = `brew` (the pot's default minutes), off = `stop`                |
 * | valve         | valve         | open = `open` for 600 s (capped by the zone's maximum)               |
 * | chime         | sensor        | `idle` / `playing` (enum)                                            |
 * |               | + button      | one per clip in `attributes.clips`: `play` with that `media`         |
 * | calendar      | binary_sensor | on while an event is in progress                                     |
 * | binary_sensor | binary_sensor | `device_class` from `attributes.deviceClass`                         |
 * | climate       | climate       | modes off/cool/heat/fan_only, 18-30 °C in steps of 1, power          |
 * | sensor        | sensor        | unit, device class and state class: sensor-class.ts                  |
 * | (hearth)      | binary_sensor | the bridge device: `connectivity` of `<base>/bridge/state`           |
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
/** Buttons one chime gets at most, whatever its attributes say. */
export const maxClips = 20;
/**
 * Home Assistant's `online` makes hearth publish every config again at most once per this long:
 * anyone may publish `online`, and a flood must not become a flood of configs. One that comes
 * sooner is folded into a single republish at the end of the wait, so the last `online` is never
 * left unanswered.
 */
export const republishEveryMs = 5000;

/** What every config says of where it comes from and where hearth is. */
export interface DiscoverySite {
  baseTopic: string;
  prefix: string;
  nodeId: string;
  /** hearth's version: `origin.sw_version` and each device's `sw_version`. */
  version: string;
  /** `origin.support_url`: the project's page. */
  supportUrl: string;
  /** Each device's `configuration_url`: hearth's dashboard, when the config names it. */
  dashboardUrl?: string | undefined;
}

export interface DiscoveryOptions extends DiscoverySite {
  runtime: RuntimeApi;
  mqtt: MqttAccess;
  devices: readonly DeviceEntry[];
  log: Logger;
}

export interface Discovery {
  /** Stale configs emptied so far (entities no longer in the config, or configs hearth no longer makes). */
  readonly removed: string[];
  stop(): void;
}

type Payload = Record<string, unknown>;

/** Where an entity belongs in Home Assistant: its device, and whether it is that device's main entity. */
export interface Placement {
  device: Payload;
  deviceName: string;
  /** The device's main entity is named by the device alone (`name: null`). */
  main: boolean;
}

/** One config: where it goes and what it says. */
export interface DiscoveryConfig {
  topic: string;
  payload: Payload;
}

/** `online`/`offline` on `<base>/bridge/state`. */
function bridgeAvailability(o: Pick<DiscoverySite, 'baseTopic'>) {
  return { topic: bridgeTopic(o.baseTopic), payload_available: 'online', payload_not_available: 'offline' };
}

function origin(o: DiscoverySite): Payload {
  return { name: 'hearth', sw_version: o.version, support_url: o.supportUrl };
}

/** The identifier of the bridge device, which every other device names as its `via_device`. */
export function bridgeIdentifier(nodeId: string): string {
  return `hearth_${nodeId}_bridge`;
}

/** The device block every device of this hearth shares: maker, version, dashboard, the bridge. */
function deviceBlock(o: DiscoverySite, fields: { id: string; name: string; model: string; area?: string }) {
  return {
    identifiers: [`hearth_${o.nodeId}_${fields.id}`],
    name: fields.name,
    manufacturer: 'hearth',
    model: fields.model,
    sw_version: o.version,
    ...(fields.area ? { suggested_area: fields.area } : {}),
    ...(o.dashboardUrl ? { configuration_url: o.dashboardUrl } : {}),
    via_device: bridgeIdentifier(o.nodeId),
  };
}

/**
 * hearth itself as a Home Assistant device: one `connectivity` binary sensor on
 * `<base>/bridge/state`, connected while hearth serves its topics (in a cluster, while a
 * controller leads). Every other device is `via_device` this one.
 */
export function bridgeConfig(o: DiscoverySite): DiscoveryConfig {
  const name = o.nodeId === 'hearth' ? 'hearth' : `hearth ${o.nodeId}`;
  return {
    topic: `${o.prefix}/binary_sensor/${o.nodeId}/${reservedId}/config`,
    payload: {
      unique_id: bridgeIdentifier(o.nodeId),
      default_entity_id: defaultEntityId('binary_sensor', name, o.nodeId),
      name: null,
      device_class: 'connectivity',
      entity_category: 'diagnostic',
      state_topic: bridgeTopic(o.baseTopic),
      payload_on: 'online',
      payload_off: 'offline',
      device: {
        identifiers: [bridgeIdentifier(o.nodeId)],
        name,
        manufacturer: 'hearth',
        model: 'hearth',
        sw_version: o.version,
        ...(o.dashboardUrl ? { configuration_url: o.dashboardUrl } : {}),
      },
      origin: origin(o),
    },
  };
}

/** The clips a chime offers (`attributes.clips`: `[{ media, name }]`), at most {@link maxClips}. */
function clipsOf(e: EntityView): Array<{ media: string; name: string }> {
  const clips = e.attributes.clips;
  if (!Array.isArray(clips)) return [];
  const out: Array<{ media: string; name: string }> = [];
  const keys = new Set<string>();
  for (const c of clips.slice(0, maxClips)) {
    if (typeof c !== 'object' || c === null) continue;
    const { media, name } = c as Record<string, unknown>;
    if (typeof media !== 'string' || media === '' || typeof name !== 'string' || name === '') continue;
    // Two clips whose names make the same topic would share one config.
    const key = slugOf(media);
    if (key === '' || keys.has(key)) continue;
    keys.add(key);
    out.push({ media, name });
  }
  return out;
}

/** The configs Home Assistant gets for one entity: one, or a chime's sensor and its buttons. */
export function discoveryConfigs(e: EntityView, o: DiscoverySite, at: Placement): DiscoveryConfig[] {
  const component = componentOf[e.kind];
  const state = stateTopic(o.baseTopic, e.id);
  const command = setTopic(o.baseTopic, e.id);
  const name = nameInDevice(e.name, at.deviceName, at.main);
  const availability = {
    availability: [
      bridgeAvailability(o),
      { topic: state, value_template: '{{ "online" if value_json.available else "offline" }}' },
    ],
    availability_mode: 'all',
  };
  const p: Payload = {
    unique_id: `hearth_${o.nodeId}_${e.id}`,
    default_entity_id: defaultEntityId(component, e.name, e.id),
    name,
    ...availability,
    json_attributes_topic: state,
    json_attributes_template: '{{ value_json.attributes | tojson }}',
    device: at.device,
    origin: origin(o),
  };
  const plain = { state_topic: state, value_template: '{{ value_json.state }}' };
  const extra: DiscoveryConfig[] = [];
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
      // Home Assistant cannot send a sensor anything: each clip is a button that plays it.
      for (const clip of clipsOf(e)) {
        const key = `${e.id}-play-${slugOf(clip.media)}`;
        const label = `play ${clip.name}`;
        extra.push({
          topic: `${o.prefix}/button/${o.nodeId}/${key}/config`,
          payload: {
            unique_id: `hearth_${o.nodeId}_${key}`,
            default_entity_id: defaultEntityId('button', `${e.name} ${label}`, key),
            name: name === null ? `Play ${clip.name}` : `${name}: ${label}`,
            ...availability,
            command_topic: command,
            payload_press: JSON.stringify({ command: 'play', args: { media: clip.media } }),
            device: at.device,
            origin: origin(o),
          },
        });
      }
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
      const d = describeSensor(e);
      if (d.unit !== undefined) p.unit_of_measurement = d.unit;
      if (d.deviceClass !== undefined) p.device_class = d.deviceClass;
      if (d.stateClass !== undefined) p.state_class = d.stateClass;
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
  return [{ topic: `${o.prefix}/${component}/${o.nodeId}/${e.id}/config`, payload: p }, ...extra];
}

/**
 * Where each entity goes: one Home Assistant device per configured device entry, whose main
 * entity is the one with the entry's own id (a plug's switch, a pot's heater, a speaker's chime);
 * buttons, and anything no entry declares, share one "hearth buttons" device.
 */
export function placements(devices: readonly DeviceEntry[], o: DiscoverySite): (id: string) => Placement {
  const byEntity = new Map<string, Placement>();
  for (const d of devices) {
    const room = d.config.room;
    const device = deviceBlock(o, {
      id: d.config.id,
      name: d.config.name,
      model: `${d.driver.name} (${d.config.kind})`,
      ...(typeof room === 'string' && room !== '' ? { area: room } : {}),
    });
    for (const decl of d.driver.entities(d.config)) {
      byEntity.set(decl.id, { device, deviceName: d.config.name, main: decl.id === d.config.id });
    }
  }
  const buttons: Placement = {
    device: deviceBlock(o, { id: 'buttons', name: 'hearth buttons', model: 'buttons' }),
    deviceName: 'hearth buttons',
    main: false,
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
  const placementOf = placements(o.devices, o);
  const configsOf = (e: EntityView) => discoveryConfigs(e, o, placementOf(e.id));
  const bridge = bridgeConfig(o);
  /** What each topic of ours last carried. */
  const announced = new Map<string, string>();
  /** What each entity's configs were made of, and their topics: most state changes change none of it. */
  const madeOf = new Map<string, { name: string; attributes: Record<string, unknown>; topics: string[] }>();
  const removed: string[] = [];
  const publish = ({ topic, payload }: DiscoveryConfig) => {
    const text = JSON.stringify(payload);
    if (announced.get(topic) === text) return;
    announced.set(topic, text);
    mqtt.publish(topic, text, { retain: true });
  };
  const empty = (topic: string) => {
    if (announced.delete(topic)) mqtt.publish(topic, '', { retain: true });
  };
  const announce = (e: EntityView) => {
    if (!announceable(e)) return;
    const last = madeOf.get(e.id);
    // The runtime hands out the same attributes object until they change.
    if (
      last &&
      last.name === e.name &&
      last.attributes === e.attributes &&
      last.topics.every((t) => announced.has(t))
    )
      return;
    const configs = configsOf(e);
    const topics = configs.map((c) => c.topic);
    // A config the entity no longer has (a clip taken out): Home Assistant deletes its entity.
    for (const t of last?.topics ?? []) if (!topics.includes(t)) empty(t);
    madeOf.set(e.id, { name: e.name, attributes: e.attributes, topics });
    // A sensor's unit may arrive with its first reading: announce again when the config changes.
    for (const c of configs) publish(c);
  };
  const announceAll = () => {
    announced.clear();
    publish(bridge);
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
    const last = madeOf.get(e.id);
    madeOf.delete(e.id);
    for (const t of last?.topics ?? []) empty(t);
  }, 'homeassistant');

  // Configs of ours the broker still holds that hearth no longer makes (an entity no longer
  // configured, a chime clip taken out, a config of an older hearth under another component):
  // empty them, so Home Assistant deletes those entities. Only the retained copies sent on
  // subscribing count.
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
    const current = new Set([
      bridge.topic,
      ...runtime.list().flatMap((e) => (announceable(e) ? configsOf(e).map((c) => c.topic) : [])),
    ]);
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
