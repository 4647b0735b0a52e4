import mqtt, { type MqttClient } from 'mqtt';
import type { SimulatorHandle } from '../../core/driver.js';
import type { Logger } from '../../core/log.js';

/*
 * A small zigbee house published the way zigbee2mqtt 1.30+ / 2.x does, over a real broker: the
 * retained `<base>/bridge/state` (JSON, with an `offline` last will) and `<base>/bridge/devices`,
 * device states on `<base>/<friendly name>` (not retained, zigbee2mqtt's default), commands on
 * `<base>/<name>/set` and reads on `<base>/<name>/get`, and the frontend's requests
 * `<base>/bridge/request/device/rename` and `.../remove`. One request is the simulator's own:
 * `<base>/bridge/request/simulate` `{"device": "Hall Remote", "payload": {"action": "single"}}`
 * publishes that payload as the device's state (a press, a reading), for demos and scripts.
 */

const ACCESS_STATE = 1;
const ACCESS_ALL = 7;

interface SimDevice {
  ieee: string;
  friendlyName: string;
  type: 'Router' | 'EndDevice';
  model: string;
  vendor: string;
  description: string;
  exposes: unknown[];
  state: Record<string, unknown>;
}

const numeric = (name: string, unit: string, access = ACCESS_STATE) => ({
  type: 'numeric',
  name,
  property: name,
  access,
  unit,
});
/** The on/off feature of a switch or a light. */
const onOff = {
  type: 'binary',
  name: 'state',
  property: 'state',
  access: ACCESS_ALL,
  value_on: 'ON',
  value_off: 'OFF',
  value_toggle: 'TOGGLE',
};
const linkquality = { type: 'numeric', name: 'linkquality', property: 'linkquality', access: 1, unit: 'lqi' };

/** The house: a remote, a plug, a climate sensor, a door, a motion sensor and a lamp. */
function house(): SimDevice[] {
  return [
    {
      ieee: '0x00158d0001a1b201',
      friendlyName: 'Hall Remote',
      type: 'EndDevice',
      model: 'WXKG01LM',
      vendor: 'Aqara',
      description: 'Wireless mini switch',
      exposes: [
        numeric('battery', '%'),
        {
          type: 'enum',
          name: 'action',
          property: 'action',
          access: ACCESS_STATE,
          values: ['single', 'double', 'triple', 'quadruple', 'hold', 'release'],
        },
        linkquality,
      ],
      state: { battery: 91, linkquality: 120 },
    },
    {
      ieee: '0x00158d0001a1b202',
      friendlyName: 'Kitchen Plug',
      type: 'Router',
      model: 'ZNCZ02LM',
      vendor: 'Xiaomi',
      description: 'Mi power plug ZigBee',
      exposes: [
        {
          type: 'switch',
          features: [onOff],
        },
        numeric('power', 'W', 5),
        numeric('energy', 'kWh', 5),
        linkquality,
      ],
      state: { state: 'OFF', power: 0, energy: 1.25, linkquality: 180 },
    },
    {
      ieee: '0x00158d0001a1b203',
      friendlyName: 'Living Room Sensor',
      type: 'EndDevice',
      model: 'WSDCGQ11LM',
      vendor: 'Aqara',
      description: 'Temperature, humidity and pressure sensor',
      exposes: [
        numeric('battery', '%'),
        numeric('temperature', '°C'),
        numeric('humidity', '%'),
        numeric('pressure', 'hPa'),
        linkquality,
      ],
      state: { battery: 87, temperature: 21.4, humidity: 46, pressure: 1012.3, linkquality: 96 },
    },
    {
      ieee: '0x00158d0001a1b204',
      friendlyName: 'Front Door',
      type: 'EndDevice',
      model: 'MCCGQ11LM',
      vendor: 'Aqara',
      description: 'Door and window contact sensor',
      exposes: [
        numeric('battery', '%'),
        // zigbee2mqtt's contact is true when closed: "on" (detected) is false, the door open.
        { type: 'binary', name: 'contact', property: 'contact', access: 1, value_on: false, value_off: true },
        linkquality,
      ],
      state: { battery: 100, contact: true, linkquality: 140 },
    },
    {
      ieee: '0x00158d0001a1b205',
      friendlyName: 'Hall Motion',
      type: 'EndDevice',
      model: 'RTCGQ11LM',
      vendor: 'Aqara',
      description: 'Motion sensor',
      exposes: [
        numeric('battery', '%'),
        {
          type: 'binary',
          name: 'occupancy',
          property: 'occupancy',
          access: 1,
          value_on: true,
          value_off: false,
        },
        numeric('illuminance_lux', 'lx'),
        linkquality,
      ],
      state: { battery: 78, occupancy: false, illuminance_lux: 120, linkquality: 110 },
    },
    {
      ieee: '0x000b57fffe1a2b06',
      friendlyName: 'Desk Lamp',
      type: 'Router',
      model: 'LED1545G12',
      vendor: 'IKEA',
      description: 'TRADFRI bulb E27, white spectrum',
      exposes: [
        {
          type: 'light',
          features: [
            onOff,
            {
              type: 'numeric',
              name: 'brightness',
              property: 'brightness',
              access: ACCESS_ALL,
              value_min: 0,
              value_max: 254,
            },
          ],
        },
        linkquality,
      ],
      state: { state: 'OFF', brightness: 200, linkquality: 150 },
    },
  ];
}

