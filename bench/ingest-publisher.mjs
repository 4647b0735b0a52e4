// The publisher of "MQTT sensor messages ingested" (lib/ingest.ts): one mqtt.js client, QoS 0,
// round-robin over the sensor topics, as fast as the socket takes them (it waits for `drain`
// every batch, so it never buffers the whole run in memory). Message n goes to topic n % T with
// the value 20 + n/1000, so every message is a change; the last message of each topic carries
// the round's sentinel (a negative number) instead.
// Usage: node ingest-publisher.mjs <url> <spec JSON: [{"topic", "field"|null}]> <messages> <sentinel>
// Prints `ready` once connected, starts on SIGUSR2, prints `published <ms>` and exits.
import mqtt from 'mqtt';

const [url = '', specArg = '[]', messagesArg = '', sentinelArg = ''] = process.argv.slice(2);
const spec = JSON.parse(specArg);
const messages = Number(messagesArg);
const sentinel = Number(sentinelArg);
if (!url || !Array.isArray(spec) || spec.length === 0 || !(messages >= spec.length) || !(sentinel < 0)) {
  console.error('usage: node ingest-publisher.mjs <url> <spec JSON> <messages >= topics> <sentinel < 0>');
  process.exit(2);
}

const BATCH = 500;
const n = spec.length;

function payload(i, value) {
  const field = spec[i].field;
  if (field === null) return String(value);
  // A weather station's object: the watched field and one more, both changing.
  return JSON.stringify({ temperature: value, humidity: value < 0 ? value : +(value + 20).toFixed(3) });
}

const client = await mqtt.connectAsync(url, {
  protocolVersion: 5,
  clientId: `bench-ingest-pub-${process.pid}`,
  reconnectPeriod: 0,
});
client.stream.setNoDelay?.(true);

async function run() {
  const t0 = performance.now();
  for (let start = 0; start < messages; start += BATCH) {
    const end = Math.min(messages, start + BATCH);
    let last;
    for (let k = start; k < end; k++) {
      const i = k % n;
      const value = k >= messages - n ? sentinel : +(20 + k / 1000).toFixed(3);
      last = client.publishAsync(spec[i].topic, payload(i, value), { qos: 0 });
    }
    // QoS 0: resolves once written, or on `drain` when the socket's buffer was full.
    await last;
  }
  const ms = performance.now() - t0;
  console.log(`published ${ms.toFixed(1)}`);
  await client.endAsync();
  process.exit(0);
}

process.once('SIGUSR2', () => {
  run().catch((err) => {
    console.error(`publisher failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
});
console.log('ready');
