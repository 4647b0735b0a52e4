/**
 * The cost of a command over MQTT: hearth's request/response (MqttRpc.request → serve → reply,
 * with deadline, correlation data, dedupe) against the floor, a bare mqtt.js publish → echo →
 * subscribe on the same broker. Both run in this process over loopback to a Mosquitto of their
 * own, in alternating blocks so that load on the machine falls on both alike.
 *
 * Alone: `node --import tsx bench/lib/mqtt.ts [requests]`.
 */
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { MqttLink } from '../../src/bus/mqtt/link.js';
import { MqttRpc } from '../../src/bus/mqtt/rpc.js';
import { mosquittoMissing, TestMosquitto } from '../../test/support/mosquitto.js';
import { quantile } from './load.js';
import { ms, ratio, table } from './report.js';

export interface Figures {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

export interface MqttRoundTripResult {
  rpc: Figures;
  floor: Figures;
  ratio: { p50: number; p99: number };
  errors: number;
}

function figures(lat: number[]): Figures {
  return {
    n: lat.length,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    mean: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : Number.NaN,
  };
}

/** The floor: publish QoS 1 to a topic an echo client answers on, wait for the answer. */
async function floorPair(url: string) {
  const opts = { protocolVersion: 5 as const, reconnectPeriod: 0 };
  const caller = await mqtt.connectAsync(url, { ...opts, clientId: 'bench-floor-caller' });
  const echo = await mqtt.connectAsync(url, { ...opts, clientId: 'bench-floor-echo' });
  for (const c of [caller, echo]) (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  await echo.subscribeAsync('bench/floor/req', { qos: 1 });
  echo.on('message', (_t, payload) => void echo.publish('bench/floor/rep', payload, { qos: 1 }));
  await caller.subscribeAsync('bench/floor/rep', { qos: 1 });
  let waiting: (() => void) | undefined;
  caller.on('message', () => waiting?.());
  const once = () =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      caller.publish('bench/floor/req', '{"body":{"command":"toggle"}}', { qos: 1 });
    });
  return { once, clients: [caller, echo] as MqttClient[] };
}

export async function mqttRoundTrip(opts: {
  requests: number;
  rounds: number;
  warmup: number;
}): Promise<MqttRoundTripResult> {
  if (mosquittoMissing) throw new Error(mosquittoMissing);
  const broker = await TestMosquitto.start();
  const agent = new MqttLink({ url: broker.url, clientId: 'bench-agent' }).start();
  const api = new MqttLink({ url: broker.url, clientId: 'bench-api' }).start();
  const agentRpc = new MqttRpc(agent).start();
  const apiRpc = new MqttRpc(api).start();
  const floor = await floorPair(broker.url);
  try {
    await Promise.all([agent.whenUp(5000), api.whenUp(5000)]);
    agentRpc.serve(agent.topics.cmd('bench'), (body) => body);
    const topic = api.topics.cmd('bench');
    let errors = 0;
    const rpcOnce = async () => {
      try {
        await apiRpc.request(topic, { command: 'toggle' }, { timeoutMs: 2000 });
      } catch {
        errors += 1;
      }
    };
    for (let i = 0; i < opts.warmup; i++) {
      await rpcOnce();
      await floor.once();
    }
    const lat = { rpc: [] as number[], floor: [] as number[] };
    const per = Math.ceil(opts.requests / opts.rounds);
    for (let r = 0; r < opts.rounds; r++) {
      const order = r % 2 === 0 ? (['rpc', 'floor'] as const) : (['floor', 'rpc'] as const);
      for (const which of order) {
        for (let i = 0; i < per; i++) {
          const t0 = performance.now();
          await (which === 'rpc' ? rpcOnce() : floor.once());
          lat[which].push(performance.now() - t0);
        }
      }
    }
    const rpc = figures(lat.rpc);
    const fl = figures(lat.floor);
    return { rpc, floor: fl, ratio: { p50: rpc.p50 / fl.p50, p99: rpc.p99 / fl.p99 }, errors };
  } finally {
    apiRpc.stop();
    agentRpc.stop();
    await Promise.all([api.stop(), agent.stop(), ...floor.clients.map((c) => c.endAsync(true))]);
    await broker.stop();
  }
}

export function mqttReport(r: MqttRoundTripResult | null): string {
  const row = (name: string, f: Figures) => [name, String(f.n), ms(f.p50), ms(f.p99), ms(f.mean)];
  return [
    '\n=== 8. MQTT command round trip over loopback Mosquitto (ms) ===',
    r
      ? table(
          ['path', 'n', 'p50', 'p99', 'mean'],
          [
            row('MqttRpc.request → serve → reply', r.rpc),
            row('bare mqtt.js publish → echo (floor)', r.floor),
          ],
        )
      : 'n/a',
    r ? `rpc/floor p50 ${ratio(r.ratio.p50)}, p99 ${ratio(r.ratio.p99)}; failed requests ${r.errors}` : '',
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const requests = Number(process.argv[2] ?? 2000);
  const r = await mqttRoundTrip({ requests, rounds: 8, warmup: 200 });
  console.log(mqttReport(r));
}
