import type { Kind, StateOf } from '../../contract/kinds.js';
import type { DriverContext, EntityHandle, MqttAccess, MqttMessage, Running } from '../../core/driver.js';
import type { MqttThingConfig } from './config.js';
import { Reported } from './reported.js';

/** No state of these devices is longer; anything bigger is garbage, not parsed. */
const MAX_PAYLOAD = 1024;

type Climate = StateOf<'climate'>;
const modes = ['off', 'cool', 'heat', 'fan_only'] as const;

/** Starts one device of `things:`; its entity follows the device's retained `get` topics. */
export async function setupMqttThing(ctx: DriverContext, config: MqttThingConfig): Promise<Running> {
  const mqtt = ctx.mqtt;
  const cleanup: (() => void)[] = [];
  const owner = `mqtt-things ${config.id}`;
  /** Subscribes `parse` to `topic`: a payload it cannot use (undefined) is counted and ignored. */
  const follow = <T>(
    m: MqttAccess,
    topic: string,
    parse: (text: string) => T | undefined,
    use: (v: T) => void,
  ) => {
    cleanup.push(
      m.subscribe(
        topic,
        (message: MqttMessage) => {
          if (message.payload.length > MAX_PAYLOAD) {
            m.garbage(topic, `a payload of ${message.payload.length} bytes (at most ${MAX_PAYLOAD})`);
            return;
          }
          const text = message.payload.toString('utf8').trim();
          const value = parse(text);
          if (value === undefined)
            m.garbage(topic, `unexpected payload ${JSON.stringify(text.slice(0, 40))}`);
          else use(value);
        },
        owner,
      ),
    );
  };

  let handle: EntityHandle<Kind>;
  const reportedAll: Reported<unknown>[] = [];
  const waiting = `waiting for the first state on ${config.topic}`;

  if (config.kind === 'mqtt-switch/v1') {
    const state = new Reported<'on' | 'off'>();
    reportedAll.push(state as Reported<unknown>);
    const set = async (on: boolean, signal: AbortSignal): Promise<'on' | 'off'> => {
      if (!mqtt) throw new Error(noMqtt);
      const want = on ? 'on' : 'off';
      mqtt.publish(`${config.topic}/state/set`, on ? '1' : '0');
      await state.until((v) => v === want, signal);
      return want;
    };
    const h = ctx.entities.bind(config.id, 'switch', {
      on: (_a, { signal }) => set(true, signal),
      off: (_a, { signal }) => set(false, signal),
      toggle: (_a, { signal }) => {
        if (state.value === undefined) throw new Error(`the state of ${config.topic} is not known yet`);
        return set(state.value === 'off', signal);
      },
    });
    handle = h as EntityHandle<Kind>;
    if (mqtt)
      follow(mqtt, `${config.topic}/state/get`, parseOnOff, (v) => {
        state.set(v);
        h.setAvailable();
        h.setState(v);
      });
  } else if (config.kind === 'mqtt-sensor/v1') {
    const field = config.field;
    const h = ctx.entities.bind(config.id, 'sensor', {});
    handle = h as EntityHandle<Kind>;
    if (mqtt)
      follow(
        mqtt,
        config.topic,
        (text) => (field === undefined ? parseNumber(text) : parseField(text, field)),
        (v) => {
          h.setAvailable();
          h.setState(v);
        },
      );
  } else {
    const power = new Reported<'on' | 'off'>();
    const mode = new Reported<(typeof modes)[number]>();
    const target = new Reported<number>();
    reportedAll.push(power as Reported<unknown>, mode as Reported<unknown>, target as Reported<unknown>);
    const current = (): Climate | undefined =>
      power.value !== undefined && mode.value !== undefined && target.value !== undefined
        ? { power: power.value, mode: mode.value, target: target.value }
        : undefined;
    const set = async (
      args: { power?: 'on' | 'off'; mode?: (typeof modes)[number]; temperature?: number },
      signal: AbortSignal,
    ): Promise<Climate> => {
      if (!mqtt) throw new Error(noMqtt);
      const waits: Promise<void>[] = [];
      if (args.power !== undefined) {
        const want = args.power;
        mqtt.publish(`${config.topic}/power/set`, want === 'on' ? 'ON' : 'OFF');
        waits.push(power.until((v) => v === want, signal));
      }
      if (args.mode !== undefined) {
        const want = args.mode;
        mqtt.publish(`${config.topic}/mode/set`, want);
        waits.push(mode.until((v) => v === want, signal));
      }
      if (args.temperature !== undefined) {
        const want = args.temperature;
        mqtt.publish(`${config.topic}/temperature/set`, String(want));
        waits.push(target.until((v) => v === want, signal));
      }
      await Promise.all(waits);
      const now = current();
      if (!now) throw new Error(`the state of ${config.topic} is not known yet`);
      return now;
    };
    const h = ctx.entities.bind(config.id, 'climate', {
      set: (args, { signal }) => set(args, signal),
      on: (_a, { signal }) => set({ power: 'on' }, signal),
      off: (_a, { signal }) => set({ power: 'off' }, signal),
    });
    handle = h as EntityHandle<Kind>;
    const publish = () => {
      const now = current();
      if (!now) return;
      h.setAvailable();
      h.setState(now);
    };
    if (mqtt) {
      follow(mqtt, `${config.topic}/power/get`, parseOnOff, (v) => {
        power.set(v);
        publish();
      });
      follow(
        mqtt,
        `${config.topic}/mode/get`,
        (t) => modes.find((m) => m === t.toLowerCase()),
        (v) => {
          mode.set(v);
          publish();
        },
      );
      follow(
        mqtt,
        `${config.topic}/temperature/get`,
        (t) => {
          const n = parseNumber(t);
          return n !== undefined && n >= 18 && n <= 30 ? n : undefined;
        },
        (v) => {
          target.set(v);
          publish();
        },
      );
    }
  }

  if (!mqtt) {
    handle.setUnavailable(noMqtt);
    return { stop: async () => {} };
  }
  handle.setUnavailable(mqtt.connected ? waiting : brokerDown);
  cleanup.push(
    mqtt.onConnection((up) => {
      if (up) return;
      // What the broker delivers after the reconnect (retained) is the truth again.
      for (const r of reportedAll) r.clear();
      handle.setUnavailable(brokerDown);
    }),
  );
  return {
    stop: async () => {
      for (const c of cleanup.splice(0)) c();
    },
  };
}

const noMqtt = 'no mqtt: connection in the config';
const brokerDown = 'the MQTT broker is not connected';

/** `1`/`0`, `ON`/`OFF`, `on`/`off`, `true`/`false`. */
function parseOnOff(text: string): 'on' | 'off' | undefined {
  const t = text.toLowerCase();
  if (t === '1' || t === 'on' || t === 'true') return 'on';
  if (t === '0' || t === 'off' || t === 'false') return 'off';
  return undefined;
}

function parseNumber(text: string): number | undefined {
  if (!/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** `field` of a JSON object, as a number (a numeric string is taken too). */
function parseField(text: string, field: string): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = Object.hasOwn(value, field) ? (value as Record<string, unknown>)[field] : undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  return typeof v === 'string' ? parseNumber(v.trim()) : undefined;
}