const coordinator = {
  ieee_address: '0x00124b0020000000',
  type: 'Coordinator',
  network_address: 0,
  supported: true,
  disabled: false,
  friendly_name: 'Coordinator',
  definition: null,
  interview_completed: true,
  interviewing: false,
};

export interface ZigbeeSimulatorOptions {
  mqttUrl: string;
  baseTopic?: string;
  log?: Logger;
  /** Sensors report a new reading this often; 0 never (tests report with `report`). Default 0. */
  reportEveryMs?: number;
}

/** A running simulated bridge; the methods act as zigbee2mqtt (or a person at a device) would. */
export class ZigbeeSimulator implements SimulatorHandle {
  readonly baseTopic: string;
  /** Every `/set` payload received, by device: what hearth asked for. */
  readonly sets: Array<{ device: string; payload: Record<string, unknown> }> = [];
  readonly #client: MqttClient;
  readonly #devices: SimDevice[] = house();
  readonly #timer: NodeJS.Timeout | undefined;

  private constructor(client: MqttClient, baseTopic: string, reportEveryMs: number) {
    this.#client = client;
    this.baseTopic = baseTopic;
    this.#timer =
      reportEveryMs > 0
        ? setInterval(() => {
            const sensor = this.#find('Living Room Sensor');
            if (sensor) {
              const t = Math.round((20 + Math.random() * 3) * 10) / 10;
              void this.report(sensor.friendlyName, { temperature: t });
            }
          }, reportEveryMs)
        : undefined;
    this.#timer?.unref();
  }

  static async start(o: ZigbeeSimulatorOptions): Promise<ZigbeeSimulator> {
    const base = o.baseTopic ?? 'zigbee2mqtt';
    const client = await mqtt.connectAsync(o.mqttUrl, {
      clientId: `hearth-sim-zigbee2mqtt-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      will: {
        topic: `${base}/bridge/state`,
        payload: Buffer.from('{"state":"offline"}'),
        retain: true,
        qos: 1,
      },
    });
    const sim = new ZigbeeSimulator(client, base, o.reportEveryMs ?? 0);
    client.on('message', (topic, payload) => sim.#onMessage(topic, payload));
    client.on('error', (err) => o.log?.warn({ err: err.message }, 'zigbee2mqtt simulator: MQTT error'));
    await client.subscribeAsync([`${base}/+/set`, `${base}/+/get`, `${base}/bridge/request/#`]);
    await sim.#announce();
    // As zigbee2mqtt does on every connect: a broker that restarted without its retained
    // messages learns the bridge's state and devices again.
    client.on('connect', () => void sim.#announce().catch(() => {}));
    return sim;
  }

  async #announce(): Promise<void> {
    await this.#publish(`${this.baseTopic}/bridge/state`, { state: 'online' }, true);
    await this.#publishDevices();
    for (const d of this.#devices) await this.#publishState(d);
  }

  /** Friendly names of the devices now. */
  get devices(): string[] {
    return this.#devices.map((d) => d.friendlyName);
  }

  /** A device's state as the simulator holds it. */
  state(device: string): Record<string, unknown> | undefined {
    const d = this.#find(device);
    return d ? { ...d.state } : undefined;
  }

  /** A button of a remote pressed: `{"action": "single"}` on its topic, as zigbee2mqtt sends it. */
  async press(device: string, action = 'single'): Promise<void> {
    const d = this.#need(device);
    await this.#publish(`${this.baseTopic}/${d.friendlyName}`, { ...d.state, action });
  }

  /** A device reports new values (a reading, a door opening). */
  async report(device: string, values: Record<string, unknown>): Promise<void> {
    const d = this.#need(device);
    Object.assign(d.state, values);
    await this.#publishState(d);
  }

  /** A rename in zigbee2mqtt's frontend: the device list is published again. */
  async rename(from: string, to: string): Promise<void> {
    const d = this.#need(from);
    d.friendlyName = to;
    await this.#publishDevices();
  }

  /** A device removed from the network. */
  async remove(device: string): Promise<void> {
    const d = this.#need(device);
    this.#devices.splice(this.#devices.indexOf(d), 1);
    await this.#publishDevices();
  }

  /** zigbee2mqtt stopping (`offline`) or back (`online`). */
  async setBridge(state: 'online' | 'offline'): Promise<void> {
    await this.#publish(`${this.baseTopic}/bridge/state`, { state }, true);
  }

  /** zigbee2mqtt's availability feature: a device that stopped answering. */
  async setAvailability(device: string, state: 'online' | 'offline'): Promise<void> {
    await this.#publish(`${this.baseTopic}/${this.#need(device).friendlyName}/availability`, { state }, true);
  }

  /** Publishes anything on any topic under the base (tests send garbage this way). */
  async raw(subtopic: string, payload: string | Buffer, retain = false): Promise<void> {
    await this.#client.publishAsync(`${this.baseTopic}/${subtopic}`, payload, { retain, qos: 1 });
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#client.connected) await this.setBridge('offline').catch(() => {});
    await this.#client.endAsync();
  }

  #find(device: string): SimDevice | undefined {
    return this.#devices.find((d) => d.friendlyName === device);
  }

  #need(device: string): SimDevice {
    const d = this.#find(device);
    if (!d) throw new Error(`the simulator has no device "${device}"`);
    return d;
  }

  async #publish(topic: string, value: unknown, retain = false): Promise<void> {
    await this.#client.publishAsync(topic, JSON.stringify(value), { retain, qos: 1 });
  }

