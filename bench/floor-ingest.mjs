// The floor for "MQTT sensor messages ingested" (lib/ingest.ts): the least a Node process can
// do with sensor readings, a bare mqtt.js subscriber (MQTT 5, one subscription per topic, as
// hearth makes them) that parses each payload as hearth's mqtt-sensor/v1 is configured to (a
// plain number, or one field of a JSON object) and keeps the latest value per topic in a Map.
// No validation beyond that, no events, no logging, no republishing.
// A round ends when every topic has carried the same negative value (the publisher's
// sentinel): then it prints `done <sentinel> <messages applied this round>`.
// Usage: node floor-ingest.mjs <url> <spec JSON: [{"topic", "field"|null}]>
import mqtt from 'mqtt';

const [url = '', specArg = '[]'] = process.argv.slice(2);
const spec = JSON.parse(specArg);
if (!url || !Array.isArray(spec) || spec.length === 0) {
  console.error('usage: node floor-ingest.mjs <url> <spec JSON>');
  process.exit(2);
}

/** topic → the field to read, or null for a plain number. */
const fields = new Map(spec.map((s) => [s.topic, s.field]));
const values = new Map();
/** topic → the last sentinel it carried. */
const sentinels = new Map();
let applied = 0;
let bad = 0;

const client = await mqtt.connectAsync(url, {
  protocolVersion: 5,
  clientId: `bench-ingest-floor-${process.pid}`,
  reconnectPeriod: 0,
});
client.stream.setNoDelay?.(true);
client.on('message', (topic, payload) => {
  const field = fields.get(topic);
  if (field === undefined) return;
  const text = payload.toString('utf8');
  let value;
  try {
    value = field === null ? Number(text) : JSON.parse(text)[field];
  } catch {
    value = undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    bad += 1;
    return;
  }
  values.set(topic, value);
  applied += 1;
  if (value < 0) {
    sentinels.set(topic, value);
    let all = true;
    for (const s of sentinels.values()) if (s !== value) all = false;
    if (all && sentinels.size === fields.size) {
      console.log(`done ${value} ${applied} ${bad}`);
      applied = 0;
      bad = 0;
    }
  }
});
for (const s of spec) await client.subscribeAsync(s.topic, { qos: 0 });
console.log('subscribed');
process.once('SIGTERM', () => {
  client.end(true);
  process.exit(0);
});
