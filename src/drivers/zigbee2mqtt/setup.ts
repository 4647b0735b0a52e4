import { maxPayloadBytes } from '../../bus/mqtt/limits.js';
import type { Kind } from '../../contract/kinds.js';
import type {
  CommandHandlers,
  DriverContext,
  EntityHandle,
  MqttMessage,
  Running,
} from '../../core/driver.js';
import { reasonOf } from '../../core/errors.js';
import { Reported } from '../mqtt-things/reported.js';
import type { Zigbee2mqttConfig } from './config.js';
import { bridgeDevicesSchema, onOffOf, planEntities, type ZigbeeEntity } from './exposes.js';

/**
 * A `bridge/devices` list bigger than this is garbage (a few hundred devices take about 1 MB):
 * the MQTT connection's own cap, so a list hearth's connection takes is a list it reads.
 */
export const maxDevicesBytes = maxPayloadBytes;
/** A device's state message bigger than this is garbage. */
export const maxStateBytes = 64 * 1024;
/** Entities taken from one bridge at most; past it the rest are left out, with a warning. */
export const maxEntities = 2000;

interface Live {
  entity: ZigbeeEntity;
  handle: EntityHandle<Kind>;
  /** What the device last reported, for commands waiting for it (switches). */
  reported: Reported<'on' | 'off'>;
}

/**
 * Follows one zigbee2mqtt bridge: its device list makes the entities, each device's state
 * message their states, `bridge/state` and each device's `availability` their availability.
 */