  async #publishState(d: SimDevice): Promise<void> {
    await this.#publish(`${this.baseTopic}/${d.friendlyName}`, d.state);
  }

  async #publishDevices(): Promise<void> {
    const list = [
      coordinator,
      ...this.#devices.map((d) => ({
        ieee_address: d.ieee,
        type: d.type,
        network_address: Number.parseInt(d.ieee.slice(-4), 16),
        supported: true,
        disabled: false,
        friendly_name: d.friendlyName,
        definition: {
          model: d.model,
          vendor: d.vendor,
          description: d.description,
          exposes: d.exposes,
          options: [],
        },
        power_source: d.type === 'Router' ? 'Mains (single phase)' : 'Battery',
        interview_completed: true,
        interviewing: false,
      })),
    ];
    await this.#publish(`${this.baseTopic}/bridge/devices`, list, true);
  }

  #onMessage(topic: string, payload: Buffer): void {
    const rest = topic.slice(this.baseTopic.length + 1);
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
    const req = body as Record<string, unknown>;
    if (rest.startsWith('bridge/request/')) {
      void this.#request(rest.slice('bridge/request/'.length), req).catch(() => {});
      return;
    }
    const slash = rest.lastIndexOf('/');
    const d = this.#find(rest.slice(0, slash));
    if (!d) return;
    if (rest.endsWith('/get')) {
      void this.#publishState(d).catch(() => {});
      return;
    }
    this.sets.push({ device: d.friendlyName, payload: req });
    for (const [key, value] of Object.entries(req)) {
      if (!/^state(_\w+)?$/.test(key) || typeof value !== 'string') continue;
      const v = value.toUpperCase();
      if (v === 'ON' || v === 'OFF') d.state[key] = v;
      else if (v === 'TOGGLE') d.state[key] = d.state[key] === 'ON' ? 'OFF' : 'ON';
    }
    void this.#publishState(d).catch(() => {});
  }

  async #request(what: string, req: Record<string, unknown>): Promise<void> {
    const respond = (status: 'ok' | 'error', data: unknown) =>
      this.#publish(`${this.baseTopic}/bridge/response/${what}`, { status, data });
    if (what === 'device/rename' && typeof req.from === 'string' && typeof req.to === 'string') {
      if (!this.#find(req.from)) return respond('error', { error: `device '${req.from}' does not exist` });
      await this.rename(req.from, req.to);
      return respond('ok', { from: req.from, to: req.to });
    }
    if (what === 'device/remove' && typeof req.id === 'string') {
      if (!this.#find(req.id)) return respond('error', { error: `device '${req.id}' does not exist` });
      await this.remove(req.id);
      return respond('ok', { id: req.id });
    }
    if (
      what === 'simulate' &&
      typeof req.device === 'string' &&
      typeof req.payload === 'object' &&
      req.payload
    ) {
      const d = this.#find(req.device);
      if (!d) return respond('error', { error: `device '${req.device}' does not exist` });
      const values = req.payload as Record<string, unknown>;
      const { action, ...rest } = values;
      Object.assign(d.state, rest);
      await this.#publish(
        `${this.baseTopic}/${d.friendlyName}`,
        action === undefined ? d.state : { ...d.state, action },
      );
      return respond('ok', { device: req.device });
    }
  }
}

/** `hearth sim zigbee2mqtt --mqtt URL`: the house on that broker, a sensor reading every 10 s. */
export async function startZigbeeSimulator(options: {
  mqttUrl?: string;
  baseTopic?: string;
  log: Logger;
}): Promise<SimulatorHandle> {
  if (!options.mqttUrl) throw new Error('the zigbee2mqtt simulator needs a broker: --mqtt mqtt://HOST:1883');
  return ZigbeeSimulator.start({
    mqttUrl: options.mqttUrl,
    baseTopic: options.baseTopic,
    log: options.log,
    reportEveryMs: 10_000,
  });
}
