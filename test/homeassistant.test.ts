import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { commandNames, type Kind, kindNames } from '../src/contract/kinds.js';
import { isSensorClass, stateClassOf, unitFits } from '../src/contract/sensor-classes.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { drivers } from '../src/drivers/index.js';
import { type SonosSimulator, startSonosSimulator } from '../src/drivers/sonos/simulator.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import {
  bridgeConfig,
  componentOf,
  type DiscoverySite,
  discoveryConfigs,
  type Placement,
  placements,
} from '../src/homeassistant/discovery.js';
import { parseCommand } from '../src/homeassistant/gateway.js';
import { defaultEntityId, nameInDevice, slugOf } from '../src/homeassistant/names.js';
import { describeSensor, unitRules } from '../src/homeassistant/sensor-class.js';
import { hearthHomepage, hearthVersion } from '../src/version.js';
import { http, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { spawnHearth } from './support/process.js';
import { until } from './support/wait.js';

/**
 * The keys Home Assistant documents for each MQTT component (integrations/<component>.mqtt),
 * and the ones hearth must send for the entity to work. A key outside these is a typo Home
 * Assistant would refuse the whole config for.
 */
const common = [
  'availability',
  'availability_mode',
  'default_entity_id',
  'device',
  'name',
  'origin',
  'unique_id',
];
const commonAllowed = ['json_attributes_template', 'json_attributes_topic', 'entity_category'];
const documented: Record<string, { required: string[]; allowed: string[] }> = {
  switch: {
    required: ['state_topic', 'command_topic', 'payload_on', 'payload_off', 'state_on', 'state_off'],
    allowed: ['value_template', 'command_template', 'device_class', 'optimistic', 'retain'],
  },
  binary_sensor: {
    required: ['state_topic', 'payload_on', 'payload_off'],
    allowed: ['value_template', 'device_class', 'expire_after', 'force_update', 'off_delay'],
  },
  sensor: {
    required: ['state_topic'],
    allowed: [
      'value_template',
      'device_class',
      'unit_of_measurement',
      'state_class',
      'options',
      'expire_after',
      'force_update',
      'suggested_display_precision',
    ],
  },
  valve: {
    required: ['command_topic', 'state_topic', 'payload_open', 'payload_close', 'state_open', 'state_closed'],
    allowed: ['value_template', 'payload_stop', 'reports_position', 'device_class', 'optimistic', 'retain'],
  },
  climate: {
    required: [
      'modes',
      'mode_state_topic',
      'mode_command_topic',
      'temperature_state_topic',
      'temperature_command_topic',
    ],
    allowed: [
      'mode_state_template',
      'mode_command_template',
      'temperature_state_template',
      'temperature_command_template',
      'power_command_topic',
      'power_command_template',
      'payload_on',
      'payload_off',
      'min_temp',
      'max_temp',
      'temp_step',
      'precision',
      'temperature_unit',
      'current_temperature_topic',
      'current_temperature_template',
    ],
  },
  button: {
    required: ['command_topic', 'payload_press'],
    allowed: ['command_template', 'device_class', 'retain', 'qos'],
  },
};
/** The keys of a device block and of `origin` (integrations/mqtt, "Discovery payload"). */
const deviceKeys = [
  'identifiers',
  'connections',
  'name',
  'manufacturer',
  'model',
  'model_id',
  'serial_number',
  'hw_version',
  'sw_version',
  'suggested_area',
  'configuration_url',
  'via_device',
];
const originKeys = ['name', 'sw_version', 'support_url'];

/** The component a config's topic names: `homeassistant/<component>/<node>/<object>/config`. */
const componentIn = (topic: string) => topic.split('/').at(-4) ?? '';

function checkKeys(component: string, payload: Record<string, unknown>): void {
  const doc = documented[component];
  expect(doc, `a table row for ${component}`).toBeDefined();
  if (!doc) return;
  for (const key of [...common, ...doc.required])
    expect(payload, `${component} has ${key}`).toHaveProperty(key);
  const allowed = new Set([...common, ...commonAllowed, ...doc.required, ...doc.allowed]);
  expect(Object.keys(payload).filter((k) => !allowed.has(k))).toEqual([]);
  expect(payload.availability_mode).toBe('all');
  // Ignored by Home Assistant since 2026.4; default_entity_id says it now.
  expect(payload).not.toHaveProperty('object_id');
  expect(payload.default_entity_id).toMatch(new RegExp(`^${component}\\.[a-z0-9]+(_[a-z0-9]+)*$`));
  expect(Object.keys(payload.origin as object).filter((k) => !originKeys.includes(k))).toEqual([]);
  expect(Object.keys(payload.device as object).filter((k) => !deviceKeys.includes(k))).toEqual([]);
}

/** No entity name says its device's name again ("Coffee pot Coffee pot water"). */
function checkName(payload: Record<string, unknown>): void {
  const device = String((payload.device as { name?: unknown }).name);
  const name = payload.name;
  expect(name === null || typeof name === 'string', `name of ${payload.unique_id}`).toBe(true);
  if (typeof name === 'string') expect(name.toLowerCase()).not.toContain(device.toLowerCase());
}

function view(id: string, kind: Kind, attributes: Record<string, unknown> = {}, name = id): EntityView {
  return {
    id,
    kind,
    name,
    driver: 'test',
    state: null,
    available: true,
    reason: null,
    updatedAt: null,
    commands: commandNames(kind),
    attributes,
  };
}

const site: DiscoverySite = {
  baseTopic: 'hearth',
  prefix: 'homeassistant',
  nodeId: 'box',
  version: '0.1.0',
  supportUrl: 'https://example.org/hearth',
};
const at: Placement = { device: { identifiers: ['d'], name: 'Device' }, deviceName: 'Device', main: false };

describe('discovery configs for every kind', () => {
  for (const kind of kindNames) {
    it(`${kind} → ${componentOf[kind]} with the keys Home Assistant documents`, () => {
      const [first] = discoveryConfigs(view(`e_${kind}`, kind, { unit: '°C' }), site, at);
      expect(first?.topic).toBe(`homeassistant/${componentOf[kind]}/box/e_${kind}/config`);
      expect(first?.payload.unique_id).toBe(`hearth_box_e_${kind}`);
      expect(first?.payload.default_entity_id).toBe(`${componentOf[kind]}.e_${kind}`);
      expect(first?.payload.origin).toEqual({
        name: 'hearth',
        sw_version: '0.1.0',
        support_url: 'https://example.org/hearth',
      });
      checkKeys(componentOf[kind], first?.payload ?? {});
    });
  }

  it('a chime is a sensor of its state and a button per clip, which sends play with that clip', () => {
    const chime = view('kitchen', 'chime', {
      volume: 40,
      clips: [
        { media: 'ding.mp3', name: 'ding' },
        { media: 'Glocke Küche.mp3', name: 'Glocke' },
      ],
    });
    const main: Placement = { ...at, deviceName: 'Kitchen speaker', main: true };
    const configs = discoveryConfigs({ ...chime, name: 'Kitchen speaker' }, site, main);
    expect(configs.map((c) => c.topic)).toEqual([
      'homeassistant/sensor/box/kitchen/config',
      'homeassistant/button/box/kitchen-play-ding_mp3/config',
      'homeassistant/button/box/kitchen-play-glocke_kuche_mp3/config',
    ]);
    const [sensor, ding, glocke] = configs.map((c) => c.payload);
    expect(sensor).toMatchObject({ name: null, device_class: 'enum', options: ['idle', 'playing'] });
    expect(ding).toMatchObject({
      name: 'Play ding',
      default_entity_id: 'button.kitchen_speaker_play_ding',
      unique_id: 'hearth_box_kitchen-play-ding_mp3',
      command_topic: 'hearth/kitchen/set',
    });
    for (const b of [ding, glocke]) checkKeys('button', b ?? {});
    // What the button sends is a command the gateway takes, and one the chime's play accepts.
    expect(parseCommand(Buffer.from(String(glocke?.payload_press)))).toEqual({
      command: 'play',
      args: { media: 'Glocke Küche.mp3' },
    });
    // Attributes that are not clips make no buttons.
    expect(discoveryConfigs(view('k', 'chime', { clips: [{ media: 1 }, 'x', null] }), site, at)).toHaveLength(
      1,
    );
  });

  it('the bridge is a connectivity sensor of <base>/bridge/state, the device every other one is via', () => {
    const { topic, payload } = bridgeConfig({ ...site, dashboardUrl: 'http://hearth.lan:8000' });
    expect(topic).toBe('homeassistant/binary_sensor/box/bridge/config');
    expect(payload).toMatchObject({
      unique_id: 'hearth_box_bridge',
      default_entity_id: 'binary_sensor.hearth_box',
      name: null,
      device_class: 'connectivity',
      state_topic: 'hearth/bridge/state',
      payload_on: 'online',
      payload_off: 'offline',
      device: { identifiers: ['hearth_box_bridge'], configuration_url: 'http://hearth.lan:8000' },
    });
    expect(payload.device).not.toHaveProperty('via_device');
    const [lamp] = discoveryConfigs(view('lamp', 'switch'), site, placements([], site)('lamp'));
    expect(lamp?.payload.device).toMatchObject({ via_device: 'hearth_box_bridge', sw_version: '0.1.0' });
    expect(lamp?.payload.device).not.toHaveProperty('configuration_url');
  });

  it('reads bare command names and {"command","args"}, and refuses the rest', () => {
    expect(parseCommand(Buffer.from('on'))).toEqual({ command: 'on' });
    expect(parseCommand(Buffer.from('{"command":"open","args":{"seconds":5}}'))).toEqual({
      command: 'open',
      args: { seconds: 5 },
    });
    for (const bad of ['{', '{"command":5}', '[1]', '{"command":"on","x":1}', 'x'.repeat(5000), '"a b"']) {
      expect(parseCommand(Buffer.from(bad))).toHaveProperty('error');
    }
  });
});

describe('docs/mqtt.md says what the code does', () => {
  const docs = readFileSync(new URL('../docs/mqtt.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('## Home Assistant discovery'), docs.indexOf('## Limits'));
  /** The cells of each table row of the section. */
  const rows = section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );

  it('the kinds table names the component of every kind', () => {
    for (const kind of kindNames)
      expect(
        rows.some(([k, c]) => k === kind && c === componentOf[kind]),
        `a row for ${kind}`,
      ).toBe(true);
  });

  it('the units table is the rules, row by row, with their state classes', () => {
    // Its rows are the only ones of four cells; the last says a driver's timestamp, no unit.
    const [header, ...table] = rows.filter((r) => r.length === 4);
    expect(header?.[0]).toBe('unit');
    expect(table.pop()).toEqual(['(none; the driver says `timestamp`)', '`timestamp`', '', '(none)']);
    const cells = table.map(([units, dc, words, sc]) => ({
      units: (units ?? '').split(', '),
      deviceClass: /^`([a-z0-9_]+)`/.exec(dc ?? '')?.[1],
      words: (words ?? '')
        .replace(/\s*\([^)]*\)/g, '')
        .split(', ')
        .filter((w) => w !== ''),
      stateClass: sc?.replaceAll('`', ''),
    }));
    expect(cells).toEqual(
      unitRules.map((r) => ({
        units: [...r.units],
        deviceClass: r.deviceClass,
        words: [...(r.words ?? [])],
        stateClass: stateClassOf(r.deviceClass),
      })),
    );
  });
});

describe('names and entity ids as Home Assistant makes them', () => {
  it('slugs as Home Assistant does', () => {
    expect(defaultEntityId('switch', 'Living room lamp', 'lamp')).toBe('switch.living_room_lamp');
    expect(slugOf('  Glocke Küche (2)! ')).toBe('glocke_kuche_2');
    expect(slugOf('Straße Ærø')).toBe('strasse_aero');
    expect(defaultEntityId('sensor', '☃☃', 'snow-man')).toBe('sensor.snow_man');
  });

  it("a device's main entity has no name of its own, the others only their own part", () => {
    expect(nameInDevice('Coffee pot', 'Coffee pot', true)).toBeNull();
    expect(nameInDevice('Coffee pot water', 'Coffee pot', false)).toBe('Water');
    expect(nameInDevice('coffee pot last status', 'Coffee pot', false)).toBe('Last status');
    expect(nameInDevice('Bedside button', 'hearth buttons', false)).toBe('Bedside button');
    expect(nameInDevice('Coffee pot', 'Coffee pot', false)).toBeNull();
  });

  it("the config's devices: the entry's own id is its main entity, and no name says the device's again", () => {
    const config = parseConfig(
      `
switches:
  - { id: lamp, kind: wemo/v1, name: Living room lamp, room: Living room, address: 127.0.0.1 }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, name: Coffee pot, room: Kitchen, path: /dev/ttyUSB0 }
sprinklers:
  - { id: garden, kind: relay-board/v1, name: Garden, path: /dev/ttyACM0, zones: [front, back] }
speakers:
  - { id: kitchen, kind: sonos/v1, name: Kitchen speaker, address: 127.0.0.1, clips: [ding.mp3] }
`,
      '/srv/hearth/hearth.yaml',
      { drivers },
    );
    const placementOf = placements(config.devices, site);
    const names = new Map<string, unknown>();
    for (const d of config.devices) {
      for (const decl of d.driver.entities(d.config)) {
        const e = view(decl.id, decl.kind, decl.attributes, decl.name);
        for (const { topic, payload } of discoveryConfigs(e, site, placementOf(decl.id))) {
          checkKeys(componentIn(topic), payload);
          checkName(payload);
          names.set(String(payload.default_entity_id), payload.name);
        }
      }
    }
    expect(Object.fromEntries(names)).toEqual({
      'switch.living_room_lamp': null,
      'switch.coffee_pot': null,
      'sensor.coffee_pot_water': 'Water',
      'sensor.coffee_pot_temperature': 'Temperature',
      'sensor.coffee_pot_last_status': 'Last status',
      'valve.garden_front': 'Front',
      'valve.garden_back': 'Back',
      'sensor.kitchen_speaker': null,
      'button.kitchen_speaker_play_ding': 'Play ding',
    });
    expect(placementOf('coffee-water').device).toMatchObject({
      identifiers: ['hearth_box_coffee'],
      name: 'Coffee pot',
      suggested_area: 'Kitchen',
      via_device: 'hearth_box_bridge',
    });
    expect(placementOf('garden-front').device).not.toHaveProperty('suggested_area');
  });
});

describe('homeassistant.dashboardUrl', () => {
  const load = (url: string) =>
    parseConfig(`homeassistant: { dashboardUrl: "${url}" }\n`, '/srv/hearth/hearth.yaml', { drivers });

  it("is every device's configuration_url; a URL with credentials or of another scheme is refused, and never echoed", () => {
    expect(load('https://hearth.home.arpa/').homeassistant.dashboardUrl).toBe('https://hearth.home.arpa/');
    const refused = (url: string) => {
      try {
        load(url);
      } catch (err) {
        return String(err);
      }
      throw new Error(`${url} was taken`);
    };
    const withPassword = refused('http://admin:pw-0a1b2c3d@hearth.lan:8000');
    expect(withPassword).toMatch(/homeassistant\.dashboardUrl: must not hold user:password@/);
    expect(withPassword).not.toContain('pw-0a1b2c3d');
    expect(refused('ftp://hearth.lan')).toMatch(
      /homeassistant\.dashboardUrl: must start with http:\/\/ or https:\/\//,
    );
  });
});

describe('sensor device classes, by unit family (integrations/sensor#device-class)', () => {
  /** What a sensor entity with this id, name and attributes tells Home Assistant. */
  const sensor = (id: string, attributes: Record<string, unknown>, name = id) => {
    const [c] = discoveryConfigs(view(id, 'sensor', attributes, name), site, at);
    const p = c?.payload ?? {};
    checkKeys('sensor', p);
    return { unit: p.unit_of_measurement, deviceClass: p.device_class, stateClass: p.state_class };
  };

  it('every unit a rule names is one Home Assistant takes for its class', () => {
    for (const rule of unitRules)
      for (const unit of rule.units) expect(unitFits(rule.deviceClass, unit)).toBe(true);
  });

  it('temperature: °C, °F and K', () => {
    for (const unit of ['°C', '°F', 'K'])
      expect(sensor('t', { unit })).toEqual({ unit, deviceClass: 'temperature', stateClass: 'measurement' });
  });

  it('%: a battery, the air (humidity) or the soil (moisture) by its id or name; else no class', () => {
    expect(sensor('attic-battery', { unit: '%' }).deviceClass).toBe('battery');
    expect(sensor('s1', { unit: '%' }, 'Hall remote battery').deviceClass).toBe('battery');
    expect(sensor('outside', { unit: '%' }, 'Outside humidity').deviceClass).toBe('humidity');
    expect(sensor('bed-soil', { unit: '%' }).deviceClass).toBe('moisture');
    expect(sensor('tank-fill', { unit: '%' })).toEqual({ unit: '%', stateClass: 'measurement' });
  });

  it('lengths: rain is precipitation, any other (a water level) a distance', () => {
    expect(sensor('rain-gauge', { unit: 'mm' })).toEqual({
      unit: 'mm',
      deviceClass: 'precipitation',
      stateClass: 'measurement',
    });
    for (const unit of ['mm', 'cm', 'in', 'm'])
      expect(sensor('tank-level', { unit })).toEqual({
        unit,
        deviceClass: 'distance',
        stateClass: 'measurement',
      });
  });

  it('power and energy: W is power (measurement), kWh energy (total_increasing)', () => {
    expect(sensor('p', { unit: 'W' })).toEqual({
      unit: 'W',
      deviceClass: 'power',
      stateClass: 'measurement',
    });
    expect(sensor('e', { unit: 'kWh' })).toEqual({
      unit: 'kWh',
      deviceClass: 'energy',
      stateClass: 'total_increasing',
    });
  });

  it('electricity and light: V voltage, A current, lx illuminance', () => {
    expect(sensor('v', { unit: 'V' }).deviceClass).toBe('voltage');
    expect(sensor('a', { unit: 'A' }).deviceClass).toBe('current');
    expect(sensor('l', { unit: 'lx' }).deviceClass).toBe('illuminance');
    expect(sensor('p', { unit: 'hPa' }).deviceClass).toBe('pressure');
  });

  it('ppm: carbon dioxide only for CO2, carbon monoxide for CO; else no class', () => {
    expect(sensor('office-co2', { unit: 'ppm' }).deviceClass).toBe('carbon_dioxide');
    expect(sensor('garage', { unit: 'ppm' }, 'Garage CO').deviceClass).toBe('carbon_monoxide');
    expect(sensor('pond-tds', { unit: 'ppm' })).toEqual({ unit: 'ppm', stateClass: 'measurement' });
  });

  it('µg/m³: PM2.5, PM10 only when named so, in the Greek mu Home Assistant spells it with', () => {
    const mu = '\u03bcg/m³';
    expect(sensor('outside', { unit: '\u00b5g/m³' }, 'Outside PM2.5')).toEqual({
      unit: mu,
      deviceClass: 'pm25',
      stateClass: 'measurement',
    });
    expect(sensor('outside-pm10', { unit: mu }).deviceClass).toBe('pm10');
    expect(sensor('dust', { unit: '\u00b5g/m³' })).toEqual({ unit: mu, stateClass: 'measurement' });
  });

  it('frequency and time: Hz frequency, s duration, an ISO time a timestamp', () => {
    expect(sensor('mains', { unit: 'Hz' }).deviceClass).toBe('frequency');
    expect(sensor('uptime', { unit: 's' }).deviceClass).toBe('duration');
    // A time has no unit and no state class: Home Assistant refuses a state class on a timestamp.
    expect(sensor('seen', { deviceClass: 'timestamp' })).toEqual({ deviceClass: 'timestamp' });
  });

  it("a driver's declared class wins when its unit fits, and is dropped when it does not", () => {
    expect(sensor('x', { unit: '%', deviceClass: 'battery' }).deviceClass).toBe('battery');
    expect(sensor('coffee-water', { unit: 'in', deviceClass: 'distance' }).deviceClass).toBe('distance');
    expect(sensor('t', { unit: '°C', deviceClass: 'humidity' }).deviceClass).toBe('temperature');
    expect(sensor('t', { unit: '%', deviceClass: 'no-such-class' })).toEqual({
      unit: '%',
      stateClass: 'measurement',
    });
    expect(sensor('text', {})).toEqual({});
    expect(describeSensor(view('s', 'sensor', { unit: '' }))).toEqual({});
  });

  it('an mqtt sensor may name its class, and a unit Home Assistant does not take for it is an error at its line', () => {
    const load = (thing: string) =>
      parseConfig(
        `mqtt: { url: "mqtt://127.0.0.1:1883" }\nthings:\n  - ${thing}\n`,
        '/srv/hearth/hearth.yaml',
        {
          drivers,
        },
      );
    const [entry] = load(
      '{ id: attic, kind: mqtt-sensor/v1, topic: a/b, unit: "%", deviceClass: battery }',
    ).devices;
    expect(entry?.driver.entities(entry.config)[0]?.attributes).toEqual({
      unit: '%',
      deviceClass: 'battery',
    });
    expect(isSensorClass(entry?.driver.entities(entry.config)[0]?.attributes?.deviceClass)).toBe(true);
    expect(() =>
      load('{ id: attic, kind: mqtt-sensor/v1, topic: a/b, unit: "°C", deviceClass: battery }'),
    ).toThrow(
      /hearth\.yaml:3:\d+: things\[0\]\.unit: is not a unit Home Assistant takes for deviceClass battery; it takes %/,
    );
    expect(() => load('{ id: attic, kind: mqtt-sensor/v1, topic: a/b, deviceClass: humidity }')).toThrow(
      /things\[0\]\.deviceClass: needs a unit: Home Assistant takes % for humidity/,
    );
  });
});

describe.skipIf(mosquittoMissing)('Home Assistant and hearth topics over a real Mosquitto', () => {
  let broker: TestMosquitto;
  let lamp: WemoSimulator;
  let kitchen: SonosSimulator;
  let h: TestHearth | undefined;
  let ha: MqttClient;
  const dir = tempDir('hearth-ha-');
  const media = join(dir, 'media');
  /** Last payload per topic, and whether it came live (not a retained copy on subscribing). */
  const seen = new Map<string, { text: string; live: boolean }>();
  /** Every state the chime published, in order. */
  const chimeStates: unknown[] = [];

  const config = (first: boolean) => `
mqtt: { url: "${broker.url}" }
homeassistant: { dashboardUrl: "http://hearth.home.arpa:8000" }
media: { dir: "${media}" }
${first ? `switches:\n  - { id: lamp, kind: wemo/v1, name: Living room lamp, room: Living room, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }\n` : ''}buttons:
  - { id: bedside, name: Bedside button }
things:
  - { id: outside, kind: mqtt-sensor/v1, topic: home/outside/temperature, unit: "°C" }
  - { id: outside-humidity, kind: mqtt-sensor/v1, name: Outside humidity, topic: home/outside/humidity, unit: "%" }
  - { id: attic, kind: mqtt-sensor/v1, name: Attic sensor, topic: home/attic/battery, unit: "%", deviceClass: battery }
  - { id: aircon, kind: mqtt-climate/v1, name: Aircon, topic: home/aircon }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, name: Coffee pot, room: Kitchen, path: "${join(dir, 'no-pot')}" }
speakers:
  - { id: kitchen, kind: sonos/v1, name: Kitchen speaker, room: Kitchen, address: 127.0.0.1, port: ${kitchen.port}, pollSeconds: 0, clips: [ding.mp3${first ? ', { media: dong.mp3, name: Dong }' : ''}] }
`;
  const payloadOf = (topic: string) => JSON.parse(seen.get(topic)?.text || 'null');
  const topics = {
    bridge: 'homeassistant/binary_sensor/hearth/bridge/config',
    lamp: 'homeassistant/switch/hearth/lamp/config',
    bedside: 'homeassistant/switch/hearth/bedside/config',
    outside: 'homeassistant/sensor/hearth/outside/config',
    humidity: 'homeassistant/sensor/hearth/outside-humidity/config',
    attic: 'homeassistant/sensor/hearth/attic/config',
    aircon: 'homeassistant/climate/hearth/aircon/config',
    heater: 'homeassistant/switch/hearth/coffee/config',
    water: 'homeassistant/sensor/hearth/coffee-water/config',
    temperature: 'homeassistant/sensor/hearth/coffee-temperature/config',
    lastStatus: 'homeassistant/sensor/hearth/coffee-last-status/config',
    chime: 'homeassistant/sensor/hearth/kitchen/config',
    ding: 'homeassistant/button/hearth/kitchen-play-ding_mp3/config',
    dong: 'homeassistant/button/hearth/kitchen-play-dong_mp3/config',
  };

  beforeAll(async () => {
    mkdirSync(media);
    writeFileSync(join(media, 'ding.mp3'), Buffer.alloc(4000, 1));
    broker = await TestMosquitto.start();
    lamp = await startWemoSimulator({ initial: false });
    kitchen = await startSonosSimulator({ clipMs: 200 });
    ha = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    ha.on('message', (topic, payload, packet) => {
      seen.set(topic, { text: String(payload), live: !packet.retain });
      if (topic === 'hearth/kitchen/state' && payload.length > 0)
        chimeStates.push(JSON.parse(String(payload)).state);
    });
    await ha.subscribeAsync(['homeassistant/#', 'hearth/+/state']);
    await ha.publishAsync('home/outside/temperature', '21.5', { retain: true });
    // The aircon's firmware: it reports what it is told, retained, as mqtt_things devices do.
    ha.on('message', (topic, payload) => {
      if (topic.startsWith('home/aircon/') && topic.endsWith('/set')) {
        void ha.publishAsync(`${topic.slice(0, -4)}/get`, payload, { retain: true });
      }
    });
    await ha.subscribeAsync('home/aircon/+/set');
    for (const [what, value] of [
      ['power', 'ON'],
      ['mode', 'cool'],
      ['temperature', '22'],
    ]) {
      await ha.publishAsync(`home/aircon/${what}/get`, value as string, { retain: true });
    }
    h = await startTestHearth(config(true));
  });
  afterAll(async () => {
    await h?.close();
    await ha?.endAsync();
    await lamp?.close();
    await kitchen?.close();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('announces every entity, grouped by device, with the keys Home Assistant documents', async () => {
    await until(() => Object.values(topics).every((t) => seen.has(t)), {
      what: 'every discovery config',
    });
    // Every config of ours, as Home Assistant reads it off the broker.
    const ours = [...seen].filter(
      ([t, v]) => /^homeassistant\/[^/]+\/hearth\/[^/]+\/config$/.test(t) && v.text,
    );
    expect(ours.map(([t]) => t).sort()).toEqual(Object.values(topics).sort());
    for (const [topic, { text }] of ours) {
      const payload = JSON.parse(text);
      if (topic === topics.bridge) continue;
      checkKeys(componentIn(topic), payload);
      checkName(payload);
      expect(payload.origin).toEqual({
        name: 'hearth',
        sw_version: hearthVersion,
        support_url: hearthHomepage,
      });
      expect(payload.device).toMatchObject({
        via_device: 'hearth_hearth_bridge',
        sw_version: hearthVersion,
        configuration_url: 'http://hearth.home.arpa:8000',
      });
    }

    const lampCfg = payloadOf(topics.lamp);
    expect(lampCfg).toMatchObject({
      unique_id: 'hearth_hearth_lamp',
      default_entity_id: 'switch.living_room_lamp',
      name: null,
      state_topic: 'hearth/lamp/state',
      command_topic: 'hearth/lamp/set',
      device: {
        identifiers: ['hearth_hearth_lamp'],
        name: 'Living room lamp',
        manufacturer: 'hearth',
        suggested_area: 'Living room',
      },
    });
    expect(payloadOf(topics.bedside)).toMatchObject({
      name: 'Bedside button',
      default_entity_id: 'switch.bedside_button',
      device: { name: 'hearth buttons' },
    });
    expect(payloadOf(topics.bedside).device).not.toHaveProperty('suggested_area');
    expect(payloadOf(topics.outside)).toMatchObject({
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
    });
    expect(payloadOf(topics.humidity)).toMatchObject({ name: null, device_class: 'humidity' });
    expect(payloadOf(topics.attic)).toMatchObject({
      default_entity_id: 'sensor.attic_sensor',
      device_class: 'battery',
    });

    // One device, the coffee pot: the heater is the pot, the sensors say only what they are.
    expect(payloadOf(topics.heater)).toMatchObject({ name: null, default_entity_id: 'switch.coffee_pot' });
    expect(payloadOf(topics.water)).toMatchObject({
      name: 'Water',
      default_entity_id: 'sensor.coffee_pot_water',
      unit_of_measurement: 'in',
      device_class: 'distance',
      state_class: 'measurement',
      device: { identifiers: ['hearth_hearth_coffee'], name: 'Coffee pot', suggested_area: 'Kitchen' },
    });
    expect(payloadOf(topics.temperature)).toMatchObject({ name: 'Temperature', device_class: 'temperature' });
    const lastStatus = payloadOf(topics.lastStatus);
    expect(lastStatus).toMatchObject({ name: 'Last status', device_class: 'timestamp' });
    expect(lastStatus).not.toHaveProperty('state_class');
    expect(lastStatus).not.toHaveProperty('unit_of_measurement');

    checkKeys('climate', payloadOf(topics.aircon));
    await until(() => payloadOf('hearth/outside/state')?.state === 21.5, {
      what: 'the sensor state published',
    });
    expect(payloadOf('hearth/outside/state')).toMatchObject({ available: true, attributes: { unit: '°C' } });
  });

  it('hearth is a device of its own, connected while it serves, and every other device is via it', async () => {
    await until(() => seen.has(topics.bridge), { what: 'the bridge config' });
    const bridge = payloadOf(topics.bridge);
    expect(bridge).toMatchObject({
      unique_id: 'hearth_hearth_bridge',
      default_entity_id: 'binary_sensor.hearth',
      name: null,
      device_class: 'connectivity',
      entity_category: 'diagnostic',
      state_topic: 'hearth/bridge/state',
      payload_on: 'online',
      payload_off: 'offline',
      device: {
        identifiers: ['hearth_hearth_bridge'],
        name: 'hearth',
        sw_version: hearthVersion,
        configuration_url: 'http://hearth.home.arpa:8000',
      },
      origin: { name: 'hearth', support_url: hearthHomepage },
    });
    expect(Object.keys(bridge.device).filter((k) => !deviceKeys.includes(k))).toEqual([]);
    // The state it reads: what the bridge says, retained, as a Home Assistant starting now gets it.
    await ha.subscribeAsync('hearth/bridge/state');
    await until(() => seen.get('hearth/bridge/state')?.text === bridge.payload_on, { what: 'bridge online' });
  });

  it("a chime's button, pressed as Home Assistant does, plays its clip on the speaker", async () => {
    const chime = payloadOf(topics.chime);
    expect(chime).toMatchObject({
      name: null,
      default_entity_id: 'sensor.kitchen_speaker',
      device_class: 'enum',
    });
    const ding = payloadOf(topics.ding);
    checkKeys('button', ding);
    expect(ding).toMatchObject({
      name: 'Play ding',
      default_entity_id: 'button.kitchen_speaker_play_ding',
      command_topic: 'hearth/kitchen/set',
      device: { identifiers: ['hearth_hearth_kitchen'], name: 'Kitchen speaker', suggested_area: 'Kitchen' },
    });
    expect(payloadOf(topics.dong)).toMatchObject({
      name: 'Play Dong',
      default_entity_id: 'button.kitchen_speaker_play_dong',
    });
    await until(() => payloadOf('hearth/kitchen/state')?.available === true, { what: 'the chime available' });
    const stats = h?.homeassistant?.gateway.stats;
    const errorsBefore = stats?.commandErrors;
    chimeStates.length = 0;
    await ha.publishAsync(ding.command_topic, ding.payload_press);
    await until(() => kitchen.chimes.at(-1)?.ended && chimeStates.at(-1) === 'idle', {
      what: 'the clip played and the chime idle again',
    });
    expect(kitchen.chimes).toHaveLength(1);
    expect(kitchen.chimes[0]?.uri).toMatch(/\/api\/v0\/chime\/ding\.mp3$/);
    expect(kitchen.chimes[0]?.fetched).toMatchObject({ status: 206, bytes: 4000 });
    expect(chimeStates).toEqual(['playing', 'idle']);
    expect(stats?.commandErrors).toBe(errorsBefore);
  });

  it('a command on the discovery command topic reaches the Wemo plug, and the state comes back', async () => {
    const cfg = payloadOf(topics.lamp);
    await ha.publishAsync(cfg.command_topic, cfg.payload_on);
    await until(() => lamp.on, { what: 'the plug on' });
    await until(() => payloadOf('hearth/lamp/state')?.state === 'on', {
      what: 'state on published',
    });
    await ha.publishAsync('hearth/lamp/set', JSON.stringify({ command: 'off', args: {} }));
    await until(() => !lamp.on, { what: 'the plug off' });
  });

  it("the climate's mode and temperature commands, rendered as Home Assistant does, reach the aircon", async () => {
    const cfg = payloadOf(topics.aircon);
    await until(() => payloadOf('hearth/aircon/state')?.available === true, {
      what: 'aircon available',
    });
    await ha.publishAsync(cfg.mode_command_topic, cfg.mode_command_template.replace('{{ value }}', 'heat'));
    await until(() => payloadOf('hearth/aircon/state')?.state?.mode === 'heat', {
      what: 'mode heat',
    });
    await ha.publishAsync(
      cfg.temperature_command_topic,
      cfg.temperature_command_template.replace('{{ value | int }}', '24'),
    );
    await until(() => payloadOf('hearth/aircon/state')?.state?.target === 24, {
      what: 'target 24',
    });
    await ha.publishAsync(cfg.power_command_topic, cfg.payload_off);
    await until(() => payloadOf('hearth/aircon/state')?.state?.power === 'off', {
      what: 'power off',
    });
  });

  it('a button a press creates is announced too', async () => {
    const res = await fetch(`${h?.url}/api/v0/buttons/porch/on/`, { method: 'POST' });
    expect(res.status).toBe(200);
    await until(() => seen.has('homeassistant/switch/hearth/porch/config'), {
      what: 'porch announced',
    });
    const porch = payloadOf('homeassistant/switch/hearth/porch/config');
    expect(porch).toMatchObject({
      name: 'Porch',
      default_entity_id: 'switch.porch',
      device: { name: 'hearth buttons' },
    });
  });

  it('bad input is ignored and counted, and the entity still works', async () => {
    const parts = h?.homeassistant;
    if (!parts) throw new Error('no Home Assistant parts');
    const before = parts.gateway.stats.garbage;
    const linkBefore = parts.mqtt.garbage;
    await ha.publishAsync('hearth/lamp/set', 'not json {');
    await ha.publishAsync('hearth/lamp/set', '{"command": 5}');
    await ha.publishAsync('hearth/nosuch/set', 'on');
    await ha.publishAsync('hearth/bridge/set', 'on');
    await ha.publishAsync('homeassistant/status', 'onlin');
    // Under the connection's cap (8 MiB, for zigbee2mqtt's device list), over a command's 4 kB:
    // it reaches hearth, and the gateway refuses it unread (test/mqtt-floods.test.ts: over the cap).
    await ha.publishAsync('hearth/lamp/set', Buffer.alloc(1024 * 1024, 'x'));
    await until(() => parts.gateway.stats.garbage - before === 5, { what: 'five counted' });
    await until(() => parts.mqtt.garbage - linkBefore === 6, {
      what: 'the bad status counted too',
    });
    // And in /metrics, for whoever watches the box.
    const metrics = (await http(`${h?.url}/metrics`)).body;
    const garbage = /^hearth_mqtt_garbage_total (\d+)$/m.exec(metrics)?.[1];
    expect(Number(garbage)).toBe(parts.mqtt.garbage);
    expect(metrics).toMatch(/^hearth_mqtt_connected 1$/m);
    expect(lamp.on).toBe(false);
    const errorsBefore = parts.gateway.stats.commandErrors;
    await ha.publishAsync('hearth/lamp/set', 'explode');
    await until(() => parts.gateway.stats.commandErrors > errorsBefore, {
      what: 'an unknown command refused',
    });
    await ha.publishAsync('hearth/lamp/set', 'toggle');
    await until(() => lamp.on, { what: 'the plug still switches' });
  });

  it('publishes every config again when Home Assistant says it is online', async () => {
    seen.delete(topics.bedside);
    seen.delete(topics.bridge);
    seen.delete(topics.ding);
    await ha.publishAsync('homeassistant/status', 'online');
    await until(() => [topics.bedside, topics.bridge, topics.ding].every((t) => seen.get(t)?.live === true), {
      what: 'republished',
    });
  });

  it('says offline on a clean stop, and empties the configs hearth no longer makes, old ones included', async () => {
    await ha.subscribeAsync('hearth/bridge/state');
    // A retained command runs once, live; its retained copy must not run again at the next start.
    const commandsBefore = h?.homeassistant?.gateway.stats.commands ?? 0;
    await ha.publishAsync('hearth/bedside/set', 'on', { retain: true });
    await until(() => payloadOf('hearth/bedside/state')?.state === 'on', {
      what: 'bedside on',
    });
    expect(h?.homeassistant?.gateway.stats.commands).toBe(commandsBefore + 1);
    await h?.close();
    h = undefined;
    await until(() => seen.get('hearth/bridge/state')?.text === 'offline', {
      what: 'bridge offline',
    });
    // What an older hearth left on the broker: the chime's config with object_id, and one
    // under a component hearth no longer uses for it.
    const old = { unique_id: 'hearth_hearth_kitchen', object_id: 'kitchen', name: 'Kitchen speaker' };
    await ha.publishAsync(topics.chime, JSON.stringify(old), { retain: true });
    await ha.publishAsync('homeassistant/switch/hearth/kitchen/config', JSON.stringify(old), {
      retain: true,
    });
    for (const t of [topics.lamp, topics.bedside, topics.chime, topics.dong]) seen.delete(t);
    h = await startTestHearth(config(false));
    await until(() => seen.get('hearth/bridge/state')?.text === 'online', {
      what: 'bridge online',
    });
    await until(() => seen.get(topics.lamp)?.text === '' && seen.get(topics.dong)?.text === '', {
      what: 'the lamp and dong configs emptied',
    });
    // The new hearth has a new store, so the pressed button is gone with the lamp; the clip taken
    // out and the old config under another component go too.
    expect([...(h.homeassistant?.discovery?.removed ?? [])].sort()).toEqual([
      topics.dong,
      'homeassistant/switch/hearth/kitchen/config',
      topics.lamp,
      'homeassistant/switch/hearth/porch/config',
    ]);
    // The old config where hearth still has one is replaced, not emptied.
    await until(() => payloadOf(topics.chime)?.default_entity_id === 'sensor.kitchen_speaker', {
      what: 'the chime config in the new form',
    });
    expect(payloadOf(topics.chime)).not.toHaveProperty('object_id');
    expect(h.homeassistant?.gateway.stats).toMatchObject({ commands: 0, garbage: 1 });
    await ha.publishAsync('hearth/bedside/set', '', { retain: true });
    await until(() => payloadOf(topics.bedside)?.unique_id === 'hearth_hearth_bedside', {
      what: 'bedside announced again',
    });
  });

  it('the last will says offline when the hearth process dies', async () => {
    const crashDir = tempDir();
    try {
      const file = join(crashDir, 'hearth.yaml');
      writeFileSync(
        file,
        `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\nmqtt: { url: "${broker.url}", baseTopic: crash }\nbuttons: [{ id: hall }]\n`,
      );
      await ha.subscribeAsync('crash/bridge/state');
      const hearth = await spawnHearth(file);
      await until(() => seen.get('crash/bridge/state')?.text === 'online', {
        timeoutMs: 10_000,
        what: 'bridge online',
      });
      hearth.child.kill('SIGKILL');
      await hearth.exited;
      await until(() => seen.get('crash/bridge/state')?.text === 'offline', {
        what: 'bridge offline by the will',
      });
    } finally {
      rmSync(crashDir, { recursive: true, force: true });
    }
  }, 20_000);
});