export async function setupZigbee2mqtt(ctx: DriverContext, config: Zigbee2mqttConfig): Promise<Running> {
  const mqtt = ctx.mqtt;
  if (!mqtt) throw new Error('zigbee2mqtt needs the MQTT broker: add `mqtt: { url: mqtt://HOST:1883 }`');
  const base = config.baseTopic;
  const log = ctx.log;
  const live = new Map<string, Live>();
  /** Entities by the friendly name of their device: the state topic's name. */
  const byDevice = new Map<string, Live[]>();
  /** Devices that said `offline` on their availability topic. */
  const offlineDevices = new Set<string>();
  let bridge: 'online' | 'offline' | undefined;
  const warned = new Set<string>();
  const warnOnce = (key: string, msg: string) => {
    if (warned.has(key) || warned.size > 1000) return;
    warned.add(key);
    log.warn(msg);
  };

  /** Why an entity of `device` cannot be used now, or null. */
  const downReason = (device: string): string | null => {
    if (!mqtt.connected) return 'the MQTT broker is unreachable';
    if (bridge === 'offline') return `zigbee2mqtt is offline (${base}/bridge/state)`;
    if (offlineDevices.has(device)) return `zigbee2mqtt says the device "${device}" is offline`;
    return null;
  };
  const judge = (l: Live) => {
    const reason = downReason(l.entity.device);
    if (reason === null) l.handle.setAvailable();
    else l.handle.setUnavailable(reason);
  };
  const judgeAll = () => {
    for (const l of live.values()) judge(l);
  };

  const handlersOf = (e: ZigbeeEntity, reported: Reported<'on' | 'off'>): CommandHandlers<Kind> => {
    if (e.kind !== 'switch') return {} as CommandHandlers<Kind>;
    const send = (value: unknown) =>
      mqtt.publish(`${base}/${e.device}/set`, JSON.stringify({ [e.property]: value }));
    const set = async (want: 'on' | 'off', signal: AbortSignal): Promise<'on' | 'off'> => {
      const reason = downReason(e.device);
      if (reason !== null) throw new Error(reason);
      send(want === 'on' ? e.valueOn : e.valueOff);
      await reported.until((v) => v === want, signal);
      return want;
    };
    const handlers: CommandHandlers<'switch'> = {
      on: (_a, { signal }) => set('on', signal),
      off: (_a, { signal }) => set('off', signal),
      toggle: async (_a, { signal }) => {
        if (reported.value !== undefined) return set(reported.value === 'on' ? 'off' : 'on', signal);
        // Not known yet: let the device toggle itself, and take what it reports next.
        const reason = downReason(e.device);
        if (reason !== null) throw new Error(reason);
        reported.clear();
        send(e.valueToggle);
        await reported.until(() => true, signal);
        return reported.value ?? 'off';
      },
    };
    return handlers as unknown as CommandHandlers<Kind>;
  };

  const add = (e: ZigbeeEntity): void => {
    const reported = new Reported<'on' | 'off'>();
    let handle: EntityHandle<Kind>;
    try {
      handle = ctx.entities.add(
        {
          id: e.id,
          kind: e.kind,
          name: e.name,
          timeoutMs: config.timeoutMs,
          pollMs: 0,
          attributes: e.attributes,
        },
        handlersOf(e, reported),
      );
    } catch (err) {
      warnOnce(`add ${e.id}`, `zigbee device "${e.device}" is left out: ${reasonOf(err)}`);
      return;
    }
    handle.setAttributes({ zigbee: { device: e.device, ieee: e.ieee, property: e.property } });
    const l: Live = { entity: e, handle, reported };
    live.set(e.id, l);
    const list = byDevice.get(e.device) ?? [];
    list.push(l);
    byDevice.set(e.device, list);
    judge(l);
  };

  const remove = (id: string): void => {
    const l = live.get(id);
    live.delete(id);
    ctx.entities.remove(id);
    if (!l) return;
    const list = (byDevice.get(l.entity.device) ?? []).filter((x) => x !== l);
    if (list.length > 0) byDevice.set(l.entity.device, list);
    else byDevice.delete(l.entity.device);
  };

  /** Ask the devices whose switch state is not known for it (their state messages are rarely retained). */
  const askStates = (devices: Iterable<string>) => {
    for (const device of devices) {
      const unknown = (byDevice.get(device) ?? []).filter(
        (l) => l.entity.kind === 'switch' && l.entity.gettable && l.reported.value === undefined,
      );
      if (unknown.length === 0 || downReason(device) !== null) continue;
      const ask = Object.fromEntries(unknown.map((l) => [l.entity.property, '']));
      mqtt.publish(`${base}/${device}/get`, JSON.stringify(ask));
    }
  };

  const onDevices = (m: MqttMessage) => {
    const topic = m.topic;
    if (m.payload.length > maxDevicesBytes) {
      return mqtt.garbage(topic, `a device list of ${m.payload.length} bytes (at most ${maxDevicesBytes})`);
    }
    let value: unknown;
    try {
      value = JSON.parse(m.payload.toString('utf8'));
    } catch {
      return mqtt.garbage(topic, 'not JSON');
    }
    const list = bridgeDevicesSchema.safeParse(value);
    if (!list.success) return mqtt.garbage(topic, 'not a list of devices');
    const plan = planEntities(list.data);
    for (const p of plan.problems) warnOnce(p, `zigbee2mqtt: ${p}`);
    let wanted = plan.entities;
    if (wanted.length > maxEntities) {
      warnOnce('too many', `zigbee2mqtt: ${wanted.length} entities; only the first ${maxEntities} are taken`);
      wanted = wanted.slice(0, maxEntities);
    }
    const next = new Map(wanted.map((e) => [e.id, e]));
    // Gone, renamed (a new id), or changed (another device now has the name): removed first, so
    // an id that moves from one device to another is free again.
    for (const id of new Set([...live.keys(), ...ctx.entities.ids()])) {
      const now = next.get(id);
      const was = live.get(id)?.entity;
      if (!now || !was || !sameEntity(was, now)) remove(id);
    }
    const added: string[] = [];
    for (const e of wanted) {
      if (live.has(e.id)) continue;
      add(e);
      if (live.has(e.id)) added.push(e.id);
    }
    if (added.length > 0 || live.size !== wanted.length) {
      log.info({ entities: live.size, added: added.length }, 'zigbee2mqtt devices read');
    }
    askStates(new Set(wanted.filter((e) => added.includes(e.id)).map((e) => e.device)));
  };

  const onBridgeState = (m: MqttMessage) => {
    const state = statusOf(m.payload);
    if (state === undefined) return mqtt.garbage(m.topic, 'expected online or offline');
    const was = bridge;
    bridge = state;
    judgeAll();
    if (state === 'online' && was === 'offline') askStates(byDevice.keys());
  };

  const onAvailability = (device: string, m: MqttMessage) => {
    const state = statusOf(m.payload);
    if (state === undefined) return mqtt.garbage(m.topic, 'expected online or offline');
    if (state === 'offline') offlineDevices.add(device);
    else offlineDevices.delete(device);
    for (const l of byDevice.get(device) ?? []) judge(l);
  };

  const onState = (entities: readonly Live[], m: MqttMessage) => {
    if (m.payload.length > maxStateBytes) {
      return mqtt.garbage(m.topic, `a state of ${m.payload.length} bytes (at most ${maxStateBytes})`);
    }
    let value: unknown;
    try {
      value = JSON.parse(m.payload.toString('utf8'));
    } catch {
      return mqtt.garbage(m.topic, 'not JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return mqtt.garbage(m.topic, 'not a JSON object');
    }
    const state = value as Record<string, unknown>;
    for (const l of entities) {
      if (!Object.hasOwn(state, l.entity.property)) continue;
      const v = state[l.entity.property];
      const e = l.entity;
      if (e.action) {
        // A retained copy is an old press, re-sent on every reconnect: never a new one.
        if (m.retain || typeof v !== 'string' || v === '') continue;
        l.handle.setState(v.slice(0, 64), { always: true });
        l.handle.fire('action', { action: v.slice(0, 64) });
      } else if (e.kind === 'sensor') {
        if (typeof v === 'number' && Number.isFinite(v)) l.handle.setState(v);
        else if (v !== null) mqtt.garbage(m.topic, `${e.property} is not a number`);
      } else {
        const s = onOffOf(e, v);
        if (s === undefined) {
          if (v !== null)
            mqtt.garbage(m.topic, `${e.property} is neither ${String(e.valueOn)} nor ${String(e.valueOff)}`);
          continue;
        }
        l.reported.set(s);
        l.handle.setState(s);
      }
    }
  };

  const prefix = `${base}/`;
  const off = mqtt.subscribe(
    `${base}/#`,
    (m) => {
      const rest = m.topic.slice(prefix.length);
      if (rest === 'bridge/devices') return onDevices(m);
      if (rest === 'bridge/state') return onBridgeState(m);
      if (rest.startsWith('bridge/')) return;
      if (rest.endsWith('/availability')) {
        const device = rest.slice(0, -'/availability'.length);
        if (byDevice.has(device)) onAvailability(device, m);
        return;
      }
      // Commands (ours and others'), groups and devices hearth has no entity for: not ours to read.
      const entities = byDevice.get(rest);
      if (entities) onState(entities, m);
    },
    `zigbee2mqtt ${config.id}`,
  );
  const offConnection = mqtt.onConnection((up) => {
    if (!up) for (const l of live.values()) l.reported.clear();
    judgeAll();
    // The retained device list comes while the connection is still being set up, before it
    // counts as up: the switches it brought are asked for their state now.
    if (up) askStates(byDevice.keys());
  });

  return {
    stop: async () => {
      off();
      offConnection();
    },
  };
}

/** `online`/`offline`, bare or as zigbee2mqtt 1.30+ sends it (`{"state": "online"}`). */
function statusOf(payload: Buffer): 'online' | 'offline' | undefined {
  if (payload.length > 256) return undefined;
  let text = payload.toString('utf8').trim();
  if (text.startsWith('{')) {
    try {
      const v = JSON.parse(text) as { state?: unknown };
      text = typeof v.state === 'string' ? v.state : '';
    } catch {
      return undefined;
    }
  }
  return text === 'online' || text === 'offline' ? text : undefined;
}

function sameEntity(a: ZigbeeEntity, b: ZigbeeEntity): boolean {
  return (
    a.kind === b.kind &&
    a.device === b.device &&
    a.property === b.property &&
    a.name === b.name &&
    JSON.stringify(a.attributes) === JSON.stringify(b.attributes)
  );
}
