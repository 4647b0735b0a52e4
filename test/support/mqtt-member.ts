// A process that joins the MQTT bus and waits to be killed: the will test kills it with SIGKILL.
// Usage: node --import tsx test/support/mqtt-member.ts <url> <baseTopic> <clientId>
import { MqttLink } from '../../src/bus/mqtt/link.js';

const [url, baseTopic, clientId] = process.argv.slice(2);
if (!url || !baseTopic || !clientId) {
  console.error('usage: mqtt-member.ts <url> <baseTopic> <clientId>');
  process.exit(2);
}
const link = new MqttLink({ url, baseTopic, clientId }).start();
link.once('up', () => console.log('up'));
setInterval(() => {}, 60_000);
