import { z } from 'zod/v3';

/*
 * What zigbee2mqtt's retained `<base>/bridge/devices` says, and the hearth entities it becomes.
 * zigbee2mqtt describes each device by its `definition.exposes`: features, each with the
 * `property` it reports in the device's state message and an `access` bit set (1: published in
 * the state, 2: can be set, 4: can be read with /get). Only what hearth has a kind for is taken:
 *
 * | expose                                          | hearth kind   | state                        |
 * | ----------------------------------------------- | ------------- | ---------------------------- |
 * | switch / light / fan with a binary `state`      | switch        | on / off; on, off, toggle    |
 * | binary occupancy, presence, contact, water_leak,| binary_sensor | on = detected (door open)    |
 * |   smoke, vibration, tamper                      |               |                              |
 * | numeric temperature, humidity, pressure,        | sensor        | the number; `unit` attribute |
 * |   battery, illuminance(_lux), power, energy,    |               |                              |
 * |   voltage, current, co2, voc, pm25, soil_moisture|              |                              |
 * | enum `action` (buttons, remotes)                | sensor        | the last action; every press |
 * |                                                 |               | is announced, even a repeat  |
 *
 * Ids: the friendly name made an id (`Hall Remote` → `hall-remote`). A device's main feature
 * (its switch, its action, its occupancy or contact ...) takes that id alone; every other feature
 * is `<id>-<property>` (`hall-remote-battery`); a second endpoint's switch is `<id>-<endpoint>`.
 */

/** Numeric properties taken as sensors; the rest (linkquality, voltage of a battery ...) are left out. */
export const sensorProperties: ReadonlySet<string> = new Set([
  'temperature',
  'humidity',
  'pressure',
  'battery',
  'illuminance',
  'illuminance_lux',
  'power',
  'energy',
  'voltage',
  'current',
  'co2',
  'voc',
  'pm25',
  'soil_moisture',
]);

/** Binary properties taken as detectors, with the Home Assistant device class of each. */
export const detectorClasses: Readonly<Record<string, string>> = {
  occupancy: 'occupancy',
  presence: 'presence',
  contact: 'door',
  water_leak: 'moisture',
  smoke: 'smoke',
  vibration: 'vibration',
  tamper: 'tamper',
};

/** Properties that make a device's main entity, in this order of preference. */
const mainProperties = ['state', 'action', 'occupancy', 'presence', 'contact', 'water_leak', 'smoke'];

const ACCESS_STATE = 1;
const ACCESS_SET = 2;
const ACCESS_GET = 4;

/** One device of `bridge/devices`, as far as hearth reads it; everything else passes. */
const deviceSchema = z
  .object({
    ieee_address: z.string().min(1).max(64),
    type: z.string().max(32).optional(),
    friendly_name: z.string().min(1).max(256),
    disabled: z.boolean().optional(),
    supported: z.boolean().optional(),
    definition: z
      .object({
        model: z.string().max(200).nullish(),
        vendor: z.string().max(200).nullish(),
        description: z.string().max(500).nullish(),
        exposes: z.array(z.unknown()).max(500).default([]),
      })
      .passthrough()
      .nullish(),
  })
  .passthrough();

export type BridgeDevice = z.infer<typeof deviceSchema>;

/** At most this many devices are read from one list; a real network has a few hundred at most. */
export const maxDevices = 1000;

export const bridgeDevicesSchema = z.array(z.unknown()).max(maxDevices);

/** One entity hearth makes of a zigbee device's feature. */
export interface ZigbeeEntity {
  id: string;
  kind: 'switch' | 'sensor' | 'binary_sensor';
  name: string;
  /** The device's friendly name: its topic is `<base>/<friendly name>`. */
  device: string;
  ieee: string;
  /** The key of its value in the device's state message. */
  property: string;
  /** An `action` of a remote: every report is a press. */
  action: boolean;
  valueOn?: unknown;
  valueOff?: unknown;
  valueToggle?: unknown;
  /** Can be read with `<base>/<device>/get`. */
  gettable: boolean;
  attributes: Record<string, unknown>;
}

/** A friendly name made an id: lowercase, every run of other characters one `-`. */
export function slugOf(friendlyName: string): string {
  return friendlyName
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function withSuffix(base: string, suffix: string): string {
  const tail = `-${suffix.replace(/_/g, '-')}`;
  return `${base.slice(0, 64 - tail.length).replace(/-+$/, '')}${tail}`;
}

/** A feature as hearth reads it; undefined for anything malformed. */
interface Feature {
  type: string;
  name: string;
  property: string;
  access: number;
  endpoint?: string;
  unit?: string;
  valueOn?: unknown;
  valueOff?: unknown;
  valueToggle?: unknown;
}

function readFeature(raw: unknown): Feature | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const f = raw as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : undefined);
  const type = str(f.type);
  const name = str(f.name);
  const property = str(f.property) ?? name;
  if (!type || !name || !property || !/^[A-Za-z0-9_]+$/.test(property)) return undefined;
  return {
    type,
    name,
    property,
    access: typeof f.access === 'number' ? f.access : ACCESS_STATE,
    ...(str(f.endpoint) ? { endpoint: str(f.endpoint) } : {}),
    ...(typeof f.unit === 'string' && f.unit.length <= 16 ? { unit: f.unit } : {}),
    ...('value_on' in f ? { valueOn: f.value_on } : {}),
    ...('value_off' in f ? { valueOff: f.value_off } : {}),
    ...('value_toggle' in f ? { valueToggle: f.value_toggle } : {}),
  };
}

/** The features of a device: composite exposes (switch, light) are opened one level. */
function featuresOf(exposes: readonly unknown[]): Array<{ feature: Feature; switchLike: boolean }> {
  const out: Array<{ feature: Feature; switchLike: boolean }> = [];
  for (const raw of exposes) {
    if (typeof raw !== 'object' || raw === null) continue;
    const e = raw as Record<string, unknown>;
    if (Array.isArray(e.features)) {
      const switchLike = e.type === 'switch' || e.type === 'light' || e.type === 'fan';
      for (const inner of e.features.slice(0, 50)) {
        const feature = readFeature(inner);
        if (feature) out.push({ feature, switchLike });
      }
      continue;
    }
    const feature = readFeature(raw);
    if (feature) out.push({ feature, switchLike: false });
  }
  return out;
}

/** The entities of one device, before ids are checked against each other. */
function entitiesOf(device: BridgeDevice): ZigbeeEntity[] {
  const exposes = device.definition?.exposes ?? [];
  const base = slugOf(device.friendly_name) || slugOf(device.ieee_address);
  const found: Array<Omit<ZigbeeEntity, 'id' | 'name'> & { suffix: string; main: number }> = [];
  for (const { feature: f, switchLike } of featuresOf(exposes)) {
    if ((f.access & ACCESS_STATE) === 0) continue;
    const common = {
      device: device.friendly_name,
      ieee: device.ieee_address,
      property: f.property,
      gettable: (f.access & ACCESS_GET) !== 0,
    };
    if (switchLike && f.name === 'state' && f.type === 'binary' && (f.access & ACCESS_SET) !== 0) {
      found.push({
        ...common,
        kind: 'switch',
        action: false,
        valueOn: f.valueOn ?? 'ON',
        valueOff: f.valueOff ?? 'OFF',
        valueToggle: f.valueToggle ?? 'TOGGLE',
        attributes: {},
        suffix: f.endpoint ?? 'state',
        main: f.endpoint ? -1 : mainProperties.indexOf('state'),
      });
    } else if (f.type === 'binary' && detectorClasses[f.name] !== undefined) {
      found.push({
        ...common,
        kind: 'binary_sensor',
        action: false,
        valueOn: f.valueOn ?? true,
        valueOff: f.valueOff ?? false,
        attributes: { deviceClass: detectorClasses[f.name] },
        suffix: f.property,
        main: mainProperties.indexOf(f.name),
      });
    } else if (f.type === 'numeric' && sensorProperties.has(f.name)) {
      found.push({
        ...common,
        kind: 'sensor',
        action: false,
        attributes: f.unit ? { unit: f.unit } : {},
        suffix: f.property,
        main: -1,
      });
    } else if (f.type === 'enum' && f.name === 'action') {
      found.push({
        ...common,
        kind: 'sensor',
        action: true,
        attributes: {},
        suffix: f.property,
        main: mainProperties.indexOf('action'),
      });
    }
  }
  // The main feature: the first of mainProperties the device has; on a tie, the first exposed.
  let main = -1;
  for (let i = 0; i < found.length; i++) {
    const rank = found[i]?.main ?? -1;
    if (rank >= 0 && (main < 0 || rank < (found[main]?.main ?? 0))) main = i;
  }
  const seen = new Set<string>();
  const out: ZigbeeEntity[] = [];
  found.forEach(({ suffix, main: _rank, ...e }, i) => {
    const id = i === main ? base.slice(0, 64).replace(/-+$/, '') : withSuffix(base, suffix);
    if (id === '' || seen.has(id)) return;
    seen.add(id);
    const label = suffix.replace(/_/g, ' ');
    out.push({ ...e, id, name: i === main ? device.friendly_name : `${device.friendly_name} ${label}` });
  });
  return out;
}

export interface Plan {
  entities: ZigbeeEntity[];
  /** Devices whose entry could not be read, and ids two devices would share: one line each. */
  problems: string[];
}

/** The entities of every device in a `bridge/devices` list. */
export function planEntities(list: readonly unknown[]): Plan {
  const problems: string[] = [];
  const byId = new Map<string, ZigbeeEntity>();
  for (const raw of list) {
    const parsed = deviceSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push('a device entry that is not what zigbee2mqtt publishes was left out');
      continue;
    }
    const d = parsed.data;
    if (d.type === 'Coordinator' || d.disabled === true || !d.definition) continue;
    for (const e of entitiesOf(d)) {
      const other = byId.get(e.id);
      if (other) {
        problems.push(
          `"${d.friendly_name}" and "${other.device}" would both be "${e.id}"; rename one in zigbee2mqtt`,
        );
        continue;
      }
      byId.set(e.id, e);
    }
  }
  return { entities: [...byId.values()], problems };
}

/** hearth's state of a switch or detector from the value the device reported; undefined if neither. */
export function onOffOf(e: ZigbeeEntity, value: unknown): 'on' | 'off' | undefined {
  if (same(value, e.valueOn)) return 'on';
  if (same(value, e.valueOff)) return 'off';
  return undefined;
}

function same(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'string' && typeof b === 'string' && a.toUpperCase() === b.toUpperCase());
}
